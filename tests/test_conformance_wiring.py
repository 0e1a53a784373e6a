"""
The judge inside the simulator: the ``conformance:`` section of the config
and of a scenario, one judge per simulator listening from the start,
``reset`` clearing it, and a scenario's throttle reaching the judge.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import default_config
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.conformance.wiring import markdown_path
from smsc_sim.scenario.loader import parse_scenario
from smsc_sim.scenario.source import ScenarioError
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.conformance_harness import RawESME


class _Files(SynchronousTestCase):
    def write(self, text: str, name: str = "file.yaml") -> str:
        """Write ``text`` to a fresh file and return its path."""
        directory = tempfile.mkdtemp(prefix="smsc-sim-test-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path


class ConfigSectionTests(_Files):
    """The ``conformance:`` section and ``conformance_report`` of the config file."""

    def test_thresholds_are_read(self) -> None:
        """Thresholds given under conformance: are kept; the others keep the judge's defaults."""
        config = load_config(self.write("conformance:\n  failover_window: 90\n  rebind_max: 3\n"), {}, {})
        self.assertEqual(config.conformance, {"failover_window": 90, "rebind_max": 3})
        smsc = MemorySMSC(config)
        self.addCleanup(smsc.stop)
        self.assertEqual(smsc.simulator.judge.thresholds.failover_window, 90.0)
        self.assertEqual(smsc.simulator.judge.thresholds.rebind_max, 3)
        self.assertEqual(smsc.simulator.judge.thresholds.deliver_sm_slow, 5.0)

    def test_bad_threshold_names_file_line_and_key(self) -> None:
        """A fractional count stops the start with one line naming the file, the line and the key."""
        path = self.write("seed: 1\nconformance:\n  rebind_max: 2.5\n")
        with self.assertRaises(ConfigError) as caught:
            load_config(path, {}, {})
        self.assertEqual(str(caught.exception), f"{path}:3: conformance.rebind_max: expected a whole number, got 2.5")

    def test_unknown_and_negative_thresholds_are_refused(self) -> None:
        """A misspelt threshold and a negative one are refused, each naming its key."""
        with self.assertRaises(ConfigError) as caught:
            load_config(self.write("conformance:\n  failover_windw: 3\n"), {}, {})
        self.assertIn(":2: conformance.failover_windw: unknown threshold; expected one of", str(caught.exception))
        with self.assertRaises(ConfigError) as caught:
            load_config(self.write("conformance:\n  deliver_sm_slow: -1\n"), {}, {})
        self.assertIn(":2: conformance.deliver_sm_slow: must be 0 or more, got -1.0", str(caught.exception))
        with self.assertRaises(ConfigError) as caught:
            load_config(self.write("conformance: 5\n"), {}, {})
        self.assertIn(":1: conformance: not a mapping", str(caught.exception))

    def test_report_path_from_file_environment_and_option(self) -> None:
        """
        conformance_report comes from the file, SMSC_SIM_CONFORMANCE_REPORT or --conformance-report, made absolute.
        """
        directory = tempfile.mkdtemp(prefix="smsc-sim-test-")
        self.addCleanup(shutil.rmtree, directory)
        inside = os.path.join(directory, "report.xml")
        self.assertEqual(load_config(self.write(f"conformance_report: {inside}\n"), {}, {}).conformance_report, inside)
        from_env = load_config(None, {}, {"SMSC_SIM_CONFORMANCE_REPORT": inside})
        self.assertEqual(from_env.conformance_report, inside)
        from_option = load_config(None, {"conformance_report": inside}, {"SMSC_SIM_CONFORMANCE_REPORT": "x.xml"})
        self.assertEqual(from_option.conformance_report, inside)
        self.assertIsNone(load_config(None, {}, {}).conformance_report)

    def test_report_in_missing_directory_is_refused(self) -> None:
        """A report path whose directory does not exist stops the start, naming the option."""
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"conformance_report": "/nonexistent-dir/report.xml"}, {})
        self.assertEqual(
            str(caught.exception),
            "option --conformance-report: conformance_report: no such directory for "
            "'/nonexistent-dir/report.xml' (expected a file in an existing directory)",
        )

    def test_markdown_beside_the_report(self) -> None:
        """The Markdown summary goes beside the JUnit file: report.xml -> report.md, other names get .md added."""
        self.assertEqual(markdown_path("/tmp/report.xml"), "/tmp/report.md")
        self.assertEqual(markdown_path("/tmp/junit"), "/tmp/junit.md")


class ScenarioOverrideTests(_Files):
    """A scenario's ``conformance:`` key overrides the config's thresholds while it runs."""

    def test_bad_override_names_file_line_and_key(self) -> None:
        """A scenario with a bad threshold is refused with its file, line and key path."""
        with self.assertRaises(ScenarioError) as caught:
            parse_scenario("name: x\nconformance:\n  failover_window: soon\n", "drill.yaml")
        self.assertIn("drill.yaml:3", str(caught.exception))
        self.assertIn("conformance.failover_window", str(caught.exception))
        self.assertIn("expected a number, got 'soon'", str(caught.exception))

    def test_override_applies_on_switch_and_goes_with_the_scenario(self) -> None:
        """
        Loading a scenario with conformance: changes the judge's thresholds; loading another puts the config's back.
        """
        config = dataclasses.replace(default_config(), conformance={"failover_window": 45.0, "rebind_max": 7})
        smsc = MemorySMSC(config)
        self.addCleanup(smsc.stop)
        path = self.write("name: strict\nconformance:\n  failover_window: 120\n", "strict.yaml")
        smsc.load_scenario(path)
        thresholds = smsc.simulator.judge.thresholds
        self.assertEqual((thresholds.failover_window, thresholds.rebind_max), (120.0, 7))
        smsc.load_scenario("default")
        thresholds = smsc.simulator.judge.thresholds
        self.assertEqual((thresholds.failover_window, thresholds.rebind_max), (45.0, 7))


class SimulatorJudgeTests(SynchronousTestCase):
    """Every simulator has a judge listening from the start; reset clears it."""

    def connect(self, smsc: MemorySMSC, instance: str = "SMPP0") -> RawESME:
        """A raw ESME bound as transceiver on ``instance``."""
        esme = RawESME(smsc.clock)
        esme.connection = smsc.connect(esme, instance)
        esme.send(wire.bind(0x09, esme.next_sequence()))
        smsc.flush()
        return esme

    def test_close_without_unbind_is_judged_and_reset_clears_it(self) -> None:
        """An ESME that closes TCP without unbind gets no-unbind in simulator.judge; simulator.reset() forgets it."""
        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        esme = self.connect(smsc)
        esme.connection.disconnect()
        smsc.flush()
        self.assertIn("no-unbind", {f.code for f in smsc.simulator.judge.findings()})
        smsc.simulator.reset()
        self.assertEqual(smsc.simulator.judge.findings(), [])

    def test_timeline_throttle_reaches_the_judge(self) -> None:
        """When the scenario's timeline drops the throttle, the judge measures the account against the new rate."""
        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        path = os.path.join(tempfile.mkdtemp(prefix="smsc-sim-test-"), "drop.yaml")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        with open(path, "w", encoding="utf-8") as f:
            f.write(
                "name: drop\nthrottle: {rate: 40}\ntimeline:\n  steps:\n"
                "    - at: 10s\n      throttle: {rate: 5}\n    - at: 30s\n      throttle: {rate: 40}\n"
            )
        smsc.load_scenario(path)
        judge = smsc.simulator.judge
        self.assertEqual(judge.landscape.throughput["smppclient1"], 40.0)
        smsc.advance(11)
        self.assertEqual(judge.landscape.throughput["smppclient1"], 5.0)
        smsc.advance(20)
        self.assertEqual(judge.landscape.throughput["smppclient1"], 40.0)

    def test_throttle_of_a_bind_scope_is_not_judged_per_account(self) -> None:
        """
        A per-bind scenario throttle leaves the account's rate unjudged (0) rather than judged against a wrong rate.
        """
        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        from smsc_sim.scenario.engine import ScenarioRuntime

        scenario = parse_scenario("name: per-bind\nthrottle: {rate: 5, scope: bind}\nlimits: {throughput: 9}\n")
        smsc.simulator.set_scenario(ScenarioRuntime(scenario, smsc.clock, 0))
        self.assertEqual(smsc.simulator.judge.landscape.throughput["smppclient1"], 0.0)
        scenario = parse_scenario("name: limits\nlimits: {throughput: 9}\nwindow: {size: 3}\n")
        smsc.simulator.set_scenario(ScenarioRuntime(scenario, smsc.clock, 0))
        landscape = smsc.simulator.judge.landscape
        self.assertEqual((landscape.throughput["smppclient1"], landscape.inbound_window), (9.0, 3))


class JudgeSwitchTests(_Files):
    """conformance_judge: false (--no-conformance-judge, SMSC_SIM_CONFORMANCE_JUDGE) switches the judge off."""

    def test_switch_from_file_environment_and_option(self) -> None:
        """The switch is read from the file, the environment and the option; a non-boolean is refused naming it."""
        self.assertTrue(load_config(None, {}, {}).conformance_judge)
        self.assertFalse(load_config(self.write("conformance_judge: false\n"), {}, {}).conformance_judge)
        self.assertFalse(load_config(None, {}, {"SMSC_SIM_CONFORMANCE_JUDGE": "off"}).conformance_judge)
        self.assertFalse(load_config(None, {"conformance_judge": False}, {}).conformance_judge)
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {}, {"SMSC_SIM_CONFORMANCE_JUDGE": "maybe"})
        message = str(caught.exception)
        self.assertIn("environment variable SMSC_SIM_CONFORMANCE_JUDGE: conformance_judge: not a boolean", message)

    def test_switched_off_judges_nothing(self) -> None:
        """With the judge off, a misbehaving ESME leaves no finding and the summary says judging is false."""
        smsc = MemorySMSC(dataclasses.replace(default_config(), conformance_judge=False))
        self.addCleanup(smsc.stop)
        esme = RawESME(smsc.clock)
        esme.connection = smsc.connect(esme, "SMPP1")
        esme.send(wire.bind(0x09, 1))
        smsc.flush()
        esme.connection.disconnect()
        smsc.flush()
        summary = smsc.conformance()
        self.assertEqual((summary["findings"], summary["judging"]), ([], False))

    def test_twistd_option(self) -> None:
        """twistd smsc-sim --no-conformance-judge switches the judge off."""
        from smsc_sim.tap import Options

        options = Options(environ={})
        options.parseOptions(["--no-conformance-judge"])
        self.assertFalse(options.config.conformance_judge)
        options = Options(environ={})
        options.parseOptions([])
        self.assertTrue(options.config.conformance_judge)
