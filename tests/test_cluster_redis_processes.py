"""
SMPP1 and SMPP2 as two twistd processes sharing one cluster through a real
redis-server (``--cluster-store redis://...``, ``--instances``): what an ESME
sees on the wire, with raw bind PDUs.  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsc_sim.cluster.redis.binds import DEFAULT_LEASE
from tests import wire
from tests.redis_harness import RedisServer, free_port

REPO = Path(__file__).resolve().parent.parent
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08

pytestmark = pytest.mark.integration


def _twistd(instance: str, store: str, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    """One process of the cluster NA running only ``instance``; both processes get the same config."""
    return subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "smsc-sim",
         "--api", "none", "--no-conformance-judge", "--cluster-store", store, "--instances", instance,
         "--smpp1", f"tcp:{ports['SMPP1']}:interface=127.0.0.1",
         "--smpp2", f"tcp:{ports['SMPP2']}:interface=127.0.0.1",
         "--smpp0", f"tcp:{ports['SMPP0']}:interface=127.0.0.1"],  # fmt: skip
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"twistd ended (status {process.returncode}):\n{output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"twistd did not listen on {port} within 20 s")
            time.sleep(0.05)


def _read_pdu(connection: socket.socket) -> tuple[int, int, int]:
    """One whole PDU from the wire: its command_id, command_status and sequence_number."""

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


def _bind(port: int) -> tuple[int, socket.socket]:
    """Send bind_transceiver for smppclient1 (quota 2) and read the bind_transceiver_resp's status."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(wire.bind(0x09, 1))
    command_id, status, sequence = _read_pdu(connection)
    assert (command_id, sequence) == (0x80000009, 1)
    return status, connection


def _status(port: int) -> int:
    """A bind's status; the probe connection is closed at once (a refused bind holds nothing)."""
    status, connection = _bind(port)
    connection.close()
    return status


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, dict[str, int], dict[str, subprocess.Popen[bytes]]]]:
    ports = {name: free_port() for name in ("SMPP1", "SMPP2", "SMPP0")}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with RedisServer(tmp_path) as redis:
        try:
            for name in ("SMPP1", "SMPP2"):
                processes[name] = _twistd(name, redis.url, ports)
            for name, process in processes.items():
                _wait_listening(ports[name], process)
            yield redis, ports, processes
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=10)
                if process.stdout is not None:
                    process.stdout.close()


def test_two_processes_share_the_bind_quota(
    cluster: tuple[RedisServer, dict[str, int], dict[str, subprocess.Popen[bytes]]],
) -> None:
    """
    smppclient1 (quota 2) binds once to the SMPP1 process and once to the
    SMPP2 process: both are accepted, and a third bind to either process is
    refused with ESME_RALYBND.  An unbind through SMPP1 frees its slot for a
    bind through SMPP2.
    """
    _redis, ports, processes = cluster
    first, one = _bind(ports["SMPP1"])
    second, two = _bind(ports["SMPP2"])
    try:
        assert (first, second) == (0, 0)
        assert _status(ports["SMPP1"]) == ESME_RALYBND
        assert _status(ports["SMPP2"]) == ESME_RALYBND
        # a clean unbind on SMPP1 frees its slot at once, for a bind through SMPP2
        one.sendall(wire.frame(0x00000006, 2))
        assert _read_pdu(one) == (0x80000006, 0, 2)
        deadline = time.monotonic() + 5
        while (status := _status(ports["SMPP2"])) != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 0
    finally:
        one.close()
        two.close()
    # each process runs only its instance: SMPP2's port of the SMPP1 process was never opened
    assert all(process.poll() is None for process in processes.values())


def test_kill_9_frees_the_dead_process_binds_within_the_lease(
    cluster: tuple[RedisServer, dict[str, int], dict[str, subprocess.Popen[bytes]]],
) -> None:
    """
    kill -9 of the SMPP1 process while it holds one of the account's two binds:
    its slot stays taken (a bind through SMPP2 is refused with ESME_RALYBND)
    until its lease runs out, and within the lease a bind through SMPP2 is
    accepted; the quota still holds afterwards.
    """
    _redis, ports, processes = cluster
    first, one = _bind(ports["SMPP1"])
    second, two = _bind(ports["SMPP2"])
    try:
        assert (first, second) == (0, 0)
        processes["SMPP1"].kill()
        processes["SMPP1"].wait(timeout=10)
        killed = time.monotonic()
        assert _status(ports["SMPP2"]) == ESME_RALYBND
        deadline = killed + DEFAULT_LEASE + 2
        third = None
        while time.monotonic() < deadline:
            status, connection = _bind(ports["SMPP2"])
            if status == 0:
                third = connection
                break
            connection.close()
            time.sleep(0.25)
        freed_after = time.monotonic() - killed
        assert third is not None, f"the dead process's bind was not released within {DEFAULT_LEASE + 2} s"
        assert freed_after <= DEFAULT_LEASE + 2
        try:
            assert _status(ports["SMPP2"]) == ESME_RALYBND
        finally:
            third.close()
    finally:
        one.close()
        two.close()


def test_redis_down_refuses_new_binds_with_rsyserr(
    cluster: tuple[RedisServer, dict[str, int], dict[str, subprocess.Popen[bytes]]],
) -> None:
    """
    With Redis gone, a new bind is answered ESME_RSYSERR (within the 2 s the
    core waits for the store), the process keeps running and says why in one
    log line; a bind already made stays bound.
    """
    redis, ports, processes = cluster
    first, one = _bind(ports["SMPP1"])
    try:
        assert first == 0
        redis.stop()
        started = time.monotonic()
        assert _status(ports["SMPP2"]) == ESME_RSYSERR
        assert time.monotonic() - started < 5
        assert processes["SMPP2"].poll() is None
        # the bound session still answers: enquire_link gets its enquire_link_resp
        one.sendall(wire.frame(0x00000015, 7))
        assert _read_pdu(one) == (0x80000015, 0, 7)
    finally:
        one.close()
    processes["SMPP2"].terminate()
    output = processes["SMPP2"].communicate(timeout=20)[0].decode()
    assert "bind refused for smppclient1: the cluster store did not answer" in output
    assert "Traceback" not in output


def test_redis_restart_serves_binds_again_and_recounts_live_ones(
    cluster: tuple[RedisServer, dict[str, int], dict[str, subprocess.Popen[bytes]]],
) -> None:
    """
    Redis restarted empty while smppclient1 holds both binds (one per process):
    once Redis is back, and within a few seconds (reconnect, then a lease
    refresh), a third bind is refused with ESME_RALYBND again, because each
    process has put its live bind back; an unbind then frees a slot.
    """
    redis, ports, _processes = cluster
    first, one = _bind(ports["SMPP1"])
    second, two = _bind(ports["SMPP2"])
    try:
        assert (first, second) == (0, 0)
        redis.restart()
        restarted = time.monotonic()
        statuses = []
        while time.monotonic() - restarted < 15:
            # a probe that gets a slot closes without unbind: with ghost_bind_hold 0 the slot is free at once
            statuses.append(_status(ports["SMPP2"]))
            if statuses[-1] == ESME_RALYBND:
                break
            time.sleep(0.25)
        assert statuses[-1] == ESME_RALYBND, f"statuses seen after the restart: {statuses}"
        two.sendall(wire.frame(0x00000006, 2))
        assert _read_pdu(two) == (0x80000006, 0, 2)
        deadline = time.monotonic() + 5
        while (status := _status(ports["SMPP1"])) != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 0
    finally:
        one.close()
        two.close()
