"""
The web console: static files shipped in the package, served at ``/`` and
``/console/<file>`` in front of the control API.

The console is only a client of the API (its pages call ``/api/v1`` and
read ``/api/v1/events``); it has no way into the engine of its own.  Its
files hold no secret, so they need no token, but the ``Host`` and
``Origin`` guards of the API apply to them too, and every page is sent
with a Content-Security-Policy that allows scripts, styles and requests
from this server only.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from smsc_sim.api.http import APIError, JSONAPI

#: the console's own paths; everything else goes to the API
CONSOLE_PREFIX = b"/console/"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}

#: scripts, styles and requests from this server only; no frames, no forms elsewhere
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _load_files() -> dict[str, tuple[bytes, str]]:
    """Every file of the static directory, read once, by name (a flat directory: no path can escape it)."""
    files: dict[str, tuple[bytes, str]] = {}
    static = resources.files("smsc_sim.console").joinpath("static")
    for entry in static.iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ".txt"
        if entry.is_file():
            files[name] = (entry.read_bytes(), _TYPES.get(suffix, "application/octet-stream"))
    return files


class ConsoleResource(Resource):
    """
    The root resource: the console's files at ``/`` and ``/console/...``, the API for every other path.

    :param api: the API resource that answers everything else (and whose Host and Origin rules apply here).
    """

    isLeaf = True

    def __init__(self, api: JSONAPI) -> None:
        super().__init__()
        self.api = api
        self.files = _load_files()

    def render(self, request: Request) -> Any:  # type: ignore[override]
        """Serve a console file, or pass the request on to the API."""
        path = request.path or b"/"
        if path not in (b"/", b"/console", b"/console/") and not path.startswith(CONSOLE_PREFIX):
            return self.api.render(request)
        try:
            return self._file(request, path)
        except APIError as error:
            request.setResponseCode(error.code)
            for name, value in error.headers.items():
                request.setHeader(name, value)
            request.setHeader("content-type", "application/json")
            request.setHeader("cache-control", "no-store")
            body = {"error": {"status": error.code, "message": error.message, **error.details}}
            return json.dumps(body).encode() + b"\n"

    def _file(self, request: Request, path: bytes) -> bytes:
        self.api._check_origin(request)
        method = request.method or b"GET"
        if method not in (b"GET", b"HEAD"):
            error = APIError(405, f"{method.decode('ascii', 'replace')} is not allowed on the console; allowed: GET")
            error.headers["Allow"] = "GET"
            raise error
        name = "index.html" if path in (b"/", b"/console", b"/console/") else path[len(CONSOLE_PREFIX) :].decode(
            "utf-8", "replace"
        )
        found = self.files.get(name)
        if found is None:
            raise APIError(404, f"no console file {name[:80]!r}")
        body, content_type = found
        request.setHeader("content-type", content_type)
        request.setHeader("cache-control", "no-cache")
        request.setHeader("x-content-type-options", "nosniff")
        request.setHeader("referrer-policy", "no-referrer")
        request.setHeader("content-security-policy", CONTENT_SECURITY_POLICY)
        return body if method != b"HEAD" else b""
