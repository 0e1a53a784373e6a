"""
The table-driven codec of SMPP 3.4 PDU bodies: every PDU's mandatory body,
read and written field by field over :data:`smsc_sim.smpp.pdu.FIELDS`, and
every PDU's TLV section.

This is the reference for the whole codec: the one hand-tuned fast path
(:mod:`smsc_sim.smpp._fast`, for submit_sm, deliver_sm and their responses)
must give the same params, octets and errors, and hands every body it does
not recognise at a glance to the functions here.

Only structure is checked here (lengths, terminators, list counts); values
are the core's business.  A problem is raised as :class:`FieldError`, which
:mod:`smsc_sim.smpp.codec` turns into ``PDUDecodeError`` with the header's
command_id and sequence_number.

Decoding errors and the command_status they map to:

============================================================  ===================
condition                                                     command_status
============================================================  ===================
the body ends before a mandatory field starts, inside an      ESME_RINVMSGLEN
integer field, or inside a C-Octet String shorter than its
maximum (no NUL before the end of the body)
C-Octet String with no NUL within its maximum size            the field's status
                                                              (:data:`C_STRING_STATUS`,
                                                              ESME_RINVMSGLEN if none)
sm_length larger than what is left of the body                ESME_RINVMSGLEN
sm_length 255 (SMPP 3.4 5.2.22: short_message is 0 to 254)   ESME_RINVMSGLEN
submit_multi dest_flag other than 1 or 2                      ESME_RINVDESTFLAG
1 to 3 octets left where a TLV header (tag + length) starts   ESME_RINVOPTPARSTREAM
TLV length larger than what is left of the body               ESME_RINVPARLEN
known TLV with a size outside the spec's (:data:`TLV_SIZES`)  ESME_RINVPARLEN
============================================================  ===================
"""

from __future__ import annotations

import struct
from typing import Any

from smsc_sim.smpp.constants import CommandId, CommandStatus, Tag
from smsc_sim.smpp.pdu import DestAddress, FieldSpec, UnsuccessSME

_S = CommandStatus

#: The longest short_message SMPP 3.4 allows (5.2.22: "0 - 254"); the octet
#: sm_length can say 255, which is refused rather than read.
MAX_SM_LENGTH = 254

#: The status for a C-Octet String (or time) field that is too long or not
#: terminated, by field name.  Fields not listed get ESME_RINVMSGLEN.
C_STRING_STATUS: dict[str, int] = {
    "system_id": _S.ESME_RINVSYSID,
    "password": _S.ESME_RINVPASWD,
    "system_type": _S.ESME_RINVSYSTYP,
    "service_type": _S.ESME_RINVSERTYP,
    "source_addr": _S.ESME_RINVSRCADR,
    "destination_addr": _S.ESME_RINVDSTADR,
    "message_id": _S.ESME_RINVMSGID,
    "schedule_delivery_time": _S.ESME_RINVSCHED,
    "validity_period": _S.ESME_RINVEXPIRY,
    "dl_name": _S.ESME_RINVDLNAME,
}

#: Allowed value sizes (min, max octets) of the TLVs whose size SMPP 3.4 fixes
#: or bounds (section 5.3.2).  The telematics ids are left out on purpose:
#: implementations disagree on whether they are 1 or 2 octets.
TLV_SIZES: dict[int, tuple[int, int]] = {
    **{
        tag: (1, 1)
        for tag in (
            Tag.dest_addr_subunit,
            Tag.dest_network_type,
            Tag.dest_bearer_type,
            Tag.source_addr_subunit,
            Tag.source_network_type,
            Tag.source_bearer_type,
            Tag.payload_type,
            Tag.ms_msg_wait_facilities,
            Tag.privacy_indicator,
            Tag.user_response_code,
            Tag.language_indicator,
            Tag.sar_total_segments,
            Tag.sar_segment_seqnum,
            Tag.sc_interface_version,
            Tag.callback_num_pres_ind,
            Tag.number_of_messages,
            Tag.dpf_result,
            Tag.set_dpf,
            Tag.ms_availability_status,
            Tag.delivery_failure_reason,
            Tag.more_messages_to_send,
            Tag.message_state,
            Tag.ussd_service_op,
            Tag.display_time,
            Tag.ms_validity,
            Tag.its_reply_type,
        )
    },
    **{
        tag: (2, 2)
        for tag in (
            Tag.user_message_reference,
            Tag.source_port,
            Tag.destination_port,
            Tag.sar_msg_ref_num,
            Tag.sms_signal,
            Tag.its_session_info,
        )
    },
    Tag.qos_time_to_live: (4, 4),
    Tag.network_error_code: (3, 3),
    Tag.alert_on_message_delivery: (0, 0),
    Tag.additional_status_info_text: (1, 256),
    Tag.receipted_message_id: (1, 65),
    Tag.source_subaddress: (2, 23),
    Tag.dest_subaddress: (2, 23),
    Tag.callback_num: (4, 19),
    Tag.callback_num_atag: (1, 65),
}

# plain int keys: lookups on the hot path avoid IntEnum comparisons
_TLV_SIZES = {int(tag): bounds for tag, bounds in TLV_SIZES.items()}

#: PDUs whose SMPP 3.4 body ends with a TLV section.  In the others, octets
#: after the mandatory body are kept as TLVs when they parse as a TLV stream
#: and ignored otherwise (padding, smpp-facts.md C.2 #10).
TLV_SECTION = frozenset(
    {
        CommandId.bind_receiver_resp,
        CommandId.bind_transmitter_resp,
        CommandId.bind_transceiver_resp,
        CommandId.submit_sm,
        CommandId.deliver_sm,
        CommandId.submit_multi,
        CommandId.data_sm,
        CommandId.data_sm_resp,
        CommandId.alert_notification,
    }
)

_TL = struct.Struct(">HH")
_U32 = struct.Struct(">I")
_DEFAULTS: dict[str, Any] = {"c": "", "i1": 0, "i4": 0, "time": "", "sm": b"", "dests": (), "unsuccess": ()}


class FieldError(Exception):
    """
    A structural problem in a PDU body.

    :ivar status: the command_status that answers it.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def cstring_error(left: int, size: int, name: str) -> FieldError:
    """
    The error for a C-Octet String that has no NUL where one was looked for.

    Only a string with no NUL within its maximum size is that field's fault;
    a body that ends before the string could end is a truncated PDU, answered
    ESME_RINVMSGLEN as a body cut inside an integer field is (and as
    smpp.pdu3 answers it, tests/test_codec_differential.py).

    :param left: how many octets of the body were left where the string starts.
    :param size: its maximum size, NUL included.
    :param name: the field name, which picks the status.
    """
    if left <= 0:
        return FieldError(_S.ESME_RINVMSGLEN, f"body ends before {name}")
    if left >= size:
        return FieldError(C_STRING_STATUS.get(name, _S.ESME_RINVMSGLEN), f"{name} is longer than {size - 1} octets")
    return FieldError(_S.ESME_RINVMSGLEN, f"body ends inside {name}, before its NUL")


def truncated(name: str) -> FieldError:
    """The error for a body that ends inside or before the integer field ``name``."""
    return FieldError(_S.ESME_RINVMSGLEN, f"body ends before {name}")


def read_cstring(frame: bytes, pos: int, size: int, name: str) -> tuple[str, int]:
    """
    Read a C-Octet String of at most ``size`` octets (NUL included).

    :returns: the text (Latin-1) and the position after the NUL.
    :raises FieldError: see the module table.
    """
    nul = frame.find(0, pos, pos + size)
    if nul < 0:
        raise cstring_error(len(frame) - pos, size, name)
    return frame[pos:nul].decode("latin-1"), nul + 1


def pack_cstring(value: str, size: int, name: str) -> bytes:
    """
    Encode a C-Octet String field, NUL included.

    :raises ValueError: when the text is not Latin-1, holds a NUL, or does not
        fit in ``size`` octets.
    """
    raw = value.encode("latin-1")
    if len(raw) >= size or 0 in raw:
        raise ValueError(f"{name} {value!r} does not fit a C-Octet String of {size} octets")
    return raw + b"\x00"


def trailing_tlvs(command_id: int, frame: bytes, pos: int) -> dict[int, bytes]:
    """
    The TLVs after the mandatory body, which ends at ``pos``.

    A PDU whose SMPP 3.4 body has a TLV section (:data:`TLV_SECTION`) must
    hold a well-formed one; after the others, octets that do not parse as
    TLVs are ignored (padding some clients send, smpp-facts.md C.2 #10).

    :raises FieldError: see the module table.
    """
    if pos >= len(frame):
        return {}
    if command_id in TLV_SECTION:
        return parse_tlvs(frame, pos)
    try:
        return parse_tlvs(frame, pos)
    except FieldError:
        return {}


def parse_tlvs(frame: bytes, pos: int) -> dict[int, bytes]:
    """
    Read the TLV section from ``pos`` to the end of the PDU.

    Every tag is kept, known or not (SPEC section 3.3 says to ignore unknown
    ones, not to reject them).  A repeated tag keeps its last value.

    :raises FieldError: ESME_RINVOPTPARSTREAM or ESME_RINVPARLEN, see the module table.
    """
    tlvs: dict[int, bytes] = {}
    end = len(frame)
    unpack_from = _TL.unpack_from
    sizes = _TLV_SIZES
    while pos < end:
        if pos + 4 > end:
            raise FieldError(_S.ESME_RINVOPTPARSTREAM, f"{end - pos} stray octets where a TLV should start")
        tag, length = unpack_from(frame, pos)
        pos += 4
        if pos + length > end:
            raise FieldError(_S.ESME_RINVPARLEN, f"TLV 0x{tag:04X} length {length} overruns the PDU")
        bounds = sizes.get(tag)
        if bounds is not None and not bounds[0] <= length <= bounds[1]:
            raise FieldError(_S.ESME_RINVPARLEN, f"TLV 0x{tag:04X} has length {length}, expected {bounds}")
        tlvs[tag] = frame[pos : pos + length]
        pos += length
    return tlvs


def pack_tlvs(tlvs: dict[int, bytes]) -> bytes:
    """
    Encode TLVs in dict order.

    :raises ValueError: for a tag or value that does not fit 16 bits.
    """
    pack = _TL.pack
    try:
        return b"".join([pack(tag, len(value)) + value for tag, value in tlvs.items()])
    except (struct.error, TypeError):
        pass  # the checked loop below says which TLV does not fit (or raises the TypeError)
    out = []
    for tag, value in tlvs.items():
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise ValueError(f"TLV 0x{tag:X} with {len(value)} octets does not fit")
        out.append(_TL.pack(tag, len(value)))
        out.append(bytes(value))
    return b"".join(out)


# ---------------------------------------------------------------------------
# the mandatory body, field by field over FIELDS
# ---------------------------------------------------------------------------


def decode_fields(spec: tuple[FieldSpec, ...], frame: bytes, pos: int) -> tuple[dict[str, Any], int]:
    """
    Read the mandatory fields ``spec`` (a :data:`~smsc_sim.smpp.pdu.FIELDS` entry).

    :returns: the params and the position after the last field.
    :raises FieldError: see the module table.
    """
    params: dict[str, Any] = {}
    end = len(frame)
    for name, kind, size in spec:
        if kind == "c" or kind == "time":
            params[name], pos = read_cstring(frame, pos, size, name)
        elif kind == "i1":
            if pos >= end:
                raise truncated(name)
            params[name] = frame[pos]
            pos += 1
        elif kind == "i4":
            if pos + 4 > end:
                raise truncated(name)
            params[name] = _U32.unpack_from(frame, pos)[0]
            pos += 4
        elif kind == "sm":
            if pos >= end:
                raise truncated("sm_length")
            if frame[pos] > MAX_SM_LENGTH:
                raise FieldError(_S.ESME_RINVMSGLEN, f"sm_length {frame[pos]} is over {MAX_SM_LENGTH}")
            sm_end = pos + 1 + frame[pos]
            if sm_end > end:
                raise FieldError(_S.ESME_RINVMSGLEN, f"sm_length {frame[pos]} overruns the body")
            params[name] = frame[pos + 1 : sm_end]
            pos = sm_end
        elif kind == "dests":
            params[name], pos = _decode_dests(frame, pos)
        elif kind == "unsuccess":
            params[name], pos = _decode_unsuccess(frame, pos)
        else:  # pragma: no cover - FIELDS only uses the kinds above
            raise AssertionError(kind)
    return params, pos


def _decode_dests(frame: bytes, pos: int) -> tuple[tuple[DestAddress, ...], int]:
    """Read number_of_dests and the dest_address list of submit_multi."""
    end = len(frame)
    if pos >= end:
        raise truncated("number_of_dests")
    count = frame[pos]
    pos += 1
    dests = []
    for _ in range(count):
        if pos >= end:
            raise truncated("dest_flag")
        flag = frame[pos]
        if flag == 1:
            if pos + 3 > end:
                raise truncated("dest_addr_npi")
            ton, npi = frame[pos + 1], frame[pos + 2]
            address, pos = read_cstring(frame, pos + 3, 21, "destination_addr")
            dests.append(DestAddress(1, ton, npi, address))
        elif flag == 2:
            name, pos = read_cstring(frame, pos + 1, 21, "dl_name")
            dests.append(DestAddress(2, 0, 0, name))
        else:
            raise FieldError(_S.ESME_RINVDESTFLAG, f"dest_flag {flag} is neither 1 nor 2")
    return tuple(dests), pos


def _decode_unsuccess(frame: bytes, pos: int) -> tuple[tuple[UnsuccessSME, ...], int]:
    """Read no_unsuccess and the unsuccess_sme list of submit_multi_resp."""
    end = len(frame)
    if pos >= end:
        raise truncated("no_unsuccess")
    count = frame[pos]
    pos += 1
    entries = []
    for _ in range(count):
        if pos + 2 > end:
            raise truncated("dest_addr_npi")
        ton, npi = frame[pos], frame[pos + 1]
        address, pos = read_cstring(frame, pos + 2, 21, "destination_addr")
        if pos + 4 > end:
            raise truncated("error_status_code")
        entries.append(UnsuccessSME(ton, npi, address, _U32.unpack_from(frame, pos)[0]))
        pos += 4
    return tuple(entries), pos


def encode_fields(spec: tuple[FieldSpec, ...], params: dict[str, Any]) -> bytes:
    """
    Write the mandatory fields ``spec``; missing fields get their NULL value.

    :raises ValueError: for a value that does not fit its field.
    """
    out: list[bytes] = []
    for name, kind, size in spec:
        value = params.get(name, _DEFAULTS[kind])
        if kind == "c" or kind == "time":
            out.append(pack_cstring(value, size, name))
        elif kind == "i1":
            out.append(bytes((value,)))
        elif kind == "i4":
            out.append(_U32.pack(value))
        elif kind == "sm":
            if len(value) > MAX_SM_LENGTH:
                raise ValueError(f"{name} of {len(value)} octets; use message_payload beyond {MAX_SM_LENGTH}")
            out.append(bytes((len(value),)) + bytes(value))
        elif kind == "dests":
            out.append(bytes((len(value),)))
            for flag, ton, npi, address in value:
                if flag == 1:
                    out.append(bytes((1, ton, npi)) + pack_cstring(address, 21, "destination_addr"))
                elif flag == 2:
                    out.append(b"\x02" + pack_cstring(address, 21, "dl_name"))
                else:
                    raise ValueError(f"dest_flag {flag} is neither 1 nor 2")
        elif kind == "unsuccess":
            out.append(bytes((len(value),)))
            for ton, npi, address, error_status_code in value:
                out.append(bytes((ton, npi)) + pack_cstring(address, 21, "destination_addr"))
                out.append(_U32.pack(error_status_code))
        else:  # pragma: no cover
            raise AssertionError(kind)
    return b"".join(out)


def defaults(spec: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """The NULL value of every field of ``spec``."""
    return {name: _DEFAULTS[kind] for name, kind, _ in spec}
