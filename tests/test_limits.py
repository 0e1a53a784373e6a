"""
Bounded resources: connections in total and per address, bind failures,
write backpressure, and a storm of connections against a real listener.

The unit tests run on ``task.Clock`` and ``StringTransport``.  The
integration tests run the simulator in the test process on the real reactor
(pytest-twisted), on ``tcp:0`` of 127.0.0.1, each bounded in time.

:class:`LimitedFactory` is the wiring proposed for ``SMPPServerFactory``
(two lines in ``buildProtocol``), so these tests check it as it will run.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any, Callable, cast

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import Config, LimitSettings, default_config
from smsc_sim.limits import Backpressure, BindFailureGuard, ConnectionLimiter, Refused, address_host, peer_host
from smsc_sim.session import SMPPSession
from smsc_sim.simulator import SMPPServerFactory
from tests import wire

#: seconds any one wait of an integration test may take
WAIT = 20.0


def _addr(host: str = "127.0.0.1", port: int = 40000) -> IPv4Address:
    return IPv4Address("TCP", host, port)


class LimitedFactory(SMPPServerFactory):
    """``SMPPServerFactory`` with the two proposed lines of limiter wiring."""

    def __init__(self, simulator: Any, instance: Any, limiter: ConnectionLimiter) -> None:
        super().__init__(simulator, instance)
        self.limiter = limiter

    def buildProtocol(self, addr: Any) -> Any:
        if not self.limiter.admit(addr):
            return Refused()
        session = super().buildProtocol(addr)
        self.limiter.release_on_close(session, addr)
        return session


# ---------------------------------------------------------------------------
# unit tests
# ---------------------------------------------------------------------------


class ConnectionLimiterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.limiter = ConnectionLimiter(LimitSettings(max_connections=5, max_connections_per_address=2), self.clock)

    def test_per_address_limit(self) -> None:
        """A third connection from one address is refused while two are open; another address still gets in."""
        self.assertTrue(self.limiter.admit(_addr()))
        self.assertTrue(self.limiter.admit(_addr(port=40001)))
        self.assertFalse(self.limiter.admit(_addr(port=40002)))
        self.assertTrue(self.limiter.admit(_addr("10.0.0.2")))
        self.assertEqual(self.limiter.refused["max_connections_per_address"], 1)
        self.assertEqual((self.limiter.total, self.limiter.open_from("127.0.0.1")), (3, 2))

    def test_total_limit(self) -> None:
        """Past max_connections every address is refused, until one connection closes."""
        for i in range(5):
            self.assertTrue(self.limiter.admit(_addr(f"10.0.0.{i}")))
        self.assertFalse(self.limiter.admit(_addr("10.0.0.9")))
        self.assertEqual(self.limiter.refused["max_connections"], 1)
        self.limiter.release(_addr("10.0.0.0"))
        self.assertTrue(self.limiter.admit(_addr("10.0.0.9")))

    def test_zero_switches_a_limit_off(self) -> None:
        """With both limits at 0, a thousand connections from one address are all admitted."""
        limiter = ConnectionLimiter(LimitSettings(max_connections=0, max_connections_per_address=0), self.clock)
        self.assertTrue(all(limiter.admit(_addr()) for _ in range(1000)))

    def test_release_never_goes_negative(self) -> None:
        """Releasing an address twice, or one never admitted, leaves the counts true."""
        self.limiter.admit(_addr())
        self.limiter.release(_addr())
        self.limiter.release(_addr())
        self.limiter.release(_addr("10.9.9.9"))
        self.assertEqual((self.limiter.total, self.limiter.open_from("127.0.0.1")), (0, 0))
        self.assertEqual(self.limiter.describe()["open"], 0)

    def test_refusals_are_logged_at_most_every_ten_seconds(self) -> None:
        """A flood of refusals logs one warning, then one more ten seconds later naming how many were not logged."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)  # type: ignore[arg-type]
        self.limiter.admit(_addr())
        self.limiter.admit(_addr())
        for _ in range(100):
            self.limiter.admit(_addr())
        self.clock.advance(10)
        self.limiter.admit(_addr())
        warnings = [e for e in observer if e.get("log_namespace", "").startswith("smsc_sim.limits")]
        self.assertEqual(len(warnings), 2)
        self.assertEqual(warnings[1]["unlogged"], 99)
        self.assertEqual(self.limiter.refused["max_connections_per_address"], 101)

    def test_release_on_close(self) -> None:
        """A wrapped protocol releases its slot once, after its own connectionLost, even if that raises."""
        calls: list[str] = []

        class Failing(Protocol):
            def connectionLost(self, reason: Failure | None = None) -> None:
                calls.append("lost")
                raise RuntimeError("boom")

        protocol = Failing()
        self.limiter.admit(_addr())
        self.limiter.release_on_close(protocol, _addr())
        self.assertRaises(RuntimeError, protocol.connectionLost, Failure(ConnectionError()))
        self.assertEqual((calls, self.limiter.total), (["lost"], 0))
        self.assertRaises(RuntimeError, protocol.connectionLost, Failure(ConnectionError()))
        self.assertEqual(self.limiter.total, 0)

    def test_refused_protocol_aborts(self) -> None:
        """The stand-in for a refused connection aborts it at once and writes nothing."""
        transport = StringTransport()
        Refused().makeConnection(transport)
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")

    def test_hosts(self) -> None:
        """Connections are counted by host: IPv4 and IPv6 hosts, a session's host:port peer text."""
        self.assertEqual(address_host(_addr("192.0.2.1", 5)), "192.0.2.1")
        self.assertEqual(address_host(None), "None")
        self.assertEqual(peer_host("192.0.2.1:40001"), "192.0.2.1")
        self.assertEqual(peer_host("::1:40001"), "::1")
        self.assertEqual(peer_host("UNIXAddress('/tmp/s')"), "UNIXAddress('/tmp/s')")


class LimitedFactoryTests(SynchronousTestCase):
    """The proposed wiring on a simulator built on a MemoryReactorClock."""

    def test_sessions_free_their_slot(self) -> None:
        """With a limit of 2 per address, a third connection gets a Refused; once a session ends, one more is admitted."""
        from twisted.internet.testing import MemoryReactorClock

        from smsc_sim.simulator import Simulator

        reactor = MemoryReactorClock()
        config = dataclasses.replace(default_config(), api_endpoint="", seed=0)
        simulator = Simulator(config, reactor)
        limiter = ConnectionLimiter(LimitSettings(max_connections_per_address=2), reactor)
        factory = LimitedFactory(simulator, simulator.instances["SMPP1"], limiter)
        sessions = [factory.buildProtocol(_addr(port=40000 + i)) for i in range(2)]
        self.assertTrue(all(isinstance(s, SMPPSession) for s in sessions))
        self.assertIsInstance(factory.buildProtocol(_addr(port=40010)), Refused)
        for session in sessions:
            session.makeConnection(StringTransport(peerAddress=_addr()))
        sessions[0].connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual(limiter.total, 1)
        self.assertIsInstance(factory.buildProtocol(_addr(port=40011)), SMPPSession)


class BindFailureGuardTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        settings = LimitSettings(bind_failure_delay=1.5, bind_failure_lockout_after=3, bind_failure_lockout=60.0)
        self.guard = BindFailureGuard(settings, self.clock, table_limit=4)

    def test_delay_for_each_failure(self) -> None:
        """Each failed bind is to be answered bind_failure_delay seconds late."""
        self.assertEqual(self.guard.failed("192.0.2.1"), 1.5)

    def test_lockout_after_failures_in_a_row(self) -> None:
        """Three failures in a row lock the address out for 60 s; other addresses are not affected."""
        for _ in range(3):
            self.assertFalse(self.guard.locked("192.0.2.1"))
            self.guard.failed("192.0.2.1")
        self.assertTrue(self.guard.locked("192.0.2.1"))
        self.assertFalse(self.guard.locked("192.0.2.2"))
        self.clock.advance(59.9)
        self.assertTrue(self.guard.locked("192.0.2.1"))
        self.clock.advance(0.1)
        self.assertFalse(self.guard.locked("192.0.2.1"))
        self.assertEqual(self.guard.lockout_refusals, 2)
        self.assertEqual(self.guard.describe()["locked_out"], [])

    def test_success_forgives(self) -> None:
        """A successful bind clears the failures before it."""
        self.guard.failed("192.0.2.1")
        self.guard.failed("192.0.2.1")
        self.guard.succeeded("192.0.2.1")
        self.guard.failed("192.0.2.1")
        self.assertFalse(self.guard.locked("192.0.2.1"))

    def test_sporadic_failures_are_forgotten(self) -> None:
        """Failures more than bind_failure_lockout seconds apart never add up to a lockout."""
        for _ in range(5):
            self.guard.failed("192.0.2.1")
            self.clock.advance(61)
        self.assertFalse(self.guard.locked("192.0.2.1"))

    def test_table_is_bounded(self) -> None:
        """The table keeps the most recent addresses only."""
        for i in range(10):
            self.guard.failed(f"192.0.2.{i}")
        self.assertEqual(self.guard.describe()["tracked_hosts"], 4)

    def test_off_by_default(self) -> None:
        """With the default settings nothing is delayed and nobody is locked out."""
        guard = BindFailureGuard(LimitSettings(), self.clock)
        self.assertEqual([guard.failed("192.0.2.1") for _ in range(100)][-1], 0.0)
        self.assertFalse(guard.locked("192.0.2.1"))


class BackpressureTests(SynchronousTestCase):
    def test_pause_and_resume_reading(self) -> None:
        """The transport pausing the producer stops reading; resuming starts it again; detach unregisters."""
        transport = StringTransport()
        backpressure = Backpressure(transport)
        backpressure.attach()
        self.assertIs(transport.producer, backpressure)
        backpressure.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        backpressure.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        backpressure.pauseProducing()
        backpressure.detach()
        self.assertIsNone(transport.producer)
        self.assertEqual((transport.producerState, backpressure.pauses), ("producing", 2))


# ---------------------------------------------------------------------------
# integration: real sockets on 127.0.0.1
# ---------------------------------------------------------------------------


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _config() -> Config:
    from tests.kannel_harness import with_port

    return with_port(dataclasses.replace(default_config(), seed=0))


def _unsent(transport: Any) -> int:
    """Bytes a TCP transport holds, not yet handed to the kernel."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class RawClient(Protocol):
    """An ESME made of bytes: sends what it is told, keeps what arrives, fires ``lost`` at the end."""

    transport: Any

    def __init__(self, on_connect: Callable[[Any], object] | None = None, expect: int = 0) -> None:
        self.on_connect = on_connect
        self.received = b""
        self.expect = expect
        self.enough: Deferred[bytes] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        if self.on_connect is not None:
            self.on_connect(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.expect and len(self.received) >= self.expect and not self.enough.called:
            self.enough.callback(self.received)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost.callback(None)


def _when(events: Any, kind: str, count: int = 1) -> Deferred[list[Any]]:
    """Fires with the first ``count`` events of ``kind`` published from now on."""
    seen: list[Any] = []
    done: Deferred[list[Any]] = Deferred()

    def subscriber(event: Any) -> None:
        if event.kind == kind and not done.called:
            seen.append(event)
            if len(seen) >= count:
                unsubscribe()
                done.callback(seen)

    unsubscribe = events.subscribe(subscriber)
    return done


def _errors_logged() -> tuple[list[dict[str, Any]], Callable[[], None]]:
    """Collect every event logged at error or critical level (or with a failure) until the returned stop()."""
    bad: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        if "log_failure" in event or event.get("log_level") in (LogLevel.error, LogLevel.critical):
            bad.append(event)

    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    return bad, lambda: globalLogPublisher.removeObserver(cast(ILogObserver, observer))


def _smpplib_bind(host: str, port: int, ssl_context: Any = None) -> tuple[int, int]:
    """In a worker thread: bind_transceiver with smpplib, unbind; the two response statuses."""
    import smpplib.client

    client = smpplib.client.Client(host, port, timeout=10, ssl_context=ssl_context, allow_unknown_opt_params=True)
    client.connect()
    try:
        bound = client.bind_transceiver(system_id="smppclient1", password="password")
        unbound = client.unbind()
        return int(bound.status), int(unbound.status)
    finally:
        client.disconnect()


async def _started(config: Config) -> tuple[Any, str, int]:
    from smsc_sim.service import build_service

    simulator = build_service(config, _reactor())
    simulator.startService()
    await simulator.when_listening()
    host, port = simulator.endpoints()["SMPP1"][0]
    return simulator, host, port


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_limits_on_a_real_listener() -> None:
    """With 3 connections allowed per address, a 4th is reset at once; when one closes, a new one binds."""
    reactor = _reactor()
    simulator, host, _ = await _started(_config())
    limiter = ConnectionLimiter(LimitSettings(max_connections_per_address=3), reactor)
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        LimitedFactory(simulator, simulator.instances["SMPP1"], limiter)
    )
    endpoint = TCP4ClientEndpoint(reactor, host, port.getHost().port)
    try:
        first = [RawClient() for _ in range(3)]
        for client in first:
            await connectProtocol(endpoint, client)
        extra = RawClient()
        await connectProtocol(endpoint, extra)
        await extra.lost.addTimeout(WAIT, reactor)
        assert extra.received == b""
        assert limiter.refused["max_connections_per_address"] == 1
        closed = _when(simulator.events, "session_closed")
        first[0].transport.loseConnection()
        await closed.addTimeout(WAIT, reactor)
        late = RawClient(lambda t: t.write(wire.bind()), expect=16)
        await connectProtocol(endpoint, late)
        answer = await late.enough.addTimeout(WAIT, reactor)
        assert wire.headers(answer)[0] == (0x80000009, 0, 1)
        for client in first[1:] + [late]:
            client.transport.abortConnection()
            await client.lost.addTimeout(WAIT, reactor)
    finally:
        await port.stopListening()
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_connection_storm() -> None:
    """1,000 connections opened and dropped fast (some mid-PDU, some bound): the simulator stays up and binds."""
    reactor = _reactor()
    simulator, host, port = await _started(_config())
    instance = simulator.instances["SMPP1"]
    endpoint = TCP4ClientEndpoint(reactor, host, port)
    bad, stop_watching = _errors_logged()
    styles: list[Callable[[Any], object]] = [
        lambda t: t.abortConnection(),
        lambda t: t.loseConnection(),
        lambda t: (t.write(wire.bind()[:20]), t.loseConnection()),
        lambda t: (t.write(wire.bind() + wire.frame(0x15, 2)), t.abortConnection()),
        lambda t: (t.write(b"\xff" * 16), t.loseConnection()),
    ]
    try:
        total = 1000
        all_closed = _when(simulator.events, "session_closed", total)
        for start in range(0, total, 50):  # the listen backlog is 50
            batch = [RawClient(styles[i % len(styles)]) for i in range(start, start + 50)]
            await DeferredList([connectProtocol(endpoint, c) for c in batch], fireOnOneErrback=True, consumeErrors=True)
            await DeferredList([c.lost for c in batch]).addTimeout(WAIT, reactor)
        await all_closed.addTimeout(WAIT, reactor)
        assert instance.sessions == {}
        leaked = [c for c in reactor.getDelayedCalls() if isinstance(getattr(c.func, "__self__", None), SMPPSession)]
        assert leaked == []
        assert await deferToThread(_smpplib_bind, host, port) == (0, 0)
        assert [e.get("log_format") for e in bad] == []
    finally:
        stop_watching()
        await simulator.stopService()


async def _flooded_session(simulator: Any, host: str, port: int, count: int) -> tuple[Any, RawClient, Any]:
    """A client that never reads sends ``count`` enquire_links; small socket buffers on the answer path."""
    reactor = _reactor()
    connected = _when(simulator.events, "connection")

    def never_read(transport: Any) -> None:
        transport.pauseProducing()
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    client = RawClient(never_read, expect=16 * count)
    await connectProtocol(TCP4ClientEndpoint(reactor, host, port), client)
    (event,) = await connected.addTimeout(WAIT, reactor)
    session = simulator.instances["SMPP1"].sessions[event.data["session_id"]]
    server = session.transport
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return session, client, server


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_without_backpressure_a_client_that_never_reads_grows_the_buffer() -> None:
    """
    The problem: a client sends 512 KiB of enquire_links and never reads; a
    session that keeps reading ends up holding nearly all 512 KiB of answers
    in memory (the kernel buffers are kept small, as they fill on a slow link).
    """
    reactor = _reactor()
    simulator, host, port = await _started(_config())
    count = 32_768
    try:
        session, client, server = await _flooded_session(simulator, host, port, count)
        if server.producer is not None:
            server.unregisterProducer()  # show what happens without it
        read_all = _when(simulator.events, "pdu_in", count)
        client.transport.write(b"".join(wire.frame(0x15, i + 1) for i in range(count)))
        await read_all.addTimeout(WAIT, reactor)
        assert _unsent(server) > 256 * 1024
        client.transport.abortConnection()
        await client.lost.addTimeout(WAIT, reactor)
    finally:
        await simulator.stopService()


class _Watched(Backpressure):
    """Backpressure that fires ``paused_once`` the first time reading is paused."""

    def __init__(self, transport: Any) -> None:
        super().__init__(transport)
        self.paused_once: Deferred[None] = Deferred()

    def pauseProducing(self) -> None:
        super().pauseProducing()
        if not self.paused_once.called:
            self.paused_once.callback(None)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_backpressure_bounds_the_buffer_and_resumes() -> None:
    """
    With Backpressure registered, the same flood stops the session reading at
    64 KiB of unsent answers (the ESME's requests wait in the sockets); once
    the ESME reads, every enquire_link is answered.
    """
    reactor = _reactor()
    simulator, host, port = await _started(_config())
    count = 32_768
    try:
        session, client, server = await _flooded_session(simulator, host, port, count)
        if server.producer is not None:
            server.unregisterProducer()
        backpressure = _Watched(server)
        backpressure.attach()
        client.transport.write(b"".join(wire.frame(0x15, i + 1) for i in range(count)))
        await backpressure.paused_once.addTimeout(WAIT, reactor)
        assert server not in reactor.getReaders()
        assert _unsent(server) < 160 * 1024
        assert session.counters["pdus_in"] < count
        client.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        client.transport.resumeProducing()
        answers = await client.enough.addTimeout(WAIT, reactor)
        assert wire.headers(answers[-16:]) == [(0x80000015, 0, count)]
        assert backpressure.pauses >= 1
        backpressure.detach()
        client.transport.abortConnection()
        await client.lost.addTimeout(WAIT, reactor)
    finally:
        await simulator.stopService()
