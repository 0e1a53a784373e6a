"""
The judge hears a session's PDUs straight from the session (a PDU tap),
and a submit answered at once together with its answer: its findings are
the same as a judge that hears every PDU one by one.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.conformance import Judge, Landscape
from smsc_sim.simulator import Simulator
from smsc_sim.smpp.codec import decode, encode
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.framing import SMPPFramer
from smsc_sim.smpp.pdu import PDU, make_pdu
from tests.pdu_by_pdu import SplitBus, bound_session, judged_simulator


def _submit(sequence: int, destination: str = "447700900002", ton: int = 1, text: bytes = b"Hello") -> bytes:
    return encode(make_pdu(CommandId.submit_sm, sequence, source_addr="447700900001", dest_addr_ton=ton,
                           destination_addr=destination, short_message=text, registered_delivery=1))  # fmt: skip


class SameFindingsTests(SynchronousTestCase):
    """One simulator, its own judge (a tap) and a second one hearing PDU by PDU, judged alike."""

    def test_findings_equal_pdu_by_pdu(self) -> None:
        """Bad addresses, a bad sequence number, throttling, a resubmission and an idle session: same findings."""
        clock, simulator = judged_simulator(self)
        reference = Judge(clock, Landscape.from_config(simulator.config))
        self.addCleanup(reference.subscribe(SplitBus(simulator.events)))  # type: ignore[arg-type]
        session, transport = bound_session(simulator, CommandId.bind_transmitter)
        # TON 0 and a '+': address findings; 40 at once: ESME_RTHROTTLED past the account's 30/s
        session.dataReceived(b"".join(_submit(n, ton=0 if n % 7 == 0 else 1) for n in range(2, 42)))
        session.dataReceived(_submit(42, destination="+447700900003") + _submit(0))
        answers = [decode(frame) for frame in SMPPFramer(1 << 16).feed(transport.value())]
        refused = [a for a in answers if a.command_status == 0x58]
        self.assertGreater(len(refused), 0)
        clock.advance(1.5)
        session.dataReceived(_submit(41))  # a refused message again (same destination and text)
        clock.advance(200.0)  # the others are never resubmitted; the session idles
        session.dataReceived(encode(make_pdu(CommandId.enquire_link, 43)))
        judge = simulator.judge
        assert judge is not None
        found = [finding.to_dict() for finding in judge.findings()]
        self.assertEqual(found, [finding.to_dict() for finding in reference.findings()])
        codes = {finding["code"] for finding in found}
        self.assertTrue({"address-format", "throttled-not-resubmitted"} <= codes, codes)


class SameReceiptFindingsTests(SynchronousTestCase):
    """Receipts acked, refused, never answered and cut by a close: the tapped judge and a PDU-by-PDU one agree."""

    def test_receipt_findings_equal_pdu_by_pdu(self) -> None:
        """Receipts acked at once and late, refused, timed out and answered late: same findings."""
        self.assertEqual(*self.judged(close_early=False))

    def test_receipts_cut_by_close_findings_equal_pdu_by_pdu(self) -> None:
        """Receipts acked and refused, two left unanswered when the session closes: same findings."""
        self.assertEqual(*self.judged(close_early=True))

    def judged(self, close_early: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The findings of the simulator's judge and of a PDU-by-PDU one, after five receipts."""
        clock, simulator = judged_simulator(self)
        reference = Judge(clock, Landscape.from_config(simulator.config))
        self.addCleanup(reference.subscribe(SplitBus(simulator.events)))  # type: ignore[arg-type]
        session, transport = bound_session(simulator, CommandId.bind_transceiver)
        session.dataReceived(b"".join(_submit(n) for n in range(2, 7)))
        transport.clear()
        clock.advance(600)
        written = [decode(frame) for frame in SMPPFramer(1 << 16).feed(transport.value())]
        receipts = [pdu for pdu in written if pdu.command_id == CommandId.deliver_sm]
        self.assertEqual(len(receipts), 5)

        def answer(receipt: PDU, status: int = 0) -> None:
            session.dataReceived(
                encode(PDU(CommandId.deliver_sm_resp, receipt.sequence_number, status, {"message_id": ""}))
            )

        answer(receipts[0])
        clock.advance(0.3)
        answer(receipts[1])
        answer(receipts[2], 0x64)  # refused
        if close_early:
            session.connectionLost(Failure(ConnectionError("gone")))
            clock.advance(200)
            return self.findings(simulator, reference)
        clock.advance(30)  # receipts[3] and [4] time out
        answer(receipts[3])  # too late
        answer(receipts[3])  # and again: an answer to nothing
        session.connectionLost(Failure(ConnectionError("gone")))
        return self.findings(simulator, reference)

    def findings(self, simulator: Simulator, reference: Judge) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        judge = simulator.judge
        assert judge is not None
        return [f.to_dict() for f in judge.findings()], [f.to_dict() for f in reference.findings()]
