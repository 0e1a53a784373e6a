"""
What a submit becomes: the facts its scenario decides on
(:class:`~smsc_sim.contracts.MessageFacts`), the
:class:`~smsc_sim.core.store.MessageRecord` of an accepted message, and its
concatenation.  Plain functions of the PDU's values, used once per message
by :class:`smsc_sim.core.submit.Submissions`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from smsc_sim.contracts import MessageFacts, ReceiptPlan, Verdict
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.store import MessageRecord
from smsc_sim.core.validate import Invalid
from smsc_sim.smpp.concat import ConcatError, ConcatInfo, concat_info, payload_of
from smsc_sim.smpp.constants import ESM_CLASS_UDHI
from smsc_sim.smpp.pdu import PDU
from smsc_sim.smpp.text import DecodedText

__all__ = ["concat_parts", "fill_record", "message_facts", "new_record"]

_EMPTY: frozenset[int] = frozenset()
#: encodings whose text is the octets read as Latin-1 (every octet one character, the same one)
_OCTET_TEXT = frozenset({"latin-1", "ascii"})

# MessageFacts without the frozen dataclass __init__, which sets each field with
# object.__setattr__: a MessageFacts gets its slots set directly, here, field by field
_new = object.__new__
_FACT_SLOTS = {field.name: MessageFacts.__dict__[field.name].__set__ for field in dataclasses.fields(MessageFacts)}
_set_command, _set_instance, _set_system_id, _set_bind_type = (
    _FACT_SLOTS["command"], _FACT_SLOTS["instance"], _FACT_SLOTS["system_id"], _FACT_SLOTS["bind_type"],
)
_set_source_addr, _set_destination_addr, _set_text, _set_data_coding = (
    _FACT_SLOTS["source_addr"], _FACT_SLOTS["destination_addr"], _FACT_SLOTS["text"], _FACT_SLOTS["data_coding"],
)
_set_esm_class, _set_registered_delivery, _set_parts_total, _set_tlv_tags = (
    _FACT_SLOTS["esm_class"], _FACT_SLOTS["registered_delivery"], _FACT_SLOTS["parts_total"], _FACT_SLOTS["tlv_tags"],
)
_set_dpf_requested = _FACT_SLOTS["dpf_requested"]
if len(_FACT_SLOTS) != 13:
    raise TypeError("MessageFacts changed: message_facts sets every one of its fields")


def concat_parts(esm_class: int, short_message: bytes, tlvs: dict[int, bytes]) -> tuple[ConcatInfo | None, bytes]:
    """The concatenation info of a submit and its payload; raises :class:`Invalid` for a bad UDH or SAR TLVs."""
    if not tlvs and not esm_class & ESM_CLASS_UDHI:
        return None, short_message  # no UDH, no SAR TLVs, no message_payload: a single message as it came
    try:
        return concat_info(esm_class, short_message, tlvs), payload_of(esm_class, short_message, tlvs)
    except ConcatError as e:
        raise Invalid(e.status, str(e)) from None


def message_facts(
    command: str,
    entry: BindEntry,
    p: dict[str, Any],
    *,
    destination: str,
    text: str | None,
    info: ConcatInfo | None,
    tlvs: dict[int, bytes],
) -> MessageFacts:
    """What the scenario decides on for one submit (the first destination of a submit_multi)."""
    facts: MessageFacts = _new(MessageFacts)
    _set_command(facts, command)
    _set_instance(facts, entry.instance)
    _set_system_id(facts, entry.account.system_id)
    _set_bind_type(facts, entry.bind_type)
    _set_source_addr(facts, p["source_addr"])
    _set_destination_addr(facts, destination)
    _set_text(facts, text)
    _set_data_coding(facts, p["data_coding"])
    _set_esm_class(facts, p["esm_class"])
    _set_registered_delivery(facts, p["registered_delivery"])
    _set_parts_total(facts, info.total if info is not None else 1)
    _set_tlv_tags(facts, frozenset(tlvs) if tlvs else _EMPTY)
    # set_dpf 1 (SMPP 3.4 5.3.2.29): the ESME wants an alert_notification when the handset is back
    _set_dpf_requested(facts, bool(tlvs) and tlvs.get(0x0421) == b"\x01")
    return facts


def new_record(
    key: str,
    message_id: str,
    number: int,
    entry: BindEntry,
    pdu: PDU,
    command: str,
    now: float,
    plan: ReceiptPlan,
    verdict: Verdict,
) -> MessageRecord:
    """The record of an accepted message: who sent it, when, from where, with which plan."""
    p = pdu.params
    record = MessageRecord(
        key, message_id, number, entry.account.system_id, entry.instance, entry.session_id, now, "mt", command
    )
    record.service_type = p["service_type"]
    record.source_ton, record.source_npi, record.source_addr = (
        p["source_addr_ton"],
        p["source_addr_npi"],
        p["source_addr"],
    )
    record.plan = plan
    record.rule = verdict.rule
    record.sequence_number = pdu.sequence_number
    if pdu.tlvs:
        record.tlv_tags = tuple(pdu.tlvs)
    return record


def fill_record(
    record: MessageRecord,
    p: dict[str, Any],
    decoded: DecodedText,
    raw: bytes,
    scheduled: float | None,
    validity: float,
    info: ConcatInfo | None,
) -> None:
    """Copy the message itself into a new record: its fields, octets, decoded text, times, concatenation."""
    record.esm_class = p["esm_class"]
    record.protocol_id = p.get("protocol_id", 0)
    record.priority_flag = p.get("priority_flag", 0)
    record.data_coding = p["data_coding"]
    record.registered_delivery = p["registered_delivery"]
    record.short_message = raw
    text = decoded.text
    if text is not None and decoded.encoding in _OCTET_TEXT and len(text) == len(raw):
        record.text_from_octets()  # the text is the octets themselves (no UDH): held once, not twice
    else:
        record.text = text
    record.encoding = decoded.encoding
    record.undecodable = decoded.undecodable
    record.binary = decoded.binary
    record.schedule_time = scheduled
    record.validity_time = validity
    record.concat = info
