"""
Cluster-wide control as one process applies it (``smsc_sim.cluster.control``),
on an in-memory simulator running only SMPP1 of the cluster NA, with a
stand-in for the Redis channel and a MemoryReactorClock: what the other
processes' messages and the state in force do to this process's instances
and scenario.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import provider

from smsc_sim.cluster.control import ClusterControl
from smsc_sim.config import default_config
from smsc_sim.simulator import Simulator
from smsc_sim.topology import OutageError


class FakeChannel:
    """A cluster's control channel that records what is published and holds the state."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.published: list[dict[str, Any]] = []
        self.held: dict[str, Any] = {}

    def publish(self, message: dict[str, Any], state: dict[str, Any | None] | None = None) -> Deferred[bool]:
        for field, value in (state or {}).items():
            if value is None:
                self.held.pop(field, None)
            else:
                self.held[field] = value
        self.published.append(message)
        return succeed(True)

    def state(self) -> Deferred[dict[str, Any]]:
        return succeed(dict(self.held))

    def clear_shared(self, keep_state: Callable[[str], bool]) -> Deferred[int]:
        self.held = {k: v for k, v in self.held.items() if keep_state(k)}
        return succeed(0)


class ControlTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        config = dataclasses.replace(default_config(), run_instances=("SMPP1",))
        self.simulator = Simulator(config, self.reactor)
        self.control = ClusterControl(self.simulator)
        self.channel = FakeChannel("NA")
        self.control.add(self.channel)
        self.simulator.control = self.control
        self.simulator.startService()
        self.smpp1 = self.simulator.instances["SMPP1"]
        self.logged: list[LogEvent] = []

        @provider(ILogObserver)
        def observe(event: LogEvent) -> None:
            self.logged.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def tearDown(self) -> None:
        self.simulator.stopService()

    def message(self, kind: str, id: str = "1", **data: Any) -> dict[str, Any]:
        return dict(data, kind=kind, id=id, origin="other-host:42:abc")

    def test_an_outage_from_another_process_closes_this_instance_once(self) -> None:
        """
        An outage of SMPP1 published by another process closes SMPP1's
        listener here; the same message heard again (on a second channel) is
        not applied twice, and the end of the outage reopens it.
        """
        self.assertIsNotNone(self.smpp1.listeners[0].port)
        self.control.apply(self.message("outage", instance="SMPP1", mode="crash", duration=None, options={}))
        self.assertEqual(self.smpp1.mode, "crash")
        self.assertIsNone(self.smpp1.listeners[0].port)
        self.smpp1.end_outage()
        self.control.apply(self.message("outage", instance="SMPP1", mode="crash", duration=None, options={}))
        self.assertEqual(self.smpp1.mode, "up")
        self.control.apply(self.message("outage", id="2", instance="SMPP1", mode="slow", duration=5, options={"latency": 1}))
        self.assertEqual((self.smpp1.mode, self.smpp1.latency), ("slow", 1.0))
        self.control.apply(self.message("end_outage", id="3", instance="SMPP1"))
        self.assertEqual(self.smpp1.mode, "up")

    def test_an_outage_of_an_instance_run_elsewhere_is_left_to_its_process(self) -> None:
        """
        An outage of SMPP2 (run by another process) changes nothing here, whether
        heard on the channel or called by this process's scenario timeline; an
        unknown instance is still an error.
        """
        self.control.apply(self.message("outage", instance="SMPP2", mode="crash", duration=None, options={}))
        self.assertTrue(self.control.runs_elsewhere("SMPP2"))
        self.assertFalse(self.control.runs_elsewhere("SMPP1"))
        done: list[Any] = []
        self.simulator.start_outage("SMPP2", "crash").addCallback(done.append)
        self.assertEqual((done, self.smpp1.mode), ([None], "up"))
        self.assertRaises(OutageError, self.simulator.start_outage, "NOPE", "crash")

    def test_a_scenario_that_cannot_load_is_one_log_line(self) -> None:
        """A scenario switch whose text does not load here keeps the scenario and says why in one warning."""
        self.control.apply(self.message("scenario", spec={"yaml": "rulez: []\n"}))
        self.assertEqual(self.simulator.scenario.describe()["name"], "default")
        warnings = [e for e in self.logged if "not applied" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["kind"], "scenario")
        self.assertNotIn("\n", warnings[0]["error"])

    def test_a_scenario_and_a_reset_from_another_process(self) -> None:
        """A scenario switch by name applies here; a reset brings the configured one back, ends outages and tells the API."""
        self.control.apply(self.message("scenario", spec={"name": "throttling"}))
        self.assertEqual(self.simulator.scenario.describe()["name"], "throttling")
        self.smpp1.start_outage("reject-binds")
        cleared: list[bool] = []
        self.control.reset_hooks.append(lambda: cleared.append(True))
        self.control.apply(self.message("reset", id="2", flags={"outages": True, "scenario": True, "sessions": False}))
        self.assertEqual(self.simulator.scenario.describe()["name"], "default")
        self.assertEqual(self.smpp1.mode, "up")
        self.assertEqual(cleared, [True])  # the API's submit log, say

    def test_the_state_in_force_is_taken_at_start(self) -> None:
        """
        The state read at start: the scenario switches, an outage still running
        applies for what is left of it, one that has ended meanwhile does not.
        """
        now = self.reactor.seconds()
        self.channel.held = {
            "scenario": {"name": "throttling"},
            "outage:SMPP1": {"mode": "reject-binds", "options": {"status": 13}, "until": now + 30},
        }
        self.control.resync("NA")
        self.assertEqual(self.simulator.scenario.describe()["name"], "throttling")
        self.assertEqual((self.smpp1.mode, self.smpp1.reject_status), ("reject-binds", 13))
        self.reactor.advance(31)
        self.assertEqual(self.smpp1.mode, "up")
        self.channel.held["outage:SMPP1"] = {"mode": "crash", "options": {}, "until": now + 10}
        self.control.resync("NA")
        self.assertEqual(self.smpp1.mode, "up")

    def test_a_store_that_does_not_answer_is_not_waited_for(self) -> None:
        """
        While Redis takes nothing (commands wait for it), publishing answers
        False after 2 s, with one warning, so that an API call never hangs.
        """
        self.channel.publish = lambda message, state=None: Deferred()  # type: ignore[method-assign]
        answers: list[bool] = []
        self.control.outage("SMPP2", "crash", None, {}).addCallback(answers.append)
        self.reactor.advance(1.9)
        self.assertEqual(answers, [])
        self.reactor.advance(0.2)
        self.assertEqual(answers, [False])
        self.assertEqual(len([e for e in self.logged if "not shared" in e.get("log_format", "")]), 1)

    def test_what_this_process_shares(self) -> None:
        """
        An outage, a switch and a reset are published with the state that must
        outlive them: the outage until it ends, the scenario until a reset.
        """
        self.control.outage("SMPP2", "crash", 10.0, {"status": 8, "junk": 1})
        self.assertEqual(self.channel.published[-1]["options"], {"status": 8})
        self.assertEqual(self.channel.held["outage:SMPP2"]["until"], self.reactor.seconds() + 10)
        self.control.scenario({"name": "throttling"})
        self.assertEqual(self.channel.held["scenario"], {"name": "throttling"})
        self.control.reset({"outages": True, "scenario": True, "sessions": False})
        self.assertEqual(self.channel.held, {})
        self.assertEqual([m["kind"] for m in self.channel.published], ["outage", "scenario", "reset"])
        self.assertEqual(len({m["id"] for m in self.channel.published}), 3)
