"""
The assembly's door to Redis: one txredisapi connection per process, and
each cluster's shared state on it.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from twisted.internet.interfaces import IReactorTime

from smsc_sim.cluster.redis.binds import DEFAULT_LEASE, RedisBindSlots
from smsc_sim.cluster.redis.deliveries import RedisDeliveries
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
        self.owner = process_tag()
        self._connection: Any = txredisapi.lazyConnection(host, port, dbid=db, reconnect=True, connectTimeout=2)
        self._clock = clock
        self._lease = lease if lease is not None else lease_from_environ()
        self.bind_slots: dict[str, RedisBindSlots] = {}
        self.deliveries: dict[str, RedisDeliveries] = {}

    def slots_for(self, cluster: str) -> RedisBindSlots:
        """The bind slots of one cluster (made once)."""
        slots = self.bind_slots.get(cluster)
        if slots is None:
            slots = self.bind_slots[cluster] = RedisBindSlots(self._connection, self._clock, cluster, lease=self._lease)
        return slots

    def deliveries_for(self, cluster: str) -> RedisDeliveries:
        """The shared receipts and MO of one cluster (made once)."""
        deliveries = self.deliveries.get(cluster)
        if deliveries is None:
            deliveries = self.deliveries[cluster] = RedisDeliveries(
                self._connection, self._clock, cluster, self.owner, lease=self._lease
            )
        return deliveries

    def start(self) -> None:
        """Start refreshing the leases of this process's binds, and reading the shared deliveries."""
        for slots in self.bind_slots.values():
            slots.start()
        for deliveries in self.deliveries.values():
            deliveries.start()

    def stop(self) -> None:
        """Stop refreshing and close the connection (the leases left run out)."""
        for slots in self.bind_slots.values():
            slots.stop()
        for deliveries in self.deliveries.values():
            deliveries.stop()
        self._connection.disconnect()
