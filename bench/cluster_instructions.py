"""
Instructions per submit_sm of one process against a local Redis (or in
memory), counted by valgrind's callgrind: the Redis form's cost, which a
shared, noisy machine does not blur as it blurs CPU time.

    python bench/cluster_instructions.py                    # on Redis, then in memory
    python bench/cluster_instructions.py --forms redis --seconds 20
    python bench/cluster_instructions.py --checkout /tmp/before   # another checkout's code

As ``bench/cluster.py --processes 1``: a redis-server (persistence off) on
CPU 1, SMPP1 as ``twistd smsc-sim`` (with ``--cluster-store`` or without),
here under callgrind, and the load generator, 4 x 50 flat out.  After a
warm-up, the counters are zeroed for 8 s of idle (the timers: polls,
leases, snapshots) and again for the load; the figure is the load's
instructions less the idle rate over its time, divided by the submits
accepted meanwhile.  Under callgrind the process is some 50 times slower,
so each reactor turn holds a full window of submits (as at saturation).
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cluster  # noqa: E402
import run  # noqa: E402


def _totals(directory: str) -> int:
    """The instructions of the last callgrind dump in ``directory``."""
    time.sleep(1)  # the dump is written by the process, asynchronously
    newest = max(glob.glob(os.path.join(directory, "cg.*")), key=os.path.getmtime)
    with open(newest, errors="replace") as stream:
        for line in stream:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {newest}")


def measure(checkout: str, redis: bool, seconds: float) -> tuple[int, float]:
    """(accepted submits, net instructions per submit) of one run."""
    dumps = tempfile.mkdtemp(prefix="smsc-cluster-cg-")
    unpinned = cluster.pinned

    def under_callgrind(cpu: int, argv: list[str]) -> list[str]:
        if "smsc-sim" in argv:
            return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dumps}/cg.%p", *argv]
        return unpinned(cpu, argv)

    cluster.pinned = under_callgrind  # type: ignore[assignment]
    cluster.wait_port = lambda port, process, log: run.wait_port(port, process, log, 300.0)  # type: ignore[assignment]
    cluster.ROOT = checkout
    try:
        with tempfile.TemporaryDirectory(prefix="smsc-cluster-bench-") as directory:
            with cluster.redis_server(directory, 1) as redis_port:
                store = f"redis://127.0.0.1:{redis_port}/0" if redis else ""
                with cluster.cluster(directory, store, "bench", 1) as processes:
                    port, api, pid = processes["SMPP1"]
                    cluster.generate([port], 4, 50, 3, directory)  # warm-up
                    time.sleep(4)
                    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=False)
                    started = time.monotonic()
                    time.sleep(8)
                    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=False)
                    idle = _totals(dumps) / (time.monotonic() - started)
                    before = cluster.accepted(api)
                    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=False)
                    started = time.monotonic()
                    cluster.generate([port], 4, 50, seconds, directory)
                    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=False)
                    elapsed = time.monotonic() - started
                    busy = _totals(dumps)
                    count = cluster.accepted(api) - before
    finally:
        cluster.pinned = unpinned  # type: ignore[assignment]
        shutil.rmtree(dumps, ignore_errors=True)
    return count, (busy - idle * elapsed) / max(count, 1)


def main() -> None:
    """Parse the options; a line per form."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--forms", default="redis,memory", help="of redis, memory (default both)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of load (default 15)")
    parser.add_argument("--checkout", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    options = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    for form in options.forms.split(","):
        count, per_submit = measure(os.path.abspath(options.checkout), form == "redis", options.seconds)
        print(f"{form:7} {per_submit:10.0f} instructions per submit_sm ({count} accepted)", flush=True)


if __name__ == "__main__":
    main()
