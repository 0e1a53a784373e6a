"""
The GSM 03.38 default alphabet and its extension table, as SMPP carries them.

SMPP puts GSM 7-bit text in ``short_message`` *unpacked*: one septet per
octet, high bit clear.  Characters of the extension table take two octets,
the escape ``0x1B`` and the character's code (``€`` is ``1B 65``).  Packed
7-bit (the air-interface form) never appears on SMPP, so it is not here.

smpp.pdu3 has no GSM codec (smpp-facts.md C.2 #12), and clients such as
smpplib and node-smpp send these octets (``@`` is ``0x00``), so the
simulator needs its own.
"""

from __future__ import annotations

#: The escape octet that introduces a character of the extension table.
ESCAPE = 0x1B

# The default alphabet, indexed by septet.  0x1B is the escape and has no
# character of its own; it holds a placeholder that encode never looks up.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128

#: septet -> character of the default alphabet (the escape excluded)
DECODE_BASIC: dict[int, str] = {code: char for code, char in enumerate(_BASIC) if code != ESCAPE}

#: code after the escape -> character of the extension table
DECODE_EXTENSION: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_ENCODE: dict[str, bytes] = {char: bytes([code]) for code, char in DECODE_BASIC.items()}
_ENCODE.update({char: bytes([ESCAPE, code]) for code, char in DECODE_EXTENSION.items()})

#: Characters that take two septets (escape + code).
EXTENSION_CHARS = frozenset(DECODE_EXTENSION.values())


def _unencodable(text: str, index: int) -> ValueError:
    char = text[index]
    return ValueError(
        f"character {char!r} (U+{ord(char):04X}) at position {index} is not in the "
        "GSM 03.38 default alphabet or its extension table"
    )


def encode(text: str, replace: str | None = None) -> bytes:
    """
    Encode text as unpacked GSM 03.38 septets, one per octet.

    :param text: the text.
    :param replace: a character of the default alphabet to write in place of
        each character that has no GSM 03.38 code; ``None`` (the default)
        raises instead.
    :returns: the octets, extension characters as ``0x1B`` + code.
    :raises ValueError: for a character with no code (when ``replace`` is
        ``None``), or when ``replace`` itself has no code.
    """
    substitute = b""
    if replace is not None:
        if replace not in _ENCODE:
            raise ValueError(f"replacement {replace!r} is not a GSM 03.38 character")
        substitute = _ENCODE[replace]
    out = bytearray()
    for index, char in enumerate(text):
        code = _ENCODE.get(char)
        if code is None:
            if replace is None:
                raise _unencodable(text, index)
            code = substitute
        out += code
    return bytes(out)


def decode(data: bytes, strict: bool = True) -> str:
    """
    Decode unpacked GSM 03.38 septets.

    With ``strict`` false this never raises, and follows GSM 03.38 where it
    says what a receiver shows: an escape followed by a code the extension
    table lacks shows that code's default-alphabet character, a doubled
    escape (reserved for a further table) shows a space.  Octets with the
    high bit set, which unpacked septets cannot hold, and a trailing lone
    escape become ``?``.

    :param data: the octets.
    :param strict: raise on anything that is not well-formed GSM 03.38.
    :returns: the text.
    :raises ValueError: when ``strict`` and an octet is ``0x80`` or more, an
        escape is the last octet, or an escape is followed by a code the
        extension table lacks.
    """
    out: list[str] = []
    index = 0
    length = len(data)
    while index < length:
        octet = data[index]
        if octet == ESCAPE:
            if index + 1 >= length:
                if strict:
                    raise ValueError(f"escape 0x1B at the end of the data (offset {index})")
                out.append("?")
                break
            code = data[index + 1]
            char = DECODE_EXTENSION.get(code)
            if char is None:
                if strict:
                    raise ValueError(f"0x1B 0x{code:02X} at offset {index} is not in the GSM 03.38 extension table")
                if code == ESCAPE:
                    char = " "
                else:
                    char = DECODE_BASIC.get(code, "?")
            out.append(char)
            index += 2
            continue
        char = DECODE_BASIC.get(octet)
        if char is None:
            if strict:
                raise ValueError(f"octet 0x{octet:02X} at offset {index} is not a GSM 03.38 septet")
            char = "?"
        out.append(char)
        index += 1
    return "".join(out)


def septet_length(text: str) -> int:
    """
    How many septets the text takes: extension characters count 2.

    :param text: text in the GSM 03.38 alphabet.
    :raises ValueError: for a character with no GSM 03.38 code.
    """
    total = 0
    for index, char in enumerate(text):
        code = _ENCODE.get(char)
        if code is None:
            raise _unencodable(text, index)
        total += len(code)
    return total


def char_septets(char: str) -> int:
    """
    How many septets one character takes (1 or 2).

    :param char: a single character of the GSM 03.38 alphabet.
    :raises ValueError: for a character with no GSM 03.38 code.
    """
    return septet_length(char)


def is_encodable(text: str) -> bool:
    """
    Whether every character of the text has a GSM 03.38 code.

    :param text: any text.
    """
    return all(char in _ENCODE for char in text)


#: Every character the default alphabet and its extension table can carry.
ALPHABET = frozenset(_ENCODE)
