"""
The Redis side of cluster-wide control and views against a real redis-server:
control messages and the state in force (``smsc_sim.cluster.redis.control``),
the subscriber that hears them, and the processes' snapshots
(``smsc_sim.cluster.redis.snapshots``).  Two connections stand for two
processes.  redis-server must be installed (``scripts/install-redis.sh``);
when it is not, these tests fail saying so.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted

from smsc_sim.cluster.redis.control import MAX_MESSAGE, RedisControl, decode
from smsc_sim.cluster.redis.snapshots import MAX_SNAPSHOT, RedisSnapshots
from smsc_sim.cluster.redis.subscriber import RedisSubscriber
from tests.redis_async import connected
from tests.redis_async import reactor as _reactor
from tests.redis_async import sleep as _sleep
from tests.redis_async import until as _until
from tests.redis_harness import RedisServer



@pytest_twisted.async_yield_fixture
async def connections(redis_server: RedisServer) -> AsyncIterator[list[Any]]:
    async with connected(redis_server, 2) as opened:
        yield opened


@pytest_twisted.ensureDeferred
async def test_a_control_message_reaches_the_other_process_and_its_state_stays(
    redis_server: RedisServer, connections: list[Any]
) -> None:
    """
    A message published by one process's control is heard by a subscriber
    (the other process) with its origin; the state recorded with it stays in
    the hash for a process that starts later, and a None value deletes it.
    """
    heard: list[tuple[str, Any]] = []
    resubscribed: list[bool] = []
    subscriber = RedisSubscriber("127.0.0.1", redis_server.port, lambda c, m: heard.append((c, m)),
                                 lambda: resubscribed.append(True))  # fmt: skip
    subscriber.subscribe("smsc-sim:NA:db0:control")
    subscriber.start()
    try:
        await _until(lambda: subscriber.connected and resubscribed)
        smpp1 = RedisControl(connections[0], "NA", "host:1:aa")
        outage = {"kind": "outage", "instance": "SMPP2", "mode": "crash", "id": "1"}
        await smpp1.publish(outage, {"outage:SMPP2": {"mode": "crash", "options": {}, "until": None}})
        await _until(lambda: heard)
        channel, raw = heard[0]
        assert channel == "smsc-sim:NA:db0:control"
        assert decode(raw) == dict(outage, origin="host:1:aa")
        later = RedisControl(connections[1], "NA", "host:2:bb")
        assert await later.state() == {"outage:SMPP2": {"mode": "crash", "options": {}, "until": None}}
        await smpp1.publish({"kind": "end_outage", "instance": "SMPP2", "id": "2"}, {"outage:SMPP2": None})
        assert await later.state() == {}
        # another cluster's channel is not heard
        await RedisControl(connections[0], "SMPP0", "host:1:aa").publish({"kind": "reset", "id": "3"})
        await _sleep(0.2)
        assert len(heard) == 2
    finally:
        subscriber.stop()


def test_a_message_that_is_not_control_is_refused() -> None:
    """Non-JSON, non-objects, objects without a kind and oversized messages are not control messages."""
    assert decode(b"not json") is None
    assert decode("[1, 2]") is None
    assert decode('{"instance": "SMPP1"}') is None
    assert decode(json.dumps({"kind": "reset", "pad": "x" * MAX_MESSAGE})) is None
    assert decode(b'{"kind": "reset"}') == {"kind": "reset"}


@pytest_twisted.ensureDeferred
async def test_a_reset_clears_the_cluster_keys_but_leases_and_liveness(connections: list[Any]) -> None:
    """
    clear_shared deletes every ``smsc-sim:NA:*`` key (messages, streams,
    throttles...) but the bind leases, the processes' liveness keys and the
    control state, whose fields go only as told; other clusters' keys stay.
    """
    redis = connections[0]
    kept = ["smsc-sim:NA:binds:smppclient1", "smsc-sim:NA:process:host:1:aa", "smsc-sim:NA:processes",
            "smsc-sim:SMPP0:messages:1", "other:key"]  # fmt: skip
    doomed = [f"smsc-sim:NA:messages:{n}" for n in range(1200)] + ["smsc-sim:NA:throttle:smppclient1"]
    for key in kept + doomed:
        await redis.set(key, "x")
    control = RedisControl(redis, "NA", "host:1:aa")
    await control.publish({"kind": "scenario", "id": "1"}, {"scenario": {"name": "throttling"}})
    await control.publish({"kind": "outage", "id": "2"}, {"outage:SMPP1": {"mode": "crash"}})
    deleted = await control.clear_shared(lambda field: field == "scenario")
    assert deleted == len(doomed)
    assert [await redis.exists(key) for key in kept] == [1] * len(kept)
    assert await redis.exists(doomed[0]) == 0
    assert await control.state() == {"scenario": {"name": "throttling"}}


@pytest_twisted.ensureDeferred
async def test_processes_see_each_other_and_a_silent_one_is_gone(connections: list[Any]) -> None:
    """
    Two processes' snapshots of cluster NA: each reads the other's (named by
    its process); once one stops writing, its snapshot expires within a few
    intervals and the other shows it as gone, keeping what it showed last.
    """
    smpp1 = RedisSnapshots(connections[0], _reactor(), "NA", "p1", lambda: {"instances": [{"name": "SMPP1"}]},
                           interval=0.2)  # fmt: skip
    smpp2 = RedisSnapshots(connections[1], _reactor(), "NA", "p2", lambda: {"instances": [{"name": "SMPP2"}]},
                           interval=0.2)  # fmt: skip
    await smpp1.tick()
    await smpp2.tick()
    await smpp1.tick()
    assert smpp1.others["p2"]["instances"] == [{"name": "SMPP2"}]
    assert smpp2.others["p1"]["process"] == "p1"
    assert smpp1.gone == smpp2.gone == set()
    assert smpp1.error is None and smpp1.last_ok is not None
    await _sleep(0.8)  # p1 is silent for longer than its snapshot lives (3 intervals)
    await smpp2.tick()
    assert smpp2.gone == {"p1"}
    assert smpp2.others["p1"]["instances"] == [{"name": "SMPP1"}]
    await smpp1.tick()
    await smpp2.tick()
    assert smpp2.gone == set()


@pytest_twisted.ensureDeferred
async def test_a_snapshot_is_bounded(connections: list[Any]) -> None:
    """A snapshot with too many sessions is written without its session list, saying how many were left out."""
    sessions = [{"session_id": n, "peer": "x" * 200} for n in range(1000)]
    big = RedisSnapshots(connections[0], _reactor(), "NA", "p1", lambda: {"sessions": sessions, "stats": {"a": 1}})
    reader = RedisSnapshots(connections[1], _reactor(), "NA", "p2", lambda: None)
    await big.tick()
    await reader.tick()
    raw = await connections[1].get("smsc-sim:NA:process:p1")
    assert len(raw) <= MAX_SNAPSHOT
    assert reader.others["p1"]["sessions"] == []
    assert reader.others["p1"]["sessions_left_out"] == 1000
    assert reader.others["p1"]["stats"] == {"a": 1}
    # a process with nothing of the cluster (None) writes nothing and is not listed
    assert list(await connections[0].hgetall("smsc-sim:NA:processes")) == ["p1"]


@pytest_twisted.ensureDeferred
async def test_control_is_per_database(redis_server: RedisServer) -> None:
    """
    Two simulators on one Redis, one using database 0 and one database 1,
    with the same cluster name NA, do not hear each other's control
    messages (an outage set on one never reaches the other); a process on
    the same database does hear it.
    """
    from smsc_sim.cluster.redis.connect import RedisClusterStore

    heard: dict[str, list[dict[str, Any]]] = {"db0": [], "db1": [], "db0-other": []}
    stores = {
        "db0": RedisClusterStore(f"redis://127.0.0.1:{redis_server.port}/0", _reactor()),
        "db1": RedisClusterStore(f"redis://127.0.0.1:{redis_server.port}/1", _reactor()),
        "db0-other": RedisClusterStore(f"redis://127.0.0.1:{redis_server.port}/0", _reactor()),
    }
    controls = {
        name: store.control_for("NA", heard[name].append, lambda: None) for name, store in stores.items()
    }
    for store in stores.values():
        store.start()
    try:
        await _until(lambda: all(store.reachable()[0] for store in stores.values()))
        await _sleep(0.2)
        assert await controls["db1"].publish({"kind": "outage", "instance": "SMPP1", "mode": "crash", "id": "1"})
        await _sleep(0.3)
        assert heard == {"db0": [], "db1": [], "db0-other": []}
        assert await controls["db0"].publish({"kind": "reset", "id": "2"})
        await _until(lambda: heard["db0-other"])
        await _sleep(0.3)
        assert [m["id"] for m in heard["db0-other"]] == ["2"]
        assert heard["db1"] == [] and heard["db0"] == []
    finally:
        for store in stores.values():
            store.stop()
