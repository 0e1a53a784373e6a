"""
One cluster's messages shared through Redis: message numbers from the
cluster's counter, a summary of every message in Redis, and query_sm,
cancel_sm and replace_sm on the messages of the other processes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from smsc_sim.cluster.redis.ids import RedisIds
from smsc_sim.cluster.redis.operations import IOwnedMessages, OwnerInbox, RedisClusterMessages, inbox_key
from smsc_sim.cluster.redis.records import RedisMessageJournal

__all__ = ["SharedMessages"]


class SharedMessages:
    """
    What the assembly gives one cluster's core: ``ids``, ``journal`` and
    ``remote`` (see docs/cluster.md).

    :param redis: the process's txredisapi connection.
    :param clock: the clock.
    :param cluster: the cluster's name.
    :param owner: this process (``RedisClusterStore.owner``).
    :param final_ttl: seconds a final record is kept (``store_final_ttl``).
    :param inbox: the process's inbox, which applies the operations of the other processes.
    """

    def __init__(
        self, redis: Any, clock: IReactorTime, cluster: str, owner: str, final_ttl: float, inbox: OwnerInbox
    ) -> None:
        self._clock = clock
        self._inbox = inbox
        #: message numbers from the cluster's counter
        self.ids = RedisIds(redis, clock, cluster)
        #: writes each message's summary
        self.journal = RedisMessageJournal(redis, clock, cluster, owner, final_ttl)
        #: the messages of the other processes
        self.remote = RedisClusterMessages(redis, cluster)
        #: where the other processes push their cancels and replaces of this process's messages
        self.inbox_key = inbox_key(cluster, owner)

    def serve(self, owned: IOwnedMessages) -> None:
        """Apply the other processes' cancels and replaces of this process's messages to ``owned`` (the core's)."""
        self._inbox.serve(self.inbox_key, owned)

    def start(self) -> None:
        """Take the first block of message numbers."""
        self.ids.start(self._clock.seconds())

    def stop(self) -> None:
        """Write what waits."""
        self.journal.flush()
