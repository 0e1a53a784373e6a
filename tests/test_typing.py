"""The library passes mypy with the project's settings (setup.cfg), as the style guide requires."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_smsc_sim_passes_mypy() -> None:
    """``mypy smsc_sim`` reports no error: every function is annotated and the types agree."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "smsc_sim"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
