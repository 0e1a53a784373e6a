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
from smsc_sim.cluster.redis.messages import SharedMessages
from smsc_sim.cluster.redis.operations import OwnerInbox
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
        self.messages: dict[str, SharedMessages] = {}
        #: seconds between two checks that Redis still holds this process's message records
        self.records_check = 5.0

        def blocking() -> Any:
            # a connection of its own: a blocking pop holds the connection it is sent on
            return txredisapi.lazyConnection(host, port, dbid=db, reconnect=True, connectTimeout=2)

        #: pops the cancels and replaces other processes decided on this process's messages
        self.inbox = OwnerInbox(blocking, clock)

    def slots_for(self, cluster: str) -> RedisBindSlots:
        """The bind slots of one cluster (made once)."""
        slots = self.bind_slots.get(cluster)
        if slots is None:
            slots = self.bind_slots[cluster] = RedisBindSlots(self._connection, self._clock, cluster, lease=self._lease)
        return slots

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

    def start(self) -> None:
        """Start refreshing the leases of this process's binds."""
        for slots in self.bind_slots.values():
            slots.start()
        for messages in self.messages.values():
            messages.start(self.records_check)
        self.inbox.start()

    def stop(self) -> None:
        """Stop refreshing and close the connection (the leases left run out)."""
        for slots in self.bind_slots.values():
            slots.stop()
        for messages in self.messages.values():
            messages.stop()
        self.inbox.stop()
        self._connection.disconnect()
