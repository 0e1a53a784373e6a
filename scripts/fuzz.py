#!/usr/bin/env python3
"""
The long fuzz run: mutated PDUs from a seeded generator through the session.

Usage (from the repository root)::

    python3 scripts/fuzz.py --pdus 1000000 [--seed 1] [--max-stream 12]

Each round takes a fresh session (stub core, ``task.Clock``) in a random state
(OPEN, BOUND_TX, BOUND_RX, BOUND_TRX, UNBINDING; strict or not; one in ten
with PDU tracing and an event subscriber), feeds it a stream of 1 to
``--max-stream`` PDUs -- each a valid PDU of some command, mutated half of
the time (bit flips, truncation, lying command_length, TLVs that lie about
their length, any command_id, inserted and deleted octets) -- cut into random
reads, and checks the invariants of ``tests/test_fuzz.py``.  It prints the
count of every outcome and each invariant violation with its reproducer
(state and stream in hex), and exits 1 if there was any.

The generator, the mutations and the checks are those of the test suite
(``tests/test_fuzz.py``), which runs a bounded version of the same thing.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.test_fuzz import STATES, Report, SessionUnderFuzz, random_frame  # noqa: E402


def fuzz(pdus: int, seed: int, max_stream: int, progress: bool = True) -> Report:
    """
    Run rounds until ``pdus`` PDUs have gone through sessions.

    :param pdus: how many PDUs in all.
    :param seed: seeds the generator; the same seed gives the same run.
    :param max_stream: most PDUs in one session's stream.
    :param progress: print a line every 100 000 PDUs.
    """
    rng = random.Random(seed)
    total = Report()
    sent = 0
    next_progress = 100_000
    started = time.monotonic()
    while sent < pdus:
        state = rng.choice(STATES)
        frames = [random_frame(rng) for _ in range(rng.randint(1, max_stream))]
        stream = b"".join(frames)
        cuts = [rng.randrange(len(stream) + 1) for _ in range(rng.randint(0, 4))]
        report = SessionUnderFuzz(state, strict=rng.random() < 0.2, trace=rng.random() < 0.1).run(stream, cuts)
        report.counts["PDUs"] += len(frames)
        report.counts["sessions"] += 1
        total.add(report)
        sent += len(frames)
        if progress and sent >= next_progress:
            print(f"{sent} PDUs, {len(total.violations)} violations, {time.monotonic() - started:.0f}s", flush=True)
            next_progress += 100_000
    total.counts["seconds"] = round(time.monotonic() - started)
    return total


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the outcome counts and violations."""
    parser = argparse.ArgumentParser(description="Fuzz the SMPP session with mutated PDUs.")
    parser.add_argument("--pdus", type=int, default=100_000, help="PDUs in all (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--max-stream", type=int, default=12, help="most PDUs per session (default 12)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    options = parser.parse_args(argv)
    report = fuzz(options.pdus, options.seed, options.max_stream, not options.quiet)
    print(f"seed {options.seed}")
    for outcome, count in sorted(report.counts.items()):
        print(f"{outcome:>30}: {count}")
    print(f"{'invariant violations':>30}: {len(report.violations)}")
    for violation in report.violations[:20]:
        print("VIOLATION:", violation)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
