"""
Resident memory per retained message of the full simulator.

    python bench/memory.py                     # 1 000 000 messages
    python bench/memory.py --messages 100000
    python bench/memory.py --breakdown --messages 100000   # where the bytes go (tracemalloc)

Starts ``twistd -n smsc-sim`` with the ``bench`` scenario (every submit
accepted, a DELIVRD receipt 0.5 s later; the store on with its defaults:
1 000 000 records, final ones kept 86 400 s, so every record is retained)
and the control API on, with the helpers of ``bench/run.py`` (the server
pinned to CPU 0, the generator to CPU 1).  It reads the server's VmRSS
(``/proc/PID/status``) once it is up and idle, loads ``--messages`` with
``python -m smsc_sim.load --sessions 4 --window 50 --receipts`` (every
receipt delivered and acknowledged), waits until the server has seen every
receipt acknowledged, and reads VmRSS again.  The figure is the growth
divided by the records the server holds (``GET /api/v1/stats``:
``store_size``).  It prints the figures as JSON, then one line.

``--breakdown`` runs the same simulator (as twistd would: its garbage
collector policy too) in a child process under :mod:`tracemalloc`, loads
``--messages`` the same way (use fewer: tracing is slow) and prints what the
retained messages hold per message, by the line that allocated it; how many
frozen objects were garbage (the GC freezer keeps garbage in cycles that was
alive at a freeze); and the ``sys.getsizeof`` of what the last record holds on
its own, by slot.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run as bench_run  # noqa: E402  (bench/run.py: configuration, server, pinning)


def rss(pid: int) -> int:
    """The resident set size of a process, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def server_pid() -> int:
    """The pid of the twistd child that :func:`bench_run.server` started (taskset execs in place)."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as stream:
                stat = stream.read()
            with open(f"/proc/{name}/cmdline", "rb") as stream:
                command = stream.read()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == me and b"smsc-sim" in command:
            return int(name)
    raise RuntimeError("the server process is not a child of this one")


def stats(api_port: int) -> dict[str, int]:
    """From ``GET /api/v1/stats``, summed over the clusters: records held and pending, receipts by outcome."""
    connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=30)
    try:
        connection.request("GET", "/api/v1/stats")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET /api/v1/stats answered {response.status}: {body[:200]!r}")
    totals = dict.fromkeys(("store_size", "store_pending", "sent", "acked", "failed", "expired", "dropped"), 0)
    for cluster in json.loads(body)["clusters"].values():
        totals["store_size"] += cluster["store_size"]
        totals["store_pending"] += cluster["store_pending"]
        for key in ("sent", "acked", "failed", "expired", "dropped"):
            totals[key] += cluster["receipts"][key]
    return totals


def load(port: int, messages: int, sessions: int, window: int, directory: str, unique: bool = False) -> dict[str, Any]:
    """Submit ``messages`` with receipts (the generator pinned to CPU 1); its JSON result.

    :param unique: every message its own destination and text (``--unique``).
    """
    out = os.path.join(directory, "load.json")
    argv = [sys.executable, "-m", "smsc_sim.load", "--port", str(port), "--system-id", bench_run.ACCOUNT[0],
            "--password", bench_run.ACCOUNT[1], "--sessions", str(sessions), "--window", str(window),
            "--count", str(messages), "--receipts", "--progress", "0", "--json-out", out]  # fmt: skip
    if unique:
        argv.append("--unique")
    env = dict(os.environ, PYTHONPATH=bench_run.ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(bench_run.pinned(1, argv), check=False, stdout=subprocess.DEVNULL, env=env, timeout=3600)
    with open(out, encoding="utf-8") as stream:
        result: dict[str, Any] = json.load(stream)
    return result


def wait_receipts(api_port: int, timeout: float = 120.0) -> None:
    """Wait until the server has a receipt for every record and an end for every receipt (the generator may stop sooner)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = stats(api_port)
        ended = counts["acked"] + counts["failed"] + counts["expired"] + counts["dropped"]
        if counts["sent"] >= counts["store_size"] and ended >= counts["sent"]:
            return
        time.sleep(0.5)


def measure(messages: int, sessions: int, window: int, settle: float, unique: bool = False) -> dict[str, Any]:
    """One server, one load; the figures."""
    with tempfile.TemporaryDirectory(prefix="smsc-memory-") as directory:
        with bench_run.server("smsc-sim", directory, api=True) as (port, api_port):
            assert api_port is not None
            pid = server_pid()
            stats(api_port)  # the API's first answer allocates a little too
            time.sleep(settle)
            before = rss(pid)
            started = time.monotonic()
            result = load(port, messages, sessions, window, directory, unique)
            loaded = time.monotonic() - started
            wait_receipts(api_port)
            time.sleep(settle)  # the GC freezer's next check, the last timers
            counts = stats(api_port)
            after = rss(pid)
    held = counts["store_size"]
    per = (after - before) / held if held else 0.0
    return {
        "messages": messages,
        "content": "unique" if unique else "same",
        "sessions": sessions,
        "window": window,
        "accepted": result.get("accepted"),
        "receipts_received": result.get("receipts", {}).get("received"),
        "load_s": round(loaded, 1),
        "submits_per_s": result.get("submits_per_s"),
        "retained": held,
        "pending": counts["store_pending"],
        "receipts_acked": counts["acked"],
        "rss_before": before,
        "rss_after": after,
        "bytes_per_message": round(per, 1),
    }


# -- where the bytes go -------------------------------------------------------


def trace_child(port: int, api_port: int, out: str) -> None:
    """
    (In the child process) the simulator as twistd runs it (its garbage
    collector policy included) under :mod:`tracemalloc`: SIGUSR1 takes the
    baseline snapshot, SIGUSR2 the final one and writes the comparison to ``out``.
    """
    import signal
    import tracemalloc

    from twisted.internet import reactor

    from smsc_sim.service import build_service
    from smsc_sim.tap import Options, process_gc_policy

    options = Options()
    options.parseOptions(bench_run.simulator_options(port, api_port))  # what twistd is given
    simulator = build_service(options.config, reactor)
    process_gc_policy(simulator)
    tracemalloc.start(1)
    snapshots: list[tracemalloc.Snapshot] = []

    def baseline(*_: Any) -> None:
        snapshots.append(tracemalloc.take_snapshot())

    def final(*_: Any) -> None:
        snapshot = tracemalloc.take_snapshot()
        held, _ = simulator.records_held()
        lines = []
        for stat in snapshot.compare_to(snapshots[0], "lineno"):
            if stat.size_diff > 0:
                frame = stat.traceback[0]
                where = f"{frame.filename.replace(bench_run.ROOT + os.sep, '')}:{frame.lineno}"
                lines.append((stat.size_diff, stat.count_diff, where))
        lines.sort(reverse=True)
        stores = [core.store for core in simulator.cores.values() if len(core.store) >= 2]
        one = one_record(*list(stores[0])[-2:]) if stores else {}
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        garbage = gc.collect()  # what the freezer kept alive: garbage in cycles frozen before it was collected
        result = {
            "retained": held,
            "traced_bytes_per_message": round(sum(size for size, _, _ in lines) / max(held, 1), 1),
            "frozen_objects": frozen,
            "frozen_garbage_objects": garbage,
            "by_line": [
                {"bytes": round(size / max(held, 1), 1), "objects": round(count / max(held, 1), 2), "where": where}
                for size, count, where in lines[:25]
            ],
            "one_record": one,
        }
        with open(out, "w", encoding="utf-8") as stream:
            json.dump(result, stream, indent=2)

    signal.signal(signal.SIGUSR1, baseline)
    signal.signal(signal.SIGUSR2, final)
    simulator.startService()
    reactor.run()  # type: ignore[attr-defined]


def one_record(before: Any, record: Any) -> dict[str, list[int]]:
    """
    ``sys.getsizeof`` of what one record holds on its own, by slot, with the
    size the allocator gives it (16-byte classes): values that are the
    record before's too (shared), ``None``, booleans and small ints count nothing.
    """
    sizes: dict[str, list[int]] = {}

    def add(name: str, size: int) -> None:
        sizes.setdefault(name, [0, 0])
        sizes[name][0] += size
        sizes[name][1] += -(-size // 16) * 16

    def own(value: Any, other: Any) -> bool:
        if value is None or value is other or isinstance(value, bool):
            return False
        return not (isinstance(value, int) and -5 <= value <= 256)

    add("the record (slots, GC header)", sys.getsizeof(record))
    seen: set[int] = set()
    for name in type(record).__slots__:
        value, other = getattr(record, name, None), getattr(before, name, None)
        if not own(value, other) or id(value) in seen:
            continue
        seen.add(id(value))
        entries = value if isinstance(value, tuple) and name == "deliveries" else (value,)
        if isinstance(value, tuple):
            add(name, sys.getsizeof(value))
            if name != "deliveries":
                for item in value:
                    if isinstance(item, float) and id(item) not in seen:
                        seen.add(id(item))
                        add(name + " (floats)", sys.getsizeof(item))
        for entry in entries:
            if hasattr(entry, "KEYS"):  # a delivery log entry
                add(name, sys.getsizeof(entry))
                for key in entry.KEYS:
                    item = getattr(entry, key, None)
                    if isinstance(item, float) and id(item) not in seen:
                        seen.add(id(item))
                        add(f"{name} ({key})", sys.getsizeof(item))
            elif not isinstance(value, tuple):
                add(name, sys.getsizeof(value))
    return sizes


def breakdown(messages: int, sessions: int, window: int, settle: float, unique: bool = False) -> dict[str, Any]:
    """The simulator under tracemalloc (slower: a small ``messages``); what the retained messages hold, by line."""
    import signal

    with tempfile.TemporaryDirectory(prefix="smsc-memory-") as directory:
        port, api_port = bench_run.free_port(), bench_run.free_port()
        out, log = os.path.join(directory, "trace.json"), os.path.join(directory, "child.log")
        argv = [sys.executable, os.path.abspath(__file__), "--trace-child", str(port), str(api_port), out]
        with open(log, "wb") as stream:
            child = subprocess.Popen(bench_run.pinned(0, argv), stdout=stream, stderr=subprocess.STDOUT)
        try:
            bench_run.wait_port(port, child, log)
            stats(api_port)
            time.sleep(settle)
            child.send_signal(signal.SIGUSR1)
            time.sleep(settle)
            load(port, messages, sessions, window, directory, unique)
            wait_receipts(api_port)
            time.sleep(settle)
            child.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 300
            while not os.path.exists(out) and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(0.5)
            with open(out, encoding="utf-8") as stream:
                result: dict[str, Any] = json.load(stream)
        finally:
            child.terminate()
            child.wait(30)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run, print the JSON and the line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages to load (default 1 000 000)")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds idle before each reading")
    parser.add_argument("--content", choices=("same", "unique", "both"), default="both",
                        help="every message alike, or each with its own destination and text (--unique), or both runs")
    parser.add_argument("--breakdown", action="store_true", help="instead: the server under tracemalloc, by line")
    parser.add_argument("--trace-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trace_child:
        port, api_port, out = args.trace_child
        trace_child(int(port), int(api_port), out)
        return 0
    if args.breakdown:
        print(json.dumps(breakdown(args.messages, args.sessions, args.window, args.settle, args.content != "same"), indent=2))
        return 0
    runs = [figures for unique in (False, True) if args.content in ("both", "unique" if unique else "same")
            for figures in [measure(args.messages, args.sessions, args.window, args.settle, unique)]]  # fmt: skip
    print(json.dumps(runs, indent=2))
    mib = 1024 * 1024
    for figures in runs:
        print(
            f"{figures['retained']} retained messages ({figures['content']} content): RSS "
            f"{figures['rss_before'] / mib:.1f} MiB before, {figures['rss_after'] / mib:.1f} MiB after; "
            f"{figures['bytes_per_message']:.0f} bytes per retained message"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
