"""
Bounds on what one ESME, or many, can make the simulator hold.

Three mechanisms, each with a clear behaviour at its limit (docs/reliability.md):

:class:`ConnectionLimiter`
    open connections in total and per source address
    (:class:`~smsc_sim.config.LimitSettings` ``max_connections``,
    ``max_connections_per_address``).  Past a limit the connection is refused:
    the factory hands Twisted a :class:`Refused` protocol, which aborts it
    before anything is read or written.
:class:`BindFailureGuard`
    failed binds per source address: each failure's bind_resp can be held
    back (``bind_failure_delay``), and after ``bind_failure_lockout_after``
    failures in a row the address gets ESME_RBINDFAIL for every bind during
    ``bind_failure_lockout`` seconds.
:class:`Backpressure`
    a streaming producer for a session's transport: when the transport's
    write buffer passes its high-water mark (64 KiB for TCP) because the ESME
    does not read, the session stops reading the socket, so the ESME's
    requests wait in its own buffers instead of our memory.

Why :class:`Refused` rather than ``buildProtocol`` returning ``None``: plain
TCP closes the socket on ``None``, but the TLS wrapper of ``ssl:`` endpoints
(``TLSMemoryBIOFactory``) builds its protocol around whatever it is given,
so ``None`` breaks the accept with an error logged and a half-made
connection left behind.  An aborting protocol works behind every endpoint.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from smsc_sim.config import LimitSettings

#: how often (seconds) a refusal is logged at most, per reason; the rest are counted
REFUSAL_LOG_INTERVAL = 10.0
#: most source addresses the bind-failure table remembers (oldest forgotten first)
BIND_FAILURE_TABLE_LIMIT = 100_000


def address_host(addr: Any) -> str:
    """
    The source an address is counted under: its host for IP addresses, else its text.

    :param addr: an ``IAddress`` (``IPv4Address``, ``IPv6Address``, ``UNIXAddress``...) or ``None``.
    """
    host = getattr(addr, "host", None)
    if isinstance(host, str):
        return host
    return str(addr)


def peer_host(peer: str) -> str:
    """
    The host part of a session's ``peer`` text (``"127.0.0.1:40001"`` gives ``"127.0.0.1"``).

    :param peer: ``host:port`` as :attr:`smsc_sim.contracts.ISession.peer` has it.
    """
    host, sep, port = peer.rpartition(":")
    return host if sep and port.isdigit() else peer


class Refused(Protocol):
    """Stands in for a session on a refused connection: aborts it as soon as it is made."""

    def connectionMade(self) -> None:
        """Reset the connection; nothing is read or written."""
        transport: Any = self.transport
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()


class ConnectionLimiter:
    """
    Counts open SMPP connections, in total and per source host, and refuses those past a limit.

    One limiter serves every instance of a process, so the total bounds the process.

    :param settings: the limits (``0`` switches one off).
    :param clock: for rate-limiting the refusal log lines.
    """

    log = Logger()

    def __init__(self, settings: LimitSettings, clock: IReactorTime) -> None:
        self.settings = settings
        self.clock = clock
        self.total = 0
        self._by_host: Counter[str] = Counter()
        #: connections refused, by reason: ``max_connections``, ``max_connections_per_address``
        self.refused: Counter[str] = Counter()
        self._last_log: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def open_from(self, host: str) -> int:
        """Open connections from ``host`` now."""
        return self._by_host.get(host, 0)

    def admit(self, addr: Any) -> bool:
        """
        Count a new connection from ``addr`` if the limits allow it.

        :returns: ``True`` when admitted (release it with :meth:`release` or
            :meth:`release_on_close`), ``False`` when refused (not counted).
        """
        host = address_host(addr)
        limit_total = self.settings.max_connections
        limit_host = self.settings.max_connections_per_address
        if 0 < limit_total <= self.total:
            self._refuse("max_connections", host, limit_total)
            return False
        if 0 < limit_host <= self._by_host.get(host, 0):
            self._refuse("max_connections_per_address", host, limit_host)
            return False
        self.total += 1
        self._by_host[host] += 1
        return True

    def release(self, addr: Any) -> None:
        """Forget one admitted connection from ``addr``."""
        host = address_host(addr)
        count = self._by_host.get(host, 0)
        if count <= 0:
            return  # never admitted (or released twice): keep the counts true
        if count == 1:
            del self._by_host[host]
        else:
            self._by_host[host] = count - 1
        self.total -= 1

    def release_on_close(self, protocol: Protocol, addr: Any) -> None:
        """
        Release ``addr``'s count once ``protocol``'s connection is lost.

        The protocol's ``connectionLost`` is wrapped on this instance only, so
        the session needs to know nothing of the limiter; the release happens
        once, after the protocol's own ``connectionLost``, even if that raises.
        """
        original = protocol.connectionLost
        released = [False]

        def connectionLost(reason: Failure | None = None) -> None:
            try:
                if reason is None:
                    original()  # type: ignore[call-arg]
                else:
                    original(reason)
            finally:
                if not released[0]:
                    released[0] = True
                    self.release(addr)

        protocol.connectionLost = connectionLost  # type: ignore[method-assign]

    def _refuse(self, reason: str, host: str, limit: int) -> None:
        self.refused[reason] += 1
        now = self.clock.seconds()
        last = self._last_log.get(reason)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            self._unlogged[reason] += 1
            return  # a flood of refusals must not become a flood of log lines
        self._last_log[reason] = now
        self.log.warn(
            "connection from {host} refused: {reason} ({limit}) reached; {unlogged} more refused since the last report",
            host=host,
            reason=reason,
            limit=limit,
            unlogged=self._unlogged.pop(reason, 0),
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able view for the API and metrics."""
        return {
            "open": self.total,
            "max_connections": self.settings.max_connections,
            "max_connections_per_address": self.settings.max_connections_per_address,
            "busiest": [{"host": host, "open": n} for host, n in self._by_host.most_common(5)],
            "refused": dict(self.refused),
        }


class BindFailureGuard:
    """
    Failed binds per source host: a delay for each failure, a lockout after too many in a row.

    A success from the host clears its record; a record with no failure for
    ``bind_failure_lockout`` seconds is forgotten, so sporadic mistakes never
    add up to a lockout.  The table is bounded (:data:`BIND_FAILURE_TABLE_LIMIT`).

    :param settings: the limits.
    :param clock: the clock lockouts run on.
    """

    log = Logger()

    def __init__(self, settings: LimitSettings, clock: IReactorTime, table_limit: int = BIND_FAILURE_TABLE_LIMIT) -> None:
        self.settings = settings
        self.clock = clock
        self.table_limit = table_limit
        # host -> (failures in a row, time of the last one, locked until)
        self._hosts: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        #: binds refused because their host was locked out
        self.lockout_refusals = 0

    def _record(self, host: str) -> tuple[int, float, float] | None:
        record = self._hosts.get(host)
        if record is None:
            return None
        failures, last, locked_until = record
        now = self.clock.seconds()
        if now >= locked_until and now - last >= self.settings.bind_failure_lockout:
            del self._hosts[host]
            return None
        return record

    def locked(self, host: str) -> bool:
        """
        Whether binds from ``host`` are refused now; counts the refusal when they are.

        :param host: the source host (:func:`peer_host` of the session's peer).
        """
        record = self._record(host)
        if record is None or self.clock.seconds() >= record[2]:
            return False
        self.lockout_refusals += 1
        return True

    def failed(self, host: str) -> float:
        """
        Record a failed bind from ``host``.

        :returns: the seconds to hold its bind_resp back (``bind_failure_delay``).
        """
        now = self.clock.seconds()
        record = self._record(host)
        failures = (record[0] if record is not None else 0) + 1
        locked_until = record[2] if record is not None else 0.0
        threshold = self.settings.bind_failure_lockout_after
        if 0 < threshold <= failures and now >= locked_until:
            locked_until = now + self.settings.bind_failure_lockout
            failures = 0  # after the lockout the count starts again
            self.log.warn(
                "binds from {host} locked out for {seconds}s after {threshold} failures in a row",
                host=host,
                seconds=self.settings.bind_failure_lockout,
                threshold=threshold,
            )
        self._hosts[host] = (failures, now, locked_until)
        self._hosts.move_to_end(host)
        while len(self._hosts) > self.table_limit:
            self._hosts.popitem(last=False)
        return self.settings.bind_failure_delay

    def succeeded(self, host: str) -> None:
        """A bind from ``host`` succeeded: its failures are forgiven."""
        self._hosts.pop(host, None)

    def describe(self) -> dict[str, Any]:
        """A JSON-able view for the API and metrics."""
        now = self.clock.seconds()
        return {
            "tracked_hosts": len(self._hosts),
            "locked_out": sorted(host for host, (_, _, until) in self._hosts.items() if until > now),
            "lockout_refusals": self.lockout_refusals,
        }


@implementer(IPushProducer)
class Backpressure:
    """
    Stop reading from a connection while its write buffer is full.

    Registered as the transport's streaming producer, it is told by the
    transport to pause when the buffer of unsent bytes passes the transport's
    high-water mark (``bufferSize``, 64 KiB for TCP) and to resume when the
    buffer has drained; it pauses and resumes *reading* the socket, because
    what a session writes is answers to what it reads.  A connection with a
    registered producer does not close on ``loseConnection`` while the
    producer is paused, so :meth:`detach` must come first (see
    docs/reliability.md).

    :param transport: the session's transport (TCP, TLS or test transports).
    """

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.paused = False
        #: how many times reading was paused
        self.pauses = 0
        self._attached = False

    def attach(self) -> None:
        """Register with the transport."""
        if not self._attached:
            self.transport.registerProducer(self, True)
            self._attached = True

    def detach(self) -> None:
        """Unregister (before closing) and read again if paused."""
        if self._attached:
            self._attached = False
            self.transport.unregisterProducer()
        if self.paused:
            self.resumeProducing()

    def pauseProducing(self) -> None:
        """The write buffer is full: stop reading."""
        if not self.paused:
            self.paused = True
            self.pauses += 1
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """The write buffer drained: read again."""
        if self.paused:
            self.paused = False
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away; nothing to do."""
        self.paused = False


__all__ = [
    "Backpressure",
    "BindFailureGuard",
    "ConnectionLimiter",
    "Refused",
    "address_host",
    "peer_host",
]
