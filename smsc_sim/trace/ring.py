"""
A bounded ring of what every SMPP connection carried: its connect, each read
and write as octets, its close.

The ring is an event-bus subscriber of the kinds in :data:`TRACE_KINDS`.  It
holds at most ``max_bytes`` (octets plus a fixed charge per segment and per
closed connection, so that a flood of tiny reads or short connections is
bounded too); past that, the oldest connections lose their oldest segments
first, and a closed connection left with none is forgotten.  An open
connection's own state (addresses and stream positions) is kept while it
lasts, whatever the bound: the number of open connections is bounded by
``limits.max_connections``.

Each segment remembers the stream positions of both directions when it was
recorded, so the TCP sequence and acknowledgement numbers of a capture stay
right when earlier segments were dropped.

A reset of the simulator (between tests) starts the ring over: see
:meth:`TraceRing.reset`.  The ``--pcap`` file is never touched by one.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

from smsc_sim.contracts import Event
from smsc_sim.events import EventBus

__all__ = ["TRACE_KINDS", "Connection", "Segment", "TraceRing", "TraceSink", "DEFAULT_MAX_BYTES"]

#: the event kinds the trace subscribes to
TRACE_KINDS = ("connection", "bytes_in", "bytes_out", "session_closed")
#: the ring's default bound: 16 MiB
DEFAULT_MAX_BYTES = 16 << 20
#: what a segment and a connection are charged besides their octets (their objects' rough size)
SEGMENT_CHARGE = 64
CONNECTION_CHARGE = 512

#: the addresses of a connection whose transport has none (a UNIX socket): documentation ranges
_NO_CLIENT = ("192.0.2.1", 1)
_NO_SERVER = ("192.0.2.2", 2775)


@dataclass(frozen=True)
class Segment:
    """
    One read or write.

    :ivar time: when, by the simulator's clock.
    :ivar from_client: read from the ESME (True) or written to it (False).
    :ivar offset: octets this direction had carried before this segment.
    :ivar acked: octets the other direction had carried by then.
    :ivar data: the octets exactly as read or written.
    """

    time: float
    from_client: bool
    offset: int
    acked: int
    data: bytes


@dataclass
class Connection:
    """
    One SMPP connection as the trace knows it.

    :ivar client: the ESME's (host, port); :ivar server: the listener's.
    :ivar opened: when it connected, or None when the trace started after it did.
    :ivar closed: when it closed, or None while it is open.
    :ivar sent: octets carried so far, (from the client, from the server).
    :ivar dropped: segments the ring dropped from its start.
    :ivar carried: open at a reset, and has carried nothing since.
    """

    session_id: int
    instance: str
    client: tuple[str, int]
    server: tuple[str, int]
    opened: float | None
    closed: float | None = None
    sent: list[int] = field(default_factory=lambda: [0, 0])
    segments: deque[Segment] = field(default_factory=deque)
    dropped: int = 0
    carried: bool = False

    @property
    def ipv6(self) -> bool:
        """Whether both addresses are IPv6 (a capture needs one IP version per connection)."""
        return ":" in self.client[0] and ":" in self.server[0]

    @property
    def last(self) -> float:
        """When anything last happened on it."""
        times = [t for t in (self.opened, self.closed) if t is not None]
        if self.segments:
            times.append(self.segments[-1].time)
        return max(times, default=0.0)


class TraceSink(Protocol):
    """What hears every connect, segment and close as the ring records it (the ``--pcap`` file)."""

    def opened(self, connection: Connection) -> None:
        """``connection`` has just connected."""

    def segment(self, connection: Connection, segment: Segment) -> None:
        """``segment`` was just read or written on ``connection``."""

    def closed(self, connection: Connection) -> None:
        """``connection`` has just closed."""


def parse_address(text: str, fallback: tuple[str, int]) -> tuple[str, int]:
    """``host:port`` (IPv4, or IPv6 without brackets) to a pair; ``fallback`` when it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return fallback
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        return fallback
    return (host, number) if 0 <= number <= 0xFFFF else fallback


class TraceRing:
    """
    The bounded ring of connections and their segments.

    :param max_bytes: the bound (see the module's text); 0 keeps no segment,
        only the state of open connections (the ``--pcap`` file alone).
    :param sink: told of everything as it is recorded.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, sink: TraceSink | None = None) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self.max_bytes = max_bytes
        self.sink = sink
        #: held now, as charged against max_bytes
        self.size = 0
        #: segments dropped to stay within the bound, since the start
        self.dropped = 0
        # by session id, in the order they connected (or were first heard of): the oldest first
        self._connections: dict[int, Connection] = {}

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """Start recording ``bus``'s connections; returns the function that stops it."""
        return bus.subscribe(self, kinds=TRACE_KINDS)

    def __call__(self, event: Event) -> None:
        """Record one event of :data:`TRACE_KINDS`."""
        data = event.data
        kind = event.kind
        if kind == "bytes_in" or kind == "bytes_out":
            connection = self._connection(event, opened=None)
            self._record(connection, event.time, kind == "bytes_in", data["data"])
        elif kind == "connection":
            self._connection(event, opened=event.time)
        elif kind == "session_closed":
            known = self._connections.get(data["session_id"])
            if known is not None and known.closed is None:
                known.closed = event.time
                if self.sink is not None:
                    self.sink.closed(known)
                if known.carried:
                    # a connection of before the reset that ended without a word since (those a
                    # reset with sessions: true drops): nothing of it belongs to what follows
                    del self._connections[known.session_id]
                elif self.max_bytes:
                    self.size += CONNECTION_CHARGE
                    self._trim()
                else:
                    del self._connections[known.session_id]

    def reset(self) -> None:
        """
        Start over, as a reset of the simulator between tests does: closed
        connections are forgotten with every segment; an open one keeps its
        addresses and stream positions and is traced from now on, as if the
        trace had started now (no handshake, sequence numbers still right).
        One that then closes without carrying an octet is forgotten at its
        close.  :attr:`dropped` counts drops to stay within the bound only.
        """
        for session_id, connection in list(self._connections.items()):
            if connection.closed is not None:
                del self._connections[session_id]
            else:
                connection.segments.clear()
                connection.opened = None
                connection.carried = True
        # what is left is open connections without segments, which are not charged
        self.size = 0

    # -- reading --------------------------------------------------------------

    def get(self, session_id: int) -> Connection | None:
        """The connection of ``session_id``, while the ring holds it."""
        return self._connections.get(session_id)

    def connections(self, since: float | None = None) -> Iterator[Connection]:
        """The connections held, oldest first; with ``since``, those with anything at or after it."""
        for connection in list(self._connections.values()):
            if since is None or connection.last >= since or connection.closed is None:
                yield connection

    # -- recording ------------------------------------------------------------

    def _connection(self, event: Event, opened: float | None) -> Connection:
        data = event.data
        session_id = data["session_id"]
        connection = self._connections.get(session_id)
        if connection is not None:
            return connection
        connection = Connection(
            session_id=session_id,
            instance=data.get("instance", ""),
            client=parse_address(data.get("peer", ""), _NO_CLIENT),
            server=parse_address(data.get("local", ""), _NO_SERVER),
            opened=opened,
        )
        if connection.ipv6 != (":" in connection.server[0]):  # one IPv4, one IPv6 (a mapped address)
            connection.client, connection.server = _NO_CLIENT, _NO_SERVER
        self._connections[session_id] = connection
        if self.sink is not None and opened is not None:
            self.sink.opened(connection)
        return connection

    def _record(self, connection: Connection, time: float, from_client: bool, data: bytes) -> None:
        mine, theirs = (0, 1) if from_client else (1, 0)
        segment = Segment(time, from_client, connection.sent[mine], connection.sent[theirs], data)
        connection.sent[mine] += len(data)
        connection.carried = False
        if self.sink is not None:
            self.sink.segment(connection, segment)
        if self.max_bytes:
            connection.segments.append(segment)
            self.size += len(data) + SEGMENT_CHARGE
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest connections' oldest segments until the ring is within its bound."""
        if self.size <= self.max_bytes:
            return
        forget: list[int] = []
        for session_id, connection in self._connections.items():
            segments = connection.segments
            while segments and self.size > self.max_bytes:
                dropped = segments.popleft()
                connection.dropped += 1
                self.dropped += 1
                self.size -= len(dropped.data) + SEGMENT_CHARGE
            if not segments and connection.closed is not None:
                forget.append(session_id)
                self.size -= CONNECTION_CHARGE
            if self.size <= self.max_bytes:
                break
        for session_id in forget:
            del self._connections[session_id]
