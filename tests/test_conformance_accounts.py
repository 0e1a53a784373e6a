"""
The judge's account checks (throttling, binds, failover), each driven by
real ESME sessions on the in-memory simulator: a misbehaving ESME gets
exactly that finding, a well-behaved one none.
"""

from __future__ import annotations

from collections import deque

from tests.conformance_harness import JudgeCase, RawESME

SUBMIT_SM_RESP = 0x80000004


class ThrottleTests(JudgeCase):
    def send_with_retries(self, esme: RawESME, messages: int, per_tick: int, tick: float, retry_after: float) -> None:
        """
        Submit ``messages`` messages, ``per_tick`` every ``tick`` seconds;
        each one refused with 0x58 goes back in the queue and is sent again
        ``retry_after`` seconds later.
        """
        queue: deque[tuple[float, str]] = deque((0.0, f"4477009{n:05d}") for n in range(messages))
        sent: dict[int, str] = {}
        done: set[str] = set()
        for _ in range(100_000):
            now = self.smsc.clock.seconds()
            for _ in range(per_tick):
                if not queue or queue[0][0] > now:
                    break
                _, destination = queue.popleft()
                sent[esme.submit(destination=destination)] = destination
            self.smsc.advance(tick)
            for sequence, status in esme.responses(SUBMIT_SM_RESP).items():
                destination = sent.pop(sequence, "")
                if not destination:
                    continue
                if status == 0x58:
                    queue.append((self.smsc.clock.seconds() + retry_after, destination))
                else:
                    done.add(destination)
            if len(done) == messages:
                return
        self.fail("the messages were never all accepted")

    def test_submitting_at_three_times_the_rate_after_0x58_is_flagged(self) -> None:
        """Retrying at once at 100/s against 30/s, for seconds after the first ESME_RTHROTTLED: throttle-ignored."""
        esme = self.esme()
        self.send_with_retries(esme, 300, per_tick=5, tick=0.05, retry_after=0.0)
        self.leave(esme)
        self.assertEqual(self.codes(), ["throttle-ignored"])
        finding = self.finding("throttle-ignored")
        self.assertEqual((finding.account, finding.severity.value), ("smppclient1", "error"))
        self.assertEqual(finding.evidence[0].command, "submit_sm")

    def test_backing_off_to_the_rate_passes(self) -> None:
        """A burst that meets 0x58, then 1 submit per 50 ms (20/s) with refused ones retried after 1 s: no finding."""
        esme = self.esme()
        for n in range(40):
            esme.submit(destination=f"4477008{n:05d}")
        self.smsc.flush()
        self.assertIn(0x58, esme.responses(SUBMIT_SM_RESP).values())
        self.send_with_retries(esme, 100, per_tick=1, tick=0.05, retry_after=1.0)
        # the ten refused in the burst, sent again
        for n in range(30, 40):
            esme.submit(destination=f"4477008{n:05d}")
            self.smsc.advance(0.05)
        self.leave(esme)
        self.assertEqual(self.codes(), [])

    def test_throttled_message_never_resubmitted_is_flagged(self) -> None:
        """
        40 submits at once against a burst of 30; the 10 refused with 0x58 are
        never sent again: throttled-not-resubmitted.
        """
        esme = self.esme()
        for n in range(40):
            esme.submit(destination=f"4477008{n:05d}")
        self.smsc.flush()
        self.live(50, esme)
        self.assertEqual(self.codes(), [])  # still within the 60 s window
        self.live(20, esme)
        self.leave(esme)
        self.assertEqual(self.codes(), ["throttled-not-resubmitted"])
        finding = self.finding("throttled-not-resubmitted")
        self.assertEqual(finding.count, 10)
        self.assertEqual((finding.evidence[0].command, finding.evidence[0].status), ("submit_sm_resp", 0x58))


class BindTests(JudgeCase):
    def test_transmitter_asking_for_receipts_is_flagged(self) -> None:
        """A transmitter-only account submitting with registered_delivery 1: tx-without-rx."""
        esme = self.esme(bind_command=0x02)
        esme.submit(registered_delivery=1)
        self.smsc.advance(10)
        self.leave(esme)
        self.assertEqual(self.codes(), ["tx-without-rx"])

    def test_transmitter_with_a_receiver_passes(self) -> None:
        """A transmitter and a receiver bind of the account: receipts have somewhere to go, no finding."""
        receiver = self.esme(bind_command=0x01)
        transmitter = self.esme(bind_command=0x02)
        transmitter.submit(registered_delivery=1)
        self.smsc.advance(10)
        self.leave(transmitter)
        self.leave(receiver)
        self.assertEqual(self.codes(), [])

    def test_one_instance_of_a_cluster_is_flagged(self) -> None:
        """An account bound to SMPP1 only, where SMPP1 and SMPP2 form a cluster: single-instance."""
        esme = self.esme("SMPP1")
        self.leave(esme)
        self.assertEqual(self.codes(), ["single-instance"])
        self.assertEqual(self.finding("single-instance").instance, "SMPP1")

    def test_both_instances_pass(self) -> None:
        """Binds on SMPP1 and SMPP2: no finding."""
        first, second = self.esme("SMPP1"), self.esme("SMPP2")
        self.leave(first)
        self.leave(second)
        self.assertEqual(self.codes(), [])

    def test_third_bind_over_the_quota_is_flagged(self) -> None:
        """A third bind with a quota of 2 is refused with ESME_RALYBND: bind-quota-exceeded."""
        esmes = [self.esme() for _ in range(3)]
        self.assertEqual(esmes[2].responses(0x80000009), {1: 0x05})
        for esme in esmes[:2]:
            self.leave(esme)
        esmes[2].connection.disconnect()
        self.smsc.flush()
        self.assertEqual(self.codes(), ["bind-quota-exceeded"])
        [evidence] = self.finding("bind-quota-exceeded").evidence
        self.assertEqual(evidence[:3], ("bind_transceiver_resp", 1, 0x05))

    def test_binds_within_the_quota_pass(self) -> None:
        """Two binds with a quota of 2: no finding."""
        esmes = [self.esme() for _ in range(2)]
        for esme in esmes:
            self.leave(esme)
        self.assertEqual(self.codes(), [])

    def test_rebinding_without_backoff_is_flagged(self) -> None:
        """Six bind/unbind cycles within 3 s (more than 5 per 10 s): rebind-storm."""
        for _ in range(6):
            self.leave(self.esme())
            self.smsc.advance(0.5)
        self.assertEqual(self.codes(), ["rebind-storm"])
        finding = self.finding("rebind-storm")
        self.assertEqual(finding.count, 1)
        self.assertEqual([e.command for e in finding.evidence], ["bind_transceiver"] * 6)

    def test_rebinding_with_backoff_passes(self) -> None:
        """Six bind/unbind cycles 5 s apart: no finding."""
        for _ in range(6):
            self.leave(self.esme())
            self.smsc.advance(5)
        self.assertEqual(self.codes(), [])


class FailoverTests(JudgeCase):
    def test_esme_that_waits_for_its_instance_is_flagged(self) -> None:
        """
        SMPP1 crashes for 60 s; the ESME bound only there waits for it
        instead of binding to SMPP2: no-failover (and single-instance,
        which an ESME on one instance always gets).
        """
        esme = self.esme("SMPP1")
        self.smsc.start_outage("SMPP1", "crash", duration=60)
        self.smsc.flush()
        self.assertTrue(esme.closed)
        self.smsc.advance(29)
        self.assertEqual(self.codes(), ["single-instance"])
        self.smsc.advance(2)
        self.assertEqual(self.codes(), ["no-failover", "single-instance"])
        finding = self.finding("no-failover")
        self.assertEqual((finding.instance, finding.evidence[0].command), ("SMPP1", "outage"))
        self.smsc.advance(30)
        self.leave(self.esme("SMPP1"))
        self.assertEqual(self.finding("no-failover").count, 1)

    def test_esme_that_binds_to_the_other_instance_passes(self) -> None:
        """SMPP1 crashes; the ESME binds to SMPP2 5 s later: no finding at all."""
        esme = self.esme("SMPP1")
        self.smsc.start_outage("SMPP1", "crash", duration=60)
        self.smsc.advance(5)
        self.assertTrue(esme.closed)
        other = self.esme("SMPP2")
        self.live(60, other)
        self.leave(other)
        self.assertEqual(self.codes(), [])

    def test_esme_already_bound_to_both_passes(self) -> None:
        """An ESME bound to SMPP1 and SMPP2 loses SMPP1 in a graceful outage: it still has SMPP2, no finding."""
        first, second = self.esme("SMPP1"), self.esme("SMPP2")
        self.smsc.start_outage("SMPP1", "graceful", duration=60)
        self.smsc.flush()
        self.assertTrue(first.closed)
        self.live(60, second)
        self.leave(second)
        self.assertEqual(self.codes(), [])

    def test_standalone_instance_down_for_the_whole_window_is_no_finding(self) -> None:
        """SMPP0 (alone in its cluster) crashes for 60 s: there was nowhere to rebind within 30 s, no finding."""
        esme = self.esme("SMPP0")
        self.smsc.start_outage("SMPP0", "crash", duration=60)
        self.smsc.advance(61)
        self.assertTrue(esme.closed)
        self.assertEqual(self.codes(), [])

    def test_reset_cancels_the_failover_deadline(self) -> None:
        """After the judge is reset, an outage before the reset produces no finding."""
        self.esme("SMPP1")
        self.smsc.start_outage("SMPP1", "crash", duration=60)
        self.smsc.advance(1)
        self.judge.reset()
        self.smsc.advance(40)
        self.assertEqual(self.codes(), [])
