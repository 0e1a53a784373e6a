"""
A timing wheel on an injected clock: many due actions, few clock calls.

Receipts are the bulk of the core's timed work: at tens of thousands of
submits per second, one ``callLater`` per receipt would flood the reactor's
timed-call heap.  Actions are instead put in buckets of ``resolution``
seconds, and each bucket has one clock call.  An action runs at most
``resolution`` seconds after its due time, never before it; actions of one
bucket run in the order they were scheduled.

Actions cannot be cancelled one by one: the caller checks, when its action
runs, whether it still applies (a record's generation, say), which is
cheaper than keeping handles.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

Action = Callable[..., None]


class Timeline:
    """
    Buckets of due actions on a clock.

    :param clock: the clock every bucket is scheduled on.
    :param resolution: the bucket width in seconds (0.1 by default).
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, resolution: float = 0.1) -> None:
        self._clock = clock
        self._per_second = 1.0 / resolution
        self._buckets: dict[int, list[tuple[Action, tuple[Any, ...]]]] = {}
        self._calls: dict[int, IDelayedCall] = {}

    def at(self, when: float, action: Action, *args: Any) -> None:
        """
        Run ``action(*args)`` once the clock reaches ``when`` (or the end of its bucket).

        A time in the past runs on the next clock turn, never synchronously.
        """
        # the small tolerance keeps float noise (t + 1.0 written as t + 1.0000000001)
        # from pushing an action into the next bucket
        tick = math.ceil(when * self._per_second - 1e-6)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = []
            delay = max(0.0, tick / self._per_second - self._clock.seconds())
            self._calls[tick] = self._clock.callLater(delay, self._fire, tick)
        bucket.append((action, args))

    def _fire(self, tick: int) -> None:
        self._calls.pop(tick, None)
        bucket = self._buckets.pop(tick, None)
        if not bucket:
            return
        for action, args in bucket:
            try:
                action(*args)
            except Exception:
                # one broken action must not lose the rest of its bucket
                self.log.failure("timeline action {action!r} failed", action=action)

    def __len__(self) -> int:
        """Actions waiting."""
        return sum(len(bucket) for bucket in self._buckets.values())

    def clear(self) -> None:
        """Drop every waiting action and cancel its clock call."""
        for call in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()
        self._buckets.clear()
