"""
The simulator loaded by clients that are not ours: smpplib, and a real Kannel
configured as the provider's guide says.

    python bench/outside.py                        # both clients, 3 runs of 10 s each
    python bench/outside.py --clients smpplib --runs 5 --sessions 4 --window 50
    python bench/outside.py --clients kannel --http-clients 16

The server is the form users run: ``twistd -n smsc-sim --scenario bench``
with the control API on and the judge on (bench/run.py's ``server_process``),
pinned to CPU 0; the clients run on CPU 1.  Each figure is counted by the
server, not by the client: ``smsc_sim_pdus_total`` of ``submit_sm_resp``
with ``ESME_ROK`` read from ``/metrics`` before and after the measured
window, after a warm-up, divided by the window's length.  Beside it: the
server's CPU time per submit (from /proc) and the clients' CPU use (near
100 % means the client is the bottleneck, not the simulator).

- **smpplib**: ``--sessions`` processes, each one bound transmitter that
  keeps ``--window`` submit_sm outstanding (smpplib's own ``send_message``
  and ``read_once``, nothing of ours in the client).
- **kannel**: bearerbox and smsbox 1.4.x rendered from
  ``examples/kannel/kannel.conf.template`` (two transceivers, SMPP1 and
  SMPP2, ``max-pending-submits = 10`` each, as the guide has it), fed by
  ``--http-clients`` threads calling smsbox's ``/cgi-bin/sendsms`` over
  keep-alive connections.  Kannel accepts a request before it submits it, so
  only the server's count says what reached the SMSC.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Iterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: the server, ports, pinning, CPU time)

ROOT = run.ROOT
ACCOUNT = run.ACCOUNT
#: seconds of load before the measured window (binds, Kannel's queues filling, the JIT-less warm caches)
WARM_UP = 2.0
_ACCEPTED = re.compile(
    r'^smsc_sim_pdus_total\{command="submit_sm_resp",direction="out",instance="(SMPP\d)",status="ESME_ROK"\} (\S+)$',
    re.MULTILINE,
)


def accepted(api_port: int) -> float:
    """Submits the server has answered with ESME_ROK so far, every instance (from /metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(value) for _, value in _ACCEPTED.findall(text))


def children_cpu(pids: list[int]) -> float:
    """CPU seconds the processes have used so far (those already gone count nothing)."""
    return sum(run.cpu_seconds(pid) or 0.0 for pid in pids)


# -- smpplib ---------------------------------------------------------------------------


def smpplib_child(port: int, window: int, seconds: float) -> None:
    """(In a child process) one smpplib transmitter keeping ``window`` submits outstanding for ``seconds``."""
    import smpplib.client

    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    outstanding = 0

    def answered(pdu: Any) -> None:
        nonlocal outstanding
        outstanding -= 1

    client.set_message_sent_handler(answered)
    client.connect()
    client.bind_transmitter(system_id=ACCOUNT[0], password=ACCOUNT[1])
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while outstanding < window:
            client.send_message(source_addr_ton=1, source_addr="447700900001", dest_addr_ton=1, dest_addr_npi=1,
                                destination_addr="447700900002", short_message=b"Hello from smpplib")  # fmt: skip
            outstanding += 1
        client.read_once()
    drain = time.monotonic() + 5.0
    while outstanding > 0 and time.monotonic() < drain:
        client.read_once()
    with contextlib.suppress(Exception):
        client.unbind()
    client.disconnect()


def smpplib_run(
    port: int, api_port: int, server_pid: int, sessions: int, window: int, seconds: float
) -> dict[str, Any]:
    """One run of ``sessions`` smpplib processes against the server; what the server counted."""
    argv = [sys.executable, os.path.abspath(__file__), "--smpplib-child", str(port), str(window),
            str(WARM_UP + seconds + 1.0)]  # fmt: skip
    children = [subprocess.Popen(run.pinned(1, argv)) for _ in range(sessions)]
    try:
        return measure(api_port, server_pid, [child.pid for child in children], seconds)
    finally:
        for child in children:
            run.stop(child, 30, terminate=False)  # each ends by itself once its time is up


# -- kannel ----------------------------------------------------------------------------


@contextlib.contextmanager
def kannel(directory: str, smpp1: int, smpp2: int) -> Iterator[tuple[int, list[int]]]:
    """bearerbox and smsbox from the example template, pinned to CPU 1; yields the sendsms port and their pids."""
    sys.path.insert(0, ROOT)
    from tests.kannel_harness import TEMPLATE, find_kannel, render

    bearerbox, smsbox = find_kannel()
    admin, boxes, sendsms = run.free_port(), run.free_port(), run.free_port()
    password = secrets.token_hex(8)
    values = {
        "ADMIN_PORT": admin, "ADMIN_PASSWORD": password, "SMSBOX_PORT": boxes, "SENDSMS_PORT": sendsms,
        "SENDSMS_USER": "bench", "SENDSMS_PASSWORD": "bench", "LOG_DIR": directory, "LOG_LEVEL": 2,
        "SMSC_ID": "vonage", "SMPP_HOST": "127.0.0.1", "SMPP1_PORT": smpp1, "SMPP2_PORT": smpp2,
        "SMPP0_PORT": run.free_port(), "SMPP_USER": ACCOUNT[0], "SMPP_PASSWORD": ACCOUNT[1],
        "RECONNECT_DELAY": 1, "SMSC_EXTRA": "", "DLR_URL": "http://127.0.0.1:9/dlr",
        "MO_URL": "http://127.0.0.1:9/mo",
    }  # fmt: skip
    config = os.path.join(directory, "kannel.conf")
    with open(config, "w", encoding="utf-8") as stream:
        stream.write(render(TEMPLATE.read_text(), values))
    processes = []
    try:
        for executable in (bearerbox, smsbox):
            with open(os.path.join(directory, os.path.basename(executable) + ".console"), "ab") as out:
                processes.append(subprocess.Popen(run.pinned(1, [executable, config]), stdout=out,
                                                  stderr=subprocess.STDOUT, cwd=directory))  # fmt: skip
            if executable == bearerbox:
                _wait_online(admin, password, processes[0])
        run.wait_port(sendsms, processes[1], os.path.join(directory, "smsbox.console"))
        yield sendsms, [process.pid for process in processes]
    finally:
        for process in reversed(processes):
            run.stop(process, 10)


def _wait_online(admin: int, password: str, bearerbox: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until bearerbox reports both smsc links (SMPP1, SMPP2) online."""
    from tests.kannel_harness import KannelStatus

    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        if bearerbox.poll() is not None:
            raise RuntimeError(f"bearerbox exited with {bearerbox.returncode}")
        with contextlib.suppress(OSError, ValueError):
            url = f"http://127.0.0.1:{admin}/status.xml?password={password}"
            with urllib.request.urlopen(url, timeout=2) as response:
                status = KannelStatus.parse(response.read())
            seen = {name: smsc.status for name, smsc in status.smscs.items()}
            if all(name in status.smscs and status.smscs[name].online for name in ("SMPP1", "SMPP2")):
                return
        time.sleep(0.2)
    raise RuntimeError(f"Kannel's links not online after {timeout} s: {seen}")


def sendsms_load(port: int, clients: int, seconds: float) -> tuple[int, int]:
    """``clients`` threads calling /cgi-bin/sendsms for ``seconds``; (requests accepted, refused)."""
    path = "/cgi-bin/sendsms?username=bench&password=bench&from=447700900001&to=447700900002&text=Hello+from+Kannel"
    end = time.monotonic() + seconds
    counts = [0, 0]
    lock = threading.Lock()

    def client() -> None:
        ok = refused = 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < end:
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status == 202:
                    ok += 1
                else:
                    refused += 1
            except (OSError, http.client.HTTPException):
                refused += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.close()
        with lock:
            counts[0] += ok
            counts[1] += refused

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return counts[0], counts[1]


def kannel_run(port: int, smpp2: int, api_port: int, server_pid: int, http_clients: int, seconds: float,
               directory: str) -> dict[str, Any]:  # fmt: skip
    """One run of Kannel fed by sendsms against the server; what the server counted."""
    with kannel(directory, port, smpp2) as (sendsms, pids):
        results: dict[str, tuple[int, int]] = {}
        loader = threading.Thread(
            target=lambda: results.setdefault("load", sendsms_load(sendsms, http_clients, WARM_UP + seconds + 1.0))
        )
        # the HTTP load is this process, pinned with the boxes to CPU 1
        os.sched_setaffinity(0, {1} if (os.cpu_count() or 1) > 1 else {0})
        loader.start()
        measured = measure(api_port, server_pid, [*pids, os.getpid()], seconds)
        loader.join(seconds + 60)
        ok, refused = results.get("load", (0, 0))
        measured["sendsms accepted"] = ok
        measured["sendsms refused"] = refused
        return measured


# -- measuring -------------------------------------------------------------------------


def measure(api_port: int, server_pid: int, client_pids: list[int], seconds: float) -> dict[str, Any]:
    """After the warm-up, what the server answered (ESME_ROK) and the CPU both sides used over ``seconds``."""
    time.sleep(WARM_UP)
    first, server_cpu, client_cpu, started = (accepted(api_port), run.cpu_seconds(server_pid) or 0.0,
                                              children_cpu(client_pids), time.monotonic())  # fmt: skip
    time.sleep(seconds)
    last, server_after, client_after, wall = (accepted(api_port), run.cpu_seconds(server_pid) or 0.0,
                                              children_cpu(client_pids), time.monotonic() - started)  # fmt: skip
    submits = last - first
    return {
        "rate": submits / wall,
        "server_us_per_submit": 1e6 * (server_after - server_cpu) / submits if submits else None,
        "server_cpu_pct": 100 * (server_after - server_cpu) / wall,
        "client_cpu_pct": 100 * (client_after - client_cpu) / wall,
    }


def spread(values: list[float]) -> str:
    """``median (min-max)``, rounded."""
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--smpplib-child":
        smpplib_child(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="smpplib,kannel", help="of smpplib, kannel (comma-separated)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="the measured window of each run")
    parser.add_argument("--sessions", type=int, default=4, help="smpplib: bound transmitters, a process each")
    parser.add_argument("--window", type=int, default=50, help="smpplib: submits outstanding per session")
    parser.add_argument("--http-clients", type=int, default=16, help="kannel: threads calling sendsms")
    args = parser.parse_args()
    clients = [name.strip() for name in args.clients.split(",") if name.strip()]
    rows = []
    for name in clients:
        runs = []
        for number in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="smsc-outside-") as directory:
                smpp2 = run.free_port()
                extra = ("--smpp2", f"tcp:{smpp2}:interface=127.0.0.1")
                with run.server_process("smsc-sim", directory, api=True, extra=extra) as (port, api_port, pid):
                    assert api_port is not None
                    if name == "smpplib":
                        result = smpplib_run(port, api_port, pid, args.sessions, args.window, args.seconds)
                    else:
                        result = kannel_run(port, smpp2, api_port, pid, args.http_clients, args.seconds, directory)
            shown = {key: round(value, 1) if isinstance(value, float) else value for key, value in result.items()}
            print(f"  {name:8} run {number + 1}: {json.dumps(shown)}", file=sys.stderr)
            runs.append(result)
        shape = (f"{args.sessions} x {args.window}" if name == "smpplib"
                 else f"sendsms x {args.http_clients} -> 2 binds x 10 pending")  # fmt: skip
        rows.append(
            f"| {name} | {shape} | {spread([r['rate'] for r in runs])} | "
            f"{spread([r['server_us_per_submit'] or 0.0 for r in runs])} | "
            f"{spread([r['server_cpu_pct'] for r in runs])} % | {spread([r['client_cpu_pct'] for r in runs])} % |"
        )
    print(f"Median (min-max) of {args.runs} run(s) of {args.seconds:g} s after {WARM_UP:g} s of warm-up; the "
          "server in the default form (API on, judge on) on CPU 0, the client on CPU 1; submits/s as the server "
          "counted them (submit_sm_resp ESME_ROK on /metrics).\n")
    print("| client | shape | submits/s (server's count) | server CPU µs per submit | server CPU | client CPU |")
    print("|---|---|--:|--:|--:|--:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
