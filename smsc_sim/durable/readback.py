"""
Check what the durable store reads back: every value of every entry, by its
place, before anything of it is restored.

An entry of the wrong shape, a value of the wrong type, an unknown state or
command id: each raises :class:`Damaged`, whose message names where it is
(``entry 0 (W) progress state``) with a short escaped excerpt of the value.
:func:`smsc_sim.durable.rows.loads` calls :func:`checked` on every row.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from typing import Any, Callable

from smsc_sim.contracts import ReceiptPlan
from smsc_sim.durable.schema import CONTENT
from smsc_sim.smpp.constants import MessageState
from smsc_sim.smpp.pdu import FIELDS
from smsc_sim.smpp.receipt import RECEIPT_ID_FORMATS, STATS

__all__ = ["EXCERPT", "Damaged", "checked", "show"]


class Damaged(ValueError):
    """
    An entry read back is not what this version writes; the message says
    where (``entry 0 (W) progress state``) and what, briefly.

    :param what: what is wrong (``is 99, not a known value``).
    :param where: the names of the places around it, outermost first.
    """

    def __init__(self, what: str, where: tuple[str, ...] = ()) -> None:
        super().__init__(" ".join(name for name in (*where, what) if name))
        self.what = what
        self.where = where

    def within(self, name: str) -> Damaged:
        """The same error, seen from the value that holds the bad one under ``name``."""
        return Damaged(self.what, (name, *self.where))


def checked(batch: Any) -> list[list[Any]]:
    """The entries of a parsed row, checked and decoded."""
    if type(batch) is not list:
        raise Damaged(f"a row is a list of entries, not {show(batch)}")
    entries = []
    for number, entry in enumerate(batch):
        try:
            entries.append(_entry(entry))
        except Damaged as error:
            raise error.within(f"entry {number}") from None
    return entries


# ----------------------------------------------------------------------
# checking what is read back: every value of every entry, by its place
# ----------------------------------------------------------------------
# A check takes a value read back and returns it decoded, or raises Damaged;
# the place is added on the way out, so that a good value costs no text.

#: what an error shows of a bad value, at most
EXCERPT = 40

Check = Callable[[Any], Any]


def _brief(text: str) -> str:
    """Text as an error shows it: escaped (no control or non-ASCII character), at most :data:`EXCERPT` characters."""
    escaped = ascii(text[: EXCERPT + 1])[1:-1]
    return escaped if len(escaped) <= EXCERPT and len(text) <= EXCERPT else escaped[:EXCERPT] + "..."


def show(value: Any) -> str:
    """A bad value as an error shows it: a short excerpt of a scalar, the type of a container."""
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'dict'} of {len(value)}"
    if isinstance(value, str):
        return f"'{_brief(value)}'"
    return _brief(repr(value)) if isinstance(value, (bool, int, float)) or value is None else type(value).__name__


def _bad(value: Any, expected: str) -> Damaged:
    return Damaged(f"is {show(value)}, not {expected}")


def _int(value: Any) -> int:
    if type(value) is int:  # not bool, not float
        return value
    raise _bad(value, "an integer")


def _num(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _bad(value, "a number")


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise _bad(value, "a string")


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _bad(value, "true or false")


def _hex(value: Any) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise _bad(value, "hex octets") from None


def _list(value: Any) -> list[Any]:
    if type(value) is list:
        return value
    raise _bad(value, "a list")


def _tag(value: Any) -> int:
    if type(value) is int and 0 <= value <= 0xFFFF:
        return value
    raise _bad(value, "a 16-bit tag")


#: the types a plain check passes unchanged (a value of another type goes through the check itself)
_PASSES: dict[Check, frozenset[type]] = {
    _int: frozenset({int}), _num: frozenset({float}), _str: frozenset({str}), _bool: frozenset({bool}),
}  # fmt: skip


def _optional(check: Check) -> Check:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    if check in _PASSES:
        _PASSES[optional] = _PASSES[check] | {type(None)}
    return optional


def _one_of(values: frozenset[Any], check: Check = _str) -> Check:
    def one_of(value: Any) -> Any:
        if check(value) in values:
            return value
        raise _bad(value, "a known value")

    return one_of


def _record(checks: tuple[Check, ...], names: tuple[str, ...]) -> Check:
    """A list of exactly ``len(checks)`` values, each checked by its own check and named by its name."""
    size = len(checks)
    # restore reads every entry: the plain values of a list are checked at once, by the tuple of their
    # types (one of the few that pass); only the others go through their checks one by one
    plain = [i for i, check in enumerate(checks) if check in _PASSES]
    others = [(i, checks[i], names[i]) for i in range(size) if i not in plain]
    signatures: frozenset[tuple[type, ...]] | None = None
    if plain:
        combinations = itertools.product(*(_PASSES[checks[i]] for i in plain))
        signatures = frozenset(itertools.islice(combinations, 4097))
        if len(signatures) > 4096:
            signatures = None
    pick: Callable[[list[Any]], tuple[Any, ...]] | None = None
    if signatures is not None:
        first = plain[0]
        pick = operator.itemgetter(*plain) if len(plain) > 1 else lambda value: (value[first],)

    def slow(value: list[Any]) -> list[Any]:
        try:
            return [check(item) for check, item in zip(checks, value)]
        except Damaged:
            for name, check, item in zip(names, checks, value):  # which one (only when one is bad)
                try:
                    check(item)
                except Damaged as error:
                    raise error.within(name) from None
            raise

    def record(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _bad(value, "a list")
        if len(value) != size:
            raise Damaged(f"has {len(value)} values, not {size}")
        if pick is None or tuple(map(type, pick(value))) not in signatures:  # type: ignore[operator]
            return slow(value)
        for index, check, name in others:
            try:
                value[index] = check(value[index])
            except Damaged as error:
                raise error.within(name) from None
        return value

    return record


def _list_of(check: Check) -> Check:
    """A list of any length, each value checked by ``check`` (and named by its index)."""

    def list_of(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _bad(value, "a list")
        try:
            return [check(item) for item in value]
        except Damaged:
            for index, item in enumerate(value):
                try:
                    check(item)
                except Damaged as error:
                    raise error.within(str(index)) from None
            raise

    return list_of


def _keyed(checks: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A dict of known keys (``required`` ones there), each value checked by its key's check."""
    plain = {name: _PASSES[check] for name, check in checks.items() if check in _PASSES}

    def keyed(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _bad(value, "a dict")
        for name, item in value.items():
            passes = plain.get(name)
            if passes is not None and type(item) in passes:
                continue
            check = checks.get(name)
            if check is None:
                raise Damaged(f"has an unknown key {show(name)}")
            try:
                value[name] = check(item)
            except Damaged as error:
                raise error.within(name) from None
        for name in required:
            if name not in value:
                raise Damaged(f"has no {name}")
        return value

    return keyed


_opt_int, _opt_num, _opt_str = _optional(_int), _optional(_num), _optional(_str)
_STATES = frozenset(int(state) for state in MessageState)
#: the names a record's history holds: its states, and REPLACED
_HISTORY_NAMES = frozenset(state.name for state in MessageState) | {"REPLACED"}
#: commands a delivery may be (those of which FIELDS knows the body)
_COMMANDS = frozenset(int(command) for command in FIELDS)

_content = _record(
    (
        _record(
            (
                _str, _int, _one_of(frozenset({"mt", "mo"})), _str, _str, _str, _opt_int, _str,  # .. service_type
                _str, _int, _int, _str, _int, _int, _int,  # source_addr .. esm_class
                _int, _int, _int, _opt_str, _str, _bool, _bool,  # protocol_id .. binary
                _int, _num, _opt_num, _num, _opt_str, _opt_num,  # registered_delivery .. replaced_time
            ),
            CONTENT,
        ),
        _hex,
        _list_of(_tag),
        _optional(_record((_int, _int, _int, _str), ("reference", "total", "seqnum", "kind"))),
    ),
    ("", "short_message", "tlv_tags", "concat"),
)  # fmt: skip

_receipt = _keyed(
    {
        "time": _num, "stat": _one_of(STATS), "err": _int, "intermediate": _bool, "command": _str,
        "outcome": _str, "status": _opt_int, "attempts": _int, "session_id": _opt_int, "done": _num, "kind": _str,
    },
    ("time",),
)  # fmt: skip
_progress = _record(
    (
        _one_of(_STATES, _int),
        _int,
        _opt_num,
        _list_of(_record((_num, _one_of(_HISTORY_NAMES)), ("time", "state"))),
        _optional(_list_of(_receipt)),
        _opt_str,
    ),
    ("state", "err", "final_time", "history", "receipts", "reason"),
)
_step = _keyed({"delay": _num, "stat": _one_of(STATS), "err": _int, "intermediate": _bool}, ("delay", "stat"))
_PLAN_CHECKS: dict[str, Check] = {
    "steps": _list_of(_step),
    "id_format": _one_of(frozenset(RECEIPT_ID_FORMATS)),
    "tlv_id_format": _one_of(frozenset(RECEIPT_ID_FORMATS) | {"as-submitted", "omit"}),
    "duplicate": _bool,
    "network_error_code": _optional(_keyed({"hex": lambda value: _hex(value).hex()}, ("hex",))),
    "per_part": _one_of(frozenset({"all", "last"})),
}
assert set(_PLAN_CHECKS) == {field.name for field in dataclasses.fields(ReceiptPlan)}
_plan = _optional(_keyed(_PLAN_CHECKS))

#: the check of each kind of PDU field (submit_multi's destinations never are in a delivery)
_FIELD_CHECKS: dict[str, Check] = {"c": _str, "time": _str, "i1": _int, "i4": _int, "sm": _hex}
#: the check of a delivery's fields, by command
_PDU_FIELDS: dict[int, Check] = {
    int(command): _record(tuple(_FIELD_CHECKS[kind] for _, kind, _ in spec), tuple(name for name, _, _ in spec))
    for command, spec in FIELDS.items()
    if all(kind in _FIELD_CHECKS for _, kind, _ in spec)
}
_tlvs = _list_of(_record((_tag, _hex), ("tag", "value")))

#: entry kind -> the checks of its values after the kind, and their names
_ENTRY_VALUES: dict[str, tuple[tuple[Check, ...], tuple[str, ...]]] = {
    "W": ((_str, _str, _content, _progress, _plan, _opt_num), ("cluster", "key", "content", "progress", "plan", "base")),
    "P": ((_str, _str, _progress, _opt_num), ("cluster", "key", "progress", "base")),
    "S": ((_str, _str, _opt_num), ("cluster", "key", "base")),
    "D": (
        (_int, _str, _str, _int, _str, _str, _str, _opt_str, _num, _one_of(frozenset(_PDU_FIELDS), _int), _list, _tlvs),
        ("row", "cluster", "key", "entry", "kind", "message_id", "account", "instance", "created", "command",
         "fields", "tlvs"),
    ),
    "d": ((_int,), ("row",)),
    "X": ((_str,), ("cluster",)),
}  # fmt: skip
#: entry kind -> the check of the whole entry (its kind first), and how many values it has
_ENTRIES = {
    kind: (_record((_str, *checks), ("", *names)), len(checks) + 1) for kind, (checks, names) in _ENTRY_VALUES.items()
}
_PDU_NAMES = {command: tuple(name for name, _, _ in FIELDS[command]) for command in _PDU_FIELDS}


def _entry(value: Any) -> list[Any]:
    """One entry, checked and decoded (octets as bytes, a delivery's fields and TLVs as the PDU keeps them)."""
    if type(value) is not list or not value:
        raise Damaged(f"is {show(value)}, not an entry")
    kind = value[0]
    known = _ENTRIES.get(kind) if type(kind) is str else None
    if known is None:
        raise Damaged(f"is of an unknown kind {show(kind)}")
    check, size = known
    try:
        if len(value) != size:
            raise Damaged(f"has {len(value)} values, not {size}")
        decoded: list[Any] = check(value)
        if kind == "D":
            command = decoded[10]
            try:
                decoded[11] = dict(zip(_PDU_NAMES[command], _PDU_FIELDS[command](decoded[11])))
            except Damaged as error:
                raise error.within("fields") from None
            decoded[12] = {tag: octets for tag, octets in decoded[12]}
    except Damaged as error:
        raise error.within(f"({kind})") from None
    return decoded
