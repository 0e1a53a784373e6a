"""
Two checkouts of smsc-sim against each other, in the default form (control API
on, judge on), shape by shape, their runs paired in time.

    git worktree add /tmp/before REV
    python bench/before_after.py /tmp/before . --pairs 3 --seconds 6 --shapes "4 x 50|4 x 50 + receipts"

Each pair starts the first checkout's ``twistd -n smsc-sim --scenario bench``
(``PYTHONPATH`` set to that checkout), loads it with the load generator as
bench/run.py does, then the second's; it prints each run on stderr and, on
stdout, per shape the median (min, max) of each checkout's submit_sm/s and of
the per-pair ratio second / first, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: ports, pinning, the generator)


def one(root: str, shape: run.Shape, seconds: float) -> dict[str, Any]:
    """One run of ``shape`` against the simulator of the checkout at ``root``."""
    with tempfile.TemporaryDirectory(prefix="smsc-bench-") as directory:
        port, api = run.free_port(), run.free_port()
        log = os.path.join(directory, "server.log")
        argv = run.twistd_argv(log, run.simulator_options(port, api))
        env = dict(os.environ, PYTHONPATH=os.path.abspath(root))
        with open(log, "ab") as out:
            server = subprocess.Popen(run.pinned(0, argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory)
        try:
            run.wait_port(port, server, log)
            return run.generator(port, shape, seconds, directory)
        finally:
            server.terminate()
            server.wait(15)


def main() -> None:
    """Parse the options, run the pairs, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="the checkout measured first in each pair (before)")
    parser.add_argument("second", help="the checkout measured second (after)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--shapes", default="1 x 1|1 x 10|4 x 50|4 x 50 + receipts|100 x 10",
                        help="shape names of bench/run.py, separated by |")  # fmt: skip
    options = parser.parse_args()
    results: dict[str, Any] = {}
    for name in options.shapes.split("|"):
        shape = next(s for s in run.SHAPES if s.name == name)
        rates: dict[str, list[float]] = {"first": [], "second": []}
        for _ in range(options.pairs):
            for which in ("first", "second"):
                result = one(getattr(options, which), shape, options.seconds)
                rates[which].append(result["submits_per_s"])
                print(f"{name:20} {which:6} {result['submits_per_s']:8.0f}/s", file=sys.stderr, flush=True)
        ratios = [b / a for a, b in zip(rates["first"], rates["second"]) if a]
        results[name] = {key: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                         for key, v in (*rates.items(), ("ratio", ratios))}  # fmt: skip
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
