"""
Soak the simulator: mixed traffic through outages for a bounded time, then
prove that nothing was lost.

    python3 bench/soak.py                 # 10 minutes
    python3 bench/soak.py --minutes 1     # a try

It starts ``twistd -n smsc-sim`` as a subprocess on the default topology
(SMPP1 and SMPP2 in one cluster, SMPP0 alone, on free loopback ports) with
``bench/soak-scenario.yaml``: throttling, error statuses, delayed and failed
receipts, and a timeline that crashes SMPP1 and stops SMPP2 gracefully
every 100 s.  Two ESME loops, one per instance of the cluster, drive the
project's load generator (:func:`smsc_sim.load.run_load`) in rounds: a round
ends at its duration or when its sessions are lost (crash, graceful
unbind), and the loop binds again (every second while the instance is
down).  The simulator's RSS is sampled from ``/proc/PID/status``.

After the traffic, receivers stay bound on both instances for a drain
period while the control API is polled; then the verdict, from
``/api/v1/stats``, ``/api/v1/messages?state=pending`` and ``/metrics``:

- every accepted message reached a final state (no pending record, and as
  many final MT state changes as accepted submits);
- every receipt created was acknowledged by an ESME (none failed, exhausted,
  expired or dropped; none still queued), and there is exactly one per
  accepted message (the scenario asks a receipt for each, no duplicates);
- the simulator never exited and logged no traceback.

It prints a JSON summary (RSS samples summarized, counts) and ``verdict:
clean`` (exit 0) or the failed checks (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run as bench_run  # noqa: E402  (bench/run.py: how twistd is started)

SCENARIO = os.path.join(ROOT, "bench", "soak-scenario.yaml")
ACCOUNT = ("smppclient1", "password")
CLUSTER = "NA"
FINAL_STATES = ("DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "DELETED", "UNKNOWN", "ACCEPTED")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(directory: str, ports: dict[str, int], api_port: int, final_ttl: float, scenario: str) -> str:
    """The default topology on the given ports, the soak scenario, and final records kept ``final_ttl`` s."""
    path = os.path.join(directory, "soak-config.yaml")
    clusters = {"SMPP1": CLUSTER, "SMPP2": CLUSTER, "SMPP0": "SMPP0"}
    lines = ["instances:"]
    for name, port in ports.items():
        lines += [f"  - name: {name}", f"    cluster: {clusters[name]}", f"    system_id: {name}",
                  f"    endpoints: ['tcp:{port}:interface=127.0.0.1']"]  # fmt: skip
    lines += [
        "accounts:",
        f"  - system_id: {ACCOUNT[0]}",
        f"    password: {ACCOUNT[1]}",
        "core:",
        f"  store_final_ttl: {final_ttl}",
        f"scenario: '{os.path.abspath(scenario)}'",
        f"api_endpoint: 'tcp:{api_port}:interface=127.0.0.1'",
    ]
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


def rss_kib(pid: int) -> tuple[int, int] | None:
    """``(VmRSS, VmHWM)`` of a process in KiB, or None once it is gone."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        return None
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


def rss_summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """First, minimum, maximum and last RSS (MiB), and its growth over the second half (MiB per minute)."""
    if not samples:
        return {}
    mib = [(t, kib / 1024) for t, kib in samples]
    values = [v for _, v in mib]
    half = [point for point in mib if point[0] >= mib[-1][0] / 2]
    slope = 0.0
    if len(half) >= 2 and half[-1][0] > half[0][0]:
        # least squares over the second half: the warm-up (imports, first store growth) left out
        n = len(half)
        mean_t = sum(t for t, _ in half) / n
        mean_v = sum(v for _, v in half) / n
        var = sum((t - mean_t) ** 2 for t, _ in half)
        slope = sum((t - mean_t) * (v - mean_v) for t, v in half) / var * 60 if var else 0.0
    return {
        "samples": len(samples),
        "first_mib": round(values[0], 1),
        "min_mib": round(min(values), 1),
        "max_mib": round(max(values), 1),
        "last_mib": round(values[-1], 1),
        "second_half_growth_mib_per_min": round(slope, 2),
        "every_minute_mib": [round(v, 1) for t, v in mib if int(t) % 60 < SAMPLE_SECONDS[0]],
    }


#: the sampling interval (set from --sample), for the per-minute picks of rss_summary
SAMPLE_SECONDS = [10.0]


class Totals:
    """What the ESME loops saw, added up over their rounds."""

    def __init__(self) -> None:
        self.rounds: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.session_errors: dict[str, int] = {}

    def add(self, loop: str, result: dict[str, Any]) -> None:
        """Add one round's result of :func:`smsc_sim.load.run_load`."""
        self.rounds[loop] = self.rounds.get(loop, 0) + 1
        receipts = result["receipts"]
        for key, value in (("submitted", result["submitted"]), ("answered", result["answered"]),
                           ("accepted", result["accepted"]), ("unanswered", result["unanswered"]),
                           ("receipts_matched", receipts["received"]),
                           # a receipt for a message of an earlier round (or another loop) is "unmatched"
                           ("receipts_other_round", receipts["unmatched"])):  # fmt: skip
            self.counts[key] = self.counts.get(key, 0) + value
        for table, found in ((self.errors, result["errors"]), (self.session_errors, result["session_errors"])):
            for key, value in found.items():
                table[key] = table.get(key, 0) + value

    def report(self) -> dict[str, Any]:
        """JSON-ready totals."""
        return {"rounds": self.rounds, **self.counts, "errors": self.errors, "session_errors": self.session_errors}


async def sleep(reactor: Any, seconds: float) -> None:
    """Wait ``seconds`` on the reactor."""
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)


async def api(reactor: Any, base: str, path: str, as_text: bool = False) -> Any:
    """GET one path of the control API: its JSON (or text)."""
    import treq

    response = await treq.get(base + path, reactor=reactor, timeout=30)
    if response.code != 200:
        raise RuntimeError(f"GET {path}: {response.code} {await treq.text_content(response)}")
    return await (treq.text_content(response) if as_text else treq.json_content(response))


async def esme_loop(reactor: Any, loop: str, port: int, args: argparse.Namespace, totals: Totals,
                    left: Any, listen_only: bool = False) -> None:
    """
    Rounds of the load generator on one instance while ``left(now)`` (the
    seconds left) is positive; binds again after an outage.
    """
    from smsc_sim.load import LoadSettings, run_load

    while (seconds := left(reactor.seconds())) > 0:
        settings = LoadSettings(
            targets=(("127.0.0.1", port),), system_id=ACCOUNT[0], password=ACCOUNT[1], sessions=args.sessions,
            window=10, rate=0.0 if listen_only else args.rate / 2, duration=max(1.0, min(args.round, seconds)),
            receipts=not listen_only,
            listen_only=listen_only, receipt_timeout=1.0, response_timeout=5.0, progress=0,
        )  # fmt: skip
        result = await run_load(reactor, settings)
        totals.add(loop, result)
        if not result["sessions_bound"]:
            await sleep(reactor, 1.0)  # the instance is down: try again in a second


def cluster_counts(stats: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the cluster the soak drives, from ``/api/v1/stats``."""
    core = stats["clusters"][CLUSTER]
    receipts = core["receipts"]
    return {
        "accepted": core["submits"].get("ESME_ROK", 0),
        "submits": core["submits"],
        "receipts": receipts,
        "receipts_open": receipts["sent"] - receipts["acked"] - receipts["failed"] - receipts["expired"]
        - receipts["dropped"],
        "deliveries": core["deliveries"],
        "retries": core["retries"],
        "pending": core["pending"],
        "pending_dropped": core["pending_dropped"],
        "pending_expired": core["pending_expired"],
        "store_size": core["store_size"],
        "store_pending": core["store_pending"],
        "store_evicted": core["store_evicted"],
        "binds_accepted": core["binds_accepted"],
        "binds_refused": core["binds_refused"],
    }


def settled(counts: dict[str, Any]) -> bool:
    """No message waits for its end and no receipt for its answer."""
    return counts["store_pending"] == 0 and counts["pending"] == 0 and counts["receipts_open"] == 0


def final_mt_states(metrics: str) -> dict[str, float]:
    """MT state changes into each final state, from the Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "smsc_sim_message_states_total" and labels.get("direction") == "mt":
                found[labels["state"]] = found.get(labels["state"], 0) + sample.value
    return found


async def soak(reactor: Any, args: argparse.Namespace, process: subprocess.Popen[bytes], ports: dict[str, int],
               api_port: int, summary: dict[str, Any]) -> None:
    """The whole soak on the running reactor; fills ``summary`` (its ``failures`` decide the verdict)."""
    from twisted.internet.defer import Deferred, gatherResults
    from twisted.internet.task import LoopingCall

    base = f"http://127.0.0.1:{api_port}"
    failures: list[str] = summary.setdefault("failures", [])
    started = time.monotonic()
    while True:  # the API answers once the simulator listens
        if process.poll() is not None:
            failures.append(f"the simulator exited at start ({process.returncode})")
            return
        try:
            await api(reactor, base, "/api/v1/health/ready")
            break
        except Exception:
            if time.monotonic() - started > 30:
                failures.append("the simulator was not ready within 30 s")
                return
            await sleep(reactor, 0.2)
    t0 = reactor.seconds()
    samples: list[tuple[float, int]] = []
    high_water = [0]

    def sample() -> None:
        found = rss_kib(process.pid)
        if found is not None:
            samples.append((reactor.seconds() - t0, found[0]))
            high_water[0] = found[1]

    sampler = LoopingCall(sample)
    sampler.clock = reactor
    sampler.start(args.sample, now=True)
    totals, drain_totals = Totals(), Totals()
    end = t0 + args.minutes * 60
    loops = [Deferred.fromCoroutine(esme_loop(reactor, name, ports[name], args, totals, lambda now: end - now))
             for name in ("SMPP1", "SMPP2")]  # fmt: skip
    await gatherResults(loops)
    traffic_s = reactor.seconds() - t0
    print(f"[soak] traffic done after {traffic_s:.0f} s: {totals.counts}", file=sys.stderr, flush=True)
    # drain: receivers stay bound (and bind again through outages) until everything owed has ended
    drained = [False]
    listeners = [Deferred.fromCoroutine(esme_loop(reactor, name, ports[name], args, drain_totals,
                                                  # short rounds: they end soon after the drain
                                                  lambda now: 0.0 if drained[0] else 5.0, listen_only=True))
                 for name in ("SMPP1", "SMPP2")]  # fmt: skip
    drain_started = reactor.seconds()
    counts = cluster_counts(await api(reactor, base, "/api/v1/stats"))
    while not settled(counts) and reactor.seconds() - drain_started < args.drain and process.poll() is None:
        await sleep(reactor, 5.0)
        counts = cluster_counts(await api(reactor, base, "/api/v1/stats"))
    drain_s = reactor.seconds() - drain_started
    stuck = (await api(reactor, base, "/api/v1/messages?state=pending&direction=mt&limit=1000"))["messages"]
    pending_listed = len(stuck)
    final_states = final_mt_states(await api(reactor, base, "/metrics", as_text=True))
    drained[0] = True
    sample()
    sampler.stop()
    await gatherResults(listeners)
    alive = process.poll() is None
    final_total = sum(final_states.get(state, 0) for state in FINAL_STATES)
    summary.update({
        "minutes": args.minutes, "rate": args.rate, "traffic_s": round(traffic_s), "drain_s": round(drain_s),
        "simulator": counts, "final_mt_states": final_states, "pending_messages_listed": pending_listed,
        # what the messages that never ended have in common (instance, session, when, how far they got)
        "pending_messages": [
            {key: message.get(key) for key in ("message_id", "instance", "session_id", "state", "receipts")}
            | {"submitted_at_s": round(message["submit_time"] - t0, 1), "history": len(message["history"])}
            for message in stuck[:10]
        ],
        "esme": totals.report(), "esme_drain": drain_totals.report(),
        "rss": {**rss_summary(samples), "peak_hwm_mib": round(high_water[0] / 1024, 1)},
    })  # fmt: skip
    esme_receipts = (totals.counts.get("receipts_matched", 0) + totals.counts.get("receipts_other_round", 0)
                     + drain_totals.counts.get("receipts_other_round", 0))  # fmt: skip
    summary["esme_receipts_received"] = esme_receipts
    checks = [
        (alive, "the simulator exited during the soak"),
        (counts["accepted"] > 0, "no message was accepted"),
        (counts["store_pending"] == 0 and pending_listed == 0,
         f"{counts['store_pending']} messages still pending ({pending_listed} listed)"),
        (final_total == counts["accepted"],
         f"{final_total:.0f} MT messages reached a final state, {counts['accepted']} were accepted"),
        (counts["receipts"]["sent"] == counts["accepted"],
         f"{counts['receipts']['sent']} receipts created for {counts['accepted']} accepted messages"),
        (counts["receipts"]["acked"] == counts["receipts"]["sent"],
         f"{counts['receipts']['acked']} of {counts['receipts']['sent']} receipts acknowledged "
         f"(failed {counts['receipts']['failed']}, expired {counts['receipts']['expired']}, "
         f"dropped {counts['receipts']['dropped']})"),
        (counts["pending"] == 0 and counts["pending_dropped"] == 0 and counts["pending_expired"] == 0,
         f"pending deliveries: {counts['pending']} waiting, {counts['pending_dropped']} dropped, "
         f"{counts['pending_expired']} expired"),
        (totals.counts.get("accepted", 0) <= counts["accepted"],
         "the ESMEs saw more messages accepted than the simulator counted"),
        (esme_receipts >= counts["receipts"]["acked"],
         f"the ESMEs answered {esme_receipts} receipts, the simulator counted {counts['receipts']['acked']} acked"),
    ]  # fmt: skip
    failures.extend(message for ok, message in checks if not ok)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of traffic (default %(default)s)")
    p.add_argument("--rate", type=float, default=100.0, help="submits per second in total (default %(default)s)")
    p.add_argument("--sessions", type=int, default=2, help="sessions per instance loop (default %(default)s)")
    p.add_argument("--round", type=float, default=30.0, help="seconds of one load round (default %(default)s)")
    p.add_argument("--drain", type=float, default=300.0, help="most seconds to wait for receipts owed (default 300)")
    p.add_argument("--final-ttl", type=float, default=300.0, help="seconds final records are kept (default 300)")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples (default %(default)s)")
    p.add_argument("--scenario", default=SCENARIO, help="the scenario file (default bench/soak-scenario.yaml)")
    p.add_argument("--json-out", default=None, help="also write the JSON summary to this file")
    p.add_argument("--keep", action="store_true", help="keep the working directory (config, simulator log)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 when clean."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    SAMPLE_SECONDS[0] = args.sample
    directory = tempfile.mkdtemp(prefix="smsc-soak-")
    ports = {"SMPP1": free_port(), "SMPP2": free_port(), "SMPP0": free_port()}
    api_port = free_port()
    config = write_config(directory, ports, api_port, args.final_ttl, args.scenario)
    log = os.path.join(directory, "smsc-sim.log")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv_sim = bench_run.twistd_argv(log, ["--config", config])
    process = subprocess.Popen(argv_sim, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env, cwd=directory)
    summary: dict[str, Any] = {}
    try:
        from twisted.internet.defer import Deferred
        from twisted.internet.task import react

        try:
            react(lambda reactor: Deferred.fromCoroutine(soak(reactor, args, process, ports, api_port, summary)))
        except SystemExit as stop:  # react always exits; the verdict comes after the simulator stops
            if stop.code not in (0, None):
                summary.setdefault("failures", []).append(f"the soak itself failed (exit {stop.code})")
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        summary["simulator_exit_status"] = process.returncode
    return finish(summary, log, directory, args)


def finish(summary: dict[str, Any], log: str, directory: str, args: argparse.Namespace) -> int:
    """Add the log's findings, print the summary and verdict, clean up; the exit status."""
    text = open(log, encoding="utf-8", errors="replace").read() if os.path.exists(log) else ""
    summary["log"] = {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "unhandled_errors": text.count("Unhandled Error"),
        "lines": text.count("\n"),
    }
    failures = list(summary.get("failures", []))
    if summary["log"]["tracebacks"] or summary["log"]["unhandled_errors"]:
        failures.append(f"the simulator logged {summary['log']['tracebacks']} tracebacks")
    summary["failures"] = failures
    summary["verdict"] = "clean" if not failures else "FAILED"
    output = json.dumps(summary, indent=2)
    print(output)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as stream:
            stream.write(output + "\n")
    print("verdict: clean" if not failures else "verdict: FAILED: " + "; ".join(failures))
    if args.keep or failures:
        print(f"working directory kept: {directory}", file=sys.stderr)
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
