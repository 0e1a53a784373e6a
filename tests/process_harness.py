"""
smsc-sim as real ``twistd`` processes for the multi-process cluster tests:
SMPP1 and SMPP2 of the cluster NA, one process each (``--instances``),
sharing one redis-server (:mod:`tests.redis_harness`), listening on
ephemeral ports of 127.0.0.1, with raw PDU and API helpers to drive them.

Each process binds ``tcp:0`` itself and the harness reads the ports back
from its log.  A port picked free by the harness and handed to the process
would race: on a shared machine another process (another test run's
listener) can take it before twistd binds it, and the twistd that cannot
listen keeps running while the harness talks to the other listener.

Every wait is bounded.  Each process writes its log to a file (a pipe that
nobody reads would block a chatty process), which a test reads to assert a
log line; :class:`Cluster` kills and reaps every process it started, also
when the test fails, and then prints their logs, which pytest shows with
the failure.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from tests import wire
from tests.redis_harness import RedisServer

REPO = Path(__file__).resolve().parent.parent
#: seconds a starting process gets to listen: starting Python and Twisted is slow on a loaded 2-CPU machine
START_TIMEOUT = 60.0
#: seconds a stopped or killed process gets to exit
STOP_TIMEOUT = 20.0
#: the instances of the cluster NA in the embedded default config
INSTANCES = ("SMPP1", "SMPP2", "SMPP0")
#: every endpoint a process is given: an ephemeral port it binds itself, read back by ``wait_listening``
EPHEMERAL = "tcp:0:interface=127.0.0.1"

T = TypeVar("T")


def eventually(
    check: Callable[[], T | Literal[False] | None], what: str = "the condition", within: float = 10.0,
    every: float = 0.1,
) -> T:
    """
    Poll ``check`` until it returns something true; that value.

    A check that raises :class:`OSError` (a refused or reset connection, a
    timeout: a busy or restarting process) counts as not yet.

    :raises AssertionError: naming ``what`` and the last value or error, when it did not within ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        error: OSError | None = None
        try:
            value = check()
        except OSError as e:
            value, error = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            last = f"{type(error).__name__}: {error}" if error is not None else repr(value)
            raise AssertionError(f"{what}: not within {within} s (last: {last})") from error
        time.sleep(every)


def read_pdu(connection: socket.socket) -> tuple[int, int, int]:
    """One whole PDU from the wire: its command_id, command_status and sequence_number (the body is read, dropped)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = connection.recv(n - len(data))
            assert chunk, "the connection closed in the middle of a PDU"
            data += chunk
        return data

    length, command_id, status, sequence = struct.unpack(">IIII", exactly(16))
    exactly(length - 16)
    return command_id, status, sequence


def bind(port: int) -> tuple[int, socket.socket]:
    """Send bind_transceiver for smppclient1 (quota 2); the bind_transceiver_resp's status and the connection."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(wire.bind(0x09, 1))
    command_id, status, sequence = read_pdu(connection)
    assert (command_id, sequence) == (0x80000009, 1)
    return status, connection


def bind_status(port: int) -> int:
    """A bind's status; the probe connection is closed at once (a refused bind holds nothing)."""
    status, connection = bind(port)
    connection.close()
    return status


def refused(port: int) -> bool:
    """Whether a TCP connection to ``port`` is refused (nothing listens there)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def call_api(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One call to a process's control API: its HTTP status and JSON body (an error's too)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def api_get(port: int, path: str) -> Any:
    """GET ``path`` from the API on ``port``: its JSON body, which must come with 200."""
    status, body = call_api(port, "GET", path)
    assert status == 200, (path, status, body)
    return body


def inject_mo(port: int, text: str) -> tuple[int, Any]:
    """POST /api/v1/mo for smppclient1 (447700900002 to 447700900001) to the API on ``port``: status and body."""
    body = {"account": "smppclient1", "source": "447700900002", "destination": "447700900001", "text": text}
    return call_api(port, "POST", "/api/v1/mo", body)


class SmscProcess:
    """
    One ``twistd smsc-sim`` process; its stdout and stderr go to ``log``.

    :param argv: the smsc-sim options, after ``twistd -n --pidfile= smsc-sim``.
    :param env: variables added to this process's environment.
    :param preexec_fn: run in the child before twistd (e.g. to lower a resource limit).
    """

    def __init__(self, name: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.name = name
        self.log = log
        command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
                   "smsc-sim", *argv]  # fmt: skip
        # unbuffered, so the log of a process killed with -9 still has what it said
        environ = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **(env or {}))
        with log.open("wb") as out:
            self.popen = subprocess.Popen(command, cwd=REPO, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                          preexec_fn=preexec_fn)  # noqa: PLW1509  # fmt: skip

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def output(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace")

    def wait_listening(self, instance: str, api: bool, within: float = START_TIMEOUT) -> tuple[int, int | None]:
        """
        Wait until the process says it listens; the ports it bound: ``instance``'s SMPP port and the API's (None
        without ``api``).

        With an API the process's own announce (``smsc-sim listening: SMPP1=127.0.0.1:PORT; control API
        http://127.0.0.1:PORT/api/v1``) gives both; without one, Twisted's ``SMPPServerFactory starting on PORT``
        (the process runs one instance).  Each is logged once the bind succeeded, so the ports are this
        process's, never another listener's.

        :raises AssertionError: saying which wait failed, with the log, when the process ended, logged that it
            cannot listen, or did not say it listens within ``within`` seconds.
        """
        deadline = time.monotonic() + within
        while True:
            text = self.output()
            refused = re.search(r"cannot listen on .*\n", text)
            if refused:
                raise AssertionError(f"{self.name}: twistd could not listen ({refused.group(0).strip()}):\n{text}")
            if api:
                said = re.search(r"smsc-sim listening: (.*); control API (.*)\n", text)
                if said:
                    smpp = re.search(rf"\b{instance}=127\.0\.0\.1:(\d+)", said.group(1))
                    web = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/api/v1", said.group(2).strip())
                    if smpp is None or web is None:
                        raise AssertionError(f"{self.name}: twistd does not listen as asked ({said.group(0).strip()}):"
                                             f"\n{text}")  # fmt: skip
                    return int(smpp.group(1)), int(web.group(1))
            else:
                said = re.search(r"SMPPServerFactory starting on (\d+)\n", text)
                if said:
                    return int(said.group(1)), None
            if not self.alive():
                status = self.popen.returncode
                raise AssertionError(f"{self.name}: twistd ended (status {status}) before it listened:\n"
                                     f"{self.output()}")  # fmt: skip
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: twistd did not say it listens within {within} s:\n{self.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.alive():
            self.popen.kill()
        self.popen.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> str:
        """Stop it cleanly (SIGTERM) and wait for it; everything it logged."""
        if self.alive():
            self.popen.terminate()
        self.popen.wait(timeout=STOP_TIMEOUT)
        return self.output()


class Cluster:
    """
    SMPP1 and SMPP2 of the cluster NA, each run by a process of its own
    (``--instances``) sharing ``redis``; both get the same options.

    :param workdir: where the logs go.
    :param api: give each process a control API on a free port (:attr:`apis`).
    :param scenario: a scenario file for both.
    :param env: variables for both processes (e.g. ``SMSC_SIM_CLUSTER_LEASE``).
    """

    def __init__(self, workdir: Path, redis: RedisServer, *, api: bool = False, scenario: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.workdir = workdir
        self.redis = redis
        self.scenario = scenario
        self.env = dict(env or {})
        #: each started instance's SMPP port, as its process bound it (0 until started; SMPP0 is never run)
        self.ports = dict.fromkeys(INSTANCES, 0)
        #: the control API port of the process running each instance, when ``api`` (0 until started)
        self.apis = dict.fromkeys(("SMPP1", "SMPP2"), 0) if api else {}
        self.processes: dict[str, SmscProcess] = {}

    def options(self, instance: str) -> list[str]:
        """
        The smsc-sim options of the process running ``instance``: every endpoint ``tcp:0``, bound by the
        process itself (an outage's listener comes back on the port first bound).
        """
        endpoint = EPHEMERAL if self.apis else "none"
        options = ["--api", endpoint, "--no-conformance-judge", "--cluster-store", self.redis.url,
                   "--instances", instance]  # fmt: skip
        if self.scenario is not None:
            options += ["--scenario", str(self.scenario)]
        for name in INSTANCES:
            options += [f"--{name.lower()}", EPHEMERAL]
        return options

    def start(self, *instances: str) -> None:
        """
        Start a process for each of ``instances`` (both by default) and wait until each listens (SMPP and API);
        :attr:`ports` and :attr:`apis` then hold the ports they bound.
        """
        for name in instances or ("SMPP1", "SMPP2"):
            log = self.workdir / f"twistd-{name}.log"
            self.processes[name] = SmscProcess(name, self.options(name), log, self.env)
        for name in instances or ("SMPP1", "SMPP2"):
            smpp, api = self.processes[name].wait_listening(name, api=bool(self.apis))
            # updated in place: a test may hold these dicts from before the start
            self.ports[name] = smpp
            if api is not None:
                self.apis[name] = api

    def alive(self) -> bool:
        """Whether every process started still runs."""
        return all(process.alive() for process in self.processes.values())

    def stop(self) -> None:
        """kill -9 and reap every process still running (each of them, even when one does not end)."""
        stuck: list[str] = []
        for name, process in self.processes.items():
            try:
                process.kill()
            except subprocess.TimeoutExpired:
                stuck.append(name)
        assert not stuck, f"still running {STOP_TIMEOUT} s after kill -9: {stuck}"

    def logs(self) -> str:
        """Every process's log, each under its name."""
        return "".join(f"--- {name} ({process.log}) ---\n{process.output()}\n"
                       for name, process in self.processes.items())  # fmt: skip


@contextmanager
def running(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Cluster]:
    """
    ``cluster``, stopped at the end whatever happens; when the test failed,
    the processes' logs are printed (pytest shows them with the failure).
    """
    failed_before = request.session.testsfailed
    failed = True  # until the test came back: a start that raised shows the logs too
    try:
        yield cluster
        failed = request.session.testsfailed > failed_before
    finally:
        cluster.stop()
        if failed:
            print(cluster.logs())


@contextmanager
def run_cluster(request: pytest.FixtureRequest, workdir: Path, **options: Any) -> Iterator[Cluster]:
    """
    A redis-server and :class:`Cluster` started on it (``options`` are the
    cluster's); both stopped at the end, the logs shown when the test failed.
    """
    with RedisServer(workdir) as redis, running(request, Cluster(workdir, redis, **options)) as cluster:
        cluster.start()
        yield cluster
