"""
The message store of one cluster: a record per accepted message part.

Bounded by ``store_max_messages``: when full, final records are evicted
oldest-final first; when only pending ones remain, a new submit gets
ESME_RMSGQFUL.  Final records older than ``store_final_ttl`` are evicted
lazily (on every add and every inspection), so the store needs no timer.

A million records are held at once by default: final records are queued
for eviction by themselves, not in (time, record) pairs.  The records
themselves are in :mod:`smsc_sim.core.record`.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from smsc_sim.core.journal import NO_JOURNAL, IMessageJournal
from smsc_sim.core.record import DeliveryEntry, MessageRecord, MOEntry, ReceiptEntry
from smsc_sim.smpp.constants import MessageState

# the records live in smsc_sim.core.record; the store still names them for its callers
__all__ = [
    "DeliveryEntry", "MOEntry", "MessageQuery", "MessageRecord", "MessageStore", "ReceiptEntry", "StoreFull", "select",
]  # fmt: skip


class StoreFull(Exception):
    """The store holds only pending records and no more fit (ESME_RMSGQFUL)."""


class MessageStore:
    """
    Records by key, bounded.

    :param max_messages: most records held.
    :param final_ttl: seconds a final record is kept.
    :param now: the clock reading function.
    :param journal: told when the store forgets every record.
    """

    def __init__(
        self,
        max_messages: int,
        final_ttl: float,
        now: Callable[[], float],
        *,
        journal: IMessageJournal = NO_JOURNAL,
    ) -> None:
        self.max_messages = max_messages
        self.final_ttl = final_ttl
        self._now = now
        self._journal = journal
        self._records: dict[str, MessageRecord] = {}
        #: records not yet final, by key (what cancel and replace scan)
        self.pending: dict[str, MessageRecord] = {}
        #: final records in the order they became final; each is evicted ``final_ttl`` after its final
        #: time then (its ``final_time``, or the time in :attr:`_final_at`)
        self._finals: deque[MessageRecord] = deque()
        #: the eviction times that are not the record's ``final_time``: a final record made final again
        #: (a forced receipt) keeps the time it first became final; one held final without a final time, the time it came
        self._final_at: dict[MessageRecord, float] = {}
        #: the record added last: a new one equal in some values takes its objects for them
        self._last: MessageRecord | None = None
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> MessageRecord | None:
        """The record of that key (a message_id), if held."""
        return self._records.get(key)

    def add(self, record: MessageRecord) -> None:
        """
        Hold a new pending record, making room if needed.

        :raises StoreFull: when the store is full of pending records.
        """
        self.sweep()
        if len(self._records) >= self.max_messages and not self._evict_one():
            raise StoreFull()
        self._records[record.key] = record
        last = self._last
        if last is not None:
            # what repeats from one message to the next (a campaign's source and text) is held once
            if record.source_addr == last.source_addr:
                record.source_addr = last.source_addr
            if record.destination_addr == last.destination_addr:
                record.destination_addr = last.destination_addr
            if record.short_message == last.short_message:
                record.short_message = last.short_message
            if record._text == last._text:
                record._text = last._text
        self._last = record
        if record.final:
            if not record.final_time:
                self._final_at[record] = self._now()
            self._finals.append(record)
        else:
            self.pending[record.key] = record

    def room(self) -> bool:
        """Whether one more record fits (evicting a final one if needed)."""
        self.sweep()
        return len(self._records) < self.max_messages or self._evict_one()

    def finalized(self, record: MessageRecord, previous: float | None = None) -> None:
        """
        Note that a record reached a final state (it becomes evictable).

        :param previous: its ``final_time`` before this change: a record final
            already is still evicted as of the time it first became final.
        """
        if self.pending.pop(record.key, None) is not None:
            if not record.final_time:
                self._final_at[record] = self._now()
            self._finals.append(record)
        elif previous is not None and self._records.get(record.key) is record:
            self._final_at.setdefault(record, previous)

    def _evict_one(self) -> bool:
        finals, final_at = self._finals, self._final_at
        while finals:
            record = finals.popleft()
            if final_at:
                final_at.pop(record, None)
            if self._records.get(record.key) is record:
                self._drop(record)
                return True
        return False

    def _drop(self, record: MessageRecord) -> None:
        """Forget a record; break its reference cycles so that reference counting frees it (frozen or not)."""
        del self._records[record.key]
        self.evicted += 1
        record.siblings = ()
        record.group = None

    def sweep(self) -> None:
        """Evict final records older than the TTL."""
        finals = self._finals
        if not finals:
            return
        final_at = self._final_at
        limit = self._now() - self.final_ttl
        while finals:
            record = finals[0]
            at = final_at.get(record) if final_at else None
            if (at if at is not None else record.final_time or 0.0) > limit:
                return
            finals.popleft()
            if at is not None:
                del final_at[record]
            if self._records.get(record.key) is record:
                self._drop(record)

    def __iter__(self) -> Iterator[MessageRecord]:
        """Every record, oldest submit first."""
        self.sweep()
        return iter(list(self._records.values()))

    def values(self) -> Iterable[MessageRecord]:
        """Every record, oldest submit first (a snapshot)."""
        return list(self)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()
        self.pending.clear()
        self._finals.clear()
        self._final_at.clear()
        self._last = None
        self._journal.cleared()


@dataclass(frozen=True)
class MessageQuery:
    """
    Which records :func:`select` returns: those matching every filter given.

    :ivar state: a state name (``DELIVERED``) or value; ``pending`` matches every non-final one.
    :ivar since: submitted at or after this time; ``until``: before it.
    :ivar text: contained in the text (or the reassembled text).
    :ivar limit: most records returned (``None``: all); ``offset``: matches skipped first.
    """

    account: str | None = None
    instance: str | None = None
    source: str | None = None
    destination: str | None = None
    state: str | MessageState | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    direction: str | None = None
    limit: int | None = 100
    offset: int = 0


def select(records: Iterable[MessageRecord], query: MessageQuery) -> list[MessageRecord]:
    """
    The records matching the query, in the order of ``records``, from its
    ``offset`` and at most ``limit`` of them.

    :raises KeyError: for an unknown state name.
    """
    stop = None if query.limit is None else query.offset + query.limit
    return list(islice(matching(records, query), query.offset, stop))


def matching(records: Iterable[MessageRecord], query: MessageQuery) -> Iterator[MessageRecord]:
    """
    Every record matching the query's filters (not its ``limit`` and
    ``offset``), in the order of ``records``, one at a time: a caller that
    counts matches or keeps one page holds no list of them all.

    :raises KeyError: for an unknown state name (at once, not at the first record).
    """
    wanted: MessageState | None = None
    pending_only = False
    state = query.state
    if isinstance(state, MessageState):
        wanted = state
    elif state is not None:
        if state.lower() == "pending":
            pending_only = True
        else:
            wanted = MessageState[state.upper()]
    return _matching(records, query, wanted=wanted, pending_only=pending_only)


def _matching(
    records: Iterable[MessageRecord], query: MessageQuery, *, wanted: MessageState | None, pending_only: bool
) -> Iterator[MessageRecord]:
    account, instance, source, destination = query.account, query.instance, query.source, query.destination
    since, until, text, direction = query.since, query.until, query.text, query.direction
    for record in records:
        if (
            (account is not None and record.account != account)
            or (instance is not None and record.instance != instance)
            or (source is not None and record.source_addr != source)
            or (destination is not None and record.destination_addr != destination)
            or (wanted is not None and record.state is not wanted)
            or (pending_only and record.final)
            or (since is not None and record.submit_time < since)
            or (until is not None and record.submit_time >= until)
            or (direction is not None and record.direction != direction)
        ):
            continue
        if text is not None:
            whole = record.group.text if record.group is not None else None
            if text not in (record.text or "") and text not in (whole or ""):
                continue
        yield record
