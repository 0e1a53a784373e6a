"""The SMSC's requests on one session: window, queue, sequence numbers, deadlines (on a Clock)."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import SessionSettings
from smsc_sim.contracts import DeliveryFailed
from smsc_sim.outbound import OutboundRequests
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu


class Waiter:
    """Records what its request came to: the response's status, or the failure's reason."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def callback(self, result: PDU) -> None:
        self.log.append(("answered", result.sequence_number))

    def errback(self, fail: Exception) -> None:
        assert isinstance(fail, DeliveryFailed)
        self.log.append(("failed", fail.reason))


class OutboundRequestsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.written: list[PDU] = []
        self.expired: list[int] = []
        self.outcomes: list[Any] = []
        self.window = 2
        self.open = True
        settings = SessionSettings(response_timeout=10.0, outbound_queue_limit=2)
        self.requests = OutboundRequests(
            self.clock, settings, lambda: self.window, self.written.append, lambda: self.open,
            lambda request: self.expired.append(request.command_id),
        )  # fmt: skip

    def deliver(self, n: int = 1) -> None:
        for _ in range(n):
            self.requests.deliver(make_pdu(CommandId.deliver_sm, 0, short_message=b"x"), Waiter(self.outcomes))

    def answer(self, sequence: int) -> PDU | None:
        return self.requests.answered(make_pdu(CommandId.deliver_sm_resp, sequence))

    def test_window_then_queue_then_queue_full(self) -> None:
        """With a window of 2 and a queue of 2, two are written, two wait, the fifth fails queue_full."""
        self.deliver(5)
        self.assertEqual([p.sequence_number for p in self.written], [1, 2])
        self.assertEqual((len(self.requests), self.outcomes), (4, [("failed", "queue_full")]))

    def test_an_answer_lets_the_next_one_out(self) -> None:
        """Answering sequence 1 hands the response to its waiter and writes the first queued request as 3."""
        self.deliver(3)
        request = self.answer(1)
        assert request is not None
        self.assertEqual((request.command_id, request.sequence_number), (CommandId.deliver_sm, 1))
        self.assertEqual(self.outcomes, [("answered", 1)])
        self.assertEqual([p.sequence_number for p in self.written], [1, 2, 3])

    def test_nothing_is_written_while_it_may_not_send(self) -> None:
        """A closing session's queue waits: an answer writes nothing more."""
        self.deliver(3)
        self.open = False
        self.answer(1)
        self.assertEqual(len(self.written), 2)

    def test_unknown_sequence(self) -> None:
        """A response to no request of ours is None, and changes nothing."""
        self.deliver(1)
        self.assertIsNone(self.answer(99))
        self.assertEqual((len(self.requests), self.outcomes), (1, []))

    def test_deadline(self) -> None:
        """Unanswered after response_timeout: told to ``expired``, failed with timeout; a later request keeps its own deadline."""
        self.requests.send(make_pdu(CommandId.enquire_link, 0), Waiter(self.outcomes))
        self.clock.advance(4)
        self.deliver(1)
        self.clock.advance(6)
        self.assertEqual((self.expired, self.outcomes), ([CommandId.enquire_link], [("failed", "timeout")]))
        self.clock.advance(3.9)
        self.assertEqual(len(self.outcomes), 1)
        self.clock.advance(0.1)
        self.assertEqual((self.expired[-1], self.outcomes[-1]), (CommandId.deliver_sm, ("failed", "timeout")))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_deadline(self) -> None:
        """timeout 0: the request waits for ever, and no timer is armed."""
        self.requests.send(make_pdu(CommandId.unbind, 0), Waiter(self.outcomes), timeout=0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fail_all(self) -> None:
        """The connection is gone: written and queued requests all fail with closed, and the timer goes."""
        self.deliver(3)
        self.requests.fail_all()
        self.assertEqual(self.outcomes, [("failed", "closed")] * 3)
        self.assertEqual((len(self.requests), self.clock.getDelayedCalls()), (0, []))

    def test_sequence_numbers_wrap(self) -> None:
        """After 0x7FFFFFFF the next sequence number is 1."""
        self.requests._next_sequence = 0x7FFFFFFF
        self.window = 10
        self.deliver(2)
        self.assertEqual([p.sequence_number for p in self.written], [0x7FFFFFFF, 1])
