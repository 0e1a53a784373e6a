"""The delivery router: routing policies, pending queue, retries, instance availability."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import DeliveryFailed
from smsc_sim.smpp.constants import CommandId, MessageState
from smsc_sim.smpp.pdu import PDU, make_pdu
from tests.test_core_fakes import FakeSession, Harness


class RoutingTests(SynchronousTestCase):
    def test_origin_prefers_submitting_session(self) -> None:
        """With routing origin, the receipt goes to the transceiver that submitted the message."""
        h = Harness()
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        for _ in range(3):
            h.submit(two, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual((len(one.pdus), len(two.pdus)), (0, 3))

    def test_origin_falls_back_to_same_instance(self) -> None:
        """When the submitting transmitter cannot receive, a receiver on the same instance gets the receipt."""
        h = Harness()
        tx = h.bound("SMPP1", command=CommandId.bind_transmitter)
        rx_other = h.bound("SMPP2", command=CommandId.bind_receiver)
        rx_same = h.bound("SMPP1", command=CommandId.bind_receiver)
        h.submit(tx, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual((len(rx_same.pdus), len(rx_other.pdus)), (1, 0))

    def test_origin_falls_back_to_any(self) -> None:
        """When no session of the instance can receive, any receiver of the account in the cluster gets it."""
        h = Harness()
        tx = h.bound("SMPP1", command=CommandId.bind_transmitter)
        rx = h.bound("SMPP2", command=CommandId.bind_receiver)
        h.submit(tx, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual(len(rx.pdus), 1)

    def test_round_robin(self) -> None:
        """With routing round-robin, receipts alternate over the eligible sessions."""
        h = Harness(routing="round-robin")
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        for _ in range(4):
            h.submit(one, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual((len(one.pdus), len(two.pdus)), (2, 2))


class PendingTests(SynchronousTestCase):
    def test_pending_flushes_on_bind(self) -> None:
        """Receipts due while no receiver is bound wait, and go out in order once a receiver's bind_resp is written."""
        h = Harness()
        tx = h.bound(command=CommandId.bind_transmitter)
        ids = [h.submit_id(tx, registered_delivery=1) for _ in range(3)]
        h.clock.advance(1)
        self.assertEqual(h.core.stats()["pending"], 3)
        rx = h.session("SMPP2")
        reply = h.bind(rx, command=CommandId.bind_receiver, sent=False)
        self.assertEqual(rx.pdus, [])
        assert reply.on_sent is not None
        reply.on_sent()
        receipted = [pdu.tlvs[0x001E][:-1].decode() for pdu in rx.pdus]
        self.assertEqual(receipted, ids)
        self.assertEqual(h.core.stats()["pending"], 0)

    def test_instance_outage_holds_and_flushes(self) -> None:
        """While the receiver's instance is unavailable receipts wait; they go out when it comes back."""
        h = Harness()
        session = h.bound("SMPP1")
        h.core.set_instance_available("SMPP1", False)
        h.submit(session, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual(session.pdus, [])
        h.core.set_instance_available("SMPP1", True)
        self.assertEqual(len(session.pdus), 1)

    def test_pending_max_drops_oldest(self) -> None:
        """Over pending_max the oldest waiting delivery is dropped and counted."""
        h = Harness(pending_max=2)
        tx = h.bound(command=CommandId.bind_transmitter)
        first = h.submit_id(tx, registered_delivery=1)
        h.clock.advance(0.5)
        second = h.submit_id(tx, registered_delivery=1)
        third = h.submit_id(tx, registered_delivery=1)
        h.clock.advance(0.5)
        h.clock.advance(0.5)
        stats = h.core.stats()
        self.assertEqual((stats["pending"], stats["pending_dropped"]), (2, 1))
        record = h.core.message(first)
        assert record is not None and record.receipts is not None
        self.assertEqual(record.receipts[0]["outcome"], "dropped")
        rx = h.bound(command=CommandId.bind_receiver)
        self.assertEqual([p.tlvs[0x001E][:-1].decode() for p in rx.pdus], [second, third])

    def test_pending_expiry(self) -> None:
        """A delivery waiting longer than pending_expiry is dropped as expired, not sent."""
        h = Harness(pending_expiry=60.0)
        tx = h.bound(command=CommandId.bind_transmitter)
        message_id = h.submit_id(tx, registered_delivery=1)
        h.clock.advance(1)
        h.clock.advance(61)
        rx = h.bound(command=CommandId.bind_receiver)
        self.assertEqual(rx.pdus, [])
        self.assertEqual(h.core.stats()["pending_expired"], 1)
        self.assertEqual(h.core.message(message_id).receipts[0]["outcome"], "expired")  # type: ignore[union-attr,index]


class RetryTests(SynchronousTestCase):
    def test_retry_on_temporary_status(self) -> None:
        """A deliver_sm_resp with ESME_RTHROTTLED is retried after the backoff, doubling."""
        h = Harness(delivery_retry_backoff=5.0)
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1)
        session.answer(status=0x58)
        h.clock.advance(4.9)
        self.assertEqual(len(session.pdus), 1)
        h.clock.advance(0.1)
        self.assertEqual(len(session.pdus), 2)
        session.answer(status=0x58)
        h.clock.advance(9.9)
        self.assertEqual(len(session.pdus), 2)
        h.clock.advance(0.1)
        self.assertEqual(len(session.pdus), 3)
        session.answer(status=0)
        record = h.core.message(message_id)
        assert record is not None and record.receipts is not None
        self.assertEqual((record.receipts[0]["outcome"], record.receipts[0]["attempts"]), ("acked", 3))
        self.assertEqual(h.core.stats()["retries"], 2)
        self.assertEqual(h.core.stats()["receipts"]["acked"], 1)

    def test_no_retry_on_final_status(self) -> None:
        """A deliver_sm_resp with a status outside the temporary set is final: no retry."""
        h = Harness()
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1)
        session.answer(status=0x66)
        h.clock.advance(600)
        self.assertEqual(len(session.pdus), 1)
        entry = h.core.message(message_id).receipts[0]  # type: ignore[union-attr,index]
        self.assertEqual((entry["outcome"], entry["status"]), ("failed", 0x66))
        self.assertEqual(h.core.stats()["receipts"]["failed"], 1)

    def test_timeout_retries_on_other_session(self) -> None:
        """A deliver_sm that is never answered (DeliveryFailed) is retried, on another session if the first is gone."""
        h = Harness(delivery_retry_backoff=1.0)
        first = h.bound("SMPP1")
        message_id = h.submit_id(first, registered_delivery=1)
        h.clock.advance(1)
        second = h.bound("SMPP2")
        h.core.connection_lost(first, clean=False)
        first.fail(reason="closed")
        h.clock.advance(1)
        self.assertEqual(len(second.pdus), 1)
        self.assertEqual(second.pdus[0].tlvs[0x001E][:-1].decode(), message_id)

    def test_attempts_exhausted(self) -> None:
        """After delivery_max_attempts temporary answers the receipt is given up."""
        h = Harness(delivery_max_attempts=2, delivery_retry_backoff=1.0)
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1)
        session.answer(status=0x08)
        h.clock.advance(1)
        session.answer(status=0x08)
        h.clock.advance(100)
        self.assertEqual(len(session.pdus), 2)
        self.assertEqual(h.core.message(message_id).receipts[0]["outcome"], "exhausted")  # type: ignore[union-attr,index]

    def test_delivery_events(self) -> None:
        """Each deliver_sm_resp is published as a delivery event with its status and attempt."""
        h = Harness()
        session = h.bound()
        h.submit(session, registered_delivery=1)
        h.clock.advance(1)
        session.answer(status=0)
        [event] = h.kinds("delivery")
        self.assertEqual((event.data["outcome"], event.data["status"], event.data["attempt"]), ("acked", 0, 1))

    def test_mo_state_follows_delivery(self) -> None:
        """An MO record becomes DELIVERED when its deliver_sm is acknowledged."""
        h = Harness()
        session = h.bound()
        [mo_id] = h.core.inject_mo("esme", "447700900009", "15550001", text="hi")
        session.answer()
        self.assertEqual(h.core.message(mo_id).state, MessageState.DELIVERED)  # type: ignore[union-attr]


class WaiterSession(FakeSession):
    """A session that keeps the router's waiters, so that the test answers them directly."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.waiters: list[tuple[PDU, Any]] = []

    def send_delivery(self, pdu: PDU, waiter: Any) -> None:
        self.waiters.append((pdu, waiter))


class WaiterTests(SynchronousTestCase):
    """Deliveries through send_delivery: the answer given to the router's waiter reaches the router."""

    def setUp(self) -> None:
        self.h = Harness()
        self.session = WaiterSession(99, "SMPP1")
        self.h.bind(self.session)
        self.message_id = self.h.submit_id(self.session, registered_delivery=1)
        self.h.clock.advance(1)
        ((self.pdu, self.waiter),) = self.session.waiters

    def test_response_acknowledges_the_receipt(self) -> None:
        """A deliver_sm_resp 0 given to the waiter counts the receipt acknowledged, on that session."""
        self.assertEqual(self.pdu.tlvs[0x001E][:-1].decode(), self.message_id)
        self.waiter.callback(make_pdu(CommandId.deliver_sm_resp, 1))
        self.assertEqual(self.h.core.stats()["receipts"]["acked"], 1)
        record = self.h.core.message(self.message_id)
        assert record is not None and record.receipts is not None
        (entry,) = record.receipts
        self.assertEqual((entry["outcome"], entry["session_id"]), ("acked", 99))

    def test_failure_is_retried(self) -> None:
        """A DeliveryFailed given to the waiter is a delivery without answer: retried later, on an eligible session."""
        self.waiter.errback(DeliveryFailed("timeout"))
        self.assertEqual(self.h.core.stats()["deliveries"]["timeouts"], 1)
        self.h.clock.advance(10)
        self.assertEqual(len(self.session.waiters), 2)

    def test_error_while_handling_the_answer_is_logged(self) -> None:
        """A bug behind the answer is logged and does not reach the session that read the response."""

        def broken(*args: Any) -> None:
            raise RuntimeError("broken outcome")

        self.h.core.router._answered = broken  # type: ignore[assignment]
        self.waiter.callback(make_pdu(CommandId.deliver_sm_resp, 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
