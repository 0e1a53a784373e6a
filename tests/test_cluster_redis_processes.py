"""
SMPP1 and SMPP2 as two twistd processes sharing one cluster through a real
redis-server (``--cluster-store redis://...``, ``--instances``): what an ESME
sees on the wire, with raw bind PDUs.  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsc_sim.cluster.redis.binds import DEFAULT_LEASE
from tests import wire
from tests.process_harness import (
    Cluster,
    bind,
    bind_status,
    eventually,
    read_pdu,
    run_cluster,
)

ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """SMPP1 and SMPP2 in a process each, no API, the embedded default config."""
    with run_cluster(request, tmp_path) as started:
        yield started


def test_two_processes_share_the_bind_quota(cluster: Cluster) -> None:
    """
    smppclient1 (quota 2) binds once to the SMPP1 process and once to the
    SMPP2 process: both are accepted, and a third bind to either process is
    refused with ESME_RALYBND.  An unbind through SMPP1 frees its slot for a
    bind through SMPP2.
    """
    ports = cluster.ports
    first, one = bind(ports["SMPP1"])
    second, two = bind(ports["SMPP2"])
    try:
        assert (first, second) == (0, 0)
        assert bind_status(ports["SMPP1"]) == ESME_RALYBND
        assert bind_status(ports["SMPP2"]) == ESME_RALYBND
        # a clean unbind on SMPP1 frees its slot at once, for a bind through SMPP2
        one.sendall(wire.frame(0x00000006, 2))
        assert read_pdu(one) == (0x80000006, 0, 2)
        eventually(lambda: bind_status(ports["SMPP2"]) == 0, "a bind through SMPP2 accepted", within=5)
    finally:
        one.close()
        two.close()
    # each process runs only its instance: SMPP2's port of the SMPP1 process was never opened
    assert cluster.alive()


def test_kill_9_frees_the_dead_process_binds_within_the_lease(cluster: Cluster) -> None:
    """
    kill -9 of the SMPP1 process while it holds one of the account's two binds:
    its slot stays taken (a bind through SMPP2 is refused with ESME_RALYBND)
    until its lease runs out, and within the lease a bind through SMPP2 is
    accepted; the quota still holds afterwards.
    """
    ports = cluster.ports
    first, one = bind(ports["SMPP1"])
    second, two = bind(ports["SMPP2"])
    try:
        assert (first, second) == (0, 0)
        cluster.processes["SMPP1"].kill()
        killed = time.monotonic()
        assert bind_status(ports["SMPP2"]) == ESME_RALYBND
        deadline = killed + DEFAULT_LEASE + 2
        third = None
        while time.monotonic() < deadline:
            status, connection = bind(ports["SMPP2"])
            if status == 0:
                third = connection
                break
            connection.close()
            time.sleep(0.25)
        freed_after = time.monotonic() - killed
        assert third is not None, f"the dead process's bind was not released within {DEFAULT_LEASE + 2} s"
        assert freed_after <= DEFAULT_LEASE + 2
        try:
            assert bind_status(ports["SMPP2"]) == ESME_RALYBND
        finally:
            third.close()
    finally:
        one.close()
        two.close()


def test_redis_down_refuses_new_binds_with_rsyserr(cluster: Cluster) -> None:
    """
    With Redis gone, a new bind is answered ESME_RSYSERR (within the 2 s the
    core waits for the store), the process keeps running and says why in one
    log line; a bind already made stays bound.
    """
    ports, smpp2 = cluster.ports, cluster.processes["SMPP2"]
    first, one = bind(ports["SMPP1"])
    try:
        assert first == 0
        cluster.redis.stop()
        started = time.monotonic()
        assert bind_status(ports["SMPP2"]) == ESME_RSYSERR
        assert time.monotonic() - started < 5
        assert smpp2.alive()
        # the bound session still answers: enquire_link gets its enquire_link_resp
        one.sendall(wire.frame(0x00000015, 7))
        assert read_pdu(one) == (0x80000015, 0, 7)
    finally:
        one.close()
    output = smpp2.terminate()
    assert "bind refused for smppclient1: the cluster store did not answer" in output
    assert "Traceback" not in output


def test_redis_restart_serves_binds_again_and_recounts_live_ones(cluster: Cluster) -> None:
    """
    Redis restarted empty while smppclient1 holds both binds (one per process):
    once Redis is back, and within a few seconds (reconnect, then a lease
    refresh), a third bind is refused with ESME_RALYBND again, because each
    process has put its live bind back; an unbind then frees a slot.
    """
    ports = cluster.ports
    first, one = bind(ports["SMPP1"])
    second, two = bind(ports["SMPP2"])
    try:
        assert (first, second) == (0, 0)
        cluster.redis.restart()
        restarted = time.monotonic()
        statuses = []
        while time.monotonic() - restarted < 15:
            # a probe that gets a slot closes without unbind: with ghost_bind_hold 0 the slot is free at once
            statuses.append(bind_status(ports["SMPP2"]))
            if statuses[-1] == ESME_RALYBND:
                break
            time.sleep(0.25)
        assert statuses[-1] == ESME_RALYBND, f"statuses seen after the restart: {statuses}"
        two.sendall(wire.frame(0x00000006, 2))
        assert read_pdu(two) == (0x80000006, 0, 2)
        eventually(lambda: bind_status(ports["SMPP1"]) == 0, "a bind through SMPP1 accepted", within=5)
    finally:
        one.close()
        two.close()
