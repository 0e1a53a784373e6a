"""
Long-poll waits: fire when a condition on the simulator's state holds, or
when a timeout passes.

A wait never polls.  It checks its condition once when it starts, then
subscribes to the :class:`~smsc_sim.events.EventBus` and checks again after
events of the kinds that can change the answer.  Checks are coalesced: a
burst of events in one reactor turn costs one check on the next turn
(``callLater(0)``), so a wait on "1000 messages delivered" does not re-run
its query a thousand times.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from smsc_sim.contracts import Event
from smsc_sim.events import EventBus

T = TypeVar("T")

#: a wait longer than this is cut to it, so a forgotten client cannot hold a request for ever
MAX_WAIT = 3600.0


class TooManyWaits(Exception):
    """More waits are open at once than the simulator allows."""


class _Wait(Generic[T]):
    """One open wait (see :meth:`Waits.until`)."""

    def __init__(
        self,
        owner: Waits,
        check: Callable[[], T | None],
        kinds: frozenset[str],
        timeout: float,
    ) -> None:
        self.owner = owner
        self.check = check
        self.kinds = kinds
        self.result: Deferred[T | None] = Deferred(self._cancelled)
        self._pending: IDelayedCall | None = None
        self._unsubscribe = owner.events.subscribe(self._event)
        self._timer = owner.clock.callLater(min(timeout, MAX_WAIT), self._timed_out)

    def _event(self, event: Event) -> None:
        if event.kind in self.kinds and self._pending is None:
            self._pending = self.owner.clock.callLater(0, self._recheck)

    def _recheck(self) -> None:
        self._pending = None
        value = self.check()
        if value is not None:
            self._finish(value)

    def _timed_out(self) -> None:
        self._timer = None  # type: ignore[assignment]
        # one last look, so an event in the same turn as the deadline still counts
        self._finish(self.check())

    def _finish(self, value: T | None) -> None:
        self._cleanup()
        self.result.callback(value)

    def _cancelled(self, _: Deferred[T | None]) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        self._unsubscribe()
        self.owner.open.discard(self)
        for call in (self._pending, self._timer):
            if call is not None and call.active():
                call.cancel()
        self._pending = None
        self._timer = None  # type: ignore[assignment]


class Waits:
    """
    Every open wait of one simulator.

    :param events: the simulator's bus.
    :param clock: for timeouts and coalescing.
    :param limit: most waits open at once (each holds an HTTP request).
    """

    def __init__(self, events: EventBus, clock: IReactorTime, limit: int = 1000) -> None:
        self.events = events
        self.clock = clock
        self.limit = limit
        self.open: set[_Wait[object]] = set()

    def until(self, check: Callable[[], T | None], kinds: frozenset[str], timeout: float) -> Deferred[T | None]:
        """
        Wait until ``check()`` returns something other than None.

        :param check: reads the simulator's state; called now, after events
            of ``kinds`` (at most once a reactor turn) and at the deadline.
        :param kinds: the event kinds that may change the answer.
        :param timeout: seconds to wait at most (capped at :data:`MAX_WAIT`).
        :returns: fires with check's value, or with None at the timeout;
            cancelling it ends the wait.
        :raises TooManyWaits: when :attr:`limit` waits are already open.
        """
        value = check()
        if value is not None:
            done: Deferred[T | None] = Deferred()
            done.callback(value)
            return done
        if len(self.open) >= self.limit:
            raise TooManyWaits(f"{self.limit} waits are already open")
        wait = _Wait(self, check, kinds, max(0.0, timeout))
        self.open.add(wait)  # type: ignore[arg-type]
        return wait.result
