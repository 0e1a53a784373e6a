"""
The per-account throttle of a cluster spread over processes, on Redis.

Every process of the cluster takes its submits' parts from one limit per
account, kept in Redis and decided by a Lua script (so two processes can
never both take the last part of a second).  A submit must not wait for
Redis, so each process keeps a small **reserve** of parts leased from Redis
and takes from it synchronously; when the reserve runs low it asks for
more, one round trip for a batch of parts (:class:`LeasedLimiter`).

The keys, one limit per account and setting (two processes with the same
configuration name the same key):

- ``window``: ``smsc-sim:{cluster}:throttle:{system_id}:window:{rate}``, a
  sorted set of grants (member ``parts:process:seq``, scored by Redis's
  ``TIME`` in microseconds), and ``...:sum``, the parts they hold; at most
  ``rate`` parts are granted in any one-second window.
- ``bucket``: ``smsc-sim:{cluster}:throttle:{system_id}:bucket:{rate}:{burst}``,
  a hash ``tokens``/``last``: a token bucket of ``burst`` refilled at ``rate``.

Only the ``account`` scope is shared: a ``bind`` or ``instance`` scope
(scenario ``throttle.scope``) belongs to one process anyway, so it keeps the
in-memory limiter.  A refusal's ``penalty`` holds in the process that refused.

Redis unreachable (no answer within ``timeout`` seconds, or an error): each
account falls back to this process's share of its rate
(``share``: the cluster's instances this process runs, over all of them; with
SMPP1 and SMPP2 in two processes, half the rate each, so the two together
still allow about the rate).  One log line says so, one more when Redis answers
again and the shared limit is back.  Nothing waits and nothing crashes.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.core.throttle import Limiter, Throttles, local_limiter

#: the reserve, as a share of the rate: see :func:`reserve_size`
RESERVE_SHARE = 0.02
#: the largest reserve, in parts (a bound on what one process may hold or owe)
MAX_RESERVE = 1000
#: seconds a refill may take before the process falls back to its local share
DEFAULT_TIMEOUT = 1.0
#: seconds between tries after Redis failed to answer
RETRY_AFTER_FAILURE = 1.0
# clock values near 1.7e9 carry float rounding (as in smsc_sim.core.throttle)
_SLACK = 1e-6

# KEYS[1] the grants (sorted set), KEYS[2] their sum.  ARGV: limit (parts per window), span (us),
# wanted (parts), grant id.  Returns {granted, microseconds until parts free up (0: there is room)}.
# A part granted at t stops counting at exactly t + span, as in the in-memory SlidingWindow; a
# request larger than the whole limit is granted in full when the window is empty (throttled,
# never refused forever).
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local edge = now - span
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', edge)
local changed = false
if #old > 0 then
    for _, member in ipairs(old) do
        used = used - tonumber(string.match(member, '^(%d+):'))
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', edge)
    changed = true
end
if used < 0 or redis.call('EXISTS', KEYS[1]) == 0 then
    used = 0
end
local grant = 0
if used + want <= limit then
    grant = want
elseif used == 0 then
    grant = want
elseif used < limit then
    grant = limit - used
end
local ttl = math.ceil(span / 1000) + 1000
if grant > 0 then
    redis.call('ZADD', KEYS[1], now, grant .. ':' .. ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ttl)
    used = used + grant
    changed = true
end
if changed then
    redis.call('SET', KEYS[2], used, 'PX', ttl)
end
local retry = 0
if used >= limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    if first[2] then
        retry = math.max(1, tonumber(first[2]) + span - now)
    end
end
return {grant, retry}
"""

# KEYS[1] the bucket (hash tokens, last).  ARGV: rate (parts/s), burst, wanted.  Returns as
# _WINDOW.  Starts full; a request larger than the whole bucket is granted when the bucket is full
# and leaves it in debt, as the in-memory TokenBucket does.
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
if now > last then
    tokens = math.min(burst, tokens + (now - last) * rate / 1000000)
    last = now
end
local slack = rate / 1000000
local grant = 0
if tokens + slack >= want then
    grant = want
elseif want > burst and tokens + slack >= burst then
    grant = want
elseif tokens + slack >= 1 then
    grant = math.floor(tokens + slack)
end
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(last))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local retry = 0
if tokens + slack < 1 then
    retry = math.max(1, math.ceil((1 - tokens) * 1000000 / rate))
end
return {grant, retry}
"""


class RedisEval(Protocol):
    """The one txredisapi command used here (a connection or a pool handler)."""

    def eval(self, script: str, keys: list[str] = ..., args: list[Any] = ...) -> Deferred[Any]:
        """Run a Lua script."""


def reserve_size(rate: float) -> int:
    """
    The parts a process keeps in reserve for a limit of ``rate`` parts per second.

    The reserve trades round trips for accuracy.  A process holds at most a
    reserve of parts granted earlier and owes at most a reserve taken on
    credit, so in any one second the cluster may pass up to two reserves per
    process above the rate, and over a longer run the same few parts in all:
    with 2 % of the rate per reserve and two processes, at most 8 % in the
    worst single second, and 0.8 % over ten seconds.  A process asks for more
    when half its reserve is gone, so a flat-out process makes about one
    round trip per ``reserve / 2`` parts.  Small rates get a reserve of one
    part: 30/s would round 2 % down to nothing, and anything bigger (say 5)
    would let two processes pass 20 parts above the rate in one second.
    """
    return max(1, min(int(rate * RESERVE_SHARE), MAX_RESERVE))


class LeasedLimiter:
    """
    One account's shared limit as this process sees it: a local reserve of
    parts leased from Redis.

    :meth:`take` never waits: it takes from the reserve, or refuses.  When the
    reserve is short and Redis has not said that the limit is used up, a
    message may pass on credit (up to one reserve), paid back from the next
    grant; without it the first message after an idle spell would be refused
    every time.  A process that owes parts refuses until the grants have paid
    them, so credit never raises the rate over a run.

    :param throttles: the throttle this limiter belongs to (the connection, the clock, the fallback state).
    :param key: the limit's Redis key.
    :param model: ``window`` or ``bucket``.
    :param rate: parts per second (> 0).
    :param burst: the bucket's size (``bucket`` only; 0 or less: ``rate``).
    :param penalty: seconds of refusal after a refusal, in this process.
    """

    __slots__ = (
        "_args",
        "_blocked_until",
        "_burst",
        "_fallback",
        "_keys",
        "_model",
        "_need",
        "_next_try",
        "_penalty",
        "_pending",
        "_rate",
        "_reserve",
        "_script",
        "_throttles",
        "_timer",
        "_tokens",
    )

    def __init__(
        self, throttles: RedisThrottles, key: str, model: str, rate: float, burst: float, penalty: float
    ) -> None:
        self._throttles = throttles
        self._model = model
        self._rate = rate
        self._burst = burst if burst > 0 else rate
        self._penalty = max(penalty, 0.0)
        self._reserve = reserve_size(rate)
        #: parts in the reserve; negative: parts owed (taken on credit)
        self._tokens = 0
        #: the largest message refused since the last pass (a refill asks for at least that)
        self._need = 0
        #: Redis said the limit is used up until then (this process's clock)
        self._next_try = -math.inf
        self._blocked_until = -math.inf
        self._pending: Deferred[Any] | None = None
        self._timer: IDelayedCall | None = None
        self._fallback: Limiter | None = None
        if model == "window":
            limit = max(1, int(rate + _SLACK))
            self._script = _WINDOW
            self._keys = [key, f"{key}:sum"]
            self._args: list[Any] = [limit, max(1, round(limit / rate * 1_000_000))]
        else:
            self._script = _BUCKET
            self._keys = [key]
            self._args = [rate, self._burst]

    @property
    def reserve(self) -> int:
        """The reserve's size in parts."""
        return self._reserve

    @property
    def tokens(self) -> int:
        """Parts in the reserve now (negative: owed)."""
        return self._tokens

    def take(self, n: int = 1) -> bool:
        """
        Take ``n`` parts from the reserve (or on credit) if it allows; never waits.

        :returns: whether the message may pass.
        """
        throttles = self._throttles
        now = throttles.clock.seconds()
        if throttles.degraded:
            self._refill(now, probe=True)
            return self._local().take(n)
        if now + _SLACK < self._blocked_until:
            return False
        tokens = self._tokens
        if tokens >= n:
            tokens -= n
            self._tokens = tokens
            self._need = 0
            if tokens <= self._reserve // 2:
                self._refill(now)
            return True
        ready = now >= self._next_try
        if ready and tokens - n >= -self._reserve:
            self._tokens = tokens - n
            self._need = 0
            self._refill(now)
            return True
        self._need = max(self._need, n)
        if ready:
            self._refill(now)
        if self._penalty > 0:
            self._blocked_until = now + self._penalty
        return False

    def _local(self) -> Limiter:
        """This process's share of the limit, while Redis does not answer."""
        if self._fallback is None:
            share = self._throttles.share
            burst = self._burst * share if self._model == "bucket" else 0.0
            self._fallback = local_limiter(self._model, self._rate * share, burst, self._penalty, self._throttles.clock)
        return self._fallback

    def _refill(self, now: float, probe: bool = False) -> None:
        """Ask Redis for parts (one round trip), unless a request is out or Redis said to wait."""
        if self._pending is not None or now < self._next_try:
            return
        want = max(self._reserve, self._need) - self._tokens
        if want <= 0 and not probe:
            return
        throttles = self._throttles
        d = throttles.redis.eval(self._script, self._keys, [*self._args, max(want, 0), throttles.grant_id()])
        self._pending = d
        self._timer = throttles.clock.callLater(throttles.timeout, self._late)
        d.addCallbacks(self._granted, self._failed)

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _granted(self, result: Any) -> None:
        self._stop_timer()
        self._pending = None
        granted, retry = int(result[0]), int(result[1])
        self._tokens += granted
        now = self._throttles.clock.seconds()
        self._next_try = now + retry / 1_000_000 if retry > 0 else -math.inf
        self._throttles.recovered()

    def _failed(self, failure: Failure) -> None:
        self._stop_timer()
        self._pending = None
        self._next_try = self._throttles.clock.seconds() + RETRY_AFTER_FAILURE
        self._throttles.degrade(failure.getErrorMessage())

    def _late(self) -> None:
        # the request stays out (the connection sends it once Redis is back, and its answer ends the
        # fallback); meanwhile this process keeps to its own share
        self._timer = None
        self._throttles.degrade(f"no answer within {self._throttles.timeout:g} s")


class RedisThrottles(Throttles):
    """
    :class:`smsc_sim.core.contracts.IThrottle` for a cluster spread over
    processes: account limits shared through Redis (:class:`LeasedLimiter`),
    the other scopes in memory as in :class:`~smsc_sim.core.throttle.Throttles`.

    :param redis: a txredisapi connection.
    :param clock: the clock of every limiter and of the timeouts.
    :param cluster: the cluster's name; the keys of two clusters never meet.
    :param owner: names this process (unique per process) in grant ids.
    :param share: this process's share of a limit while Redis does not answer (0 < share <= 1).
    :param timeout: seconds a refill may take before the process falls back to its share.
    """

    log = Logger()

    def __init__(
        self,
        redis: RedisEval,
        clock: IReactorTime,
        cluster: str,
        owner: str,
        *,
        share: float = 1.0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        super().__init__(clock)
        self.redis = redis
        self.clock = clock
        self.cluster = cluster
        self.owner = owner
        self.share = share
        self.timeout = timeout
        #: Redis does not answer: every account keeps to this process's share of its rate
        self.degraded = False
        self._stopped = False
        self._seq = 0

    def key(self, system_id: str, model: str, rate: float, burst: float) -> str:
        """The Redis key of an account's limit (the same in every process with the same settings)."""
        base = f"smsc-sim:{self.cluster}:throttle:{system_id}:{model}:{rate:g}"
        return base if model == "window" else f"{base}:{(burst if burst > 0 else rate):g}"

    def _limiter(self, key: tuple[Any, ...], model: str, rate: float, burst: float, penalty: float) -> Limiter:
        if key[0] != "account":
            return super()._limiter(key, model, rate, burst, penalty)
        model = "window" if model == "window" else "bucket"
        return LeasedLimiter(self, self.key(key[1], model, rate, burst), model, rate, burst, penalty)

    def grant_id(self) -> str:
        """A name for one grant, unique in the cluster (a window's grants are members of one set)."""
        self._seq += 1
        return f"{self.owner}:{self._seq}"

    def stop(self) -> None:
        """The process stops: the requests still out fail as the connection closes, and that is no news."""
        self._stopped = True

    def degrade(self, reason: str) -> None:
        """Redis did not answer: fall back to this process's share (said once)."""
        if not self.degraded and not self._stopped:
            self.degraded = True
            self.log.warn(
                "throttle of cluster {cluster}: the cluster store did not answer ({reason}); each account is "
                "limited to {share:.0%} of its rate in this process until it does",
                cluster=self.cluster,
                reason=reason,
                share=self.share,
            )

    def recovered(self) -> None:
        """Redis answered: the shared limits apply again (said once)."""
        if self.degraded:
            self.degraded = False
            self.log.info("throttle of cluster {cluster}: the cluster store answers again; limits are cluster-wide",
                          cluster=self.cluster)
