"""
The core's bind decisions and its read-only views, each built alone from the
few parts it uses (a ``task.Clock``, an in-memory bind registry, counters),
with no :class:`~smsc_sim.core.smsc.SMSCCore` around them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, CoreSettings, InstanceSettings, LimitSettings
from smsc_sim.contracts import Event, IScenario, Reply
from smsc_sim.core.accounts import Accounts
from smsc_sim.core.bind_decisions import BindDecisions
from smsc_sim.core.binds import BindEntry, BindRegistry
from smsc_sim.core.inspection import Inspection
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.router import Router
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.core.timeline import Timeline
from smsc_sim.events import EventBus
from smsc_sim.limits import BindFailureGuard
from smsc_sim.smpp.constants import BindType, CommandId, CommandStatus
from smsc_sim.smpp.pdu import make_pdu
from tests.test_cluster_binds_async import ManualSlots
from tests.test_core_fakes import T0, FakeSession, ScriptedScenario


@dataclass(frozen=True)
class Limits:
    """A scenario's ``limits`` block."""

    max_binds: int | None = None
    throughput: float | None = None


class BindParts:
    """A :class:`BindDecisions` for cluster NA (instance SMPP1), account ``esme``/``secret`` with a quota of 2."""

    def __init__(
        self, ghost_bind_hold: float = 30.0, limits: LimitSettings = LimitSettings(), slots: ManualSlots | None = None
    ) -> None:
        self.clock = Clock()
        self.clock.rightNow = T0
        self.events: list[Event] = []
        bus = EventBus(self.clock)
        bus.subscribe(self.events.append)
        self.scenario = ScriptedScenario()
        self.flushed: list[str] = []
        self.counters: Counter[str] = Counter()
        self.refusals: Counter[int] = Counter()
        self.decisions = BindDecisions(
            cluster="NA",
            clock=self.clock,
            instances={"SMPP1": InstanceSettings("SMPP1", ("tcp:0",), cluster="NA", system_id="SMSC1")},
            scenario=self.current,
            accounts=Accounts([AccountSettings("esme", "secret", max_binds=2)]),
            binds=BindRegistry(self.clock),
            guard=BindFailureGuard(limits, self.clock),
            events=bus,
            flush=self.flushed.append,
            counters=self.counters,
            refusals=self.refusals,
            ghost_bind_hold=ghost_bind_hold,
            slots=slots,
            slot_owner="p1",
            slot_timeout=2.0,
        )
        self._ids = 0

    def current(self) -> IScenario:
        return self.scenario

    def bind(self, command: int = CommandId.bind_transceiver, password: str = "secret") -> tuple[FakeSession, Reply]:
        self._ids += 1
        session = FakeSession(self._ids, "SMPP1")
        pdu = make_pdu(command, 1, system_id="esme", password=password, interface_version=0x34)
        reply = self.decisions.bind(session, pdu)
        assert isinstance(reply, Reply)
        return session, reply

    def bind_later(self) -> Deferred[Reply]:
        self._ids += 1
        pdu = make_pdu(CommandId.bind_transceiver, 1, system_id="esme", password="secret", interface_version=0x34)
        reply = self.decisions.bind(FakeSession(self._ids, "SMPP1"), pdu)
        assert isinstance(reply, Deferred)
        return reply

    def status(self, reply: Reply) -> int:
        assert reply.pdu is not None
        return reply.pdu.command_status


class BindDecisionsTests(SynchronousTestCase):
    def test_third_bind_over_a_quota_of_two_is_refused(self) -> None:
        """
        With a quota of 2, two binds get bind_transceiver_resp naming the instance; the third gets
        ESME_RALYBND (0x05) and a bind_refused event.
        """
        parts = BindParts()
        replies = [parts.bind()[1] for _ in range(3)]
        self.assertEqual([parts.status(r) for r in replies], [0, 0, 0x05])
        first = replies[0].pdu
        assert first is not None
        self.assertEqual((first.command_id, first.params["system_id"]), (CommandId.bind_transceiver_resp, "SMSC1"))
        self.assertEqual(replies[2].pdu.command_id, CommandId.bind_transceiver_resp)  # type: ignore[union-attr]
        [refused] = [e for e in parts.events if e.kind == "bind_refused"]
        self.assertEqual(
            (refused.data["status"], refused.data["reason"]), (CommandStatus.ESME_RALYBND, "bind quota reached")
        )
        self.assertEqual((parts.counters["binds"], dict(parts.refusals)), (2, {CommandStatus.ESME_RALYBND: 1}))

    def test_a_switched_scenario_counts_at_the_next_bind(self) -> None:
        """
        The quota is read from the scenario deciding now: after a switch to one whose limits allow 3
        binds, a third bind is accepted.
        """
        parts = BindParts()
        parts.bind()
        parts.bind()
        parts.scenario = ScriptedScenario(limits=Limits(max_binds=3))
        self.assertEqual(parts.status(parts.bind()[1]), 0)
        self.assertEqual(parts.status(parts.bind()[1]), CommandStatus.ESME_RALYBND)

    def test_a_dropped_bind_holds_its_slot_until_the_ghost_hold_ends(self) -> None:
        """
        A connection dropped without unbind keeps its slot for ghost_bind_hold (30 s): a new bind is
        refused until then, accepted after.
        """
        parts = BindParts(ghost_bind_hold=30.0)
        dropped, _ = parts.bind()
        parts.bind()
        parts.decisions.connection_lost(dropped, clean=False)
        self.assertEqual(parts.status(parts.bind()[1]), CommandStatus.ESME_RALYBND)
        parts.clock.advance(30.0)
        self.assertEqual(parts.status(parts.bind()[1]), 0)

    def test_a_clean_unbind_frees_the_slot_at_once(self) -> None:
        """After an unbind the account's slot is free: a new bind is accepted with no wait."""
        parts = BindParts()
        first, _ = parts.bind()
        parts.bind()
        parts.decisions.unbound(first)
        self.assertEqual(parts.status(parts.bind()[1]), 0)

    def test_a_receiver_bind_sends_pending_deliveries_once_its_resp_is_written(self) -> None:
        """
        A bind_receiver's pending deliveries are flushed once its bind_receiver_resp is written, not
        before; a transmitter flushes nothing.
        """
        parts = BindParts()
        _, transmitter = parts.bind(CommandId.bind_transmitter)
        self.assertIsNone(transmitter.on_sent)
        _, receiver = parts.bind(CommandId.bind_receiver)
        self.assertEqual(parts.flushed, [])
        assert receiver.on_sent is not None
        receiver.on_sent()
        self.assertEqual(parts.flushed, ["esme"])

    def test_wrong_passwords_are_held_back_then_locked_out(self) -> None:
        """
        A wrong password gets ESME_RINVPASWD held back bind_failure_delay (1 s); after 2 in a row even
        the right one gets ESME_RBINDFAIL.
        """
        parts = BindParts(limits=LimitSettings(bind_failure_delay=1.0, bind_failure_lockout_after=2))
        wrong = [parts.bind(password="wrong")[1] for _ in range(2)]
        self.assertEqual([(parts.status(r), r.delay) for r in wrong], [(CommandStatus.ESME_RINVPASWD, 1.0)] * 2)
        self.assertEqual(parts.status(parts.bind()[1]), CommandStatus.ESME_RBINDFAIL)
        self.assertEqual(parts.counters["binds"], 0)


    def test_a_shared_quota_decides_and_an_unanswered_store_is_a_system_error(self) -> None:
        """
        With the quota shared between processes, a taken slot is a bind_resp with status 0, a refused
        one ESME_RALYBND, and a store that does not answer within slot_timeout (2 s) ESME_RSYSERR.
        """
        slots = ManualSlots()
        parts = BindParts(slots=slots)
        answers: list[int] = []
        for _ in range(3):
            parts.bind_later().addCallback(lambda reply: answers.append(parts.status(reply)))
        self.assertEqual(slots.calls[0], ("acquire", "esme", "p1/1", 2))
        slots.pending[0].callback(True)
        slots.pending[1].callback(False)
        parts.clock.advance(2.0)
        self.assertEqual(answers, [0, CommandStatus.ESME_RALYBND, CommandStatus.ESME_RSYSERR])

def record(key: str, submit_time: float) -> MessageRecord:
    return MessageRecord(key, key, 1, "esme", "SMPP1", 1, submit_time)


class ViewParts:
    """An :class:`Inspection` of cluster NA over a store, a bind registry and counters of its own."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.rightNow = T0
        self.binds = BindRegistry(self.clock)
        self.store = MessageStore(100, 60.0, self.clock.seconds)
        timeline = Timeline(self.clock)
        events = EventBus(self.clock)
        scenario: Any = ScriptedScenario()
        router = Router(self.clock, timeline, self.binds, CoreSettings(), events, lambda: scenario)
        lifecycle = Lifecycle(self.clock, timeline, self.store, router, events, lambda _: None)
        self.counters: Counter[str] = Counter()
        self.submit_statuses: Counter[int] = Counter()
        self.bind_refusals: Counter[int] = Counter()
        self.view = Inspection(
            cluster="NA",
            binds=self.binds,
            store=self.store,
            router=router,
            lifecycle=lifecycle,
            reassembler=[],
            timeline=timeline,
            counters=self.counters,
            submit_statuses=self.submit_statuses,
            bind_refusals=self.bind_refusals,
        )


class InspectionTests(SynchronousTestCase):
    def test_stats_count_binds_refusals_submits_and_messages(self) -> None:
        """
        stats() shows the cluster's binds, refusals and submits by status name, and the store's size,
        as they are when asked.
        """
        parts = ViewParts()
        session = FakeSession(1, "SMPP1")
        account = AccountSettings("esme", "secret")
        parts.binds.add(BindEntry(session, account, BindType.transceiver, 0x34, "SMPP1", T0))
        parts.counters["binds"] += 1
        parts.bind_refusals[CommandStatus.ESME_RALYBND] += 1
        parts.submit_statuses.update({CommandStatus.ESME_ROK: 2, CommandStatus.ESME_RTHROTTLED: 1})
        parts.counters["throttled"] += 1
        parts.store.add(record("a", T0))
        parts.store.add(record("b", T0 + 1))
        stats = parts.view.stats()
        shown = ("cluster", "binds", "binds_accepted", "binds_refused", "submits", "throttled", "store_size")
        self.assertEqual(
            {k: stats[k] for k in shown},
            {
                "cluster": "NA",
                "binds": 1,
                "binds_accepted": 1,
                "binds_refused": {"ESME_RALYBND": 1},
                "submits": {"ESME_ROK": 2, "ESME_RTHROTTLED": 1},
                "throttled": 1,
                "store_size": 2,
            },
        )
        # a reset clears the counters in place: the next view shows it
        parts.submit_statuses.clear()
        self.assertEqual(parts.view.stats()["submits"], {})

    def test_sessions_binds_and_messages(self) -> None:
        """
        The views list the bound session with its account and bind type, and the messages filtered and
        paged oldest first.
        """
        parts = ViewParts()
        session = FakeSession(7, "SMPP1", peer="127.0.0.1:5000")
        parts.binds.add(BindEntry(session, AccountSettings("esme", "secret"), BindType.receiver, 0x34, "SMPP1", T0))
        self.assertEqual(parts.view.sessions(), [session])
        [info] = parts.view.binds_info()
        self.assertEqual(
            (info["session_id"], info["system_id"], info["bind_type"], info["peer"]),
            (7, "esme", "receiver", "127.0.0.1:5000"),
        )
        for key, at in (("a", T0), ("b", T0 + 1), ("c", T0 + 2)):
            parts.store.add(record(key, at))
        self.assertEqual([r.message_id for r in parts.view.messages(since=T0 + 0.5)], ["b", "c"])
        self.assertEqual([r.message_id for r in parts.view.messages(limit=1, offset=1)], ["b"])
        self.assertIsNone(parts.view.message("nope"))
        self.assertEqual(parts.view.message("a").key, "a")  # type: ignore[union-attr]
