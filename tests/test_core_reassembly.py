"""Concatenated messages: reassembly, incomplete messages, and parts split across instances."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.smpp.constants import CommandStatus, MessageState, Tag
from tests.test_core_fakes import Harness, ScriptedScenario


def udh(reference: int, total: int, seqnum: int, text: bytes) -> dict[str, Any]:
    return {"esm_class": 0x40, "short_message": bytes([5, 0, 3, reference, total, seqnum]) + text}


class ReassemblyTests(SynchronousTestCase):
    def test_complete_message(self) -> None:
        """Parts keep their own ids; once all arrived each record shows the whole text, and receipts follow."""
        h = Harness()
        s = h.bound()
        first = h.submit_id(s, registered_delivery=1, **udh(7, 2, 1, b"Hello, "))
        second = h.submit_id(s, registered_delivery=1, **udh(7, 2, 2, b"world"))
        self.assertNotEqual(first, second)
        record = h.core.message(first)
        assert record is not None
        self.assertEqual(record.text, "Hello, ")
        concat = record.to_dict()["concat"]
        self.assertEqual((concat["complete"], concat["text"], concat["parts"]), (True, "Hello, world", [first, second]))
        self.assertEqual(h.core.messages(text="lo, wor"), [record, h.core.message(second)])
        h.clock.advance(1)
        self.assertEqual(len(s.pdus), 2)

    def test_parts_total_in_facts(self) -> None:
        """The scenario sees parts_total of a part."""
        scenario = ScriptedScenario()
        h = Harness(scenario)
        h.submit(h.bound(), **udh(1, 3, 1, b"a"))
        self.assertEqual(scenario.facts[0].parts_total, 3)

    def test_sar_parts(self) -> None:
        """Parts marked with SAR TLVs are reassembled too."""
        h = Harness()
        s = h.bound()
        ids = []
        for seq, chunk in ((1, b"ab"), (2, b"cd")):
            tlvs = {Tag.sar_msg_ref_num: b"\x00\x09", Tag.sar_total_segments: b"\x02", Tag.sar_segment_seqnum: bytes([seq])}
            ids.append(h.submit_id(s, short_message=chunk, tlvs=tlvs))
        self.assertEqual(h.core.message(ids[0]).to_dict()["concat"]["text"], "abcd")  # type: ignore[union-attr]

    def test_bad_udh(self) -> None:
        """A UDH whose length runs past the message gets ESME_RINVMSGLEN."""
        h = Harness()
        reply = h.submit(h.bound(), esm_class=0x40, short_message=b"\x09\x00\x03")
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RINVMSGLEN)  # type: ignore[union-attr]

    def test_incomplete_message_undeliverable(self) -> None:
        """A part whose siblings never arrive is held, then ends UNDELIVERABLE when the window closes."""
        h = Harness(reassembly_window=60.0)
        s = h.bound()
        message_id = h.submit_id(s, registered_delivery=1, **udh(8, 2, 1, b"half"))
        h.clock.advance(1)
        self.assertEqual(s.pdus, [])
        self.assertEqual(h.core.message(message_id).state, MessageState.ENROUTE)  # type: ignore[union-attr]
        h.clock.advance(59)
        [receipt] = s.pdus
        self.assertIn(b"stat:UNDELIV err:001", receipt.params["short_message"])
        record = h.core.message(message_id)
        assert record is not None
        self.assertEqual(record.state, MessageState.UNDELIVERABLE)
        self.assertIn("[2] of 2 missing", record.reason or "")

    def test_late_part_releases_held_steps(self) -> None:
        """Parts whose receipts came due before the last part arrived get them when it arrives."""
        h = Harness()
        s = h.bound()
        h.submit(s, registered_delivery=1, **udh(9, 2, 1, b"a"))
        h.clock.advance(10)
        self.assertEqual(s.pdus, [])
        h.submit(s, registered_delivery=1, **udh(9, 2, 2, b"b"))
        self.assertEqual(len(s.pdus), 1)  # the first part's held step ran at once
        h.clock.advance(1)
        self.assertEqual(len(s.pdus), 2)

    def test_parts_across_instances_never_reassembled(self) -> None:
        """Parts of one message sent through SMPP1 and SMPP2 are never reassembled: both end UNDELIVERABLE."""
        h = Harness(reassembly_window=30.0)
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        first = h.submit_id(one, **udh(5, 2, 1, b"Hello, "))
        h.clock.advance(1)
        second = h.submit_id(two, **udh(5, 2, 2, b"world"))
        for _ in range(31):
            h.clock.advance(1)
        for message_id, other in ((first, "SMPP2"), (second, "SMPP1")):
            record = h.core.message(message_id)
            assert record is not None
            self.assertEqual(record.state, MessageState.UNDELIVERABLE)
            self.assertIn(f"other instances ({other})", record.reason or "")
            self.assertFalse(record.to_dict()["concat"]["complete"])

    def test_per_part_last(self) -> None:
        """A plan with per_part last sends a receipt only for the last part."""
        h = Harness(ScriptedScenario(plan=ReceiptPlan(steps=(ReceiptStep(1, "DELIVRD"),), per_part="last")))
        s = h.bound()
        h.submit(s, registered_delivery=1, **udh(3, 2, 1, b"a"))
        last = h.submit_id(s, registered_delivery=1, **udh(3, 2, 2, b"b"))
        h.clock.advance(1)
        self.assertEqual([p.tlvs[Tag.receipted_message_id][:-1].decode() for p in s.pdus], [last])

    def test_deliver_mode(self) -> None:
        """With reassembly_incomplete deliver (lenient), a lone part follows its own plan."""
        h = Harness(reassembly_incomplete="deliver")
        s = h.bound()
        message_id = h.submit_id(s, **udh(4, 2, 1, b"a"))
        h.clock.advance(1)
        self.assertEqual(h.core.message(message_id).state, MessageState.DELIVERED)  # type: ignore[union-attr]
