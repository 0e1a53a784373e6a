"""
Which scenario the simulator loads, and from where: the default loader
(the shipped scenario engine) and the directories the control API may load
scenario files from.
"""

from __future__ import annotations

import os
from typing import Callable

from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import Config
from smsc_sim.contracts import IScenarioRuntime

__all__ = ["ScenarioLoader", "allowed_scenario_dirs", "default_scenario_loader"]

ScenarioLoader = Callable[[str, IReactorTime, "int | None"], IScenarioRuntime]


def allowed_scenario_dirs(config: Config) -> tuple[str, ...]:
    """
    ``config.scenario_dirs``, plus the directory of ``config.scenario`` when it is a file.

    The operator chose both; any other file stays out of reach of the API
    (``PUT /api/v1/scenario`` with a name or path).
    """
    from smsc_sim.scenario.loader import ScenarioError, find_scenario, scenario_dirs

    dirs = list(config.scenario_dirs)
    try:
        directory = os.path.realpath(find_scenario(config.scenario).parent)
    except (ScenarioError, OSError):
        return tuple(dirs)  # a scenario loader of its own (tests) may take names the shipped one does not
    shipped = {os.path.realpath(d) for d in scenario_dirs()}
    if directory not in dirs and directory not in shipped:
        dirs.append(directory)
    return tuple(dirs)


def default_scenario_loader(name_or_path: str, clock: IReactorTime, seed: int | None) -> IScenarioRuntime:
    """Load a scenario with the scenario engine (raises ScenarioError with file, line and key)."""
    from smsc_sim.scenario.runtime_loader import load_scenario_runtime

    return load_scenario_runtime(name_or_path, clock, seed)
