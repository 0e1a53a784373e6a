"""
The garbage-collector policy of the twistd form: freeze what survived, so
full collections skip the message store.

Process-wide, so only the twistd form (``tap.makeService``, through
:meth:`smsc_sim.simulator.Simulator.freeze_gc`) switches it on.
"""

from __future__ import annotations

import gc
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

__all__ = ["GCFreezer"]


class GCFreezer:
    """
    Move what survived into the GC's permanent generation while the store grows.

    Every accepted message stays in the store (up to ``store_max_messages``
    for ``store_final_ttl``), and each full (generation 2) collection of the
    cyclic garbage collector walks every record: pauses of 0.3 to 0.5 s under
    load, which were the p99 and max latencies.  ``gc.freeze()`` moves every
    tracked object into the permanent generation, which collections skip; it
    splices lists and costs microseconds whatever the heap size.

    Records still die as usual when the store drops them (reference
    counting); only garbage in a reference cycle that was alive at a freeze
    (a concatenated message's parts and their group, say) is not reclaimed
    while frozen.  So each time the store has dropped as many records as it
    holds (it turned over), the freezer counts what is frozen, and when that
    has doubled since the last count at a turnover, it thaws everything and
    runs one full collection, then freezes again.  Traffic without cycles
    never pays that pause; traffic with them pays it about once per
    doubling, and frozen garbage stays bounded by the live data.

    :param clock: the clock of the periodic check.
    :param records: ``(held, evicted)``: records in the stores now, and
        dropped since the last reset.
    :param interval: seconds between checks.
    :param min_growth: freeze only when at least this many records arrived
        since the last freeze (an idle simulator never freezes).
    :param collector: the :mod:`gc` module (a fake in tests).
    """

    def __init__(
        self,
        clock: IReactorTime,
        records: Callable[[], tuple[int, int]],
        interval: float = 0.5,
        min_growth: int = 500,
        collector: Any = gc,
    ) -> None:
        self._records = records
        self._gc = collector
        self.interval = interval
        self.min_growth = min_growth
        self._loop = LoopingCall(self.check)
        self._loop.clock = clock
        held, evicted = records()
        self._seen = held + evicted
        self._evicted_at_turnover = evicted
        #: objects frozen at the last turnover (None: no turnover yet)
        self._frozen_at_turnover: int | None = None
        self.freezes = 0
        self.thaws = 0

    def start(self) -> None:
        """Check every ``interval`` seconds."""
        if not self._loop.running:
            self._loop.start(self.interval, now=False)

    def stop(self) -> None:
        """Stop checking (what is frozen stays frozen)."""
        if self._loop.running:
            self._loop.stop()

    def check(self) -> None:
        """Freeze when enough records arrived; at a turnover of the store, thaw and collect if frozen garbage grew."""
        held, evicted = self._records()
        seen = held + evicted
        if seen < self._seen:  # a reset: count afresh
            self._seen, self._evicted_at_turnover = seen, evicted
            return
        if seen - self._seen < self.min_growth:
            return
        self._seen = seen
        if evicted - self._evicted_at_turnover >= max(held, self.min_growth):
            self._turnover(evicted)
        self._gc.freeze()
        self.freezes += 1

    def _turnover(self, evicted: int) -> None:
        """The store turned over: thaw and collect when what is frozen doubled since the last turnover."""
        self._evicted_at_turnover = evicted
        frozen = self._gc.get_freeze_count()  # walks the frozen list: milliseconds per million objects
        if self._frozen_at_turnover is not None and frozen > 2 * self._frozen_at_turnover:
            self.thaws += 1
            self._gc.unfreeze()
            self._gc.collect()
            self._gc.freeze()
            frozen = self._gc.get_freeze_count()
        self._frozen_at_turnover = frozen
