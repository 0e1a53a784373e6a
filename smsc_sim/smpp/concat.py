"""
Concatenated messages: reading the part information of an incoming message,
and cutting an outgoing (MO) message into parts.

Three ways of marking a part are read (smpp-facts.md A.7, B.11):

- ``udh8``: esm_class UDHI (0x40) and a user data header in short_message
  holding IEI 0x00, ``05 00 03 RR TT SS`` (the provider's documented form);
- ``udh16``: the same with IEI 0x08 and a 16-bit reference,
  ``06 08 04 RR RR TT SS``;
- ``sar``: the TLVs sar_msg_ref_num (0x020C, 2 octets), sar_total_segments
  (0x020E) and sar_segment_seqnum (0x020F).

The reassembly window (which parts have arrived, for how long) is state and
lives in the core; this module is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from smsc_sim.modes import SPLIT_MODES, SplitMode
from smsc_sim.smpp.constants import ESM_CLASS_UDHI, CommandStatus, Tag
from smsc_sim.smpp.text import encode_text, max_chars, split_text, text_length

#: The ways :func:`split_for_mo` can send a long message (:class:`smsc_sim.modes.SplitMode`).
MO_MODES = SPLIT_MODES

# a part's kind as plain text, the way it is stored and compared
_UDH8 = SplitMode.UDH8.value
_UDH16 = SplitMode.UDH16.value
_SAR = SplitMode.SAR.value

_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08

# plain ints, so that segments compare and print as the wire values
_SAR_REF = int(Tag.sar_msg_ref_num)
_SAR_TOTAL = int(Tag.sar_total_segments)
_SAR_SEQ = int(Tag.sar_segment_seqnum)
_PAYLOAD = int(Tag.message_payload)


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    """
    Where one part sits in a concatenated message.

    :ivar reference: the reference shared by all parts (8 or 16 bits).
    :ivar total: how many parts the message has (1..255).
    :ivar seqnum: this part's number, from 1.
    :ivar kind: ``udh8``, ``udh16`` or ``sar``.
    """

    reference: int
    total: int
    seqnum: int
    kind: str


@dataclass(frozen=True, slots=True)
class Segment:
    """
    One PDU's worth of an outgoing message.

    :ivar esm_class: 0x40 (UDHI) for UDH parts, else 0; the caller may add
        other bits.
    :ivar short_message: the octets, UDH included; empty when the text is in
        the message_payload TLV.
    :ivar tlvs: the TLVs to send (SAR trio or message_payload), by tag.
    """

    esm_class: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)


class ConcatError(ValueError):
    """
    The concatenation data of a message is malformed.

    :ivar status: the command_status to answer the request with.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def split_udh(esm_class: int, short_message: bytes) -> tuple[bytes, bytes]:
    """
    Separate the user data header from the message octets.

    :param esm_class: the PDU's esm_class; without UDHI (0x40) there is no UDH.
    :param short_message: the octets (or the message_payload value when
        short_message is empty).
    :returns: ``(udh, payload)``, the UDH with its length octet, ``b""`` when
        there is none.
    :raises ConcatError: ESME_RINVESMCLASS when UDHI is set on an empty
        message; ESME_RINVMSGLEN when the UDH length runs past the end.
    """
    if not esm_class & ESM_CLASS_UDHI:
        return b"", short_message
    if not short_message:
        raise ConcatError("esm_class has UDHI set but the message is empty", CommandStatus.ESME_RINVESMCLASS)
    end = 1 + short_message[0]
    if end > len(short_message):
        raise ConcatError(
            f"UDH length {short_message[0]} runs past the end of the {len(short_message)}-octet message",
            CommandStatus.ESME_RINVMSGLEN,
        )
    return short_message[:end], short_message[end:]


def _elements(udh: bytes) -> Iterator[tuple[int, bytes]]:
    """Walk the information elements of a UDH (length octet included)."""
    index = 1
    while index < len(udh):
        if index + 2 > len(udh):
            raise ConcatError(f"UDH information element at offset {index} is cut short", CommandStatus.ESME_RINVESMCLASS)
        iei, length = udh[index], udh[index + 1]
        start = index + 2
        if start + length > len(udh):
            raise ConcatError(
                f"UDH information element 0x{iei:02X} of length {length} runs past the end of the UDH",
                CommandStatus.ESME_RINVESMCLASS,
            )
        yield iei, udh[start : start + length]
        index = start + length


def _user_data(short_message: bytes, tlvs: dict[int, bytes]) -> bytes:
    # SMPP forbids both at once; the message_payload carries the data when short_message is empty
    if short_message:
        return short_message
    return tlvs.get(_PAYLOAD, b"")


def _from_udh(udh: bytes) -> ConcatInfo | None:
    found: ConcatInfo | None = None
    for iei, value in _elements(udh):
        if iei == _IEI_CONCAT_8 and len(value) == 3:
            info = ConcatInfo(value[0], value[1], value[2], _UDH8)
        elif iei == _IEI_CONCAT_16 and len(value) == 4:
            info = ConcatInfo(int.from_bytes(value[:2], "big"), value[2], value[3], _UDH16)
        else:
            continue  # other IEs (ports, formatting...) do not matter here
        # GSM 03.40 9.2.3.24.1: a total of 0, a part number of 0 or one past the
        # total makes the receiver ignore the element; a repeated element: the last counts
        if info.total and info.seqnum and info.seqnum <= info.total:
            found = info
    return found


def _from_sar(tlvs: dict[int, bytes]) -> ConcatInfo | None:
    tags = (Tag.sar_msg_ref_num, Tag.sar_total_segments, Tag.sar_segment_seqnum)  # named in errors
    present = [tag in tlvs for tag in tags]
    if not any(present):
        return None
    if not all(present):
        missing = ", ".join(tag.name for tag, here in zip(tags, present) if not here)
        raise ConcatError(f"SAR TLVs incomplete: {missing} missing", CommandStatus.ESME_RMISSINGOPTPARAM)
    for tag, size in zip(tags, (2, 1, 1)):
        if len(tlvs[tag]) != size:
            raise ConcatError(f"{tag.name} must be {size} octet(s), got {len(tlvs[tag])}", CommandStatus.ESME_RINVPARLEN)
    reference = int.from_bytes(tlvs[Tag.sar_msg_ref_num], "big")
    total = tlvs[Tag.sar_total_segments][0]
    seqnum = tlvs[Tag.sar_segment_seqnum][0]
    if total == 0 or seqnum == 0 or seqnum > total:
        raise ConcatError(
            f"sar_segment_seqnum {seqnum} of sar_total_segments {total} is out of range",
            CommandStatus.ESME_RINVOPTPARAMVAL,
        )
    return ConcatInfo(reference, total, seqnum, _SAR)


def concat_info(esm_class: int, short_message: bytes, tlvs: dict[int, bytes]) -> ConcatInfo | None:
    """
    The concatenation information of an incoming message, if it is a part.

    A concatenation element in the UDH wins over SAR TLVs when both are
    present.  Elements GSM 03.40 says to ignore (total 0, part 0, part past
    the total) are ignored.

    :param esm_class: the PDU's esm_class.
    :param short_message: the PDU's short_message (the UDH, if any, is read
        from message_payload when short_message is empty).
    :param tlvs: the PDU's TLVs by tag.
    :returns: the part's place, or ``None`` for a message that is not a part.
    :raises ConcatError: for a malformed UDH (ESME_RINVMSGLEN when its length
        runs past the message, ESME_RINVESMCLASS when UDHI is set and the UDH
        is missing or inconsistent) or malformed SAR TLVs
        (ESME_RMISSINGOPTPARAM, ESME_RINVPARLEN, ESME_RINVOPTPARAMVAL).
    """
    if esm_class & ESM_CLASS_UDHI:
        udh, _ = split_udh(esm_class, _user_data(short_message, tlvs))
        info = _from_udh(udh)
        if info is not None:
            return info
    return _from_sar(tlvs)


def payload_of(esm_class: int, short_message: bytes, tlvs: dict[int, bytes]) -> bytes:
    """
    The message octets of a PDU without any UDH, from short_message or message_payload.

    :raises ConcatError: as :func:`split_udh`.
    """
    _, payload = split_udh(esm_class, _user_data(short_message, tlvs))
    return payload


def join_parts(parts: list[tuple[ConcatInfo, bytes]]) -> bytes:
    """
    Put the payloads of all parts of one message together, in part order.

    :param parts: each part's information and its payload (UDH removed), in
        any order.
    :returns: the whole message's octets.
    :raises ValueError: when the list is empty, mixes messages (reference,
        total or kind differ), or does not hold each part 1..total exactly once.
    """
    if not parts:
        raise ValueError("no parts to join")
    first = parts[0][0]
    for info, _ in parts:
        if (info.reference, info.total, info.kind) != (first.reference, first.total, first.kind):
            raise ValueError(f"parts of different messages: {first} and {info}")
    numbers = sorted(info.seqnum for info, _ in parts)
    if numbers != list(range(1, first.total + 1)):
        raise ValueError(f"parts {numbers} do not make up 1..{first.total} exactly once")
    return b"".join(payload for _, payload in sorted(parts, key=lambda part: part[0].seqnum))


def _concat_udh(mode: str, reference: int, total: int, seqnum: int) -> bytes:
    if mode == SplitMode.UDH8:
        return bytes([0x05, _IEI_CONCAT_8, 0x03, reference % 0x100, total, seqnum])
    return bytes([0x06, _IEI_CONCAT_16, 0x04]) + (reference % 0x10000).to_bytes(2, "big") + bytes([total, seqnum])


def split_for_mo(
    payload_text: str,
    data_coding: int,
    mode: str,
    reference: int,
    default_alphabet: str = "latin-1",
) -> list[Segment]:
    """
    Cut a message the SMSC sends into PDUs.

    Text within the single-message limit (:func:`smsc_sim.smpp.text.max_chars`)
    gives one segment with no UDH and no TLV, whatever the mode.  Longer text:

    - ``udh8``/``udh16``: parts of at most 153/134/67 units (one less with
      ``udh16``, whose UDH is an octet longer), each with its UDH and UDHI;
    - ``sar``: parts of the same size as ``udh8``, with the SAR TLVs;
    - ``payload``: one segment, the whole text in message_payload and an
      empty short_message.

    No character is cut in two (an escape pair or a surrogate pair stays
    whole), so a part may be shorter than the limit.

    :param payload_text: the text.
    :param data_coding: the data_coding it is written in.
    :param mode: ``udh8``, ``udh16``, ``sar`` or ``payload``.
    :param reference: the concatenation reference, taken modulo 256 for
        ``udh8`` and modulo 65536 otherwise.
    :param default_alphabet: how DCS 0 is written.
    :raises ValueError: for an unknown mode, text the coding cannot write, or
        more than 255 parts.
    """
    if mode not in MO_MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MO_MODES)}")
    whole = encode_text(payload_text, data_coding, default_alphabet)
    if text_length(payload_text, data_coding, default_alphabet) <= max_chars(data_coding, concatenated=False):
        return [Segment(0, whole)]
    if mode == SplitMode.PAYLOAD:
        return [Segment(0, b"", {_PAYLOAD: whole})]
    per_part = max_chars(data_coding, concatenated=True) - (1 if mode == SplitMode.UDH16 else 0)
    pieces = split_text(payload_text, data_coding, per_part, default_alphabet)
    return concatenated([encode_text(piece, data_coding, default_alphabet) for piece in pieces], mode, reference)


def concatenated(bodies: list[bytes], mode: str, reference: int) -> list[Segment]:
    """
    The parts of one long message the SMSC sends, each body with its UDH
    and UDHI (``udh8``, ``udh16``) or with the SAR TLVs (``sar``).

    :param bodies: each part's octets, in order.
    :param reference: the concatenation reference, taken modulo 256 for
        ``udh8`` and modulo 65536 otherwise.
    :raises ValueError: for more than 255 parts.
    """
    total = len(bodies)
    if total > 255:
        raise ValueError(f"the message needs {total} parts; at most 255 can be concatenated")
    segments: list[Segment] = []
    for seqnum, body in enumerate(bodies, start=1):
        if mode == SplitMode.SAR:
            tlvs = {
                _SAR_REF: (reference % 0x10000).to_bytes(2, "big"),
                _SAR_TOTAL: bytes([total]),
                _SAR_SEQ: bytes([seqnum]),
            }
            segments.append(Segment(0, body, tlvs))
        else:
            segments.append(Segment(ESM_CLASS_UDHI, _concat_udh(mode, reference, total, seqnum) + body))
    return segments
