"""
The account throttle across two twistd processes (``--cluster-store
redis://...``, ``--instances SMPP1`` / ``--instances SMPP2``): an ESME bound to
both submits flat out through both with raw PDUs, and together they get the
account's rate, not twice it.  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import wire
from tests.process_harness import Cluster, read_pdu, run_cluster

#: smppclient1's throughput in the embedded default config (window model)
RATE = 30
#: seconds both sessions submit flat out
SECONDS = 6.0
#: submits a session keeps unanswered at once
WINDOW = 10
ESME_RTHROTTLED = 0x58

pytestmark = pytest.mark.integration

@pytest.fixture
def two_processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """SMPP1 and SMPP2 in a process each, no API, the embedded default config."""
    with run_cluster(request, tmp_path) as cluster:
        yield cluster


def _bound(port: int) -> socket.socket:
    """A transceiver session of smppclient1."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(wire.bind(0x09, 1))
    assert read_pdu(connection)[:2] == (0x80000009, 0)
    return connection


def _flood(connection: socket.socket, start: float, seconds: float, statuses: Counter[int], first: int = 1) -> int:
    """
    Submit flat out (``WINDOW`` unanswered at once) from ``start`` for
    ``seconds``; count the submit_sm_resp statuses of the submits sent in
    that time.  The last sequence number used.
    """
    while time.monotonic() < start:
        time.sleep(0.001)
    sequence = first
    out = 0
    while True:
        if time.monotonic() < start + seconds:
            batch = b"".join(wire.submit_sm(sequence + n + 1, registered_delivery=0) for n in range(WINDOW - out))
            sequence += WINDOW - out
            out = WINDOW
            connection.sendall(batch)
        elif out == 0:
            return sequence
        command_id, status, seq = read_pdu(connection)
        if command_id == 0x80000004:
            statuses[status] += 1
            out -= 1
        elif command_id in (0x00000005, 0x00000015):  # a deliver_sm or enquire_link: answer it
            connection.sendall(wire.frame(command_id | 0x80000000, seq, b"\x00" if command_id == 5 else b""))


def _submit_flat_out(port: int, start: float, statuses: Counter[int], errors: list[str]) -> None:
    """Bind smppclient1 and :func:`_flood` for ``SECONDS``, then unbind; errors are kept for the test."""
    try:
        with _bound(port) as connection:
            last = _flood(connection, start, SECONDS, statuses)
            connection.sendall(wire.frame(0x00000006, last + 1))
    except Exception as e:  # reported by the test, which fails with it
        errors.append(f"{port}: {e!r}")


def test_two_processes_flat_out_share_the_account_rate(
    two_processes: Cluster,
) -> None:
    """
    smppclient1 (30 msg/s, window) bound once to the SMPP1 process and once to
    the SMPP2 process submits flat out through both for 6 s: together they get
    30 per second (180 ± 5 %), both processes get a share, and every other
    submit is answered ESME_RTHROTTLED (0x58).  Each process alone would let
    30 per second through, 360 in all.
    """
    ports = two_processes.ports
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
    assert two_processes.alive()


def test_redis_down_keeps_each_process_to_its_share_and_comes_back(two_processes: Cluster) -> None:
    """
    With Redis gone, the SMPP1 process keeps submitting flat out: after the
    1 s it waits for Redis, it accepts at most half the rate (its share:
    one of the cluster's two instances), refuses the rest with
    ESME_RTHROTTLED, says why in one log line and keeps running.  Once Redis is
    back, the shared limit applies again (said in one more line): SMPP1 alone
    gets the whole 30 per second again.
    """
    redis, ports, smpp1 = two_processes.redis, two_processes.ports, two_processes.processes["SMPP1"]
    statuses: Counter[int] = Counter()
    after: Counter[int] = Counter()
    with _bound(ports["SMPP1"]) as connection:  # bound while Redis is up: a new bind would get ESME_RSYSERR
        redis.stop()
        last = _flood(connection, time.monotonic(), 4.0, statuses)
        assert set(statuses) == {0, ESME_RTHROTTLED}, statuses
        # 15/s in the ~3 s after the fallback, plus the one part taken on credit before it
        assert 15 * 2 <= statuses[0] <= 15 * 4 + 1, statuses
        redis.restart()
        # the connection comes back by itself (its retries back off: up to ~10 s); then SMPP1 alone
        # gets the whole shared rate again: at least 60 in 2 s, where its share (a 15/s window)
        # passes at most 45 (15 at each edge of the two seconds, and 15 between)
        restarted = time.monotonic()
        while time.monotonic() - restarted < 20:
            after = Counter()
            last = _flood(connection, time.monotonic(), 2.0, after, first=last)
            if after[0] > 50:
                break
        assert after[0] > 50, after
    assert smpp1.alive()
    output = smpp1.terminate()
    assert output.count("throttle of cluster NA: the cluster store did not answer") == 1, output
    assert "throttle of cluster NA: the cluster store answers again" in output
    assert "Traceback" not in output
