"""
Taking a new message record in: room in the store, the journal, and the
``message`` event.  The submit path and MO origination share it.
"""

from __future__ import annotations

from collections import Counter

from twisted.internet.interfaces import IReactorTime

from smsc_sim.core.journal import IMessageJournal, kept
from smsc_sim.core.lifecycle import STATE_NAMES, Lifecycle
from smsc_sim.core.store import MessageRecord, MessageStore, StoreFull
from smsc_sim.events import EventBus
from smsc_sim.smpp.constants import MessageState
from smsc_sim.smpp.receipt import STAT_DEFAULT_ERR


class Admission:
    """
    New records of one cluster.

    :param clock: the clock.
    :param store: where records are held.
    :param lifecycle: ends overdue records when the store is full.
    :param journal: told of every new record.
    :param events: where ``message`` events go.
    :param counters: the core's counters (``store_full``).
    """

    def __init__(
        self,
        clock: IReactorTime,
        store: MessageStore,
        lifecycle: Lifecycle,
        journal: IMessageJournal,
        events: EventBus,
        counters: Counter[str],
    ) -> None:
        self._clock = clock
        self._store = store
        self._lifecycle = lifecycle
        self._journal = kept(journal)
        self._events = events
        self._counters = counters

    def hold(self, record: MessageRecord) -> bool:
        """
        Put a new record in the store; when it is full of pending records,
        first end those past their validity (records whose response was never
        written have no timer to do it).

        :returns: whether the record is stored (``False``: ESME_RMSGQFUL).
        """
        store = self._store
        try:
            store.add(record)
        except StoreFull:
            if not self.expire_overdue():
                self._counters["store_full"] += 1
                return False
            try:
                store.add(record)
            except StoreFull:
                self._counters["store_full"] += 1
                return False
        return True

    def expire_overdue(self) -> int:
        """End EXPIRED every pending MT record past its validity; returns how many."""
        now = self._clock.seconds()
        overdue = [r for r in self._store.pending.values() if r.direction == "mt" and r.validity_time <= now]
        for record in overdue:
            self._lifecycle.finish(record, MessageState.EXPIRED, STAT_DEFAULT_ERR["EXPIRED"], "validity period reached")
        return len(overdue)

    def accepted(self, record: MessageRecord) -> None:
        """Report a new record: to the journal, in the state counts, and as a ``message`` event."""
        journal = self._journal
        if journal is not None:
            journal.accepted(record)
        changes = self._lifecycle.state_changes
        key = (record.direction, STATE_NAMES[record.state])  # a dict lookup: Enum.name is a property call
        changes[key] = changes.get(key, 0) + 1
        if self._events.wants_messages:
            self._events.publish(
                "message",
                message_id=record.message_id,
                state=record.state.name,
                err=0,
                account=record.account,
                instance=record.instance,
                direction=record.direction,
            )
