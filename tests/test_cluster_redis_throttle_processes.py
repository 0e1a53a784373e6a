"""
The account throttle across two twistd processes (``--cluster-store
redis://...``, ``--instances SMPP1`` / ``--instances SMPP2``): an ESME bound to
both submits flat out through both with raw PDUs, and together they get the
account's rate, not twice it.  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import wire
from tests.redis_harness import RedisServer, free_port
from tests.test_cluster_redis_processes import _read_pdu, _twistd, _wait_listening

#: smppclient1's throughput in the embedded default config (window model)
RATE = 30
#: seconds both sessions submit flat out
SECONDS = 6.0
#: submits a session keeps unanswered at once
WINDOW = 10
ESME_RTHROTTLED = 0x58

pytestmark = pytest.mark.integration


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[dict[str, int], dict[str, subprocess.Popen[bytes]]]]:
    ports = {name: free_port() for name in ("SMPP1", "SMPP2", "SMPP0")}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with RedisServer(tmp_path) as redis:
        try:
            for name in ("SMPP1", "SMPP2"):
                processes[name] = _twistd(name, redis.url, ports)
            for name, process in processes.items():
                _wait_listening(ports[name], process)
            yield ports, processes
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=10)
                if process.stdout is not None:
                    process.stdout.close()


def _submit_flat_out(port: int, start: float, statuses: Counter[int], errors: list[str]) -> None:
    """
    Bind smppclient1 as a transceiver and submit flat out (``WINDOW`` unanswered
    at once) from ``start`` for ``SECONDS``; count the submit_sm_resp statuses
    of the submits sent in that time.
    """
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        with connection:
            connection.sendall(wire.bind(0x09, 1))
            assert _read_pdu(connection)[:2] == (0x80000009, 0)
            while time.monotonic() < start:
                time.sleep(0.001)
            sequence = 1
            out = 0
            while True:
                sending = time.monotonic() < start + SECONDS
                if sending:
                    batch = b"".join(
                        wire.submit_sm(sequence + n + 1, registered_delivery=0) for n in range(WINDOW - out)
                    )
                    sequence += WINDOW - out
                    out = WINDOW
                    connection.sendall(batch)
                elif out == 0:
                    break
                command_id, status, seq = _read_pdu(connection)
                if command_id == 0x80000004:
                    statuses[status] += 1
                    out -= 1
                elif command_id in (0x00000005, 0x00000015):  # a deliver_sm or enquire_link: answer it
                    connection.sendall(wire.frame(command_id | 0x80000000, seq, b"\x00" if command_id == 5 else b""))
            connection.sendall(wire.frame(0x00000006, sequence + 1))
    except Exception as e:  # reported by the test, which fails with it
        errors.append(f"{port}: {e!r}")


def test_two_processes_flat_out_share_the_account_rate(
    two_processes: tuple[dict[str, int], dict[str, subprocess.Popen[bytes]]],
) -> None:
    """
    smppclient1 (30 msg/s, window) bound once to the SMPP1 process and once to
    the SMPP2 process submits flat out through both for 6 s: together they get
    30 per second (180 ± 5 %), both processes get a share, and every other
    submit is answered ESME_RTHROTTLED (0x58).  Each process alone would let
    30 per second through, 360 in all.
    """
    ports, processes = two_processes
    statuses = {name: Counter[int]() for name in ("SMPP1", "SMPP2")}
    errors: list[str] = []
    start = time.monotonic() + 0.5
    threads = [
        threading.Thread(target=_submit_flat_out, args=(ports[name], start, statuses[name], errors))
        for name in statuses
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 30)
    assert not errors, errors
    assert all(not thread.is_alive() for thread in threads)
    accepted = {name: counts[0] for name, counts in statuses.items()}
    total = sum(accepted.values())
    assert RATE * SECONDS * 0.95 <= total <= RATE * SECONDS * 1.05, (accepted, statuses)
    assert all(count >= total * 0.2 for count in accepted.values()), accepted
    for counts in statuses.values():
        assert set(counts) == {0, ESME_RTHROTTLED}, counts
        assert counts[ESME_RTHROTTLED] > counts[0]
    assert all(process.poll() is None for process in processes.values())
