"""
The records of the message store: plain data with derived fields, no behaviour.

A :class:`MessageRecord` per accepted or originated message part, the
entries of its delivery log, and the :class:`ConcatGroup` that ties the
parts of one concatenated message together.  Kept apart from the store and
the reassembler, which both work on them, so that neither has to import the
other.

A million records are held at once by default, so a record is kept small
(``bench/memory.py`` measures it): slots; a delivery log of slotted entries
rather than dicts, and no container while it holds one; no history object
while the history is the plain one (ENROUTE, then a final state); and the
addresses, octets and text a record shares with the one added before held
once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from smsc_sim.smpp.constants import FINAL_STATES, MessageState

if TYPE_CHECKING:
    from smsc_sim.contracts import ReceiptPlan
    from smsc_sim.smpp.concat import ConcatInfo

__all__ = ["BaseKey", "ConcatGroup", "DeliveryEntry", "MOEntry", "MessageRecord", "ReceiptEntry"]

_UNSET = object()


class _FromOctets:
    """The type of :data:`_FROM_OCTETS`."""


#: a record's text is its short_message read as Latin-1
_FROM_OCTETS = _FromOctets()


class DeliveryEntry:
    """
    One entry of a record's delivery log: a receipt it sent, or for an MO
    record its deliver_sm.  Slotted (a dict per receipt was the largest
    part of a retained record); reads as the dict the API shows (``entry["outcome"]``,
    :meth:`get`, :meth:`to_dict`), whose keys are the fields set, in :attr:`KEYS` order.
    """

    __slots__ = ("time", "outcome", "status", "attempts", "session_id")
    #: the keys of the entry's dict, in order
    KEYS: tuple[str, ...] = ()

    time: float
    outcome: str
    status: int | None
    attempts: int
    session_id: int | None

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, _UNSET) if key in self.KEYS else _UNSET
        if value is _UNSET:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a key, or ``default`` when it is not set."""
        return getattr(self, key, default) if key in self.KEYS else default

    def keys(self) -> list[str]:
        """The keys set, in order."""
        return [key for key in self.KEYS if hasattr(self, key)]

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (the keys set, in order)."""
        data: dict[str, Any] = {}
        for key in self.KEYS:
            value = getattr(self, key, _UNSET)
            if value is not _UNSET:
                data[key] = value
        return data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DeliveryEntry):
            return type(other) is type(self) and other.to_dict() == self.to_dict()
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"

    @staticmethod
    def from_dict(data: dict[str, Any]) -> DeliveryEntry:
        """An entry from its dict (the durable store keeps dicts; keys this version does not know are dropped)."""
        entry: DeliveryEntry = MOEntry() if "kind" in data or "stat" not in data else ReceiptEntry()
        keys = entry.KEYS
        for key, value in data.items():
            if key in keys:
                setattr(entry, key, value)
        return entry


class ReceiptEntry(DeliveryEntry):
    """A receipt a record sent; ``done`` is set once the router is done with it."""

    __slots__ = ("stat", "err", "intermediate", "command", "done")
    KEYS = ("time", "stat", "err", "intermediate", "command", "outcome", "status", "attempts", "session_id", "done")

    stat: str
    err: int
    intermediate: bool
    command: str
    done: float

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (the keys set, in order)."""
        try:
            data = {
                "time": self.time, "stat": self.stat, "err": self.err, "intermediate": self.intermediate,
                "command": self.command, "outcome": self.outcome, "status": self.status, "attempts": self.attempts,
                "session_id": self.session_id,
            }  # fmt: skip
        except AttributeError:  # one restored with keys missing
            return super().to_dict()
        if hasattr(self, "done"):
            data["done"] = self.done
        return data

    @classmethod
    def created(cls, time: float, stat: str, err: int, intermediate: bool, command: str) -> ReceiptEntry:
        """A receipt just built: outcome ``created``, no status, no attempt yet."""
        entry = cls()
        entry.time = time
        entry.stat = stat
        entry.err = err
        entry.intermediate = intermediate
        entry.command = command
        entry.outcome = "created"
        entry.status = None
        entry.attempts = 0
        entry.session_id = None
        return entry


class MOEntry(DeliveryEntry):
    """The deliver_sm of an MO record."""

    __slots__ = ("kind",)
    KEYS = ("time", "kind", "outcome", "status", "attempts", "session_id")

    kind: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (the keys set, in order)."""
        try:
            return {
                "time": self.time, "kind": self.kind, "outcome": self.outcome, "status": self.status,
                "attempts": self.attempts, "session_id": self.session_id,
            }  # fmt: skip
        except AttributeError:  # one logged before its deliver_sm was (or restored with keys missing)
            return super().to_dict()

    @classmethod
    def created(cls, time: float) -> MOEntry:
        """An MO deliver_sm just built."""
        entry = cls()
        entry.time = time
        entry.kind = "mo"
        entry.outcome = "created"
        entry.status = None
        entry.attempts = 0
        entry.session_id = None
        return entry


class MessageRecord:
    """
    One message part the SMSC accepted (``direction == "mt"``) or originated (``"mo"``).

    Mutable, and changed only by the core.  ``key`` is the store key; it
    equals ``message_id`` except for the second and later destinations of a
    submit_multi, which share the submit_multi_resp's message_id (the id the
    ESME knows) and are keyed ``<message_id>/<n>``.
    """

    __slots__ = (
        "key", "message_id", "number", "direction", "command", "account", "instance", "session_id",
        "service_type", "source_addr", "source_ton", "source_npi", "destination_addr", "dest_ton", "dest_npi",
        "esm_class", "protocol_id", "priority_flag", "data_coding", "short_message", "_text", "encoding",
        "undecodable", "binary", "concat", "group", "siblings", "registered_delivery", "submit_time",
        "schedule_time", "validity_time", "final_time", "state", "err", "changes", "deliveries", "plan",
        "generation", "started", "reason", "rule", "tlv_tags", "base_time", "replaced_time", "sequence_number",
    )  # fmt: skip

    def __init__(
        self,
        key: str,
        message_id: str,
        number: int,
        account: str,
        instance: str,
        session_id: int | None,
        submit_time: float,
        direction: str = "mt",
        command: str = "submit_sm",
    ) -> None:
        self.key = key
        self.message_id = message_id
        self.number = number
        self.direction = direction
        self.command = command
        self.account = account
        self.instance = instance
        self.session_id = session_id
        self.service_type = ""
        self.source_addr = ""
        self.source_ton = 0
        self.source_npi = 0
        self.destination_addr = ""
        self.dest_ton = 0
        self.dest_npi = 0
        self.esm_class = 0
        self.protocol_id = 0
        self.priority_flag = 0
        self.data_coding = 0
        self.short_message = b""
        #: the text, or :data:`_FROM_OCTETS` while it is the octets read as Latin-1 (see :meth:`text_from_octets`)
        self._text: str | None | _FromOctets = None
        self.encoding = ""
        self.undecodable = False
        self.binary = False
        self.concat: ConcatInfo | None = None
        self.group: ConcatGroup | None = None
        self.siblings: tuple[MessageRecord, ...] = ()
        self.registered_delivery = 0
        self.submit_time = submit_time
        self.schedule_time: float | None = None
        self.validity_time: float = 0.0
        self.final_time: float | None = None
        self.state = MessageState.ENROUTE
        self.err = 0
        #: the history, flat: ``(time, state name, time, state name, ...)``; ``None`` while it is the plain
        #: one, which needs no object: ENROUTE at ``submit_time``, then (once final) the state at ``final_time``
        self.changes: tuple[Any, ...] | None = None
        #: the delivery log: ``None``, one entry, or a tuple of them once there are several
        self.deliveries: DeliveryEntry | tuple[DeliveryEntry, ...] | None = None
        self.plan: ReceiptPlan | None = None
        #: bumped whenever the record's timeline must start over (replace, cancel, force)
        self.generation = 0
        #: the receipt plan has been started (the response was written)
        self.started = False
        self.reason: str | None = None
        self.rule: str | None = None
        self.tlv_tags: tuple[int, ...] = ()
        #: when the receipt plan's delays count from (response written, or schedule time)
        self.base_time = 0.0
        #: when the message was last replaced (the receipt's "submit date" then)
        self.replaced_time: float | None = None
        #: the sequence_number of the submit that made it, in this process (the submits log shows it; a record
        #: restored from the journal or read from another process has none)
        self.sequence_number: int | None = None

    @property
    def final(self) -> bool:
        """Whether the record reached a final state."""
        return self.state in FINAL_STATES

    @property
    def text(self) -> str | None:
        """The message's text, ``None`` when it has none (binary, undecodable)."""
        text = self._text
        if text is _FROM_OCTETS:
            return self.short_message.decode("latin-1")
        return text  # type: ignore[return-value]

    @text.setter
    def text(self, value: str | None) -> None:
        self._text = value

    def text_from_octets(self) -> None:
        """
        Note that the text is the octets read as Latin-1 (or ASCII), as for
        most messages: it is then read from them when asked for rather than
        held twice (a string per retained record).
        """
        self._text = _FROM_OCTETS

    def flat_history(self) -> tuple[Any, ...]:
        """The history, flat: ``(time, state name, time, state name, ...)``."""
        changes = self.changes
        if changes is not None:
            return changes
        if self.state in FINAL_STATES:
            return (self.submit_time, "ENROUTE", self.final_time, self.state.name)
        return (self.submit_time, "ENROUTE")

    def note_change(self, time: float, name: str) -> None:
        """Add a history entry (a state, or ``REPLACED``); before the record's state changes, if it does."""
        self.changes = self.flat_history() + (time, name)

    @property
    def history(self) -> list[tuple[float, str]]:
        """The state changes as ``(time, state name)`` pairs, oldest first (a new list)."""
        pairs = iter(self.flat_history())
        return list(zip(pairs, pairs))

    @history.setter
    def history(self, pairs: Iterable[tuple[float, str]]) -> None:
        """Set the history (after the state and final time): kept as the plain one when it is."""
        flat = tuple(item for pair in pairs for item in pair)
        self.changes = None
        if flat != self.flat_history():
            self.changes = flat

    @property
    def receipts(self) -> tuple[DeliveryEntry, ...] | None:
        """The delivery log (its receipts, or for an MO record its deliver_sm), oldest first; ``None`` while empty."""
        log = self.deliveries
        if log is None or isinstance(log, tuple):
            return log
        return (log,)

    @receipts.setter
    def receipts(self, entries: Sequence[DeliveryEntry | dict[str, Any]] | None) -> None:
        self.deliveries = None
        for entry in entries or ():
            self.log_delivery(entry if isinstance(entry, DeliveryEntry) else DeliveryEntry.from_dict(entry))

    def log_delivery(self, entry: DeliveryEntry) -> DeliveryEntry:
        """
        Append an entry to the record's delivery log (its receipts, or for an
        MO record its deliver_sm) and return it, for later updates.
        """
        log = self.deliveries
        if log is None:
            self.deliveries = entry
        elif isinstance(log, tuple):
            self.deliveries = log + (entry,)
        else:
            self.deliveries = (log, entry)
        return entry

    def last_delivery(self) -> DeliveryEntry | None:
        """The newest entry of the delivery log, if any."""
        log = self.deliveries
        return log[-1] if isinstance(log, tuple) else log

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data for the inspection API."""
        concat: dict[str, Any] | None = None
        if self.concat is not None:
            group = self.group
            concat = {
                "kind": self.concat.kind,
                "reference": self.concat.reference,
                "total": self.concat.total,
                "seqnum": self.concat.seqnum,
                "complete": bool(group is not None and group.complete),
                "parts": group.part_ids() if group is not None else [],
                "text": group.text if group is not None else None,
            }
        return {
            "message_id": self.message_id,
            "key": self.key,
            "direction": self.direction,
            "command": self.command,
            "account": self.account,
            "instance": self.instance,
            "session_id": self.session_id,
            "service_type": self.service_type,
            "source_addr": self.source_addr,
            "source_addr_ton": self.source_ton,
            "source_addr_npi": self.source_npi,
            "destination_addr": self.destination_addr,
            "dest_addr_ton": self.dest_ton,
            "dest_addr_npi": self.dest_npi,
            "esm_class": self.esm_class,
            "protocol_id": self.protocol_id,
            "priority_flag": self.priority_flag,
            "data_coding": self.data_coding,
            "short_message_hex": self.short_message.hex(),
            "text": self.text,
            "encoding": self.encoding,
            "undecodable": self.undecodable,
            "binary": self.binary,
            "concat": concat,
            "registered_delivery": self.registered_delivery,
            "submit_time": self.submit_time,
            "schedule_time": self.schedule_time,
            "validity_time": self.validity_time,
            "final_time": self.final_time,
            "replaced_time": self.replaced_time,
            "state": self.state.name,
            "err": self.err,
            "history": [{"time": time, "state": state} for time, state in self.history],
            "receipts": [entry.to_dict() for entry in self.receipts or ()],
            "rule": self.rule,
            "reason": self.reason,
            "tlv_tags": list(self.tlv_tags),
        }


#: (account, source, destination, kind, reference, total): one logical message whatever the instance
BaseKey = tuple[str, str, str, str, int, int]


class ConcatGroup:
    """The parts of one concatenated message seen on one instance."""

    __slots__ = (
        "base", "instance", "total", "opened", "records", "payloads", "complete", "closed", "text", "held", "instances",
    )  # fmt: skip

    def __init__(self, base: BaseKey, instance: str, total: int, opened: float) -> None:
        self.base = base
        self.instance = instance
        self.total = total
        self.opened = opened
        self.records: list[MessageRecord] = []
        self.payloads: dict[int, bytes] = {}
        self.complete = False
        self.closed = False
        self.text: str | None = None
        #: plan steps of parts that came due before the message was complete:
        #: (record, generation, step index)
        self.held: list[tuple[MessageRecord, int, int]] = []
        #: every instance that had parts of this logical message while this group was open
        #: (a set shared by the groups of those instances)
        self.instances: set[str] = {instance}

    def part_ids(self) -> list[str]:
        """The message ids of the parts, in part order."""
        ordered = sorted(self.records, key=lambda record: record.concat.seqnum if record.concat else 0)
        return [record.message_id for record in ordered]
