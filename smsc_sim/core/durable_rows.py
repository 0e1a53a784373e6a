"""
Message records to and from the entries of the durable store's journal
(:mod:`smsc_sim.core.durable`).

A record is kept as three plain values: ``content`` (what the submit said;
changed only by a replace), ``progress`` (state, err, final time, history,
receipt or delivery log, reason) and ``plan`` (the receipt plan).  Entries
are lists of such values, one batch per pickle (protocol 5): ten times
cheaper than JSON for these records (JSON spends most of its time writing
floats as text).  Reading back allows builtin types and the enums of
:mod:`smsc_sim.smpp.constants` only, so a store file cannot make the
simulator run code.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import operator
import pickle
from typing import Any

from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.core.store import MessageRecord
from smsc_sim.smpp.concat import ConcatInfo
from smsc_sim.smpp.constants import MessageState

#: record fields copied as they are (set at accept, changed only by a replace), in ``content`` order
CONTENT = (
    "message_id", "number", "direction", "command", "account", "instance", "session_id", "service_type",
    "source_addr", "source_ton", "source_npi", "destination_addr", "dest_ton", "dest_npi", "esm_class",
    "protocol_id", "priority_flag", "data_coding", "text", "encoding", "undecodable", "binary",
    "registered_delivery", "submit_time", "schedule_time", "validity_time", "rule", "replaced_time",
)  # fmt: skip
_fields = operator.attrgetter(*CONTENT)


_SAFE_MODULES = frozenset({"smsc_sim.smpp.constants"})


class _Unpickler(pickle.Unpickler):
    """Builtin values, and the SMPP enums that may have slipped into a record (an IntEnum status)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _SAFE_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type) and issubclass(found, enum.Enum):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a store")


def dumps(entries: list[list[Any]]) -> bytes:
    """One batch of entries as bytes."""
    return pickle.dumps(entries, 5)


def loads(data: bytes) -> list[list[Any]]:
    """A batch of entries from its bytes.

    :raises pickle.UnpicklingError: for anything but builtin values and SMPP enums.
    """
    entries: list[list[Any]] = _Unpickler(io.BytesIO(data)).load()
    return entries


def content(record: MessageRecord) -> list[Any]:
    """What the submit (or a replace) set: the fields of :data:`CONTENT`, the octets, TLV tags, concatenation."""
    concat = record.concat
    return [
        _fields(record),
        record.short_message,
        record.tlv_tags,
        None if concat is None else (concat.reference, concat.total, concat.seqnum, concat.kind),
    ]


def progress(record: MessageRecord) -> list[Any]:
    """Where the record is: state, err, final time, history, receipt or delivery log, reason."""
    return [int(record.state), record.err, record.final_time, record.history, record.receipts, record.reason]


#: plan values by plan object id (scenarios share a few plan objects among all their messages)
_plans: dict[int, tuple[ReceiptPlan, dict[str, Any]]] = {}


def plan(value: ReceiptPlan | None) -> dict[str, Any] | None:
    """A receipt plan as plain values (cached by plan object)."""
    if value is None:
        return None
    known = _plans.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    data: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if field.name == "steps":
            item = [dataclasses.asdict(step) for step in item]
        elif isinstance(item, bytes):
            item = {"hex": item.hex()}
        data[field.name] = item
    if len(_plans) < 1024:  # a bound, so that odd plans (restored, trimmed) do not pile up
        _plans[id(value)] = (value, data)  # the plan is kept, so its id is not reused
    return data


#: plans read back, by their JSON (restored records share their plan objects, as accepted ones do)
_read: dict[str, ReceiptPlan] = {}
_plan_key = json.JSONEncoder(sort_keys=True, default=lambda value: value.hex()).encode


def plan_from(data: dict[str, Any] | None) -> ReceiptPlan | None:
    """A receipt plan from its plain values (fields this version does not know are ignored)."""
    if data is None:
        return None
    # entries of one batch share one plan value (pickle keeps shared objects shared): the same object, the same plan
    seen = _seen.get(id(data))
    if seen is not None and seen[0] is data:
        return seen[1]
    text = _plan_key(data)
    known = _read.get(text)
    if known is not None:
        _remember(data, known)
        return known
    names = {field.name for field in dataclasses.fields(ReceiptPlan)}
    values: dict[str, Any] = {}
    for name, item in data.items():
        if name not in names:
            continue
        if name == "steps":
            item = tuple(ReceiptStep(**step) for step in item)
        elif isinstance(item, dict) and "hex" in item:
            item = bytes.fromhex(item["hex"])
        values[name] = item
    result = ReceiptPlan(**values)
    if len(_read) < 1024:
        _read[text] = result
    _remember(data, result)
    return result


#: plan values met last while reading, by id (kept alive here, so an id is not reused meanwhile)
_seen: dict[int, tuple[dict[str, Any], ReceiptPlan]] = {}


def _remember(data: dict[str, Any], result: ReceiptPlan) -> None:
    if len(_seen) >= 4096:
        _seen.clear()
    _seen[id(data)] = (data, result)


def record_from(key: str, stored: list[Any]) -> MessageRecord:
    """
    A record from what the journal kept: ``[content, progress, plan, base_time]``
    (base_time ``None``: the plan had not started).
    """
    (fields, short_message, tlv_tags, concat), (state, err, final_time, history, receipts, reason) = stored[:2]
    values = dict(zip(CONTENT, fields))
    record = MessageRecord(
        key,
        values["message_id"],
        values["number"],
        values["account"],
        values["instance"],
        values["session_id"],
        values["submit_time"],
        values["direction"],
        values["command"],
    )
    for name, value in values.items():
        setattr(record, name, value)
    record.short_message = bytes(short_message)
    record.tlv_tags = tuple(tlv_tags)
    if concat is not None:
        record.concat = ConcatInfo(*concat)
    record.state = MessageState(state)
    record.err = err
    record.final_time = final_time
    record.history = [(time, name) for time, name in history]
    record.receipts = receipts
    record.reason = reason
    record.plan = plan_from(stored[2])
    record.started = stored[3] is not None
    record.base_time = stored[3] or 0.0
    return record
