"""Tests for smsc_sim.smpp.gsm0338: the GSM 03.38 default alphabet as SMPP carries it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp import gsm0338

gsm_text = st.text(alphabet=st.sampled_from(sorted(gsm0338.ALPHABET)), max_size=300)


class EncodeTests(SynchronousTestCase):
    """Text to unpacked septets."""

    def test_default_alphabet_octets(self) -> None:
        """Characters of the default alphabet become their septet, one per octet (``@`` is 0x00)."""
        self.assertEqual(gsm0338.encode("@£$¥"), b"\x00\x01\x02\x03")
        self.assertEqual(gsm0338.encode("ΔΞ¡¿à"), b"\x10\x1a\x40\x60\x7f")
        self.assertEqual(gsm0338.encode("Hi!\n"), b"Hi!\n")

    def test_extension_characters_are_escaped(self) -> None:
        """Extension-table characters are written as 0x1B followed by their code."""
        self.assertEqual(gsm0338.encode("€"), b"\x1b\x65")
        self.assertEqual(
            gsm0338.encode("[]{}\\~^|\f"),
            b"\x1b\x3c\x1b\x3e\x1b\x28\x1b\x29\x1b\x2f\x1b\x3d\x1b\x14\x1b\x40\x1b\x0a",
        )

    def test_unencodable_character_is_named(self) -> None:
        """A character outside GSM 03.38 raises ValueError naming it and its position."""
        with self.assertRaises(ValueError) as caught:
            gsm0338.encode("abж")
        self.assertIn("U+0436", str(caught.exception))
        self.assertIn("position 2", str(caught.exception))

    def test_replace_option(self) -> None:
        """With ``replace``, characters outside GSM 03.38 are written as the replacement."""
        self.assertEqual(gsm0338.encode("aжb😀", replace="?"), b"a?b?")
        self.assertEqual(gsm0338.encode("aж", replace="€"), b"a\x1b\x65")

    def test_replacement_must_be_gsm(self) -> None:
        """A replacement that is itself not a GSM character is refused."""
        self.assertRaises(ValueError, gsm0338.encode, "a", replace="ж")


class DecodeTests(SynchronousTestCase):
    """Unpacked septets to text."""

    def test_every_septet_decodes(self) -> None:
        """The 127 septets other than the escape decode to 127 distinct characters."""
        septets = bytes(code for code in range(128) if code != 0x1B)
        text = gsm0338.decode(septets)
        self.assertEqual(len(text), 127)
        self.assertEqual(len(set(text)), 127)
        self.assertEqual(text[0], "@")

    def test_extension_decodes(self) -> None:
        """0x1B 0x65 reads as the euro sign."""
        self.assertEqual(gsm0338.decode(b"5\x1b\x65"), "5€")

    def test_strict_rejects_high_octet(self) -> None:
        """An octet of 0x80 or more is not a septet: strict decoding raises."""
        self.assertRaises(ValueError, gsm0338.decode, b"ab\x80")

    def test_strict_rejects_trailing_escape(self) -> None:
        """An escape as the last octet raises in strict mode."""
        self.assertRaises(ValueError, gsm0338.decode, b"ab\x1b")

    def test_strict_rejects_unknown_extension(self) -> None:
        """An escape followed by a code the extension table lacks raises in strict mode."""
        self.assertRaises(ValueError, gsm0338.decode, b"\x1b\x41")

    def test_lenient_decoding(self) -> None:
        """Without strict, bad octets read as '?' and unknown escapes as GSM 03.38 says to show them."""
        self.assertEqual(gsm0338.decode(b"a\x80b", strict=False), "a?b")
        self.assertEqual(gsm0338.decode(b"\x1b\x41", strict=False), "A")
        self.assertEqual(gsm0338.decode(b"\x1b\x1b", strict=False), " ")
        self.assertEqual(gsm0338.decode(b"a\x1b", strict=False), "a?")

    @given(st.binary(max_size=300))
    @settings(deadline=None)
    def test_lenient_never_raises(self, data: bytes) -> None:
        """Lenient decoding of any octets returns text and never raises."""
        self.assertIsInstance(gsm0338.decode(data, strict=False), str)


class LengthTests(SynchronousTestCase):
    """Septet counting and encodability."""

    def test_septet_length_counts_escapes_twice(self) -> None:
        """An extension character counts two septets, others one."""
        self.assertEqual(gsm0338.septet_length("€a["), 5)
        self.assertEqual(gsm0338.septet_length(""), 0)

    def test_septet_length_refuses_unencodable(self) -> None:
        """Counting the septets of text GSM 03.38 cannot carry raises ValueError."""
        self.assertRaises(ValueError, gsm0338.septet_length, "日本")

    def test_is_encodable(self) -> None:
        """is_encodable says whether every character has a GSM 03.38 code."""
        self.assertTrue(gsm0338.is_encodable("Hello €{}@"))
        self.assertFalse(gsm0338.is_encodable("Привет"))
        self.assertFalse(gsm0338.is_encodable("ç"))  # only capital Ç is in the table

    @given(gsm_text)
    @settings(deadline=None)
    def test_round_trip(self, text: str) -> None:
        """Any GSM 03.38 text encodes to septet_length octets and decodes back unchanged."""
        data = gsm0338.encode(text)
        self.assertEqual(len(data), gsm0338.septet_length(text))
        self.assertEqual(gsm0338.decode(data), text)
