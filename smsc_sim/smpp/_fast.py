"""
The codec's one hand-tuned fast path: submit_sm, deliver_sm, submit_sm_resp and deliver_sm_resp.

These four PDUs are nearly all the traffic (a submit_sm and its response for
every message, a deliver_sm and its response for every receipt), so their
usual shapes are read and written here with as few Python operations as
possible.  Each function recognises the well-formed case at a glance and
hands anything else to the table-driven codec (:mod:`smsc_sim.smpp._fields`),
so every error (its status, message or exception type) is the table's by
construction.  tests/test_codec_fast.py checks that both paths give the same
params, octets or errors for random valid and malformed input.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from smsc_sim.smpp._fields import MAX_SM_LENGTH, decode_fields, encode_fields, parse_tlvs, trailing_tlvs
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import FIELDS, HEADER, PDU, build_pdu

_SM_SPEC = FIELDS[CommandId.submit_sm]  # deliver_sm has the same body
_MESSAGE_ID_SPEC = FIELDS[CommandId.submit_sm_resp]  # so has deliver_sm_resp
_SUBMIT_SM_RESP = int(CommandId.submit_sm_resp)
_pack_header = HEADER.pack

#: The mandatory body of submit_sm and deliver_sm up to sm_length, as one
#: pattern: C-Octet Strings of at most their size (NUL included) and the
#: integer fields between them, grouped by run.  One match does in C what
#: the table reader does field by field.
_SM_BODY = re.compile(
    rb"([^\x00]{0,5})\x00(..)"  # service_type; source_addr_ton, source_addr_npi
    rb"([^\x00]{0,20})\x00(..)"  # source_addr; dest_addr_ton, dest_addr_npi
    rb"([^\x00]{0,20})\x00(...)"  # destination_addr; esm_class, protocol_id, priority_flag
    rb"([^\x00]{0,16})\x00([^\x00]{0,16})\x00"  # schedule_delivery_time, validity_period
    rb"(.....)",  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
    re.DOTALL,
)
_match_sm_body = _SM_BODY.match


def decode_sm(frame: bytes) -> tuple[dict[str, Any], int]:
    """
    Read the mandatory body of submit_sm or deliver_sm, starting after the header.

    :returns: the params and the position where the TLVs start.
    :raises FieldError: as the table reader does (it reads every body that
        does not match at once).
    """
    match = _match_sm_body(frame, 16)
    if match is None:
        return decode_fields(_SM_SPEC, frame, 16)
    service_type, source, source_addr, dest, destination_addr, flags, schedule, validity, tail = match.groups()
    pos = match.end()
    sm_end = pos + tail[4]
    if sm_end > len(frame) or tail[4] > MAX_SM_LENGTH:
        return decode_fields(_SM_SPEC, frame, 16)
    return {
        "service_type": service_type.decode("latin-1") if service_type else "",
        "source_addr_ton": source[0],
        "source_addr_npi": source[1],
        "source_addr": source_addr.decode("latin-1"),
        "dest_addr_ton": dest[0],
        "dest_addr_npi": dest[1],
        "destination_addr": destination_addr.decode("latin-1"),
        "esm_class": flags[0],
        "protocol_id": flags[1],
        "priority_flag": flags[2],
        "schedule_delivery_time": schedule.decode("latin-1") if schedule else "",
        "validity_period": validity.decode("latin-1") if validity else "",
        "registered_delivery": tail[0],
        "replace_if_present_flag": tail[1],
        "data_coding": tail[2],
        "sm_default_msg_id": tail[3],
        "short_message": frame[pos:sm_end],
    }, sm_end


def read_sm(command_id: int, sequence: int, status: int, frame: bytes) -> PDU:
    """
    A whole submit_sm or deliver_sm PDU, its header already read.

    :raises FieldError: as the table reader does.
    """
    params, pos = decode_sm(frame)
    return build_pdu(command_id, sequence, status, params, parse_tlvs(frame, pos) if pos < len(frame) else {})


def read_message_id(command_id: int, sequence: int, status: int, frame: bytes) -> PDU:
    """
    A whole submit_sm_resp or deliver_sm_resp (whose message_id may be non-NULL, C.2 #11), its header already read.

    :raises FieldError: as the table reader does.
    """
    nul = frame.find(0, 16, 16 + 65)
    if nul < 0:
        params, pos = decode_fields(_MESSAGE_ID_SPEC, frame, 16)
        return build_pdu(command_id, sequence, status, params, trailing_tlvs(command_id, frame, pos))
    tlvs = trailing_tlvs(command_id, frame, nul + 1) if nul + 1 < len(frame) else {}
    return build_pdu(command_id, sequence, status, {"message_id": frame[16:nul].decode("latin-1")}, tlvs)


#: submit_sm and deliver_sm bodies in one formatting operation: %b for the
#: strings (NUL written here), %c for the one-octet integers.
_SM_FORMAT = b"%b\x00%c%c%b\x00%c%c%b\x00%c%c%c%b\x00%b\x00%c%c%c%c%c%b"


def encode_sm(params: dict[str, Any]) -> bytes:
    """
    Write the mandatory body of submit_sm or deliver_sm (missing fields are NULL).

    :raises ValueError: as the table writer does (it writes every value that
        does not fit at once), and ``AttributeError`` or ``TypeError`` for a
        value of the wrong type.
    """
    get = params.get
    try:
        service_type = get("service_type", "").encode("latin-1")
        source_addr = get("source_addr", "").encode("latin-1")
        destination_addr = get("destination_addr", "").encode("latin-1")
        schedule = get("schedule_delivery_time", "").encode("latin-1")
        validity = get("validity_period", "").encode("latin-1")
        short_message = get("short_message", b"")
        if (
            len(service_type) > 5
            or len(source_addr) > 20
            or len(destination_addr) > 20
            or len(schedule) > 16
            or len(validity) > 16
            or len(short_message) > MAX_SM_LENGTH
            or 0 in service_type
            or 0 in source_addr
            or 0 in destination_addr
            or 0 in schedule
            or 0 in validity
        ):
            return encode_fields(_SM_SPEC, params)
        return _SM_FORMAT % (
            service_type,
            get("source_addr_ton", 0),
            get("source_addr_npi", 0),
            source_addr,
            get("dest_addr_ton", 0),
            get("dest_addr_npi", 0),
            destination_addr,
            get("esm_class", 0),
            get("protocol_id", 0),
            get("priority_flag", 0),
            schedule,
            validity,
            get("registered_delivery", 0),
            get("replace_if_present_flag", 0),
            get("data_coding", 0),
            get("sm_default_msg_id", 0),
            len(short_message),
            short_message,
        )
    except (AttributeError, TypeError, OverflowError, UnicodeEncodeError):
        # a value of the wrong type or range: the table writer raises its error
        return encode_fields(_SM_SPEC, params)


def encode_message_id_response(command_id: int, status: int, sequence: int, params: dict[str, Any]) -> bytes | None:
    """
    A whole submit_sm_resp or deliver_sm_resp without TLVs: header, message_id, NUL.

    An error submit_sm_resp is a bare header (SMPP 3.4 4.4.2 omits its body).

    :returns: the PDU, or ``None`` when a value does not fit (the table path
        then raises its error).
    """
    try:
        if status and command_id == _SUBMIT_SM_RESP:
            return _pack_header(16, command_id, status, sequence)
        raw = params.get("message_id", "").encode("latin-1")
        if len(raw) > 64 or 0 in raw:
            return None
        return _pack_header(17 + len(raw), command_id, status, sequence) + raw + b"\x00"
    except (AttributeError, UnicodeEncodeError, struct.error):
        return None


__all__ = ["decode_sm", "read_sm", "read_message_id", "encode_sm", "encode_message_id_response"]
