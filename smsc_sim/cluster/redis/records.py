"""
The cluster's message records in Redis: a summary of each message a
process accepted, for the other processes (query_sm, cancel_sm and
replace_sm through them, and receipts taken over from a dead process).

One string per message, ``smsc-sim:{cluster}:msg:{key}`` (``key`` is the
message_id; the second and later destinations of a submit_multi are
``{message_id}/{n}``): a JSON array of :data:`FIELDS`, in that order (times
are Unix seconds as a JSON number, to the millisecond, written as whole
milliseconds with an exponent, ``1765000000123e-3``; ``""`` when unset; :func:`decode_record`
reads it back as a dict).  One packed value, not a hash of twenty fields:
Redis writes it with one ``SET ... PX`` (a hash cost Redis several times the
CPU per message), and the state, the final time and the error come first,
so a change of state rewrites the head of the value and keeps the rest.

``state``
    the SMPP message_state name: ENROUTE, DELIVERED, EXPIRED, DELETED,
    UNDELIVERABLE, ACCEPTED, UNKNOWN, REJECTED
``final_time``, ``err``
    when it became final, its error code
``owner``
    the accepting process (``RedisClusterStore.owner``)
``account``, ``message_id``, ``instance``
    the submitting system_id, the id the ESME got, the instance it came in on
the addresses
    as submitted: ``source_addr_ton``, ``source_addr_npi``, ``source_addr``,
    ``dest_addr_ton``, ``dest_addr_npi``, ``destination_addr``, ``service_type``
``submit_time``
    when it was accepted
``registered_delivery``, ``schedule_time``, ``validity_time``, ``short_message``, ``replaced_time``
    what replace_sm may change (``short_message`` in hex), and when it was replaced

A record lives ``store_final_ttl`` seconds once final (as in the process's
own store), and until its validity deadline plus that while pending.

The core reports through :class:`~smsc_sim.core.journal.IMessageJournal`;
this journal collects what changed during one reactor turn and writes it with
one Lua call (one round trip for every message of the turn), so that a
submit never waits for Redis.  A final state already in Redis is never
overwritten: a cancel decided by another process wins over a receipt the
owner decides in the same moment.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.core.delivery import Delivery
from smsc_sim.core.journal import Handler
from smsc_sim.core.record import MessageRecord
from smsc_sim.smpp.constants import FINAL_STATES, MessageState

#: a string as JSON, ASCII only (a Lua pattern splits the batch on tabs and newlines: JSON escapes both)
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_EMPTY = '""'
#: the state names (an enum's .name is a property: this is a dict lookup)
_NAMES = {state: state.name for state in MessageState}

__all__ = ["FIELDS", "FINAL_STATE_NAMES", "LUA_FIELD_INDEX", "LUA_RECORD_STATE", "RedisMessageJournal", "decode_record", "record_key"]

#: the fields of a message's record, in the order of its JSON array
FIELDS = (
    "state", "final_time", "err", "owner", "account", "message_id", "instance",
    "source_addr_ton", "source_addr_npi", "source_addr", "dest_addr_ton", "dest_addr_npi", "destination_addr",
    "service_type", "submit_time", "registered_delivery", "schedule_time", "validity_time", "short_message",
    "replaced_time",
)  # fmt: skip
#: a Lua table from field name to its (1-based) place in the record's array
LUA_FIELD_INDEX = "{" + ", ".join(f"{name}={n}" for n, name in enumerate(FIELDS, 1)) + "}"
#: a Lua pattern that takes the state out of a record's value (the first element, a name in capitals)
LUA_RECORD_STATE = '^%["(%u+)"'


#: the state names that are final, as Lua table entries
FINAL_STATE_NAMES = tuple(sorted(state.name for state in FINAL_STATES))
_LUA_FINAL = "{" + ", ".join(f"{name}=true" for name in FINAL_STATE_NAMES) + "}"

#: records per Lua call (the batch of a busy turn is split)
BATCH = 2_000
#: records put back per reactor turn after Redis lost them (a large store is written again over many turns)
REPUBLISH_PER_TURN = 5_000
#: Lua calls in flight at most; past that (Redis slow or away) new batches are dropped, and logged
MAX_IN_FLIGHT = 64

# ARGV[1]: the key prefix; ARGV[2]: the batch, one line per record: kind, key, TTL in ms, value, separated by
# tabs (keys are message ids and the values JSON, which never hold a raw tab or newline).  Kind "N" (new:
# written whole, nothing to check), "F" (written whole) or "S" (state: the value is the record's head, its
# first three elements, which replace those in Redis; a record Redis does not hold is left for the whole
# one written again).  A record already final is left alone.  Each record is one SET ... PX (and a GET when
# it must be checked): Redis spends a few microseconds on it.
_WRITE = (
    "local final = " + _LUA_FINAL + """
local prefix = ARGV[1]
local skipped = 0
for kind, key, ttl, value in string.gmatch(ARGV[2], '(%u)\\t([^\\t\\n]*)\\t(%d+)\\t([^\\n]*)') do
    key = prefix .. key
    if kind == 'N' then
        redis.call('SET', key, value, 'PX', ttl)
    else
        local current = redis.call('GET', key)
        if current and final[string.match(current, '""" + LUA_RECORD_STATE + """') or ''] then
            skipped = skipped + 1
        elseif kind == 'F' then
            redis.call('SET', key, value, 'PX', ttl)
        elseif current then
            local rest = string.match(current, '^%[[^,]*,[^,]*,[^,]*(,.*)$')
            if rest then
                redis.call('SET', key, value .. rest, 'PX', ttl)
            end
        end
    end
end
return skipped
"""
)


def record_key(cluster: str, key: str) -> str:
    """The record of one message."""
    return f"smsc-sim:{cluster}:msg:{key}"


def decode_record(value: str | bytes) -> dict[str, Any]:
    """A record's value (as Redis holds it) as a dict of :data:`FIELDS`."""
    return dict(zip(FIELDS, json.loads(value)))


class _Commands(Protocol):
    def eval(self, script: str, keys: list[str] = ..., args: list[Any] = ...) -> Deferred[Any]:
        """EVAL."""


class RedisMessageJournal:
    """
    :class:`~smsc_sim.core.journal.IMessageJournal` that writes each MT
    message's summary to Redis (MO messages stay local: no ESME queries them).

    :param redis: a txredisapi connection.
    :param clock: runs the write at the end of each turn.
    :param cluster: the cluster's name.
    :param owner: this process (``RedisClusterStore.owner``).
    :param final_ttl: seconds a final record is kept (``store_final_ttl``).
    :param timeout: seconds a write may take before it counts as failed.
    """

    log = Logger()

    def __init__(
        self,
        redis: _Commands,
        clock: IReactorTime,
        cluster: str,
        owner: str,
        final_ttl: float,
        *,
        timeout: float = 5.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = record_key(cluster, "")
        self._owner = owner
        self._final_ttl = final_ttl
        self._final_ttl_ms = int(final_ttl * 1000)
        self._timeout = timeout
        #: what changed this turn, by record key: the entry that goes into the batch
        self._pending: dict[str, tuple[str, MessageRecord]] = {}
        self._owner_json = _quote(owner)
        self._call: IDelayedCall | None = None
        self._republish: IDelayedCall | None = None
        self._in_flight = 0
        self._failing = False
        #: records written, and records not written (dropped or failed)
        self.written = 0
        self.lost = 0

    # ------------------------------------------------------------------
    # IMessageJournal
    # ------------------------------------------------------------------

    def answering(self, handler: Handler) -> Handler:
        """The handler itself: a submit's answer never waits for Redis."""
        return handler

    def accepted(self, record: MessageRecord) -> None:
        """A new MT record: its whole summary goes out this turn."""
        if record.direction != "mt":
            return
        if self._call is None:
            self._soon()
        self._pending[record.key] = ("N", record)

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        """Nothing in the summary changes."""

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        """Its state (or, replaced, its whole summary) goes out this turn."""
        if record.direction != "mt":
            return
        if self._call is None:
            self._soon()
        pending = self._pending
        entry = pending.get(record.key)
        if entry is None or entry[0] == "S":
            # still new or whole, if it was: what goes out is read from the record at the end of the turn
            pending[record.key] = ("F" if whole else "S", record)

    def delivery_sent(self, delivery: Delivery, record: MessageRecord | None) -> None:
        """Deliveries are not shared here."""

    def cleared(self) -> None:
        """What waits is dropped; what Redis holds runs out by itself."""
        self._pending.clear()

    def republish(self, records: Iterable[MessageRecord]) -> int:
        """
        Write every MT record of ``records`` whole again (Redis lost them: it
        restarted empty), :data:`REPUBLISH_PER_TURN` a reactor turn; how many.
        """
        if self._republish is not None and self._republish.active():
            self._republish.cancel()
        left = [record for record in records if record.direction == "mt"]
        count = len(left)

        def step() -> None:
            self._republish = None
            batch = left[-REPUBLISH_PER_TURN:]
            del left[-REPUBLISH_PER_TURN:]
            pending = self._pending
            if self._call is None:
                self._soon()
            for record in batch:
                if record.key not in pending:
                    pending[record.key] = ("F", record)
            if left:
                self._republish = self._clock.callLater(0, step)

        step()
        return count

    def stop(self) -> None:
        """Stop putting records back; write what waits."""
        if self._republish is not None and self._republish.active():
            self._republish.cancel()
        self._republish = None
        self.flush()

    # ------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------

    def _line(self, kind: str, record: MessageRecord, now: float) -> str:
        """One record's line of the batch (see ``_WRITE``), as it is now."""
        state = record.state
        final = record.final_time
        validity = record.validity_time
        # a final record lives the final TTL, a pending one until its validity time plus that
        if state in FINAL_STATES or validity <= now:
            ttl = self._final_ttl_ms
        else:
            ttl = int((self._final_ttl + validity - now) * 1000)
        # the head: state, final time, err (what a change of state rewrites).  Times go as whole
        # milliseconds with an exponent (a JSON number of seconds): a float's repr costs three times as
        # much, and this runs twice per message.  The octets and err are ints already: no int() calls.
        head = (
            f'{kind}\t{record.key}\t{ttl}\t["{_NAMES[state]}",'
            f'{_EMPTY if final is None else f"{int(final * 1000)}e-3"},{record.err}'
        )
        if kind == "S":
            return head
        # the rest, in the order of FIELDS: a format string, not json.dumps (it costs half as much), with
        # the strings quoted by the json module's own (C) quoting
        schedule = record.schedule_time
        replaced = record.replaced_time
        return (
            f"{head},{self._owner_json},{_quote(record.account)},{_quote(record.message_id)},"
            f"{_quote(record.instance)},{record.source_ton},{record.source_npi},{_quote(record.source_addr)},"
            f"{record.dest_ton},{record.dest_npi},{_quote(record.destination_addr)},"
            f"{_quote(record.service_type)},{int(record.submit_time * 1000)}e-3,{record.registered_delivery},"
            f"{_EMPTY if schedule is None else f'{int(schedule * 1000)}e-3'},{int(validity * 1000)}e-3,"
            f'"{record.short_message.hex()}",{_EMPTY if replaced is None else f"{int(replaced * 1000)}e-3"}]'
        )

    def _soon(self) -> None:
        self._call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write what changed since the last write (at the end of the turn, or at stop)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        pending = self._pending
        if not pending:
            return
        now = self._clock.seconds()
        line = self._line
        entries = [line(kind, record, now) for kind, record in pending.values()]
        pending.clear()
        for start in range(0, len(entries), BATCH):
            batch = entries[start : start + BATCH]
            if self._in_flight >= MAX_IN_FLIGHT:
                self._lost(len(batch), "too many writes waiting for the cluster store")
                continue
            self._in_flight += 1
            d = self._redis.eval(_WRITE, [], [self._prefix, "\n".join(batch)])
            d.addTimeout(self._timeout, self._clock)
            d.addCallbacks(self._written, self._failed, callbackArgs=(len(batch),), errbackArgs=(len(batch),))

    def _written(self, _skipped: Any, count: int) -> None:
        self._in_flight -= 1
        self.written += count
        if self._failing:
            self._failing = False
            self.log.info("message records: the cluster store answers again")

    def _failed(self, failure: Failure, count: int) -> None:
        self._in_flight -= 1
        self._lost(count, failure.getErrorMessage() or failure.type.__name__)

    def _lost(self, count: int, why: str) -> None:
        self.lost += count
        if not self._failing:
            self._failing = True
            self.log.warn(
                "message records: {count} not written to the cluster store ({why}); "
                "other processes cannot query, cancel or replace them",
                count=count,
                why=why,
            )
