"""
The message store of one cluster: a record per accepted message part.

Bounded by ``store_max_messages``: when full, final records are evicted
oldest-final first; when only pending ones remain, a new submit gets
ESME_RMSGQFUL.  Final records older than ``store_final_ttl`` are evicted
lazily (on every add and every inspection), so the store needs no timer.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from smsc_sim.smpp.constants import FINAL_STATES, MessageState

if TYPE_CHECKING:
    from smsc_sim.contracts import ReceiptPlan
    from smsc_sim.core.reassembly import ConcatGroup
    from smsc_sim.smpp.concat import ConcatInfo


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
        "esm_class", "protocol_id", "priority_flag", "data_coding", "short_message", "text", "encoding",
        "undecodable", "binary", "concat", "group", "siblings", "registered_delivery", "submit_time",
        "schedule_time", "validity_time", "final_time", "state", "err", "history", "receipts", "plan",
        "generation", "started", "reason", "rule", "tlv_tags", "base_time", "replaced_time",
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
        self.text: str | None = None
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
        self.history: list[tuple[float, str]] = [(submit_time, "ENROUTE")]
        self.receipts: list[dict[str, Any]] | None = None
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

    @property
    def final(self) -> bool:
        """Whether the record reached a final state."""
        return self.state in FINAL_STATES

    def log_delivery(self, **entry: Any) -> dict[str, Any]:
        """
        Append an entry to the record's delivery log (its receipts, or for an
        MO record its deliver_sm) and return it, for later updates.
        """
        if self.receipts is None:
            self.receipts = []
        self.receipts.append(entry)
        return entry

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
            "receipts": [dict(entry) for entry in self.receipts or ()],
            "rule": self.rule,
            "reason": self.reason,
            "tlv_tags": list(self.tlv_tags),
        }


class StoreFull(Exception):
    """The store holds only pending records and no more fit (ESME_RMSGQFUL)."""


class MessageStore:
    """
    Records by key, bounded.

    :param max_messages: most records held.
    :param final_ttl: seconds a final record is kept.
    :param now: the clock reading function.
    """

    def __init__(self, max_messages: int, final_ttl: float, now: Callable[[], float]) -> None:
        self.max_messages = max_messages
        self.final_ttl = final_ttl
        self._now = now
        self._records: dict[str, MessageRecord] = {}
        #: records not yet final, by key (what cancel and replace scan)
        self.pending: dict[str, MessageRecord] = {}
        #: (final time, record) in the order records became final
        self._finals: deque[tuple[float, MessageRecord]] = deque()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> MessageRecord | None:
        """The record of that key (a message_id), if held."""
        return self._records.get(key)

    def add(self, record: MessageRecord) -> None:
        """
        Hold a new pending record, making room if needed.

        :raises StoreFull: when the store is full of pending records.
        """
        self.sweep()
        if len(self._records) >= self.max_messages and not self._evict_one():
            raise StoreFull()
        self._records[record.key] = record
        if record.final:
            self._finals.append((record.final_time or self._now(), record))
        else:
            self.pending[record.key] = record

    def room(self) -> bool:
        """Whether one more record fits (evicting a final one if needed)."""
        self.sweep()
        return len(self._records) < self.max_messages or self._evict_one()

    def finalized(self, record: MessageRecord) -> None:
        """Note that a record reached a final state (it becomes evictable)."""
        if self.pending.pop(record.key, None) is not None:
            self._finals.append((record.final_time or self._now(), record))

    def _evict_one(self) -> bool:
        while self._finals:
            _, record = self._finals.popleft()
            if self._records.get(record.key) is record:
                self._drop(record)
                return True
        return False

    def _drop(self, record: MessageRecord) -> None:
        """Forget a record; break its reference cycles so that reference counting frees it (frozen or not)."""
        del self._records[record.key]
        self.evicted += 1
        record.siblings = ()
        record.group = None

    def sweep(self) -> None:
        """Evict final records older than the TTL."""
        finals = self._finals
        if not finals:
            return
        limit = self._now() - self.final_ttl
        while finals and finals[0][0] <= limit:
            _, record = finals.popleft()
            if self._records.get(record.key) is record:
                self._drop(record)

    def __iter__(self) -> Iterator[MessageRecord]:
        """Every record, oldest submit first."""
        self.sweep()
        return iter(list(self._records.values()))

    def values(self) -> Iterable[MessageRecord]:
        """Every record, oldest submit first (a snapshot)."""
        return list(self)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()
        self.pending.clear()
        self._finals.clear()


def select(
    records: Iterable[MessageRecord],
    account: str | None = None,
    instance: str | None = None,
    source: str | None = None,
    destination: str | None = None,
    state: str | MessageState | None = None,
    since: float | None = None,
    until: float | None = None,
    text: str | None = None,
    direction: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> list[MessageRecord]:
    """
    The records matching every filter given, in the order of ``records``.

    :param state: a state name (``DELIVERED``) or value; ``pending`` matches every non-final one.
    :param since: submitted at or after this time; ``until``: before it.
    :param text: contained in the text (or the reassembled text).
    :param limit: most records returned (``None``: all); ``offset``: matches skipped first.
    :raises KeyError: for an unknown state name.
    """
    wanted: MessageState | None = None
    pending_only = False
    if isinstance(state, MessageState):
        wanted = state
    elif state is not None:
        if state.lower() == "pending":
            pending_only = True
        else:
            wanted = MessageState[state.upper()]
    found: list[MessageRecord] = []
    skipped = 0
    for record in records:
        if (
            (account is not None and record.account != account)
            or (instance is not None and record.instance != instance)
            or (source is not None and record.source_addr != source)
            or (destination is not None and record.destination_addr != destination)
            or (wanted is not None and record.state is not wanted)
            or (pending_only and record.final)
            or (since is not None and record.submit_time < since)
            or (until is not None and record.submit_time >= until)
            or (direction is not None and record.direction != direction)
        ):
            continue
        if text is not None:
            whole = record.group.text if record.group is not None else None
            if text not in (record.text or "") and text not in (whole or ""):
                continue
        if skipped < offset:
            skipped += 1
            continue
        found.append(record)
        if limit is not None and len(found) >= limit:
            break
    return found
