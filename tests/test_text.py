"""Tests for smsc_sim.smpp.text: data_coding, message text and the provider's length limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp import gsm0338
from smsc_sim.smpp.text import (
    DecodedText,
    choose_coding,
    coding_scheme,
    count_parts,
    decode_text,
    encode_text,
    is_encodable,
    max_chars,
    split_text,
    text_length,
)

# Characters tried when building the alphabet of the multi-byte codings.
_CANDIDATES = [
    chr(code)
    for block in (
        range(0x20, 0x7F),
        range(0xA0, 0x180),
        range(0x370, 0x460),
        range(0x3000, 0x3100),
        range(0x4E00, 0x5400),
        range(0xAC00, 0xAE00),
        range(0xFF00, 0xFF60),
    )
    for code in block
]


def _alphabet(data_coding: int, candidates: list[str]) -> list[str]:
    """The candidates that data_coding can write, one by one."""
    return [char for char in candidates if is_encodable(char, data_coding)]


def _single_byte(codec: str) -> list[str]:
    """Every character a single-byte codec can decode."""
    chars = []
    for octet in range(256):
        try:
            chars.append(bytes([octet]).decode(codec))
        except UnicodeDecodeError:
            pass
    return chars


_GSM = sorted(gsm0338.ALPHABET)
_LATIN1 = [chr(code) for code in range(256)]
_ASCII = [chr(code) for code in range(0x20, 0x7F)] + ["\t", "\n", "\r"]

#: (data_coding, default_alphabet, characters that coding carries)
CODINGS: list[tuple[int, str, list[str]]] = [
    (0x00, "latin-1", _LATIN1),
    (0x00, "gsm0338", _GSM),
    (0x01, "latin-1", _ASCII),
    (0x03, "latin-1", _LATIN1),
    (0x05, "latin-1", _alphabet(0x05, _CANDIDATES)),
    (0x06, "latin-1", _single_byte("iso8859_5")),
    (0x07, "latin-1", _single_byte("iso8859_8")),
    (0x0A, "latin-1", _alphabet(0x0A, _CANDIDATES)),
    (0x0D, "latin-1", _alphabet(0x0D, _CANDIDATES)),
    (0x0E, "latin-1", _alphabet(0x0E, _CANDIDATES)),
    (0xC0, "latin-1", _GSM),
    (0xF1, "latin-1", _GSM),
]
_UCS2_CODINGS = (0x08, 0xE0)


@st.composite
def coded_text(draw: st.DrawFn, max_size: int = 200) -> tuple[int, str, str]:
    """A data_coding, a default alphabet and text that coding can carry (UCS-2 included)."""
    index = draw(st.integers(0, len(CODINGS) + len(_UCS2_CODINGS) - 1))
    # an explicit length, so long (multi-part) texts are as likely as short ones
    size = draw(st.integers(0, max_size))
    if index >= len(CODINGS):
        ucs2 = st.characters(codec="utf-8")  # every code point but surrogates
        return _UCS2_CODINGS[index - len(CODINGS)], "latin-1", draw(st.text(ucs2, min_size=size, max_size=size))
    data_coding, alphabet, chars = CODINGS[index]
    return data_coding, alphabet, draw(st.text(st.sampled_from(chars), min_size=size, max_size=size))


class DecodeTextTests(SynchronousTestCase):
    """What the SMSC reads from each data_coding."""

    def test_dcs0_is_latin1_by_default(self) -> None:
        """DCS 0 reads as Latin-1, the provider's documented default alphabet."""
        self.assertEqual(decode_text(0, b"caf\xe9"), DecodedText("café", "latin-1", False, False))

    def test_dcs0_as_gsm(self) -> None:
        """An account reading DCS 0 as GSM 03.38 sees 0x00 as '@' and escapes as extension characters."""
        self.assertEqual(decode_text(0, b"a\x00b \x1b\x65", "gsm0338").text, "a@b €")

    def test_dcs0_gsm_undecodable(self) -> None:
        """DCS 0 read as GSM 03.38 with an octet over 0x7F is undecodable, not an error."""
        self.assertEqual(decode_text(0, b"\xe9", "gsm0338"), DecodedText(None, "gsm0338", True, False))

    def test_dcs1_plain_ascii(self) -> None:
        """DCS 1 data of printable ASCII reads as ASCII ('$' is '$', '@' is '@')."""
        self.assertEqual(decode_text(1, b"a@b $5\r\n"), DecodedText("a@b $5\r\n", "ascii", False, False))

    def test_dcs1_gsm_bytes_from_node_smpp(self) -> None:
        """DCS 1 data holding GSM 03.38 control-range octets (node-smpp) reads as GSM 03.38."""
        self.assertEqual(decode_text(1, b"a\x00b \x02 \x1b\x65"), DecodedText("a@b $ €", "gsm0338", False, False))

    def test_dcs1_high_octet_undecodable(self) -> None:
        """DCS 1 data with an octet over 0x7F is neither ASCII nor GSM 03.38: undecodable."""
        self.assertEqual(decode_text(1, b"caf\xe9"), DecodedText(None, "ascii", True, False))

    def test_binary_codings(self) -> None:
        """DCS 2, 4, 9, reserved values and GSM class with the 8-bit bit carry binary data, no text."""
        for data_coding in (0x02, 0x04, 0x09, 0x0B, 0x0C, 0x0F, 0x10, 0xBF, 0xF4, 0xF5, 0xF7, 0xFC, 0xFF):
            self.assertEqual(decode_text(data_coding, b"\x00\xff"), DecodedText(None, "binary", False, True))

    def test_single_byte_alphabets(self) -> None:
        """DCS 3, 6 and 7 read as Latin-1, Cyrillic and Hebrew."""
        self.assertEqual(decode_text(3, b"\xe0 bient\xf4t").text, "à bientôt")
        self.assertEqual(decode_text(6, "Привет".encode("iso8859_5")).text, "Привет")
        self.assertEqual(decode_text(7, "שלום".encode("iso8859_8")).text, "שלום")

    def test_hebrew_undefined_octet(self) -> None:
        """An octet ISO-8859-8 leaves undefined makes DCS 7 data undecodable."""
        self.assertTrue(decode_text(7, b"\xa1").undecodable)

    def test_cjk_codings(self) -> None:
        """DCS 5 reads as Shift_JIS, 0x0A as ISO-2022-JP, 0x0D as EUC-JP and 0x0E as EUC-KR."""
        self.assertEqual(decode_text(5, "日本語".encode("shift_jis")), DecodedText("日本語", "shift_jis", False, False))
        self.assertEqual(decode_text(0x0A, "日本語".encode("iso2022_jp")).text, "日本語")
        self.assertEqual(decode_text(0x0D, "日本語".encode("euc_jp")).text, "日本語")
        self.assertEqual(decode_text(0x0E, "한국어".encode("euc_kr")).text, "한국어")

    def test_ucs2_keeps_emoji(self) -> None:
        """DCS 8 reads surrogate pairs as one character, so emoji survive."""
        self.assertEqual(decode_text(8, b"\x00h\x00i\xd8\x3d\xde\x00"), DecodedText("hi😀", "ucs2", False, False))

    def test_ucs2_odd_length_or_lone_surrogate(self) -> None:
        """UCS-2 data of odd length, or with a lone surrogate, is undecodable."""
        self.assertEqual(decode_text(8, b"\x00h\x00"), DecodedText(None, "ucs2", True, False))
        self.assertTrue(decode_text(8, b"\xd8\x3d\x00a").undecodable)

    def test_gsm_message_class_and_mwi_groups(self) -> None:
        """GSM class values without the 8-bit bit and MWI groups read as GSM 7-bit; 0xE0-0xEF as UCS-2."""
        for data_coding in (0xF0, 0xF1, 0xF2, 0xF3, 0xF8, 0xC0, 0xCF, 0xD0, 0xDF):
            self.assertEqual(decode_text(data_coding, b"\x00\x1b\x65").text, "@€")
        self.assertEqual(decode_text(0xE0, b"\x04\x1f").text, "П")

    def test_empty_message(self) -> None:
        """An empty short_message is empty text in every text coding."""
        self.assertEqual(decode_text(8, b"").text, "")
        self.assertEqual(decode_text(1, b"").text, "")

    def test_bad_arguments_raise(self) -> None:
        """A data_coding outside 0..255 or an unknown default alphabet is a programming error."""
        self.assertRaises(ValueError, decode_text, 256, b"")
        self.assertRaises(ValueError, decode_text, -1, b"")
        self.assertRaises(ValueError, decode_text, 0, b"", "utf-8")

    @given(st.integers(0, 255), st.binary(max_size=200), st.sampled_from(["latin-1", "gsm0338"]))
    @settings(deadline=None)
    def test_never_raises_on_data(self, data_coding: int, data: bytes, alphabet: str) -> None:
        """Any octets under any data_coding decode without raising; no text means binary or undecodable."""
        decoded = decode_text(data_coding, data, alphabet)
        self.assertEqual(decoded.text is None, decoded.binary or decoded.undecodable)


class EncodeTextTests(SynchronousTestCase):
    """Writing text for messages the SMSC sends."""

    def test_encodings(self) -> None:
        """Text is written in the data_coding's alphabet."""
        self.assertEqual(encode_text("café", 0), b"caf\xe9")
        self.assertEqual(encode_text("a@€", 0, "gsm0338"), b"a\x00\x1b\x65")
        self.assertEqual(encode_text("hi😀", 8), b"\x00h\x00i\xd8\x3d\xde\x00")
        self.assertEqual(encode_text("Привет", 6), "Привет".encode("iso8859_5"))

    def test_binary_coding_refused(self) -> None:
        """Text cannot be written under a binary data_coding."""
        self.assertRaises(ValueError, encode_text, "hi", 4)
        self.assertRaises(ValueError, encode_text, "hi", 0xF6)

    def test_unwritable_character_named(self) -> None:
        """A character the coding lacks raises ValueError naming it."""
        with self.assertRaises(ValueError) as caught:
            encode_text("a€", 3)
        self.assertIn("U+20AC", str(caught.exception))

    def test_dcs1_control_character_refused(self) -> None:
        """DCS 1 refuses an ASCII control character, which would read back as GSM 03.38."""
        self.assertRaises(ValueError, encode_text, "a\x01", 1)
        self.assertEqual(encode_text("a\tb\r\n", 1), b"a\tb\r\n")

    def test_ucs2_refuses_lone_surrogate(self) -> None:
        """A lone surrogate cannot be written as UCS-2."""
        self.assertRaises(ValueError, encode_text, "a\ud83d", 8)

    def test_choose_coding(self) -> None:
        """choose_coding picks 0 when the default alphabet carries the text, else 8."""
        self.assertEqual(choose_coding("Hello"), 0)
        self.assertEqual(choose_coding("café"), 0)
        self.assertEqual(choose_coding("€5"), 8)
        self.assertEqual(choose_coding("€5", "gsm0338"), 0)
        self.assertEqual(choose_coding("Привет", "gsm0338"), 8)
        self.assertEqual(choose_coding("😀"), 8)

    def test_coding_scheme(self) -> None:
        """coding_scheme names how a data_coding is read."""
        self.assertEqual(coding_scheme(0), "latin-1")
        self.assertEqual(coding_scheme(0, "gsm0338"), "gsm0338")
        self.assertEqual(coding_scheme(1), "ia5")
        self.assertEqual(coding_scheme(0xE5), "ucs2")

    @given(coded_text())
    @settings(deadline=None, max_examples=300)
    def test_round_trip(self, case: tuple[int, str, str]) -> None:
        """Text within a coding's alphabet is written and read back unchanged, for every coding."""
        data_coding, alphabet, text = case
        decoded = decode_text(data_coding, encode_text(text, data_coding, alphabet), alphabet)
        self.assertEqual(decoded.text, text)
        self.assertFalse(decoded.undecodable)


class LimitTests(SynchronousTestCase):
    """The provider's per-message and per-part limits."""

    def test_max_chars(self) -> None:
        """7-bit 160/153, 8-bit 140/134, UCS-2 70/67."""
        for data_coding in (0, 1, 3, 6, 7, 0xF0, 0xC0):
            self.assertEqual((max_chars(data_coding, False), max_chars(data_coding, True)), (160, 153))
        for data_coding in (2, 4, 5, 0x0A, 0x0D, 0x0E, 0xF4):
            self.assertEqual((max_chars(data_coding, False), max_chars(data_coding, True)), (140, 134))
        for data_coding in (8, 0xE0):
            self.assertEqual((max_chars(data_coding, False), max_chars(data_coding, True)), (70, 67))

    def test_text_length_units(self) -> None:
        """GSM extension characters count 2 septets; an emoji counts 2 UCS-2 units; CJK counts octets."""
        self.assertEqual(text_length("a€", 0, "gsm0338"), 3)
        self.assertEqual(text_length("a€", 8), 2)
        self.assertEqual(text_length("a😀", 8), 3)
        self.assertEqual(text_length("日本", 5), 4)
        self.assertRaises(ValueError, text_length, "€", 3)

    def test_count_parts(self) -> None:
        """A message is one part up to the single limit, then ceil(length / per-part limit)."""
        self.assertEqual(count_parts("a" * 160, 0), 1)
        self.assertEqual(count_parts("a" * 161, 0), 2)
        self.assertEqual(count_parts("a" * 306, 0), 2)
        self.assertEqual(count_parts("a" * 307, 0), 3)
        self.assertEqual(count_parts("ж" * 70, 8), 1)
        self.assertEqual(count_parts("ж" * 71, 8), 2)
        self.assertEqual(count_parts("€" * 80, 0, "gsm0338"), 1)
        self.assertEqual(count_parts("€" * 81, 0, "gsm0338"), 2)

    def test_split_keeps_characters_whole(self) -> None:
        """A split never cuts an escape pair or a surrogate pair."""
        self.assertEqual(split_text("a" * 152 + "€b", 0, 153, "gsm0338"), ["a" * 152, "€b"])
        self.assertEqual(split_text("a" * 66 + "😀b", 8, 67), ["a" * 66, "😀b"])
        self.assertEqual(split_text("", 8, 67), [""])
