"""
The durable message store (``--store sqlite:PATH``): a write-behind journal
of every accepted message, its state and the deliveries still owed, in one
SQLite file.

The in-memory store stays the source of truth while the process runs; the
journal copies changes into SQLite in batches, each batch one row of the
``log`` table (a JSON list of entries), so that a commit costs one
insert however many messages it carries:

- **Group commit before the acknowledgement.**  A request that accepted a
  message gets its Reply held (``Reply.delay``) until just after the next
  commit, which is scheduled for the next clock turn: every submit read in
  one reactor turn shares one transaction, and no submit_sm_resp leaves the
  process before its message is committed.  If the commit fails, the
  sessions waiting on it are reset (their replies never leave, so the ESME
  resubmits) and submits get ESME_RSYSERR until a commit succeeds again.
- **Write-behind for the rest.**  State changes, receipt and MO deliveries
  and their outcomes are written at most ``interval`` (50 ms) later; a
  delivery answered within that time never reaches the file.  A kill may
  lose that much progress, so a receipt may be sent again after a restart
  (at least once, never lost).
- **Snapshots keep the log short.**  Once the log holds more entries than
  four times the messages held (and at least ``compact_after``), every message
  and owed delivery is written again, a chunk per commit, as a new
  snapshot; when the pass is complete, the old snapshot and the log before
  the pass go.  Restore reads the last complete snapshot, then the log
  since its pass began.  Final messages older than ``store_final_ttl`` are
  left out of snapshots, as the store forgets them.
- **WAL, synchronous=NORMAL, exclusive lock.**  A committed batch is in the
  WAL file, which survives ``kill -9`` of the process but not a power loss
  or OS crash (no fsync per commit); one process owns the file at a time.

The core never sees this class: each core is given a
:class:`~smsc_sim.durable.cluster.ClusterJournal` (its cluster's view of
the one journal of the process, an
:class:`~smsc_sim.core.journal.IMessageJournal`).  The simulator opens the
journal (:func:`open_journal`) and calls
:func:`~smsc_sim.durable.restore.restore` before its listeners open.
Entries: :mod:`smsc_sim.durable.rows`.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import ISession, Reply
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.durable import rows
from smsc_sim.durable.rows import SavedDelivery
from smsc_sim.durable.schema import Messages, StoreError
from smsc_sim.smpp.constants import CommandId, CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.core.binds import BindEntry

#: a held reply is written this long after the commit it waits for (keeps the two timed calls in order)
HOLD_MARGIN = 1e-4
#: outcomes after which a delivery is owed no more
DONE = frozenset({"acked", "failed", "exhausted", "expired", "dropped"})
#: how much of a record a change rewrites (a record's pending level is the highest of its changes)
STARTED, PROGRESS, WHOLE = 0, 1, 2
_SUBMITS = frozenset({CommandId.submit_sm, CommandId.data_sm, CommandId.submit_multi})
# Reply built directly when it has just these fields (dataclasses.replace costs twice as much on the hot path)
_PLAIN_REPLY = tuple(field.name for field in dataclasses.fields(Reply)) == ("pdu", "delay", "then", "on_sent")

__all__ = ["SQLiteJournal", "SavedDelivery", "StoreError", "open_journal"]


class SQLiteJournal:
    """
    The journal of every cluster of one process, in one SQLite file.

    :param path: the database file (created with its schema if new).
    :param clock: schedules the commits.
    :param interval: seconds a write-behind change may wait for its commit.
    :param final_ttl: final messages older than this are left out of snapshots.
    :param compact_after: log entries before a snapshot pass is worth it.
    :param compact_ratio: log entries per message held before a snapshot pass is worth it.
    :param delivery_hold: a delivery not answered within this time is written (with its
        record's changes, held back with it until then); one answered sooner never is.
    :param chunk: messages written per commit during a snapshot pass.
    :raises StoreError: the file cannot be opened, is not a store, or is in use.
    """

    log = Logger()

    def __init__(
        self,
        path: str,
        clock: IReactorTime,
        interval: float = 0.05,
        final_ttl: float = 86_400.0,
        compact_after: int = 100_000,
        compact_ratio: float = 4.0,
        chunk: int = 1_000,
        delivery_hold: float = 1.0,
    ) -> None:
        self.path = path
        self.interval = interval
        self.final_ttl = final_ttl
        self.compact_after = compact_after
        self.compact_ratio = compact_ratio
        self.delivery_hold = delivery_hold
        self.chunk = chunk
        self._clock = clock
        self._db = rows.open_store(path)
        #: new records -> cluster: written whole in the commit of the next clock turn (their replies wait for it)
        self._accepted: dict[MessageRecord, str] = {}
        #: changed records -> (cluster, STARTED, PROGRESS or WHOLE): written behind
        self._dirty: dict[MessageRecord, tuple[str, int]] = {}
        #: deliveries owed, by the object the router holds -> (row id, cluster, record key, log entry index)
        self._tracked: dict[Delivery, tuple[int, str, str, int]] = {}
        #: deliveries not written yet (with their record), oldest first: written once ``delivery_hold``
        #: old, or never if done by then (``Delivery.done``, looked at in each write-behind commit)
        self._new: dict[int, tuple[Delivery, MessageRecord | None]] = {}
        #: deliveries written and owed: a "done" entry goes once the router is done with them
        self._owed: dict[int, tuple[Delivery, MessageRecord | None]] = {}
        self._polled = clock.seconds()
        #: records with deliveries in ``_new`` (how many): their changes wait in ``_waiting`` meanwhile
        self._young: dict[MessageRecord, int] = {}
        self._waiting: dict[MessageRecord, tuple[str, int]] = {}
        self._wipe: list[str] = []
        #: sessions whose replies wait for the next commit
        self._holding: list[ISession] = []
        #: records accepted by the request being answered
        self._fresh: list[MessageRecord] = []
        #: the commit of the next clock turn (new records), and the write-behind one
        self._call: IDelayedCall | None = None
        self._lazy: IDelayedCall | None = None
        #: the stores of the attached cores, by cluster (what a snapshot writes)
        self._stores: dict[str, MessageStore] = {}
        generation, since = self._db.execute(
            "SELECT (SELECT value FROM meta WHERE name = 'generation'), (SELECT value FROM meta WHERE name = 'since')"
        ).fetchone()
        self._generation = int(generation or 0)
        self._since = int(since or 0)
        # a pass cut short by a kill left a newer, incomplete snapshot
        self._db.execute("DELETE FROM snapshot WHERE generation != ?", (self._generation,))
        #: the snapshot pass under way: records left to write, their generation, the log seq it began at
        self._pass: list[tuple[str, MessageRecord]] | None = None
        self._pass_generation = 0
        self._pass_since = 0
        self._pass_parts = 0
        self._pass_chunked = float("-inf")
        self._entries = 0
        top = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        self._last_seq = int(top[0]) if top else 0
        # delivery ids must not meet those of an earlier run still in the file (restore moves past them too)
        self._delivery_ids = itertools.count((int(clock.seconds() * 1000) << 16) + 1)
        # read now, so that a damaged file stops the start with a clear message; restore takes it from here
        self._loaded: tuple[Messages, dict[int, list[Any]]] | None = self._replay(restoring=True)
        #: records accepted so far
        self.accepted = 0
        #: the last commit failed; submits are refused until one succeeds
        self.failing = False
        self.commits = 0
        #: snapshot passes completed
        self.snapshots = 0
        self.closed = False

    # ------------------------------------------------------------------
    # what the core tells the journal
    # ------------------------------------------------------------------

    def attach_store(self, cluster: str, store: MessageStore) -> None:
        """The store of a cluster's core, written whole by snapshots."""
        self._stores[cluster] = store

    def answer(
        self, handler: Callable[[BindEntry, PDU], Reply], entry: BindEntry, pdu: PDU, latency: float = 0.0
    ) -> Reply:
        """
        Run a request handler; a reply that acknowledges a new message is
        held until just after the commit that makes it durable.

        :param latency: what the instance adds to every reply (for the
            expected start of the new messages' plans).
        """
        if self.failing and pdu.command_id in _SUBMITS:
            return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, CommandStatus.ESME_RSYSERR))
        fresh = self._fresh
        fresh.clear()
        reply = handler(entry, pdu)
        call = self._call
        if not fresh or reply.pdu is None or call is None:
            return reply
        self._holding.append(entry.session)
        now = self._clock.seconds()
        wait = call.getTime() - now + HOLD_MARGIN
        if reply.delay < wait:
            if _PLAIN_REPLY:
                reply = Reply(reply.pdu, wait, reply.then, reply.on_sent)
            else:
                reply = dataclasses.replace(reply, delay=wait)
        # the plans start when the reply is written: noted now (in base_time, which only the start reads
        # and sets), that start need not be written again
        written = now + reply.delay + latency
        for record in fresh:
            schedule = record.schedule_time
            record.base_time = schedule if schedule is not None and schedule > written else written
        fresh.clear()
        return reply

    def record_accepted(self, cluster: str, record: MessageRecord) -> None:
        """A new record: written whole in the commit of this clock turn (an MO one: behind, with its deliver_sm)."""
        self.accepted += 1
        if record.direction == "mo":
            self.state_changed(cluster, record, WHOLE)
            return
        self._accepted[record] = cluster
        self._fresh.append(record)
        if self._call is None and not self.closed:
            self._call = self._clock.callLater(0.0, self._flush_urgent)

    def plan_started(self, cluster: str, record: MessageRecord, expected: float) -> None:
        """
        A plan started: written behind, unless it started when its accept entry said it would.

        :param expected: the record's base_time before the start (what :meth:`answer` expected, or 0).
        """
        if not expected or abs(record.base_time - expected) > 0.01:
            self.state_changed(cluster, record, STARTED)

    def state_changed(self, cluster: str, record: MessageRecord, level: int = PROGRESS) -> None:
        """
        A record changed: written behind.

        :param level: ``STARTED`` (its plan started), ``PROGRESS`` (state,
            deliveries) or ``WHOLE`` (its content or plan too).
        """
        if record in self._accepted:
            return  # written whole, as it is then, in this turn's commit
        changes = self._waiting if record in self._young else self._dirty
        marked = changes.get(record)
        if marked is None or marked[1] < level:
            changes[record] = (cluster, level)
        if self._lazy is None:
            self._behind()

    def delivery_sent(self, cluster: str, delivery: Delivery, record: MessageRecord | None) -> None:
        """A delivery handed to the router for the first time: owed until its final outcome."""
        if delivery in self._tracked:
            return  # a retry of one already owed
        key = record.key if record is not None else delivery.message_id
        entry = len(record.receipts) - 1 if record is not None and record.receipts else -1
        self.track(cluster, delivery, next(self._delivery_ids), record, key, entry)

    def track(
        self,
        cluster: str,
        delivery: Delivery,
        row: int,
        record: MessageRecord | None,
        key: str,
        entry: int,
        written: bool = False,
    ) -> None:
        """
        Follow a delivery until the router is done with it (``Delivery.done``).

        :param written: it is in the file already (a restored delivery);
            otherwise it is written unless it is done before ``delivery_hold``.
        """
        self._tracked[delivery] = (row, cluster, key, entry)
        if written:
            self._owed[row] = (delivery, record)
            if self._lazy is None:
                self._behind(1.0)  # to see when the router is done with it
            return
        self._new[row] = (delivery, record)
        if record is not None:
            young = self._young.get(record, 0)
            self._young[record] = young + 1
            marked = self._dirty.pop(record, None) if not young else None
            if marked is not None:  # the change that made the delivery waits with it
                _mark(self._waiting, record, *marked)
        if self._lazy is None:
            self._behind()

    def _settle(self, record: MessageRecord) -> None:
        """One delivery of the record is written or done: its changes wait for one fewer."""
        left = self._young.get(record, 0) - 1
        if left > 0:
            self._young[record] = left
            return
        self._young.pop(record, None)
        marked = self._waiting.pop(record, None)
        if marked is not None:
            _mark(self._dirty, record, *marked)

    def reset(self, cluster: str) -> None:
        """The cluster forgot every message: so does the file."""
        self._accepted = {r: c for r, c in self._accepted.items() if c != cluster}
        self._dirty = {r: v for r, v in self._dirty.items() if v[0] != cluster}
        self._tracked = {d: t for d, t in self._tracked.items() if t[1] != cluster}
        self._new = {row: item for row, item in self._new.items() if item[0] in self._tracked}
        self._owed = {row: item for row, item in self._owed.items() if item[0] in self._tracked}
        self._young = {}
        for _, owner in self._new.values():
            if owner is not None:
                self._young[owner] = self._young.get(owner, 0) + 1
        self._waiting = {r: v for r, v in self._waiting.items() if v[0] != cluster and r in self._young}
        if self._pass is not None:
            self._pass = [item for item in self._pass if item[0] != cluster]
        self._wipe.append(cluster)
        if self._call is None and not self.closed:
            self._call = self._clock.callLater(0.0, self._flush_urgent)

    # ------------------------------------------------------------------
    # committing
    # ------------------------------------------------------------------

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
                        _mark(dirty, owner, tracked[delivery][1], PROGRESS)  # its delivery log changed
        # records whose last waiting delivery is written or done now are written with it
        waiting = self._waiting
        young = self._young
        freed = list(waiting) if everything else [r for r, n in released.items() if young.get(r, 0) <= n]
        for record in freed:
            marked = waiting.pop(record, None)
            if marked is not None:
                _mark(dirty, record, *marked)
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

    # ------------------------------------------------------------------
    # snapshots
    # ------------------------------------------------------------------

    def _compaction_due(self) -> bool:
        held = sum(len(store) for store in self._stores.values())
        return self._pass is None and self._entries > max(self.compact_after, self.compact_ratio * held)

    def _start_pass(self) -> None:
        """Begin writing every record again as the next generation; the log from now on is kept."""
        self._pass = [(cluster, record) for cluster, store in self._stores.items() for record in store.values()]
        self._pass_generation = self._generation + 1
        self._pass_since = self._last_seq + 1
        self._pass_parts = 0
        self._pass_chunked = float("-inf")

    def _next_parts(self, now: float) -> tuple[list[str], bool]:
        """The next chunk of the pass (and, with its last chunk, the owed deliveries); whether it ends the pass."""
        assert self._pass is not None
        oldest_final = now - self.final_ttl
        entries: list[list[Any]] = []
        for cluster, record in self._pass[: self.chunk]:
            if record.final and (record.final_time or 0.0) <= oldest_final:
                continue
            entries.append(rows.whole(cluster, record))
        parts = [rows.dumps(entries)] if entries else []
        if len(self._pass) > self.chunk:
            return parts, False
        owed = [rows.delivery(row, self._tracked[d], d) for row, (d, _) in self._owed.items() if not d.done]
        if owed:
            parts.append(rows.dumps(owed))
        return parts, True

    # ------------------------------------------------------------------
    # reading back
    # ------------------------------------------------------------------

    def _replay(self, restoring: bool = False) -> tuple[Messages, dict[int, list[Any]]]:
        """
        Every message and owed delivery the file holds.

        :param restoring: the process starts on this file: count the log
            entries (for the next snapshot) and move delivery ids past those read.
        """
        messages, deliveries, logged = rows.replay(self._db, self.path, self._generation, self._since)
        if restoring:
            self._entries = logged
            if deliveries:
                following = next(self._delivery_ids)
                self._delivery_ids = itertools.count(max(following, max(deliveries) + 1))
        return messages, deliveries

    def load(self, cluster: str) -> list[MessageRecord]:
        """The records of a cluster, oldest submit first."""
        if self._loaded is None:
            self._loaded = self._replay(restoring=True)
        records = [rows.record_from(key, data) for (c, key), data in self._loaded[0].items() if c == cluster]
        records.sort(key=lambda record: record.submit_time)
        return records

    def load_deliveries(self, cluster: str) -> list[SavedDelivery]:
        """The deliveries a cluster still owed, oldest first."""
        if self._loaded is None:
            self._loaded = self._replay(restoring=True)
        return [
            SavedDelivery(row, key, entry, kind, message_id, account, instance, created, PDU(command, 0, 0, params, tlvs))
            for row, (c, key, entry, kind, message_id, account, instance, created, command, params, tlvs) in sorted(
                self._loaded[1].items()
            )
            if c == cluster
        ]

    def loaded(self) -> None:
        """Restore is over: forget what was read back."""
        self._loaded = None

    def stored(self, cluster: str) -> int:
        """How many messages of a cluster the file holds (committed ones; reads the whole file)."""
        return sum(1 for c, _ in self._replay()[0] if c == cluster)

    def close(self, flush: bool = True) -> None:
        """Commit what waits (unless ``flush`` is false, as a kill would) and close the file."""
        if self.closed:
            return
        if flush:
            self.flush()
        for call in (self._call, self._lazy):
            if call is not None and call.active():
                call.cancel()
        self._call = self._lazy = None
        self.closed = True
        self._db.close()


def _mark(changes: dict[MessageRecord, tuple[str, int]], record: MessageRecord, cluster: str, level: int) -> None:
    """Note a change of a record, keeping the highest level of its changes."""
    marked = changes.get(record)
    if marked is None or marked[1] < level:
        changes[record] = (cluster, level)


def open_journal(store: str, clock: IReactorTime, final_ttl: float = 86_400.0) -> SQLiteJournal | None:
    """
    The journal a ``store`` setting asks for: ``None`` for ``memory``.

    :raises StoreError: for a store that cannot be used.
    """
    if store == "memory":
        return None
    if not store.startswith("sqlite:") or len(store) <= len("sqlite:"):
        raise StoreError(f"store {store!r}: unknown (expected memory or sqlite:PATH)")
    return SQLiteJournal(store[len("sqlite:") :], clock, final_ttl=final_ttl)
