"""
Token buckets: the throughput limit of an account (or a bind, or an instance).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second; each message part takes one.  Refill is computed from the injected
clock on each call, so a bucket costs nothing between messages and needs no
timer.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime


class TokenBucket:
    """
    A token bucket on an injected clock.

    :param rate: tokens added per second; ``0`` means unlimited (every
        :meth:`take` succeeds).
    :param burst: most tokens held at once; ``0`` means ``rate`` (one second
        of burst).  The bucket starts full.
    :param clock: the clock refills are measured on.
    :param penalty: after a refused :meth:`take`, refuse everything for this
        many seconds (``0``: no penalty).
    """

    __slots__ = ("rate", "burst", "penalty", "_clock", "_tokens", "_stamp", "_blocked_until")

    def __init__(self, rate: float, burst: float, clock: IReactorTime, penalty: float = 0.0) -> None:
        self.rate = float(rate)
        self.burst = float(burst) if burst > 0 else float(rate)
        self.penalty = float(penalty)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock.seconds()
        self._blocked_until = 0.0

    @property
    def unlimited(self) -> bool:
        """Whether the bucket never refuses."""
        return self.rate <= 0

    def tokens(self) -> float:
        """The tokens available now (refilled up to the burst)."""
        self._refill(self._clock.seconds())
        return self._tokens

    def _refill(self, now: float) -> None:
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._stamp = now

    def take(self, n: float = 1) -> bool:
        """
        Take ``n`` tokens if they are all there.

        :param n: tokens wanted (message parts).
        :returns: whether the request may pass; a refusal takes nothing and
            starts the penalty, if any.
        """
        if self.rate <= 0:
            return True
        now = self._clock.seconds()
        if now < self._blocked_until:
            return False
        self._refill(now)
        # a tiny tolerance so that float refills of exactly n tokens pass
        if self._tokens + 1e-9 >= n:
            self._tokens -= n
            return True
        if self.penalty > 0:
            self._blocked_until = now + self.penalty
        return False
