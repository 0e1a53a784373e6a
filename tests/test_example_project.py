"""
examples/pytest-project/ passes as a user runs it: a tiny ESME and one test
file per form of the simulator (child process, reactor thread, the test's
reactor, memory), in a pytest process of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.join(ROOT, "examples", "pytest-project")


def run_project(*args: str) -> subprocess.CompletedProcess[str]:
    """pytest in the example project, with this checkout's smsc_sim."""
    installed = any(ep.name == "smsc_sim" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "smsc_sim.testing.pytest_plugin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSC_SIM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, PROJECT, os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, *args]
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["subprocess", "thread"])
def test_example_project_passes(mode: str) -> None:
    """Every test of the example project passes, with smsc_sim as a child process or as a reactor thread."""
    result = run_project(f"--smsc-sim-mode={mode}")
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-4000:]
    assert re.search(r"\b5 passed\b", said), said[-4000:]
    assert "warning" not in said.lower(), said[-4000:]
