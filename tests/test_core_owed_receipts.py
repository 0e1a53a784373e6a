"""
Which final receipt the core records as owed in the cluster store (when its
cluster spans processes) as registered_delivery changes: on a Clock, with the
recording stand-in of ``tests/test_core_shared_deliveries.py``.  A message
that asks no receipt costs the store nothing, and one whose receipt is no
longer wanted after replace_sm is forgotten there, so that no other process
sends it.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp.constants import CommandId
from tests.test_core_fakes import Harness
from tests.test_core_shared_deliveries import SRC, Shared, _harness


class Forgetting(Shared):
    """The stand-in, also counting what the lifecycle asks it to forget."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[str] = []

    def drop(self, message_id: str) -> None:
        self.dropped.append(message_id)
        super().drop(message_id)


def _forgetting() -> tuple[Harness, Forgetting]:
    h, _plain = _harness()
    shared = Forgetting()
    h.core.router.shared = shared
    h.core.lifecycle.owed = shared
    return h, shared


class OwedReceiptTests(SynchronousTestCase):
    def test_a_message_asking_no_receipt_never_touches_the_owed_receipts(self) -> None:
        """
        registered_delivery 0, through to its DELIVRD state: nothing is
        recorded, and nothing is asked to be forgotten either (the store's
        hot path pays nothing for it).
        """
        h, shared = _forgetting()
        session = h.bound("SMPP1")
        h.submit_id(session, registered_delivery=0)
        h.clock.advance(1.1)
        self.assertEqual((shared.owed, shared.dropped, session.pdus), ({}, [], []))

    def test_replace_to_no_receipt_forgets_the_receipt_owed(self) -> None:
        """
        A message asking a receipt has its DELIVRD receipt recorded; once
        replace_sm sets registered_delivery 0 it is forgotten, and no receipt
        is sent or recorded when the new plan ends.
        """
        h, shared = _forgetting()
        session = h.bound("SMPP1")
        message_id = h.submit_id(session, registered_delivery=1)
        self.assertEqual(shared.owed[message_id][1], "DELIVERED")
        reply = h.request(
            session, CommandId.replace_sm, message_id=message_id, source_addr=SRC, short_message=b"new",
            registered_delivery=0,
        )  # fmt: skip
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_status, 0)
        self.assertNotIn(message_id, shared.owed)
        self.assertIn(message_id, shared.dropped)
        h.clock.advance(2.0)
        self.assertEqual((shared.owed, session.pdus), ({}, []))

    def test_failures_only_and_a_delivered_plan_owes_nothing(self) -> None:
        """registered_delivery 2 (failures only) with a plan ending DELIVRD: no receipt recorded, none sent."""
        h, shared = _forgetting()
        session = h.bound("SMPP1")
        h.submit_id(session, registered_delivery=2)
        h.clock.advance(1.1)
        self.assertEqual((shared.owed, session.pdus), ({}, []))
