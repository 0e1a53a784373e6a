"""
The JSON plumbing of the control API: a route table, request parsing, the
bearer-token check and errors that are always JSON.

Why not klein, although it is installed: ``klein._app`` imports the global
reactor when it is imported, which installs the default reactor in any
process that imports the API (a test process that wants the asyncio reactor,
say) and breaks the project rule that the reactor is a parameter; and
klein's own 404/405 answers are werkzeug HTML pages.  The API has a couple
of dozen fixed routes, for which a table of regular expressions on a plain
``twisted.web`` resource is shorter than the adapters klein would need.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.internet.defer import CancelledError, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

#: largest request body read (a scenario YAML is the biggest thing posted)
MAX_BODY = 1_000_000
#: deepest nesting of arrays and objects in a JSON body (the API's own bodies are 1 or 2 deep)
MAX_DEPTH = 32
#: characters of a client's value quoted in an error message
EXCERPT = 40
#: Host names that are always allowed: the loopback ones (any IP address literal is allowed too)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: methods that change something, whose body must be JSON
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class APIError(Exception):
    """
    An error answered as ``{"error": {"status": CODE, "message": ..., ...details}}``.

    :param code: the HTTP status.
    :param message: what went wrong, in words fit for a user.
    :param details: more JSON-able fields merged into the error object.
    """

    def __init__(self, code: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}


@dataclass(frozen=True)
class JSONResponse:
    """A handler's answer when it is not a plain 200: a status, a JSON body, extra headers."""

    code: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TextResponse:
    """A non-JSON answer (the Prometheus exposition)."""

    body: bytes
    content_type: str
    code: int = 200


class Call:
    """
    One API request as a handler sees it.

    :ivar params: the values of the path's ``{placeholders}``.
    :ivar query: the query string, last value of each name.
    :ivar request: the twisted.web request.
    """

    def __init__(self, request: Request, params: dict[str, str]) -> None:
        self.request = request
        self.params = params
        args: dict[bytes, list[bytes]] = request.args or {}
        self.query: dict[str, str] = {
            key.decode("utf-8", "replace"): values[-1].decode("utf-8", "replace")
            for key, values in args.items()
            if values
        }
        self._body: Any = _UNSET

    def body(self) -> Any:
        """The request body parsed as JSON (``{}`` when empty); 400 when it is not JSON."""
        if self._body is _UNSET:
            content = self.request.content
            raw = content.read(MAX_BODY + 1) if content is not None else b""
            if len(raw) > MAX_BODY:
                raise APIError(
                    413, f"the request body is larger than {MAX_BODY} bytes (the body limit)", limit=MAX_BODY
                )
            self._body = parse_json(raw)
        return self._body

    def object_body(self) -> dict[str, Any]:
        """The body, which must be a JSON object."""
        body = self.body()
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object")
        return body


def parse_json(raw: bytes) -> Any:
    """
    A request body as JSON (``{}`` when empty); 400 for anything else.

    The body must be UTF-8 (no other encoding is guessed), nest at most
    :data:`MAX_DEPTH` arrays and objects, and hold no NUL character (no
    SMPP field can carry one, and C-octet strings end at it).
    """
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise APIError(400, f"the request body is not UTF-8: byte {e.start} cannot be decoded") from None
    source = source.removeprefix("\ufeff")  # a byte-order mark is tolerated, as RFC 8259 allows parsers to
    if not source.strip():
        return {}
    try:
        value = json.loads(source)
    except RecursionError:
        # the parser recurses per level: a body of 100,000 '[' must not become a 500
        raise APIError(400, f"the request body nests deeper than {MAX_DEPTH} levels (the nesting limit)") from None
    except ValueError as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    """400 when a parsed body nests deeper than :data:`MAX_DEPTH` or holds a NUL; iterative, so never recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise APIError(400, f"the request body nests deeper than {MAX_DEPTH} levels (the nesting limit)")
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\0" in key:
                        raise APIError(400, f"the request body has a NUL character in the key {excerpt(key)}")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and "\0" in item:
            raise APIError(400, f"the request body has a NUL character in the value {excerpt(item)}")


def excerpt(value: Any) -> str:
    """A client's value for an error message: its repr, cut to about :data:`EXCERPT` characters."""
    shown = repr(value)
    return shown if len(shown) <= EXCERPT else shown[: EXCERPT - 3] + "..."


def check_keys(body: dict[str, Any], allowed: tuple[str, ...], where: str = "body") -> None:
    """400 when ``body`` has a key not in ``allowed`` (a typo must not be ignored silently)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        shown = ", ".join(unknown)
        shown = shown if len(shown) <= EXCERPT else shown[: EXCERPT - 3] + "..."
        raise APIError(400, f"unknown {where} field(s) {shown}; expected: {', '.join(allowed)}")


def number(value: Any, name: str, minimum: float | None = None, integer: bool = False) -> float:
    """A JSON or query-string number, checked; 400 otherwise."""
    if isinstance(value, bool):
        raise APIError(400, f"{name} must be a number, got {excerpt(value)}")
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise APIError(
                400, f"{name} must be {'an integer' if integer else 'a number'}, got {excerpt(value)}"
            ) from None
    if (
        not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise APIError(400, f"{name} must be {'an integer' if integer else 'a number'}, got {excerpt(value)}")
    if minimum is not None and value < minimum:
        raise APIError(400, f"{name} must be at least {minimum:g}, got {excerpt(value)}")
    return value


def text(value: Any, name: str) -> str:
    """A JSON string field, checked; 400 otherwise."""
    if not isinstance(value, str):
        raise APIError(400, f"{name} must be a string, got {excerpt(value)}")
    return value


_UNSET = object()

Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    """One path pattern and its handler per method."""

    template: str
    pattern: re.Pattern[str]
    methods: dict[str, Handler]


def _compile(template: str) -> re.Pattern[str]:
    """``/instances/{name}`` to a regular expression with a named group per placeholder."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(f"^{regex}/?$")


class JSONAPI(Resource):
    """
    A leaf resource that dispatches on a route table and answers JSON.

    Before any route is looked up, every request passes three guards, in
    this order (docs/api.md, "Browser attacks"):

    1. its ``Host`` must be a loopback name, an IP address or one of
       ``allowed_hosts`` (421 otherwise): a web page that re-points its own
       name at 127.0.0.1 (DNS rebinding) sends its own name;
    2. an ``Origin`` header, which browsers add to cross-site requests, must
       name such a host too (403 otherwise);
    3. the bearer token, unless the route and method are open (401), so
       that a bad token learns nothing of the routes (no 404 or 405 first).

    A mutating request with a body must then say ``Content-Type:
    application/json`` (415): an HTML form can post only form encodings and
    ``text/plain``.

    :param prefix: the path every route sits under, e.g. ``/api/v1``.
    :param token: the bearer token every route but the open ones needs, or None.
    :param allowed_hosts: host names allowed besides loopback and IP
        addresses, lower case, without port; ``*`` allows any.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, prefix: str, token: str | None = None, allowed_hosts: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.token = token
        self.allowed_hosts = frozenset(name.lower().rstrip(".") for name in allowed_hosts)
        self.routes: list[Route] = []
        self.open_routes: set[tuple[str, str]] = set()

    def add(self, template: str, method: str, handler: Handler, open_access: bool = False) -> None:
        """Route ``method template`` (relative to the prefix) to ``handler``."""
        for route in self.routes:
            if route.template == template:
                route.methods[method] = handler
                break
        else:
            self.routes.append(Route(template, _compile(self.prefix + template), {method: handler}))
        if open_access:
            self.open_routes.add((template, method))

    def host_allowed(self, value: str) -> bool:
        """
        Whether a ``Host`` (or ``Origin`` authority) names this API.

        :param value: ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``.
        """
        value = value.strip().lower()
        if value.startswith("["):
            name = value[1 : value.find("]")] if "]" in value else value[1:]
        else:
            name, _, port = value.partition(":")
            if port and not port.isdigit():
                return False
        name = name.rstrip(".")
        if "*" in self.allowed_hosts or name in LOOPBACK_HOSTS or name in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        # an address is no name an attacker can re-point: the client chose this server by its address
        return True

    def _check_origin(self, request: Request) -> None:
        host = request.getHeader("host")
        if host is not None and not self.host_allowed(host):
            raise APIError(
                421,
                f"Host {excerpt(host)} is not allowed: the API answers only to loopback names, IP addresses and "
                "the names in api_allowed_hosts (SMSC_SIM_API_ALLOWED_HOSTS, --api-allowed-hosts); this guards "
                "against DNS rebinding",
                rule="host",
            )
        origin = request.getHeader("origin")
        if origin is not None:
            scheme, _, authority = origin.partition("://")
            if not authority or scheme.lower() not in ("http", "https") or not self.host_allowed(authority):
                raise APIError(
                    403,
                    f"Origin {excerpt(origin)} is not allowed: cross-site requests from web pages are refused; "
                    "the API answers only pages served from loopback, an IP address or api_allowed_hosts",
                    rule="origin",
                )

    @staticmethod
    def _check_content_type(request: Request, method: str) -> None:
        if method not in MUTATING:
            return
        content = request.content
        if content is None:
            return
        first = content.read(1)
        content.seek(0)
        if not first:
            return  # no body: nothing to misread (an empty form post is refused by the Origin guard)
        given = request.getHeader("content-type") or ""
        if given.split(";", 1)[0].strip().lower() != "application/json":
            raise APIError(
                415,
                f"a {method} body must be sent with 'Content-Type: application/json', got "
                f"{excerpt(given) if given else 'none'}; form and text bodies are refused (cross-site posts)",
                rule="content-type",
            )

    def render(self, request: Request) -> Any:  # type: ignore[override]
        """Find the route, check access, call the handler and write its JSON answer."""
        deferred = maybeDeferred(self._dispatch, request)
        finished = [False]

        def done(_: object) -> None:
            finished[0] = True

        request.notifyFinish().addBoth(done)

        def cancel_on_disconnect(_: object) -> None:
            # a long-poll whose client went away must stop waiting
            deferred.cancel()

        request.notifyFinish().addErrback(cancel_on_disconnect)
        deferred.addCallbacks(
            lambda result: self._write(request, result, finished), lambda f: self._fail(request, f, finished)
        )
        return NOT_DONE_YET

    def _dispatch(self, request: Request) -> Any:
        path = (request.path or b"/").decode("utf-8", "replace")
        method = (request.method or b"GET").decode("ascii", "replace").upper()
        self._check_origin(request)
        found: tuple[Route, re.Match[str]] | None = None
        for route in self.routes:
            match = route.pattern.match(path)
            if match is not None:
                found = route, match
                break
        wanted = "GET" if method == "HEAD" else method
        if found is None or (found[0].template, wanted) not in self.open_routes:
            # before routing: with a bad token no answer tells which paths and methods exist
            self._check_token(request)
        if found is None:
            raise APIError(
                404, f"no such resource: {path if len(path) <= 2 * EXCERPT else path[: 2 * EXCERPT] + '...'}"
            )
        route, match = found
        handler = route.methods.get(method)
        if handler is None and method == "HEAD":
            handler = route.methods.get("GET")
        if handler is None:
            allowed = ", ".join(sorted(route.methods))
            error = APIError(405, f"{method} is not allowed on {route.template}; allowed: {allowed}")
            error.headers["Allow"] = allowed
            raise error
        self._check_content_type(request, method)
        return handler(Call(request, match.groupdict()))

    def _check_token(self, request: Request) -> None:
        if self.token is None:
            return
        header = request.getHeader("authorization") or ""
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            error = APIError(401, "a bearer token is required: send 'Authorization: Bearer <token>'")
            error.headers["WWW-Authenticate"] = 'Bearer realm="smsc-sim"'
            raise error

    def _write(self, request: Request, result: Any, finished: list[bool]) -> None:
        if finished[0]:
            return
        if isinstance(result, TextResponse):
            request.setResponseCode(result.code)
            request.setHeader("content-type", result.content_type)
            body = result.body
        else:
            code, payload, headers = 200, result, {}
            if isinstance(result, JSONResponse):
                code, payload, headers = result.code, result.body, dict(result.headers)
            request.setResponseCode(code)
            for name, value in headers.items():
                request.setHeader(name, value)
            request.setHeader("content-type", "application/json")
            body = json.dumps(payload, default=_json_default).encode("utf-8") + b"\n"
        request.setHeader("cache-control", "no-store")
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def _fail(self, request: Request, failure: Failure, finished: list[bool]) -> None:
        if finished[0]:
            if not failure.check(CancelledError):
                self.log.failure("API request failed after its client left", failure)
            return
        error = failure.value
        if not isinstance(error, APIError):
            self.log.failure("API request {method} {path} failed", failure, method=request.method, path=request.path)
            error = APIError(500, f"internal error: {type(error).__name__}: {error}")
        body = {"error": {"status": error.code, "message": error.message, **error.details}}
        self._write(request, JSONResponse(error.code, body, error.headers), finished)


def _json_default(value: Any) -> Any:
    """JSON for the few non-JSON values handlers return (enums, tuples inside sets, bytes)."""
    if hasattr(value, "value") and hasattr(value, "name"):
        return value.value if isinstance(value.value, (str, int)) else value.name
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
