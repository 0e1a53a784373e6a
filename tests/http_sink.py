"""
A small HTTP sink for end-to-end tests: it records every request an ESME
(Kannel's smsbox, for one) makes to it, and lets a test wait for the ones it
expects without sleeping.

It runs in the test process on the reactor the test already uses
(``tcp:0:interface=127.0.0.1``), answers every GET or POST with ``200 ok``,
and keeps the query arguments decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, TimeoutError, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.web.resource import Resource
from twisted.web.server import Request, Site


@dataclass(frozen=True)
class SinkRequest:
    """
    One request the sink received.

    :ivar path: the URL path, e.g. ``/dlr``.
    :ivar args: query (and form) arguments, UTF-8-decoded (bad bytes replaced).
    :ivar raw: the same arguments as bytes, for binary values.
    """

    method: str
    path: str
    args: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.args[name]

    def get(self, name: str, default: str = "") -> str:
        """An argument, or ``default`` when it was not sent."""
        return self.args.get(name, default)


Predicate = Callable[[SinkRequest], bool]


class _Waiter:
    def __init__(self, predicate: Predicate, count: int) -> None:
        self.predicate = predicate
        self.count = count
        self.matched: list[SinkRequest] = []
        self.deferred: Deferred[list[SinkRequest]] = Deferred()


class HTTPSink(Resource):
    """
    Records requests; :meth:`wait_for` fires once enough of them match.

    :param reactor: listens and times out waits.
    """

    isLeaf = True

    def __init__(self, reactor: Any) -> None:
        super().__init__()
        self.reactor = reactor
        self.requests: list[SinkRequest] = []
        self._waiters: list[_Waiter] = []
        self._port: IListeningPort | None = None

    # ------------------------------------------------------------------
    # serving
    # ------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on an ephemeral port of 127.0.0.1; returns the base URL ``http://127.0.0.1:PORT``."""
        endpoint = serverFromString(self.reactor, "tcp:0:interface=127.0.0.1")
        self._port = await endpoint.listen(Site(self))
        address = self._port.getHost()
        assert isinstance(address, IPv4Address)
        return f"http://127.0.0.1:{address.port}"

    async def stop(self) -> None:
        """Stop listening and fail any wait still pending."""
        for waiter in self._waiters:
            waiter.deferred.cancel()
        self._waiters = []
        if self._port is not None:
            await maybeDeferred(self._port.stopListening)
            self._port = None

    def render_GET(self, request: Request) -> bytes:
        """Record the request and answer ``ok``."""
        self._record(request)
        request.setHeader(b"content-type", b"text/plain")
        return b"ok"

    render_POST = render_GET

    def _record(self, request: Request) -> None:
        query = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        raw = {name: value.encode("latin-1") for name, value in pairs}
        args = {name: value.decode("utf-8", "replace") for name, value in raw.items()}
        entry = SinkRequest(request.method.decode("ascii"), request.path.decode("utf-8", "replace"), args, raw)
        self.requests.append(entry)
        for waiter in list(self._waiters):
            if waiter.predicate(entry):
                waiter.matched.append(entry)
                if len(waiter.matched) >= waiter.count:
                    self._waiters.remove(waiter)
                    waiter.deferred.callback(list(waiter.matched))

    # ------------------------------------------------------------------
    # asserting
    # ------------------------------------------------------------------

    def matching(self, predicate: Predicate) -> list[SinkRequest]:
        """Every request received so far that matches."""
        return [entry for entry in self.requests if predicate(entry)]

    def wait_for(
        self, predicate: Predicate, count: int = 1, timeout: float = 20.0, what: str = ""
    ) -> Deferred[list[SinkRequest]]:
        """
        Fire with the first ``count`` requests (received before or after
        this call) that match ``predicate``.

        :param timeout: seconds; then it fails with :class:`SinkTimeout`
            naming ``what`` and listing every request received.
        """
        waiter = _Waiter(predicate, count)
        for entry in self.requests:
            if predicate(entry):
                waiter.matched.append(entry)
        if len(waiter.matched) >= count:
            return succeed(waiter.matched[:count])
        self._waiters.append(waiter)
        label = what or "matching requests"

        def timed_out(failure: Any) -> Any:
            failure.trap(TimeoutError)
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            received = "\n  ".join(f"{r.method} {r.path} {r.args}" for r in self.requests) or "(nothing)"
            raise SinkTimeout(
                f"waited {timeout:g} s for {count} {label}, got {len(waiter.matched)}; the sink received:\n  {received}"
            )

        waiter.deferred.addTimeout(timeout, self.reactor)
        waiter.deferred.addErrback(timed_out)
        return waiter.deferred


class SinkTimeout(AssertionError):
    """What a test expected never reached the sink."""
