"""
query_sm, cancel_sm and replace_sm on a message another process of the
cluster accepted, decided in Redis, and carried out by the owner.

The message's summary is its record (:mod:`smsc_sim.cluster.redis.records`).
A query reads it.  A cancel or a replace is one Lua script: only a message
of the account, from the same source address, still in a non-final state
changes, and the same script pushes the operation onto the owner's inbox,
the list ``smsc-sim:{cluster}:owner:{owner}:ops``.  Each process pops its
own inbox (BLPOP on a connection of its own) and applies what it finds to
its local message: a cancelled message ends DELETED (its pending receipt is
never sent), a replaced one gets its new content and a new receipt plan.  A
list, not pub/sub: an operation pushed while the owner's connection is down
waits for it.

A cancel_sm with an empty message_id (every pending message of a source
and destination) cannot be found in Redis by address, so the process that
got it asks every other live process (those whose ``alive:{owner}`` lease
lasts, among ``owners``): one Lua call pushes ``{"op": "cancel_matching",
...}`` onto each one's inbox, each cancels its own matching messages and
pushes how many onto the reply list named in the request
(``smsc-sim:{cluster}:reply:{owner}:{n}``), and the asker reads that list
until every process answered or the wait ran out.

The same inbox brings the outcomes of the receipts and MO this process
handed to the cluster and another process delivered
(:mod:`smsc_sim.cluster.redis.deliveries`): ``{"op": "outcomes", "process":
..., "items": [...]}``, many per element.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.cluster.redis.records import FINAL_STATE_NAMES, LUA_FIELD_INDEX, record_key
from smsc_sim.core.remote import Replacement, SharedMessage
from smsc_sim.smpp.constants import CommandStatus, MessageState

__all__ = ["OwnerInbox", "RedisClusterMessages", "inbox_key"]

_LUA_FINAL = "{" + ", ".join(f"{name}=true" for name in FINAL_STATE_NAMES) + "}"

#: how long an operation waits in the inbox of a process that never pops it (dead), in ms
INBOX_TTL_MS = 3_600_000
#: how long a reply list lives, in ms (its asker reads it within seconds, then deletes it)
REPLY_TTL_MS = 30_000
#: seconds between two reads of a reply list
REPLY_POLL = 0.02

# ARGV: prefix, the asking process, the operation (JSON), the inbox's TTL.  Pushes the operation onto
# the inbox of every other process whose lease lasts; how many.
_ASK_ALL = """
local p, me = ARGV[1], ARGV[2]
local asked = 0
for _, owner in ipairs(redis.call('SMEMBERS', p .. 'owners')) do
    if owner ~= me and redis.call('EXISTS', p .. 'alive:' .. owner) == 1 then
        local inbox = p .. 'owner:' .. owner .. ':ops'
        redis.call('RPUSH', inbox, ARGV[3])
        redis.call('PEXPIRE', inbox, ARGV[4])
        asked = asked + 1
    end
end
return asked
"""

# KEYS[1] the message's record; ARGV: account, source_addr, the inbox prefix, the operation (JSON),
# then the record's fields to set (pairs).  1: changed and pushed; 0: unknown, not the account's, or final.
# The record is decoded and encoded again whole: a cancel or a replace is rare, the journal's writes are not.
_CHANGE = (
    "local final = " + _LUA_FINAL + "\nlocal index = " + LUA_FIELD_INDEX + """
local numeric = {final_time=true, err=true, registered_delivery=true, schedule_time=true, validity_time=true,
                 replaced_time=true}
local value = redis.call('GET', KEYS[1])
if not value then
    return 0
end
local r = cjson.decode(value)
if r[index.account] ~= ARGV[1] or r[index.source_addr] ~= ARGV[2] or final[r[index.state]] then
    return 0
end
local check = tonumber(ARGV[5])
if check ~= 0 then
    return check
end
for i = 6, #ARGV, 2 do
    local field, new = ARGV[i], ARGV[i + 1]
    if numeric[field] then
        new = tonumber(new) or new
    end
    r[index[field]] = new
end
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
local inbox = ARGV[3] .. r[index.owner] .. ':ops'
redis.call('RPUSH', inbox, ARGV[4])
redis.call('PEXPIRE', inbox, """
    + str(INBOX_TTL_MS)
    + """)
return -1
"""
)


# KEYS[1] the message's record; ARGV: account, source_addr.  Compared here, as stored: the client turns
# replies that look like numbers into numbers, and "0049..." is not 49...
_QUERY = (
    "local index = " + LUA_FIELD_INDEX + """
local value = redis.call('GET', KEYS[1])
if not value then
    return false
end
local r = cjson.decode(value)
if r[index.account] ~= ARGV[1] or r[index.source_addr] ~= ARGV[2] then
    return false
end
return {r[index.state], tostring(r[index.final_time]), tostring(r[index.err])}
"""
)


def inbox_key(cluster: str, owner: str) -> str:
    """The list of operations other processes decided on ``owner``'s messages."""
    return f"smsc-sim:{cluster}:owner:{owner}:ops"


class _Commands(Protocol):
    def eval(self, script: str, keys: list[str] = ..., args: list[Any] = ...) -> Deferred[Any]:
        """EVAL."""



def _time(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _fixed(value: float) -> str:
    return f"{value:.3f}"


class RedisClusterMessages:
    """
    :class:`~smsc_sim.core.remote.IClusterMessages` on Redis.

    :param redis: a txredisapi connection.
    :param cluster: the cluster's name.
    :param owner: this process (it asks the others, never itself).
    :param clock: spaces out the reads of a reply list.
    """

    def __init__(self, redis: _Commands, cluster: str, owner: str = "", clock: IReactorTime | None = None) -> None:
        self._redis = redis
        self._cluster = cluster
        self._owner = owner
        self._clock = clock
        self._prefix = f"smsc-sim:{cluster}:"
        self._inboxes = f"smsc-sim:{cluster}:owner:"
        self._asked = 0

    def cancel_matching(
        self, account: str, source_addr: str, destination_addr: str, service_type: str, within: float
    ) -> Deferred[tuple[int, bool]]:
        """
        Ask every other live process to cancel its pending messages of the account from
        ``source_addr`` to ``destination_addr`` (and ``service_type``, when given); how many
        they cancelled, and whether all of them answered within ``within`` seconds.
        """
        assert self._clock is not None, "cancel_matching needs the clock"
        clock = self._clock
        self._asked += 1
        reply = f"{self._prefix}reply:{self._owner}:{self._asked}"
        operation = json.dumps(
            {"op": "cancel_matching", "account": account, "source_addr": source_addr,
             "destination_addr": destination_addr, "service_type": service_type, "reply": reply},
            separators=(",", ":"),
        )  # fmt: skip
        deadline = clock.seconds() + within
        d: Deferred[Any] = self._redis.eval(_ASK_ALL, [], [self._prefix, self._owner, operation, INBOX_TTL_MS])

        def read(asked: Any) -> Deferred[tuple[int, bool]]:
            asked = int(asked)
            if asked == 0:
                return succeed((0, True))
            return self._redis.eval("return redis.call('LRANGE', KEYS[1], 0, -1)", [reply], []).addCallback(
                counted, asked
            )

        def counted(answers: Any, asked: int) -> Deferred[tuple[int, bool]] | tuple[int, bool]:
            answers = list(answers or ())
            if len(answers) < asked and clock.seconds() < deadline:
                wait: Deferred[None] = Deferred()
                clock.callLater(REPLY_POLL, wait.callback, None)
                return wait.addCallback(lambda _: read(asked))
            self._redis.eval("return redis.call('DEL', KEYS[1])", [reply], []).addErrback(lambda _: None)
            return sum(int(answer) for answer in answers), len(answers) >= asked

        return d.addCallback(read)

    def query(self, message_id: str, account: str, source_addr: str) -> Deferred[SharedMessage | None]:
        """The message's state from its record; ``None`` when unknown or not the account's."""
        d = self._redis.eval(_QUERY, [record_key(self._cluster, message_id)], [account, source_addr])

        def read(values: Any) -> SharedMessage | None:
            if not values:
                return None
            state, final_time, err = values
            try:
                value = MessageState[str(state)]
            except KeyError:
                return None
            return SharedMessage(int(value), _time(final_time), int(err or 0))

        return d.addCallback(read)

    def cancel(self, message_id: str, account: str, source_addr: str, time: float) -> Deferred[bool]:
        """End it DELETED in Redis and tell its owner; whether it was pending and the account's."""
        operation = json.dumps({"op": "cancel", "key": message_id})
        d = self._change(message_id, account, source_addr, operation, 0,
                         ["state", "DELETED", "final_time", _fixed(time), "err", 0])  # fmt: skip
        return d.addCallback(lambda result: int(result) == -1)

    def replace(
        self, message_id: str, account: str, source_addr: str, replacement: Replacement, invalid: int
    ) -> Deferred[int]:
        """Replace it in Redis and tell its owner: 0, ESME_RREPLACEFAIL, or ``invalid``."""
        r = replacement
        operation = json.dumps(
            {
                "op": "replace",
                "key": message_id,
                "short_message": r.short_message.hex(),
                "registered_delivery": r.registered_delivery,
                "schedule_time": r.schedule_time,
                "validity_time": r.validity_time,
                "time": r.time,
            }
        )
        fields: list[Any] = ["state", "ENROUTE", "short_message", r.short_message.hex(),
                             "registered_delivery", r.registered_delivery, "replaced_time", _fixed(r.time)]  # fmt: skip
        if r.schedule_time is not None:
            fields += ["schedule_time", _fixed(r.schedule_time)]
        if r.validity_time is not None:
            fields += ["validity_time", _fixed(r.validity_time)]
        d = self._change(message_id, account, source_addr, operation, invalid, fields)

        def status(result: Any) -> int:
            result = int(result)
            if result == -1:
                return 0
            return CommandStatus.ESME_RREPLACEFAIL if result == 0 else result

        return d.addCallback(status)

    def _change(
        self, message_id: str, account: str, source_addr: str, operation: str, check: int, fields: list[Any]
    ) -> Deferred[Any]:
        key = record_key(self._cluster, message_id)
        return self._redis.eval(_CHANGE, [key], [account, source_addr, self._inboxes, operation, check, *fields])


class IOwnedMessages(Protocol):
    """What the owner does with an operation another process decided (the core's operations)."""

    def cancelled_elsewhere(self, key: str) -> bool:
        """End the local message DELETED."""

    def replaced_elsewhere(self, key: str, replacement: Replacement) -> bool:
        """Give the local message its new content and plan."""

    def cancelled_matching_elsewhere(self, account: str, source: str, destination: str, service_type: str) -> int:
        """End the local pending messages a cancel_sm with an empty message_id matches DELETED; how many."""


# KEYS[1] the asker's reply list; ARGV: the answer, the list's TTL in ms
_REPLY = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class OwnerInbox:
    """
    Pops this process's inboxes (one per cluster) and applies each operation
    to the local message.

    :param connect: opens the connection the blocking pop holds.
    :param clock: spaces out the retries when Redis is away.
    :param wait: seconds one BLPOP blocks before it starts over.
    """

    log = Logger()

    def __init__(self, connect: Callable[[], Any], clock: IReactorTime, *, wait: int = 1) -> None:
        self._connect = connect
        self._clock = clock
        self._wait = wait
        self._targets: dict[str, IOwnedMessages] = {}
        #: what applies the delivery outcomes found in each inbox
        self._outcomes: dict[str, Callable[[list[Any], str], None]] = {}
        self._keys: list[str] = []
        self._connection: Any = None
        self._retry: IDelayedCall | None = None
        self._running = False
        self._failing = False
        #: operations applied (counted whether or not the message was still pending here)
        self.applied = 0

    def serve(self, key: str, target: IOwnedMessages) -> None:
        """Apply the operations of inbox ``key`` to ``target``."""
        self._targets[key] = target
        self._listen(key)

    def hear_outcomes(self, key: str, apply: Callable[[list[Any], str], None]) -> None:
        """Give the delivery outcomes found in inbox ``key`` to ``apply`` (items, the process that sent them)."""
        self._outcomes[key] = apply
        self._listen(key)

    @staticmethod
    def _reply_prefix(key: str) -> str:
        """Reply lists of the cluster of inbox ``key`` (``smsc-sim:{cluster}:owner:{owner}:ops``)."""
        return key.split(":owner:", 1)[0] + ":reply:"

    def _listen(self, key: str) -> None:
        if key not in self._keys:
            self._keys.append(key)

    def start(self) -> None:
        """Start popping (nothing to do without an inbox)."""
        if self._running or not self._keys:
            return
        self._running = True
        self._connection = self._connect()
        self._pop()

    def stop(self) -> None:
        """Stop popping and close the connection."""
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._connection is not None:
            self._connection.disconnect()
            self._connection = None

    def _pop(self) -> None:
        self._retry = None
        if not self._running or self._connection is None:
            return
        d = self._connection.blpop(self._keys, timeout=self._wait)
        d.addCallbacks(self._popped, self._failed)

    def _popped(self, result: Any) -> None:
        if self._failing:
            self._failing = False
            self.log.info("cluster inbox: the cluster store answers again")
        if result:
            key, value = result
            try:
                self._apply(str(key), str(value))
            except Exception:
                self.log.failure("cluster inbox: operation {value!r} not applied", value=value)
        self._pop()

    def _failed(self, failure: Failure) -> None:
        if not self._running:
            return
        if not self._failing:
            self._failing = True
            self.log.warn(
                "cluster inbox: the cluster store did not answer ({error}); cancels and replaces made through "
                "other processes wait in Redis",
                error=failure.getErrorMessage() or failure.type.__name__,
            )
        self._retry = self._clock.callLater(1.0, self._pop)

    def _apply(self, key: str, value: str) -> None:
        operation = json.loads(value)
        self.applied += 1
        if operation["op"] == "outcomes":
            apply = self._outcomes.get(key)
            if apply is not None:
                apply(list(operation["items"]), str(operation.get("process", "")))
            return
        target = self._targets.get(key)
        if target is None:
            return
        if operation["op"] == "cancel_matching":
            cancelled = target.cancelled_matching_elsewhere(
                str(operation["account"]),
                str(operation["source_addr"]),
                str(operation["destination_addr"]),
                str(operation["service_type"]),
            )
            reply = str(operation["reply"])
            if reply.startswith(self._reply_prefix(key)) and self._connection is not None:
                # sent before the next blocking pop on this connection, so it goes at once
                answer = self._connection.eval(_REPLY, [reply], [cancelled, REPLY_TTL_MS])
                answer.addErrback(lambda f: self.log.warn("cluster inbox: cancel answer lost: {e}", e=f.getErrorMessage()))
        elif operation["op"] == "cancel":
            target.cancelled_elsewhere(operation["key"])
        elif operation["op"] == "replace":
            target.replaced_elsewhere(
                operation["key"],
                Replacement(
                    bytes.fromhex(operation["short_message"]),
                    int(operation["registered_delivery"]),
                    operation["schedule_time"],
                    operation["validity_time"],
                    float(operation["time"]),
                ),
            )
