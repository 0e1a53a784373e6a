"""
Stock smpp.pdu3 as a reference decoder, for differential tests.

smpp.pdu3 is the user's own SMPP library, so the simulator is checked against
it: :func:`decode_with_pdu3` decodes a frame with stock smpp.pdu3 and converts
the result to this project's :class:`~smsc_sim.smpp.pdu.PDU` form, so that
tests/test_codec_differential.py can require the same PDU, or the same error
status, from both.  Nothing on the wire goes through this module; the
simulator's own codec is :mod:`smsc_sim.smpp.codec`.
"""

from __future__ import annotations

import contextlib
import datetime
import io
from typing import Any

from smpp.pdu import constants as pdu3_constants
from smpp.pdu import pdu_types as pdu3_types
from smpp.pdu.error import PDUParseError
from smpp.pdu.pdu_encoding import OptionEncoder, PDUEncoder

from smsc_sim.smpp.codec import PDUDecodeError
from smsc_sim.smpp.constants import CommandStatus
from smsc_sim.smpp.pdu import FIELDS, HEADER, PDU

_S = CommandStatus


def _pdu3_status(status: Any) -> int:
    """The wire value of a smpp.pdu3 CommandStatus (its ``.value`` is 1-based, C.2 #9)."""
    return int(pdu3_constants.command_status_name_map.get(status.name, _S.ESME_RUNKNOWNERR))


_ENUM_MAPS: dict[str, dict[str, int]] = {
    "AddrTon": pdu3_constants.addr_ton_name_map,
    "AddrNpi": pdu3_constants.addr_npi_name_map,
    "PriorityFlag": pdu3_constants.priority_flag_name_map,
    "ReplaceIfPresentFlag": pdu3_constants.replace_if_present_flap_name_map,
    "MessageState": pdu3_constants.message_state_name_map,
}


def _pdu3_int(value: Any) -> int:
    """The wire integer of a smpp.pdu3 field value (enums and composites, C.2 #9)."""
    k = pdu3_constants
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, pdu3_types.EsmClass):
        bits = k.esm_class_mode_name_map[value.mode.name] | k.esm_class_type_name_map[value.type.name]
        for feature in value.gsmFeatures:
            bits |= k.esm_class_gsm_features_name_map[feature.name]
        return bits
    if isinstance(value, pdu3_types.RegisteredDelivery):
        bits = k.registered_delivery_receipt_name_map[value.receipt.name]
        for ack in value.smeOriginatedAcks:
            bits |= k.registered_delivery_sme_originated_acks_name_map[ack.name]
        return bits | (0x10 if value.intermediateNotification else 0)
    if isinstance(value, pdu3_types.DataCoding):
        scheme = value.scheme.name
        if scheme == "RAW":
            return int(value.schemeData)
        if scheme == "DEFAULT":
            return k.data_coding_default_name_map[value.schemeData.name]
        data = value.schemeData
        return int(
            k.data_coding_scheme_name_map[scheme]
            | k.data_coding_gsm_message_coding_name_map[data.msgCoding.name]
            | k.data_coding_gsm_message_class_name_map[data.msgClass.name]
        )
    return _ENUM_MAPS[type(value).__name__][value.name]


def _pdu3_time(value: Any) -> str:
    """The SMPP time string of a smpp.pdu3 time value (``datetime``, relative time or None)."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        offset = value.utcoffset()
        quarters = int(offset.total_seconds() // 900) if offset is not None else 0
        sign = "-" if quarters < 0 else "+"
        return f"{value:%y%m%d%H%M%S}{value.microsecond // 100000}{abs(quarters):02d}{sign}"
    return "{:02d}{:02d}{:02d}{:02d}{:02d}{:02d}000R".format(*value)


def decode_with_pdu3(frame: bytes) -> PDU:
    """
    Decode a frame with stock smpp.pdu3, converted to our :class:`PDU` form.

    A reference decoder for differential tests, not used on the wire.  It
    keeps smpp.pdu3's value checks, and it loses what smpp.pdu3 loses: vendor
    TLVs (C.1), and a time's "00-" offset (read back as "00+").  Header values
    come from the frame itself (sequence 0 would be ``None``, C.2 #14; vendor
    statuses are placeholders, C.2 #8).

    :raises PDUDecodeError: with smpp.pdu3's status mapped to the wire value.
    """
    if len(frame) < 16:
        raise PDUDecodeError(_S.ESME_RINVCMDLEN, "shorter than a header", nack=True)
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its debug print() calls, C.2 #2
            decoded = PDUEncoder().decode(io.BytesIO(frame))
    except PDUParseError as error:
        raise PDUDecodeError(_pdu3_status(error.status), str(error), command_id=command_id, sequence_number=sequence) from None
    except Exception as error:  # e.g. KeyError for submit_multi (C.2 #5)
        raise PDUDecodeError(_S.ESME_RSYSERR, repr(error), command_id=command_id, sequence_number=sequence) from None
    params: dict[str, Any] = {}
    for name, kind, _ in FIELDS[command_id]:
        value = decoded.params.get(name)
        if kind == "i1":
            params[name] = _pdu3_int(value)
        elif kind == "time":
            params[name] = _pdu3_time(value)
        elif kind == "sm":
            params[name] = value or b""
        else:
            params[name] = (value or b"").decode("latin-1")
    tlvs: dict[int, bytes] = {}
    for name, value in decoded.params.items():
        if name not in params:
            tag = getattr(pdu3_types.Tag, name)
            # a fresh OptionEncoder: no stale length from another decode (C.2 #1)
            encoded = OptionEncoder().encode(pdu3_types.Option(tag, value))
            tlvs[pdu3_constants.tag_name_map[name]] = encoded[4:]
    return PDU(command_id, sequence, status, params, tlvs)


__all__ = ["decode_with_pdu3"]
