"""
The entry point the simulator uses to turn ``config.scenario`` into a
scenario engine.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.interfaces import IReactorTime

from smsc_sim.scenario.engine import ScenarioRuntime


def load_scenario_runtime(name_or_path: str | Path, clock: IReactorTime, seed: int | None = None) -> ScenarioRuntime:
    """
    Load a scenario (a shipped name or a path) and make its runtime.

    :param clock: the clock of the timeline, MO generators and auto-replies.
    :param seed: overrides the file's seed.
    :raises smsc_sim.scenario.source.ScenarioError: (a ``ValueError``) when
        the scenario cannot be found or used; the message names the file,
        line and key.
    """
    return ScenarioRuntime.load(name_or_path, clock, seed)
