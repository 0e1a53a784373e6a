"""
The PDU value every layer above the codec works with.

A :class:`PDU` is the header plus two dictionaries:

- ``params``: the mandatory body fields, by their SMPP 3.4 names, in the
  representation given by :data:`FIELDS` (``c`` C-Octet String as ``str``
  decoded with Latin-1 so every byte round-trips; ``i1``/``i4`` unsigned
  integers as ``int``; ``sm`` the short_message octets as ``bytes``, its
  ``sm_length`` implied; ``time`` an SMPP time string, ``""`` for NULL;
  ``dests`` and ``unsuccess`` the lists of submit_multi).
- ``tlvs``: optional parameters as raw value bytes by tag, in wire order.
  Unknown tags are kept here too: the spec says to ignore them, and keeping
  them lets a test or the inspection API see what arrived.

Field values are never validated here; the codec checks lengths and the
core checks meaning (so that a bad value gets the status the spec names).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from smsc_sim.smpp.constants import CommandId, CommandStatus, Tag, response_id


class DestAddress(NamedTuple):
    """One entry of submit_multi's dest_address list."""

    dest_flag: int  # 1 = SME address, 2 = distribution list name
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str  # the SME address, or the list name when dest_flag == 2


class UnsuccessSME(NamedTuple):
    """One entry of submit_multi_resp's unsuccess_sme list."""

    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str
    error_status_code: int


# (name, kind, max octets including the NUL for C strings)
FieldSpec = tuple[str, str, int]

_BIND: tuple[FieldSpec, ...] = (
    ("system_id", "c", 16),
    ("password", "c", 9),
    ("system_type", "c", 13),
    ("interface_version", "i1", 1),
    ("addr_ton", "i1", 1),
    ("addr_npi", "i1", 1),
    ("address_range", "c", 41),
)
_BIND_RESP: tuple[FieldSpec, ...] = (("system_id", "c", 16),)
_SM: tuple[FieldSpec, ...] = (
    ("service_type", "c", 6),
    ("source_addr_ton", "i1", 1),
    ("source_addr_npi", "i1", 1),
    ("source_addr", "c", 21),
    ("dest_addr_ton", "i1", 1),
    ("dest_addr_npi", "i1", 1),
    ("destination_addr", "c", 21),
    ("esm_class", "i1", 1),
    ("protocol_id", "i1", 1),
    ("priority_flag", "i1", 1),
    ("schedule_delivery_time", "time", 17),
    ("validity_period", "time", 17),
    ("registered_delivery", "i1", 1),
    ("replace_if_present_flag", "i1", 1),
    ("data_coding", "i1", 1),
    ("sm_default_msg_id", "i1", 1),
    ("short_message", "sm", 254),
)
_MESSAGE_ID: tuple[FieldSpec, ...] = (("message_id", "c", 65),)

#: The mandatory body of every PDU, in wire order.
FIELDS: dict[int, tuple[FieldSpec, ...]] = {
    CommandId.generic_nack: (),
    CommandId.bind_receiver: _BIND,
    CommandId.bind_transmitter: _BIND,
    CommandId.bind_transceiver: _BIND,
    CommandId.bind_receiver_resp: _BIND_RESP,
    CommandId.bind_transmitter_resp: _BIND_RESP,
    CommandId.bind_transceiver_resp: _BIND_RESP,
    CommandId.outbind: (("system_id", "c", 16), ("password", "c", 9)),
    CommandId.unbind: (),
    CommandId.unbind_resp: (),
    CommandId.enquire_link: (),
    CommandId.enquire_link_resp: (),
    CommandId.submit_sm: _SM,
    CommandId.submit_sm_resp: _MESSAGE_ID,
    CommandId.deliver_sm: _SM,
    CommandId.deliver_sm_resp: _MESSAGE_ID,
    CommandId.submit_multi: (
        ("service_type", "c", 6),
        ("source_addr_ton", "i1", 1),
        ("source_addr_npi", "i1", 1),
        ("source_addr", "c", 21),
        ("dest_address", "dests", 254),
        ("esm_class", "i1", 1),
        ("protocol_id", "i1", 1),
        ("priority_flag", "i1", 1),
        ("schedule_delivery_time", "time", 17),
        ("validity_period", "time", 17),
        ("registered_delivery", "i1", 1),
        ("replace_if_present_flag", "i1", 1),
        ("data_coding", "i1", 1),
        ("sm_default_msg_id", "i1", 1),
        ("short_message", "sm", 254),
    ),
    CommandId.submit_multi_resp: (("message_id", "c", 65), ("unsuccess_sme", "unsuccess", 254)),
    CommandId.data_sm: (
        ("service_type", "c", 6),
        ("source_addr_ton", "i1", 1),
        ("source_addr_npi", "i1", 1),
        ("source_addr", "c", 65),
        ("dest_addr_ton", "i1", 1),
        ("dest_addr_npi", "i1", 1),
        ("destination_addr", "c", 65),
        ("esm_class", "i1", 1),
        ("registered_delivery", "i1", 1),
        ("data_coding", "i1", 1),
    ),
    CommandId.data_sm_resp: _MESSAGE_ID,
    CommandId.query_sm: (
        ("message_id", "c", 65),
        ("source_addr_ton", "i1", 1),
        ("source_addr_npi", "i1", 1),
        ("source_addr", "c", 21),
    ),
    CommandId.query_sm_resp: (
        ("message_id", "c", 65),
        ("final_date", "time", 17),
        ("message_state", "i1", 1),
        ("error_code", "i1", 1),
    ),
    CommandId.cancel_sm: (
        ("service_type", "c", 6),
        ("message_id", "c", 65),
        ("source_addr_ton", "i1", 1),
        ("source_addr_npi", "i1", 1),
        ("source_addr", "c", 21),
        ("dest_addr_ton", "i1", 1),
        ("dest_addr_npi", "i1", 1),
        ("destination_addr", "c", 21),
    ),
    CommandId.cancel_sm_resp: (),
    CommandId.replace_sm: (
        ("message_id", "c", 65),
        ("source_addr_ton", "i1", 1),
        ("source_addr_npi", "i1", 1),
        ("source_addr", "c", 21),
        ("schedule_delivery_time", "time", 17),
        ("validity_period", "time", 17),
        ("registered_delivery", "i1", 1),
        ("sm_default_msg_id", "i1", 1),
        ("short_message", "sm", 254),
    ),
    CommandId.replace_sm_resp: (),
    CommandId.alert_notification: (
        ("source_addr_ton", "i1", 1),
        ("source_addr_npi", "i1", 1),
        ("source_addr", "c", 65),
        ("esme_addr_ton", "i1", 1),
        ("esme_addr_npi", "i1", 1),
        ("esme_addr", "c", 65),
    ),
}

#: Default value of each field kind, used by :func:`make_pdu` for fields not given.
_DEFAULTS: dict[str, Any] = {"c": "", "i1": 0, "i4": 0, "time": "", "sm": b"", "dests": (), "unsuccess": ()}


#: command_id -> SMPP name, for :attr:`PDU.name`
_COMMAND_NAMES: dict[int, str] = {int(command): command.name for command in CommandId}


@dataclass(frozen=True, slots=True)
class PDU:
    """One SMPP PDU: header, mandatory fields and optional parameters."""

    command_id: int
    sequence_number: int
    command_status: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The SMPP name of the command, or its hex id when unknown."""
        # a dict lookup: the metrics and the judge ask every PDU its name, and an enum call costs ten times more
        known = _COMMAND_NAMES.get(self.command_id)
        return known if known is not None else f"0x{self.command_id:08X}"

    def tlv_int(self, tag: int, default: int | None = None) -> int | None:
        """
        An integer TLV's value, big-endian, whatever its length.

        :param tag: the TLV tag.
        :param default: returned when the TLV is absent.
        """
        raw = self.tlvs.get(tag)
        if raw is None:
            return default
        return int.from_bytes(raw, "big")

    def tlv_cstring(self, tag: int) -> str | None:
        """A C-Octet String TLV (such as receipted_message_id) without its NUL."""
        raw = self.tlvs.get(tag)
        if raw is None:
            return None
        return raw.split(b"\x00", 1)[0].decode("latin-1")


_new = object.__new__
_set_command_id = PDU.__dict__["command_id"].__set__
_set_sequence_number = PDU.__dict__["sequence_number"].__set__
_set_command_status = PDU.__dict__["command_status"].__set__
_set_params = PDU.__dict__["params"].__set__
_set_tlvs = PDU.__dict__["tlvs"].__set__


def build_pdu(
    command_id: int, sequence_number: int, command_status: int, params: dict[str, Any], tlvs: dict[int, bytes]
) -> PDU:
    """
    ``PDU(command_id, sequence_number, command_status, params, tlvs)``, every field given, faster.

    Why: a frozen dataclass's ``__init__`` sets each field with
    ``object.__setattr__``; setting the slots through their descriptors
    takes about half the time, and every PDU read goes through here.
    The result equals what the class builds (tests/test_codec_fast.py).
    """
    pdu = _new(PDU)
    _set_command_id(pdu, command_id)
    _set_sequence_number(pdu, sequence_number)
    _set_command_status(pdu, command_status)
    _set_params(pdu, params)
    _set_tlvs(pdu, tlvs)
    return pdu


def make_pdu(
    command_id: int,
    sequence_number: int,
    command_status: int = 0,
    tlvs: dict[int, bytes] | None = None,
    **params: Any,
) -> PDU:
    """
    Build a PDU, filling mandatory fields that are not given with their NULL value.

    :param command_id: the command.
    :param sequence_number: the header sequence number.
    :param command_status: the header status (0 for requests).
    :param tlvs: optional parameters by tag, raw values.
    :param params: mandatory fields by SMPP name.
    :raises KeyError: for a field the command does not have.
    """
    spec = FIELDS[command_id]
    names = {name for name, _, _ in spec}
    unknown = set(params) - names
    if unknown:
        raise KeyError(f"{CommandId(command_id).name} has no field {sorted(unknown)}")
    full = {name: params.get(name, _DEFAULTS[kind]) for name, kind, _ in spec}
    return PDU(command_id, sequence_number, command_status, full, dict(tlvs or {}))


def make_response(request: PDU, command_status: int = CommandStatus.ESME_ROK, **params: Any) -> PDU:
    """
    The response to ``request``, echoing its sequence number.

    :param request: the request being answered.
    :param command_status: the status to answer with.
    :param params: body fields of the response (ignored by the codec when the status
        is an error for responses whose body the spec omits then).
    """
    return make_pdu(response_id(request.command_id), request.sequence_number, int(command_status), **params)


def tlv_uint(value: int, size: int) -> bytes:
    """Encode an integer TLV value of ``size`` octets."""
    return value.to_bytes(size, "big")


def tlv_cstring(value: str) -> bytes:
    """Encode a C-Octet String TLV value, NUL included."""
    return value.encode("latin-1") + b"\x00"


#: The header: command_length, command_id, command_status, sequence_number.
HEADER = struct.Struct(">IIII")

__all__ = [
    "PDU",
    "DestAddress",
    "UnsuccessSME",
    "FIELDS",
    "HEADER",
    "build_pdu",
    "make_pdu",
    "make_response",
    "tlv_uint",
    "tlv_cstring",
    "Tag",
]
