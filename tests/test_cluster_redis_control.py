"""
Control and views across the processes of one cluster: SMPP1 and SMPP2 as two
twistd processes with their control APIs on, sharing a real redis-server.
An outage, a scenario switch or a reset made through one process's API
applies in the other process too; each API shows both processes; readiness
follows Redis.  redis-server must be installed (``scripts/install-redis.sh``);
when it is not, these tests fail saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests import wire
from tests.process_harness import (
    Cluster,
    bind,
    call_api,
    eventually,
    read_pdu,
    refused,
    run_cluster,
    running,
)
from tests.redis_harness import RedisServer, redis_command
from tests.test_container import exec_form, last

pytestmark = pytest.mark.integration


def _shows_both(api: int) -> bool:
    """Whether the API on ``api`` lists both instances (each process wrote its snapshot)."""
    return len(call_api(api, "GET", "/api/v1/instances")[1]["instances"]) == 2


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """SMPP1 and SMPP2 in a process each with their control APIs, once each API shows both instances."""
    with run_cluster(request, tmp_path, api=True) as started:
        # both processes have written a snapshot and see each other (a slow start takes longer)
        for name, port in started.apis.items():
            eventually(partial(_shows_both, port), f"{name}'s API shows both instances", within=30)
        yield started


def test_an_outage_set_through_one_api_takes_the_other_process_instance_down(cluster: Cluster) -> None:
    """
    POST /api/v1/instances/SMPP1/outage (crash) to the SMPP2 process's API:
    it answers 202 (published), and SMPP1, which runs in the other process,
    stops listening on the wire and drops its bound ESME; the SMPP1 process's
    API shows SMPP1 in ``crash``.  DELETE of the outage through the same API
    brings SMPP1 back: binds through it are accepted again.
    """
    ports, apis = cluster.ports, cluster.apis
    status, bound = bind(ports["SMPP1"])
    try:
        assert status == 0
        code, body = call_api(apis["SMPP2"], "POST", "/api/v1/instances/SMPP1/outage", {"mode": "crash"})
        assert (code, body["name"], body["state"], body["published"]) == (202, "SMPP1", "crash", True)
        eventually(lambda: refused(ports["SMPP1"]), "SMPP1 stops listening")
        bound.settimeout(5)
        try:
            dropped = bound.recv(16) == b""
        except ConnectionResetError:
            dropped = True  # a crash resets the connection
        assert dropped, "the ESME bound to SMPP1 was not dropped"
    finally:
        bound.close()
    own = call_api(apis["SMPP1"], "GET", "/api/v1/instances/SMPP1")[1]
    assert own["state"] == "crash"
    # and the API that asked shows it too, once the other process's snapshot says so
    eventually(lambda: call_api(apis["SMPP2"], "GET", "/api/v1/instances/SMPP1")[1]["state"] == "crash",
               "SMPP2's API shows SMPP1 in crash")  # fmt: skip
    assert not refused(ports["SMPP2"])  # the other instance is untouched
    code, body = call_api(apis["SMPP2"], "DELETE", "/api/v1/instances/SMPP1/outage")
    assert (code, body["state"]) == (202, "up")
    eventually(lambda: not refused(ports["SMPP1"]), "SMPP1 listens again")
    status, again = bind(ports["SMPP1"])
    again.close()
    assert status == 0


def test_a_scenario_switch_through_one_api_changes_the_other_process(cluster: Cluster) -> None:
    """
    PUT /api/v1/scenario (a YAML text that refuses every submit with
    ESME_RSUBMITFAIL, 0x45) through the SMPP1 process's API: a submit_sm sent
    to SMPP2, in the other process, is answered 0x45, and that API shows the
    scenario.  A reset through SMPP2's API brings the configured scenario back
    in both: submits through SMPP1 are accepted again.
    """
    ports, apis = cluster.ports, cluster.apis
    status, esme = bind(ports["SMPP2"])
    try:
        assert status == 0
        esme.sendall(wire.submit_sm(2))
        assert read_pdu(esme) == (0x80000004, 0, 2)
        text = "name: inline\nrules:\n  - name: reject-all\n    status: ESME_RSUBMITFAIL\n"
        code, body = call_api(apis["SMPP1"], "PUT", "/api/v1/scenario", {"yaml": text})
        assert (code, body["scenario"]["name"]) == (200, "inline")
        eventually(lambda: call_api(apis["SMPP2"], "GET", "/api/v1/scenario")[1]["scenario"]["name"] == "inline",
                   "SMPP2's process switched")  # fmt: skip
        esme.sendall(wire.submit_sm(3))
        assert read_pdu(esme) == (0x80000004, 0x45, 3)
    finally:
        esme.close()
    code, _body = call_api(apis["SMPP2"], "POST", "/api/v1/reset", {})
    assert code == 200
    eventually(lambda: call_api(apis["SMPP1"], "GET", "/api/v1/scenario")[1]["scenario"]["name"] == "default",
               "SMPP1's process back on the configured scenario")  # fmt: skip
    status, esme = bind(ports["SMPP1"])
    try:
        esme.sendall(wire.submit_sm(2))
        assert read_pdu(esme) == (0x80000004, 0, 2)
    finally:
        esme.close()


def test_a_reset_through_one_api_clears_both_processes_and_the_shared_keys(cluster: Cluster) -> None:
    """
    After a submit accepted through each process, POST /api/v1/reset to the
    SMPP1 process's API: both processes' counters are back to zero (as each
    API shows them), the cluster's shared keys in Redis are gone, and the bind
    leases of the ESMEs still bound are kept (a third bind is still refused).
    """
    redis, ports, apis = cluster.redis, cluster.ports, cluster.apis
    connections = []
    try:
        for sequence, name in enumerate(("SMPP1", "SMPP2"), start=2):
            status, esme = bind(ports[name])
            connections.append(esme)
            assert status == 0
            esme.sendall(wire.submit_sm(sequence))
            assert read_pdu(esme) == (0x80000004, 0, sequence)

        def accepted(api: int) -> list[int]:
            processes = call_api(api, "GET", "/api/v1/stats")[1]["processes"]
            return sorted(entry["stats"].get("submits", {}).get("ESME_ROK", 0) for entry in processes
                          if entry["cluster"] == "NA")  # fmt: skip

        eventually(lambda: accepted(apis["SMPP2"]) == [1, 1], "each process counted its submit")
        assert redis_command(redis.port, "SET", "smsc-sim:NA:messages:test", "x").startswith(b"+OK")
        assert redis_command(redis.port, "SET", "smsc-sim:OTHER:messages:test", "x").startswith(b"+OK")
        code, body = call_api(apis["SMPP1"], "POST", "/api/v1/reset", {})
        assert (code, body["reset"]["outages"]) == (200, True)
        eventually(lambda: all(accepted(api) == [0, 0] for api in apis.values()), "both processes' counters reset")
        assert redis_command(redis.port, "EXISTS", "smsc-sim:NA:messages:test") == b":0\r\n"
        assert redis_command(redis.port, "EXISTS", "smsc-sim:OTHER:messages:test") == b":1\r\n"  # another cluster's
        status, third = bind(ports["SMPP2"])
        third.close()
        assert status == 0x05  # ESME_RALYBND: the live binds' leases survived the reset
    finally:
        for esme in connections:
            esme.close()


def test_each_api_shows_both_processes_and_a_dead_one_as_gone(cluster: Cluster) -> None:
    """
    GET /api/v1/instances through either API lists SMPP1 and SMPP2, each with
    the process it runs in (two different ones); GET /api/v1/sessions shows a
    session bound in the other process; GET /api/v1/stats has both processes.
    After kill -9 of the SMPP1 process, SMPP2's API shows SMPP1 as ``gone``
    within a few seconds.
    """
    ports, apis = cluster.ports, cluster.apis
    status, esme = bind(ports["SMPP1"])
    try:
        assert status == 0
        for api in apis.values():
            instances = {i["name"]: i for i in call_api(api, "GET", "/api/v1/instances")[1]["instances"]}
            assert set(instances) == {"SMPP1", "SMPP2"}
            assert instances["SMPP1"]["process"] != instances["SMPP2"]["process"]
            assert instances["SMPP1"]["state"] == instances["SMPP2"]["state"] == "up"
            stats = call_api(api, "GET", "/api/v1/stats")[1]
            assert {entry["process"] for entry in stats["processes"]} == {i["process"] for i in instances.values()}

        def sessions() -> list[dict[str, Any]]:
            found = call_api(apis["SMPP2"], "GET", "/api/v1/sessions?instance=SMPP1")[1]["sessions"]
            return [s for s in found if s["account"] == "smppclient1" and s["state"] == "BOUND_TRX"]

        assert eventually(sessions, "SMPP2's API shows the session bound to SMPP1")[0]["instance"] == "SMPP1"
    finally:
        esme.close()
    cluster.processes["SMPP1"].kill()

    def smpp1_state() -> str:
        instances = {i["name"]: i for i in call_api(apis["SMPP2"], "GET", "/api/v1/instances")[1]["instances"]}
        return str(instances["SMPP1"]["state"])

    eventually(lambda: smpp1_state() == "gone", "SMPP1 shown as gone")


def _healthcheck(api: int) -> int:
    """The exit status of the Dockerfile's HEALTHCHECK command against the process's API."""
    argv = exec_form(last("HEALTHCHECK").split("CMD", 1)[1].strip())
    environ = dict(os.environ, SMSC_SIM_HEALTH_URL=f"http://127.0.0.1:{api}/api/v1/health/ready")
    environ.pop("SMSC_SIM_API_TOKEN", None)
    result = subprocess.run([sys.executable, *argv[1:]], env=environ, capture_output=True, timeout=30)
    return result.returncode


def test_readiness_follows_redis(cluster: Cluster) -> None:
    """
    GET /api/v1/health/ready answers 200 while Redis answers, 503 with a JSON
    reason naming the cluster store while redis-server is stopped (liveness
    stays 200, and the container's HEALTHCHECK fails), and 200 again once
    redis-server is back (the HEALTHCHECK passes again).
    """
    redis, api = cluster.redis, cluster.apis["SMPP2"]
    code, body = call_api(api, "GET", "/api/v1/health/ready")
    assert (code, body["ready"], body["cluster"]["stores"][0]["reachable"]) == (200, True, True)
    assert _healthcheck(api) == 0
    redis.stop()
    code, body = eventually(lambda: (r := call_api(api, "GET", "/api/v1/health/ready"))[0] == 503 and r,
                            "readiness 503 with Redis down")  # fmt: skip
    assert body["ready"] is False
    assert redis.url in body["reason"]
    assert call_api(api, "GET", "/api/v1/health/live") == (200, {"status": "live"})
    assert _healthcheck(api) != 0
    # an outage of the instance the other process runs cannot be told: a clear 503, within the bound
    started = time.monotonic()
    code, body = call_api(api, "POST", "/api/v1/instances/SMPP1/outage", {"mode": "crash"})
    assert (code, time.monotonic() - started < 5) == (503, True)
    assert "the cluster store does not answer" in body["error"]["message"]
    redis.restart()
    eventually(lambda: call_api(api, "GET", "/api/v1/health/ready")[0] == 200, "readiness back to 200", within=15)
    # docker runs the HEALTHCHECK again on failure (retries=3) before calling the container unhealthy
    eventually(lambda: _healthcheck(api) == 0, "the HEALTHCHECK passes again", within=10)
    assert cluster.alive()


def test_a_process_started_late_takes_the_cluster_state(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """
    The scenario switched and an outage (reject-binds) set on SMPP2 through
    the SMPP1 process's API before the SMPP2 process starts: once started,
    that process runs the switched scenario and refuses binds to SMPP2 with
    the outage's status.
    """
    with RedisServer(tmp_path) as redis, running(request, Cluster(tmp_path, redis, api=True)) as cluster:
        ports, apis = cluster.ports, cluster.apis
        cluster.start("SMPP1")
        code, _body = call_api(apis["SMPP1"], "PUT", "/api/v1/scenario", {"name": "throttling"})
        assert code == 200
        code, body = call_api(apis["SMPP1"], "POST", "/api/v1/instances/SMPP2/outage",
                              {"mode": "reject-binds", "status": "ESME_RBINDFAIL"})  # fmt: skip
        assert code == 202
        cluster.start("SMPP2")
        eventually(lambda: call_api(apis["SMPP2"], "GET", "/api/v1/instances/SMPP2")[1]["state"] == "reject-binds",
                   "the late process applied the outage")  # fmt: skip
        assert call_api(apis["SMPP2"], "GET", "/api/v1/scenario")[1]["scenario"]["name"] == "throttling"
        status, esme = bind(ports["SMPP2"])
        esme.close()
        assert status == 0x0D  # ESME_RBINDFAIL

