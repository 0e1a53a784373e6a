"""
Benchmark smsc-sim (and smpp34 beside it) with the project's load generator.

    python bench/run.py            # every shape, 3 runs of 10 s each, median
    python bench/run.py --quick    # 1 run of 2 s each: to try it out
    python bench/run.py --profile  # also profile the simulator under 4x50
    python bench/run.py --forms default,api-none,no-judge   # a third form: the judge off

Each run starts a fresh server as a subprocess (``twistd -n smsc-sim
--scenario bench`` on the embedded default, its listeners moved to free
ports, loaded as ``smppclient1``/``password``; or ``bench/smpp34_server.py``),
pinned to CPU 0 with ``taskset`` where it exists, and runs ``python -m
smsc_sim.load`` pinned to CPU 1 against it.  The simulator runs in each
of the *forms* asked (:data:`FORMS`): by default as users run it, with its
control API on (nobody calls it) and the conformance judge on, and with
``--api none`` beside it.  The forms' runs are interleaved (default,
api-none, smpp34, default, api-none, smpp34...), so that each form's runs
are paired in time with the others' on a machine whose speed drifts.  The
median of each form's runs, with their spread (min-max), goes into the
table between the ``bench:results`` markers of docs/performance.md
(``--profile`` fills the ``bench:profile`` markers).  Text outside the
markers is left alone.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import http.client
import io
import json
import os
import platform
import pstats
import resource
import shutil
import socket
import subprocess
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "performance.md")
#: the embedded default account: the simulator runs as ``twistd -n smsc-sim --scenario bench``, nothing else
ACCOUNT = ("smppclient1", "password")


@dataclass(frozen=True)
class Shape:
    """One load shape."""

    name: str
    sessions: int = 1
    window: int = 1
    receipts: bool = False
    #: an MO flood through the control API to one receiver, instead of submits
    mo_flood: bool = False
    #: messages per second over all sessions (0: flat out)
    rate: float = 0.0
    #: seconds between the generator's enquire_link on each session (0: none)
    enquire_link: float = 0.0


@dataclass(frozen=True)
class Form:
    """One way of running the simulator (or smpp34)."""

    name: str
    #: what the table says of it
    label: str
    kind: str = "smsc-sim"
    #: the control API on (on a free loopback port, nobody calls it) or ``--api none``
    api: bool = True
    extra: tuple[str, ...] = ()


#: the forms ``--forms`` may name; the first is the one whose latency and receipts the table shows
FORMS = {
    "default": Form("default", "API on, judge on (default)"),
    "api-none": Form("api-none", "--api none", api=False),
    "no-judge": Form("no-judge", "API on, --no-conformance-judge", extra=("--no-conformance-judge",)),
}
SMPP34 = Form("smpp34", "smpp34", kind="smpp34", api=False)

SHAPES = (
    Shape("1 x 1", 1, 1),
    Shape("1 x 10", 1, 10),
    Shape("4 x 50", 4, 50),
    Shape("4 x 50 + receipts", 4, 50, receipts=True),
    Shape("100 x 10", 100, 10),
    Shape("5000 x 1, enquire_link every 5 s", 5000, 1, rate=5000, enquire_link=5.0),
    Shape("MO flood -> 1 receiver", 1, 1, mo_flood=True),
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """``argv`` pinned to one CPU with taskset, when there is taskset and that CPU."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def wait_port(port: int, process: subprocess.Popen[bytes], log: str, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}:\n" + open(log).read()[-3000:])
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s; see {log}")


def simulator_options(port: int, api_port: int | None, extra: tuple[str, ...] = ()) -> list[str]:
    """
    The options of ``twistd smsc-sim`` for a benchmark: the embedded default
    with the shipped ``bench`` scenario (throttling off, 10 000 binds per
    account, 50 receipts in flight per session), SMPP1 on ``port``, SMPP2 and
    SMPP0 on other free ports, the control API on ``api_port`` or off.
    """
    api = f"tcp:{api_port}:interface=127.0.0.1" if api_port else "none"
    return ["--scenario", "bench", "--smpp1", f"tcp:{port}:interface=127.0.0.1",
            "--smpp2", f"tcp:{free_port()}:interface=127.0.0.1", "--smpp0", f"tcp:{free_port()}:interface=127.0.0.1",
            "--api", api, *extra]  # fmt: skip


def twistd_argv(log: str, options: list[str]) -> list[str]:
    """``twistd -n smsc-sim OPTIONS``, logging to ``log``."""
    twistd = shutil.which("twistd")
    base = [twistd] if twistd else [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
    return [*base, "-n", "--pidfile=", "-l", log, "smsc-sim", *options]


@contextlib.contextmanager
def server(
    kind: str, directory: str, api: bool = False, extra: tuple[str, ...] = ()
) -> Iterator[tuple[int, int | None]]:
    """
    Run one server (``smsc-sim`` or ``smpp34``) pinned to CPU 0; yield its SMPP and API ports.

    :param extra: more ``twistd smsc-sim`` options (``--store sqlite:PATH``, say).
    """
    with server_process(kind, directory, api, extra) as (port, api_port, _):
        yield port, api_port


def cpu_seconds(pid: int) -> float | None:
    """
    The CPU time (user + system) a process has used so far, from /proc (None where there is none).

    The time the hypervisor gave to other guests (steal) is not in it: unlike a
    rate, CPU time per submit is not blurred by a busy neighbour on the host.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, fields 14 and 15 of proc(5); the split above starts at field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server_process(
    kind: str, directory: str, api: bool = False, extra: tuple[str, ...] = ()
) -> Iterator[tuple[int, int | None, int]]:
    """:func:`server`, yielding the server's process id too (taskset execs it: the same process)."""
    port, api_port = free_port(), (free_port() if api else None)
    log = os.path.join(directory, f"{kind}-{port}.log")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if kind == "smsc-sim":
        argv = twistd_argv(log, simulator_options(port, api_port, extra))
    else:
        argv = [sys.executable, os.path.join(ROOT, "bench", "smpp34_server.py"), "--port", str(port)]
    with open(log, "ab") as out:
        process = subprocess.Popen(pinned(0, argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory)
    try:
        wait_port(port, process, log)
        yield port, api_port, process.pid
    finally:
        stop(process, 15)


def stop(process: subprocess.Popen[bytes], timeout: float, terminate: bool = True) -> None:
    """End a child: TERM (unless it is left to end by itself), then KILL if it is not gone within ``timeout``."""
    if terminate:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def generator(port: int, shape: Shape, seconds: float, directory: str) -> dict[str, Any]:
    """Run the load generator pinned to CPU 1; its JSON result."""
    out = os.path.join(directory, "result.json")
    argv = [sys.executable, "-m", "smsc_sim.load", "--port", str(port), "--system-id", ACCOUNT[0],
            "--password", ACCOUNT[1], "--sessions", str(shape.sessions), "--window", str(shape.window),
            "--duration", str(seconds), "--progress", "0", "--json-out", out, "--receipt-timeout", "10"]  # fmt: skip
    if shape.receipts:
        argv.append("--receipts")
    if shape.mo_flood:
        argv.append("--listen-only")
    if shape.rate:
        argv += ["--rate", str(shape.rate)]
    if shape.enquire_link:
        argv += ["--enquire-link", str(shape.enquire_link)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    subprocess.run(pinned(1, argv), check=False, stdout=subprocess.DEVNULL, env=env, timeout=seconds + 120)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - started
    with open(out, encoding="utf-8") as stream:
        result: dict[str, Any] = json.load(stream)
    # the generator's own CPU use (user + system) over its whole life: near 100 % would mean it is the bottleneck
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["generator_cpu_pct"] = round(100 * cpu / wall, 0)
    return result


#: MO originated by one POST /api/v1/mo of the flood (its ``count``): the MO path is measured, not HTTP
MO_PER_REQUEST = 200
#: most MO posted and not yet acknowledged by the receiver: the flood keeps pace instead of filling queues
MO_BACKLOG = 2000


def mo_flood(api_port: int, seconds: float) -> int:
    """
    Originate MOs through the control API for ``seconds``: :data:`MO_PER_REQUEST`
    a POST, while fewer than :data:`MO_BACKLOG` wait for the receiver's
    deliver_sm_resp (``GET /api/v1/stats``); how many were posted.
    """
    body = json.dumps({"account": ACCOUNT[0], "source": "447700900002", "destination": "447700900001",
                       "text": "MO flood", "count": MO_PER_REQUEST}).encode()  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
    posted, stop = 0, time.monotonic() + seconds

    def acked() -> int:
        connection.request("GET", "/api/v1/stats")
        clusters = json.loads(connection.getresponse().read())["clusters"].values()
        return sum(cluster["deliveries"]["acked"] for cluster in clusters)

    while time.monotonic() < stop:
        if posted - acked() >= MO_BACKLOG:
            time.sleep(0.002)
            continue
        connection.request("POST", "/api/v1/mo", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status < 300:
            posted += MO_PER_REQUEST
    connection.close()
    return posted


def run_once(form: Form, shape: Shape, seconds: float) -> dict[str, Any] | None:
    """One run of one shape on a fresh server of one form (None when the shape does not apply to it)."""
    if shape.mo_flood and (form.kind != "smsc-sim" or not form.api):
        return None  # the flood posts MO through the control API
    with tempfile.TemporaryDirectory(prefix="smsc-bench-") as directory:
        with server_process(form.kind, directory, api=form.api, extra=form.extra) as (port, api_port, pid):
            if not shape.mo_flood:
                before = cpu_seconds(pid)
                result = generator(port, shape, seconds, directory)
                after = cpu_seconds(pid)
                if before is not None and after is not None and result.get("answered"):
                    # the server's CPU per submit answered, over the generator's whole run (binds and the
                    # last receipts included): what the server's work costs, whatever the machine's drift
                    result["server_cpu_us"] = (after - before) / result["answered"] * 1e6
                return result
            assert api_port is not None
            try:
                probe = http.client.HTTPConnection("127.0.0.1", api_port, timeout=5)
                probe.request("GET", "/api/v1/health/live")
                if probe.getresponse().status != 200:
                    raise OSError("the control API does not answer /api/v1/health/live")
            except OSError as error:
                return {"skipped": f"no control API ({error})"}
            # the receiver binds first; the flood starts a moment later and stops before it
            box: dict[str, Any] = {}
            thread = threading.Thread(target=lambda: box.update(generator(port, shape, seconds + 2, directory)))
            thread.start()
            time.sleep(1.0)
            posted = mo_flood(api_port, seconds)
            thread.join()
            box["mo_posted"] = posted
            return box


def rate_key(shape: Shape) -> str:
    """The key of a result that the table ranks runs by."""
    return "mo_per_s" if shape.mo_flood else "submits_per_s"


def run_forms(forms: list[Form], shape: Shape, seconds: float, runs: int) -> dict[str, dict[str, Any] | None]:
    """
    Run one shape ``runs`` times in every form, interleaved (each round runs
    every form once, in order); per form, its median run (by rate) with
    ``runs_rate`` holding every run's rate, or None when it does not apply.
    """
    results: dict[str, list[dict[str, Any]]] = {form.name: [] for form in forms}
    key = rate_key(shape)
    for _ in range(runs):
        for form in forms:
            result = run_once(form, shape, seconds)
            if result is None:
                continue
            results[form.name].append(result)
            cpu = f"  server {result['server_cpu_us']:.1f} us CPU/submit" if "server_cpu_us" in result else ""
            print(f"  {form.name:9} {shape.name:24} {result.get(key, 0):>10.0f}/s{cpu}  errors {result.get('errors')} "
                  f"{result.get('session_errors') or ''}", file=sys.stderr, flush=True)  # fmt: skip
    chosen: dict[str, dict[str, Any] | None] = {}
    for form in forms:
        done = sorted(results[form.name], key=lambda r: float(r.get(key, 0.0)))
        if not done:
            chosen[form.name] = None
            continue
        median = dict(done[len(done) // 2])
        median["runs_rate"] = [float(r.get(key, 0.0)) for r in done]
        # in the order they ran: a form's run and the other forms' of the same round were measured minutes apart
        # at most, so their ratio is what the machine's drift between rounds does not blur
        median["rates_in_order"] = [float(r.get(key, 0.0)) for r in results[form.name]]
        median["cpu_in_order"] = [float(r.get("server_cpu_us", 0.0)) for r in results[form.name]]
        chosen[form.name] = median
    return chosen


def paired_ratio(first: dict[str, Any] | None, other: dict[str, Any] | None, key: str = "rates_in_order") -> str:
    """
    The first form's rate over another's, run by run in the order they ran (one round each): the median ratio
    and its spread, or "-" when either form has no runs (or not as many).  ``key`` "cpu_in_order": the
    server's CPU time per submit instead of the rate.
    """
    if not first or not other or "skipped" in first or "skipped" in other:
        return "-"
    mine, theirs = first.get(key) or [], other.get(key) or []
    if not mine or len(mine) != len(theirs) or not all(theirs):
        return "-"
    ratios = [a / b for a, b in zip(mine, theirs)]
    spread = f" ({min(ratios):.3f}-{max(ratios):.3f})" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):.3f}{spread}"


def rate(result: dict[str, Any] | None, shape: Shape) -> str:
    """A rate cell: the median and the spread (min-max) of the runs."""
    if result is None:
        return "-"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    rates = result.get("runs_rate") or [float(result.get(rate_key(shape), 0.0))]
    median = float(statistics.median(rates))
    spread = f" ({min(rates):.0f}-{max(rates):.0f})" if len(rates) > 1 else ""
    return f"{median:.0f}{spread}"


def machine() -> str:
    """One line about where the numbers come from."""
    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in ("twisted", "smpp34"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{package} {version(package)}")
    pin = "server on CPU 0, generator on CPU 1 (taskset)" if pinned(1, []) else "not pinned (no taskset or 1 CPU)"
    return (f"{os.cpu_count()} CPUs ({model or platform.machine()}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {', '.join(versions)}; {pin}")  # fmt: skip


def ms(result: dict[str, Any], key: str) -> str:
    """A latency cell."""
    value = result.get("latency_ms", {}).get(key)
    return "-" if value is None else f"{value:.1f}"


def errors(result: dict[str, Any]) -> str:
    """The errors cell: statuses and session problems, or none."""
    found = {**result.get("errors", {}), **result.get("session_errors", {})}
    if result.get("unanswered"):
        found["unanswered"] = result["unanswered"]
    return ", ".join(f"{k} {v}" for k, v in found.items()) or "none"


Row = Tuple[Shape, Dict[str, Optional[Dict[str, Any]]]]


def table(rows: list[Row], forms: list[Form], comparison: bool, header: str) -> str:
    """
    The Markdown table of results: the first form in full (rate, latency,
    receipts, errors), each other form's rate beside it, then smpp34's.
    """
    first, others = forms[0], forms[1:]
    heads = [f"smsc-sim msg/s, {first.label}", "p50 ms", "p90 ms", "p99 ms", "max ms", "receipts/s (got/expected)",
             "errors", "gen CPU"]  # fmt: skip
    heads += [f"smsc-sim msg/s, {form.label}" for form in others]
    # the cost of the idle control API: the default form against --api none, round by round
    ratio = first.name == "default" and any(form.name == "api-none" for form in others)
    if ratio:
        heads += ["default / --api none, per round", "server CPU per submit, default / --api none, per round"]
    if comparison:
        heads += ["smpp34 msg/s", "smpp34 p50 / p99 ms", "smpp34 receipts/s", "gen CPU"]
    align = ["--:"] * 6 + ["---", "--:"] + ["--:"] * (len(others) + 2 * ratio) + (["--:"] * 4 if comparison else [])
    lines = [header, "", "| shape | " + " | ".join(heads) + " |", "|---|" + "|".join(align) + "|"]
    for shape, results in rows:
        sim = results.get(first.name)
        cells = [shape.name] + first_cells(shape, sim)
        for form in others:
            found = results.get(form.name)
            cells.append("n/a (no API)" if shape.mo_flood and not form.api else rate(found, shape))
        if ratio:
            if shape.mo_flood:
                cells += ["n/a (no API)"] * 2
            else:
                cells += [paired_ratio(sim, results.get("api-none")),
                          paired_ratio(sim, results.get("api-none"), "cpu_in_order")]  # fmt: skip
        if comparison:
            cells += smpp34_cells(shape, results.get(SMPP34.name))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def first_cells(shape: Shape, sim: dict[str, Any] | None) -> list[str]:
    """The cells of the first form: rate (median and spread), latency, receipts, errors, generator CPU."""
    if sim is None or "skipped" in sim:
        return [rate(sim, shape)] + ["-"] * 7
    cpu = f"{sim.get('generator_cpu_pct', 0):.0f} %"
    if shape.mo_flood:
        counts = f"({sim.get('mo_received', 0)} of {sim.get('mo_posted', 0)} posted, median run)"
        return [f"{rate(sim, shape)} MO/s delivered {counts}", "", "", "", "", "", errors(sim), cpu]
    latency = [ms(sim, "p50"), ms(sim, "p90"), ms(sim, "p99"), ms(sim, "max")]
    if shape.enquire_link:
        return [f"{rate(sim, shape)} {many_sessions(shape, sim)}", *latency, "-", errors(sim), cpu]
    r = sim["receipts"]
    receipts = f"{r['per_s']:.0f} ({r['received']}/{r['expected']})" if shape.receipts else "-"
    return [rate(sim, shape), *latency, receipts, errors(sim), cpu]


def smpp34_cells(shape: Shape, other: dict[str, Any] | None) -> list[str]:
    """The cells of smpp34: rate (median and spread), latency, receipts, generator CPU."""
    if shape.mo_flood:
        return ["n/a (no API)", "", "", ""]
    if other is None:
        return ["-", "-", "-", "-"]
    cpu = f"{other.get('generator_cpu_pct', 0):.0f} %"
    latency = f"{ms(other, 'p50')} / {ms(other, 'p99')}"
    if shape.enquire_link:
        return [f"{rate(other, shape)} {many_sessions(shape, other)}", latency, "-", cpu]
    r = other["receipts"]
    receipts = f"{r['per_s']:.0f} ({r['received']}/{r['expected']})" if shape.receipts else "-"
    return [rate(other, shape), latency, receipts, cpu]


def many_sessions(shape: Shape, result: dict[str, Any]) -> str:
    """Sessions bound and enquire_link round trips of the many-sessions shape (its median run)."""
    e = result.get("enquire_links", {})
    latency = e.get("latency_ms", {})
    p99 = "-" if latency.get("p99") is None else f"{latency['p99']:.1f}"
    return (f"({result['sessions_bound']} of {shape.sessions} bound; "
            f"enquire_link {e.get('answered', 0)} of {e.get('sent', 0)} answered, p99 {p99} ms)")  # fmt: skip


def replace_between(text: str, marker: str, body: str) -> str:
    """Put ``body`` between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` (appended if absent)."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        return text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def update_doc(marker: str, body: str, path: str = DOC) -> None:
    """Rewrite one marked block of docs/performance.md."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Performance\n"
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(replace_between(text, marker, body))


# -- the profile -------------------------------------------------------------


def profile_simulator(port: int, seconds: float, out: str) -> None:
    """(In the child process) run the simulator in-process under cProfile for ``seconds``; write the stats."""
    sys.path.insert(0, ROOT)
    from twisted.internet import reactor

    from smsc_sim.service import build_service
    from smsc_sim.tap import Options, process_gc_policy

    options = Options()
    # what twistd would be given in the default form: the control API on (on a free port, nobody calls it)
    options.parseOptions(simulator_options(port, free_port()))
    simulator = build_service(options.config, reactor)
    process_gc_policy(simulator)  # as twistd runs it
    # the cyclic GC's own share: its pauses land in whatever function runs when it starts
    pauses: list[list[float]] = [[], [], []]
    began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - began[0])

    gc.callbacks.append(on_gc)
    profiler = cProfile.Profile()
    simulator.startService()
    reactor.callLater(seconds, reactor.stop)  # type: ignore[attr-defined]
    profiler.enable()
    reactor.run()  # type: ignore[attr-defined]
    profiler.disable()
    profiler.dump_stats(out)
    with open(out + ".gc.json", "w", encoding="utf-8") as stream:
        json.dump(pauses, stream)


def profile(seconds: float, shape: Shape) -> str:
    """Profile the simulator under one shape; the text for docs/performance.md."""
    with tempfile.TemporaryDirectory(prefix="smsc-profile-") as directory:
        port, stats_path, log = free_port(), os.path.join(directory, "sim.prof"), os.path.join(directory, "child.log")
        argv = [sys.executable, os.path.abspath(__file__), "--profile-child", str(port), str(seconds + 3)]
        argv.append(stats_path)
        with open(log, "wb") as out:
            child = subprocess.Popen(pinned(0, argv), stdout=out, stderr=subprocess.STDOUT)
        wait_port(port, child, log)
        result = generator(port, shape, seconds, directory)
        child.wait(seconds + 60)
        by_own, by_cumulative = io.StringIO(), io.StringIO()
        pstats.Stats(stats_path, stream=by_own).strip_dirs().sort_stats("tottime").print_stats(25)
        pstats.Stats(stats_path, stream=by_cumulative).sort_stats("cumulative").print_stats(r"smsc_sim", 25)
        with open(stats_path + ".gc.json", encoding="utf-8") as stream:
            pauses: list[list[float]] = json.load(stream)

    def rows(text: str) -> str:
        """The table part of pstats' output, with the checkout's path cut."""
        text = text[text.index("ncalls") :] if "ncalls" in text else text
        return text.replace(ROOT + "/", "").rstrip()

    gc_line = ", ".join(
        f"gen{generation}: {len(p)} collections, {sum(p):.2f} s in all, longest {1000 * max(p, default=0):.0f} ms"
        for generation, p in enumerate(pauses)
    )
    return (
        f"### {shape.name}\n\n"
        f"cProfile of the simulator (one process, CPU 0) under {shape.name} for {seconds:g} s (plus 3 s "
        f"of start and idle); the generator measured {result['submits_per_s']:.0f} msg/s under the profiler "
        f"(p50 {ms(result, 'p50')} ms, p99 {ms(result, 'p99')} ms).\n\n"
        f"Cyclic garbage collector meanwhile: {gc_line}.\n\n"
        "Top 25 by own time:\n\n```text\n" + rows(by_own.getvalue()) + "\n```\n\n"
        "smsc_sim functions by cumulative time:\n\n```text\n" + rows(by_cumulative.getvalue()) + "\n```"
    )


def main() -> None:
    """Parse the options, run the shapes, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of 2 s per shape")
    parser.add_argument("--runs", type=int, default=3, help="runs per shape; the median is kept (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--only", default="", help="only the shapes whose name contains this")
    parser.add_argument("--no-smpp34", action="store_true", help="skip the smpp34 comparison")
    parser.add_argument("--forms", default="default,api-none",
                        help=f"the simulator's forms, comma-separated, the first shown in full (default "
                             f"default,api-none; of {', '.join(FORMS)})")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="also profile the simulator under 4 x 50 (+ receipts)")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--no-doc", action="store_true", help="print the table; leave docs/performance.md alone")
    parser.add_argument("--profile-child", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.profile_child:
        port, seconds, out = options.profile_child
        profile_simulator(int(port), float(seconds), out)
        return
    runs, seconds = (1, 2.0) if options.quick else (options.runs, options.seconds)
    try:
        import smpp34  # noqa: F401

        comparison = not options.no_smpp34
    except ImportError:
        print("smpp34 is not installed (pip install smpp34): no comparison", file=sys.stderr)
        comparison = False
    names = [name.strip() for name in options.forms.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMS]
    if unknown or not names:
        parser.error(f"--forms: unknown form(s) {', '.join(unknown) or '(none)'}; expected some of {', '.join(FORMS)}")
    forms = [FORMS[name] for name in dict.fromkeys(names)]
    rows: list[Row] = []
    for shape in SHAPES:
        if options.only and options.only not in shape.name:
            continue
        print(f"{shape.name}: {runs} x {seconds:g} s, forms {', '.join(f.name for f in forms)}"
              f"{', smpp34' if comparison else ''}, interleaved", file=sys.stderr, flush=True)  # fmt: skip
        rows.append((shape, run_forms(forms + ([SMPP34] if comparison else []), shape, seconds, runs)))
    header = (f"Median of {runs} run(s) of {seconds:g} s per shape and form, with the spread (min-max) of the runs "
              f"in brackets; the forms' runs interleaved (one of each in turn). msg/s = submit_sm_resp per second; "
              f"latency = submit_sm -> submit_sm_resp, of the median run of the first form "
              f"({forms[0].label}); default / --api none = the default form's rate over --api none's in the same "
              f"round, median (min-max) of the rounds: the idle control API's cost; server CPU per submit = the "
              f"simulator process's CPU time (user + system, from /proc) over the generator's run divided by the "
              f"submits answered, default over --api none in the same round, median (min-max): the same cost "
              f"without the machine's steal and drift. Machine: {machine()}.")  # fmt: skip
    text = table(rows, forms, comparison, header)
    print(text)
    if not options.no_doc and not options.only:
        update_doc("bench:results", text)
    if options.profile:
        body = f"Machine: {machine()}.\n\n" + "\n\n".join(
            profile(options.profile_seconds, shape) for shape in (SHAPES[2], SHAPES[3])
        )
        print(body)
        if not options.no_doc:
            update_doc("bench:profile", body)


if __name__ == "__main__":
    main()
