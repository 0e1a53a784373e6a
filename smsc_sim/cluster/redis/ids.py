"""
Message numbers unique across the processes of a cluster: blocks of one
Redis counter, taken ahead of need.

The counter is ``smsc-sim:{cluster}:ids``.  A process takes a block of
``block`` numbers with one ``INCRBY`` (hi/lo: the reply is the block's last
number) and hands them out from memory, so a submit never waits for Redis.
When fewer than ``low`` numbers are left it asks for the next block, in the
background.  A counter Redis does not have yet starts, with ``SET NX``, from
the same time-based base as the process allocator's
(:mod:`smsc_sim.core.ids`): numbers keep the provider's form (``0B`` in the
top octet), and a Redis restarted empty does not hand out the numbers of an
earlier second again.

When no number is left (Redis away for longer than a block lasts),
:meth:`RedisIds.next` raises :class:`~smsc_sim.core.ids.NoIdAvailable`
and the submit is refused with ESME_RSYSERR; one log line says so, and one
more when numbers come back.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.core.ids import NoIdAvailable, counter_base

__all__ = ["DEFAULT_BLOCK", "RedisIds"]

#: numbers taken per INCRBY: half a second of 20,000 submits a second
DEFAULT_BLOCK = 10_000


class _Commands(Protocol):
    def set(
        self, key: str, value: Any, expire: Any = ..., pexpire: Any = ..., only_if_not_exists: bool = ...
    ) -> Deferred[Any]:
        """SET."""

    def incrby(self, key: str, amount: int) -> Deferred[Any]:
        """INCRBY."""


class RedisIds:
    """
    :class:`~smsc_sim.core.ids.IMessageNumbers` from the cluster's counter in Redis.

    :param redis: a txredisapi connection.
    :param clock: the clock (bounds the wait for a block).
    :param cluster: the cluster's name.
    :param block: numbers per block.
    :param low: ask for the next block when fewer numbers than this are left
        (half a block by default).
    :param timeout: seconds a block request waits before it counts as failed.
    """

    log = Logger()

    def __init__(
        self,
        redis: _Commands,
        clock: IReactorTime,
        cluster: str,
        *,
        block: int = DEFAULT_BLOCK,
        low: int | None = None,
        timeout: float = 2.0,
    ) -> None:
        if block < 1:
            raise ValueError("block must be >= 1")
        self.key = f"smsc-sim:{cluster}:ids"
        self._redis = redis
        self._clock = clock
        self._block = block
        self._low = low if low is not None else block // 2
        self._timeout = timeout
        # the current block: next number and last number (next > last: used up)
        self._next = 1
        self._last = 0
        #: blocks taken and not yet begun, as (first, last)
        self._spare: deque[tuple[int, int]] = deque()
        self._left = 0
        self._asking = False
        self._dry = False
        #: blocks taken so far (for tests and the bench)
        self.blocks = 0

    def start(self, now: float) -> None:
        """Take the first block now, before the first submit needs it."""
        if self._left < self._low:
            self._ask(now)

    def next(self, now: float) -> int:
        """The next number; :class:`NoIdAvailable` when none is left (Redis away)."""
        number = self._next
        if number > self._last:
            if not self._spare:
                self._ask(now)
                if not self._dry:
                    self._dry = True
                    self.log.warn(
                        "message ids: none left from the cluster store ({key}); submits refused with ESME_RSYSERR",
                        key=self.key,
                    )
                raise NoIdAvailable(self.key)
            number, self._last = self._spare.popleft()
        self._next = number + 1
        self._left -= 1
        if self._left < self._low and not self._asking:
            self._ask(now)
        return number

    def advance_past(self, number: int, now: float) -> None:
        """
        Nothing to do: every number of the cluster comes from its one counter,
        which only grows (a restored message's number is below it).
        """

    def _ask(self, now: float) -> None:
        if self._asking:
            return
        self._asking = True
        # sent back to back on one connection: one round trip; SET NX only starts a missing counter
        self._redis.set(self.key, counter_base(now), only_if_not_exists=True).addErrback(lambda _: None)
        d = self._redis.incrby(self.key, self._block)
        d.addTimeout(self._timeout, self._clock)
        d.addCallbacks(self._taken, self._failed)

    def _taken(self, last: Any) -> None:
        self._asking = False
        last = int(last)
        self._spare.append((last - self._block + 1, last))
        self._left += self._block
        self.blocks += 1
        if self._dry:
            self._dry = False
            self.log.info("message ids: the cluster store answers again ({key})", key=self.key)

    def _failed(self, failure: Failure) -> None:
        self._asking = False
        if not self._dry and self._left <= 0:
            self._dry = True
            self.log.warn(
                "message ids: the cluster store did not answer ({error}); submits refused with ESME_RSYSERR",
                error=failure.getErrorMessage() or failure.type.__name__,
            )
