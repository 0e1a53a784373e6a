"""
The library and its tests pass mypy with the project's settings (setup.cfg),
as the style guide requires of all the code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _mypy(target: str) -> subprocess.CompletedProcess[str]:
    """``python -m mypy target`` from the checkout's root, as a developer runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_smsc_sim_passes_mypy() -> None:
    """``mypy smsc_sim`` reports no error: every function is annotated and the types agree."""
    result = _mypy("smsc_sim")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_tests_pass_mypy() -> None:
    """
    ``mypy tests`` reports no error: the test code itself type-checks, so a
    test that calls the library wrongly (a missing argument, a renamed
    method, an Optional used unchecked, a fake that no longer fits its
    contract) is caught before it runs.
    """
    result = _mypy("tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
