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
import json
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
                raise APIError(413, f"the request body is larger than {MAX_BODY} bytes")
            if not raw.strip():
                self._body = {}
            else:
                try:
                    self._body = json.loads(raw)
                except ValueError as e:
                    raise APIError(400, f"the request body is not valid JSON: {e}") from None
        return self._body

    def object_body(self) -> dict[str, Any]:
        """The body, which must be a JSON object."""
        body = self.body()
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object")
        return body


def check_keys(body: dict[str, Any], allowed: tuple[str, ...], where: str = "body") -> None:
    """400 when ``body`` has a key not in ``allowed`` (a typo must not be ignored silently)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise APIError(400, f"unknown {where} field(s) {', '.join(unknown)}; expected: {', '.join(allowed)}")


def number(value: Any, name: str, minimum: float | None = None, integer: bool = False) -> float:
    """A JSON or query-string number, checked; 400 otherwise."""
    if isinstance(value, bool):
        raise APIError(400, f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise APIError(400, f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}") from None
    if not isinstance(value, (int, float)) or (integer and not isinstance(value, int)) or value != value:
        raise APIError(400, f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if minimum is not None and value < minimum:
        raise APIError(400, f"{name} must be at least {minimum:g}, got {value!r}")
    return value


def text(value: Any, name: str) -> str:
    """A JSON string field, checked; 400 otherwise."""
    if not isinstance(value, str):
        raise APIError(400, f"{name} must be a string, got {value!r}")
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

    :param prefix: the path every route sits under, e.g. ``/api/v1``.
    :param token: the bearer token every route but the open ones needs, or None.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, prefix: str, token: str | None = None) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.token = token
        self.routes: list[Route] = []
        self.open_routes: set[str] = set()

    def add(self, template: str, method: str, handler: Handler, open_access: bool = False) -> None:
        """Route ``method template`` (relative to the prefix) to ``handler``."""
        for route in self.routes:
            if route.template == template:
                route.methods[method] = handler
                break
        else:
            self.routes.append(Route(template, _compile(self.prefix + template), {method: handler}))
        if open_access:
            self.open_routes.add(template)

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
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            handler = route.methods.get(method)
            if handler is None and method == "HEAD":
                handler = route.methods.get("GET")
            if handler is None:
                allowed = ", ".join(sorted(route.methods))
                error = APIError(405, f"{method} is not allowed on {route.template}; allowed: {allowed}")
                error.headers["Allow"] = allowed
                raise error
            if route.template not in self.open_routes:
                self._check_token(request)
            return handler(Call(request, match.groupdict()))
        self._check_token(request)
        raise APIError(404, f"no such resource: {path}")

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
