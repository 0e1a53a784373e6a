"""
The cluster's message records in Redis: a summary of each message a
process accepted, for the other processes (query_sm, cancel_sm and
replace_sm through them, and receipts taken over from a dead process).

One hash per message, ``smsc-sim:{cluster}:msg:{key}`` (``key`` is the
message_id; the second and later destinations of a submit_multi are
``{message_id}/{n}``).  Its fields (times are Unix seconds as a decimal
number, ``""`` when unset):

``state``
    the SMPP message_state name: ENROUTE, DELIVERED, EXPIRED, DELETED,
    UNDELIVERABLE, ACCEPTED, UNKNOWN, REJECTED
``owner``
    the accepting process (``RedisClusterStore.owner``)
``account``, ``message_id``, ``instance``
    the submitting system_id, the id the ESME got, the instance it came in on
the addresses
    as submitted: ``source_addr_ton``, ``source_addr_npi``, ``source_addr``,
    ``dest_addr_ton``, ``dest_addr_npi``, ``destination_addr``, ``service_type``
``submit_time``, ``final_time``, ``err``
    when it was accepted, when it became final, its error code
``registered_delivery``, ``schedule_time``, ``validity_time``, ``short_message``
    what replace_sm may change (``short_message`` in hex)

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
from smsc_sim.smpp.constants import FINAL_STATES

__all__ = ["FINAL_STATE_NAMES", "RedisMessageJournal", "record_key"]

#: the state names that are final, as Lua table entries
FINAL_STATE_NAMES = tuple(sorted(state.name for state in FINAL_STATES))
_LUA_FINAL = "{" + ", ".join(f"{name}=true" for name in FINAL_STATE_NAMES) + "}"

#: records per Lua call (the batch of a busy turn is split)
BATCH = 2_000
#: records put back per reactor turn after Redis lost them (a large store is written again over many turns)
REPUBLISH_PER_TURN = 5_000
#: Lua calls in flight at most; past that (Redis slow or away) new batches are dropped, and logged
MAX_IN_FLIGHT = 64

# ARGV[1]: the batch, JSON: [kind, key, validity time, state, final time, err, ...] per record, kind "N" (new:
# written whole, nothing to check), "F" (written whole) or "S" (state only); ARGV[2]: the key prefix; ARGV[3]:
# the owner; ARGV[4]: now; ARGV[5]: the final TTL in seconds.  A record already final is left alone.  A final
# record lives the final TTL, a pending one until its validity time plus that.  Times go in as Lua numbers
# (Redis writes them out).
_WRITE = (
    "local final = " + _LUA_FINAL + """
local batch = cjson.decode(ARGV[1])
local prefix, owner = ARGV[2], ARGV[3]
local now, keep = tonumber(ARGV[4]), tonumber(ARGV[5])
local skipped = 0
for _, r in ipairs(batch) do
    local key = prefix .. r[2]
    local kind = r[1]
    local current = kind ~= 'N' and redis.call('HGET', key, 'state')
    if current and final[current] then
        skipped = skipped + 1
    else
        if kind == 'S' then
            redis.call('HSET', key, 'state', r[4], 'final_time', r[5], 'err', r[6])
        else
            redis.call('HSET', key, 'state', r[4], 'final_time', r[5], 'err', r[6], 'owner', owner,
                'account', r[7], 'message_id', r[8], 'instance', r[9],
                'source_addr_ton', r[10], 'source_addr_npi', r[11], 'source_addr', r[12],
                'dest_addr_ton', r[13], 'dest_addr_npi', r[14], 'destination_addr', r[15],
                'service_type', r[16], 'submit_time', r[17], 'registered_delivery', r[18],
                'schedule_time', r[19], 'validity_time', r[20], 'short_message', r[21])
        end
        local ttl = keep
        if not final[r[4]] and r[3] > now then
            ttl = ttl + r[3] - now
        end
        redis.call('PEXPIRE', key, math.floor(ttl * 1000))
    end
end
return skipped
"""
)


def record_key(cluster: str, key: str) -> str:
    """The hash of one message."""
    return f"smsc-sim:{cluster}:msg:{key}"


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
        self._timeout = timeout
        #: what changed this turn, by record key: the entry that goes into the batch
        self._pending: dict[str, list[Any]] = {}
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
        self._pending[record.key] = self._whole(record, "N")
        self._soon()

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        """Nothing in the summary changes."""

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        """Its state (or, replaced, its whole summary) goes out this turn."""
        if record.direction != "mt":
            return
        pending = self._pending
        entry = pending.get(record.key)
        if entry is not None and entry[0] != "S":
            pending[record.key] = self._whole(record, entry[0])  # still new, if it was
        elif whole:
            pending[record.key] = self._whole(record, "F")
        else:
            final = record.final_time
            pending[record.key] = [
                "S",
                record.key,
                record.validity_time,
                record.state.name,
                final if final is not None else "",
                record.err,
            ]
        self._soon()

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
            for record in batch:
                if record.key not in pending:
                    pending[record.key] = self._whole(record, "F")
            if batch:
                self._soon()
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

    def _whole(self, record: MessageRecord, kind: str) -> list[Any]:
        final = record.final_time
        schedule = record.schedule_time
        return [
            kind,
            record.key,
            record.validity_time,
            record.state.name,
            final if final is not None else "",
            record.err,
            record.account,
            record.message_id,
            record.instance,
            record.source_ton,
            record.source_npi,
            record.source_addr,
            record.dest_ton,
            record.dest_npi,
            record.destination_addr,
            record.service_type,
            record.submit_time,
            record.registered_delivery,
            schedule if schedule is not None else "",
            record.validity_time,
            record.short_message.hex(),
        ]

    def _soon(self) -> None:
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write what changed since the last write (at the end of the turn, or at stop)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        pending = self._pending
        if not pending:
            return
        entries = list(pending.values())
        pending.clear()
        now = self._clock.seconds()
        for start in range(0, len(entries), BATCH):
            batch = entries[start : start + BATCH]
            if self._in_flight >= MAX_IN_FLIGHT:
                self._lost(len(batch), "too many writes waiting for the cluster store")
                continue
            self._in_flight += 1
            d = self._redis.eval(_WRITE, [], [json.dumps(batch), self._prefix, self._owner, now, self._final_ttl])
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
