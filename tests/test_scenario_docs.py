"""The examples in docs/scenarios.md are real scenarios: each one loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

import smsc_sim.scenario
from smsc_sim.scenario.engine import ScenarioRuntime
from smsc_sim.scenario.loader import parse_scenario
from tests.test_scenario_engine import FakeHost, facts

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"


class DocExampleTests(SynchronousTestCase):
    """docs/scenarios.md shows only working scenarios."""

    def test_every_yaml_example_loads_and_runs(self) -> None:
        """Each ```yaml block of the scenario guide loads, decides a submit and runs its timeline for 10 minutes."""
        blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
        self.assertGreaterEqual(len(blocks), 15)
        for number, block in enumerate(blocks):
            scenario = parse_scenario(block, f"docs/scenarios.md example {number + 1}")
            clock = Clock()
            runtime = ScenarioRuntime(scenario, clock, seed=1)
            runtime.start(FakeHost())
            for destination in ("1", "2", "3", "4", "5", "6", "33", "44", "447800"):
                runtime.verdict(facts(destination, text="STOP"))
                runtime.default_receipt()
                runtime.on_submit(facts(destination, text="STOP"), "1")
            clock.pump([1] * 600)
            runtime.stop()

    def test_every_yaml_example_fits_the_schema(self) -> None:
        """Each ```yaml block of the scenario guide is valid against schema.json too."""
        schema = json.loads((Path(smsc_sim.scenario.__file__).parent / "schema.json").read_text())
        validator = jsonschema.Draft202012Validator(schema)
        for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S):
            self.assertEqual([e.message for e in validator.iter_errors(yaml.safe_load(block))], [], block)
