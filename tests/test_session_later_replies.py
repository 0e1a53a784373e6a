"""
A reply the core gives later (a Deferred: query_sm, cancel_sm or replace_sm
of a message another process of the cluster holds): the session writes it
when it comes, in its place among the other replies.  Driven with
StringTransport and task.Clock, as tests/test_session.py.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from smsc_sim.contracts import Reply
from smsc_sim.smpp.pdu import PDU, make_response
from tests import wire
from tests.test_session import SessionTestCase

QUERY_SM = 0x03


def query_sm(sequence: int) -> bytes:
    return wire.frame(QUERY_SM, sequence, wire.cstr("0B00000000000001") + b"\x01\x01" + wire.cstr("1"))


class LaterReplyTests(SessionTestCase):
    def later(self) -> list[tuple[PDU, Deferred[Reply]]]:
        """Make the core answer query_sm with a Deferred the test fires; the list of them."""
        asked: list[tuple[PDU, Deferred[Reply]]] = []
        answer = self.core.request

        def request(session: Any, pdu: PDU) -> Reply | Deferred[Reply]:
            if pdu.command_id != QUERY_SM:
                return answer(session, pdu)
            d: Deferred[Reply] = Deferred()
            asked.append((pdu, d))
            return d

        self.core.request = request  # type: ignore[method-assign]
        return asked

    def test_written_when_the_core_answers(self) -> None:
        """Nothing is written until the core's answer comes; then the query_sm_resp, with its sequence number."""
        self.bind()
        asked = self.later()
        self.session.dataReceived(query_sm(5))
        self.assertEqual(self.sent(), [])
        pdu, d = asked[0]
        d.callback(Reply(make_response(pdu, 0x67)))
        self.assertEqual(self.sent(), [(0x80000003, 0x67, 5)])

    def test_counts_in_the_inbound_window(self) -> None:
        """With the window (2) taken by two unanswered queries, a submit_sm gets the window's status at once."""
        self.bind()
        asked = self.later()
        self.session.dataReceived(query_sm(5) + query_sm(6) + wire.submit_sm(sequence=7))
        self.assertEqual(self.sent(), [(0x80000004, 0x14, 7)])
        for pdu, d in asked:
            d.callback(Reply(make_response(pdu)))
        self.assertEqual(self.sent(), [(0x80000003, 0, 5), (0x80000003, 0, 6)])

    def test_unbind_waits_for_it(self) -> None:
        """An unbind sent after the query is answered after the query_sm_resp, then the connection closes."""
        self.bind()
        asked = self.later()
        self.session.dataReceived(query_sm(5) + wire.frame(0x06, 6))
        self.assertEqual(self.sent(), [])
        pdu, d = asked[0]
        d.callback(Reply(make_response(pdu)))
        self.assertEqual(self.sent(), [(0x80000003, 0, 5), (0x80000006, 0, 6)])
        self.assertTrue(self.transport.disconnecting)

    def test_keeps_the_instance_latency(self) -> None:
        """On an instance with latency, the answer is written that long after it came."""
        self.bind()
        asked = self.later()
        self.instance.latency = 0.2
        self.session.dataReceived(query_sm(5))
        pdu, d = asked[0]
        d.callback(Reply(make_response(pdu)))
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.2)
        self.assertEqual(self.sent(), [(0x80000003, 0, 5)])

    def test_connection_ended_first(self) -> None:
        """The connection ends before the answer: nothing is written, and what the core hung on it still runs."""
        self.bind()
        asked = self.later()
        self.session.dataReceived(query_sm(5))
        self.session.connectionLost()
        ran: list[bool] = []
        pdu, d = asked[0]
        d.callback(Reply(make_response(pdu), on_sent=lambda: ran.append(True)))
        self.assertEqual(self.sent(), [])
        self.assertEqual(ran, [True])

    def test_a_failure_is_answered_syserr(self) -> None:
        """A failure behind the Deferred is logged and answered ESME_RSYSERR (0x08); the session stays bound."""
        self.bind()
        asked = self.later()
        self.session.dataReceived(query_sm(5))
        asked[0][1].errback(RuntimeError("boom"))
        self.assertEqual(self.sent(), [(0x80000003, 0x08, 5)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.session.dataReceived(wire.frame(0x15, 6))
        self.assertEqual(self.sent(), [(0x80000015, 0, 6)])
