"""
One cluster's messages shared through Redis: message numbers from the
cluster's counter, a summary of every message in Redis, and query_sm,
cancel_sm and replace_sm on the messages of the other processes.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.cluster.redis.ids import RedisIds
from smsc_sim.cluster.redis.operations import IOwnedMessages, OwnerInbox, RedisClusterMessages, inbox_key
from smsc_sim.cluster.redis.records import RedisMessageJournal
from smsc_sim.core.record import MessageRecord

__all__ = ["SharedMessages"]

# KEYS[1] this process's marker; ARGV[1] its lifetime in ms.  1: it was missing (first check, or Redis lost its
# data), so this process's records must be written again; 0: Redis still holds what was written.
_MARK = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
    return 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
"""


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

    log = Logger()

    def __init__(
        self,
        redis: Any,
        clock: IReactorTime,
        cluster: str,
        owner: str,
        final_ttl: float,
        inbox: OwnerInbox,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._inbox = inbox
        self._marker = f"smsc-sim:{cluster}:owner:{owner}:records"
        self._marker_ms = 60_000
        self._records: Callable[[], Iterable[MessageRecord]] = tuple
        self._checked = False
        self._loop = LoopingCall(self._check)
        self._loop.clock = clock
        #: message numbers from the cluster's counter
        self.ids = RedisIds(redis, clock, cluster)
        #: writes each message's summary
        self.journal = RedisMessageJournal(redis, clock, cluster, owner, final_ttl)
        #: the messages of the other processes
        self.remote = RedisClusterMessages(redis, cluster, owner, clock)
        #: where the other processes push their cancels and replaces of this process's messages
        self.inbox_key = inbox_key(cluster, owner)

    def serve(self, owned: IOwnedMessages, records: Callable[[], Iterable[MessageRecord]]) -> None:
        """
        Apply the other processes' cancels and replaces of this process's
        messages to ``owned`` (the core's operations); ``records`` are the
        messages to write again when Redis lost them (the core's store).
        """
        self._inbox.serve(self.inbox_key, owned)
        self._records = records

    def start(self, check: float = 5.0) -> None:
        """
        Take the first block of message numbers, and check every ``check``
        seconds that Redis still holds this process's records (a marker key
        that lives six checks, a minute at least); when it lost them
        (restarted empty), every record of the process's store is written again.
        """
        self.ids.start(self._clock.seconds())
        self._marker_ms = round(max(check * 6, 60.0) * 1000)
        if not self._loop.running:
            self._loop.start(check, now=True)

    def stop(self) -> None:
        """Stop checking; write what waits."""
        if self._loop.running:
            self._loop.stop()
        self.journal.stop()

    def _check(self) -> Deferred[None]:
        d: Deferred[Any] = self._redis.eval(_MARK, [self._marker], [self._marker_ms])
        d.addTimeout(2.0, self._clock)  # Redis away: no check waits for it, the next one tries again

        def marked(missing: Any) -> None:
            first, self._checked = not self._checked, True
            if int(missing) != 1:
                return
            # missing: the first check of this process (a store restored from SQLite gets its records
            # written), or Redis restarted empty and every record of this process is gone from it
            count = self.journal.republish(self._records())
            if not first:
                self.log.warn(
                    "message records: the cluster store had lost them (Redis restarted empty?); "
                    "{count} written again",
                    count=count,
                )

        def failed(failure: Failure) -> None:
            pass  # Redis away: the next check tries again (the journal and the inbox log it)

        return d.addCallbacks(marked, failed)
