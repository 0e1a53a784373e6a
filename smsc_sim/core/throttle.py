"""
Throughput limits of an account (or a bind, or an instance): two models.

``window`` (:class:`SlidingWindow`): at most N parts in any one-second
window, measured from idle and flat out; what a client counting per second
sees of a "30 SMS per second" account.  ``bucket`` (:class:`TokenBucket`):
a token bucket, which after an idle second lets a full bucket through at
once and then refills, so a flat-out client sees up to twice the rate in the
first second.

The core's :class:`Throttles` keep one limiter per scope key (account, bind
or instance, as the scenario's throttle says) and take the parts of each
submit from it; a refusal becomes the throttle status (ESME_RTHROTTLED).
Time comes from the injected clock only, so a test can count exactly how
many messages pass in a burst and per second.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import IScenario
from smsc_sim.core.binds import BindEntry
from smsc_sim.smpp.constants import CommandStatus

# Clock values near 1.7e9 carry about 2.4e-7 s of float rounding, so a token or
# a penalty end that is due "exactly now" may look a hair late; a microsecond
# of tolerance keeps exact counts exact.
_SLACK = 1e-6


class TokenBucket:
    """
    ``rate`` tokens per second, at most ``burst`` saved; starts full.

    A message of ``n`` parts takes ``n`` tokens.  One larger than the whole
    bucket passes when the bucket is full and leaves it in debt, so it is
    throttled, never refused forever.  After a refusal, every ``take``
    within ``penalty`` seconds is refused too (refusals during the penalty do
    not extend it; tokens keep accruing).

    :param rate: tokens per second; 0 or less means unlimited.
    :param burst: bucket size; 0 or less means ``rate`` (one second's worth).
    :param clock: where time comes from.
    :param penalty: seconds of refusal after a refusal.
    """

    def __init__(self, rate: float, burst: float, clock: IReactorTime, penalty: float = 0.0) -> None:
        self._clock = clock
        self._rate = 0.0
        self._burst = 0.0
        self._penalty = 0.0
        self._tokens = 0.0
        self._last = clock.seconds()
        self._blocked_until = -math.inf
        self.reconfigure(rate, burst, penalty)
        self._tokens = self._burst

    @property
    def rate(self) -> float:
        """Tokens per second (0: unlimited)."""
        return self._rate

    @property
    def burst(self) -> float:
        """The bucket size."""
        return self._burst

    @property
    def penalty(self) -> float:
        """Seconds of refusal after a refusal."""
        return self._penalty

    @property
    def unlimited(self) -> bool:
        """Whether every take passes."""
        return self._rate <= 0

    def reconfigure(self, rate: float, burst: float, penalty: float = 0.0) -> None:
        """
        Change the settings, keeping the saved tokens (capped at the new burst).

        :param rate: tokens per second; 0 or less means unlimited.
        :param burst: bucket size; 0 or less means ``rate``.
        :param penalty: seconds of refusal after a refusal.
        """
        self._refill()
        self._rate = max(rate, 0.0)
        self._burst = burst if burst > 0 else self._rate
        self._penalty = max(penalty, 0.0)
        self._tokens = min(self._tokens, self._burst)

    def _refill(self) -> float:
        now = self._clock.seconds()
        if now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
        return now

    def take(self, n: int = 1) -> bool:
        """
        Take ``n`` tokens if there are enough.

        :param n: tokens wanted (the message's parts).
        :returns: whether the message may pass.
        """
        if self._rate <= 0:
            return True
        now = self._refill()
        if now + _SLACK < self._blocked_until:
            return False
        if self._tokens + _SLACK * self._rate >= min(n, self._burst):
            self._tokens -= n
            return True
        if self._penalty > 0:
            self._blocked_until = now + self._penalty
        return False

    def available(self) -> float:
        """Tokens saved now (negative while in debt)."""
        if self._rate <= 0:
            return math.inf
        self._refill()
        return self._tokens

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``take(n)`` would pass (0 if it would now)."""
        if self._rate <= 0:
            return 0.0
        now = self._refill()
        wait = max(self._blocked_until - now, 0.0)
        tokens_then = min(self._burst, self._tokens + wait * self._rate)
        missing = min(n, self._burst) - tokens_then
        return wait + max(missing, 0.0) / self._rate


class Limiter(Protocol):
    """What :class:`Throttles` needs of a limiter (a bucket or a window)."""

    def take(self, n: int = 1) -> bool:
        """Take ``n`` parts if the limit allows; whether the message may pass."""


#: the throttle models an account or a scenario throttle may name
THROTTLE_MODELS = ("window", "bucket")


class SlidingWindow:
    """
    At most ``limit`` parts in any window of ``span`` seconds.

    For a rate of one part per second or more, ``limit`` is the rate rounded
    down and ``span`` one second (30/s: at most 30 in any second, however the
    second is placed); below that, one part per ``1 / rate`` seconds.  A part
    taken at ``t`` stops counting at exactly ``t + span``.  A message of more
    parts than the limit passes only when the window is empty, so it is
    throttled, never refused forever.  ``penalty`` works as the bucket's.

    :param rate: parts per second; 0 or less means unlimited.
    :param clock: where time comes from.
    :param penalty: seconds of refusal after a refusal.
    """

    __slots__ = ("_blocked_until", "_clock", "_count", "_limit", "_merge", "_penalty", "_span", "_taken")

    def __init__(self, rate: float, clock: IReactorTime, penalty: float = 0.0) -> None:
        self._clock = clock
        if rate <= 0:
            self._limit, self._span, self._merge = 0, 0.0, 0.0
        else:
            self._limit = max(1, int(rate + _SLACK))
            self._span = self._limit / rate
        self._merge = self._span / 10_000
        self._penalty = max(penalty, 0.0)
        # (time taken, parts) of the parts still inside the window, oldest first
        self._taken: deque[tuple[float, int]] = deque()
        self._count = 0
        self._blocked_until = -math.inf

    @property
    def limit(self) -> int:
        """Parts allowed per window (0: unlimited)."""
        return self._limit

    @property
    def span(self) -> float:
        """The window's length in seconds."""
        return self._span

    def take(self, n: int = 1) -> bool:
        """
        Take ``n`` parts if the window has room for them.

        :param n: parts wanted (the message's parts).
        :returns: whether the message may pass.
        """
        limit = self._limit
        if not limit:
            return True
        now = self._clock.seconds()
        if now + _SLACK < self._blocked_until:
            return False
        taken = self._taken
        edge = now - self._span + _SLACK
        while taken and taken[0][0] <= edge:
            self._count -= taken.popleft()[1]
        if self._count + n <= limit or not taken:
            if taken and now - taken[-1][0] < self._merge:
                # parts taken within a ten-thousandth of the window count as taken at the latest of
                # them: they stop counting a hair later (never earlier), and the window holds at
                # most 10 000 entries however high the rate
                taken[-1] = (now, taken[-1][1] + n)
            else:
                taken.append((now, n))
            self._count += n
            return True
        if self._penalty > 0:
            self._blocked_until = now + self._penalty
        return False

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``take(n)`` would pass (0 if it would now)."""
        if not self._limit:
            return 0.0
        now = self._clock.seconds()
        wait = max(self._blocked_until - now, 0.0)
        count = self._count
        for at, parts in self._taken:
            if count + n <= self._limit:
                break
            wait = max(wait, at + self._span - now)
            count -= parts
        return wait


def local_limiter(model: str, rate: float, burst: float, penalty: float, clock: IReactorTime) -> Limiter:
    """A limiter of this process: a :class:`SlidingWindow` for ``window``, else a :class:`TokenBucket`."""
    if model == "window":
        return SlidingWindow(rate, clock, penalty)
    return TokenBucket(rate, burst, clock, penalty)


class Throttles:
    """
    The limiters of one core, by scope key: the scenario's throttle when it
    has one, else each account's configured throughput, each in its model
    (``window`` or ``bucket``).

    It decides; the core counts the refusals.  A cluster spread over
    processes replaces the account-scope limiters through :meth:`_limiter`
    (``smsc_sim.cluster.redis.throttle``).

    :param clock: the clock of every limiter.
    :param buckets: the limiters by scope key (emptied by :meth:`clear`).
    """

    def __init__(self, clock: IReactorTime, buckets: dict[tuple[Any, ...], Limiter] | None = None) -> None:
        self._clock = clock
        self._buckets: dict[tuple[Any, ...], Limiter] = buckets if buckets is not None else {}

    def _limiter(self, key: tuple[Any, ...], model: str, rate: float, burst: float, penalty: float) -> Limiter:
        """A new limiter for scope ``key`` (``("account", system_id, ...)``, ``("bind", ...)``, ``("instance", ...)``)."""
        return local_limiter(model, rate, burst, penalty, self._clock)

    def clear(self) -> None:
        """Start every limiter afresh (a new scenario, a reset)."""
        self._buckets.clear()

    def take(self, entry: BindEntry, parts: int, scenario: IScenario) -> int:
        """
        Take ``parts`` from the limiter that applies.

        :param scenario: the scenario deciding now (its throttle, or its limits).
        :returns: 0, or the status to refuse with.
        """
        buckets = self._buckets
        settings = scenario.throttle()
        account = entry.account
        if settings is None:
            rate = self.throughput(account, scenario)
            if rate <= 0:
                return 0
            key: tuple[Any, ...] = ("account", account.system_id)
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = self._limiter(key, account.throttle_model, rate, account.burst, 0.0)
            status: int = CommandStatus.ESME_RTHROTTLED
        else:
            if settings.rate <= 0:
                return 0
            if settings.scope == "bind":
                key = ("bind", entry.session_id, settings)
            elif settings.scope == "instance":
                key = ("instance", account.system_id, entry.instance, settings)
            else:
                key = ("account", account.system_id, settings)
            bucket = buckets.get(key)
            if bucket is None:
                model = account.throttle_model if settings.model == "account" else settings.model
                bucket = buckets[key] = self._limiter(key, model, settings.rate, settings.burst, settings.penalty)
            status = settings.status
        if bucket.take(parts):
            return 0
        return int(status)

    def throughput(self, account: AccountSettings, scenario: IScenario) -> float:
        """The account's messages per second, unless the scenario's ``limits`` override it."""
        limits = scenario.limits
        if limits is not None and limits.throughput is not None:
            return float(limits.throughput)
        return account.throughput
