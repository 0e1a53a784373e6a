"""
The ``window`` throttle model: at most N parts in any one-second window,
measured from idle and flat out, on a fake clock; and the ``bucket`` model it
replaces as the accounts' default.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.contracts import ThrottleSettings
from smsc_sim.core.throttle import SlidingWindow, TokenBucket
from smsc_sim.scenario.loader import parse_scenario
from smsc_sim.smpp.constants import CommandStatus
from tests.test_core_fakes import Harness, ScriptedScenario

#: a client trying once a millisecond: flat out for a simulator on a fake clock
STEP_MS = 1


def most_in_any_second(times_ms: list[int]) -> int:
    """The most accepted parts inside any half-open one-second window [t, t + 1 s)."""
    best = 0
    j = 0
    for i, start in enumerate(times_ms):
        while j < len(times_ms) and times_ms[j] < start + 1000:
            j += 1
        best = max(best, j - i)
    return best


def flat_out(clock: Clock, take: object, seconds: int) -> list[int]:
    """Try every millisecond for ``seconds``; the milliseconds at which a try passed."""
    accepted: list[int] = []
    for ms in range(0, seconds * 1000, STEP_MS):
        if take():  # type: ignore[operator]
            accepted.append(ms)
        clock.advance(STEP_MS / 1000)
    return accepted


class SlidingWindowTests(SynchronousTestCase):
    """The limiter alone."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    def test_flat_out_from_idle_never_more_than_30_in_any_second(self) -> None:
        """A client sending flat out for 5 s from idle gets 30 per second and never 31 in any one-second window."""
        window = SlidingWindow(30, self.clock)
        accepted = flat_out(self.clock, window.take, 5)
        self.assertEqual(most_in_any_second(accepted), 30)
        self.assertEqual(len(accepted), 150)
        self.assertEqual(sum(1 for ms in accepted if ms < 1000), 30)

    def test_bucket_lets_59_through_in_the_first_second(self) -> None:
        """The bucket model, for contrast: a 30/s bucket passes 59 in the first second from idle."""
        bucket = TokenBucket(30, 0, self.clock)
        accepted = flat_out(self.clock, bucket.take, 1)
        self.assertEqual(len(accepted), 59)

    def test_a_part_stops_counting_exactly_one_second_later(self) -> None:
        """30 at once fill the window; the 31st passes at exactly +1 s, not a moment before."""
        window = SlidingWindow(30, self.clock)
        self.assertEqual(sum(window.take() for _ in range(31)), 30)
        self.assertAlmostEqual(window.retry_after(), 1.0)
        self.clock.advance(0.999)
        self.assertFalse(window.take())
        self.clock.advance(0.001)
        self.assertTrue(window.take())

    def test_parts_count_and_a_huge_message_passes_only_when_idle(self) -> None:
        """A 3-part message takes 3 of 10; a 12-part message passes only on an empty window, then blocks a second."""
        window = SlidingWindow(10, self.clock)
        self.assertEqual(sum(window.take(3) for _ in range(4)), 3)
        self.assertFalse(window.take(12))
        self.clock.advance(1.0)
        self.assertTrue(window.take(12))
        self.assertFalse(window.take())
        self.clock.advance(1.0)
        self.assertTrue(window.take())

    def test_rate_below_one_is_one_per_interval(self) -> None:
        """0.5/s means one part per 2 s."""
        window = SlidingWindow(0.5, self.clock)
        self.assertEqual((window.limit, window.span), (1, 2.0))
        self.assertTrue(window.take())
        self.clock.advance(1.9)
        self.assertFalse(window.take())
        self.clock.advance(0.1)
        self.assertTrue(window.take())

    def test_penalty_refuses_everything_for_its_duration(self) -> None:
        """After a refusal with a 5 s penalty, the window refuses until the penalty ends though it has room."""
        window = SlidingWindow(1, self.clock, penalty=5.0)
        self.assertTrue(window.take())
        self.assertFalse(window.take())
        self.clock.advance(4.9)
        self.assertFalse(window.take())
        self.clock.advance(0.1)
        self.assertTrue(window.take())

    def test_zero_rate_is_unlimited(self) -> None:
        """Rate 0 lets everything through."""
        window = SlidingWindow(0, self.clock)
        self.assertEqual(sum(window.take() for _ in range(1000)), 1000)


class AccountModelTests(SynchronousTestCase):
    """The account's ``throttle_model`` in the core: what submit_sm statuses an ESME sees."""

    def statuses_flat_out(self, h: Harness, seconds: int) -> list[int]:
        session = h.bound()
        accepted: list[int] = []
        for ms in range(seconds * 1000):
            reply = h.submit(session, registered_delivery=0)
            assert reply.pdu is not None
            status = reply.pdu.command_status
            self.assertIn(status, (0, CommandStatus.ESME_RTHROTTLED))
            if status == 0:
                accepted.append(ms)
            h.clock.advance(0.001)
        return accepted

    def test_default_account_window_from_idle_flat_out(self) -> None:
        """A default account (30/s, window) sending flat out for 3 s: 30 accepted per second, at most 30 in any second, the rest 0x58."""
        h = Harness(accounts=(AccountSettings("esme", "secret", max_binds=10),))
        accepted = self.statuses_flat_out(h, 3)
        self.assertEqual(AccountSettings("x", "y").throttle_model, "window")
        self.assertEqual(most_in_any_second(accepted), 30)
        self.assertEqual(len(accepted), 90)
        self.assertEqual(h.core.stats()["throttled"], 3000 - 90)

    def test_bucket_model_still_available(self) -> None:
        """``throttle_model: bucket`` keeps the token bucket: 59 in the first second from idle."""
        h = Harness(accounts=(AccountSettings("esme", "secret", max_binds=10, throttle_model="bucket"),))
        accepted = self.statuses_flat_out(h, 1)
        self.assertEqual(len(accepted), 59)

    def test_window_is_shared_across_the_cluster(self) -> None:
        """An account of 2/s: two submits on SMPP1 and SMPP2 fill the window; a third half a second later is still throttled."""
        h = Harness(accounts=(AccountSettings("esme", "secret", throughput=2),))
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        statuses = [h.submit(s).pdu.command_status for s in (one, two, one)]  # type: ignore[union-attr]
        self.assertEqual(statuses, [0, 0, CommandStatus.ESME_RTHROTTLED])
        h.clock.advance(0.5)
        self.assertEqual(h.submit(two).pdu.command_status, CommandStatus.ESME_RTHROTTLED)  # type: ignore[union-attr]
        h.clock.advance(0.5)
        self.assertEqual(h.submit(two).pdu.command_status, 0)  # type: ignore[union-attr]

    def test_scenario_throttle_model_window(self) -> None:
        """A scenario throttle with ``model: window`` limits per one-second window instead of a bucket."""
        scenario = ScriptedScenario(throttle_settings=ThrottleSettings(rate=5, burst=0, model="window"))
        h = Harness(scenario)
        accepted = self.statuses_flat_out(h, 2)
        self.assertEqual((len(accepted), most_in_any_second(accepted)), (10, 5))


class ModelSettingTests(SynchronousTestCase):
    """Where the model is set, and bad values."""

    def test_scenario_section_reads_model(self) -> None:
        """``throttle: {rate: 5, model: window}`` gives the core a window; without model, a bucket as before."""
        scenario = parse_scenario("name: w\nthrottle: {rate: 5, model: window}\n")
        self.assertEqual(scenario.throttle.model, "window")  # type: ignore[union-attr]
        self.assertEqual(parse_scenario("name: b\nthrottle: {rate: 5}\n").throttle.model, "bucket")  # type: ignore[union-attr]

    def test_config_refuses_an_unknown_model(self) -> None:
        """An account with ``throttle_model: leaky`` stops the start with one line naming the field and the choices."""
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write("accounts:\n  - {system_id: a, password: b, throttle_model: leaky}\n")
            with self.assertRaises(ConfigError) as caught:
                load_config(path, {}, {})
        message = str(caught.exception)
        self.assertIn("accounts[0].throttle_model: unknown value", message)
        self.assertIn("window, bucket", message)
        self.assertNotIn("\n", message)


class WindowMemoryTests(SynchronousTestCase):
    def test_a_high_rate_window_stays_small_and_exact(self) -> None:
        """At 1 000 000/s, a million takes in one clock tick pass and the next is refused; the window holds one entry, not a million."""
        clock = Clock()
        window = SlidingWindow(1_000_000, clock)
        self.assertEqual(sum(window.take() for _ in range(1_000_001)), 1_000_000)
        self.assertEqual(len(window._taken), 1)
        clock.advance(1.0)
        self.assertTrue(window.take())
