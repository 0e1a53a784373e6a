"""
The per-account throttle shared through a real redis-server
(``smsc_sim.cluster.redis.throttle``): two throttles on two connections stand
for two processes of one cluster submitting flat out.  A submit never waits
for Redis (a local reserve leased in batches), and Redis not answering falls
back to the process's share of the rate.  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
The limit runs on Redis's own clock, so the rate tests take a few real seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, LoopingCall, deferLater
from twisted.logger import Logger

from smsc_sim.cluster.redis.throttle import LeasedLimiter, RedisThrottles, reserve_size
from smsc_sim.config import AccountSettings
from smsc_sim.contracts import ThrottleSettings
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.default_scenario import DefaultScenario
from smsc_sim.smpp.constants import BindType
from tests.redis_async import connected
from tests.redis_async import reactor as _reactor
from tests.redis_harness import RedisServer

ESME_RTHROTTLED = 0x58


class _Session:
    def __init__(self, session_id: int) -> None:
        self.session_id = session_id


def _entry(account: AccountSettings, session_id: int = 1, instance: str = "SMPP1") -> BindEntry:
    return BindEntry(_Session(session_id), account, BindType.transceiver, 0x34, instance, 0.0)  # type: ignore[arg-type]


class _ScenarioThrottle(DefaultScenario):
    """A scenario whose ``throttle`` section overrides the accounts' rates."""

    def __init__(self, settings: ThrottleSettings) -> None:
        self._settings = settings

    def throttle(self) -> ThrottleSettings | None:
        return self._settings


class _Counting:
    """A connection that counts the round trips made through it."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.calls = 0

    def eval(self, script: str, keys: list[str] = [], args: list[Any] = []) -> Deferred[Any]:
        self.calls += 1
        result: Deferred[Any] = self.connection.eval(script, keys, args)
        return result


class _Silent:
    """A Redis that takes requests and answers only when the test says (or never)."""

    def __init__(self) -> None:
        self.pending: list[Deferred[Any]] = []

    def eval(self, script: str, keys: list[str] = [], args: list[Any] = []) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append(d)
        return d



@pytest_twisted.async_yield_fixture
async def connections(redis_server: RedisServer) -> AsyncIterator[list[Any]]:
    async with connected(redis_server, 2) as opened:
        yield opened


async def _flat_out(
    throttles: list[RedisThrottles], account: AccountSettings, seconds: float, tries_per_tick: int = 1,
    scenario: Any = None,
) -> tuple[list[float], dict[int, int]]:
    """
    Submit flat out through every throttle in turn (a try each 2 ms, per
    throttle) for ``seconds`` of real time: the times of the accepted parts and
    the statuses answered.
    """
    reactor = _reactor()
    scenario = scenario or DefaultScenario()
    accepted: list[float] = []
    statuses: dict[int, int] = {}
    entries = [_entry(account, n + 1, f"SMPP{n + 1}") for n in range(len(throttles))]

    def tick() -> None:
        for _ in range(tries_per_tick):
            for throttle, entry in zip(throttles, entries):
                status = throttle.take(entry, 1, scenario)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 0:
                    accepted.append(reactor.seconds())

    loop = LoopingCall(tick)
    loop.clock = reactor
    done = loop.start(0.002)
    await deferLater(reactor, seconds, lambda: None)
    loop.stop()
    await done
    # let the refills still out come back before the connections close
    await deferLater(reactor, 0.1, lambda: None)
    return accepted, statuses


def _most_in_any_second(times: list[float]) -> int:
    best, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def test_reserve_is_small_for_small_rates() -> None:
    """A process leases one part at a time at 30/s, 2 % of the rate at higher rates, and at most 1000."""
    assert reserve_size(30) == 1
    assert reserve_size(0.5) == 1
    assert reserve_size(1000) == 20
    assert reserve_size(10_000_000) == 1000


@pytest_twisted.ensureDeferred
async def test_two_processes_flat_out_get_the_window_rate_together(connections: list[Any]) -> None:
    """
    An account of 30 msg/s (window) submitting flat out through two
    processes for 3 s gets 90 accepted in all (± 5 %), about half through
    each, and ESME_RTHROTTLED (0x58) for every other submit; no one-second
    window sees more than the rate plus the two processes' reserves.
    """
    account = AccountSettings("acct", "pw", throughput=30)
    smpp1 = RedisThrottles(connections[0], _reactor(), "NA", "p1")
    smpp2 = RedisThrottles(connections[1], _reactor(), "NA", "p2")
    accepted, statuses = await _flat_out([smpp1, smpp2], account, 3.0)
    assert 85.5 <= len(accepted) <= 94.5, len(accepted)
    assert set(statuses) == {0, ESME_RTHROTTLED}
    assert statuses[ESME_RTHROTTLED] > 1000
    assert _most_in_any_second(accepted) <= 30 + 2 * 2


@pytest_twisted.ensureDeferred
async def test_two_processes_flat_out_get_the_bucket_rate_together(connections: list[Any]) -> None:
    """
    An account of 20 msg/s with a bucket of 10, flat out through two
    processes for 3 s: the full bucket, then the rate, 10 + 60 = 70 in all (± 5 %).
    """
    account = AccountSettings("acct", "pw", throughput=20, throttle_model="bucket", burst=10)
    smpp1 = RedisThrottles(connections[0], _reactor(), "NA", "p1")
    smpp2 = RedisThrottles(connections[1], _reactor(), "NA", "p2")
    accepted, statuses = await _flat_out([smpp1, smpp2], account, 3.0)
    assert 66.5 <= len(accepted) <= 73.5, len(accepted)
    assert set(statuses) == {0, ESME_RTHROTTLED}


@pytest_twisted.ensureDeferred
async def test_a_scenario_throttle_is_shared_and_answers_its_status(connections: list[Any]) -> None:
    """
    A scenario throttle (account scope, 25/s, status 0x14) overrides the
    account's 30/s across both processes: 50 in 2 s (± 5 %), the others refused with 0x14.
    """
    account = AccountSettings("acct", "pw", throughput=30)
    scenario = _ScenarioThrottle(ThrottleSettings(25, 0, "account", 0x14, 0.0, "window"))
    smpp1 = RedisThrottles(connections[0], _reactor(), "NA", "p1")
    smpp2 = RedisThrottles(connections[1], _reactor(), "NA", "p2")
    accepted, statuses = await _flat_out([smpp1, smpp2], account, 2.0, scenario=scenario)
    assert 47.5 <= len(accepted) <= 52.5, len(accepted)
    assert set(statuses) == {0, 0x14}


@pytest_twisted.ensureDeferred
async def test_refills_are_batched_not_one_round_trip_per_submit(connections: list[Any]) -> None:
    """
    At 1000 msg/s flat out, one process makes at most one Redis round trip per
    five accepted submits (a reserve of 20, refilled at half), and the rate holds.
    """
    account = AccountSettings("acct", "pw", throughput=1000)
    counting = _Counting(connections[0])
    smpp1 = RedisThrottles(counting, _reactor(), "NA", "p1")
    accepted, statuses = await _flat_out([smpp1], account, 1.5, tries_per_tick=10)
    assert 1000 * 1.5 * 0.95 <= len(accepted) <= 1000 * 2 + 2 * 20
    assert counting.calls <= len(accepted) / 5, (counting.calls, len(accepted))
    assert statuses[ESME_RTHROTTLED] > 0


@pytest_twisted.ensureDeferred
async def test_a_submit_never_waits_for_redis(connections: list[Any]) -> None:
    """
    With a fake clock that does not move: the first submit of an idle account
    passes at once, on credit, before Redis has answered; the next is refused
    at once while the refill is out; once Redis has answered, submits pass
    from the reserve again, and the credit was paid from the grant.
    """
    clock = Clock()
    account = AccountSettings("acct", "pw", throughput=1000)
    throttle = RedisThrottles(connections[0], clock, "NA", "p1")
    entry = _entry(account)
    scenario = DefaultScenario()
    assert throttle.take(entry, 1, scenario) == 0
    limiter = next(iter(throttle._buckets.values()))
    assert isinstance(limiter, LeasedLimiter)
    assert limiter.tokens == -1
    # a message bigger than the credit left waits for the grant, without waiting itself
    assert throttle.take(entry, 20, scenario) == ESME_RTHROTTLED
    await deferLater(_reactor(), 0.2, lambda: None)
    assert limiter.tokens == limiter.reserve  # 21 granted: the credit paid, the reserve full
    assert throttle.take(entry, 20, scenario) == 0


def test_bind_and_instance_scopes_stay_in_the_process() -> None:
    """A scenario throttle per bind or per instance never asks Redis: each belongs to one process."""
    clock = Clock()
    silent = _Silent()
    throttle = RedisThrottles(silent, clock, "NA", "p1")
    account = AccountSettings("acct", "pw", throughput=30)
    for scope in ("bind", "instance"):
        scenario = _ScenarioThrottle(ThrottleSettings(5, 0, scope, ESME_RTHROTTLED, 0.0, "window"))
        results = [throttle.take(_entry(account), 1, scenario) for _ in range(8)]
        assert results.count(0) == 5
    assert silent.pending == []


def test_redis_not_answering_falls_back_to_the_process_share_with_one_log_line() -> None:
    """
    Redis does not answer a refill within 1 s: the process says so in one log
    line and keeps each account to its share of the rate (half of 30/s when
    it runs one of the cluster's two instances: 15 per second, 0x58 for the
    rest), never waiting; when Redis answers, the shared limit is back, said
    in one more line.  An error from Redis does the same at once.
    """
    clock = Clock()
    clock.advance(1_700_000_000)
    silent = _Silent()
    logged: list[dict[str, Any]] = []
    throttle = RedisThrottles(silent, clock, "NA", "p1", share=0.5)
    throttle.log = Logger(observer=logged.append)  # type: ignore[arg-type]
    account = AccountSettings("acct", "pw", throughput=30)
    entry, scenario = _entry(account), DefaultScenario()
    assert throttle.take(entry, 1, scenario) == 0  # on credit; the refill never comes back
    clock.advance(1.0)
    assert throttle.degraded
    results = []
    for _ in range(2000):  # 2 s flat out, a try a millisecond
        results.append(throttle.take(entry, 1, scenario))
        clock.advance(0.001)
    assert results.count(0) == 30
    assert set(results) == {0, ESME_RTHROTTLED}
    assert len(silent.pending) == 1  # one request out at a time, however many submits
    texts = [event["log_format"] for event in logged]
    assert len(texts) == 1 and "did not answer" in texts[0]
    silent.pending[0].callback([2, 0])
    assert not throttle.degraded
    assert len(logged) == 2 and "answers again" in logged[1]["log_format"]
    assert throttle.take(entry, 1, scenario) == 0
    # a Redis error (connection lost) falls back at once, with one line again
    silent.pending[-1].errback(ConnectionError("connection lost"))
    assert throttle.degraded
    assert len(logged) == 3
