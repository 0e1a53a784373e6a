"""
Restore: put a cluster's journaled messages back on start.

Every record goes back into the store (final ones older than
``store_final_ttl`` are dropped); a pending record's plan goes back on the
timeline with the steps it had not run yet, each at its original time, or
at once when that time has passed; deliveries still owed (receipts and MO
not yet answered) go back to the router, where they wait for a bind.  A
step counts as run when its state change is in the history (intermediate
notifications: when something later happened), so a kill can at worst send
one receipt twice, never lose it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import ReceiptPlan
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.ids import IMessageNumbers, counted
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.reassembly import Reassembler
from smsc_sim.core.router import Router
from smsc_sim.core.store import DeliveryEntry, MessageRecord, MessageStore, ReceiptEntry, StoreFull
from smsc_sim.durable.cluster import ClusterJournal
from smsc_sim.durable.sqlite import DONE, SQLiteJournal
from smsc_sim.smpp.concat import ConcatError, payload_of

if TYPE_CHECKING:
    from smsc_sim.core.smsc import SMSCCore


def restore(
    journal: ClusterJournal,
    *,
    clock: IReactorTime,
    final_ttl: float,
    ids: IMessageNumbers,
    store: MessageStore,
    account: Callable[[str], AccountSettings | None],
    reassembler: Reassembler,
    lifecycle: Lifecycle,
    router: Router,
) -> tuple[int, int]:
    """
    Put a cluster's journaled messages back: every record into the store,
    pending plans back on the timeline (steps already past their time due at
    once, the others at their time), and owed deliveries back to the router
    (they wait for a bind).

    :param journal: the cluster's journal (what is read back, and where restored deliveries are tracked).
    :param final_ttl: final records older than this are not put back.
    :param ids: moved past the highest restored message number.
    :param account: the settings of an account by system_id (its alphabet, for reassembly).
    :returns: (records restored, deliveries re-queued).
    """
    sqlite, cluster = journal.journal, journal.cluster
    now = clock.seconds()
    oldest_final = now - final_ttl
    records: list[MessageRecord] = []
    highest = 0
    for record in sqlite.load(cluster):
        if counted(record.number):  # an all-digit id says nothing of where the counter was
            highest = max(highest, record.number)
        if record.final and (record.final_time or 0.0) <= oldest_final:
            continue
        try:
            store.add(record)
        except StoreFull:
            sqlite.log.warn("store full: journaled message {key} not restored", key=record.key)
            continue
        records.append(record)
    # new message ids must not repeat a restored one (a restart within the same second would)
    ids.advance_past(highest, now)
    multi: dict[str, list[MessageRecord]] = {}
    for record in records:
        if record.command == "submit_multi":
            multi.setdefault(record.message_id, []).append(record)
    for group in multi.values():
        for record in group:
            record.siblings = tuple(group)
    for record in records:
        if record.concat is not None and record.direction == "mt":
            settings = account(record.account)
            try:
                payload = payload_of(record.esm_class, record.short_message, {})
            except ConcatError:
                payload = record.short_message
            reassembler.add(record, record.concat, payload, settings.default_alphabet if settings else "latin-1")
    for record in records:
        if not record.final and record.direction == "mt":
            _resume(lifecycle, journal, record, now)
    saved = sqlite.load_deliveries(cluster)
    for item in saved:
        owner = store.get(item.key)
        delivery = Delivery(item.pdu, item.account, item.kind, item.message_id, None, item.instance, item.created)
        if owner is not None and item.kind == "mo":
            delivery.on_outcome = lifecycle.mo_outcome(owner)
        elif owner is not None and owner.receipts and 0 <= item.entry < len(owner.receipts):
            delivery.on_outcome = _receipt_outcome(clock, lifecycle.counters, owner.receipts[item.entry])
        sqlite.track(cluster, delivery, item.id, owner, item.key, item.entry, written=True)
        router.send(delivery, owner)
    return len(records), len(saved)


def _resume(lifecycle: Lifecycle, journal: ClusterJournal, record: MessageRecord, now: float) -> None:
    """Put a pending record's plan back: the steps not yet run, each at its original time or at once."""
    base = record.base_time if record.started else max(record.schedule_time or record.submit_time, record.submit_time)
    plan = record.plan
    if plan is not None:
        index = _steps_done(record, plan, base)
        schedule = record.schedule_time
        new_base = schedule if schedule is not None and schedule > now else now
        steps = tuple(
            dataclasses.replace(step, delay=max(0.0, base + step.delay - new_base)) for step in plan.steps[index:]
        )
        record.plan = dataclasses.replace(plan, steps=steps)
    lifecycle.start(record)
    journal.changed(record, whole=True)  # the plan changed too


def _steps_done(record: MessageRecord, plan: ReceiptPlan, base: float) -> int:
    """
    How many of the plan's steps ran: each non-intermediate step left a
    history entry at or after the plan's start; an intermediate one ran if
    its time is not after the last thing the plan did.
    """
    changes = [time for time, state in record.history[1:] if time >= base and state != "REPLACED"]
    sent = [entry.time for entry in record.receipts or () if entry.get("time", 0.0) >= base]
    last = max(changes + sent, default=None)
    left = len(changes)
    index = 0
    for step in plan.steps:
        if step.intermediate:
            if last is None or base + step.delay > last:
                break
        elif left:
            left -= 1
        else:
            break
        index += 1
    return index


def _receipt_outcome(
    clock: IReactorTime, counters: Counter[str], entry: DeliveryEntry
) -> Callable[[Delivery, str, int | None, int | None], None]:
    """What the lifecycle does with a receipt's outcomes, for a receipt restored from the journal."""

    def outcome(delivery: Delivery, what: str, status: int | None, session_id: int | None) -> None:
        entry.outcome = what
        entry.status = status
        entry.attempts = delivery.attempt
        if session_id is not None:
            entry.session_id = session_id
        if what in DONE:
            if isinstance(entry, ReceiptEntry):
                entry.done = clock.seconds()
            counters[f"receipts_{what}"] += 1

    return outcome


def restore_clusters(
    journal: SQLiteJournal, cluster_journals: Mapping[str, ClusterJournal], cores: Iterable[SMSCCore], log: Logger
) -> None:
    """
    Put back every cluster's messages and owed deliveries (``--store sqlite:PATH``)
    before any listener opens, logging what came back per cluster, then tell
    the journal its load is over.
    """
    for core in cores:
        records, deliveries = restore(
            cluster_journals[core.name],
            clock=core.clock,
            final_ttl=core.settings.store_final_ttl,
            ids=core.ids,
            store=core.store,
            account=core.accounts.get,
            reassembler=core.reassembler,
            lifecycle=core.lifecycle,
            router=core.router,
        )
        log.info(
            "store {path}: cluster {cluster}: {records} messages restored, {deliveries} deliveries owed",
            path=journal.path,
            cluster=core.name,
            records=records,
            deliveries=deliveries,
        )
    journal.loaded()
