"""
The durable store's side of the core: the journaled router and lifecycle
(the plain classes plus notifications to :class:`~smsc_sim.core.durable.SQLiteJournal`)
and the restore path that puts a cluster's journaled messages back on start.

Restore: every record goes back into the store (final ones older than
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
import itertools
from typing import TYPE_CHECKING, Callable

from smsc_sim.contracts import ReceiptPlan
from smsc_sim.core import ids
from smsc_sim.core.durable import DONE, WHOLE, SQLiteJournal
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.router import Delivery, Router
from smsc_sim.core.store import (
    DeliveryEntry,
    MessageRecord,
    MessageStore,
    ReceiptEntry,
    StoreFull,
)
from smsc_sim.smpp.concat import ConcatError, payload_of
from smsc_sim.smpp.constants import MessageState

if TYPE_CHECKING:
    from smsc_sim.core.smsc import SMSCCore


class JournaledLifecycle(Lifecycle):
    """:class:`~smsc_sim.core.lifecycle.Lifecycle` that tells the journal of every change it makes."""

    journal: SQLiteJournal | None = None
    cluster = ""

    def start(self, record: MessageRecord) -> None:
        """Start the plan, and note its start (the time its steps count from)."""
        expected = record.base_time
        super().start(record)
        if self.journal is not None:
            self.journal.plan_started(self.cluster, record, expected)

    def restart(self, record: MessageRecord) -> None:
        """Start the plan over after a replace: the content changed too."""
        super().restart(record)
        if self.journal is not None:
            self.journal.state_changed(self.cluster, record, WHOLE)

    def set_state(self, record: MessageRecord, state: MessageState, err: int) -> float:
        """Change the state, and note it."""
        now = super().set_state(record, state, err)
        if self.journal is not None:
            self.journal.state_changed(self.cluster, record)
        return now

    def send_receipt(
        self,
        record: MessageRecord,
        stat: str,
        err: int,
        state: MessageState,
        intermediate: bool = False,
        now: float | None = None,
    ) -> None:
        """Send a receipt; the router's journal learns which record it belongs to."""
        journal = self.journal
        if journal is None:
            super().send_receipt(record, stat, err, state, intermediate, now)
            return
        journal.current = record
        try:
            super().send_receipt(record, stat, err, state, intermediate, now)
        finally:
            journal.current = None
        journal.state_changed(self.cluster, record)


class JournaledRouter(Router):
    """:class:`~smsc_sim.core.router.Router` that journals every delivery until its final outcome."""

    journal: SQLiteJournal | None = None
    cluster = ""
    store: MessageStore | None = None

    def send(self, delivery: Delivery) -> None:
        """Journal a new delivery (a retry is already journaled), then route it."""
        journal = self.journal
        if journal is not None and not delivery.done:
            record = journal.current
            if record is None and self.store is not None:
                record = self.store.get(delivery.message_id)
            journal.delivery_sent(self.cluster, delivery, record)
        super().send(delivery)


def attach(journal: SQLiteJournal, core: SMSCCore) -> None:
    """Point a core's journaled router and lifecycle at the journal."""
    router, lifecycle = core.router, core.lifecycle
    if isinstance(router, JournaledRouter):
        router.journal, router.cluster, router.store = journal, core.name, core.store
    if isinstance(lifecycle, JournaledLifecycle):
        lifecycle.journal, lifecycle.cluster = journal, core.name
    journal.attach_store(core.name, core.store)


# ----------------------------------------------------------------------
# restore
# ----------------------------------------------------------------------


def restore(core: SMSCCore, journal: SQLiteJournal) -> tuple[int, int]:
    """
    Put a cluster's journaled messages back: every record into the store,
    pending plans back on the timeline (steps already past their time due at
    once, the others at their time), and owed deliveries back to the router
    (they wait for a bind).

    :returns: (records restored, deliveries re-queued).
    """
    now = core.clock.seconds()
    oldest_final = now - core.settings.store_final_ttl
    records: list[MessageRecord] = []
    highest = 0
    for record in journal.load(core.name):
        highest = max(highest, record.number)
        if record.final and (record.final_time or 0.0) <= oldest_final:
            continue
        try:
            core.store.add(record)
        except StoreFull:
            journal.log.warn("store full: journaled message {key} not restored", key=record.key)
            continue
        records.append(record)
    _ids_above(highest, now)
    multi: dict[str, list[MessageRecord]] = {}
    for record in records:
        if record.command == "submit_multi":
            multi.setdefault(record.message_id, []).append(record)
    for group in multi.values():
        for record in group:
            record.siblings = tuple(group)
    for record in records:
        if record.concat is not None and record.direction == "mt":
            account = core.accounts.get(record.account)
            try:
                payload = payload_of(record.esm_class, record.short_message, {})
            except ConcatError:
                payload = record.short_message
            core.reassembler.add(record, record.concat, payload, account.default_alphabet if account else "latin-1")
    for record in records:
        if not record.final and record.direction == "mt":
            _resume(core.lifecycle, record, now)
    saved = journal.load_deliveries(core.name)
    for item in saved:
        owner = core.store.get(item.key)
        delivery = Delivery(item.pdu, item.account, item.kind, item.message_id, None, item.instance, item.created)
        if owner is not None and item.kind == "mo":
            delivery.on_outcome = core.lifecycle.mo_outcome(owner)
        elif owner is not None and owner.receipts and 0 <= item.entry < len(owner.receipts):
            delivery.on_outcome = _receipt_outcome(core, owner.receipts[item.entry])
        journal.track(core.name, delivery, item.id, owner, item.key, item.entry, written=True)
        core.router.send(delivery)
    return len(records), len(saved)


def _ids_above(number: int, now: float) -> None:
    """New message ids must not repeat a restored one (a restart within the same second would)."""
    if ids.next_message_number(now) <= number:
        # smsc_sim.core.ids has no public way to skip ahead; its counter is restarted past the highest
        ids._counter = itertools.count(number + 1)


def _resume(lifecycle: Lifecycle, record: MessageRecord, now: float) -> None:
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
    if isinstance(lifecycle, JournaledLifecycle) and lifecycle.journal is not None:
        lifecycle.journal.state_changed(lifecycle.cluster, record, WHOLE)  # the plan changed too


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


def _receipt_outcome(core: SMSCCore, entry: DeliveryEntry) -> Callable[[Delivery, str, int | None, int | None], None]:
    """What the lifecycle does with a receipt's outcomes, for a receipt restored from the journal."""
    counters = core.lifecycle.counters
    clock = core.clock

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
