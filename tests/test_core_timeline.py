"""
The core's timeline on a fake clock: due actions run in order, in bounded
batches, one batch per reactor turn.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.core.timeline import Timeline

T0 = 1_700_000_000.0


class BatchTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.rightNow = T0
        self.timeline = Timeline(self.clock, batch=100)
        self.ran: list[int] = []

    def run_one_turn(self) -> None:
        """One reactor turn: the calls due now, not those they schedule (unlike Clock.advance)."""
        due = [call for call in self.clock.calls if call.getTime() <= self.clock.seconds()]
        for call in due:
            self.clock.calls.remove(call)
            call.func(*call.args, **call.kw)

    def test_a_big_bucket_runs_a_batch_per_turn(self) -> None:
        """250 actions due together run 100, 100, then 50, one batch per reactor turn, in order."""
        for n in range(250):
            self.timeline.at(T0 + 0.05, self.ran.append, n)
        self.clock.rightNow = T0 + 0.1
        counts = []
        while self.clock.getDelayedCalls():
            self.run_one_turn()
            counts.append(len(self.ran))
        self.assertEqual(counts, [100, 200, 250])
        self.assertEqual(self.ran, list(range(250)))
        self.assertEqual(len(self.timeline), 0)

    def test_later_buckets_wait_behind_earlier_ones(self) -> None:
        """Actions of a later bucket run after what is left of an earlier one, whatever the clock says."""
        for n in range(150):
            self.timeline.at(T0 + 0.05, self.ran.append, n)
        self.timeline.at(T0 + 0.15, self.ran.append, 1000)
        self.clock.advance(0.2)
        self.assertEqual(self.ran, list(range(150)) + [1000])

    def test_waiting_actions_are_counted_and_cleared(self) -> None:
        """Actions due but not run yet count as waiting; clear drops them and leaves the clock empty."""
        for n in range(150):
            self.timeline.at(T0 + 0.05, self.ran.append, n)
        self.timeline.at(T0 + 5, self.ran.append, 1000)
        self.clock.rightNow = T0 + 0.1
        self.run_one_turn()
        self.assertEqual(len(self.ran), 100)
        self.assertEqual(len(self.timeline), 51)
        self.timeline.clear()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(len(self.ran), 100)

    def test_action_clearing_the_timeline(self) -> None:
        """An action that clears the timeline (a reset) ends its batch without error; nothing else runs."""
        self.timeline.at(T0 + 0.05, self.ran.append, 1)
        self.timeline.at(T0 + 0.05, self.timeline.clear)
        self.timeline.at(T0 + 0.05, self.ran.append, 2)
        self.clock.advance(0.1)
        self.assertEqual(self.ran, [1])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_failing_action_does_not_stop_the_batch(self) -> None:
        """An action that raises is logged; the others of its batch still run."""

        def broken() -> None:
            raise RuntimeError("broken action")

        self.timeline.at(T0 + 0.05, self.ran.append, 1)
        self.timeline.at(T0 + 0.05, broken)
        self.timeline.at(T0 + 0.05, self.ran.append, 2)
        self.clock.advance(0.1)
        self.assertEqual(self.ran, [1, 2])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
