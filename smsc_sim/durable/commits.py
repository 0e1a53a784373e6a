"""
How the SQLite journal commits (:class:`~smsc_sim.durable.sqlite.SQLiteJournal`):
the batch of the next clock turn that acknowledgements wait for, the
write-behind batch of everything else, deliveries held back until they are
old enough to be worth writing, and what a failed commit does.

:class:`JournalCommits` is a part of :class:`~smsc_sim.durable.sqlite.SQLiteJournal`.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import ISession
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.store import MessageRecord
from smsc_sim.durable import rows

__all__ = ["PROGRESS", "STARTED", "WHOLE", "JournalCommits", "mark"]

#: how much of a record a change rewrites (a record's pending level is the highest of its changes)
STARTED, PROGRESS, WHOLE = 0, 1, 2


class JournalCommits:
    """Commit the journal's changes in batches, one log row each."""

    # the journal's state these methods share (set by SQLiteJournal.__init__)
    log: Logger
    path: str
    interval: float
    delivery_hold: float
    chunk: int
    closed: bool
    failing: bool
    commits: int
    snapshots: int
    _clock: IReactorTime
    _db: sqlite3.Connection
    _accepted: dict[MessageRecord, str]
    _dirty: dict[MessageRecord, tuple[str, int]]
    _tracked: dict[Delivery, tuple[int, str, str, int]]
    _new: dict[int, tuple[Delivery, MessageRecord | None]]
    _owed: dict[int, tuple[Delivery, MessageRecord | None]]
    _polled: float
    _young: dict[MessageRecord, int]
    _waiting: dict[MessageRecord, tuple[str, int]]
    _wipe: list[str]
    _holding: list[ISession]
    _fresh: list[MessageRecord]
    _call: IDelayedCall | None
    _lazy: IDelayedCall | None
    _generation: int
    _since: int
    _pass: list[tuple[str, MessageRecord]] | None
    _pass_generation: int
    _pass_since: int
    _pass_parts: int
    _pass_chunked: float
    _entries: int
    _last_seq: int

    if TYPE_CHECKING:

        def _settle(self, record: MessageRecord) -> None: ...

        def _compaction_due(self) -> bool: ...

        def _start_pass(self) -> None: ...

        def _next_parts(self, now: float) -> tuple[list[str], bool]: ...

    def _behind(self, delay: float | None = None) -> None:
        """Schedule the write-behind commit."""
        if not self.closed:
            self._lazy = self._clock.callLater(self.interval if delay is None else delay, self._flush_lazy)

    def pending_writes(self) -> int:
        """Changes waiting for a commit."""
        return len(self._accepted) + len(self._dirty) + len(self._waiting) + len(self._new) + len(self._wipe)

    def _flush_urgent(self) -> None:
        self._call = None
        self._flush(behind=False)

    def _flush_lazy(self) -> None:
        self._lazy = None
        self._flush(behind=True)

    def flush(self) -> None:
        """Commit everything that waits now, young deliveries included (closing, tests)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._flush(behind=True, everything=True)

    def _flush(self, behind: bool, everything: bool = False) -> None:
        """
        Commit in one transaction the new records (and wipes), and with
        ``behind`` the write-behind changes and a snapshot chunk too.  A
        failure keeps everything for a retry a second later.
        """
        if self.closed:
            return
        self._fresh.clear()
        holding, self._holding = self._holding, []
        accepted, wipe = self._accepted, self._wipe
        self._accepted, self._wipe = {}, []
        dirty: dict[MessageRecord, tuple[str, int]] = {}
        if behind:
            dirty, self._dirty = self._dirty, {}
        settled: tuple[list[int], list[int], list[int]] = ([], [], [])
        try:
            entries: list[list[Any]] = [["X", cluster] for cluster in wipe]
            for record, cluster in accepted.items():
                entries.append(rows.whole(cluster, record))
            if behind:
                settled = self._behind_entries(entries, dirty, everything)
            if entries or (behind and (self._pass is not None or self._compaction_due())):
                self._commit(entries, behind)
        except (sqlite3.Error, ValueError) as error:
            # keep it all (later changes win) and try again; what waited for it must not be acknowledged
            for record, cluster in accepted.items():
                self._accepted.setdefault(record, cluster)
            for record, (cluster, level) in dirty.items():
                later = self._dirty.get(record)
                self._dirty[record] = (cluster, level if later is None else max(level, later[1]))
            self._wipe = wipe + self._wipe
            if not self.failing:
                self.log.error(
                    "store {path}: commit failed ({error}); submits refused until one works", path=self.path, error=error
                )
            self.failing = True
            for session in holding:
                session.abort()
            if self._lazy is not None and self._lazy.active():
                self._lazy.cancel()
            self._behind(1.0)
            return
        self._settled(*settled)
        if self.failing:
            self.log.info("store {path}: commits work again", path=self.path)
        self.failing = False
        if self._lazy is None:
            if self._dirty or self._new or self._pass is not None or self._compaction_due():
                self._behind()  # held back deliveries; a snapshot pass starts or goes on
            elif self._owed:
                self._behind(1.0)  # to see when the router is done with them

    def _behind_entries(
        self, entries: list[list[Any]], dirty: dict[MessageRecord, tuple[str, int]], everything: bool
    ) -> tuple[list[int], list[int], list[int]]:
        """
        Add the write-behind entries; the ids of the deliveries written now,
        of those done before they were written, of owed ones now done.

        A delivery younger than ``delivery_hold`` is not written yet, nor is
        any change of its record (the state that made it must never be
        written without it): most are answered by then and never reach the
        file.  A kill meanwhile leaves the record as it was before, and the
        restored plan sends that receipt again.
        """
        now = self._clock.seconds()
        cut = now - self.delivery_hold
        tracked = self._tracked
        written: list[int] = []
        dropped: list[int] = []
        released: dict[MessageRecord, int] = {}
        for row, (delivery, owner) in self._new.items():
            if delivery.done:
                dropped.append(row)
            elif everything or delivery.created <= cut:
                written.append(row)
                entries.append(rows.delivery(row, tracked[delivery], delivery))
            else:
                continue
            if owner is not None:
                released[owner] = released.get(owner, 0) + 1
        finished: list[int] = []
        if everything or now - self._polled >= 1.0:
            self._polled = now
            for row, (delivery, owner) in self._owed.items():
                if delivery.done:
                    finished.append(row)
                    entries.append(["d", row])
                    if owner is not None and owner not in self._young:
                        mark(dirty, owner, tracked[delivery][1], PROGRESS)  # its delivery log changed
        # records whose last waiting delivery is written or done now are written with it
        waiting = self._waiting
        young = self._young
        freed = list(waiting) if everything else [r for r, n in released.items() if young.get(r, 0) <= n]
        for record in freed:
            marked = waiting.pop(record, None)
            if marked is not None:
                mark(dirty, record, *marked)
        for record, (cluster, level) in dirty.items():
            if level == WHOLE:
                entries.append(rows.whole(cluster, record))
            elif level == PROGRESS:
                entries.append(["P", cluster, record.key, rows.progress(record), rows.base(record)])
            else:
                entries.append(["S", cluster, record.key, rows.base(record)])
        return written, dropped, finished

    def _settled(self, written: list[int], dropped: list[int], finished: list[int]) -> None:
        """After the commit: deliveries written are owed, done ones forgotten, their records settled."""
        new, owed, tracked = self._new, self._owed, self._tracked
        for row in written:
            item = new.pop(row)
            owed[row] = item
            if item[1] is not None:
                self._settle(item[1])
        for row in dropped:
            delivery, owner = new.pop(row)
            tracked.pop(delivery, None)
            if owner is not None:
                self._settle(owner)
        for row in finished:
            delivery, _ = owed.pop(row)
            tracked.pop(delivery, None)

    def _commit(self, entries: list[list[Any]], chunk: bool) -> None:
        db = self._db
        now = self._clock.seconds()
        parts: list[str] = []
        finished = took = False
        if chunk and self._pass is None and self._compaction_due():
            self._start_pass()
        if chunk and self._pass is not None and now - self._pass_chunked >= self.interval / 2:
            # a chunk per interval at most: the pass takes little CPU at a time
            parts, finished = self._next_parts(now)
            took = True
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = None
            if entries:
                seq = db.execute("INSERT INTO log (body) VALUES (?)", (rows.dumps(entries),)).lastrowid
            for body in parts:
                self._pass_parts += 1
                db.execute("INSERT INTO snapshot VALUES (?, ?, ?)", (self._pass_generation, self._pass_parts, body))
            if finished:
                meta = [("generation", str(self._pass_generation)), ("since", str(self._pass_since))]
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
                db.execute("DELETE FROM snapshot WHERE generation != ?", (self._pass_generation,))
                db.execute("DELETE FROM log WHERE seq < ?", (self._pass_since,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if self._pass is not None:
                self._pass_parts -= len(parts)
            raise
        self.commits += 1
        if seq is not None:
            self._last_seq = seq
            self._entries += len(entries)
        if self._pass is not None and took:
            self._pass_chunked = now
            del self._pass[: self.chunk]
        if finished:
            self._generation, self._since, self._pass = self._pass_generation, self._pass_since, None
            self._entries = 0
            self.snapshots += 1


def mark(changes: dict[MessageRecord, tuple[str, int]], record: MessageRecord, cluster: str, level: int) -> None:
    """Note a change of a record, keeping the highest level of its changes."""
    marked = changes.get(record)
    if marked is None or marked[1] < level:
        changes[record] = (cluster, level)
