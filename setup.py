"""
setuptools entry point; the metadata lives in setup.cfg.

The one addition is a ``build_py`` step that ships ``scenarios/*.yaml`` inside
the package as ``smsc_sim/scenario/shipped/*.yaml``, so an installed simulator
finds its scenarios by name.  (Editable installs skip it: the scenario loader
falls back to the checkout's ``scenarios/``.)
"""

from __future__ import annotations

import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py

SCENARIOS = "scenarios"
SHIPPED = os.path.join("smsc_sim", "scenario", "shipped")


def _scenario_files() -> list[str]:
    """The scenario files of the checkout (``.yaml``, and ``.yml`` which the scenario loader also reads)."""
    return sorted(glob.glob(os.path.join(SCENARIOS, "*.yaml")) + glob.glob(os.path.join(SCENARIOS, "*.yml")))


class BuildPyWithScenarios(build_py):
    """``build_py`` that also copies the repository's scenario files into the package."""

    def run(self) -> None:
        """Build the modules, then replace the shipped scenarios with the current ``scenarios/*.yaml``."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = os.path.join(self.build_lib, SHIPPED)
        # a reused build/ directory must not keep scenarios deleted since
        for stale in glob.glob(os.path.join(target, "*.yaml")) + glob.glob(os.path.join(target, "*.yml")):
            os.remove(stale)
        sources = _scenario_files()
        if sources:
            self.mkpath(target)
        for source in sources:
            self.copy_file(source, os.path.join(target, os.path.basename(source)))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """The built files, the shipped scenarios included."""
        if getattr(self, "editable_mode", False):
            return list(super().get_outputs(include_bytecode))
        shipped = [os.path.join(self.build_lib, SHIPPED, os.path.basename(source)) for source in _scenario_files()]
        return list(super().get_outputs(include_bytecode)) + shipped


setup(cmdclass={"build_py": BuildPyWithScenarios})
