"""
The bind quota of a cluster shared through Redis, as leases.

Each account's slots are one sorted set, ``smsc-sim:{cluster}:binds:{system_id}``:
a member per slot holder (``process/session``), scored by the time (Redis's
own clock, in milliseconds) at which the slot is free again.  A live bind's
lease is refreshed every ``refresh`` seconds by the process that holds it;
a ghost bind is a lease that nobody refreshes.  A process killed with
``kill -9`` refreshes nothing, so its slots are free within ``lease``
seconds, as the provider's ghost binds are.

Taking a slot is one Lua script (drop expired leases, count, add), so two
processes can never both take the last slot.  Times come from Redis's
``TIME`` so the processes' clocks need not agree.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

#: the default lease of a live bind, in seconds
DEFAULT_LEASE = 10.0

# KEYS[1] the account's set; ARGV: limit (<= 0: none), holder, lease in ms
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false and limit > 0
        and redis.call('ZCARD', KEYS[1]) >= limit then
    return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
return 1
"""

# KEYS[1] the account's set; ARGV: holder, hold in ms.  A ghost: only a slot still held is
# extended (XX); a ghost whose lease already ran out is not brought back.
_EXTEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score == false or tonumber(score) <= now then
    return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
return 1
"""

# KEYS[1] the account's set; ARGV: holder, lease in ms.  A live bind's lease is put back even
# when it is gone (Redis restarted empty, or was unreachable for longer than a lease): the bind
# is still there, so the quota must count it again, even above the limit for a while.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
if held == false or tonumber(held) <= now then
    return 0
end
return 1
"""

# KEYS[1] the account's set
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class RedisCommands(Protocol):
    """The few txredisapi commands used here (a connection or a pool handler)."""

    def eval(self, script: str, keys: list[str] = ..., args: list[Any] = ...) -> Deferred[Any]:
        """Run a Lua script."""

    def zrem(self, key: str, *members: str) -> Deferred[Any]:
        """Remove members of a sorted set."""


class RedisBindSlots:
    """
    :class:`smsc_sim.contracts.IBindSlots` on Redis.

    :param redis: a txredisapi connection.
    :param clock: runs the lease refresh.
    :param cluster: the cluster's name; the keys of two clusters never meet.
    :param lease: seconds a live bind's slot survives without a refresh.
    :param refresh: seconds between refreshes; a third of the lease by default.
    """

    log = Logger()

    def __init__(
        self,
        redis: RedisCommands,
        clock: IReactorTime,
        cluster: str,
        *,
        lease: float = DEFAULT_LEASE,
        refresh: float | None = None,
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be > 0 seconds")
        self._redis = redis
        self._cluster = cluster
        self._lease_ms = max(1, round(lease * 1000))
        self._refresh = refresh if refresh is not None else lease / 3
        #: slots of live binds this process holds: (system_id, holder)
        self._held: set[tuple[str, str]] = set()
        self._loop = LoopingCall(self._extend_all)
        self._loop.clock = clock

    def key(self, system_id: str) -> str:
        """The account's sorted set."""
        return f"smsc-sim:{self._cluster}:binds:{system_id}"

    def start(self) -> None:
        """Start refreshing the leases of this process's binds."""
        if not self._loop.running:
            self._loop.start(self._refresh, now=False)

    def stop(self) -> None:
        """Stop refreshing: the slots still held run out within a lease."""
        if self._loop.running:
            self._loop.stop()

    def acquire(self, system_id: str, holder: str, limit: int) -> Deferred[bool]:
        """Take one slot of the account unless ``limit`` (> 0) are taken; whether it was taken."""
        d = self._redis.eval(_ACQUIRE, [self.key(system_id)], [limit, holder, self._lease_ms])

        def taken(result: Any) -> bool:
            if int(result) == 1:
                self._held.add((system_id, holder))
                return True
            return False

        return d.addCallback(taken)

    def release(self, system_id: str, holder: str) -> Deferred[None]:
        """Free the holder's slot at once (a clean unbind)."""
        self._held.discard((system_id, holder))
        return self._redis.zrem(self.key(system_id), holder).addCallback(lambda _: None)

    def hold_ghost(self, system_id: str, holder: str, hold: float) -> Deferred[None]:
        """Turn the holder's slot into a ghost bind: kept ``hold`` seconds (freed at once if ``<= 0``)."""
        self._held.discard((system_id, holder))
        if hold <= 0:
            return self.release(system_id, holder)
        d = self._redis.eval(_EXTEND, [self.key(system_id)], [holder, max(1, round(hold * 1000))])
        return d.addCallback(lambda _: None)

    def count(self, system_id: str) -> Deferred[int]:
        """Slots of the account taken now, across the cluster (live binds and ghosts)."""
        return self._redis.eval(_COUNT, [self.key(system_id)], []).addCallback(int)

    def _extend_all(self) -> Deferred[Any]:
        calls = [
            self._redis.eval(_REFRESH, [self.key(system_id)], [holder, self._lease_ms])
            for system_id, holder in sorted(self._held)
        ]

        def refreshed(results: list[tuple[bool, Any]]) -> None:
            lost = [result for ok, result in results if ok and int(result) == 0]
            errors = [result for ok, result in results if not ok]
            if errors:
                # Redis unreachable: the leases may run out and the slots go to other binds;
                # the loop goes on and refreshes what is still held once Redis answers
                self.log.warn(
                    "{count} bind leases not refreshed: {error}",
                    count=len(errors),
                    error=errors[0].getErrorMessage(),
                )
            if lost:
                self.log.warn("{count} bind leases had run out (Redis restarted or away); taken again", count=len(lost))

        d: Deferred[Any] = DeferredList(calls, consumeErrors=True)
        return d.addCallback(refreshed)
