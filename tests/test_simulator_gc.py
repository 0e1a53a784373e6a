"""
The garbage-collector policy of the twistd form: :class:`~smsc_sim.gc_freezer.GCFreezer`
on a fake clock with a fake collector, and how the simulator and
``tap.makeService`` switch it on.
"""

from __future__ import annotations

import gc

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import default_config
from smsc_sim.service import build_service
from smsc_sim.gc_freezer import GCFreezer
from smsc_sim.tap import GC_THRESHOLD0, Options, makeService


class FakeCollector:
    """Records what the freezer asks of the :mod:`gc` module; freezing keeps a count of 'objects'."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.frozen = 0
        #: what the next freeze adds to the frozen count
        self.growth = 100

    def freeze(self) -> None:
        self.calls.append("freeze")
        self.frozen += self.growth

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")
        self.frozen = 0

    def collect(self) -> int:
        self.calls.append("collect")
        return 0

    def get_freeze_count(self) -> int:
        self.calls.append("count")
        return self.frozen


class GCFreezerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.held = 0
        self.evicted = 0
        self.gc = FakeCollector()
        self.freezer = GCFreezer(self.clock, lambda: (self.held, self.evicted), 1.0, 1000, self.gc)
        self.freezer.start()

    def test_freezes_once_enough_records_arrived(self) -> None:
        """Each second in which at least min_growth records arrived ends with one freeze."""
        self.held = 999
        self.clock.advance(1.0)
        self.assertEqual(self.gc.calls, [])
        self.held = 1000
        self.clock.advance(1.0)
        self.assertEqual(self.gc.calls, ["freeze"])
        self.held = 5000
        self.clock.advance(1.0)
        self.assertEqual(self.gc.calls, ["freeze", "freeze"])
        self.assertEqual(self.freezer.freezes, 2)

    def test_idle_simulator_never_freezes(self) -> None:
        """No records, no freeze, however long it runs."""
        self.clock.advance(3600)
        self.assertEqual(self.gc.calls, [])

    def test_reset_store_counts_afresh(self) -> None:
        """After a reset (fewer records than before) growth counts from the new size."""
        self.held = 3000
        self.clock.advance(1.0)
        self.held = 10
        self.clock.advance(1.0)
        self.held = 900
        self.clock.advance(1.0)
        self.assertEqual(self.gc.calls, ["freeze"])
        self.held = 1010
        self.clock.advance(1.0)
        self.assertEqual(self.gc.calls, ["freeze", "freeze"])

    def test_store_turnover_without_garbage_never_thaws(self) -> None:
        """A full store that keeps turning over while the frozen set stays the same size is never collected."""
        self.held = 2000
        self.clock.advance(1.0)
        self.gc.growth = 0  # records dying as fast as they arrive
        for turn in range(1, 6):
            self.evicted = 2000 * turn
            self.clock.advance(1.0)
        self.assertNotIn("unfreeze", self.gc.calls)
        self.assertEqual(self.freezer.thaws, 0)
        self.assertEqual(self.gc.calls.count("count"), 5)

    def test_frozen_garbage_doubling_thaws_and_collects_once(self) -> None:
        """When what is frozen doubles between two turnovers, everything is thawed, collected and frozen again."""
        self.held = 2000
        self.clock.advance(1.0)  # frozen 100
        self.evicted = 2000
        self.clock.advance(1.0)  # turnover: counted 100, then frozen 200
        self.gc.growth = 1000  # cyclic garbage piling up in the frozen set
        self.evicted = 3000
        self.clock.advance(1.0)  # not a turnover yet (1000 < 2000 held): frozen 1200
        self.assertEqual(self.freezer.thaws, 0)
        self.evicted = 4000
        self.gc.calls.clear()
        self.clock.advance(1.0)  # turnover: 1200 > 2 * 100
        self.assertEqual(self.gc.calls, ["count", "unfreeze", "collect", "freeze", "count", "freeze"])
        self.assertEqual(self.freezer.thaws, 1)

    def test_stop_stops_checking(self) -> None:
        """A stopped freezer leaves the clock empty and freezes nothing more."""
        self.freezer.stop()
        self.held = 10_000
        self.clock.advance(10)
        self.assertEqual(self.gc.calls, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SimulatorGCTests(SynchronousTestCase):
    def test_off_unless_asked(self) -> None:
        """A simulator built for a test or a fixture touches no process-wide GC setting."""
        simulator = build_service(default_config(), MemoryReactorClock())
        self.assertIsNone(simulator.gc_freezer)

    def test_freezer_runs_with_the_service(self) -> None:
        """freeze_gc's freezer checks on the simulator's clock while the service runs, and stops with it."""
        reactor = MemoryReactorClock()
        simulator = build_service(default_config(), reactor)
        freezer = simulator.freeze_gc(interval=2.0)
        self.assertEqual(simulator.records_held(), (0, 0))
        simulator.startService()
        self.assertIn(2.0, [call.getTime() for call in reactor.getDelayedCalls()])
        simulator.stopService()
        self.assertFalse(freezer._loop.running)


class TapGCPolicyTests(SynchronousTestCase):
    def test_twistd_form_freezes_and_raises_threshold(self) -> None:
        """``twistd smsc-sim`` raises the generation-0 threshold and freezes the store as it grows."""
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        options = Options(environ={})
        options.parseOptions(["--api=", "--smpp1", "tcp:0:interface=127.0.0.1", "--seed", "1"])
        service = makeService(options)
        self.assertEqual(gc.get_threshold(), (GC_THRESHOLD0, before[1], before[2]))
        self.assertIsNotNone(service.gc_freezer)  # type: ignore[attr-defined]
