"""
Cluster-wide control through Redis: outages, scenario switches and resets
made in one process reach every process of the cluster.

A control message is a small JSON object published on the cluster's channel,
``smsc-sim:{cluster}:db{db}:control``, and heard on a connection of its own (a
subscribed Redis connection can send nothing else).  What must outlive the
message (the scenario in force, the outages in force) is kept in the hash
``smsc-sim:{cluster}:control:state`` too, so that a process that starts
later, or was away while Redis was, takes the cluster's state at start.

A reset also deletes the cluster's shared keys (``SCAN`` + ``DEL`` of
``smsc-sim:{cluster}:*``), except the bind leases and the processes'
liveness keys, which describe live things rather than history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

#: the largest control message accepted from the channel: a scenario's YAML text is the big one,
#: at most 256 KiB (smsc_sim.yaml_source), which JSON escaping may make a few times longer
MAX_MESSAGE = 2 << 20
#: keys one SCAN step asks for during a reset
SCAN_COUNT = 500

#: key kinds a reset keeps: live binds' leases and the processes' liveness keys
KEPT_BY_RESET = ("binds:", "process:", "processes", "control:state")


class ControlCommands(Protocol):
    """The txredisapi commands the control uses."""

    def publish(self, channel: str, message: str) -> Deferred[Any]:
        """Publish on a channel."""

    def hset(self, key: str, field: str, value: str) -> Deferred[Any]:
        """Set one field of a hash."""

    def hdel(self, key: str, fields: Any) -> Deferred[Any]:
        """Delete fields of a hash."""

    def hgetall(self, key: str) -> Deferred[Any]:
        """Every field of a hash."""

    def scan(self, cursor: int = ..., pattern: str | None = ..., count: int | None = ...) -> Deferred[Any]:
        """One step of SCAN."""

    def delete(self, keys: Any) -> Deferred[Any]:
        """Delete keys."""


def channel(cluster: str, db: int = 0) -> str:
    """
    The cluster's control channel in database ``db``.

    Redis's pub/sub ignores the database number (a message published while
    using database 1 reaches the subscribers of database 0), so the number is
    part of the name: two simulators on two databases of one Redis with the
    same cluster names must not hear each other.
    """
    return f"smsc-sim:{cluster}:db{db}:control"


def state_key(cluster: str) -> str:
    """The hash of the cluster's control state in force (scenario, outages)."""
    return f"smsc-sim:{cluster}:control:state"


def decode(raw: Any) -> dict[str, Any] | None:
    """A control message from the channel, or None when it is not one (too big, not JSON, not an object)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or len(raw) > MAX_MESSAGE:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) and isinstance(message.get("kind"), str) else None


class RedisControl:
    """
    One cluster's control channel and state hash.

    :param redis: a txredisapi connection (commands; not the subscriber).
    :param cluster: the cluster's name.
    :param owner: this process's tag; messages carry it so a process ignores its own.
    :param db: the database number of the store (``redis://HOST:PORT/DB``), part of the channel's name.
    """

    log = Logger()

    def __init__(self, redis: ControlCommands, cluster: str, owner: str, db: int = 0) -> None:
        self._redis = redis
        self.cluster = cluster
        self.owner = owner
        self.channel = channel(cluster, db)
        self.state_key = state_key(cluster)

    def publish(self, message: dict[str, Any], state: dict[str, Any | None] | None = None) -> Deferred[bool]:
        """
        Publish a control message, after recording ``state`` (field: JSON value, None deletes the field);
        whether it was (a failure is logged).

        The state goes first: a process that reads the hash at start and then
        hears the channel misses nothing in between.
        """
        body = json.dumps(dict(message, origin=self.owner), separators=(",", ":"))
        d: Deferred[Any] = succeed(None)
        for field, value in (state or {}).items():
            d.addCallback(self._record, field, value)
        d.addCallback(lambda _: self._redis.publish(self.channel, body))
        d.addCallback(lambda _: True)
        return d.addErrback(self._failed, message.get("kind"))

    def _record(self, _: object, field: str, value: Any) -> Deferred[Any]:
        if value is None:
            return self._redis.hdel(self.state_key, [field])
        return self._redis.hset(self.state_key, field, json.dumps(value, separators=(",", ":")))

    def _failed(self, failure: Any, kind: object) -> bool:
        self.log.warn(
            "cluster {cluster}: control {kind} not shared with the other processes: {error}",
            cluster=self.cluster,
            kind=kind,
            error=failure.getErrorMessage(),
        )
        return False

    def state(self) -> Deferred[dict[str, Any]]:
        """The control state in force: ``{"scenario": ..., "outage:SMPP1": ...}`` (unreadable fields left out)."""

        def parse(raw: Any) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for field, value in (raw or {}).items():
                field = field.decode() if isinstance(field, bytes) else str(field)
                try:
                    result[field] = json.loads(value)
                except (TypeError, ValueError):
                    continue
            return result

        return self._redis.hgetall(self.state_key).addCallback(parse)

    def clear_shared(self, keep_state: Callable[[str], bool]) -> Deferred[int]:
        """
        Delete the cluster's shared keys but the live ones (:data:`KEPT_BY_RESET`),
        and the control state's fields that ``keep_state`` refuses; how many keys were deleted.
        """
        prefix = f"smsc-sim:{self.cluster}:"
        deleted = [0]

        def step(cursor: int) -> Deferred[int]:
            return self._redis.scan(cursor, f"{prefix}*", SCAN_COUNT).addCallback(scanned)

        def scanned(reply: Any) -> Deferred[int] | int:
            cursor, keys = int(reply[0]), [k.decode() if isinstance(k, bytes) else str(k) for k in reply[1]]
            doomed = [k for k in keys if not k[len(prefix) :].startswith(KEPT_BY_RESET)]
            d: Deferred[Any] = self._redis.delete(doomed) if doomed else succeed(0)
            d.addCallback(lambda n: deleted.__setitem__(0, deleted[0] + int(n or 0)))
            return d.addCallback(lambda _: step(cursor) if cursor != 0 else deleted[0])

        def fields(state: dict[str, Any]) -> Deferred[int]:
            dropped = [field for field in state if not keep_state(field)]
            d: Deferred[Any] = self._redis.hdel(self.state_key, dropped) if dropped else succeed(0)
            return d.addCallback(lambda _: step(0))

        return self.state().addCallback(fields)
