"""
The bind quota shared through a real redis-server (``smsc_sim.cluster.redis.binds``):
two slot registries on two connections stand for two processes of one
cluster.  redis-server must be installed (``scripts/install-redis.sh``);
when it is not, these tests fail saying so.  Leases run on Redis's own
clock, so the expiry tests wait real (short, bounded) time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from smsc_sim.cluster.redis.binds import RedisBindSlots
from tests.redis_async import connected
from tests.redis_async import reactor as _reactor
from tests.redis_async import sleep as _sleep
from tests.redis_harness import RedisServer



@pytest_twisted.async_yield_fixture
async def connections(redis_server: RedisServer) -> AsyncIterator[list[Any]]:
    async with connected(redis_server, 2) as opened:
        yield opened


@pytest_twisted.ensureDeferred
async def test_two_processes_share_the_quota(connections: list[Any]) -> None:
    """
    With a quota of 2, one bind through each process takes both slots; a third
    bind through either is refused, and a clean unbind frees its slot at once.
    """
    smpp1 = RedisBindSlots(connections[0], _reactor(), "NA")
    smpp2 = RedisBindSlots(connections[1], _reactor(), "NA")
    assert await smpp1.acquire("acct", "p1/1", 2) is True
    assert await smpp2.acquire("acct", "p2/1", 2) is True
    assert await smpp1.acquire("acct", "p1/2", 2) is False
    assert await smpp2.acquire("acct", "p2/2", 2) is False
    assert await smpp2.count("acct") == 2
    # another account and another cluster have their own slots
    assert await smpp1.acquire("other", "p1/3", 2) is True
    assert await RedisBindSlots(connections[0], _reactor(), "SMPP0").acquire("acct", "p1/4", 2) is True
    await smpp1.release("acct", "p1/1")
    assert await smpp2.acquire("acct", "p2/2", 2) is True
    assert await smpp1.count("acct") == 2


@pytest_twisted.ensureDeferred
async def test_quota_zero_means_unlimited(connections: list[Any]) -> None:
    """A quota of 0 (no limit) never refuses, and every bind is still counted."""
    slots = RedisBindSlots(connections[0], _reactor(), "NA")
    for n in range(5):
        assert await slots.acquire("acct", f"p1/{n}", 0) is True
    assert await slots.count("acct") == 5


@pytest_twisted.ensureDeferred
async def test_a_dead_process_frees_its_slots_within_the_lease(connections: list[Any]) -> None:
    """
    A process that stops refreshing (killed: it refreshes nothing) keeps its
    slots until its lease runs out, then a bind through the other process is
    accepted.
    """
    dead = RedisBindSlots(connections[0], _reactor(), "NA", lease=0.4)
    alive = RedisBindSlots(connections[1], _reactor(), "NA", lease=0.4)
    assert await dead.acquire("acct", "p1/1", 1) is True
    assert await alive.acquire("acct", "p2/1", 1) is False
    await _sleep(0.6)
    assert await alive.acquire("acct", "p2/1", 1) is True


@pytest_twisted.ensureDeferred
async def test_a_live_process_keeps_its_slots_past_the_lease(connections: list[Any]) -> None:
    """A process that refreshes its leases keeps its binds' slots for as long as it runs."""
    alive = RedisBindSlots(connections[0], _reactor(), "NA", lease=0.4, refresh=0.1)
    other = RedisBindSlots(connections[1], _reactor(), "NA", lease=0.4)
    assert await alive.acquire("acct", "p1/1", 1) is True
    alive.start()
    try:
        await _sleep(1.0)
        assert await other.acquire("acct", "p2/1", 1) is False
        assert await other.count("acct") == 1
    finally:
        alive.stop()


@pytest_twisted.ensureDeferred
async def test_a_ghost_bind_holds_its_slot_for_the_hold(connections: list[Any]) -> None:
    """
    A dropped connection's slot becomes a ghost bind: counted against the quota
    in every process for the hold, then free, even though its process refreshes.
    """
    smpp1 = RedisBindSlots(connections[0], _reactor(), "NA", lease=5.0, refresh=0.1)
    smpp2 = RedisBindSlots(connections[1], _reactor(), "NA", lease=5.0)
    assert await smpp1.acquire("acct", "p1/1", 1) is True
    smpp1.start()
    try:
        await smpp1.hold_ghost("acct", "p1/1", 0.4)
        assert await smpp2.acquire("acct", "p2/1", 1) is False
        await _sleep(0.6)
        assert await smpp2.acquire("acct", "p2/1", 1) is True
    finally:
        smpp1.stop()


def test_missing_redis_server_fails_with_the_install_instruction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without redis-server the cluster tests fail (never skip) naming scripts/install-redis.sh."""
    import tests.redis_harness as harness

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(harness, "EXTRA_PATHS", (str(tmp_path),))
    with pytest.raises(AssertionError, match="scripts/install-redis.sh"):
        RedisServer(tmp_path).start()


@pytest_twisted.ensureDeferred
async def test_live_binds_are_counted_again_after_redis_lost_them(connections: list[Any]) -> None:
    """
    Redis restarted empty (here: its database flushed): at the next refresh a
    process puts back the leases of its live binds, so the quota counts them again.
    """
    alive = RedisBindSlots(connections[0], _reactor(), "NA", lease=5.0, refresh=0.1)
    other = RedisBindSlots(connections[1], _reactor(), "NA", lease=5.0)
    assert await alive.acquire("acct", "p1/1", 1) is True
    await connections[1].flushdb()
    assert await other.count("acct") == 0
    alive.start()
    try:
        await _sleep(0.4)
        assert await other.acquire("acct", "p2/1", 1) is False
        assert await other.count("acct") == 1
    finally:
        alive.stop()
