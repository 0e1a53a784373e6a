"""Tests for smsc_sim.scenario.throttle: the token bucket driven by a clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.scenario.throttle import TokenBucket


def passed(bucket: TokenBucket, attempts: int, parts: int = 1) -> int:
    """How many of ``attempts`` back-to-back takes pass."""
    return sum(bucket.take(parts) for _ in range(attempts))


class TokenBucketTests(SynchronousTestCase):
    """A throttle of ``rate`` messages per second with a burst, on a fake clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    def test_full_bucket_passes_exactly_the_burst(self) -> None:
        """A fresh 30/s bucket with burst 30 lets 30 messages through at once and refuses the 31st."""
        bucket = TokenBucket(30, 30, self.clock)
        self.assertEqual(passed(bucket, 30), 30)
        self.assertFalse(bucket.take())

    def test_steady_state_is_the_rate(self) -> None:
        """After the burst is spent, exactly `rate` messages pass per second, one every 1/rate s."""
        bucket = TokenBucket(8, 5, self.clock)
        self.assertEqual(passed(bucket, 100), 5)
        total = 0
        for _ in range(80):  # ten seconds in steps of 1/8 s (exact in binary, so no clock drift)
            self.clock.advance(0.125)
            self.assertEqual(passed(bucket, 10), 1)
            total += 1
        self.assertEqual(total, 80)

    def test_steady_state_over_uneven_steps(self) -> None:
        """With 30/s, a client trying every 10 ms for 10 s gets 300 messages through after the burst."""
        clock = Clock()
        bucket = TokenBucket(30, 30, clock)
        self.assertEqual(passed(bucket, 100), 30)
        total = 0
        for _ in range(1000):
            clock.advance(0.01)
            total += passed(bucket, 5)
        self.assertEqual(total, 300)

    def test_tokens_never_exceed_the_burst(self) -> None:
        """An idle minute refills the bucket only up to its burst."""
        bucket = TokenBucket(10, 5, self.clock)
        passed(bucket, 5)
        self.clock.advance(60)
        self.assertEqual(passed(bucket, 100), 5)

    def test_parts_are_counted(self) -> None:
        """A 3-part message takes 3 tokens: a burst of 10 passes three of them, not four."""
        bucket = TokenBucket(10, 10, self.clock)
        self.assertEqual(passed(bucket, 4, parts=3), 3)
        self.assertEqual(bucket.available(), 1)
        self.clock.advance(0.2)  # two more tokens: 3 in all
        self.assertTrue(bucket.take(3))

    def test_message_bigger_than_the_burst_passes_when_full_and_leaves_debt(self) -> None:
        """A 5-part message with burst 3 passes on a full bucket, and the next passes only once the debt is paid."""
        bucket = TokenBucket(1, 3, self.clock)
        self.assertTrue(bucket.take(5))
        self.assertEqual(bucket.available(), -2)
        self.clock.advance(2.5)
        self.assertFalse(bucket.take())
        self.clock.advance(0.5)
        self.assertTrue(bucket.take())

    def test_penalty_refuses_everything_for_its_duration(self) -> None:
        """After one refusal, a 1 s penalty refuses all takes for 1 s even though tokens came back."""
        bucket = TokenBucket(10, 1, self.clock, penalty=1.0)
        self.assertTrue(bucket.take())
        self.assertFalse(bucket.take())
        self.clock.advance(0.5)  # five tokens' worth of time, capped at the burst of 1
        self.assertFalse(bucket.take())
        self.assertAlmostEqual(bucket.retry_after(), 0.5)
        self.clock.advance(0.5)
        self.assertTrue(bucket.take())

    def test_refusals_during_the_penalty_do_not_extend_it(self) -> None:
        """Hammering during the penalty does not make it longer."""
        bucket = TokenBucket(10, 1, self.clock, penalty=1.0)
        bucket.take()
        bucket.take()
        for _ in range(9):
            self.clock.advance(0.1)
            self.assertFalse(bucket.take())
        self.clock.advance(0.1)
        self.assertTrue(bucket.take())

    def test_zero_rate_is_unlimited(self) -> None:
        """Rate 0 means throttling off: everything passes."""
        bucket = TokenBucket(0, 0, self.clock)
        self.assertTrue(bucket.unlimited)
        self.assertEqual(passed(bucket, 10_000, parts=3), 10_000)

    def test_zero_burst_means_one_second_of_rate(self) -> None:
        """Burst 0 is read as the rate, like the config's account burst."""
        bucket = TokenBucket(30, 0, self.clock)
        self.assertEqual(bucket.burst, 30)
        self.assertEqual(passed(bucket, 50), 30)

    def test_reconfigure_keeps_tokens_capped_at_the_new_burst(self) -> None:
        """Lowering the rate and burst mid-run keeps at most the new burst and refills at the new rate."""
        bucket = TokenBucket(10, 10, self.clock)
        bucket.reconfigure(2, 2)
        self.assertEqual(passed(bucket, 10), 2)
        self.clock.advance(1)
        self.assertEqual(passed(bucket, 10), 2)

    def test_retry_after_says_when_the_next_message_passes(self) -> None:
        """retry_after tells how long until a take of that size would pass."""
        bucket = TokenBucket(4, 2, self.clock)
        passed(bucket, 2)
        self.assertAlmostEqual(bucket.retry_after(), 0.25)
        self.assertAlmostEqual(bucket.retry_after(2), 0.5)
        self.clock.advance(0.25)
        self.assertEqual(bucket.retry_after(), 0.0)
