"""
The judge's session checks, each driven by a real ESME session in memory:
a misbehaving ESME gets exactly that finding, a well-behaved one none.
"""

from __future__ import annotations

import dataclasses

from smsc_sim.config import Config, SessionSettings, default_config
from tests.conformance_harness import JudgeCase


class SequenceNumberTests(JudgeCase):
    def config(self) -> Config:
        config = default_config()
        instances = tuple(
            dataclasses.replace(i, latency=1.0) if i.name == "SMPP0" else i for i in config.instances
        )
        return dataclasses.replace(config, instances=instances)

    def test_reused_sequence_number_is_flagged(self) -> None:
        """
        Two submit_sm with one sequence_number while the first is unanswered:
        sequence-reuse, with both PDUs as evidence.
        """
        esme = self.esme()
        esme.submit(sequence=7)
        esme.submit(sequence=7, destination="447700900003")
        self.smsc.flush()
        self.smsc.advance(2)
        self.assertEqual(self.codes(), ["sequence-reuse"])
        evidence = self.finding("sequence-reuse").evidence
        self.assertEqual([(e.command, e.sequence_number) for e in evidence], [("submit_sm", 7), ("submit_sm", 7)])

    def test_sequence_number_zero_is_flagged(self) -> None:
        """A submit_sm with sequence_number 0 (outside 1..0x7FFFFFFF): sequence-reuse."""
        esme = self.esme()
        esme.submit(sequence=0)
        self.smsc.advance(2)
        self.assertEqual(self.codes(), ["sequence-reuse"])

    def test_distinct_sequence_numbers_pass(self) -> None:
        """Submits with increasing sequence numbers, even many in flight: no finding."""
        esme = self.esme()
        for _ in range(5):
            esme.submit()
        self.smsc.advance(2)
        self.leave(esme)
        self.assertEqual(self.codes(), [])

    def test_number_of_an_answered_request_may_come_again(self) -> None:
        """A sequence_number used again after its response came back is no reuse (wrap-around is allowed)."""
        esme = self.esme()
        esme.submit(sequence=9)
        self.smsc.advance(2)
        esme.submit(sequence=9, destination="447700900003")
        self.smsc.advance(2)
        self.assertEqual(self.codes(), [])


class WindowTests(JudgeCase):
    def config(self) -> Config:
        config = default_config()
        instances = tuple(
            dataclasses.replace(i, latency=1.0) if i.name == "SMPP0" else i for i in config.instances
        )
        return dataclasses.replace(config, instances=instances, session=SessionSettings(inbound_window=3))

    def test_requests_beyond_the_window_are_flagged(self) -> None:
        """
        Five submits at once into a window of 3: two ESME_RMSGQFUL,
        window-overrun (resubmitted later, so nothing else).
        """
        esme = self.esme()
        sequences = [esme.submit(destination=f"4477009000{n:02d}") for n in range(5)]
        self.smsc.advance(2)
        refused = [s for s, status in esme.responses(0x80000004).items() if status == 0x14]
        self.assertEqual(refused, sequences[3:])
        for n in (3, 4):
            esme.submit(destination=f"4477009000{n:02d}")
        self.smsc.advance(2)
        self.leave(esme)
        self.assertEqual(self.codes(), ["window-overrun"])
        self.assertEqual(self.finding("window-overrun").count, 2)

    def test_requests_within_the_window_pass(self) -> None:
        """Three submits in flight with a window of 3: no finding."""
        esme = self.esme()
        for n in range(3):
            esme.submit(destination=f"4477009000{n:02d}")
        self.smsc.advance(2)
        self.leave(esme)
        self.assertEqual(self.codes(), [])


class AnswerTests(JudgeCase):
    def test_unanswered_enquire_link_is_flagged(self) -> None:
        """
        An ESME that ignores the SMSC's enquire_link: enquire-link-unanswered
        (the SMSC then closes the session; that is not a no-unbind).
        """
        esme = self.esme(answer_enquire_link=False)
        self.smsc.advance(45)
        self.assertTrue(esme.closed)
        self.assertEqual(self.codes(), ["enquire-link-unanswered"])
        self.assertEqual(self.finding("enquire-link-unanswered").evidence[0].command, "enquire_link")

    def test_answered_enquire_link_passes(self) -> None:
        """An ESME that answers the SMSC's enquire_link: no finding."""
        esme = self.esme()
        self.smsc.advance(45)
        self.leave(esme)
        self.assertEqual(self.codes(), [])

    def test_unanswered_deliver_sm_is_flagged(self) -> None:
        """An MO the ESME never answers: deliver-sm-unanswered once the response timeout (10 s) passes."""
        self.esme(answer_deliver=False)
        self.smsc.inject_mo("447700900001", "447700900002", "hello")
        self.smsc.advance(5)
        self.assertEqual(self.codes(), [])
        self.smsc.advance(6)
        self.assertEqual(self.codes(), ["deliver-sm-unanswered"])
        self.assertEqual(self.finding("deliver-sm-unanswered").evidence[0].command, "deliver_sm")

    def test_deadline_findings_are_dated_at_their_deadline(self) -> None:
        """An unanswered deliver_sm is dated when its 10 s ran out, however late the findings are read."""
        self.esme(answer_deliver=False)
        start = self.smsc.clock.seconds()
        self.smsc.inject_mo("447700900001", "447700900002", "hello")
        self.smsc.advance(12)
        finding = self.finding("deliver-sm-unanswered")
        self.assertEqual((finding.evidence[0].time, finding.first_time), (start, start + 10))

    def test_slow_deliver_sm_answer_is_flagged(self) -> None:
        """An MO answered after 6 s (threshold 5 s): deliver-sm-slow, and nothing else."""
        esme = self.esme(deliver_delay=6.0)
        self.smsc.inject_mo("447700900001", "447700900002", "hello")
        self.smsc.advance(7)
        self.leave(esme)
        self.assertEqual(self.codes(), ["deliver-sm-slow"])

    def test_refused_deliver_sm_is_flagged(self) -> None:
        """Receipts answered with ESME_RSYSERR, which makes the provider retry: deliver-sm-refused."""
        esme = self.esme(deliver_status=0x08)
        esme.submit(registered_delivery=1)
        self.smsc.advance(20)
        self.leave(esme)
        self.assertEqual(self.codes(), ["deliver-sm-refused"])
        self.assertEqual(self.finding("deliver-sm-refused").evidence[1].status, 0x08)

    def test_prompt_answers_pass(self) -> None:
        """MO and receipts answered at once with status 0: no finding."""
        esme = self.esme()
        esme.submit(registered_delivery=1)
        self.smsc.inject_mo("447700900001", "447700900002", "hello")
        self.smsc.advance(20)
        self.leave(esme)
        self.assertEqual(self.codes(), [])


class EndingTests(JudgeCase):
    def test_close_without_unbind_is_flagged(self) -> None:
        """An ESME that drops the TCP connection while bound: no-unbind."""
        esme = self.esme()
        esme.connection.disconnect()
        self.smsc.flush()
        self.assertEqual(self.codes(), ["no-unbind"])

    def test_unbind_then_close_passes(self) -> None:
        """Unbind, unbind_resp, then close: no finding."""
        self.leave(self.esme())
        self.assertEqual(self.codes(), [])

    def test_crash_outage_is_not_the_esme_fault(self) -> None:
        """Sessions reset by a crash outage of their instance get no no-unbind."""
        esme = self.esme()
        self.smsc.start_outage("SMPP0", "crash", duration=5)
        self.smsc.flush()
        self.assertTrue(esme.closed)
        self.assertEqual(self.codes(), [])


class KeepaliveTests(JudgeCase):
    def test_silent_esme_is_flagged(self) -> None:
        """An ESME that only answers the SMSC's probes for 90 s, never sending enquire_link: no-keepalive (info)."""
        esme = self.esme()
        self.smsc.advance(90)
        self.assertFalse(esme.closed)
        self.assertEqual(self.codes(), ["no-keepalive"])
        self.assertEqual(self.finding("no-keepalive").severity.value, "info")
        self.assertEqual(self.judge.summary()["verdict"], "pass")

    def test_enquire_link_every_30_seconds_passes(self) -> None:
        """enquire_link every 30 s for two minutes: no finding."""
        esme = self.esme()
        self.live(120, esme)
        self.leave(esme)
        self.assertEqual(self.codes(), [])

    def test_enquire_link_storm_is_flagged(self) -> None:
        """enquire_link every 0.2 s: keepalive-too-frequent, counted per excess enquire_link."""
        esme = self.esme()
        for _ in range(10):
            esme.enquire_link()
            self.smsc.advance(0.2)
        self.leave(esme)
        self.assertEqual(self.codes(), ["keepalive-too-frequent"])
        self.assertEqual(self.finding("keepalive-too-frequent").count, 9)

    def test_enquire_link_sent_twice_while_idle_is_flagged_once_per_period(self) -> None:
        """A silent period is one no-keepalive finding occurrence however often the findings are read."""
        esme = self.esme()
        self.smsc.advance(70)
        self.judge.findings()
        self.smsc.advance(10)
        self.assertEqual(self.finding("no-keepalive").count, 1)
        esme.enquire_link()
        self.smsc.flush()
        self.assertEqual(self.finding("no-keepalive").count, 1)

