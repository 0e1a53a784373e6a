"""
Durability passed in: what a core tells the journal it is given, and the
message id allocator the cores of a process share.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import ReceiptPlan, Reply
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.ids import IdAllocator
from smsc_sim.core.journal import Handler
from smsc_sim.core.record import MessageRecord
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU
from tests.test_core_fakes import T0, Harness


class RecordingJournal:
    """An IMessageJournal that notes what it is told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[Any, ...]] = []
        self.answered = 0

    def answering(self, handler: Handler) -> Handler:
        def answer(entry: BindEntry, pdu: PDU) -> Reply:
            self.answered += 1
            return handler(entry, pdu)

        return answer

    def accepted(self, record: MessageRecord) -> None:
        self.told.append(("accepted", record.message_id))

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        self.told.append(("plan_started", record.message_id))

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        self.told.append(("changed", record.message_id, record.state.name, whole))

    def delivery_sent(self, delivery: Delivery, record: MessageRecord | None) -> None:
        self.told.append(("delivery_sent", delivery.kind, record.message_id if record is not None else None))

    def cleared(self) -> None:
        self.told.append(("cleared",))


def journaled(journal: RecordingJournal, ids: IdAllocator | None = None) -> Harness:
    """A harness whose core is built with ``journal`` (and ``ids``)."""
    h = Harness()
    members = h.config.clusters()["NA"]
    h.core = SMSCCore(
        "NA", h.clock, h.config, members, h.scenario, h.events, journal=journal, ids=ids or IdAllocator()
    )
    return h


class JournalTests(SynchronousTestCase):
    def test_the_journal_hears_of_a_message_from_submit_to_receipt(self) -> None:
        """The journal given to the core is told of the new message, its plan, its final state and its receipt."""
        journal = RecordingJournal()
        h = journaled(journal)
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual(journal.answered, 1)
        self.assertEqual(
            journal.told,
            [
                ("accepted", message_id),
                ("plan_started", message_id),
                ("changed", message_id, "DELIVERED", False),
                ("delivery_sent", "receipt", message_id),
                ("changed", message_id, "DELIVERED", False),
            ],
        )

    def test_replace_and_reset_are_journaled(self) -> None:
        """A replace_sm rewrites the whole record in the journal; a reset tells it every record is gone."""
        journal = RecordingJournal()
        h = journaled(journal)
        h.scenario.plan = ReceiptPlan(steps=())  # stays ENROUTE
        session = h.bound()
        message_id = h.submit_id(session)
        source = "447700900001"
        h.request(session, CommandId.replace_sm, message_id=message_id, source_addr=source, short_message=b"new")
        self.assertIn(("changed", message_id, "ENROUTE", True), journal.told)
        h.core.reset()
        self.assertEqual(journal.told[-1], ("cleared",))

    def test_mo_delivery_is_journaled_with_its_record(self) -> None:
        """An MO message is journaled as accepted, and its deliver_sm as a delivery of that record."""
        journal = RecordingJournal()
        h = journaled(journal)
        h.bound()
        [mo_id] = h.core.inject_mo("esme", "447700900009", "15550001", text="hi")
        self.assertEqual(journal.told[:2], [("accepted", mo_id), ("delivery_sent", "mo", mo_id)])


class IdAllocatorTests(SynchronousTestCase):
    def test_cores_sharing_an_allocator_never_repeat_an_id(self) -> None:
        """Two cores given one allocator hand out different message ids."""
        ids = IdAllocator()
        first, second = journaled(RecordingJournal(), ids), journaled(RecordingJournal(), ids)
        a = first.submit_id(first.bound())
        b = second.submit_id(second.bound())
        self.assertNotEqual(a, b)
        self.assertEqual(int(b, 16), int(a, 16) + 1)

    def test_advance_past_skips_a_restored_number(self) -> None:
        """After advance_past(n), every later number is greater than n; an allocator already past n stays as it is."""
        ids = IdAllocator()
        start = ids.next(T0)
        ids.advance_past(start + 1000, T0)
        self.assertEqual(ids.next(T0), start + 1001)
        ids.advance_past(5, T0)
        self.assertEqual(ids.next(T0), start + 1003)
