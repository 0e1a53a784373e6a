"""
The control API counts every PDU without an event per PDU: an API that
nobody calls makes the sessions publish no ``pdu_in``/``pdu_out`` events,
yet its metrics and its submits log show every PDU, every answer's
latency, every message state and every submit; what a closed session
counted stays counted, and a reset keeps the counters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.api.app import ControlAPI
from smsc_sim.api.submits import SubmitLog
from smsc_sim.api.histogram import Histogram
from smsc_sim.api.tally import SUBMIT_COMMANDS, TRIM_INTERVAL, PduTally
from smsc_sim.config import default_config
from smsc_sim.contracts import Event
from smsc_sim.session import SMPPSession
from smsc_sim.simulator import Simulator, SMPPServerFactory
from smsc_sim.smpp.codec import decode, encode
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu
from smsc_sim.smpp.framing import SMPPFramer
from tests.pdu_by_pdu import SplitBus, bound_session, judged_simulator


def _submit(sequence: int, destination: str = "447700900002") -> bytes:
    return encode(make_pdu(CommandId.submit_sm, sequence, source_addr="447700900001",
                           destination_addr=destination, short_message=b"Hello"))  # fmt: skip


class _IdleAPI(SynchronousTestCase):
    """A simulator with its control API (nobody calls it) and no judge: one TCP session on SMPP1."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.clock.advance(1000)
        config = dataclasses.replace(default_config(), api_endpoint="", seed=0, conformance_judge=False)
        self.simulator = Simulator(config, self.clock)
        self.simulator.startService()
        self.addCleanup(self.simulator.stopService)
        self.api = ControlAPI(self.simulator)
        self.addCleanup(self.api.close)
        self.published: list[str] = []
        publish = self.simulator.events.publish

        def recording(kind: str, **data: Any) -> None:
            self.published.append(kind)
            publish(kind, **data)

        self.simulator.events.publish = recording  # type: ignore[method-assign]
        self.transport = StringTransport()
        session = SMPPServerFactory(self.simulator, self.simulator.instances["SMPP1"]).buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 40000)
        )
        # a session, not the refusal past the connection limits
        assert isinstance(session, SMPPSession), session
        self.session = session
        self.session.makeConnection(self.transport)
        self.read(encode(make_pdu(CommandId.bind_transceiver, 1, system_id="smppclient1", password="password")))

    def read(self, data: bytes) -> list[PDU]:
        """The ESME sends ``data``; the PDUs the SMSC wrote meanwhile."""
        self.transport.clear()
        self.session.dataReceived(data)
        return [decode(frame) for frame in SMPPFramer(1 << 16).feed(self.transport.value())]

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.api.metrics.exposition().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


class IdleAPITests(_IdleAPI):
    """What an idle API shows, though the sessions publish no PDU event."""

    def test_no_pdu_event_yet_every_pdu_counted(self) -> None:
        """Three submits publish no pdu_in/pdu_out event; /metrics counts them and their answers' latency."""
        self.clock.advance(0.002)
        answers = self.read(_submit(2) + _submit(3) + _submit(4))
        self.assertEqual([(a.command_id, a.command_status) for a in answers], [(0x80000004, 0)] * 3)
        self.assertNotIn("pdu_in", self.published)
        self.assertNotIn("pdu_out", self.published)
        found = self.samples()
        submits = (("command", "submit_sm"), ("direction", "in"), ("instance", "SMPP1"), ("status", "ESME_ROK"))
        answered = (("command", "submit_sm_resp"), ("direction", "out"), ("instance", "SMPP1"), ("status", "ESME_ROK"))
        self.assertEqual(found[("smsc_sim_pdus_total", submits)], 3)
        self.assertEqual(found[("smsc_sim_pdus_total", answered)], 3)
        self.assertEqual(found[("smsc_sim_response_latency_seconds_count", (("command", "submit_sm"),))], 3)
        binds = (("account", "smppclient1"), ("bind_type", "transceiver"), ("instance", "SMPP1"))
        self.assertEqual(found[("smsc_sim_binds_total", binds)], 1)
        self.assertEqual(found[("smsc_sim_message_states_total", (("direction", "mt"), ("state", "ENROUTE")))], 3)

    def test_receipt_counted_without_delivery_event(self) -> None:
        """A receipt delivered and acknowledged publishes no delivery event; /metrics counts it acked."""
        self.read(encode(make_pdu(CommandId.submit_sm, 2, source_addr="447700900001",
                                  destination_addr="447700900002", short_message=b"Hello", registered_delivery=1)))  # fmt: skip
        self.transport.clear()
        self.clock.advance(600)
        written = [decode(frame) for frame in SMPPFramer(1 << 16).feed(self.transport.value())]
        [receipt] = [pdu for pdu in written if pdu.command_id == CommandId.deliver_sm]
        self.read(encode(PDU(CommandId.deliver_sm_resp, receipt.sequence_number, 0, {"message_id": ""})))
        self.assertNotIn("delivery", self.published)
        found = self.samples()
        self.assertEqual(found[("smsc_sim_deliveries_total", (("kind", "receipt"), ("outcome", "acked")))], 1)

    def test_submits_listed_without_events(self) -> None:
        """GET /submits lists every submit with its status and message_id, though no PDU event was published."""
        [answer] = self.read(_submit(7, "447700900009"))
        entries = self.api.submits.log.select({})
        self.assertNotIn("pdu_in", self.published)
        self.assertEqual(len(entries), 1)
        entry = entries[0]
        self.assertEqual(
            (entry["sequence_number"], entry["account"], entry["destination_addr"], entry["status_name"]),
            (7, "smppclient1", ["447700900009"], "ESME_ROK"),
        )
        self.assertEqual(entry["message_id"], answer.params["message_id"])

    def test_unanswered_submit_listed_with_null_status(self) -> None:
        """A submit whose answer is delayed (a slow instance) is listed with status null, then with its status."""
        self.simulator.instances["SMPP1"].start_outage("slow", latency=2.0)
        self.assertEqual(self.read(_submit(2)), [])
        [entry] = self.api.submits.log.select({})
        self.assertEqual((entry["status"], entry["answered_at"]), (None, None))
        self.clock.advance(2.0)
        [entry] = self.api.submits.log.select({})
        self.assertEqual(entry["status_name"], "ESME_ROK")
        self.assertAlmostEqual(entry["answered_at"] - entry["time"], 2.0)
        found = self.samples()
        self.assertEqual(
            found[("smsc_sim_response_latency_seconds_bucket", (("command", "submit_sm"), ("le", "1.0")))], 0
        )
        self.assertEqual(
            found[("smsc_sim_response_latency_seconds_bucket", (("command", "submit_sm"), ("le", "2.5")))], 1
        )

    def test_message_states_survive_a_reset(self) -> None:
        """Message state changes are counters: the API's reset forgets the messages, not what was counted."""
        self.read(_submit(2))
        self.simulator.reset()
        self.read(_submit(3))
        found = self.samples()
        self.assertEqual(found[("smsc_sim_message_states_total", (("direction", "mt"), ("state", "ENROUTE")))], 2)

    def test_closed_session_still_counted(self) -> None:
        """What a session sent is still counted after it closes."""
        self.read(_submit(2))
        self.session.connectionLost(Failure(ConnectionError("gone")))
        found = self.samples()
        submits = (("command", "submit_sm"), ("direction", "in"), ("instance", "SMPP1"), ("status", "ESME_ROK"))
        self.assertEqual(found[("smsc_sim_pdus_total", submits)], 1)

    def test_listeners_still_get_pdu_events(self) -> None:
        """Whoever subscribes to PDU events (an SSE stream, a trace) gets them, beside the API's counting."""
        got: list[Event] = []
        unsubscribe = self.simulator.events.subscribe(got.append, kinds=("pdu_in",))
        self.addCleanup(unsubscribe)
        self.read(_submit(2))
        self.assertEqual([event.data["pdu"].sequence_number for event in got], [2])
        self.assertEqual(len(self.api.submits.log.select({})), 1)

    def test_submit_log_wraps_and_clears(self) -> None:
        """A log of 2 keeps the newest two, oldest first; after a reset it lists only what came after."""
        log = SubmitLog(self.simulator, bound=2)
        self.addCleanup(log.close)
        self.read(b"".join(_submit(sequence) for sequence in range(2, 7)))
        self.assertEqual([entry["sequence_number"] for entry in log.entries], [5, 6])
        log.clear()
        self.read(_submit(7) + _submit(8) + _submit(9))
        self.assertEqual([entry["sequence_number"] for entry in log.entries], [8, 9])
        self.assertEqual([entry["status_name"] for entry in log.entries], ["ESME_ROK"] * 2)


class _PlainTally:
    """
    What the tally must show, kept the plainest way: every PDU heard one by
    one, counts in one dict, each open request and each submit record a
    tuple, no bound (the tests are short).  The API's tally, with its
    shortcuts for submits and receipts, must show the same.
    """

    def __init__(self, events: Any, clock: Any) -> None:
        self.clock = clock
        self.counts: dict[tuple[str, str, int, int], int] = {}
        self.latency: dict[int, Histogram] = {}
        self.esme_latency: dict[int, Histogram] = {}
        self.records: list[tuple[Any, ...]] = []
        self.inbound: dict[tuple[int, int], tuple[float, int, int]] = {}
        self.outbound: dict[tuple[int, int], tuple[float, int]] = {}
        self.untap = events.tap(self)
        self.unsubscribe = events.subscribe(self.closed, kinds=("session_closed",))

    def close(self) -> None:
        self.untap()
        self.unsubscribe()

    def count(self, direction: str, session: Any, pdu: PDU) -> None:
        key = (direction, session.instance_name, pdu.command_id, pdu.command_status)
        self.counts[key] = self.counts.get(key, 0) + 1

    def pdu_in(self, session: Any, pdu: PDU, now: float) -> None:
        self.count("in", session, pdu)
        key = (session.session_id, pdu.sequence_number)
        if pdu.command_id & 0x80000000:
            started = self.outbound.pop(key, None)
            if started is not None:
                self.esme_latency.setdefault(started[1], Histogram()).observe(max(0.0, now - started[0]))
            return
        index = -1
        if pdu.command_id in SUBMIT_COMMANDS:
            params = pdu.params
            index = len(self.records)
            self.records.append((now, pdu.command_id, index + 1, session.instance_name, session.session_id,
                                 pdu.sequence_number, session.system_id, params.get("source_addr", ""),
                                 params.get("destination_addr")))  # fmt: skip
        self.inbound[key] = (now, pdu.command_id, index)

    def pdu_out(self, session: Any, pdu: PDU) -> None:
        self.count("out", session, pdu)
        now = self.clock.seconds()
        key = (session.session_id, pdu.sequence_number)
        if not pdu.command_id & 0x80000000:
            self.outbound[key] = (now, pdu.command_id)
            return
        started = self.inbound.pop(key, None)
        if started is None:
            return
        at, request, index = started
        self.latency.setdefault(request, Histogram()).observe(max(0.0, now - at))
        if index >= 0 and (pdu.command_id == request | 0x80000000 or pdu.command_id == 0x80000000):
            nacked = pdu.command_id == 0x80000000
            self.records[index] += (pdu.command_status, pdu.params.get("message_id"), now, nacked)

    def submit_answered(self, session: Any, request: PDU, answer: PDU, read_at: float) -> None:
        self.pdu_in(session, request, read_at)
        self.pdu_out(session, answer)

    def closed(self, event: Event) -> None:
        for opened in (self.inbound, self.outbound):
            for key in [key for key in opened if key[0] == event.data["session_id"]]:
                del opened[key]


def _histograms(histograms: dict[int, Histogram]) -> dict[int, tuple[list[int], float, int]]:
    return {command: (h.counts, h.total, h.count) for command, h in histograms.items()}


class _RecordingTap:
    """A PDU tap that writes down what it hears: ``(in|out|answered, sequence_number)``."""

    def __init__(self, heard: list[tuple[str, int]]) -> None:
        self.heard = heard

    def pdu_in(self, session: Any, pdu: PDU, now: float) -> None:
        self.heard.append(("in", pdu.sequence_number))

    def pdu_out(self, session: Any, pdu: PDU) -> None:
        self.heard.append(("out", pdu.sequence_number))

    def submit_answered(self, session: Any, request: PDU, answer: PDU, read_at: float) -> None:
        self.heard.append(("answered", answer.sequence_number))


class FusedSubmitTests(_IdleAPI):
    """
    A submit answered at once reaches the tally in one call with its answer;
    what the metrics and the submits log show is the same as when the tally
    heard the submit and its answer one by one.
    """

    def test_same_counts_latencies_and_submits_as_pdu_by_pdu(self) -> None:
        """Accepted, refused, unbound, late and mixed-in submits: the one-call tally equals the PDU-by-PDU one."""
        reference = PduTally(SplitBus(self.simulator.events), self.clock, 1000)  # type: ignore[arg-type]
        self.addCleanup(reference.close)
        plain = _PlainTally(self.simulator.events, self.clock)
        self.addCleanup(plain.close)
        tally = self.api.metrics.tally
        before = tally.counts()  # the bind, which the reference did not see
        self.clock.advance(0.5)
        self.read(_submit(2) + _submit(3) + _submit(4, destination=""))  # the last one refused: no destination
        self.read(_submit(5) + encode(make_pdu(CommandId.enquire_link, 6)) + _submit(7))
        self.simulator.instances["SMPP1"].start_outage("slow", latency=0.3)
        self.read(_submit(8))
        self.clock.advance(0.3)
        self.simulator.instances["SMPP1"].end_outage()
        self.clock.advance(0.01)
        self.read(_submit(9))
        stranger = SMPPServerFactory(self.simulator, self.simulator.instances["SMPP1"]).buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 40001)
        )
        assert stranger is not None
        stranger.makeConnection(StringTransport())
        stranger.dataReceived(_submit(1))  # not bound: refused by the session, not the core
        statuses = {entry["status_name"] for entry in self.api.submits.log.select({})}
        self.assertIn("ESME_ROK", statuses)
        self.assertGreater(len(statuses), 1)
        since = {key: n - before.get(key, 0) for key, n in tally.counts().items() if n != before.get(key, 0)}
        self.assertEqual(since, reference.counts())
        self.assertEqual(since, plain.counts)
        self.assertEqual(tally.submits(), reference.submits())
        self.assertEqual(tally.submits(), plain.records)
        submits = (int(CommandId.submit_sm), int(CommandId.enquire_link))
        self.assertEqual(
            {command: (h.counts, h.total, h.count) for command, h in tally.latency.items() if command in submits},
            {command: (h.counts, h.total, h.count) for command, h in reference.latency.items()},
        )
        self.assertEqual(
            {command: h for command, h in _histograms(tally.latency).items() if command in submits},
            _histograms(plain.latency),
        )
        self.assertEqual(tally.throttled, reference.throttled)

    def test_submit_ring_wraps_and_clears_as_pdu_by_pdu(self) -> None:
        """
        A log of 3 over submits answered at once and late, some forgotten
        before their answer, and a reset between: it lists the newest three
        after the reset, each as the PDU-by-PDU records say.
        """
        plain = _PlainTally(self.simulator.events, self.clock)
        self.addCleanup(plain.close)
        log = SubmitLog(self.simulator, bound=3)
        self.addCleanup(log.close)
        self.read(_submit(2) + _submit(3))
        self.simulator.instances["SMPP1"].start_outage("slow", latency=0.3)
        self.read(_submit(4) + _submit(5))  # answered late
        self.simulator.instances["SMPP1"].end_outage()
        self.read(_submit(6) + _submit(7, destination=""))  # 4 is forgotten before its answer; 7 refused
        self.assertEqual(log.tally.submits(), plain.records[-3:])
        self.clock.advance(0.3)
        self.assertEqual(log.tally.submits(), plain.records[-3:])
        self.assertEqual([entry["sequence_number"] for entry in log.entries], [5, 6, 7])
        self.assertEqual([entry["status"] for entry in log.entries], [0, 0, plain.records[-1][9]])
        self.simulator.instances["SMPP1"].start_outage("slow", latency=0.3)
        self.read(_submit(8))
        log.clear()
        self.simulator.instances["SMPP1"].end_outage()
        self.read(_submit(9))
        self.clock.advance(0.3)  # 8 answered after the reset: not listed
        self.read(_submit(10) + _submit(11) + _submit(12) + _submit(13))
        self.assertEqual(log.tally.submits(), plain.records[-3:])
        self.assertEqual([entry["sequence_number"] for entry in log.entries], [11, 12, 13])

    def test_submit_ring_grows_then_wraps_as_pdu_by_pdu(self) -> None:
        """A log of 70 over 150 submits lists the newest 70, oldest first, as the PDU-by-PDU records say."""
        plain = _PlainTally(self.simulator.events, self.clock)
        self.addCleanup(plain.close)
        log = SubmitLog(self.simulator, bound=70)
        self.addCleanup(log.close)
        for first in range(2, 152, 50):
            self.read(b"".join(_submit(sequence) for sequence in range(first, first + 50)))
            self.assertEqual(log.tally.submits(), plain.records[-70:])
        self.assertEqual([entry["sequence_number"] for entry in log.entries], list(range(82, 152)))

    def test_submit_answered_at_once_is_one_tap_call(self) -> None:
        """A PDU tap hears a submit answered at once in one call with its answer; a late answer comes apart."""
        heard: list[tuple[str, int]] = []
        self.addCleanup(self.simulator.events.tap(_RecordingTap(heard)))
        self.read(_submit(2) + _submit(3))
        self.simulator.instances["SMPP1"].start_outage("slow", latency=0.3)
        self.read(_submit(4))
        self.clock.advance(0.3)
        self.assertEqual(heard, [("answered", 2), ("answered", 3), ("in", 4), ("out", 4)])


class AcceptedSinkTests(_IdleAPI):
    """
    A submit_sm accepted at once reaches a tap's accepted-submit sink as its
    message_id alone, and what the API shows of it (counts, latency, the
    submits log) is whole all the same.
    """

    def test_accepted_submit_reaches_the_sink_others_the_tap(self) -> None:
        """Accepted at once: the sink; refused, or replacing a message: the tap, with its answer."""
        heard: list[tuple[str, int]] = []
        sunk: list[str] = []
        untap = self.simulator.events.tap(_RecordingTap(heard), accepted=sunk.append)
        replacing = encode(make_pdu(CommandId.submit_sm, 4, source_addr="447700900001",
                                    destination_addr="447700900002", short_message=b"Hi",
                                    replace_if_present_flag=1))  # fmt: skip
        answers = self.read(_submit(2) + _submit(3, destination="") + replacing)
        self.assertEqual(answers[0].command_status, 0)
        self.assertNotEqual(answers[1].command_status, 0)
        self.assertEqual(sunk, [answers[0].params["message_id"]])
        self.assertEqual(heard, [("answered", 3), ("answered", 4)])
        self.assertEqual(self.session.accepted_at_once, 1)
        untap()
        self.read(_submit(5))
        self.assertEqual((len(sunk), len(heard)), (1, 2))

    def test_accepted_submits_counted_after_their_session_closed(self) -> None:
        """Submits told to the sink alone: /metrics counts them and their first-bucket latency, closed or not."""
        self.read(_submit(2) + _submit(3))
        self.session.connectionLost(Failure(ConnectionError("gone")))
        found = self.samples()
        submits = (("command", "submit_sm"), ("direction", "in"), ("instance", "SMPP1"), ("status", "ESME_ROK"))
        answered = (("command", "submit_sm_resp"), ("direction", "out"), ("instance", "SMPP1"), ("status", "ESME_ROK"))
        self.assertEqual((found[("smsc_sim_pdus_total", submits)], found[("smsc_sim_pdus_total", answered)]), (2, 2))
        first = (("command", "submit_sm"), ("le", "0.001"))
        self.assertEqual(found[("smsc_sim_response_latency_seconds_bucket", first)], 2)
        self.assertEqual(found[("smsc_sim_response_latency_seconds_count", (("command", "submit_sm"),))], 2)

    def test_log_cut_to_its_bound_each_interval_numbers_going_on(self) -> None:
        """
        A log of 10 holds the 25 accepted submits of one read (within the
        account's 30 a second) until its next trim, then the newest 10;
        numbering goes on through the trim and a reset.
        """
        log = SubmitLog(self.simulator, bound=10)
        self.addCleanup(log.close)
        answers = self.read(b"".join(_submit(sequence) for sequence in range(2, 27)))
        self.assertEqual({answer.command_status for answer in answers}, {0})
        self.assertEqual(log.tally.held, 25)
        self.clock.advance(TRIM_INTERVAL)
        self.assertEqual(log.tally.held, 10)
        self.assertEqual([entry["number"] for entry in log.entries], list(range(16, 26)))
        self.assertEqual([entry["sequence_number"] for entry in log.entries], list(range(17, 27)))
        log.clear()
        self.read(_submit(27) + _submit(28, destination="") + _submit(29))
        self.assertEqual(
            [(entry["number"], entry["sequence_number"]) for entry in log.entries], [(26, 27), (27, 28), (28, 29)]
        )
        self.assertEqual([entry["status"] == 0 for entry in log.entries], [True, False, True])


    def test_refused_flood_held_near_the_bound_without_the_timer(self) -> None:
        """
        1 100 refused submits in one read, no time passing: a log of 10 holds
        at most 1 024 more before it cuts itself, and lists the newest 10.
        """
        log = SubmitLog(self.simulator, bound=10)
        self.addCleanup(log.close)
        answers = self.read(b"".join(_submit(sequence, destination="") for sequence in range(2, 1102)))
        self.assertEqual(len(answers), 1100)
        self.assertNotIn(0, {answer.command_status for answer in answers})
        self.assertLessEqual(log.tally.held, 10 + 1024)
        self.assertEqual([entry["sequence_number"] for entry in log.entries], list(range(1092, 1102)))
        self.assertEqual([entry["number"] for entry in log.entries], list(range(1091, 1101)))


class JudgeWithoutEventsTests(SynchronousTestCase):
    """The judge, on by default, hears PDUs without an event per PDU and gets no message events it ignores."""

    def test_judge_judges_yet_no_pdu_or_message_event_is_built(self) -> None:
        """With the judge on and no API, submits publish no pdu_in/pdu_out/message event; the judge still finds."""
        clock, simulator = judged_simulator(self)
        published: list[str] = []
        publish = simulator.events.publish

        def recording(kind: str, **data: Any) -> None:
            published.append(kind)
            publish(kind, **data)

        simulator.events.publish = recording  # type: ignore[method-assign]
        session, transport = bound_session(simulator, CommandId.bind_transceiver)
        session.dataReceived(_submit(2) + _submit(3))  # dest_addr_ton 0: the provider wants 1
        answers = [decode(frame) for frame in SMPPFramer(1 << 16).feed(transport.value())]
        self.assertEqual([a.command_status for a in answers], [0, 0, 0])
        self.assertEqual(set(published) & {"pdu_in", "pdu_out", "message"}, set())
        assert simulator.judge is not None
        [finding] = [f for f in simulator.judge.findings() if f.code == "address-format"]
        self.assertEqual(finding.count, 2)


class ReceiptTallyTests(_IdleAPI):
    """
    Receipts written to the ESME and what becomes of them: the tally the
    control API keeps shows the same counts and ESME latencies as a tally
    that hears every deliver_sm and deliver_sm_resp one by one.
    """

    def receipts(self, *sequences: int) -> list[PDU]:
        """The ESME submits with a receipt asked for; the deliver_sm the SMSC writes once they are delivered."""
        self.read(b"".join(
            encode(make_pdu(CommandId.submit_sm, n, source_addr="447700900001", destination_addr="447700900002",
                            short_message=b"Hello", registered_delivery=1))
            for n in sequences
        ))  # fmt: skip
        self.transport.clear()
        self.clock.advance(600)
        written = [decode(frame) for frame in SMPPFramer(1 << 16).feed(self.transport.value())]
        return [pdu for pdu in written if pdu.command_id == CommandId.deliver_sm]

    def setUp(self) -> None:
        super().setUp()
        self.reference = PduTally(SplitBus(self.simulator.events), self.clock, 1000)  # type: ignore[arg-type]
        self.addCleanup(self.reference.close)
        self.plain = _PlainTally(self.simulator.events, self.clock)
        self.addCleanup(self.plain.close)
        self.before = self.api.metrics.tally.counts()  # the bind, which the references did not see

    def answer(self, receipt: PDU, status: int = 0) -> None:
        """The ESME answers ``receipt`` with ``status``."""
        self.read(encode(PDU(CommandId.deliver_sm_resp, receipt.sequence_number, status, {"message_id": ""})))

    def assert_same_tallies(self) -> dict[Any, int]:
        """The API's tally and the PDU-by-PDU one agree on counts and ESME latencies; the counts since setUp."""
        tally, before = self.api.metrics.tally, self.before
        since = {key: n - before.get(key, 0) for key, n in tally.counts().items() if n != before.get(key, 0)}
        self.assertEqual(since, self.reference.counts())
        self.assertEqual(since, self.plain.counts)
        self.assertEqual(_histograms(tally.esme_latency), _histograms(self.reference.esme_latency))
        self.assertEqual(_histograms(tally.esme_latency), _histograms(self.plain.esme_latency))
        return since

    def pdus_total(self, direction: str, command: str, status: str = "ESME_ROK") -> float:
        """What /metrics says of ``command`` with ``status`` read (``in``) or written (``out``) on SMPP1."""
        labels = (("command", command), ("direction", direction), ("instance", "SMPP1"), ("status", status))
        return self.samples().get(("smsc_sim_pdus_total", labels), 0.0)

    def test_receipt_counted_when_written_before_its_answer(self) -> None:
        """/metrics counts receipts as sent as soon as they are written, and their answers when read."""
        first, second = self.receipts(2, 3)
        self.assertEqual(self.pdus_total("out", "deliver_sm"), 2)  # scraped before any answer
        self.assertEqual(self.pdus_total("in", "deliver_sm_resp"), 0)
        self.answer(first)
        self.assertEqual(self.pdus_total("in", "deliver_sm_resp"), 1)
        self.answer(second, 0x64)
        self.assertEqual(self.pdus_total("in", "deliver_sm_resp"), 1)
        self.assertEqual(self.pdus_total("in", "deliver_sm_resp", "ESME_RX_T_APPN"), 1)
        self.assertEqual(self.pdus_total("out", "deliver_sm"), 2)
        found = self.samples()
        self.assertEqual(found[("smsc_sim_esme_response_seconds_count", (("command", "deliver_sm"),))], 2)
        self.assert_same_tallies()

    def test_receipt_answered_by_generic_nack_as_pdu_by_pdu(self) -> None:
        """A receipt answered with generic_nack, and an answer nobody asked for: same counts and latencies."""
        [receipt] = self.receipts(2)
        self.clock.advance(0.02)
        self.read(encode(PDU(CommandId.generic_nack, receipt.sequence_number, 0x3)))
        self.read(encode(PDU(CommandId.deliver_sm_resp, 999, 0, {"message_id": ""})))
        since = self.assert_same_tallies()
        self.assertEqual(since[("in", "SMPP1", int(CommandId.generic_nack), 0x3)], 1)
        [histogram] = self.api.metrics.tally.esme_latency.values()
        self.assertEqual((histogram.count, histogram.counts[0]), (1, 0))

    def test_receipts_counted_after_close(self) -> None:
        """Receipts written, one answered, on a session that then closes: /metrics still counts them all."""
        acked, _unanswered = self.receipts(2, 3)
        self.answer(acked)
        self.session.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual(self.pdus_total("out", "deliver_sm"), 2)
        self.assertEqual(self.pdus_total("in", "deliver_sm_resp"), 1)
        self.assert_same_tallies()

    def test_acked_and_refused_receipts_as_pdu_by_pdu(self) -> None:
        """Receipts acked at once, acked late and refused with a status: same counts and ESME latencies."""
        at_once, late, refused = self.receipts(2, 3, 4)
        self.answer(at_once)
        self.clock.advance(0.3)
        self.answer(late)
        self.answer(refused, 0x64)
        since = self.assert_same_tallies()
        self.assertEqual(len([key for key in since if key[2] == int(CommandId.deliver_sm_resp)]), 2, since)
        [histogram] = self.api.metrics.tally.esme_latency.values()
        self.assertEqual((histogram.count, histogram.counts[0]), (3, 1))  # the late two past the first bucket

    def test_timed_out_receipt_as_pdu_by_pdu(self) -> None:
        """A receipt never answered in time, then answered late: same counts and ESME latencies."""
        acked, unanswered = self.receipts(2, 3)
        self.answer(acked)
        self.clock.advance(30)  # past response_timeout
        self.answer(unanswered)
        self.assert_same_tallies()

    def test_receipt_cut_by_close_as_pdu_by_pdu(self) -> None:
        """A receipt written and not answered when the session closes: same counts and ESME latencies."""
        acked, unanswered = self.receipts(2, 3)
        self.answer(acked)
        self.session.connectionLost(Failure(ConnectionError("gone")))
        self.assert_same_tallies()
