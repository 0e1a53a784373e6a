"""
The core when its cluster spans processes (``cluster_store``), on a Clock,
with a recording stand-in for the shared store: what no session here can
take is handed over rather than queued here, a delivery from the shared
queue is delivered here, and each final receipt owed is recorded when its
plan starts and forgotten once answered.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.core.delivery import Delivery
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import make_pdu
from tests.test_core_fakes import Harness

SRC = "447700900001"


class Shared:
    """Records what the router and the lifecycle tell the shared store."""

    def __init__(self) -> None:
        self.published: list[Delivery] = []
        self.settled: list[Delivery] = []
        self.owed: dict[str, tuple[float, str, bytes]] = {}
        self.resets = 0

    def publish(self, delivery: Delivery) -> None:
        self.published.append(delivery)
        if delivery.owed:
            self.owed.pop(delivery.message_id, None)

    def settle(
        self, delivery: Delivery, outcome: str = "", status: int | None = None, session_id: int | None = None
    ) -> None:
        self.settled.append(delivery)
        if delivery.owed:
            self.owed.pop(delivery.message_id, None)

    def reset(self) -> None:
        self.resets += 1

    def owe(self, delivery: Delivery, due: float, state: str) -> None:
        self.owed[delivery.message_id] = (due, state, bytes(delivery.pdu.params["short_message"]))

    def owed_state(self, message_id: str) -> str | None:
        found = self.owed.get(message_id)
        return found[1] if found is not None else None

    def drop(self, message_id: str) -> None:
        self.owed.pop(message_id, None)


def _harness(**core: Any) -> tuple[Harness, Shared]:
    h = Harness(**core)
    shared = Shared()
    h.core.router.shared = shared
    h.core.lifecycle.owed = shared
    return h, shared


class SharedDeliveryTests(SynchronousTestCase):
    def test_final_receipt_is_owed_from_the_start_and_forgotten_once_answered(self) -> None:
        """
        A submit asking for a receipt records its DELIVRD receipt, due when the
        plan says (1 s after the response), before it is due; once the ESME
        answers it, it is owed no more.
        """
        h, shared = _harness()
        session = h.bound("SMPP1")
        message_id = h.submit_id(session, registered_delivery=1)
        due, state, text = shared.owed[message_id]
        self.assertEqual((due - h.clock.seconds(), state), (1.0, "DELIVERED"))
        self.assertIn(b"stat:DELIVRD", text)
        h.clock.advance(1.1)
        self.assertEqual(len(session.pdus), 1)
        self.assertIn(message_id, shared.owed)  # sent, not answered: still owed
        session.answer()
        self.assertNotIn(message_id, shared.owed)
        self.assertEqual([d.message_id for d in shared.settled], [message_id])

    def test_no_receipt_asked_none_owed(self) -> None:
        """registered_delivery 0: nothing is recorded."""
        h, shared = _harness()
        h.submit_id(h.bound("SMPP1"), registered_delivery=0)
        self.assertEqual(shared.owed, {})

    def test_cancel_records_the_deleted_receipt_instead(self) -> None:
        """After cancel_sm the receipt owed (sent, not answered yet) is the DELETED one, not the planned DELIVRD."""
        h, shared = _harness()
        session = h.bound("SMPP1")
        message_id = h.submit_id(session, registered_delivery=1)
        h.request(session, CommandId.cancel_sm, message_id=message_id, source_addr=SRC)
        h.clock.advance(0.01)
        self.assertIn(b"stat:DELETED", session.pdus[-1].params["short_message"])
        self.assertEqual(shared.owed[message_id][1], "DELETED")
        self.assertIn(b"stat:DELETED", shared.owed[message_id][2])

    def test_no_session_here_hands_the_receipt_over(self) -> None:
        """
        With no receiver bound in this process, a receipt due goes to the
        shared queue (its owed record with it), not to the local pending queue.
        """
        h, shared = _harness()
        session = h.session("SMPP1")
        h.bind(session, command=CommandId.bind_transmitter)
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1.1)
        self.assertEqual([(d.message_id, d.owed) for d in shared.published], [(message_id, True)])
        self.assertEqual(h.core.router.pending_depth(), 0)
        self.assertNotIn(message_id, shared.owed)

    def test_a_shared_delivery_is_delivered_here_and_acknowledged_once_answered(self) -> None:
        """A delivery read from the shared queue reaches a session here; its answer acknowledges it."""
        h, shared = _harness()
        session = h.bound("SMPP2")
        pdu = make_pdu(CommandId.deliver_sm, 0, short_message=b"from SMPP1")
        delivery = Delivery(pdu, "esme", "mo", "77", None, "SMPP1", h.clock.seconds())
        delivery.entry = "1-0"
        h.core.router.take(delivery)
        self.assertEqual(session.pdus[0].params["short_message"], b"from SMPP1")
        self.assertEqual(shared.settled, [])
        session.answer()
        self.assertEqual([d.entry for d in shared.settled], ["1-0"])

    def test_a_shared_delivery_older_than_pending_expiry_is_dropped(self) -> None:
        """One that waited longer than pending_expiry is not delivered, and acknowledged as ended."""
        h, shared = _harness(pending_expiry=60.0)
        session = h.bound("SMPP2")
        pdu = make_pdu(CommandId.deliver_sm, 0, short_message=b"old")
        delivery = Delivery(pdu, "esme", "mo", "78", None, "SMPP1", h.clock.seconds() - 61)
        delivery.entry = "2-0"
        h.core.router.take(delivery)
        self.assertEqual(session.pdus, [])
        self.assertEqual([d.entry for d in shared.settled], ["2-0"])

    def test_reset_tells_the_shared_store(self) -> None:
        """A reset forgets this process's deliveries in the shared store too."""
        h, shared = _harness()
        h.core.reset()
        self.assertEqual(shared.resets, 1)

    def test_an_outcome_from_another_process_moves_the_record_on_as_a_local_one(self) -> None:
        """
        A receipt handed to the cluster (no receiver here) that another
        process reports acked: the record's receipt says acked with that
        status, session and attempts (no longer queued), and a ``delivery``
        event says so, naming the process and instance that delivered it.
        """
        h, shared = _harness()
        session = h.session("SMPP1")
        h.bind(session, command=CommandId.bind_transmitter)
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1.1)
        [handed] = shared.published
        record = h.core.store.get(message_id)
        assert record is not None and record.receipts is not None
        self.assertEqual(record.receipts[-1]["outcome"], "queued")
        heard: list[Any] = []
        h.events.subscribe(heard.append, kinds=("delivery",))
        handed.attempt = 2
        where = {"process": "host:2:bb", "instance": "SMPP2", "time": 5.0}
        h.core.router.ended_elsewhere(handed, "acked", 0, 9, where)
        receipt = record.receipts[-1]
        self.assertEqual((receipt["outcome"], receipt["status"], receipt["session_id"], receipt["attempts"]),
                         ("acked", 0, 9, 2))  # fmt: skip
        [event] = heard
        self.assertEqual(
            {k: event.data[k] for k in ("message_id", "outcome", "status", "session_id", "process", "instance")},
            {"message_id": message_id, "outcome": "acked", "status": 0, "session_id": 9, "process": "host:2:bb",
             "instance": "SMPP2"},
        )  # fmt: skip

    def test_a_shared_delivery_ending_here_tells_the_store_how(self) -> None:
        """A delivery read from the shared queue and refused with a final status is settled as failed, with it."""
        h, shared = _harness()
        outcomes: list[tuple[str, int | None]] = []
        shared.settle = lambda delivery, outcome="", status=None, session_id=None: outcomes.append(  # type: ignore[method-assign]
            (outcome, status)
        )
        session = h.bound("SMPP2")
        delivery = Delivery(make_pdu(CommandId.deliver_sm, 0, short_message=b"x"), "esme", "mo", "79", None,
                            "SMPP1", h.clock.seconds())  # fmt: skip
        delivery.entry = "3-0"
        h.core.router.take(delivery)
        session.answer(status=0x64)
        self.assertEqual(outcomes, [("failed", 0x64)])
