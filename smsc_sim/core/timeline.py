"""
A timing wheel on an injected clock: many due actions, few clock calls.

Receipts are the bulk of the core's timed work: at tens of thousands of
submits per second, one ``callLater`` per receipt would flood the reactor's
timed-call heap.  Actions are instead put in buckets of ``resolution``
seconds, and each bucket has one clock call.  An action runs at most
``resolution`` seconds after its due time, never before it; actions of one
bucket run in the order they were scheduled.

Due actions run in bounded batches: at most ``batch`` per reactor turn, the
rest on the next turn (``callLater(0)``), so that a bucket of thousands of
receipts does not hold up the submits arriving meanwhile; the reactor reads
its sockets between two batches.  Order is kept across batches and buckets.

Actions cannot be cancelled one by one: the caller checks, when its action
runs, whether it still applies (a record's generation, say), which is
cheaper than keeping handles.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

Action = Callable[..., None]


class Timeline:
    """
    Buckets of due actions on a clock.

    :param clock: the clock every bucket is scheduled on.
    :param resolution: the bucket width in seconds (0.1 by default).
    :param batch: most actions run in one reactor turn (the rest go on the next).
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, resolution: float = 0.1, batch: int = 200) -> None:
        self._clock = clock
        self._per_second = 1.0 / resolution
        self.batch = batch
        self._buckets: dict[int, list[tuple[Action, tuple[Any, ...]]]] = {}
        self._calls: dict[int, IDelayedCall] = {}
        # due actions not run yet, oldest first, and the clock call for the next batch
        self._due: deque[tuple[Action, tuple[Any, ...]]] = deque()
        self._next_batch: IDelayedCall | None = None

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
        self._due.extend(bucket)
        if self._next_batch is None:
            self._run_batch()

    def _run_batch(self) -> None:
        """Run up to :attr:`batch` due actions; leave the rest to the next reactor turn."""
        self._next_batch = None
        due = self._due
        popleft = due.popleft
        left = self.batch
        while due and left > 0:  # an action may clear the timeline: check ``due`` each time
            left -= 1
            action, args = popleft()
            try:
                action(*args)
            except Exception:
                # one broken action must not lose the rest of its bucket
                self.log.failure("timeline action {action!r} failed", action=action)
        if due and self._next_batch is None:
            self._next_batch = self._clock.callLater(0, self._run_batch)

    def __len__(self) -> int:
        """Actions waiting."""
        return len(self._due) + sum(len(bucket) for bucket in self._buckets.values())

    def clear(self) -> None:
        """Drop every waiting action and cancel its clock call."""
        for call in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()
        self._buckets.clear()
        self._due.clear()
        if self._next_batch is not None:
            if self._next_batch.active():
                self._next_batch.cancel()
            self._next_batch = None
