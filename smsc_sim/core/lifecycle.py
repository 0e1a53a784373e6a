"""
The life of an accepted message: its receipt plan run on the timeline,
state changes, expiry at validity, cancel and forced receipts, and the
receipts themselves handed to the router.

A plan starts when the response carrying the message id has been written
(the Reply's ``on_sent``), never before ``schedule_delivery_time``; step
delays count from the later of the two.  One timeline entry is waiting per
message at a time (the next step, or expiry at validity), and the receipt
PDU is built only when its step is due.

registered_delivery decides which steps send a receipt: bits 1-0 ``01``
every non-intermediate step, ``10`` only failures (final states other than
DELIVERED), ``00`` none; bit 4 (0x10) intermediate notifications.

When the cluster spans processes (:attr:`Lifecycle.owed`), the final
receipt a plan will send is recorded in the cluster store when the plan
starts (built ahead, dated at its due time), and again whenever the final
receipt actually sent differs (cancel, expiry): another process sends it if
this one dies before the receipt is answered.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import ReceiptPlan
from smsc_sim.core.billing import Networks
from smsc_sim.core.delivery import Delivery, OwedReceipts
from smsc_sim.core.journal import NO_JOURNAL, IMessageJournal, kept
from smsc_sim.core.reassembly import ConcatGroup
from smsc_sim.core.receipts import build_receipt
from smsc_sim.core.router import Router
from smsc_sim.core.store import MessageRecord, MessageStore, MOEntry, ReceiptEntry
from smsc_sim.core.timeline import Timeline
from smsc_sim.events import EventBus
from smsc_sim.modes import DeliveryOutcome
from smsc_sim.smpp.constants import (
    FINAL_STATES,
    RECEIPT_STAT,
    REGISTERED_DELIVERY_INTERMEDIATE,
    REGISTERED_DELIVERY_RECEIPT_MASK,
    STAT_STATE,
    CommandId,
    MessageState,
)
from smsc_sim.smpp.pdu import PDU
from smsc_sim.smpp.receipt import STAT_DEFAULT_ERR

#: the name of each message state (a dict lookup: Enum.name is a property call)
STATE_NAMES = {state: state.name for state in MessageState}
#: the outcomes that end a receipt's delivery, and the counter each bumps
_DONE = {what.value: f"receipts_{what.value}" for what in DeliveryOutcome}
#: the outcomes that write a "deliver_sm <outcome>" reason on the record
_ENDED_UNDELIVERED = frozenset({DeliveryOutcome.FAILED, DeliveryOutcome.EXHAUSTED, DeliveryOutcome.DROPPED})


def wants_receipt(registered_delivery: int, state: MessageState, intermediate: bool) -> bool:
    """
    Whether registered_delivery asks for a receipt for this state.

    :param registered_delivery: the message's registered_delivery.
    :param state: the state reached.
    :param intermediate: an intermediate notification.
    """
    if intermediate:
        return bool(registered_delivery & REGISTERED_DELIVERY_INTERMEDIATE)
    mode = registered_delivery & REGISTERED_DELIVERY_RECEIPT_MASK
    if mode == 1:
        return True
    if mode == 2:
        return state in FINAL_STATES and state is not MessageState.DELIVERED
    return False


class Lifecycle:
    """
    Runs receipt plans and changes message states.

    :param clock: the clock.
    :param timeline: where steps and expiries wait.
    :param store: the records.
    :param router: where receipts go.
    :param events: where ``message`` events go.
    :param account: returns the settings of an account by system_id (for
        ``receipts_as``), or ``None``.
    :param hold_incomplete: a part of a concatenated message reaches a
        final state only once the message is complete; parts of a message
        still incomplete when its window closes end UNDELIVERABLE.  When
        false, parts follow their plans whatever happens to the others.
    :param journal: told of every plan start, state change and receipt.
    """

    def __init__(
        self,
        clock: IReactorTime,
        timeline: Timeline,
        store: MessageStore,
        router: Router,
        events: EventBus,
        account: Callable[[str], AccountSettings | None],
        *,
        hold_incomplete: bool = True,
        journal: IMessageJournal = NO_JOURNAL,
        networks: Networks | None = None,
        vendor_cstring: bool = True,
    ) -> None:
        self._clock = clock
        self._timeline = timeline
        self._store = store
        self._router = router
        self._events = events
        self._account = account
        self.hold_incomplete = hold_incomplete
        self._journal = kept(journal)
        self.counters: Counter[str] = Counter()
        #: (direction, state name) -> state changes (acceptance included) since start, never reset: the
        #: metrics read it at scrape, instead of following a ``message`` event per change
        self.state_changes: dict[tuple[str, str], int] = {}
        # the receipt's TLV 0x1402 (destination network); None or empty: none
        self._networks = networks if networks else None
        self._vendor_suffix = b"\x00" if vendor_cstring else b""
        #: where owed final receipts are recorded when the cluster spans processes; None: one process
        self.owed: OwedReceipts | None = None

    # ------------------------------------------------------------------
    # the plan
    # ------------------------------------------------------------------

    def start(self, record: MessageRecord) -> None:
        """Start a record's plan: its response has just been written."""
        now = self._clock.seconds()
        journal = self._journal
        # the journal compares the start with the one it expected (noted in base_time when it held the reply)
        expected = record.base_time if journal is not None else 0.0
        record.started = True
        schedule = record.schedule_time
        record.base_time = schedule if schedule is not None and schedule > now else now
        self._next(record, record.generation, 0)
        if self.owed is not None:
            self._owe(record, self.owed)
        if journal is not None:
            journal.plan_started(record, expected)

    def _owe(self, record: MessageRecord, owed: OwedReceipts) -> None:
        """Record the final receipt the plan will send (when it asks for one), built now and dated when due."""
        if not record.registered_delivery & REGISTERED_DELIVERY_RECEIPT_MASK:
            # no final receipt asked, whatever the plan reaches: no need to walk it.  Only a message whose
            # plan started over (replace_sm, which bumps the generation) can have one recorded to forget.
            if record.generation:
                owed.drop(record.message_id)
            return
        plan = record.plan
        # no final step before the validity period ends: the receipt owed is the expiry's
        state, stat, err = MessageState.EXPIRED, RECEIPT_STAT[MessageState.EXPIRED], STAT_DEFAULT_ERR["EXPIRED"]
        due = record.validity_time
        for step in plan.steps if plan is not None else ():
            if step.intermediate:
                continue
            reached = STAT_STATE.get(step.stat, MessageState.UNKNOWN)
            if reached not in FINAL_STATES:
                continue
            if record.base_time + step.delay <= record.validity_time:
                state, stat, err, due = reached, step.stat, step.err, record.base_time + step.delay
            break
        if not wants_receipt(record.registered_delivery, state, False) or (
            plan is not None and not self._part_receipts(record, plan)
        ):
            owed.drop(record.message_id)
            return
        pdu = self._receipt_pdu(record, stat, err, state, False, due)
        delivery = Delivery(pdu, record.account, "receipt", record.message_id, None, record.instance, due)
        owed.owe(delivery, due, state.name)

    def _next(self, record: MessageRecord, generation: int, index: int) -> None:
        steps = record.plan.steps if record.plan is not None else ()
        if index < len(steps):
            due = record.base_time + steps[index].delay
            if due <= record.validity_time:
                self._timeline.at(due, self._step, record, generation, index)
                return
        elif record.state in FINAL_STATES:
            return
        self._timeline.at(record.validity_time, self._expire, record, generation)

    def _step(self, record: MessageRecord, generation: int, index: int) -> None:
        if generation != record.generation or record.state in FINAL_STATES or record.plan is None:
            return
        plan = record.plan
        step = plan.steps[index]
        if step.intermediate:
            if record.registered_delivery & REGISTERED_DELIVERY_INTERMEDIATE:
                self.send_receipt(record, step.stat, step.err, record.state, intermediate=True)
            self._next(record, generation, index + 1)
            return
        group = record.group
        if group is not None and not group.complete and self.hold_incomplete:
            group.held.append((record, generation, index))
            return
        state = STAT_STATE.get(step.stat, MessageState.UNKNOWN)
        now = self.set_state(record, state, step.err)
        if wants_receipt(record.registered_delivery, state, False) and self._part_receipts(record, plan):
            last = all(later.intermediate for later in plan.steps[index + 1 :])
            self.send_receipt(record, step.stat, step.err, state, now=now)
            if plan.duplicate and last:
                self.send_receipt(record, step.stat, step.err, state)
        if state not in FINAL_STATES:
            self._next(record, generation, index + 1)

    @staticmethod
    def _part_receipts(record: MessageRecord, plan: ReceiptPlan) -> bool:
        concat = record.concat
        return concat is None or plan.per_part != "last" or concat.seqnum == concat.total

    def _expire(self, record: MessageRecord, generation: int) -> None:
        if generation != record.generation or record.state in FINAL_STATES:
            return
        self.finish(record, MessageState.EXPIRED, STAT_DEFAULT_ERR["EXPIRED"], reason="validity period reached")

    def finish(
        self, record: MessageRecord, state: MessageState, err: int, reason: str | None = None, receipt: bool = True
    ) -> None:
        """
        End a pending record now (cancel, expiry, incomplete concatenation),
        with a receipt if registered_delivery asks; its plan stops.

        :param receipt: send the receipt now; ``False`` leaves it to a later
            :meth:`final_receipt` (cancel_sm sends it once its response is written).
        """
        record.generation += 1
        if reason is not None:
            record.reason = reason
        self.set_state(record, state, err)
        if receipt:
            self.final_receipt(record)

    def final_receipt(self, record: MessageRecord) -> None:
        """Send the receipt of the final state a record is in, if its registered_delivery asks."""
        state = record.state
        if state in FINAL_STATES and wants_receipt(record.registered_delivery, state, False):
            self.send_receipt(record, RECEIPT_STAT[state], record.err, state)

    def restart(self, record: MessageRecord) -> None:
        """Start a record's plan over (after replace): pending steps are dropped."""
        record.generation += 1
        self.start(record)
        if self._journal is not None:
            self._journal.changed(record, whole=True)

    def force(self, record: MessageRecord, stat: str, err: int) -> None:
        """
        Set a record's state from a ``stat:`` word and send that receipt,
        whatever registered_delivery says.  A final stat stops the plan.

        :raises KeyError: for an unknown stat word.
        """
        state = STAT_STATE[stat]
        if state in FINAL_STATES:
            record.generation += 1
        self.set_state(record, state, err)
        self.send_receipt(record, stat, err, state)

    def set_state(self, record: MessageRecord, state: MessageState, err: int) -> float:
        """Change a record's state (history, final time, count, event); the time of the change."""
        now = self._clock.seconds()
        final = state in FINAL_STATES
        if record.changes is not None or not final or record.state is not MessageState.ENROUTE:
            record.note_change(now, STATE_NAMES[state])
        # else straight from ENROUTE to final: the plain history, which the record holds without an object
        record.state = state
        record.err = err
        if final:
            owed = self.owed
            # a receipt is recorded only when registered_delivery asks for one, or after a cancel, expiry,
            # forced receipt or replace (each bumps the generation first): else there is none to forget
            if (
                owed is not None
                and (record.generation or record.registered_delivery & REGISTERED_DELIVERY_RECEIPT_MASK)
                and not wants_receipt(record.registered_delivery, state, False)
            ):
                owed.drop(record.message_id)
            previous = record.final_time
            record.final_time = now
            # the plan is over, so when its steps counted from no longer matters: one float less per retained record
            record.base_time = 0.0
            self._store.finalized(record, previous)
        changes = self.state_changes
        key = (record.direction, STATE_NAMES[state])  # a dict lookup: Enum.name is a property call
        changes[key] = changes.get(key, 0) + 1
        if self._events.wants_messages:
            self._events.publish(
                "message",
                message_id=record.message_id,
                state=state.name,
                err=err,
                account=record.account,
                instance=record.instance,
                direction=record.direction,
            )
        journal = self._journal
        if journal is not None:
            journal.changed(record)
        return now

    # ------------------------------------------------------------------
    # concatenation
    # ------------------------------------------------------------------

    def group_complete(self, group: ConcatGroup) -> None:
        """Every part arrived: run the steps held back meanwhile."""
        held, group.held = group.held, []
        for record, generation, index in held:
            self._step(record, generation, index)

    def group_incomplete(self, group: ConcatGroup, reason: str) -> None:
        """The window closed with parts missing: the parts present end UNDELIVERABLE."""
        group.held = []
        if not self.hold_incomplete:
            for record in group.records:
                record.reason = reason
            return
        for record in group.records:
            if record.state not in FINAL_STATES:
                self.finish(record, MessageState.UNDELIVERABLE, STAT_DEFAULT_ERR["UNDELIV"], reason)

    # ------------------------------------------------------------------
    # receipts
    # ------------------------------------------------------------------

    def send_receipt(
        self,
        record: MessageRecord,
        stat: str,
        err: int,
        state: MessageState,
        intermediate: bool = False,
        now: float | None = None,
    ) -> None:
        """
        Build a receipt now and hand it to the router.

        :param now: the clock's reading, when the caller has just taken it (the state change's).
        """
        if now is None:
            now = self._clock.seconds()
        pdu = self._receipt_pdu(record, stat, err, state, intermediate, now)
        as_data_sm = pdu.command_id == CommandId.data_sm
        entry = ReceiptEntry.created(now, stat, err, intermediate, "data_sm" if as_data_sm else "deliver_sm")
        record.log_delivery(entry)
        self.counters["receipts_sent"] += 1

        def outcome(delivery: Delivery, what: str, status: int | None, session_id: int | None) -> None:
            entry.outcome = what
            entry.status = status
            entry.attempts = delivery.attempt
            if session_id is not None:
                entry.session_id = session_id
            if what in _DONE:
                entry.done = self._clock.seconds()
                self.counters[_DONE[what]] += 1

        delivery = Delivery(
            pdu, record.account, "receipt", record.message_id, record.session_id, record.instance, now, outcome
        )
        owed = self.owed
        if owed is not None and not intermediate and state in FINAL_STATES:
            # kept in the cluster store until answered; recorded again when it is not the one planned
            delivery.owed = True
            if owed.owed_state(record.message_id) != state.name:
                owed.owe(delivery, now, state.name)
        self._router.send(delivery, record)
        journal = self._journal
        if journal is not None:
            journal.changed(record)

    def _receipt_pdu(
        self, record: MessageRecord, stat: str, err: int, state: MessageState, intermediate: bool, now: float
    ) -> PDU:
        """The receipt PDU, as the account wants it (deliver_sm or data_sm, id format, network TLV)."""
        account = self._account(record.account)
        as_data_sm = account is not None and account.receipts_as == "data_sm"
        id_format = account.receipt_id_format if account is not None else "decimal"
        network: bytes | None = None
        if self._networks is not None:
            found = self._networks.lookup(record.destination_addr)
            if found is not None:
                network = found.encode("ascii") + self._vendor_suffix
        return build_receipt(record, stat, err, state, now, record.plan, as_data_sm, intermediate, id_format, network)

    def mo_outcome(self, record: MessageRecord) -> Callable[[Delivery, str, int | None, int | None], None]:
        """The router callback that moves an MO record along with its deliver_sm."""

        def outcome(delivery: Delivery, what: str, status: int | None, session_id: int | None) -> None:
            entry = record.last_delivery() or record.log_delivery(MOEntry())
            entry.outcome = what
            entry.status = status
            entry.attempts = delivery.attempt
            if session_id is not None:
                entry.session_id = session_id
            if what == DeliveryOutcome.ACKED:
                self.set_state(record, MessageState.DELIVERED, 0)
            elif what in _ENDED_UNDELIVERED:
                record.reason = f"deliver_sm {what}" + (f" with status 0x{status:08X}" if status is not None else "")
                self.set_state(record, MessageState.UNDELIVERABLE, 0)
            elif what == "expired":
                record.reason = "no receiver bound before the pending expiry"
                self.set_state(record, MessageState.EXPIRED, 0)

        return outcome
