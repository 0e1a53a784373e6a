"""
Message text and data_coding: decoding what an ESME sent, encoding what the
SMSC sends, and the provider's per-part length limits.

How each data_coding (SMPP 3.4 section 5.2.19, GSM 03.38 section 4) is read:

============  ==============================================================
0x00          the account's default alphabet: ``latin-1`` (the provider
              documents DCS 0 as a Latin-1-like single-byte alphabet,
              smpp-facts.md A.6) or ``gsm0338`` (unpacked septets)
0x01          IA5/ASCII.  node-smpp sends GSM 03.38 octets under DCS 1
              (smpp-facts.md E), so data holding only printable ASCII, TAB,
              LF and CR is read as ASCII, and anything else as GSM 03.38.
              The two agree on letters and digits; they differ on a few
              symbols (``0x24`` is ``$`` in ASCII, ``¤`` in GSM), where ASCII
              wins.
0x02, 0x04    8-bit binary: no text
0x03          Latin-1 (ISO-8859-1)
0x05          JIS X 0208, read as Shift_JIS (the usual octet form of JIS on
              SMPP)
0x06          ISO-8859-5 (Cyrillic)
0x07          ISO-8859-8 (Hebrew)
0x08          UCS-2, read as UTF-16BE so surrogate pairs (emoji) survive
0x0A          ISO-2022-JP
0x0D          JIS X 0212, read as EUC-JP (whose 0x8F plane is JIS X 0212)
0x0E          KS C 5601, read as EUC-KR
0xC0-0xDF     GSM message waiting indication groups: GSM 7-bit (unpacked)
0xE0-0xEF     GSM message waiting indication, UCS-2 (GSM 03.38)
0xF0-0xFF     GSM message class: 8-bit binary when bit 2 (0x04) is set,
              else GSM 7-bit (unpacked)
others        binary (0x09 pictograms and the reserved values)
============  ==============================================================

Decoding never raises on message data: octets that are not valid in their
coding give ``undecodable=True`` and ``text=None``; the caller keeps the raw
octets.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsc_sim.smpp import gsm0338

#: The values an account's ``default_alphabet`` may take.
DEFAULT_ALPHABETS = ("latin-1", "gsm0338")

# scheme name -> Python codec, for the schemes Python decodes itself
_CODECS = {
    "ascii": "ascii",
    "latin-1": "latin-1",
    "iso8859-5": "iso8859_5",
    "iso8859-8": "iso8859_8",
    "ucs2": "utf-16-be",
    "shift_jis": "shift_jis",
    "iso2022_jp": "iso2022_jp",
    "euc_jp": "euc_jp",
    "euc_kr": "euc_kr",
}

_FIXED = {
    0x01: "ia5",
    0x02: "binary",
    0x03: "latin-1",
    0x04: "binary",
    0x05: "shift_jis",
    0x06: "iso8859-5",
    0x07: "iso8859-8",
    0x08: "ucs2",
    0x0A: "iso2022_jp",
    0x0D: "euc_jp",
    0x0E: "euc_kr",
}

# Octets DCS 1 may hold and still be read as ASCII: printable, TAB, LF, CR.
_ASCII_TEXT = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}

# Which of the provider's three length classes each scheme falls in.  The
# provider puts Latin-1 in the 7-bit class (160/153, "Latin-1/9 and GSM8",
# smpp-facts.md A.6); the other single-byte alphabets follow it, and
# multi-byte codings count octets like binary data.
_CLASS = {
    "gsm0338": "7bit",
    "ia5": "7bit",
    "ascii": "7bit",
    "latin-1": "7bit",
    "iso8859-5": "7bit",
    "iso8859-8": "7bit",
    "ucs2": "ucs2",
    "binary": "8bit",
    "shift_jis": "8bit",
    "iso2022_jp": "8bit",
    "euc_jp": "8bit",
    "euc_kr": "8bit",
}

#: (single message, per part when concatenated) in characters, septets,
#: octets or UTF-16 units, by length class (smpp-facts.md A.6).
LIMITS = {"7bit": (160, 153), "8bit": (140, 134), "ucs2": (70, 67)}


@dataclass(frozen=True, slots=True)
class DecodedText:
    """
    The text of a message, as far as it could be read.

    :ivar text: the text; ``None`` for binary or undecodable data.
    :ivar encoding: the scheme the data was read with: ``gsm0338``,
        ``ascii``, ``latin-1``, ``iso8859-5``, ``iso8859-8``, ``ucs2``,
        ``shift_jis``, ``iso2022_jp``, ``euc_jp``, ``euc_kr`` or ``binary``.
    :ivar undecodable: the data is not valid in its coding.
    :ivar binary: the data_coding says 8-bit data, not text.
    """

    text: str | None
    encoding: str
    undecodable: bool
    binary: bool


def _check_alphabet(default_alphabet: str) -> None:
    if default_alphabet not in DEFAULT_ALPHABETS:
        raise ValueError(f"default_alphabet {default_alphabet!r} is not one of {', '.join(DEFAULT_ALPHABETS)}")


def coding_scheme(data_coding: int, default_alphabet: str = "latin-1") -> str:
    """
    The scheme a data_coding value is read with (see the module table).

    :param data_coding: the PDU's data_coding, 0..255.
    :param default_alphabet: how DCS 0 is read, ``latin-1`` or ``gsm0338``.
    :returns: a scheme name as in :attr:`DecodedText.encoding`, or ``ia5``
        for DCS 1 (ASCII or GSM 03.38, decided by the data).
    :raises ValueError: for a data_coding outside 0..255 or an unknown
        default alphabet.
    """
    _check_alphabet(default_alphabet)
    if not 0 <= data_coding <= 0xFF:
        raise ValueError(f"data_coding {data_coding} is outside 0..255")
    if data_coding == 0x00:
        return default_alphabet
    if data_coding in _FIXED:
        return _FIXED[data_coding]
    if 0xC0 <= data_coding <= 0xDF:
        return "gsm0338"
    if 0xE0 <= data_coding <= 0xEF:
        return "ucs2"
    if data_coding >= 0xF0:
        return "binary" if data_coding & 0x04 else "gsm0338"
    return "binary"


def length_class(data_coding: int) -> str:
    """
    The provider's length class of a data_coding: ``7bit``, ``8bit`` or ``ucs2``.

    :param data_coding: the PDU's data_coding, 0..255.
    """
    # DCS 0 is in the 7-bit class whichever alphabet the account reads it with.
    return _CLASS[coding_scheme(data_coding)]


def max_chars(data_coding: int, concatenated: bool) -> int:
    """
    The provider's limit for one message, or for each part of a concatenated one.

    7-bit 160/153, 8-bit 140/134, UCS-2 70/67 (smpp-facts.md A.6), counted
    as :func:`text_length` counts.

    :param data_coding: the PDU's data_coding.
    :param concatenated: the limit per part of a concatenated message (UDH of
        6 octets) rather than of a single message.
    """
    single, per_part = LIMITS[length_class(data_coding)]
    return per_part if concatenated else single


def _decode_scheme(scheme: str, data: bytes) -> str:
    if scheme == "gsm0338":
        return gsm0338.decode(data)
    return data.decode(_CODECS[scheme])


def decode_text(data_coding: int, data: bytes, default_alphabet: str = "latin-1") -> DecodedText:
    """
    Read the text of a message.

    :param data_coding: the PDU's data_coding.
    :param data: the message octets, without any UDH.
    :param default_alphabet: how DCS 0 is read, ``latin-1`` or ``gsm0338``.
    :returns: the text, or why there is none; never raises on bad data.
    :raises ValueError: only for a data_coding outside 0..255 or an unknown
        default alphabet (programming errors, not message errors).
    """
    scheme = coding_scheme(data_coding, default_alphabet)
    if scheme == "binary":
        return DecodedText(None, "binary", undecodable=False, binary=True)
    if scheme == "ia5":
        if all(octet in _ASCII_TEXT for octet in data):
            return DecodedText(data.decode("ascii"), "ascii", undecodable=False, binary=False)
        try:
            return DecodedText(gsm0338.decode(data), "gsm0338", undecodable=False, binary=False)
        except ValueError:
            return DecodedText(None, "ascii", undecodable=True, binary=False)
    try:
        text = _decode_scheme(scheme, data)
    except ValueError:  # UnicodeDecodeError included
        return DecodedText(None, scheme, undecodable=True, binary=False)
    return DecodedText(text, scheme, undecodable=False, binary=False)


def _encode_scheme(text: str, scheme: str) -> bytes:
    if scheme == "gsm0338":
        return gsm0338.encode(text)
    codec = "ascii" if scheme == "ia5" else _CODECS[scheme]
    try:
        return text.encode(codec)
    except UnicodeEncodeError as e:
        char = text[e.start]
        raise ValueError(f"character {char!r} (U+{ord(char):04X}) at position {e.start} cannot be written in {scheme}") from None


def encode_text(text: str, data_coding: int, default_alphabet: str = "latin-1") -> bytes:
    """
    Write text in a data_coding, for messages the SMSC sends (MO).

    The result always reads back as the same text through
    :func:`decode_text`; text that would not (an ASCII control character
    under DCS 1, which would read as GSM 03.38) is refused.

    :param text: the text.
    :param data_coding: the data_coding to write it in.
    :param default_alphabet: how DCS 0 is written, ``latin-1`` or ``gsm0338``.
    :returns: the message octets.
    :raises ValueError: when the data_coding carries binary data, or the text
        has a character the coding cannot write.
    """
    scheme = coding_scheme(data_coding, default_alphabet)
    if scheme == "binary":
        raise ValueError(f"data_coding 0x{data_coding:02X} carries binary data, not text")
    data = _encode_scheme(text, scheme)
    if decode_text(data_coding, data, default_alphabet).text != text:
        raise ValueError(f"{text!r} does not read back unchanged under data_coding 0x{data_coding:02X} ({scheme})")
    return data


def is_encodable(text: str, data_coding: int, default_alphabet: str = "latin-1") -> bool:
    """
    Whether :func:`encode_text` can write the text in the data_coding.

    :param text: the text.
    :param data_coding: the data_coding.
    :param default_alphabet: how DCS 0 is written.
    """
    try:
        encode_text(text, data_coding, default_alphabet)
    except ValueError:
        return False
    return True


def choose_coding(text: str, default_alphabet: str = "latin-1") -> int:
    """
    The data_coding to send text with: 0 when the default alphabet can carry
    it, else 8 (UCS-2).

    :param text: the text.
    :param default_alphabet: the account's reading of DCS 0.
    """
    return 0 if is_encodable(text, 0, default_alphabet) else 8


def _char_units(char: str, scheme: str) -> int:
    if scheme == "gsm0338":
        return gsm0338.char_septets(char)
    if scheme == "ucs2":
        return 2 if ord(char) > 0xFFFF else 1
    if _CLASS[scheme] == "7bit":
        return 1
    return len(_encode_scheme(char, scheme))


def text_length(text: str, data_coding: int, default_alphabet: str = "latin-1") -> int:
    """
    The length of text as the provider's limits count it.

    Septets for GSM 03.38 (extension characters count 2), characters for the
    single-byte alphabets, UTF-16 units for UCS-2 (an emoji counts 2), octets
    for the multi-byte codings.

    :param text: the text.
    :param data_coding: the data_coding it is written in.
    :param default_alphabet: how DCS 0 is written.
    :raises ValueError: when the coding cannot write the text.
    """
    scheme = coding_scheme(data_coding, default_alphabet)
    if scheme == "binary":
        raise ValueError(f"data_coding 0x{data_coding:02X} carries binary data, not text")
    _encode_scheme(text, scheme)  # refuse text the coding cannot write
    if scheme == "iso2022_jp":
        # stateful: escape sequences make the cost of a character depend on its neighbours
        return len(_encode_scheme(text, scheme))
    return sum(_char_units(char, scheme) for char in text)


def split_text(text: str, data_coding: int, per_part: int, default_alphabet: str = "latin-1") -> list[str]:
    """
    Cut text into pieces of at most ``per_part`` units (as :func:`text_length`
    counts), never inside a character: an escape pair or a surrogate pair
    stays whole.

    :param text: the text.
    :param data_coding: the data_coding it will be written in.
    :param per_part: the most units per piece.
    :param default_alphabet: how DCS 0 is written.
    :returns: at least one piece (``[""]`` for empty text).
    :raises ValueError: when the coding cannot write the text, or
        ``per_part`` is smaller than one character.
    """
    scheme = coding_scheme(data_coding, default_alphabet)
    if scheme == "binary":
        raise ValueError(f"data_coding 0x{data_coding:02X} carries binary data, not text")
    _encode_scheme(text, scheme)  # refuse text the coding cannot write
    pieces: list[str] = []
    start = 0
    used = 0
    for index, char in enumerate(text):
        if scheme == "iso2022_jp":
            cost = len(_encode_scheme(text[start : index + 1], scheme)) - used
        else:
            cost = _char_units(char, scheme)
        if used + cost > per_part:
            if index == start:
                raise ValueError(f"{char!r} alone takes more than {per_part} units")
            pieces.append(text[start:index])
            start = index
            used = 0
            if scheme == "iso2022_jp":
                cost = len(_encode_scheme(char, scheme))
        used += cost
    pieces.append(text[start:])
    return pieces


def count_parts(text: str, data_coding: int, default_alphabet: str = "latin-1") -> int:
    """
    How many messages the provider counts for text: 1 when it fits the
    single-message limit, else the number of concatenated parts.

    :param text: the text.
    :param data_coding: the data_coding it is written in.
    :param default_alphabet: how DCS 0 is written.
    :raises ValueError: when the coding cannot write the text.
    """
    if text_length(text, data_coding, default_alphabet) <= max_chars(data_coding, concatenated=False):
        return 1
    return len(split_text(text, data_coding, max_chars(data_coding, concatenated=True), default_alphabet))
