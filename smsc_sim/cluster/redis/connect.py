"""
The assembly's door to Redis: one txredisapi connection per process, and
each cluster's shared state on it.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Collection, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime

from smsc_sim.cluster.redis.binds import DEFAULT_LEASE, RedisBindSlots
from smsc_sim.cluster.redis.throttle import RedisThrottles
from smsc_sim.config_checks import parse_redis_url


def process_tag() -> str:
    """Names this process among the cluster's: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ClusterStoreError(ValueError):
    """The cluster store cannot be used; the message says why and what to do, fit to show as is."""


class RedisClusterStore:
    """
    The Redis of ``cluster_store: redis://HOST:PORT/DB``.

    The connection is lazy and reconnects by itself: commands sent while
    Redis is down wait for it, and the core bounds that wait (a bind then
    gets ESME_RSYSERR).

    :param url: the ``redis://HOST:PORT/DB`` URL (checked at config load).
    :param clock: runs the lease refreshes.
    :param lease: seconds a bind's slot survives its process.
    """

    def __init__(self, url: str, clock: IReactorTime, lease: float = DEFAULT_LEASE) -> None:
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
        self._lease = lease
        self.bind_slots: dict[str, RedisBindSlots] = {}
        self.throttles: dict[str, RedisThrottles] = {}

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

    def start(self) -> None:
        """Start refreshing the leases of this process's binds."""
        for slots in self.bind_slots.values():
            slots.start()

    def stop(self) -> None:
        """Stop refreshing and close the connection (the leases left run out)."""
        for slots in self.bind_slots.values():
            slots.stop()
        for throttle in self.throttles.values():
            throttle.stop()
        self._connection.disconnect()
