"""Tests for :mod:`smsc_sim.smpp.framing`."""

from __future__ import annotations

import struct

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp.constants import CommandStatus
from smsc_sim.smpp.framing import FramingError, SMPPFramer


def _frame(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    """One PDU with a correct command_length."""
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


ENQUIRE_LINK = _frame(0x15, 1)
SUBMIT_LIKE = _frame(0x04, 2, bytes(range(40)))
UNBIND = _frame(0x06, 3)
STREAM = ENQUIRE_LINK + SUBMIT_LIKE + UNBIND


class SMPPFramerTests(SynchronousTestCase):
    """The framer cuts a byte stream into whole PDUs by command_length."""

    def test_whole_pdu(self) -> None:
        """A chunk holding exactly one PDU gives that PDU and leaves nothing buffered."""
        framer = SMPPFramer(4096)
        self.assertEqual(framer.feed(ENQUIRE_LINK), [ENQUIRE_LINK])
        self.assertEqual(framer.buffered, 0)
        self.assertFalse(framer.partial)

    def test_many_pdus_in_one_chunk(self) -> None:
        """Three PDUs arriving in one chunk come out as three frames, in order."""
        framer = SMPPFramer(4096)
        self.assertEqual(framer.feed(STREAM), [ENQUIRE_LINK, SUBMIT_LIKE, UNBIND])
        self.assertFalse(framer.partial)

    def test_thousands_of_pdus_in_one_chunk(self) -> None:
        """A large chunk of back-to-back PDUs is framed completely (no quadratic rebuffering)."""
        framer = SMPPFramer(4096)
        frames = framer.feed(STREAM * 5000)
        self.assertEqual(len(frames), 15000)
        self.assertEqual(frames[-1], UNBIND)
        self.assertEqual(framer.buffered, 0)

    def test_one_byte_at_a_time(self) -> None:
        """Bytes arriving one at a time give each PDU exactly when its last byte arrives."""
        framer = SMPPFramer(4096)
        out: list[bytes] = []
        boundaries = {len(ENQUIRE_LINK), len(ENQUIRE_LINK) + len(SUBMIT_LIKE), len(STREAM)}
        for index in range(len(STREAM)):
            got = framer.feed(STREAM[index : index + 1])
            if index + 1 in boundaries:
                self.assertEqual(len(got), 1)
                self.assertFalse(framer.partial)
            else:
                self.assertEqual(got, [])
                self.assertTrue(framer.partial)
            out.extend(got)
        self.assertEqual(out, [ENQUIRE_LINK, SUBMIT_LIKE, UNBIND])

    def test_split_at_every_offset(self) -> None:
        """Whatever offset the stream is split at, the same three PDUs come out."""
        for cut in range(len(STREAM) + 1):
            framer = SMPPFramer(4096)
            frames = framer.feed(STREAM[:cut])
            self.assertEqual(framer.buffered, cut - sum(len(f) for f in frames))
            frames += framer.feed(STREAM[cut:])
            self.assertEqual(frames, [ENQUIRE_LINK, SUBMIT_LIKE, UNBIND], f"split at {cut}")
            self.assertEqual(framer.buffered, 0)

    def test_partial_and_buffered(self) -> None:
        """After half a PDU, the framer reports a partial frame and how many bytes it holds."""
        framer = SMPPFramer(4096)
        self.assertEqual(framer.feed(ENQUIRE_LINK + SUBMIT_LIKE[:10]), [ENQUIRE_LINK])
        self.assertTrue(framer.partial)
        self.assertEqual(framer.buffered, 10)
        self.assertEqual(framer.feed(SUBMIT_LIKE[10:]), [SUBMIT_LIKE])
        self.assertFalse(framer.partial)

    def test_empty_feed(self) -> None:
        """Feeding no bytes gives no frames and changes nothing."""
        framer = SMPPFramer(4096)
        self.assertEqual(framer.feed(b""), [])
        framer.feed(ENQUIRE_LINK[:3])
        self.assertEqual(framer.feed(b""), [])
        self.assertEqual(framer.buffered, 3)

    def test_maximum_size_accepted(self) -> None:
        """A PDU of exactly max_pdu_size octets is accepted."""
        framer = SMPPFramer(100)
        pdu = _frame(0x04, 9, b"x" * 84)
        self.assertEqual(framer.feed(pdu), [pdu])

    def test_too_long_with_header(self) -> None:
        """A command_length above the maximum raises ESME_RINVCMDLEN with the frame's sequence number."""
        framer = SMPPFramer(100)
        bad = struct.pack(">IIII", 101, 0x04, 0, 77)
        error = self.assertRaises(FramingError, framer.feed, ENQUIRE_LINK + bad)
        self.assertEqual(error.status, CommandStatus.ESME_RINVCMDLEN)
        self.assertEqual(error.sequence_number, 77)
        self.assertEqual(error.command_length, 101)

    def test_too_short_with_header(self) -> None:
        """A command_length below 16 raises ESME_RINVCMDLEN with the sequence number when present."""
        framer = SMPPFramer(4096)
        bad = struct.pack(">IIII", 12, 0x15, 0, 5)
        error = self.assertRaises(FramingError, framer.feed, bad)
        self.assertEqual((error.status, error.sequence_number), (CommandStatus.ESME_RINVCMDLEN, 5))

    def test_bad_length_without_sequence(self) -> None:
        """A bad command_length seen before byte 16 arrives gives sequence number 0."""
        framer = SMPPFramer(4096)
        error = self.assertRaises(FramingError, framer.feed, b"\x00\x00\x00\x08\x00\x00")
        self.assertEqual((error.status, error.sequence_number), (CommandStatus.ESME_RINVCMDLEN, 0))

    def test_bad_length_byte_by_byte(self) -> None:
        """A zero command_length arriving one byte at a time is rejected as soon as it is complete."""
        framer = SMPPFramer(4096)
        for byte in (b"\x00", b"\x00", b"\x00"):
            self.assertEqual(framer.feed(byte), [])
        error = self.assertRaises(FramingError, framer.feed, b"\x00")
        self.assertEqual(error.sequence_number, 0)

    def test_stream_unusable_after_error(self) -> None:
        """After a bad command_length every later feed raises the same error, even with good PDUs."""
        framer = SMPPFramer(4096)
        first = self.assertRaises(FramingError, framer.feed, b"\xff\xff\xff\xff" + b"\x00" * 12)
        again = self.assertRaises(FramingError, framer.feed, ENQUIRE_LINK)
        self.assertIs(again, first)

    def test_good_frames_before_bad_are_lost_with_error(self) -> None:
        """A chunk holding good PDUs then a bad length raises; the session closes the stream anyway."""
        framer = SMPPFramer(4096)
        self.assertRaises(FramingError, framer.feed, ENQUIRE_LINK + b"\x00\x00\x00\x01")

    def test_max_smaller_than_header_refused(self) -> None:
        """A maximum PDU size below 16 octets is a configuration error."""
        self.assertRaises(ValueError, SMPPFramer, 15)
