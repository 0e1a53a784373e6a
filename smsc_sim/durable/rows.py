"""
The durable store's file (:mod:`smsc_sim.durable.sqlite`): how it is opened,
its journal entries, and message records to and from them (its tables and
field order: :mod:`smsc_sim.durable.schema`; the checks of what is read
back: :mod:`smsc_sim.durable.readback`).

The file holds a ``log`` (one row per commit: a batch of entries) and a
``snapshot`` (every message and owed delivery, rewritten by a pass now and
then; ``meta`` says which generation is complete and from which log row on
the log applies).  Entries: ``W`` a whole record, ``P`` its progress, ``S``
its plan's start, ``D`` a delivery owed, ``d`` a delivery done, ``X`` a
cluster wiped.

A record is kept as three plain values: ``content`` (what the submit said;
changed only by a replace), ``progress`` (state, err, final time, history,
receipt or delivery log, reason) and ``plan`` (the receipt plan).  Entries
are JSON arrays of such values (octets as hex), one batch per row, as JSON
text: plain data only, so a store file can neither run code nor change
anything but the messages it holds.  Every entry read back is checked for
its shape and the type of every value (states and command ids must be known
ones); anything else stops the start with a one-line "damaged" error that
names the file, the row and what is wrong (:func:`replay`).

A batch costs one insert, as before.  The stdlib encoder spends most of its
time writing floats as text (about 0.5 us a float): with it the sqlite store
runs at 46% of the memory store's throughput in ``bench/store_bench.py``, where
the pickles of schema 1 ran at 61%.  :mod:`orjson`, when installed
(``pip install smsc-sim[fast]``), writes the same JSON about seven times
faster and reads it three times faster (55-62% in that bench); it is used then.  Nothing else needs it, and either reads what
the other wrote (text orjson refuses goes to the stdlib parser, whose error
the damaged message quotes).
"""

from __future__ import annotations

import dataclasses
import json
import operator
import sqlite3
from typing import Any, Callable

from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.store import MessageRecord
from smsc_sim.durable.readback import Damaged, checked, show
from smsc_sim.durable.schema import (
    CONTENT,
    SCHEMA,
    SCHEMA_VERSION,
    Messages,
    StoreError,
)
from smsc_sim.smpp.concat import ConcatInfo
from smsc_sim.smpp.constants import MessageState
from smsc_sim.smpp.pdu import FIELDS, PDU

_fields = operator.attrgetter(*CONTENT)


def _encoders() -> dict[str, Callable[[Any], str]]:
    """
    The JSON encoders at hand, by name: the stdlib's, and :mod:`orjson`
    when it is installed (it writes the same JSON seven times faster).
    """
    # compact, and no cycle check (entries are trees of plain values built here)
    stdlib = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    found: dict[str, Callable[[Any], str]] = {"json": stdlib}
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on what is installed
        return found
    fast = orjson.dumps

    def encode(value: Any) -> str:
        try:
            return fast(value).decode()
        except TypeError:  # what orjson does not write (an int over 64 bits): the stdlib does
            return stdlib(value)

    found["orjson"] = encode
    return found


def _parser() -> Callable[[str | bytes], Any]:
    """orjson's parser when installed (three times faster), else the stdlib's."""
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - depends on what is installed
        return json.loads
    return loads


#: the encoders at hand, by name
ENCODERS = _encoders()
_encode = ENCODERS.get("orjson", ENCODERS["json"])
_parse = _parser()


def dumps(entries: list[list[Any]]) -> str:
    """One batch of entries as JSON text."""
    return _encode(entries)


def loads(data: str | bytes) -> list[list[Any]]:
    """
    A batch of entries from its JSON text, each checked and decoded
    (octets back to bytes, TLV tags back to ints).

    :raises Damaged: for text that is not JSON, or an entry of the wrong shape or type.
    """
    if isinstance(data, bytes) and data.startswith(b"\x80"):
        raise Damaged("a pickle: the format of an older smsc-sim, which this one does not read")
    if _parse is not json.loads:
        try:
            return checked(_parse(data))
        except (ValueError, TypeError, RecursionError):
            pass  # orjson refused it, or read an int over 64 bits as a float: the stdlib's reading decides
    try:
        batch = json.loads(data)
    except json.JSONDecodeError as error:  # its message quotes nothing of the text
        raise Damaged(f"not JSON ({error.msg} at character {error.pos})") from None
    except (ValueError, TypeError, RecursionError) as error:  # bad UTF-8, an int of 5,000 digits, deep nesting
        raise Damaged(f"not JSON ({type(error).__name__})") from None
    return checked(batch)


def content(record: MessageRecord) -> list[Any]:
    """What the submit (or a replace) set: the fields of :data:`CONTENT`, the octets, TLV tags, concatenation."""
    concat = record.concat
    return [
        _fields(record),
        record.short_message.hex(),
        record.tlv_tags,
        None if concat is None else (concat.reference, concat.total, concat.seqnum, concat.kind),
    ]


def progress(record: MessageRecord) -> list[Any]:
    """Where the record is: state, err, final time, history, receipt or delivery log, reason."""
    # the file keeps the history as (time, state) pairs and the log as dicts, as the API shows them
    log = record.deliveries
    if log is None:
        entries = None
    elif isinstance(log, tuple):
        entries = [entry.to_dict() for entry in log]
    else:
        entries = [log.to_dict()]
    return [int(record.state), record.err, record.final_time, record.history, entries, record.reason]


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
    """A receipt plan from its plain values (as :func:`loads` checked them)."""
    if data is None:
        return None
    # the same plan value met again (a record read twice): the same object, the same plan
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
    record.receipts = receipts  # dicts in the file, entries in the record
    record.reason = reason
    record.plan = plan_from(stored[2])
    record.started = stored[3] is not None
    record.base_time = stored[3] or 0.0
    return record


@dataclasses.dataclass(frozen=True)
class SavedDelivery:
    """A delivery (receipt or MO deliver_sm) owed when the journal was last written."""

    id: int
    key: str
    entry: int
    kind: str
    message_id: str
    account: str
    instance: str | None
    created: float
    pdu: PDU


def base(record: MessageRecord) -> float | None:
    """When the record's plan started, or is expected to (0 before the journal's ``answer`` set it: not known)."""
    return record.base_time if record.started or record.base_time else None


def whole(cluster: str, record: MessageRecord) -> list[Any]:
    """The ``W`` entry of a record: all of it."""
    return ["W", cluster, record.key, content(record), progress(record), plan(record.plan), base(record)]


def delivery(row: int, tracked: tuple[int, str, str, int], owed: Delivery) -> list[Any]:
    """
    The ``D`` entry of a delivery owed: its PDU's fields (in :data:`~smsc_sim.smpp.pdu.FIELDS`
    order, octets as hex) and TLVs (``[tag, hex]`` pairs), not its octets (the codec costs more).
    """
    _, cluster, key, entry = tracked
    pdu = owed.pdu
    params = pdu.params
    fields = []
    for name, kind, _ in FIELDS[pdu.command_id]:
        value = params.get(name, "" if kind in ("c", "time") else 0)
        fields.append(value.hex() if kind == "sm" else value)
    return [
        "D", row, cluster, key, entry, owed.kind, owed.message_id, owed.account, owed.origin_instance, owed.created,
        int(pdu.command_id), fields, [[tag, value.hex()] for tag, value in pdu.tlvs.items()],
    ]  # fmt: skip


def apply(entry: list[Any], messages: Messages, deliveries: dict[int, list[Any]]) -> None:
    """Replay one journal entry into the messages and deliveries read so far."""
    kind = entry[0]
    if kind == "W":
        messages[(entry[1], entry[2])] = entry[3:7]
    elif kind == "P":
        known = messages.get((entry[1], entry[2]))
        if known is not None:
            known[1], known[3] = entry[3], entry[4]
    elif kind == "S":
        known = messages.get((entry[1], entry[2]))
        if known is not None:
            known[3] = entry[3]
    elif kind == "D":
        deliveries[entry[1]] = entry[2:]
    elif kind == "d":
        deliveries.pop(entry[1], None)
    elif kind == "X":
        for pair in [pair for pair in messages if pair[0] == entry[1]]:
            del messages[pair]
        for row in [row for row, saved in deliveries.items() if saved[0] == entry[1]]:
            del deliveries[row]


def replay(db: sqlite3.Connection, path: str, generation: int, since: int) -> tuple[Messages, dict[int, list[Any]], int]:
    """
    Every message and owed delivery a store holds: its last complete
    snapshot, then its log since that snapshot's pass began.

    :returns: the messages, the deliveries, and how many log entries were read.
    :raises StoreError: for an entry that cannot be read (the file is closed then).
    """
    messages: Messages = {}
    deliveries: dict[int, list[Any]] = {}
    snapshot = db.execute(
        "SELECT part, body FROM snapshot WHERE generation = ? ORDER BY part", (generation,)
    ).fetchall()
    log = db.execute("SELECT seq, body FROM log WHERE seq >= ? ORDER BY seq", (since,)).fetchall()
    logged = 0
    for source, counted, where in ((snapshot, False, "snapshot part"), (log, True, "log row")):
        for number, body in source:
            try:
                entries = loads(body)
                for entry in entries:
                    apply(entry, messages, deliveries)
            except Exception as error:
                db.close()
                what = str(error) if isinstance(error, Damaged) else f"unreadable: {type(error).__name__}"
                raise StoreError(f"store sqlite:{path}: damaged ({where} {number}: {what})") from None
            if counted:
                logged += len(entries)
    return messages, deliveries, logged


def open_store(path: str) -> sqlite3.Connection:
    """
    Open (or create) a store file: WAL, ``synchronous=NORMAL``, exclusive lock, the schema.

    :raises StoreError: it cannot be opened, is not a store, is of another schema version, or is in use.
    """
    where = f"store sqlite:{path}"
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=0.0)  # in use: say so at once
    except sqlite3.Error as error:
        raise StoreError(f"{where}: cannot open ({error}); is its directory there and writable?") from None
    try:
        # exclusive before WAL: no shared-memory file, and a second process gets "locked" at once
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{where}: cannot use write-ahead logging (journal_mode is {mode}); give a file path")
        db.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise StoreError(f"{where}: a SQLite database, but not an smsc-sim store (tables {', '.join(sorted(tables))})")
        db.executescript(SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        version = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0]
        if version != SCHEMA_VERSION:
            older = " (pickled entries, of an older smsc-sim)" if version == "1" else ""
            raise StoreError(
                f"{where}: schema version {show(version)}{older}, this smsc-sim reads {SCHEMA_VERSION};"
                " move the file away to start with an empty store"
            )
    except sqlite3.OperationalError as error:
        db.close()
        why = "in use by another process" if "locked" in str(error) else str(error)
        raise StoreError(f"{where}: cannot use it ({why}); is it writable, and is no other simulator using it?") from None
    except sqlite3.DatabaseError as error:
        db.close()
        raise StoreError(f"{where}: {error} (expected an smsc-sim store, or a new file)") from None
    except StoreError:
        db.close()
        raise
    return db
