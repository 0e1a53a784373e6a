"""Tests for smsc_sim.smpp.concat: concatenated message parts in and out."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp.concat import (
    ConcatError,
    ConcatInfo,
    Segment,
    concat_info,
    join_parts,
    payload_of,
    split_for_mo,
    split_udh,
)
from smsc_sim.smpp.constants import CommandStatus
from smsc_sim.smpp.text import decode_text, length_class
from tests.test_text import coded_text

UDHI = 0x40
SAR_REF, SAR_TOTAL, SAR_SEQ, PAYLOAD = 0x020C, 0x020E, 0x020F, 0x0424


def _sar(reference: bytes, total: bytes, seqnum: bytes) -> dict[int, bytes]:
    """SAR TLVs from raw values."""
    return {SAR_REF: reference, SAR_TOTAL: total, SAR_SEQ: seqnum}


class ConcatInfoTests(SynchronousTestCase):
    """Reading the part information of a submitted message."""

    def test_provider_udh_example(self) -> None:
        """The provider's documented UDH 05 00 03 05 02 01 is part 1 of 2, reference 5."""
        message = bytes.fromhex("050003050201") + b"hello"
        self.assertEqual(concat_info(UDHI, message, {}), ConcatInfo(5, 2, 1, "udh8"))
        self.assertEqual(split_udh(UDHI, message), (bytes.fromhex("050003050201"), b"hello"))

    def test_udh16(self) -> None:
        """IEI 0x08 carries a 16-bit reference."""
        message = bytes.fromhex("06080412340302") + b"x"
        self.assertEqual(concat_info(UDHI, message, {}), ConcatInfo(0x1234, 3, 2, "udh16"))

    def test_other_elements_tolerated(self) -> None:
        """Other information elements (here application ports) around the concatenation element are skipped."""
        message = bytes.fromhex("0b05040b8423f00003aa0201") + b"wap"
        self.assertEqual(concat_info(UDHI, message, {}), ConcatInfo(0xAA, 2, 1, "udh8"))
        self.assertEqual(payload_of(UDHI, message, {}), b"wap")

    def test_no_udhi_means_no_udh(self) -> None:
        """Without UDHI in esm_class, octets that look like a UDH are plain text."""
        message = bytes.fromhex("050003050201") + b"hello"
        self.assertIsNone(concat_info(0, message, {}))
        self.assertEqual(split_udh(0, message), (b"", message))

    def test_udh_without_concatenation(self) -> None:
        """A UDH with no concatenation element marks no part."""
        self.assertIsNone(concat_info(UDHI, bytes.fromhex("0605040b8423f0") + b"x", {}))
        self.assertIsNone(concat_info(UDHI, b"\x00abc", {}))

    def test_elements_to_ignore(self) -> None:
        """A concatenation element with total 0, part 0 or part past the total is ignored (GSM 03.40)."""
        for element in ("050003050000", "050003050200", "050003050203"):
            self.assertIsNone(concat_info(UDHI, bytes.fromhex(element) + b"x", {}))

    def test_udh_in_message_payload(self) -> None:
        """With an empty short_message, the UDH is read from message_payload."""
        tlvs = {PAYLOAD: bytes.fromhex("050003090303") + b"end"}
        self.assertEqual(concat_info(UDHI, b"", tlvs), ConcatInfo(9, 3, 3, "udh8"))
        self.assertEqual(payload_of(UDHI, b"", tlvs), b"end")

    def test_udh_length_past_end(self) -> None:
        """A UDH length running past the message is answered with ESME_RINVMSGLEN."""
        with self.assertRaises(ConcatError) as caught:
            concat_info(UDHI, bytes.fromhex("0500030502"), {})
        self.assertEqual(caught.exception.status, CommandStatus.ESME_RINVMSGLEN)
        self.assertIsInstance(caught.exception, ValueError)

    def test_element_past_udh_end(self) -> None:
        """An information element longer than its UDH is answered with ESME_RINVESMCLASS."""
        with self.assertRaises(ConcatError) as caught:
            concat_info(UDHI, bytes.fromhex("03000305") + b"abcdef", {})
        self.assertEqual(caught.exception.status, CommandStatus.ESME_RINVESMCLASS)
        with self.assertRaises(ConcatError) as caught:
            concat_info(UDHI, bytes.fromhex("0100") + b"abc", {})
        self.assertEqual(caught.exception.status, CommandStatus.ESME_RINVESMCLASS)

    def test_udhi_on_empty_message(self) -> None:
        """UDHI set on a message with no octets at all is answered with ESME_RINVESMCLASS."""
        with self.assertRaises(ConcatError) as caught:
            concat_info(UDHI, b"", {})
        self.assertEqual(caught.exception.status, CommandStatus.ESME_RINVESMCLASS)

    def test_sar(self) -> None:
        """The three SAR TLVs give a 16-bit reference, the total and the part number."""
        info = concat_info(0, b"text", _sar(b"\x01\x02", b"\x03", b"\x01"))
        self.assertEqual(info, ConcatInfo(0x0102, 3, 1, "sar"))

    def test_sar_incomplete(self) -> None:
        """SAR TLVs without all three members are answered with ESME_RMISSINGOPTPARAM."""
        with self.assertRaises(ConcatError) as caught:
            concat_info(0, b"text", {SAR_REF: b"\x00\x01", SAR_TOTAL: b"\x02"})
        self.assertEqual(caught.exception.status, CommandStatus.ESME_RMISSINGOPTPARAM)
        self.assertIn("sar_segment_seqnum", str(caught.exception))

    def test_sar_wrong_length(self) -> None:
        """A SAR TLV of the wrong size is answered with ESME_RINVPARLEN."""
        with self.assertRaises(ConcatError) as caught:
            concat_info(0, b"text", _sar(b"\x01", b"\x02", b"\x01"))
        self.assertEqual(caught.exception.status, CommandStatus.ESME_RINVPARLEN)

    def test_sar_out_of_range(self) -> None:
        """A SAR part number of 0 or past the total is answered with ESME_RINVOPTPARAMVAL."""
        for total, seqnum in ((b"\x02", b"\x03"), (b"\x00", b"\x00"), (b"\x02", b"\x00")):
            with self.assertRaises(ConcatError) as caught:
                concat_info(0, b"text", _sar(b"\x00\x01", total, seqnum))
            self.assertEqual(caught.exception.status, CommandStatus.ESME_RINVOPTPARAMVAL)

    def test_udh_wins_over_sar(self) -> None:
        """When both a UDH concatenation element and SAR TLVs are present, the UDH counts."""
        message = bytes.fromhex("050003070201") + b"x"
        self.assertEqual(concat_info(UDHI, message, _sar(b"\x00\x09", b"\x05", b"\x05")), ConcatInfo(7, 2, 1, "udh8"))


class JoinPartsTests(SynchronousTestCase):
    """Putting the parts of one message together."""

    def test_parts_in_any_order(self) -> None:
        """Parts are joined in part order whatever order they are given in."""
        parts = [(ConcatInfo(1, 3, 3, "udh8"), b"c"), (ConcatInfo(1, 3, 1, "udh8"), b"a"), (ConcatInfo(1, 3, 2, "udh8"), b"b")]
        self.assertEqual(join_parts(parts), b"abc")

    def test_missing_or_duplicate_part(self) -> None:
        """A missing or repeated part is refused."""
        self.assertRaises(ValueError, join_parts, [(ConcatInfo(1, 2, 1, "udh8"), b"a")])
        self.assertRaises(ValueError, join_parts, [(ConcatInfo(1, 2, 1, "udh8"), b"a")] * 2)
        self.assertRaises(ValueError, join_parts, [])

    def test_mixed_messages(self) -> None:
        """Parts of different references or kinds are refused."""
        self.assertRaises(ValueError, join_parts, [(ConcatInfo(1, 2, 1, "udh8"), b"a"), (ConcatInfo(2, 2, 2, "udh8"), b"b")])
        self.assertRaises(ValueError, join_parts, [(ConcatInfo(1, 2, 1, "udh8"), b"a"), (ConcatInfo(1, 2, 2, "sar"), b"b")])


class SplitForMOTests(SynchronousTestCase):
    """Cutting a message the SMSC sends into parts."""

    def test_short_message_not_split(self) -> None:
        """Text within the single-message limit is one segment without UDH or TLV, in every mode."""
        for mode in ("udh8", "udh16", "sar", "payload"):
            self.assertEqual(split_for_mo("a" * 160, 0, mode, 1), [Segment(0, b"a" * 160, {})])

    def test_udh8_parts(self) -> None:
        """161 characters become 153 + 8, each with the provider's 6-octet UDH and UDHI."""
        segments = split_for_mo("a" * 161, 0, "udh8", 0x1FF)
        self.assertEqual(
            segments,
            [Segment(UDHI, bytes.fromhex("050003ff0201") + b"a" * 153), Segment(UDHI, bytes.fromhex("050003ff0202") + b"a" * 8)],
        )

    def test_udh16_parts(self) -> None:
        """With a 16-bit reference the UDH is 7 octets and parts carry one character less."""
        segments = split_for_mo("a" * 161, 0, "udh16", 0x12345)
        self.assertEqual(segments[0].short_message, bytes.fromhex("06080423450201") + b"a" * 152)
        self.assertEqual(segments[1].short_message, bytes.fromhex("06080423450202") + b"a" * 9)

    def test_sar_parts(self) -> None:
        """SAR parts carry the three TLVs and no UDH."""
        segments = split_for_mo("ж" * 71, 8, "sar", 0x0102)
        self.assertEqual(segments[0], Segment(0, "ж".encode("utf-16-be") * 67, _sar(b"\x01\x02", b"\x02", b"\x01")))
        self.assertEqual(segments[1], Segment(0, "ж".encode("utf-16-be") * 4, _sar(b"\x01\x02", b"\x02", b"\x02")))

    def test_payload_mode(self) -> None:
        """In payload mode a long text goes whole into message_payload with an empty short_message."""
        self.assertEqual(split_for_mo("a" * 300, 3, "payload", 1), [Segment(0, b"", {PAYLOAD: b"a" * 300})])

    def test_escape_not_cut(self) -> None:
        """A GSM extension character that would straddle two parts moves whole to the next one."""
        segments = split_for_mo("a" * 152 + "€" + "b" * 10, 0, "udh8", 1, "gsm0338")
        self.assertEqual(segments[0].short_message[6:], b"a" * 152)
        self.assertEqual(segments[1].short_message[6:], b"\x1b\x65" + b"b" * 10)

    def test_emoji_not_cut(self) -> None:
        """A UCS-2 surrogate pair that would straddle two parts moves whole to the next one."""
        segments = split_for_mo("a" * 66 + "😀" * 3, 8, "udh8", 1)
        self.assertEqual(len(segments[0].short_message), 6 + 132)
        self.assertEqual(decode_text(8, segments[1].short_message[6:]).text, "😀" * 3)

    def test_limits(self) -> None:
        """More than 255 parts, an unknown mode or text the coding lacks are refused."""
        self.assertRaises(ValueError, split_for_mo, "a" * 153 * 256, 0, "udh8", 1)
        self.assertRaises(ValueError, split_for_mo, "a" * 200, 0, "udh32", 1)
        self.assertRaises(ValueError, split_for_mo, "€" * 200, 3, "udh8", 1)

    @given(coded_text(max_size=700), st.sampled_from(["udh8", "udh16", "sar", "payload"]), st.integers(0, 0xFFFF))
    @settings(deadline=None, max_examples=300)
    def test_round_trip(self, case: tuple[int, str, str], mode: str, reference: int) -> None:
        """Parts made by split_for_mo, read back with concat_info and joined, give the original text."""
        data_coding, alphabet, text = case
        segments = split_for_mo(text, data_coding, mode, reference, alphabet)
        infos = [concat_info(segment.esm_class, segment.short_message, segment.tlvs) for segment in segments]
        payloads = [payload_of(segment.esm_class, segment.short_message, segment.tlvs) for segment in segments]
        if len(segments) == 1:
            self.assertIsNone(infos[0])
            data = payloads[0]
        else:
            parts = []
            for info, payload in zip(infos, payloads):
                assert info is not None
                self.assertEqual(info.kind, mode)
                self.assertLessEqual(len(payload), 153 if length_class(data_coding) == "7bit" else 134)
                parts.append((info, payload))
            data = join_parts(parts)
            event("multi-part")
        self.assertEqual(decode_text(data_coding, data, alphabet).text, text)
