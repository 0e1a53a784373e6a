"""
Live updates of the control API as Server-Sent Events: ``GET /api/v1/events``.

A stream subscribes to the simulator's event bus while it is open and
sends one event per message state change, delivery outcome, session change
and outage change, a ``stats`` tick every second (on the simulator's clock)
and, when asked with ``?pdus=1``, the PDUs in and out, decoded.

Nothing here buffers without a bound.  Each stream is a streaming producer
of its HTTP request: while the connection's write buffer is over twisted's
limit the transport pauses it, and events wait in the stream's own queue;
when that queue is full too the client is too slow, and its connection is
dropped (it may reconnect).  PDU events, the hot path, are capped per
second for all streams together.
"""

from __future__ import annotations

import json
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.server import Request

from smsc_sim.api.http import APIError, Call, TextResponse, _json_default, check_keys, excerpt
from smsc_sim.contracts import Event

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

#: most event streams open at once, all clients together (503 beyond)
MAX_STREAMS = 16
#: most events a paused stream holds before its client is dropped
MAX_QUEUED_EVENTS = 1000
#: most bytes of events a paused stream holds before its client is dropped
MAX_QUEUED_BYTES = 1_000_000
#: most PDU events sent per second, all streams together (the rest are counted in the stats tick)
MAX_PDU_EVENTS_PER_SECOND = 200
#: seconds between stats ticks
TICK = 1.0
#: octets of a PDU field shown in a PDU event (as hex); longer values are cut
PDU_FIELD_OCTETS = 256
#: PDU fields never shown
SECRET_FIELDS = frozenset({"password"})

#: event kinds passed on as they are (their data is JSON already: names, numbers, ids)
_STATE_KINDS = frozenset({"connection", "bind", "bind_refused", "unbind", "session_closed", "message", "delivery"})
_PDU_KINDS = frozenset({"pdu_in", "pdu_out"})


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "0").lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise APIError(400, f"{name} must be 1 or 0, got {excerpt(value)}")


def _field(value: Any) -> Any:
    """A PDU field for JSON: octets as hex (cut), everything else as it is."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        shown = raw[:PDU_FIELD_OCTETS].hex()
        return shown + "..." if len(raw) > PDU_FIELD_OCTETS else shown
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value[: 2 * PDU_FIELD_OCTETS] if isinstance(value, str) else value
    return str(value)[: 2 * PDU_FIELD_OCTETS]


def pdu_view(pdu: Any) -> dict[str, Any]:
    """A decoded PDU as a PDU event shows it; a password is never shown."""
    from smsc_sim.smpp.constants import status_name

    params = getattr(pdu, "params", {}) or {}
    tlvs = getattr(pdu, "tlvs", {}) or {}
    return {
        "command": pdu.name,
        "command_id": pdu.command_id,
        "sequence_number": pdu.sequence_number,
        "command_status": pdu.command_status,
        "status_name": status_name(pdu.command_status),
        "params": {key: ("***" if key in SECRET_FIELDS else _field(value)) for key, value in params.items()},
        "tlvs": {f"0x{tag:04X}": _field(value) for tag, value in tlvs.items()},
    }


def frame(kind: str, data: Any, event_id: int | None = None) -> bytes:
    """One Server-Sent Event: ``id``, ``event`` and a one-line JSON ``data``."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, default=_json_default, separators=(",", ":"))
    return f"{head}event: {kind}\ndata: {body}\n\n".encode()


class EventStream:
    """
    One client's stream: a push producer of its request with a bounded queue.

    :param request: the open ``GET /events`` request.
    :param pdus: whether the client asked for PDU events.
    :param on_close: called once when the stream ends, for whatever reason.
    """

    log = Logger()

    def __init__(self, request: Request, pdus: bool, on_close: Callable[[EventStream], None]) -> None:
        self.request = request
        self.pdus = pdus
        self._on_close = on_close
        self.paused = False
        self.closed = False
        self.dropped = False
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.sent = 0

    # IPushProducer, called by the HTTP channel when its transport's buffer fills and empties

    def pauseProducing(self) -> None:
        """The transport's write buffer is over its limit: hold events in the queue."""
        self.paused = True

    def resumeProducing(self) -> None:
        """The transport drained: write what waited."""
        self.paused = False
        while self.queue and not self.paused and not self.closed:
            data = self.queue.popleft()
            self.queued_bytes -= len(data)
            self._write(data)

    def stopProducing(self) -> None:
        """The connection is going away."""
        self.close()

    def send(self, data: bytes) -> None:
        """Write one event now, or queue it while paused; a full queue drops the client."""
        if self.closed:
            return
        if not self.paused and not self.queue:
            self._write(data)
            return
        if len(self.queue) >= MAX_QUEUED_EVENTS or self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            self.drop()
            return
        self.queue.append(data)
        self.queued_bytes += len(data)

    def _write(self, data: bytes) -> None:
        self.sent += 1
        self.request.write(data)

    def drop(self) -> None:
        """End a consumer that cannot keep up: forget its queue and abort its connection."""
        if self.closed:
            return
        self.dropped = True
        self.log.warn(
            "event stream of {client} dropped: it did not read {events} queued events",
            client=str(self.request.getClientAddress()),
            events=len(self.queue),
        )
        self.close()
        transport = getattr(self.request.channel, "transport", None)
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            (abort if abort is not None else transport.loseConnection)()

    def close(self) -> None:
        """Stop sending (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.queued_bytes = 0
        self._on_close(self)


class EventStreams:
    """
    Every open event stream of one API, and the one bus subscription and
    stats tick they share while at least one is open.

    :param simulator: whose events are streamed.
    :param max_streams: most streams open at once.
    """

    log = Logger()

    def __init__(self, simulator: Simulator, max_streams: int = MAX_STREAMS) -> None:
        self.simulator = simulator
        self.max_streams = max_streams
        self.streams: list[EventStream] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._tick: LoopingCall | None = None
        self._previous: tuple[float, dict[str, Any]] | None = None
        self._next_id = 0
        self._pdu_budget = MAX_PDU_EVENTS_PER_SECOND
        self._pdus_skipped = 0

    def add_routes(self, api: Any, prefix: str) -> None:
        """Route ``GET prefix/events``."""
        api.add(prefix + "/events", "GET", self.open)

    # -- opening and closing ------------------------------------------------------------

    def open(self, call: Call) -> Deferred[None] | TextResponse:
        """
        Answer with a stream that lasts until the client leaves (or is
        dropped): a ``hello`` event first, then events as they happen.
        """
        check_keys(call.query, ("pdus",), "query")
        pdus = _flag(call.query, "pdus")
        if call.request.method == b"HEAD":
            # the headers only: a HEAD must not hold a connection open nor get a body
            return TextResponse(b"", "text/event-stream; charset=utf-8")
        if len(self.streams) >= self.max_streams:
            raise APIError(
                503, f"{self.max_streams} event streams are open already (the stream limit)", limit=self.max_streams
            )
        request = call.request
        stream = EventStream(request, pdus, self._closed)
        self.streams.append(stream)
        request.setResponseCode(200)
        request.setHeader("content-type", "text/event-stream; charset=utf-8")
        request.setHeader("cache-control", "no-store")
        # proxies that buffer would hold live events back
        request.setHeader("x-accel-buffering", "no")
        request.registerProducer(stream, True)
        if self._unsubscribe is None:
            self._unsubscribe = self.simulator.events.subscribe(self._event)
        hello = {
            "time": self.simulator.clock.seconds(),
            "pdus": pdus,
            "tick": TICK,
            "limits": {
                "streams": self.max_streams,
                "queued_events": MAX_QUEUED_EVENTS,
                "queued_bytes": MAX_QUEUED_BYTES,
                "pdu_events_per_second": MAX_PDU_EVENTS_PER_SECOND,
            },
        }
        stream.send(b"retry: 2000\n" + frame("hello", hello))
        if self._tick is None:
            self._tick = LoopingCall(self._stats)
            self._tick.clock = self.simulator.clock
            self._tick.start(TICK, now=False)
        # the stream itself, written now, so the client sees the headers at once
        stream.send(frame("stats", self._stats_body()))
        # never fires by itself: it is cancelled when the client leaves (twisted.web's notifyFinish)
        return Deferred(lambda _: stream.close())

    def _closed(self, stream: EventStream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)
        try:
            stream.request.unregisterProducer()
        except Exception:  # the channel may be gone already; nothing to undo then
            pass
        if not self.streams:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if self._tick is not None and self._tick.running:
                self._tick.stop()
            self._tick = None
            self._previous = None

    def close(self) -> None:
        """End every stream (the API stops)."""
        for stream in list(self.streams):
            stream.close()
            try:
                stream.request.finish()
            except Exception:  # its connection may be closing already
                pass

    # -- events ------------------------------------------------------------------------------

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _broadcast(self, data: bytes, pdus_only: bool = False) -> None:
        for stream in tuple(self.streams):
            if not pdus_only or stream.pdus:
                stream.send(data)

    def _event(self, event: Event) -> None:
        kind = event.kind
        if kind in _PDU_KINDS:
            if not any(stream.pdus for stream in self.streams):
                return
            if self._pdu_budget <= 0:
                self._pdus_skipped += 1
                return
            self._pdu_budget -= 1
            data = event.data
            body = {
                "time": event.time,
                "direction": "in" if kind == "pdu_in" else "out",
                "session_id": data.get("session_id"),
                "instance": data.get("instance"),
                **pdu_view(data["pdu"]),
            }
            self._broadcast(frame("pdu", body, self._id()), pdus_only=True)
        elif kind in _STATE_KINDS:
            self._broadcast(frame(kind, {"time": event.time, **event.data}, self._id()))
        elif kind == "outage":
            body = {"time": event.time, **event.data}
            instance = self.simulator.instances.get(str(event.data.get("instance")))
            if instance is not None:
                body["describe"] = instance.describe()
            self._broadcast(frame("outage", body, self._id()))

    def _stats_body(self) -> dict[str, Any]:
        """The counters a stats tick shows, with rates per second since the previous tick."""
        simulator = self.simulator
        now = simulator.clock.seconds()
        clusters: dict[str, Any] = {}
        for name, core in simulator.cores.items():
            clusters[name] = core.stats()
        submits = sum(n for c in clusters.values() for n in (c.get("submits") or {}).values())
        errors: dict[str, int] = {}
        for c in clusters.values():
            for status, n in (c.get("submits") or {}).items():
                if status != "ESME_ROK":
                    errors[status] = errors.get(status, 0) + n
        receipts = sum((c.get("receipts") or {}).get("sent", 0) for c in clusters.values())
        totals = {"submits": submits, "receipts": receipts, "errors": errors}
        rates: dict[str, Any] = {"submits": 0.0, "receipts": 0.0, "errors": {}}
        if self._previous is not None:
            then, before = self._previous
            span = now - then
            if span > 0:
                # counters shrink on a reset: a negative rate would be a lie, zero is what happened since
                rates["submits"] = max(0, submits - before["submits"]) / span
                rates["receipts"] = max(0, receipts - before["receipts"]) / span
                rates["errors"] = {
                    status: max(0, n - before["errors"].get(status, 0)) / span for status, n in errors.items()
                }
        self._previous = (now, totals)
        sessions = [s for instance in simulator.instances.values() for s in list(instance.sessions.values())]
        return {
            "time": now,
            "totals": totals,
            "rates": rates,
            "pending": sum(c.get("pending", 0) for c in clusters.values()),
            "store_size": sum(c.get("store_size", 0) for c in clusters.values()),
            "sessions": len(sessions),
            "instances": [instance.describe() for instance in simulator.instances.values()],
            "clusters": clusters,
            "pdus_skipped": self._pdus_skipped,
            "streams": len(self.streams),
        }

    def _stats(self) -> None:
        try:
            data = frame("stats", self._stats_body(), self._id())
        except Exception:
            self.log.failure("the stats tick failed")
            return
        # a new second: a new budget of PDU events
        self._pdus_skipped = 0
        self._pdu_budget = MAX_PDU_EVENTS_PER_SECOND
        self._broadcast(data)
