"""
The shipped drills, judged: in memory (fake clock, real sessions and core),
an ESME that does what docs/conformance.md calls good gets no error or
warning finding, and one that makes the mistake each drill rehearses gets
the findings documented for it.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.conformance_harness import DELIVER_SM, RawESME

SUBMIT_SM_RESP = 0x80000004
#: submit statuses with which the provider asks for the message again later
TEMPORARY = {0x58, 0x14, 0x08}


class DrillCase(SynchronousTestCase):
    """The in-memory simulator running one drill, and the simulator's own judge."""

    scenario = "default"

    def setUp(self) -> None:
        self.smsc = MemorySMSC(scenario=self.scenario)
        self.addCleanup(self.smsc.stop)
        self.judge = self.smsc.simulator.judge

    def esme(self, instance: str, bind_command: int = 0x09, **manners: Any) -> RawESME:
        """A raw ESME connected to ``instance`` and bound (transceiver by default)."""
        esme = RawESME(self.smsc.clock, **manners)
        esme.connection = self.smsc.connect(esme, instance)
        esme.send(wire.bind(bind_command, esme.next_sequence()))
        self.smsc.flush()
        self.assertEqual(esme.responses(bind_command | 0x80000000), {esme.sequence: 0})
        return esme

    def until(self, moment: float, *alive: RawESME, step: float = 1.0) -> None:
        """Let time pass up to ``moment``; the ``alive`` ESMEs send enquire_link every 30 s."""
        while self.smsc.clock.seconds() < moment:
            self.smsc.advance(min(step, moment - self.smsc.clock.seconds()))
            if int(self.smsc.clock.seconds()) % 30 == 0:
                for esme in alive:
                    if not esme.closed:
                        esme.enquire_link()
                self.smsc.flush()

    def flagged(self) -> set[str]:
        """The codes of the error and warning findings as of now."""
        return {f.code for f in self.judge.findings() if f.severity.value in ("error", "warning")}


class Sender:
    """
    What an ESME's submit loop does: new messages at ``rate`` per second,
    and, when ``polite``, every message refused with a temporary status kept
    and sent again, slowing to ``slow_rate`` for ``backoff`` seconds after a
    refusal.
    """

    def __init__(self, esme: RawESME, rate: float, polite: bool, slow_rate: float = 4.0, backoff: float = 5.0) -> None:
        self.esme = esme
        self.rate = rate
        self.polite = polite
        self.slow_rate = slow_rate
        self.backoff = backoff
        self.texts: dict[int, bytes] = {}
        self.retry: list[bytes] = []
        self.seen: set[int] = set()
        self.slow_until = -1.0
        self.last_sent = -1e9
        self.count = 0
        self.refused = 0

    def tick(self, now: float) -> None:
        """Read the answers so far, then send one message if the rate allows."""
        for sequence, status in self.esme.responses(SUBMIT_SM_RESP).items():
            if sequence in self.seen:
                continue
            self.seen.add(sequence)
            if status in TEMPORARY:
                self.refused += 1
                if self.polite:
                    self.retry.append(self.texts[sequence])
                    self.slow_until = now + self.backoff
        rate = self.slow_rate if now < self.slow_until else self.rate
        if now - self.last_sent < 1.0 / rate - 1e-9:
            return
        if self.retry:
            text = self.retry.pop(0)
        else:
            self.count += 1
            text = f"message {self.count}".encode()
        sequence = self.esme.submit(destination="447700900002", text=text)
        self.texts[sequence] = text
        self.last_sent = now


class DrillThrottleTests(DrillCase):
    scenario = "drill-throttle"

    def run_sender(self, polite: bool) -> Sender:
        """Two binds; from 25 s to 60 s submit 20 msg/s on SMPP1; then time passes to 130 s."""
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        self.until(25, one, two)
        sender = Sender(one, 20.0, polite)
        while self.smsc.clock.seconds() < 60:
            sender.tick(self.smsc.clock.seconds())
            self.smsc.advance(0.05)
        self.until(130, one, two)
        sender.tick(self.smsc.clock.seconds())
        return sender

    def test_ignoring_the_throttle(self) -> None:
        """
        An ESME that keeps 20/s through the 5/s quota and drops what was refused: throttle-ignored,
        throttled-not-resubmitted.
        """
        sender = self.run_sender(polite=False)
        self.assertGreater(sender.refused, 50)
        self.assertEqual(self.flagged(), {"throttle-ignored", "throttled-not-resubmitted"})
        [ignored] = [f for f in self.judge.findings() if f.code == "throttle-ignored"]
        self.assertIn("(2 x the account's 5/s)", ignored.detail)

    def test_backing_off_and_resubmitting(self) -> None:
        """An ESME that slows to 4/s after a 0x58 and resubmits every refused message gets no error or warning."""
        sender = self.run_sender(polite=True)
        self.assertGreater(sender.refused, 0)
        self.assertEqual(sender.retry, [])
        self.assertEqual(self.flagged(), set())


class DrillFailoverTests(DrillCase):
    scenario = "drill-failover"

    def test_single_bind_that_never_fails_over(self) -> None:
        """Bound to SMPP1 only and never binding again after its crash: single-instance and no-failover."""
        one = self.esme("SMPP1")
        self.until(29, one)
        one.submit()
        self.until(75, one)
        self.assertTrue(one.closed)
        self.assertEqual(self.flagged(), {"single-instance", "no-failover"})

    def test_bound_to_both_and_rebinding(self) -> None:
        """
        Bound to SMPP1 and SMPP2, sending through what is up, binding SMPP1
        again after it returns and SMPP2 after its maintenance: no error or warning.
        """
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        self.until(35, one, two)
        self.assertTrue(one.closed)
        two.submit()
        self.until(95, two)
        one = self.esme("SMPP1")
        self.until(125, one, two)
        self.assertTrue(two.closed)  # the SMSC unbound it; the ESME answered
        one.submit()
        self.until(185, one)
        two = self.esme("SMPP2")
        self.until(200, one, two)
        self.assertEqual(self.flagged(), set())


class DrillSlowReceiptsTests(DrillCase):
    scenario = "drill-slow-receipts"

    def test_transmitters_only(self) -> None:
        """Transmitters only, on both instances, asking for receipts that can never come: tx-without-rx."""
        one = self.esme("SMPP1", 0x02)
        self.esme("SMPP2", 0x02)
        one.submit(registered_delivery=1)
        self.smsc.flush()
        self.assertEqual(self.flagged(), {"tx-without-rx"})

    def test_receiver_that_stops_answering(self) -> None:
        """
        A transceiver that keeps the link alive but no longer answers deliver_sm hours later: deliver-sm-unanswered.
        """
        one = self.esme("SMPP1", answer_deliver=False)
        two = self.esme("SMPP2", answer_deliver=False)
        one.submit(registered_delivery=1)
        self.until(4 * 3600, one, two, step=30)
        self.assertIn("deliver-sm-unanswered", self.flagged())

    def test_patient_receiver(self) -> None:
        """
        Transceivers on both instances, alive for 4 hours, answering each late receipt at once: no error or warning.
        """
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        one.submit(registered_delivery=1)
        self.until(4 * 3600, one, two, step=30)
        delivered = [h for h, _ in one.received + two.received if h.command_id == DELIVER_SM]
        self.assertEqual(len(delivered), 1)
        self.assertEqual(self.flagged(), set())


class DrillErrorsTests(DrillCase):
    scenario = "drill-errors"

    def run_sender(self, polite: bool) -> Sender:
        """Two binds; from 25 s to 60 s submit 2 msg/s on SMPP1; then time passes to 130 s."""
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        self.until(25, one, two)
        sender = Sender(one, 2.0, polite, slow_rate=1.0, backoff=2.0)
        while self.smsc.clock.seconds() < 60:
            sender.tick(self.smsc.clock.seconds())
            self.smsc.advance(0.1)
        self.until(130, one, two)
        return sender

    def test_dropping_refused_messages(self) -> None:
        """An ESME that drops each message refused in the burst: throttled-not-resubmitted."""
        sender = self.run_sender(polite=False)
        self.assertEqual(sender.refused, 30)
        self.assertEqual(self.flagged(), {"throttled-not-resubmitted"})

    def test_resubmitting_after_a_backoff(self) -> None:
        """An ESME that keeps each refused message and submits it again after a backoff gets no error or warning."""
        sender = self.run_sender(polite=True)
        self.assertGreater(sender.refused, 10)
        self.assertEqual(sender.retry, [])
        self.assertEqual(self.flagged(), set())
