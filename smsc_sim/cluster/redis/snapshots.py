"""
Each process's view of its part of a cluster, shared so that every API shows the whole cluster.

Every ``interval`` seconds a process writes a small JSON snapshot of its part
of each cluster (its instances, sessions, counters) to
``smsc-sim:{cluster}:process:{owner}`` with a time to live of a few
intervals, notes itself in the hash ``smsc-sim:{cluster}:processes`` (owner:
last seen, in ms), and reads the other processes' snapshots back.  A process
noted in the hash whose snapshot expired stopped writing: it is shown as
gone, with what it last showed, until it has been silent for
:data:`FORGET_AFTER` seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

#: seconds between two snapshots of a process
INTERVAL = 1.0
#: a snapshot lives this many intervals: a process is gone after missing about three
TTL_INTERVALS = 3
#: the largest snapshot written; a bigger one loses its session list (their count stays)
MAX_SNAPSHOT = 64 * 1024
#: a gone process is forgotten after this many seconds of silence (the processes hash stays bounded)
FORGET_AFTER = 600.0
#: at most this many other processes are read per cluster (bounds a tick and the API's answers)
MAX_PROCESSES = 32


class SnapshotCommands(Protocol):
    """The txredisapi commands the snapshots use."""

    def set(self, key: str, value: str, expire: Any = ..., pexpire: Any = ...) -> Deferred[Any]:
        """Set a key."""

    def hset(self, key: str, field: str, value: str) -> Deferred[Any]:
        """Set one field of a hash."""

    def hgetall(self, key: str) -> Deferred[Any]:
        """Every field of a hash."""

    def hdel(self, key: str, fields: Any) -> Deferred[Any]:
        """Delete fields of a hash."""

    def mget(self, keys: Any) -> Deferred[Any]:
        """Several values at once."""


def processes_key(cluster: str) -> str:
    """The hash of the cluster's processes: owner -> last seen (ms since the epoch)."""
    return f"smsc-sim:{cluster}:processes"


def snapshot_key(cluster: str, owner: str) -> str:
    """One process's snapshot of its part of the cluster."""
    return f"smsc-sim:{cluster}:process:{owner}"


def bounded(snapshot: dict[str, Any]) -> str:
    """The snapshot as JSON within :data:`MAX_SNAPSHOT` (the session list goes first, then the counters)."""
    body = json.dumps(snapshot, separators=(",", ":"), default=str)
    if len(body) <= MAX_SNAPSHOT:
        return body
    trimmed = dict(snapshot, sessions=[], sessions_left_out=len(snapshot.get("sessions", ())))
    body = json.dumps(trimmed, separators=(",", ":"), default=str)
    if len(body) <= MAX_SNAPSHOT:
        return body
    return json.dumps(dict(trimmed, stats={}, stats_left_out=True), separators=(",", ":"), default=str)


class RedisSnapshots:
    """
    One cluster's snapshots: this process's written, the others' read.

    :param redis: a txredisapi connection.
    :param clock: runs the writes; its seconds are the "last seen" times.
    :param cluster: the cluster's name.
    :param owner: this process's tag.
    :param build: makes this process's snapshot of the cluster (JSON-able); None: nothing of it runs here.
    """

    log = Logger()

    def __init__(
        self,
        redis: SnapshotCommands,
        clock: IReactorTime,
        cluster: str,
        owner: str,
        build: Callable[[], dict[str, Any] | None],
        interval: float = INTERVAL,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self.cluster = cluster
        self.owner = owner
        self._build = build
        self.interval = interval
        #: the other processes' last snapshots, by owner
        self.others: dict[str, dict[str, Any]] = {}
        #: the other processes whose snapshot expired (they stopped writing)
        self.gone: set[str] = set()
        #: when the last exchange with Redis ended well (clock seconds), and the last failure
        self.last_ok: float | None = None
        self.error: str | None = None
        self._in_flight_since: float | None = None
        self._loop = LoopingCall(self.tick)
        self._loop.clock = clock

    def start(self) -> None:
        """Write and read every ``interval`` seconds, from now."""
        if not self._loop.running:
            self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        """Stop writing: the snapshot expires and the others show this process as gone."""
        if self._loop.running:
            self._loop.stop()

    def waiting_since(self) -> float | None:
        """Since when the current exchange waits for Redis (None: none waits)."""
        return self._in_flight_since

    def tick(self) -> Deferred[None]:
        """Write this process's snapshot and read the others' (one exchange at a time)."""
        now = self._clock.seconds()
        self._in_flight_since = now
        key = processes_key(self.cluster)
        snapshot = self._build()
        d: Deferred[Any]
        if snapshot is None:
            d = self._redis.hgetall(key)  # nothing of this cluster runs here: only read the others
        else:
            body = bounded(dict(snapshot, process=self.owner, time=now))
            ttl = max(1, round(self.interval * TTL_INTERVALS * 1000))
            d = self._redis.set(snapshot_key(self.cluster, self.owner), body, pexpire=ttl)
            d.addCallback(lambda _: self._redis.hset(key, self.owner, str(round(now * 1000))))
            d.addCallback(lambda _: self._redis.hgetall(key))
        d.addCallback(self._read_others, now)
        d.addCallbacks(self._ok, self._failed)
        return d

    def _read_others(self, seen: Any, now: float) -> Deferred[None] | None:
        owners: list[tuple[str, float]] = []
        forgotten: list[str] = []
        for field, value in (seen or {}).items():
            owner = field.decode() if isinstance(field, bytes) else str(field)
            if owner == self.owner:
                continue
            try:
                last = float(value) / 1000
            except (TypeError, ValueError):
                last = 0.0
            if now - last > FORGET_AFTER:
                forgotten.append(owner)
            else:
                owners.append((owner, last))
        owners = sorted(owners, key=lambda item: -item[1])[:MAX_PROCESSES]
        for owner in forgotten:
            self.others.pop(owner, None)
            self.gone.discard(owner)
        if forgotten:
            self._redis.hdel(processes_key(self.cluster), forgotten)
        if not owners:
            self.others.clear()
            self.gone.clear()
            return None
        names = [owner for owner, _ in owners]

        def got(values: Any) -> None:
            for owner, raw in zip(names, values):
                snapshot = None
                if raw is not None:
                    try:
                        snapshot = json.loads(raw)
                    except (TypeError, ValueError):
                        snapshot = None
                if isinstance(snapshot, dict):
                    self.others[owner] = snapshot
                    self.gone.discard(owner)
                else:
                    self.gone.add(owner)
                    self.others.setdefault(owner, {"process": owner})
            for owner in set(self.others) - set(names):
                del self.others[owner]
            self.gone &= set(names)

        return self._redis.mget([snapshot_key(self.cluster, owner) for owner in names]).addCallback(got)

    def _ok(self, _: object) -> None:
        self._in_flight_since = None
        self.last_ok = self._clock.seconds()
        if self.error is not None:
            self.log.info("cluster {cluster}: the cluster store answers again", cluster=self.cluster)
        self.error = None

    def _failed(self, failure: Any) -> None:
        # the loop goes on: the next tick tries again, and readiness says why meanwhile
        self._in_flight_since = None
        message = failure.getErrorMessage() or failure.type.__name__
        if self.error is None:
            self.log.warn("cluster {cluster}: the cluster store does not answer: {error}", cluster=self.cluster,
                          error=message)
        self.error = message
