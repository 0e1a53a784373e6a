"""
The durable message store (``--store sqlite:PATH``): a write-behind journal
of every accepted message, its state and the deliveries still owed, in one
SQLite file.

The in-memory store stays the source of truth while the process runs; the
journal copies changes into SQLite in batches, each batch one row of the
``log`` table (a pickled list of entries), so that a commit costs one
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

Hooks: :class:`~smsc_sim.core.smsc.SMSCCore` builds the journaled router
and lifecycle of :mod:`smsc_sim.core.durable_core` when given a journal, and
calls :meth:`SQLiteJournal.answer`, :meth:`~SQLiteJournal.record_accepted`
and :meth:`~SQLiteJournal.reset`; the simulator opens the journal
(:func:`open_journal`) and calls :func:`~smsc_sim.core.durable_core.restore`
before its listeners open.  Entries: :mod:`smsc_sim.core.durable_rows`.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import ISession, Reply
from smsc_sim.core import durable_rows as rows
from smsc_sim.core.router import Delivery
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.smpp.constants import CommandId, CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.core.binds import BindEntry

SCHEMA_VERSION = "1"
#: a held reply is written this long after the commit it waits for (keeps the two timed calls in order)
HOLD_MARGIN = 1e-4
#: outcomes after which a delivery is owed no more
DONE = frozenset({"acked", "failed", "exhausted", "expired", "dropped"})
#: how much of a record a change rewrites (a record's pending level is the highest of its changes)
STARTED, PROGRESS, WHOLE = 0, 1, 2
_SUBMITS = frozenset({CommandId.submit_sm, CommandId.data_sm, CommandId.submit_multi})
# Reply built directly when it has just these fields (dataclasses.replace costs twice as much on the hot path)
_PLAIN_REPLY = tuple(field.name for field in dataclasses.fields(Reply)) == ("pdu", "delay", "then", "on_sent")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    generation INTEGER NOT NULL, part INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (generation, part));
"""
#: journaled messages by (cluster, key): [content, progress, plan, base_time]
Messages = dict[tuple[str, str], list[Any]]


class StoreError(ValueError):
    """The durable store cannot be used; the message names the store and says why, fit to show as is."""


@dataclasses.dataclass(frozen=True)
class SavedDelivery:
    """A delivery (receipt or MO deliver_sm) owed when the journal was last written."""

    id: int
    key: str
    entry: int
    kind: str
    message_id: str
    account: str
    instance: str | None
    created: float
    pdu: PDU


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
        self._db = _open(path)
        #: new records -> cluster: written whole in the commit of the next clock turn (their replies wait for it)
        self._accepted: dict[MessageRecord, str] = {}
        #: changed records -> (cluster, STARTED, PROGRESS or WHOLE): written behind
        self._dirty: dict[MessageRecord, tuple[str, int]] = {}
        #: deliveries owed, by the object the router holds -> (row id, cluster, record key, log entry index)
        self._tracked: dict[Delivery, tuple[int, str, str, int]] = {}
        #: deliveries not written yet (with their record): written once older than ``interval``, unless done
        self._new: OrderedDict[int, tuple[Delivery, MessageRecord | None]] = OrderedDict()
        #: records with deliveries in ``_new`` (how many): their changes wait in ``_waiting`` meanwhile
        self._young: dict[MessageRecord, int] = {}
        self._waiting: dict[MessageRecord, tuple[str, int]] = {}
        self._done: list[int] = []
        self._wipe: list[str] = []
        #: sessions whose replies wait for the next commit
        self._holding: list[ISession] = []
        #: records accepted by the request being answered
        self._fresh: list[MessageRecord] = []
        #: when the plans of new records are expected to start (their replies' write time)
        self._bases: dict[MessageRecord, float] = {}
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
        #: the record whose receipt is being handed to the router (set by JournaledLifecycle)
        self.current: MessageRecord | None = None
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
        # the plans start when the reply is written: noted now, that start need not be written again
        written = now + reply.delay + latency
        bases = self._bases
        for record in fresh:
            schedule = record.schedule_time
            bases[record] = schedule if schedule is not None and schedule > written else written
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

    def plan_started(self, cluster: str, record: MessageRecord) -> None:
        """A plan started: written behind, unless it started when its accept entry said it would."""
        expected = self._bases.pop(record, None)
        if expected is None or abs(record.base_time - expected) > 0.01:
            self.state_changed(cluster, record, STARTED)

    def state_changed(self, cluster: str, record: MessageRecord, level: int = PROGRESS) -> None:
        """
        A record changed: written behind.

        :param level: ``STARTED`` (its plan started), ``PROGRESS`` (state,
            deliveries) or ``WHOLE`` (its content or plan too).
        """
        if record in self._accepted:
            return  # written whole, as it is then, in this turn's commit
        _mark(self._waiting if record in self._young else self._dirty, record, cluster, level)
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
        Follow a delivery's outcomes until a final one.

        :param written: it is in the file already (a restored delivery);
            otherwise it is written unless it is done before the next commit.
        """
        self._tracked[delivery] = (row, cluster, key, entry)
        if not written:
            self._new[row] = (delivery, record)
            if record is not None:
                young = self._young.get(record, 0)
                self._young[record] = young + 1
                marked = self._dirty.pop(record, None) if not young else None
                if marked is not None:  # the change that made the delivery waits with it
                    _mark(self._waiting, record, *marked)
            if self._lazy is None:
                self._behind()
        original = delivery.on_outcome

        def on_outcome(done: Delivery, what: str, status: int | None, session_id: int | None) -> None:
            if original is not None:
                original(done, what, status, session_id)
            if what in DONE:
                self.delivery_done(done)
            if record is not None:
                self.state_changed(cluster, record)

        delivery.on_outcome = on_outcome

    def delivery_done(self, delivery: Delivery) -> None:
        """A delivery reached a final outcome: it is owed no more (and never written if it was not yet)."""
        tracked = self._tracked.pop(delivery, None)
        if tracked is None:
            return
        unwritten = self._new.pop(tracked[0], None)
        if unwritten is None:
            self._done.append(tracked[0])
            if self._lazy is None:
                self._behind()
        elif unwritten[1] is not None:
            self._settle(unwritten[1])

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
            if self._lazy is None:
                self._behind()

    def reset(self, cluster: str) -> None:
        """The cluster forgot every message: so does the file."""
        self._accepted = {r: c for r, c in self._accepted.items() if c != cluster}
        self._dirty = {r: v for r, v in self._dirty.items() if v[0] != cluster}
        self._tracked = {d: t for d, t in self._tracked.items() if t[1] != cluster}
        self._new = OrderedDict((row, item) for row, item in self._new.items() if item[0] in self._tracked)
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
        return len(self._accepted) + len(self._dirty) + len(self._waiting) + len(self._new) + len(self._done) + len(
            self._wipe
        )

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
        if len(self._bases) > 100_000:
            self._bases.clear()  # replies never written (sessions gone): their plans never start
        holding, self._holding = self._holding, []
        accepted, wipe = self._accepted, self._wipe
        self._accepted, self._wipe = {}, []
        dirty: dict[MessageRecord, tuple[str, int]] = {}
        done: list[int] = []
        if behind:
            dirty, done = self._dirty, self._done
            self._dirty, self._done = {}, []
        written: list[int] = []
        try:
            entries: list[list[Any]] = [["X", cluster] for cluster in wipe]
            bases = self._bases
            for record, cluster in accepted.items():
                base = record.base_time if record.started else bases.get(record)
                entries.append(["W", cluster, record.key, *self._whole(record, base)])
            if behind:
                written = self._behind_entries(entries, dirty, done, everything)
            if entries or (behind and (self._pass is not None or self._compaction_due())):
                self._commit(entries, behind)
        except (sqlite3.Error, ValueError) as error:
            # keep it all (later changes win) and try again; what waited for it must not be acknowledged
            for record, cluster in accepted.items():
                self._accepted.setdefault(record, cluster)
            for record, (cluster, level) in dirty.items():
                later = self._dirty.get(record)
                self._dirty[record] = (cluster, level if later is None else max(level, later[1]))
            self._done = done + self._done
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
        for row in written:
            item = self._new.pop(row, None)
            if item is not None and item[1] is not None:
                self._settle(item[1])
        if self.failing:
            self.log.info("store {path}: commits work again", path=self.path)
        self.failing = False
        more = self._dirty or self._new or self._done or self._pass is not None or self._compaction_due()
        if self._lazy is None and more:
            self._behind()  # held back deliveries; a snapshot pass starts or goes on

    def _behind_entries(
        self, entries: list[list[Any]], dirty: dict[MessageRecord, tuple[str, int]], done: list[int], everything: bool
    ) -> list[int]:
        """
        Add the write-behind entries; the ids of the deliveries written.

        A delivery younger than ``delivery_hold`` is not written yet, nor is
        any change of its record (the state that made it must never be
        written without it): most are answered by then and never reach the
        file.  A kill meanwhile leaves the record as it was before, and the
        restored plan sends that receipt again.
        """
        cut = self._clock.seconds() - self.delivery_hold
        tracked = self._tracked
        written: list[int] = []
        released: dict[MessageRecord, int] = {}
        for row, (delivery, owner) in self._new.items():  # oldest first: the young ones are all at the end
            if not everything and delivery.created > cut:
                break
            written.append(row)
            if owner is not None:
                released[owner] = released.get(owner, 0) + 1
            if delivery in tracked:
                entries.append(self._delivery(row, tracked[delivery], delivery))
        # records whose last waiting delivery is written now are written with it
        waiting = self._waiting
        freed = list(waiting) if everything else [r for r, n in released.items() if self._young.get(r, 0) <= n]
        for record in freed:
            marked = waiting.pop(record, None)
            if marked is not None:
                _mark(dirty, record, *marked)
        bases = self._bases
        for record, (cluster, level) in dirty.items():
            base = record.base_time if record.started else bases.get(record)
            if level == WHOLE:
                entries.append(["W", cluster, record.key, *self._whole(record, base)])
            elif level == PROGRESS:
                entries.append(["P", cluster, record.key, rows.progress(record), base])
            else:
                entries.append(["S", cluster, record.key, base])
        entries.extend(["d", row] for row in done)
        return written

    @staticmethod
    def _whole(record: MessageRecord, base: float | None) -> list[Any]:
        return [rows.content(record), rows.progress(record), rows.plan(record.plan), base]

    @staticmethod
    def _delivery(row: int, tracked: tuple[int, str, str, int], d: Delivery) -> list[Any]:
        _, cluster, key, entry = tracked
        pdu = d.pdu  # its fields, not its octets: the codec's encoding costs more than pickling them
        return [
            "D", row, cluster, key, entry, d.kind, d.message_id, d.account, d.origin_instance, d.created,
            int(pdu.command_id), pdu.params, pdu.tlvs,
        ]  # fmt: skip

    def _commit(self, entries: list[list[Any]], chunk: bool) -> None:
        db = self._db
        now = self._clock.seconds()
        parts: list[bytes] = []
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

    def _next_parts(self, now: float) -> tuple[list[bytes], bool]:
        """The next chunk of the pass (and, with its last chunk, the owed deliveries); whether it ends the pass."""
        assert self._pass is not None
        oldest_final = now - self.final_ttl
        entries: list[list[Any]] = []
        for cluster, record in self._pass[: self.chunk]:
            if record.final and (record.final_time or 0.0) <= oldest_final:
                continue
            base = record.base_time if record.started else self._bases.get(record)
            entries.append(["W", cluster, record.key, *self._whole(record, base)])
        parts = [rows.dumps(entries)] if entries else []
        if len(self._pass) > self.chunk:
            return parts, False
        owed = [self._delivery(t[0], t, d) for d, t in self._tracked.items() if t[0] not in self._new]
        if owed:
            parts.append(rows.dumps(owed))
        return parts, True

    # ------------------------------------------------------------------
    # reading back
    # ------------------------------------------------------------------

    def _replay(self, restoring: bool = False) -> tuple[Messages, dict[int, list[Any]]]:
        """
        Every message and owed delivery the file holds: the last snapshot,
        then the log since its pass began.

        :param restoring: the process starts on this file: count the log
            entries (for the next snapshot) and move delivery ids past those read.
        """
        messages: Messages = {}
        deliveries: dict[int, list[Any]] = {}
        bodies: Iterable[tuple[bytes]] = self._db.execute(
            "SELECT body FROM snapshot WHERE generation = ? ORDER BY part", (self._generation,)
        ).fetchall()
        logged = self._db.execute("SELECT body FROM log WHERE seq >= ? ORDER BY seq", (self._since,)).fetchall()
        logged_entries = 0
        for source, count in ((bodies, False), (logged, True)):
            for (body,) in source:
                try:
                    entries = rows.loads(body)
                    for entry in entries:
                        _apply(entry, messages, deliveries)
                except Exception as error:
                    self._db.close()
                    raise StoreError(f"store sqlite:{self.path}: damaged ({error})") from None
                if count:
                    logged_entries += len(entries)
        if restoring:
            self._entries = logged_entries
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


def _apply(entry: list[Any], messages: Messages, deliveries: dict[int, list[Any]]) -> None:
    """Replay one journal entry."""
    kind = entry[0]
    if kind == "W":
        messages[(entry[1], entry[2])] = entry[3:7]
    elif kind == "P":
        known = messages.get((entry[1], entry[2]))
        if known is not None:
            known[1], known[3] = entry[3], entry[4]
    elif kind == "S":
        known = messages.get((entry[1], entry[2]))
        if known is not None:
            known[3] = entry[3]
    elif kind == "D":
        deliveries[entry[1]] = entry[2:]
    elif kind == "d":
        deliveries.pop(entry[1], None)
    elif kind == "X":
        for pair in [pair for pair in messages if pair[0] == entry[1]]:
            del messages[pair]
        for row in [row for row, saved in deliveries.items() if saved[0] == entry[1]]:
            del deliveries[row]


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


def _open(path: str) -> sqlite3.Connection:
    where = f"store sqlite:{path}"
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=0.0)  # in use: say so at once
    except sqlite3.Error as error:
        raise StoreError(f"{where}: cannot open ({error}); is its directory there and writable?") from None
    try:
        # exclusive before WAL: no shared-memory file, and a second process gets "locked" at once
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{where}: cannot use write-ahead logging (journal_mode is {mode}); give a file path")
        db.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise StoreError(f"{where}: a SQLite database, but not an smsc-sim store (tables {', '.join(sorted(tables))})")
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        version = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise StoreError(f"{where}: schema version {version}, this smsc-sim reads {SCHEMA_VERSION}")
    except sqlite3.OperationalError as error:
        db.close()
        why = "in use by another process" if "locked" in str(error) else str(error)
        raise StoreError(f"{where}: cannot use it ({why}); is it writable, and is no other simulator using it?") from None
    except sqlite3.DatabaseError as error:
        db.close()
        raise StoreError(f"{where}: {error} (expected an smsc-sim store, or a new file)") from None
    except StoreError:
        db.close()
        raise
    return db
