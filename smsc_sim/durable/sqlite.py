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
Entries: :mod:`smsc_sim.durable.rows`.  The class is in parts: what the core
tells the journal and reading back (here), committing
(:mod:`smsc_sim.durable.commits`) and snapshots (:mod:`smsc_sim.durable.snapshots`).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import ISession, Reply
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.durable import rows
from smsc_sim.durable.commits import PROGRESS, STARTED, WHOLE, JournalCommits, mark
from smsc_sim.durable.rows import SavedDelivery
from smsc_sim.durable.schema import Messages, StoreError
from smsc_sim.durable.snapshots import JournalSnapshots
from smsc_sim.smpp.constants import CommandId, CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.core.binds import BindEntry

#: a held reply is written this long after the commit it waits for (keeps the two timed calls in order)
HOLD_MARGIN = 1e-4
#: outcomes after which a delivery is owed no more
DONE = frozenset({"acked", "failed", "exhausted", "expired", "dropped"})
_SUBMITS = frozenset({CommandId.submit_sm, CommandId.data_sm, CommandId.submit_multi})
# Reply built directly when it has just these fields (dataclasses.replace costs twice as much on the hot path)
_PLAIN_REPLY = tuple(field.name for field in dataclasses.fields(Reply)) == ("pdu", "delay", "then", "on_sent")

__all__ = ["SQLiteJournal", "SavedDelivery", "StoreError", "open_journal"]


class SQLiteJournal(JournalCommits, JournalSnapshots):
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
                mark(self._waiting, record, *marked)
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
            mark(self._dirty, record, *marked)

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
