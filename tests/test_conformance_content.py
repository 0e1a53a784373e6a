"""
The judge's checks on what a submit carries (concatenation, encoding,
destination address), each driven by real submit_sm PDUs on the
in-memory simulator.
"""

from __future__ import annotations

from typing import Any

from tests.conformance_harness import JudgeCase, RawESME


def udh(reference: int, total: int, part: int) -> bytes:
    """The provider's documented 6-octet concatenation UDH (8-bit reference)."""
    return bytes([0x05, 0x00, 0x03, reference, total, part])


class ConcatTests(JudgeCase):
    def send(self, esme: RawESME, short_message: bytes, esm_class: int = 0x40, **fields: Any) -> None:
        esme.submit(text=short_message, esm_class=esm_class, **fields)
        self.smsc.flush()

    def test_parts_with_different_totals_are_flagged(self) -> None:
        """Part 1 says 2 parts, part 2 of the same reference says 3: concat-inconsistent."""
        esme = self.esme()
        self.send(esme, udh(7, 2, 1) + b"a" * 153)
        self.send(esme, udh(7, 3, 2) + b"b" * 10)
        self.leave(esme)
        self.assertEqual(self.codes(), ["concat-inconsistent"])
        self.assertIn("says 3 parts", self.finding("concat-inconsistent").detail)

    def test_parts_split_across_instances_are_flagged(self) -> None:
        """Part 1 through SMPP1 and part 2 through SMPP2: concat-inconsistent (the provider never delivers those)."""
        first, second = self.esme("SMPP1"), self.esme("SMPP2")
        self.send(first, udh(9, 2, 1) + b"a" * 153)
        self.send(second, udh(9, 2, 2) + b"b" * 10)
        self.leave(first)
        self.leave(second)
        self.assertEqual(self.codes(), ["concat-inconsistent"])
        self.assertIn("went to SMPP2", self.finding("concat-inconsistent").detail)

    def test_part_over_the_per_part_limit_is_flagged(self) -> None:
        """A part of 160 Latin-1 characters (limit 153 per part): concat-inconsistent."""
        esme = self.esme()
        self.send(esme, udh(3, 2, 1) + b"a" * 160)
        self.send(esme, udh(3, 2, 2) + b"b" * 10)
        self.leave(esme)
        self.assertEqual(self.codes(), ["concat-inconsistent"])

    def test_long_text_in_one_short_message_is_flagged(self) -> None:
        """200 characters in one short_message with no UDH (a single SMS holds 160): concat-inconsistent."""
        esme = self.esme()
        self.send(esme, b"x" * 200, esm_class=0)
        self.leave(esme)
        self.assertEqual(self.codes(), ["concat-inconsistent"])

    def test_well_formed_concatenation_passes(self) -> None:
        """Two parts (153 + 40 characters, one reference, one instance) and a 160-character single: no finding."""
        esme = self.esme()
        self.send(esme, udh(5, 2, 1) + b"a" * 153)
        self.send(esme, udh(5, 2, 2) + b"b" * 40)
        self.send(esme, b"c" * 160, esm_class=0)
        self.leave(esme)
        self.assertEqual(self.codes(), [])


class EncodingTests(JudgeCase):
    def test_utf8_octets_as_latin1_are_flagged(self) -> None:
        """'héllo wörld' encoded as UTF-8 but sent with data_coding 0 and 3: encoding-suspect."""
        esme = self.esme()
        esme.submit(text="héllo wörld".encode("utf-8"), data_coding=0)
        esme.submit(text="héllo wörld".encode("utf-8"), data_coding=3)
        self.smsc.flush()
        self.leave(esme)
        self.assertEqual(self.codes(), ["encoding-suspect"])
        self.assertEqual(self.finding("encoding-suspect").count, 2)

    def test_odd_length_ucs2_is_flagged(self) -> None:
        """data_coding 8 (UCS-2) with 5 octets: encoding-suspect."""
        esme = self.esme()
        esme.submit(text=b"\x00h\x00i\x00", data_coding=8)
        self.smsc.flush()
        self.leave(esme)
        self.assertEqual(self.codes(), ["encoding-suspect"])

    def test_proper_encodings_pass(self) -> None:
        """Latin-1 octets with data_coding 3 and UTF-16BE with data_coding 8: no finding."""
        esme = self.esme()
        esme.submit(text="héllo wörld".encode("latin-1"), data_coding=3)
        esme.submit(text="你好".encode("utf-16-be"), data_coding=8)
        self.smsc.flush()
        self.leave(esme)
        self.assertEqual(self.codes(), [])


class AddressTests(JudgeCase):
    def test_badly_formatted_destinations_are_flagged(self) -> None:
        """'+44...', '0044...', TON 0 and letters as destination: address-format, once per submit."""
        esme = self.esme()
        esme.submit(destination="+447700900002")
        esme.submit(destination="00447700900002")
        esme.submit(destination="447700900002", dest_ton=0)
        esme.submit(destination="4477OO900002")
        self.smsc.flush()
        self.leave(esme)
        self.assertEqual(self.codes(), ["address-format"])
        finding = self.finding("address-format")
        self.assertEqual(finding.count, 4)
        self.assertIn("leading '+'", finding.detail)

    def test_international_digits_with_ton_1_pass(self) -> None:
        """'447700900002' with TON 1: no finding."""
        esme = self.esme()
        esme.submit(destination="447700900002", dest_ton=1)
        self.smsc.flush()
        self.leave(esme)
        self.assertEqual(self.codes(), [])
