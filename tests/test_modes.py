"""
The fixed vocabularies (outage modes, split modes, delivery outcomes) are
defined once, in smsc_sim.modes, and every place that shows or accepts them
uses the same words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from twisted.trial.unittest import SynchronousTestCase

import smsc_sim.scenario
from smsc_sim.modes import DELIVERY_OUTCOMES, OUTAGE_MODES, SPLIT_MODES, InstanceMode, SplitMode


def enums(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """Every ``enum`` list of strings in a JSON schema, with the property path leading to it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                yield path, value
            else:
                yield from enums(value, path + (str(key),))
    elif isinstance(node, list):
        for item in node:
            yield from enums(item, path)


class VocabularyTests(SynchronousTestCase):
    def test_scenario_schema_offers_the_modes_the_loader_takes(self) -> None:
        """The schema editors validate scenarios with lists exactly the outage and split modes the loader accepts."""
        schema = json.loads((Path(smsc_sim.scenario.__file__).parent / "schema.json").read_text())
        found = {path[-1]: values for path, values in enums(schema) if path[-1] in ("mode", "split")}
        self.assertEqual(found["mode"], list(OUTAGE_MODES))
        self.assertEqual(found["split"], list(SPLIT_MODES))

    def test_modes_read_and_write_as_their_text(self) -> None:
        """A mode is written in JSON and text as the word users type, and the word reads back as the mode."""
        self.assertEqual(json.dumps({"state": InstanceMode.BIND_HANG}), '{"state": "bind-hang"}')
        self.assertEqual(f"{InstanceMode.REJECT_BINDS} {SplitMode.UDH16}", "reject-binds udh16")
        self.assertIs(InstanceMode("blackhole"), InstanceMode.BLACKHOLE)
        self.assertNotIn("up", OUTAGE_MODES)
        self.assertEqual(DELIVERY_OUTCOMES, ("acked", "failed", "exhausted", "expired", "dropped"))
