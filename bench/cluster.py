"""
Benchmark the cluster spread over two processes on Redis.

    python bench/cluster.py --quick      # 2 s, to try it out
    python bench/cluster.py              # 10 s of 4 x 50
    python bench/cluster.py --scenario my-throttle.yaml --seconds 10

It starts a redis-server (persistence off) on a free port, then SMPP1 and
SMPP2 as two ``twistd -n smsc-sim --cluster-store redis://... --instances
SMPPn`` processes of the embedded default (the shipped ``bench`` scenario:
throttling off, 10 000 binds per account), each pinned to its own CPU with
``taskset`` where there are two; then the load generator (``python -m
smsc_sim.load --ports A,B``, unpinned) with its sessions split over both
ports.  It prints submit_sm/s per process (each process's control API,
``GET /api/v1/stats``, before and after) and in all, and the Redis commands
per accepted message (``INFO stats`` ``total_commands_processed`` before and
after; ``INFO commandstats`` says which) and Redis's CPU time per message
(``INFO cpu``).  Nothing is written to the docs.

    python bench/cluster.py --processes 1    # SMPP1 alone on CPU 0, Redis on CPU 1
    python bench/cluster.py --receipts       # every message asks a receipt
    python bench/cluster.py --processes 1 --profile /tmp/smpp1.prof
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import ACCOUNT, ROOT, free_port, pinned, twistd_argv, wait_port

#: the cluster's two instances, one process each
INSTANCES = ("SMPP1", "SMPP2")


def redis_command(port: int, *words: str) -> bytes:
    """One Redis command over a plain socket (RESP); the raw reply (a bulk string's body, or the line)."""
    request = f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        data = b""
        while b"\r\n" not in data:
            data += connection.recv(65536)
        head, _, rest = data.partition(b"\r\n")
        if not head.startswith(b"$"):
            return head
        size = int(head[1:])
        while len(rest) < size + 2:
            chunk = connection.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest[:size]


def redis_info(port: int, section: str) -> dict[str, str]:
    """``INFO section`` as a dict."""
    text = redis_command(port, "INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


@contextlib.contextmanager
def redis_server(directory: str, cpu: int | None = None) -> Iterator[int]:
    """A redis-server on a free port of 127.0.0.1 with persistence off (pinned to ``cpu``); yields its port."""
    binary = shutil.which("redis-server", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin"]))
    if binary is None:
        raise SystemExit("bench/cluster.py: redis-server not found; run `sudo scripts/install-redis.sh`")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory]
    process = subprocess.Popen(
        pinned(cpu, argv) if cpu is not None else argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                if redis_command(port, "PING") == b"+PONG":
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"bench/cluster.py: redis-server did not answer on port {port}")
            time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait(10)


@contextlib.contextmanager
def cluster(
    directory: str, store: str, scenario: str, processes_count: int = 2, profile: str | None = None
) -> Iterator[dict[str, tuple[int, int, int]]]:
    """
    SMPP1 and SMPP2 as two processes on ``store``, one CPU each (or SMPP1
    alone on CPU 0 when ``processes_count`` is 1); yields name -> (SMPP
    port, API port, pid).  ``profile``: SMPP1 runs under twistd's cProfile and
    writes its stats there when it stops.
    """
    ports = {name: free_port() for name in (*INSTANCES, "SMPP0")}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    result: dict[str, tuple[int, int, int]] = {}
    try:
        for cpu, name in enumerate(INSTANCES[:processes_count]):
            api = free_port()
            log = os.path.join(directory, f"{name}.log")
            # both processes get the same listeners (the same config); each opens only its instance's
            listeners = [arg for other, port in ports.items()
                         for arg in (f"--{other.lower()}", f"tcp:{port}:interface=127.0.0.1")]  # fmt: skip
            stored = ["--cluster-store", store] if store else []
            options = ["--scenario", scenario, *stored, "--instances", name,
                       "--api", f"tcp:{api}:interface=127.0.0.1", "--no-conformance-judge", *listeners]  # fmt: skip
            with open(log, "ab") as out:
                argv = twistd_argv(log, options)
                if profile and cpu == 0:
                    argv[argv.index("-n") + 1 : argv.index("-n") + 1] = [
                        f"--profile={profile}", "--profiler=cprofile", "--savestats"
                    ]
                processes[name] = subprocess.Popen(
                    pinned(cpu, argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory
                )
            result[name] = (ports[name], api, processes[name].pid)
        for name, process in processes.items():
            wait_port(ports[name], process, os.path.join(directory, f"{name}.log"))
        yield result
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process used so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def accepted(api_port: int) -> int:
    """submit_sm (and friends) answered ESME_ROK by the process so far (its control API)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v1/stats", timeout=10) as response:
        stats = json.load(response)
    return sum(int(cluster.get("submits", {}).get("ESME_ROK", 0)) for cluster in stats["clusters"].values())


def generate(
    ports: list[int], sessions: int, window: int, seconds: float, directory: str, receipts: bool = False,
    cpu: int | None = None,
) -> dict[str, Any]:
    """The load generator over both ports (sessions go round them); its JSON result."""
    out = os.path.join(directory, "result.json")
    argv = [sys.executable, "-m", "smsc_sim.load", "--ports", ",".join(map(str, ports)),
            "--system-id", ACCOUNT[0], "--password", ACCOUNT[1], "--sessions", str(sessions),
            "--window", str(window), "--duration", str(seconds), "--progress", "0", "--json-out", out]  # fmt: skip
    if receipts:
        argv.append("--receipts")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if cpu is not None:
        argv = pinned(cpu, argv)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, env=env, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, encoding="utf-8") as stream:
        result: dict[str, Any] = json.load(stream)
    # the generator's CPU time (it is the only child that ended meanwhile): is it the limit?
    result["cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the bench once and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of load (default 10)")
    p.add_argument("--quick", action="store_true", help="2 s of load, to try it out")
    p.add_argument("--sessions", type=int, default=4, help="sessions in all, split over the two processes (default 4)")
    p.add_argument("--window", type=int, default=50, help="submits outstanding per session (default 50)")
    p.add_argument("--scenario", default="bench", help="the scenario of both processes (default: the shipped bench)")
    p.add_argument("--processes", type=int, choices=(1, 2), default=2,
                   help="2 (default): SMPP1 and SMPP2 on a CPU each; 1: SMPP1 alone on CPU 0, Redis on the "
                        "other, the generator unpinned (one process against a local Redis)")  # fmt: skip
    p.add_argument("--in-memory", action="store_true",
                   help="with --processes 1: SMPP1 without --cluster-store (the in-memory form, to compare)")
    p.add_argument("--receipts", action="store_true", help="the generator asks a receipt for every message")
    p.add_argument("--profile", metavar="FILE", help="run SMPP1 under cProfile; its stats go to FILE (pstats)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = p.parse_args(argv)
    if a.in_memory and a.processes != 1:
        p.error("--in-memory needs --processes 1 (two in-memory processes share nothing)")
    seconds = 2.0 if a.quick else a.seconds
    with tempfile.TemporaryDirectory(prefix="smsc-cluster-bench-") as directory:
        # one process: Redis on the other CPU; the generator unpinned (pinned with Redis, it stalls while a
        # large Lua call runs and the process idles, waiting for submits: the bench would measure that)
        other = 1 if a.processes == 1 else None
        with redis_server(directory, other) as redis_port:
            store = "" if a.in_memory else f"redis://127.0.0.1:{redis_port}/0"
            with cluster(directory, store, a.scenario, a.processes, a.profile) as processes:
                before = {name: accepted(api) for name, (_port, api, _pid) in processes.items()}
                cpu0 = {name: cpu_seconds(pid) for name, (_port, _api, pid) in processes.items()}
                commands_before = int(redis_info(redis_port, "stats")["total_commands_processed"])
                cpu_before = {k: float(v) for k, v in redis_info(redis_port, "cpu").items()}
                started = time.monotonic()
                ports = [port for port, _api, _pid in processes.values()]
                result = generate(ports, a.sessions, a.window, seconds, directory, a.receipts)
                elapsed = float(result.get("elapsed_s") or (time.monotonic() - started))
                commands = int(redis_info(redis_port, "stats")["total_commands_processed"]) - commands_before
                cpu_after = {k: float(v) for k, v in redis_info(redis_port, "cpu").items()}
                cpu1 = {name: cpu_seconds(pid) for name, (_port, _api, pid) in processes.items()}
                after = {name: accepted(api) for name, (_port, api, _pid) in processes.items()}
                commandstats = redis_info(redis_port, "commandstats")
    per_process = {name: after[name] - before[name] for name in processes}
    total = sum(per_process.values())
    calls = {
        key.removeprefix("cmdstat_"): int(value.split(",")[0].removeprefix("calls="))
        for key, value in commandstats.items()
    }
    # Redis's own CPU (user + system, INFO cpu) during the load, per accepted message
    redis_usec = 1e6 * sum(cpu_after[k] - cpu_before[k] for k in ("used_cpu_user", "used_cpu_sys"))
    # a Lua script is one round trip; the commands it runs inside count in total_commands_processed too
    scripts = sum(calls.get(name, 0) for name in ("eval", "evalsha", "fcall"))
    figures: dict[str, Any] = {
        "shape": f"{a.sessions} x {a.window}",
        "seconds": round(elapsed, 2),
        "submit_sm_per_s": {name: round(n / elapsed) for name, n in per_process.items()},
        "submit_sm_per_s_all": round(total / elapsed),
        # each process's CPU time per message it accepted, and its share of one CPU during the load
        "process_cpu_us_per_message": {
            name: round(1e6 * (cpu1[name] - cpu0[name]) / n, 1) if n else None for name, n in per_process.items()
        },
        "process_cpu_busy": {name: round((cpu1[name] - cpu0[name]) / elapsed, 2) for name in per_process},
        "generator_submits_per_s": result.get("submits_per_s"),
        "generator_errors": result.get("errors"),
        "generator_cpu_busy": round(result["cpu_s"] / elapsed, 2),
        # Redis's count: every command a client sent and every command a Lua script ran (the INFO
        # calls of this script are among them: two, nothing to speak of)
        "redis_commands": commands,
        "redis_commands_per_message": round(commands / total, 4) if total else None,
        # Lua scripts run (each one round trip) over the whole life of Redis, binds included
        "redis_scripts_per_message": round(scripts / total, 4) if total else None,
        "redis_commandstats": calls,
        "redis_usec_per_message": round(redis_usec / total, 2) if total else None,
    }
    if a.json:
        print(json.dumps(figures, indent=2))
    else:
        where = "in memory" if a.in_memory else "on Redis"
        print(f"{figures['shape']} through {' + '.join(processes)} {where}, {figures['seconds']} s:")
        for name, rate in figures["submit_sm_per_s"].items():
            print(f"  {name}: {rate:>8} submit_sm/s, {figures['process_cpu_us_per_message'][name]} us CPU per message, "
                  f"{figures['process_cpu_busy'][name]:.0%} of a CPU")
        print(f"  all:   {figures['submit_sm_per_s_all']:>8} submit_sm/s (generator: {figures['generator_submits_per_s']}, "
              f"{figures['generator_cpu_busy']:.0%} of a CPU)")
        print(f"  Redis: {commands} commands, {figures['redis_commands_per_message']} per message, of which "
              f"{figures['redis_scripts_per_message']} Lua scripts (one round trip each) per message")
        print(f"  Redis CPU: {figures['redis_usec_per_message']} us per message")
        print(f"  Redis calls by command: "
              f"({', '.join(f'{k} {v}' for k, v in figures['redis_commandstats'].items())})")  # fmt: skip
        if result.get("errors"):
            print(f"  generator errors: {result['errors']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
