"""
A bind decided by a shared quota that answers later (``cluster_store``):
the session and the core, with a stand-in for Redis whose answers the test
gives, on a Clock.  Without a shared quota nothing here applies: ``bind``
answers at once, as the rest of the suite checks.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import provider

from smsc_sim.config import AccountSettings, Config, CoreSettings, SessionSettings
from smsc_sim.contracts import Reply
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.events import EventBus
from smsc_sim.smpp.constants import CommandId, CommandStatus
from smsc_sim.smpp.pdu import PDU, make_pdu
from tests import wire
from tests.test_core_fakes import FakeSession, ScriptedScenario, instances
from tests.test_session import SessionTestCase


class ManualSlots:
    """An IBindSlots whose acquire answers when the test says; releases and ghost holds are recorded."""

    def __init__(self) -> None:
        self.pending: list[Deferred[bool]] = []
        self.calls: list[tuple[Any, ...]] = []

    def acquire(self, system_id: str, holder: str, limit: int) -> Deferred[bool]:
        self.calls.append(("acquire", system_id, holder, limit))
        d: Deferred[bool] = Deferred()
        self.pending.append(d)
        return d

    def release(self, system_id: str, holder: str) -> Deferred[None]:
        self.calls.append(("release", system_id, holder))
        return succeed(None)

    def hold_ghost(self, system_id: str, holder: str, hold: float) -> Deferred[None]:
        self.calls.append(("ghost", system_id, holder, hold))
        return succeed(None)

    def count(self, system_id: str) -> Deferred[int]:
        return succeed(0)


class CoreTests(SynchronousTestCase):
    """The core's side: the quota decision, and what follows when the session or Redis fails."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.slots = ManualSlots()
        config = Config(
            instances=instances(),
            accounts=(AccountSettings("esme", "secret", throughput=0, max_binds=2),),
            session=SessionSettings(),
            core=CoreSettings(ghost_bind_hold=30.0),
        )
        self.core = SMSCCore(
            "NA", self.clock, config, config.clusters()["NA"], ScriptedScenario(), EventBus(self.clock),
            bind_slots=self.slots, slot_owner="host:1:ab",
        )  # fmt: skip
        self.session = FakeSession(7, "SMPP1")

    def bind(self) -> list[Reply]:
        pdu = make_pdu(CommandId.bind_transceiver, 1, system_id="esme", password="secret", interface_version=0x34)
        answer = self.core.bind(self.session, pdu)
        assert isinstance(answer, Deferred)
        replies: list[Reply] = []
        answer.addCallback(replies.append)
        return replies

    def status(self, replies: list[Reply]) -> int | None:
        [reply] = replies
        return reply.pdu.command_status if reply.pdu is not None else None

    def test_slot_taken_accepts_and_registers(self) -> None:
        """A slot taken in Redis: bind_resp 0, the bind is registered, under this process's holder name."""
        replies = self.bind()
        self.assertEqual(replies, [])
        self.assertEqual(self.slots.calls, [("acquire", "esme", "host:1:ab/7", 2)])
        self.slots.pending[0].callback(True)
        self.assertEqual(self.status(replies), 0)
        self.assertIsNotNone(self.core.binds.entry(7))

    def test_slot_refused_is_ralybnd(self) -> None:
        """Every slot taken across the cluster: ESME_RALYBND, nothing registered."""
        replies = self.bind()
        self.slots.pending[0].callback(False)
        self.assertEqual(self.status(replies), CommandStatus.ESME_RALYBND)
        self.assertIsNone(self.core.binds.entry(7))

    def test_redis_error_is_rsyserr(self) -> None:
        """Redis answers with an error: ESME_RSYSERR."""
        replies = self.bind()
        self.slots.pending[0].errback(ConnectionError("connection refused"))
        self.assertEqual(self.status(replies), CommandStatus.ESME_RSYSERR)

    def test_redis_silent_is_rsyserr_after_two_seconds(self) -> None:
        """Redis does not answer at all: ESME_RSYSERR after 2 s, not a bind that hangs."""
        replies = self.bind()
        self.clock.advance(1.9)
        self.assertEqual(replies, [])
        self.clock.advance(0.1)
        self.assertEqual(self.status(replies), CommandStatus.ESME_RSYSERR)

    def test_the_log_says_why_a_bind_was_refused(self) -> None:
        """The one log line names the account and the reason in words: the 2 s without an answer, or Redis's error."""
        lines: list[str] = []

        @provider(ILogObserver)
        def observer(event: LogEvent) -> None:
            lines.append(formatEvent(event))

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.bind()
        self.clock.advance(2.0)
        self.slots.pending.clear()
        self.session = FakeSession(8, "SMPP1")
        self.bind()
        self.slots.pending[0].errback(ConnectionError("connection refused"))
        refused = [line for line in lines if line.startswith("bind refused")]
        self.assertEqual(
            refused,
            [
                "bind refused for esme: the cluster store did not answer (no answer within 2 s)",
                "bind refused for esme: the cluster store did not answer (connection refused)",
            ],
        )

    def test_connection_lost_while_deciding_gives_the_slot_back(self) -> None:
        """The ESME left before Redis answered: no answer is written and the slot taken is released."""
        replies = self.bind()
        self.core.connection_lost(self.session, clean=False)
        self.slots.pending[0].callback(True)
        self.assertEqual([reply.pdu for reply in replies], [None])
        self.assertIsNone(self.core.binds.entry(7))
        self.assertEqual(self.slots.calls[-1], ("release", "esme", "host:1:ab/7"))

    def test_unbind_releases_and_drop_holds_a_ghost(self) -> None:
        """A clean unbind releases the slot; a drop turns it into a ghost for ghost_bind_hold."""
        self.bind()
        self.slots.pending[0].callback(True)
        self.core.unbound(self.session)
        self.assertEqual(self.slots.calls[-1], ("release", "esme", "host:1:ab/7"))
        other = FakeSession(8, "SMPP2")
        pdu = make_pdu(CommandId.bind_transceiver, 1, system_id="esme", password="secret", interface_version=0x34)
        self.core.bind(other, pdu)
        self.slots.pending[1].callback(True)
        self.core.connection_lost(other, clean=False)
        self.assertEqual(self.slots.calls[-1], ("ghost", "esme", "host:1:ab/8", 30.0))


class LateBindCore:
    """A core whose bind answers when the test fires it."""

    def __init__(self) -> None:
        self.pending: list[tuple[PDU, Deferred[Reply]]] = []
        self.lost: list[bool] = []

    def bind(self, session: Any, pdu: PDU) -> Deferred[Reply]:
        d: Deferred[Reply] = Deferred()
        self.pending.append((pdu, d))
        return d

    def connection_lost(self, session: Any, clean: bool) -> None:
        self.lost.append(clean)

    def unbound(self, session: Any) -> None:
        pass


class SessionTests(SessionTestCase):
    """The session's side: it answers when the core has decided, and holds one bind at a time."""

    def setUp(self) -> None:
        super().setUp()
        self.late = LateBindCore()
        self.session.core = self.late  # type: ignore[assignment]

    def test_answer_written_when_decided(self) -> None:
        """Nothing is written until the quota is decided; then bind_transceiver_resp, and the session is bound."""
        self.session.dataReceived(wire.bind(0x09))
        self.assertEqual(self.sent(), [])
        pdu, decided = self.late.pending[0]
        decided.callback(Reply(make_pdu(CommandId.bind_transceiver_resp, pdu.sequence_number, system_id="SMPP1")))
        self.assertEqual(self.sent(), [(0x80000009, 0, 1)])
        self.assertEqual(self.session.system_id, "smppclient1")

    def test_second_bind_while_deciding_is_ralybnd(self) -> None:
        """A second bind sent before the first one's answer gets ESME_RALYBND at once; the first is answered later."""
        self.session.dataReceived(wire.bind(0x09, 1))
        self.session.dataReceived(wire.bind(0x09, 2))
        self.assertEqual(self.sent(), [(0x80000009, CommandStatus.ESME_RALYBND, 2)])
        self.assertEqual(len(self.late.pending), 1)
        pdu, decided = self.late.pending[0]
        decided.callback(Reply(make_pdu(CommandId.bind_transceiver_resp, 1, system_id="SMPP1")))
        self.assertEqual(self.sent(), [(0x80000009, 0, 1)])

    def test_connection_gone_before_the_answer(self) -> None:
        """The connection ended while the quota was decided: the late answer writes nothing and raises nothing."""
        self.session.dataReceived(wire.bind(0x09))
        self.session.connectionLost()
        self.transport.clear()
        pdu, decided = self.late.pending[0]
        decided.callback(Reply(make_pdu(CommandId.bind_transceiver_resp, 1, system_id="SMPP1")))
        self.assertEqual(self.transport.value(), b"")
