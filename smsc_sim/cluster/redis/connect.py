"""
The assembly's door to Redis: one txredisapi connection per process, and
each cluster's shared state on it.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Collection, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.cluster.redis.binds import DEFAULT_LEASE, RedisBindSlots
from smsc_sim.cluster.redis.control import RedisControl, decode
from smsc_sim.cluster.redis.deliveries import RedisDeliveries
from smsc_sim.cluster.redis.messages import SharedMessages
from smsc_sim.cluster.redis.operations import OwnerInbox, inbox_key
from smsc_sim.cluster.redis.snapshots import RedisSnapshots
from smsc_sim.cluster.redis.subscriber import RedisSubscriber
from smsc_sim.cluster.redis.throttle import RedisThrottles
from smsc_sim.config_checks import parse_redis_url


def process_tag() -> str:
    """Names this process among the cluster's: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ClusterStoreError(ValueError):
    """The cluster store cannot be used; the message says why and what to do, fit to show as is."""


#: the environment variable that shortens (or lengthens) the lease, in seconds (tests use a short one)
LEASE_VARIABLE = "SMSC_SIM_CLUSTER_LEASE"


def lease_from_environ(environ: dict[str, str] | None = None) -> float:
    """
    The lease of binds and processes: ``SMSC_SIM_CLUSTER_LEASE`` seconds, or 10.

    :raises ClusterStoreError: when the variable is not a number of seconds > 0.
    """
    value = (os.environ if environ is None else environ).get(LEASE_VARIABLE, "").strip()
    if not value:
        return DEFAULT_LEASE
    try:
        lease = float(value)
    except ValueError:
        lease = 0.0
    if not 0 < lease <= 3600:
        raise ClusterStoreError(f"{LEASE_VARIABLE}={value!r}: expected seconds, a number > 0 and <= 3600")
    return lease


class RedisClusterStore:
    """
    The Redis of ``cluster_store: redis://HOST:PORT/DB``.

    The connection is lazy and reconnects by itself: commands sent while
    Redis is down wait for it, and the core bounds that wait (a bind then
    gets ESME_RSYSERR).

    :param url: the ``redis://HOST:PORT/DB`` URL (checked at config load).
    :param clock: runs the lease refreshes.
    :param lease: seconds a bind's slot, and the owed receipts, survive their process
        before another process takes them; ``None``: :func:`lease_from_environ`.
    """

    log = Logger()
    #: seconds an exchange with Redis may wait before readiness says Redis does not answer
    ANSWER_WITHIN = 2.0

    def __init__(self, url: str, clock: IReactorTime, lease: float | None = None) -> None:
        parsed = parse_redis_url(url)
        if parsed is None:
            raise ValueError(f"not a redis://HOST:PORT/DB URL: {url!r}")
        host, port, db = parsed
        # imported here: txredisapi imports Twisted's global reactor, and the in-memory path must not
        try:
            import txredisapi
        except ImportError:
            raise ClusterStoreError(
                f"cluster_store {url} needs txredisapi: pip install 'smsc-sim[redis]'"
            ) from None

        self.url = url
        self._host, self._port, self._db = host, port, db
        self.owner = process_tag()
        self._connection: Any = txredisapi.lazyConnection(host, port, dbid=db, reconnect=True, connectTimeout=2)
        # back within a couple of seconds of Redis, not the client's default of up to 10 s
        self._connection._factory.maxDelay = 2
        self._clock = clock
        self._lease = lease if lease is not None else lease_from_environ()
        self.bind_slots: dict[str, RedisBindSlots] = {}
        self.throttles: dict[str, RedisThrottles] = {}
        #: each cluster's control channel, and what applies the messages heard on it
        self.controls: dict[str, RedisControl] = {}
        self._appliers: dict[str, tuple[Callable[[dict[str, Any]], None], Callable[[], object]]] = {}
        #: each cluster's snapshots (this process's part, the others')
        self.snapshots: dict[str, RedisSnapshots] = {}
        self._subscriber: RedisSubscriber | None = None
        self.messages: dict[str, SharedMessages] = {}
        #: seconds between two checks that Redis still holds this process's message records
        self.records_check = 5.0

        def blocking() -> Any:
            # a connection of its own: a blocking pop holds the connection it is sent on
            return txredisapi.lazyConnection(host, port, dbid=db, reconnect=True, connectTimeout=2)

        #: pops the cancels and replaces other processes decided on this process's messages
        self.inbox = OwnerInbox(blocking, clock)
        self.deliveries: dict[str, RedisDeliveries] = {}

    def slots_for(self, cluster: str) -> RedisBindSlots:
        """The bind slots of one cluster (made once)."""
        slots = self.bind_slots.get(cluster)
        if slots is None:
            slots = self.bind_slots[cluster] = RedisBindSlots(self._connection, self._clock, cluster, lease=self._lease)
        return slots

    def throttle_for(self, cluster: str, instances: Sequence[str] = (), running: Collection[str] = ()) -> RedisThrottles:
        """
        The throttle of one cluster (made once): account limits shared by its processes.

        :param instances: the cluster's instances.
        :param running: the instances this process runs (empty: all).  While Redis does not
            answer, this process keeps to its part of each limit: its instances over all.
        """
        throttle = self.throttles.get(cluster)
        if throttle is None:
            here = sum(1 for name in instances if not running or name in running)
            share = max(here, 1) / max(len(instances), 1) if instances else 1.0
            throttle = self.throttles[cluster] = RedisThrottles(
                self._connection, self._clock, cluster, self.owner, share=min(share, 1.0)
            )
        return throttle

    def control_for(
        self, cluster: str, apply: Callable[[dict[str, Any]], None], resync: Callable[[], object]
    ) -> RedisControl:
        """
        The control channel of one cluster (made once).

        :param apply: called with each control message another process publishes on it.
        :param resync: called each time the subscription is (again) in place, to read the state in force.
        """
        control = self.controls.get(cluster)
        if control is None:
            control = self.controls[cluster] = RedisControl(self._connection, cluster, self.owner, self._db)
            self._appliers[control.channel] = (apply, resync)
            if self._subscriber is None:
                self._subscriber = RedisSubscriber(self._host, self._port, self._heard, self._resubscribed)
            self._subscriber.subscribe(control.channel)
        return control

    def snapshots_for(self, cluster: str, build: Callable[[], dict[str, Any] | None]) -> RedisSnapshots:
        """The snapshots of one cluster (made once); ``build`` makes this process's."""
        snapshots = self.snapshots.get(cluster)
        if snapshots is None:
            snapshots = self.snapshots[cluster] = RedisSnapshots(self._connection, self._clock, cluster, self.owner, build)
        return snapshots

    def _heard(self, channel: str, raw: Any) -> None:
        appliers = self._appliers.get(channel)
        message = decode(raw)
        if appliers is None or message is None:
            self.log.warn("control channel {channel}: a message that is not one of smsc-sim's, ignored", channel=channel)
            return
        if message.get("origin") == self.owner:
            return  # this process applied it before publishing
        appliers[0](message)

    def _resubscribed(self) -> None:
        for _apply, resync in self._appliers.values():
            resync()

    def reachable(self) -> tuple[bool, str | None]:
        """Whether Redis answers this process now, and why not (for readiness)."""
        if self._subscriber is not None and not self._subscriber.connected:
            return False, f"the cluster store {self.url} is unreachable (control channel disconnected)"
        now = self._clock.seconds()
        for snapshots in self.snapshots.values():
            # judged by the exchange under way and the last one's outcome, not by the age of the last
            # success: a process whose reactor is merely busy (a loaded CI runner) starts its ticks
            # late, which is no reason to call Redis unreachable; an exchange sent just before Redis
            # went away (or while the commands' connection is still away) waits, and that counts
            waiting = snapshots.waiting_since()
            if waiting is not None and now - waiting > self.ANSWER_WITHIN:
                return False, f"the cluster store {self.url} does not answer: no answer for {now - waiting:.0f} s"
            if snapshots.error is not None:
                return False, f"the cluster store {self.url} does not answer: {snapshots.error}"
            if snapshots.last_ok is None:
                return False, f"the cluster store {self.url} does not answer: no answer yet"
        return True, None

    def messages_for(self, cluster: str, final_ttl: float) -> SharedMessages:
        """
        The messages of one cluster (made once): ids, the journal of summaries, other processes' messages.

        :param final_ttl: seconds a final message's summary is kept (``store_final_ttl``).
        """
        messages = self.messages.get(cluster)
        if messages is None:
            messages = self.messages[cluster] = SharedMessages(
                self._connection, self._clock, cluster, self.owner, final_ttl, self.inbox
            )
        return messages

    def deliveries_for(self, cluster: str) -> RedisDeliveries:
        """The shared receipts and MO of one cluster (made once)."""
        deliveries = self.deliveries.get(cluster)
        if deliveries is None:
            deliveries = self.deliveries[cluster] = RedisDeliveries(
                self._connection, self._clock, cluster, self.owner, lease=self._lease
            )
            # the outcomes of what this process handed to the cluster come back through its inbox
            self.inbox.hear_outcomes(inbox_key(cluster, self.owner), deliveries.reported)
        return deliveries

    def start(self) -> None:
        """Start refreshing the leases of this process's binds, listening for control, sharing snapshots and reading the shared deliveries."""
        for slots in self.bind_slots.values():
            slots.start()
        if self._subscriber is not None:
            self._subscriber.start()
        for snapshots in self.snapshots.values():
            snapshots.start()
        for messages in self.messages.values():
            messages.start(self.records_check)
        self.inbox.start()
        for deliveries in self.deliveries.values():
            deliveries.start()
    def stop(self) -> None:
        """Stop refreshing and close the connection (the leases left run out)."""
        for slots in self.bind_slots.values():
            slots.stop()
        for throttle in self.throttles.values():
            throttle.stop()
        for snapshots in self.snapshots.values():
            snapshots.stop()
        if self._subscriber is not None:
            self._subscriber.stop()
        for messages in self.messages.values():
            messages.stop()
        self.inbox.stop()
        for deliveries in self.deliveries.values():
            deliveries.stop()
        self._connection.disconnect()
