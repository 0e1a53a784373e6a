"""
Closing a session: every close has a deadline, and an unbind loses no response.

A close (FIN) waits for the peer to read what was written; a peer that
stopped reading never does, so after ``session.close_timeout`` the
connection is reset and its bind leaves the account's quota.  An unbind
from the ESME is answered only once every request received before it has
its response, whatever delays those responses (scenario latency, instance
latency, the durable store's commit).

The unit tests drive a real core on a ``task.Clock`` through a
StringTransport; the integration tests use real sockets on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
from pathlib import Path
from typing import Any, TypedDict

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionAborted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, SessionSettings
from smsc_sim.contracts import Verdict
from smsc_sim.events import EventBus
from smsc_sim.session import SessionState, SMPPSession
from smsc_sim.smpp.constants import CommandStatus
from tests import wire
from tests.test_core_fakes import Harness, ScriptedScenario
from tests.test_durable import Process
from tests.test_limits import WAIT, RawClient, _config, _reactor, _started, _when
from tests.test_session import StubInstance

RALYBND = int(CommandStatus.ESME_RALYBND)


class Credentials(TypedDict):
    """The keyword arguments of :func:`tests.wire.bind` naming the account."""

    system_id: str
    password: str


ESME: Credentials = {"system_id": "esme", "password": "secret"}


class NeverDrained(StringTransport):
    """
    A transport whose peer stopped reading: ``loseConnection`` only marks it
    closing (the last octets never leave); ``abortConnection`` ends it, and the
    protocol hears of it as it would from the reactor.
    """

    aborted = False
    protocol: Any = None

    def abortConnection(self) -> None:
        self.aborted = True
        self.disconnected = True
        if self.protocol is not None:
            self.protocol.connectionLost(Failure(ConnectionAborted()))


class CloseTestCase(SynchronousTestCase):
    """Sessions on never-drained transports, in front of a real core on a Clock."""

    settings = SessionSettings(
        session_init_timeout=30.0,
        enquire_link_interval=30.0,
        response_timeout=10.0,
        inactivity_timeout=600.0,
        close_timeout=5.0,
    )
    latency = 0.0
    #: per-rule latency of the scenario's verdict
    rule_latency = 0.0

    def setUp(self) -> None:
        self.harness = Harness(
            scenario=ScriptedScenario(answer=Verdict(latency=self.rule_latency)),
            accounts=(AccountSettings("esme", "secret", throughput=0, max_binds=1),),
        )
        self.clock = self.harness.clock
        self.sessions: list[SMPPSession] = []

    def connect(self, core: Any = None, clock: Clock | None = None) -> tuple[SMPPSession, NeverDrained]:
        instance = StubInstance()
        instance.latency = self.latency
        instance.window = (2000, 0x14)
        session = SMPPSession(
            core=core or self.harness.core,
            instance=instance,
            settings=self.settings,
            clock=clock or self.clock,
            events=EventBus(clock or self.clock),
            session_id=len(self.sessions) + 1,
        )
        transport = NeverDrained(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000 + len(self.sessions)))
        session.makeConnection(transport)
        transport.protocol = session
        self.sessions.append(session)
        return session, transport

    def bind_status(self, session: SMPPSession, transport: StringTransport) -> int:
        session.dataReceived(wire.bind(**ESME))
        (header,) = wire.headers(transport.value())
        transport.clear()
        return header[1]

    def tearDown(self) -> None:
        for session in self.sessions:
            if session.state is not SessionState.CLOSED:
                session.connectionLost()
        self.assertEqual([c for c in self.clock.getDelayedCalls() if isinstance(c.func.__self__, SMPPSession)], [])  # type: ignore[attr-defined]


class CloseDeadlineTests(CloseTestCase):
    def test_unanswered_enquire_link_close_is_reset_and_frees_the_bind(self) -> None:
        """
        A bound ESME that stops reading: its enquire_link goes unanswered and
        the session closes; the close never completes, so close_timeout (5 s)
        later the connection is reset, and the account (1 bind allowed) binds again.
        """
        hung, hung_transport = self.connect()
        self.assertEqual(self.bind_status(hung, hung_transport), 0)
        self.clock.advance(30.0)  # idle: enquire_link sent
        self.assertEqual([h[0] for h in wire.headers(hung_transport.value())], [0x15])
        self.clock.advance(10.0)  # unanswered: closed
        self.assertTrue(hung_transport.disconnecting)
        self.assertFalse(hung_transport.aborted)
        second, second_transport = self.connect()
        self.assertEqual(self.bind_status(second, second_transport), RALYBND)  # still counted while closing
        self.clock.advance(4.9)
        self.assertFalse(hung_transport.aborted)
        self.clock.advance(0.1)
        self.assertTrue(hung_transport.aborted)
        self.assertIs(hung.state, SessionState.CLOSED)
        third, third_transport = self.connect()
        self.assertEqual(self.bind_status(third, third_transport), 0)

    def test_every_kind_of_close_has_the_deadline(self) -> None:
        """
        The session-init timeout, a bad command_length and the ESME's own
        unbind all close with the same deadline: reset 5 s after the close
        if the peer has not taken it.
        """
        never_bound, t1 = self.connect()
        self.clock.advance(30.0)
        bad_length, t2 = self.connect()
        bad_length.dataReceived(b"\x00\x00\x00\x08\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x07")
        unbound, t3 = self.connect()
        self.assertEqual(self.bind_status(unbound, t3), 0)
        unbound.dataReceived(wire.frame(0x06, 2))
        self.assertEqual(wire.headers(t3.value()), [(0x80000006, 0, 2)])
        for transport in (t1, t2, t3):
            self.assertTrue(transport.disconnecting)
            self.assertFalse(transport.aborted)
        self.clock.advance(5.0)
        self.assertEqual([t.aborted for t in (t1, t2, t3)], [True, True, True])
        self.assertEqual([s.state for s in self.sessions], [SessionState.CLOSED] * 3)

    def test_a_close_the_peer_takes_is_not_reset(self) -> None:
        """A peer that reads and closes within the deadline gets an ordinary close: no reset later."""
        session, transport = self.connect()
        self.assertEqual(self.bind_status(session, transport), 0)
        session.dataReceived(wire.frame(0x06, 2))
        self.assertTrue(transport.disconnecting)
        session.connectionLost()  # the peer read the unbind_resp and the FIN
        self.clock.advance(10.0)
        self.assertFalse(transport.aborted)


def _pipelined(count: int, first: int = 2) -> bytes:
    """``count`` submit_sm (sequences first..) and an unbind after them, as one write."""
    submits = b"".join(wire.submit_sm(sequence=first + i, registered_delivery=0) for i in range(count))
    return submits + wire.frame(0x06, first + count)


class UnbindAfterRepliesTests(CloseTestCase):
    rule_latency = 0.3

    def assert_answers_then_unbind(self, transport: StringTransport, count: int) -> None:
        answers = wire.headers(transport.value())
        self.assertEqual(answers, [(0x80000004, 0, 2 + i) for i in range(count)] + [(0x80000006, 0, 2 + count)])

    def test_scenario_latency_answers_every_submit_before_unbind_resp(self) -> None:
        """
        With ``latency: 300ms`` in the scenario, 5 submit_sm then unbind in one
        write: after 300 ms the ESME reads 5 submit_sm_resp with status 0, then
        the unbind_resp, then the connection closes; none before 300 ms.
        """
        session, transport = self.connect()
        self.assertEqual(self.bind_status(session, transport), 0)
        session.dataReceived(_pipelined(5))
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.3)
        self.assert_answers_then_unbind(transport, 5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.harness.core.store), 5)

    def test_instance_latency_with_a_longer_rule_delay(self) -> None:
        """
        An instance latency of 200 ms added to the rule's 300 ms: the
        submit_sm_resp come after 500 ms, and the unbind_resp (which has only
        the 200 ms) still comes after them, not before.
        """
        self.latency = 0.2
        session, transport = self.connect()
        session.dataReceived(wire.bind(**ESME))
        self.clock.advance(0.2)
        transport.clear()
        session.dataReceived(_pipelined(3))
        self.clock.advance(0.2)
        self.assertEqual(transport.value(), b"")  # the unbind_resp waits for the submits
        self.clock.advance(0.3)
        self.assert_answers_then_unbind(transport, 3)
        self.assertTrue(transport.disconnecting)

    def test_sqlite_store_answers_every_submit_before_unbind_resp(self) -> None:
        """
        With the durable sqlite store, whose submit_sm_resp wait for the commit
        of the next clock turn: 20 submit_sm then unbind in one write get 20
        submit_sm_resp status 0, then unbind_resp; all 20 are in the file.
        """
        path = str(Path(self.mktemp() + ".sqlite"))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        process = Process(path)
        self.addCleanup(process.journal.close)
        session, transport = self.connect(core=process.core, clock=process.clock)
        session.dataReceived(wire.bind(**ESME))
        transport.clear()
        session.dataReceived(_pipelined(20))
        process.clock.advance(0.01)
        self.assert_answers_then_unbind(transport, 20)
        self.assertEqual(process.journal.stored("NA"), 20)
        self.assertTrue(transport.disconnecting)
        session.connectionLost()
        process.core.stop()
        self.clock = process.clock  # tearDown checks this clock has no session timer left

    def test_a_close_waits_for_replies_still_due(self) -> None:
        """
        The SMSC's own close (here for a bad command_length) while accepted
        submits wait for their 300 ms: the generic_nack goes at once, the
        submit_sm_resp at their time, then the connection closes; none is dropped.
        """
        session, transport = self.connect()
        self.assertEqual(self.bind_status(session, transport), 0)
        submits = b"".join(wire.submit_sm(sequence=2 + i, registered_delivery=0) for i in range(3))
        session.dataReceived(submits + b"\x00\x00\x00\x08\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x09")
        self.assertEqual(wire.headers(transport.value()), [(0x80000000, 0x02, 9)])
        self.assertFalse(transport.disconnecting)  # the close waits for the three responses
        transport.clear()
        self.clock.advance(0.3)
        self.assertEqual(wire.headers(transport.value()), [(0x80000004, 0, 2 + i) for i in range(3)])
        self.assertTrue(transport.disconnecting)


# ---------------------------------------------------------------------------
# real sockets on 127.0.0.1
# ---------------------------------------------------------------------------


def _one_bind_config(**session: Any) -> Any:
    config = _config()
    accounts = tuple(dataclasses.replace(a, max_binds=1) for a in config.accounts)
    return dataclasses.replace(
        config, accounts=accounts, session=dataclasses.replace(config.session, **session), api_endpoint=""
    )


def _bind_status(host: str, port: int) -> int:
    """In a worker thread: bind_transceiver on a raw socket; the bind_resp status."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(wire.bind())
        data = b""
        while len(data) < 16:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before bind_resp")
            data += chunk
        status: int = struct.unpack(">I", data[8:12])[0]
        sock.sendall(wire.frame(0x06, 2))
        return status


def _closed(events: Any, session_id: int) -> Deferred[None]:
    """Fires when the session ``session_id`` has ended."""
    done: Deferred[None] = Deferred()

    def subscriber(event: Any) -> None:
        if event.kind == "session_closed" and event.data["session_id"] == session_id and not done.called:
            unsubscribe()
            done.callback(None)

    unsubscribe = events.subscribe(subscriber)
    return done


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_a_client_whose_receive_buffer_is_full_is_reset_and_its_account_binds_again() -> None:
    """
    An ESME binds (its account allows 1 bind), floods enquire_links and never
    reads: its receive buffer fills, the session stops reading, its own
    enquire_link goes unanswered and it closes; the close cannot complete, so
    close_timeout later the connection is reset and the account binds again.
    """
    reactor = _reactor()
    config = _one_bind_config(enquire_link_interval=0.3, response_timeout=0.3, close_timeout=0.5)
    simulator, host, port = await _started(config)
    count = 32_768

    def never_read(transport: Any) -> None:
        transport.pauseProducing()
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    client = RawClient(never_read)
    client.transport = None
    try:
        connected = _when(simulator.events, "connection")
        await connectProtocol(TCP4ClientEndpoint(reactor, host, port), client)
        (event,) = await connected.addTimeout(WAIT, reactor)
        session = simulator.instances["SMPP1"].sessions[event.data["session_id"]]
        session.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        closed = _closed(simulator.events, session.session_id)
        bound = _when(simulator.events, "bind")
        client.transport.write(wire.bind() + b"".join(wire.frame(0x15, i + 2) for i in range(count)))
        await bound.addTimeout(WAIT, reactor)
        assert await deferToThread(_bind_status, host, port) == RALYBND  # bound and counted
        await closed.addTimeout(5, reactor)
        assert session.state is SessionState.CLOSED
        assert await deferToThread(_bind_status, host, port) == 0
    finally:
        if client.transport is not None:
            if client.transport.connected:
                client.transport.abortConnection()  # on a failure too: stopService would wait for it
            await client.lost.addTimeout(WAIT, reactor)
        await simulator.stopService()


def _pipeline_and_count(host: str, port: int, count: int) -> list[tuple[int, int, int]]:
    """In a worker thread: bind, ``count`` submit_sm and an unbind in one write; every header read until EOF."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(wire.bind())
        data = b""
        while len(data) < 16:
            data += sock.recv(4096)
        sock.sendall(_pipelined(count))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return wire.headers(data)


SLOW_ACKS = """\
name: slow-acks
throttle: off
latency: 300ms
limits:
  throughput: 0
window:
  size: 1000
"""


@pytest.mark.integration
@pytest.mark.parametrize("store", ["latency", "sqlite"])
@pytest_twisted.ensureDeferred
async def test_a_thousand_pipelined_submits_then_unbind(store: str, tmp_path: Path) -> None:
    """
    1,000 submit_sm and an unbind in one write, with a 300 ms scenario latency
    or with the sqlite store: the ESME reads 1,000 submit_sm_resp with status
    0, one per sequence number, all before the unbind_resp, then the close.
    """
    reactor = _reactor()
    scenario = tmp_path / "slow-acks.yaml"
    if store == "latency":
        scenario.write_text(SLOW_ACKS)
    else:
        scenario.write_text(SLOW_ACKS.replace("latency: 300ms", "latency: 0"))
    config = dataclasses.replace(_config(), api_endpoint="", scenario=str(scenario))
    if store == "sqlite":
        config = dataclasses.replace(config, store=f"sqlite:{tmp_path / 'store.sqlite'}")
    simulator, host, port = await _started(config)
    try:
        count = 1000
        headers = await deferToThread(_pipeline_and_count, host, port, count)
        assert headers[-1] == (0x80000006, 0, 2 + count)
        answers = headers[:-1]
        assert sorted(seq for _, _, seq in answers) == list(range(2, 2 + count))
        assert {(command, status) for command, status, _ in answers} == {(0x80000004, 0)}
    finally:
        await simulator.stopService()
    del reactor
