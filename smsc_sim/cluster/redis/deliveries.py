"""
Receipts and MO of a cluster shared through Redis: any process with a
session of the account delivers them, and a process killed with ``kill -9``
loses none of the final receipts it owed.

Three pieces, all under ``smsc-sim:{cluster}:``:

- ``deliveries:{system_id}``, a Redis Stream per account with one consumer
  group (``smsc-sim``), each process a consumer.  What no session of a
  process can take is added there (XADD, ``MAXLEN ~ pending_max``); a
  process with a session of the account reads it (XREADGROUP), delivers it,
  and acknowledges it (XACK, then XDEL) once it ended (deliver_sm_resp, or
  failed, expired).  Entries read by a process that died stay pending in
  the group; a live process takes them over (XAUTOCLAIM) once idle for a
  lease.
- ``owed:{owner}`` (sorted set, by due time in ms) and ``owedpdu:{owner}``
  (hash): the final receipts each process owes, recorded when a message's
  plan starts.  The record goes when the receipt is answered here, or in
  the same Lua call that adds the receipt to the stream, so there is no
  moment it is in neither.
- ``owner:{owner}:ops``, the owner's inbox (:mod:`smsc_sim.cluster.redis.operations`):
  when a delivery made by one process ends in another (deliver_sm_resp,
  failed, expired), the outcome goes back there, batched (one list element
  per owner and call), so the record of the process that accepted the
  message moves on as if it had delivered it.  A dead owner is told nothing.
- ``alive:{owner}``, a lease each process refreshes every lease/3, and
  ``owners``, the set of processes that may owe receipts.  A live process
  takes a dead owner's records (one Lua call moves them to its own) and
  adds each to the stream at its due time, unless the message's
  ``msg:{id}`` record says it ended in another final state (a cancel).

Local delivery stays direct: a receipt whose account has a session in this
process goes straight to it, its record kept until the answer.  Redis work
is batched: the records, acknowledgements and stream additions of a
reactor turn go in one Lua call; reads poll on the injected clock (no
blocking connection).  While Redis does not answer, that work waits here
(at most ``pending_max`` operations, the oldest dropped beyond) and goes
once it does; one log line says so each way.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from smsc_sim.cluster.redis.binds import DEFAULT_LEASE
from smsc_sim.cluster.redis.delivery_pack import pack, unpack
from smsc_sim.cluster.redis.delivery_scripts import ALIVE, APPLY, FIELD_END, FINAL_NAMES, GROUP, OP_END, READ
from smsc_sim.cluster.redis.operations import INBOX_TTL_MS
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.router import Router
from smsc_sim.core.timeline import Timeline

__all__ = ["GROUP", "RedisDeliveries", "StreamCommands", "pack", "unpack"]

#: seconds a Redis call may take before the wait is logged
_SLOW = 2.0


class StreamCommands(Protocol):
    """The txredisapi commands used here (a connection)."""

    def eval(self, script: str, keys: list[str] = ..., args: list[Any] = ...) -> Deferred[Any]:
        """Run a Lua script."""

    def execute_command(self, *args: Any) -> Deferred[Any]:
        """Any command."""


class RedisDeliveries:
    """
    The shared delivery queue and owed receipts of one cluster
    (:class:`smsc_sim.core.delivery.SharedDeliveries` and
    :class:`~smsc_sim.core.delivery.OwedReceipts`).

    :param redis: a txredisapi connection (commands sent on it keep their order).
    :param clock: runs the polls, the lease and the owed receipts taken over.
    :param cluster: the cluster's name.
    :param owner: this process among the cluster's.
    :param lease: seconds this process counts as alive without a refresh; also how long a
        stream entry read by a process stays its own before another takes it over.
    :param poll: seconds between two reads of the streams.
    :param count: most entries read per account and read.
    """

    log = Logger()

    def __init__(
        self,
        redis: StreamCommands,
        clock: IReactorTime,
        cluster: str,
        owner: str,
        *,
        lease: float = DEFAULT_LEASE,
        poll: float = 0.05,
        count: int = 200,
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be > 0 seconds")
        self._redis = redis
        self._clock = clock
        self.cluster = cluster
        self.owner = owner
        self._prefix = f"smsc-sim:{cluster}:"
        self._lease = lease
        self._lease_ms = max(1, round(lease * 1000))
        self._count = count
        self._router: Router | None = None
        self._pending_max = 100_000
        #: operations waiting for the next call, each as the call sends it (see delivery_scripts.APPLY)
        self._ops: deque[str] = deque()
        self._flush_call: IDelayedCall | None = None
        self._applying: Deferred[Any] | None = None
        self._reading = False
        self._last_takeover = float("-inf")
        #: the state of the owed receipt recorded for each message of this process
        self._planned: dict[str, str] = {}
        #: stream entries read here and not ended yet: their account and when they were read
        self._held: dict[str, tuple[str, float]] = {}
        #: deliveries made here and handed to the cluster, by number, until another process says how they
        #: ended (at most pending_max, the oldest forgotten beyond: an entry no process ever reads)
        self._handed: dict[str, Delivery] = {}
        self._handed_seq = 0
        #: outcomes of other processes' deliveries ended here, per owner, for the next call
        self._reports: dict[str, list[list[Any]]] = {}
        self._timeline = Timeline(clock, resolution=0.05)
        #: when Redis last answered a lease refresh after not answering (dead owners are taken a lease later)
        self._healthy_since: float | None = None
        self._unreachable = False
        self._stopped = False
        self.dropped = 0
        self._poll_loop = LoopingCall(self._poll)
        self._poll_loop.clock = clock
        self._poll_interval = poll
        self._alive_loop = LoopingCall(self._keep_alive)
        self._alive_loop.clock = clock

    def key(self, what: str) -> str:
        """A key of this cluster: ``smsc-sim:{cluster}:{what}``."""
        return self._prefix + what

    # ------------------------------------------------------------------
    # wiring and life
    # ------------------------------------------------------------------

    def attach(self, router: Router, lifecycle: Lifecycle) -> None:
        """Serve a core: its router hands over what it cannot deliver, its lifecycle records owed receipts."""
        self._router = router
        self._pending_max = max(1, router.settings.pending_max)
        router.shared = self
        lifecycle.owed = self

    def start(self) -> None:
        """Start the lease and the polls."""
        self._stopped = False
        if not self._alive_loop.running:
            self._alive_loop.start(self._lease / 3, now=True)
        if not self._poll_loop.running:
            self._poll_loop.start(self._poll_interval, now=False)

    def stop(self) -> None:
        """
        Stop polling and refreshing, after sending what waits: what this process still owes
        (receipts not due or not answered, entries read) is taken over once its lease runs out.
        """
        self._stopped = True
        for loop in (self._alive_loop, self._poll_loop):
            if loop.running:
                loop.stop()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self._timeline.clear()
        if self._applying is None and (self._ops or self._reports):
            self._flush()

    # ------------------------------------------------------------------
    # SharedDeliveries and OwedReceipts
    # ------------------------------------------------------------------

    def publish(self, delivery: Delivery) -> None:
        """Add the delivery to its account's stream (with its owed record or entry, atomically)."""
        if delivery.ticket is None and delivery.on_outcome is not None:
            # made here: whichever process delivers it tells this one how it ended
            self._handed_seq += 1
            number = str(self._handed_seq)
            delivery.ticket = (self.owner, number)
            handed = self._handed
            handed[number] = delivery
            if len(handed) > self._pending_max:
                del handed[next(iter(handed))]
        if delivery.owed:
            self._planned.pop(delivery.message_id, None)
        entry = delivery.entry or ""
        if entry:
            self._held.pop(entry, None)
        self._queue("P", delivery.account, delivery.message_id if delivery.owed else "", pack(delivery), entry)

    def settle(
        self, delivery: Delivery, outcome: str = "", status: int | None = None, session_id: int | None = None
    ) -> None:
        """
        The delivery ended here: forget its owed record, acknowledge its entry, and tell the
        process that made it how it ended.
        """
        if delivery.owed:
            self._planned.pop(delivery.message_id, None)
            self._queue("S", "", delivery.message_id, "", "")
        entry = delivery.entry
        if entry is not None:
            self._held.pop(entry, None)
            ticket = delivery.ticket
            if ticket is not None and outcome:
                router = self._router
                instance = router.instance_of(session_id) if router is not None else None
                item = [ticket[1], outcome, status, session_id, delivery.attempt, instance, self._clock.seconds()]
                if ticket[0] == self.owner:
                    self.reported([item], self.owner)  # read back by the process that made it
                else:
                    self._reports.setdefault(ticket[0], []).append(item)
            self._queue("A", delivery.account, "", "", entry)

    def reported(self, items: list[Any], process: str) -> None:
        """
        Outcomes of deliveries this process handed to the cluster, ended by ``process``
        (from this process's inbox): applied as if they had ended here.

        :param items: ``[number, outcome, status, session id, attempts, instance, time]`` each.
        """
        router = self._router
        if router is None:
            return
        for item in items:
            try:
                number, outcome, status, session_id, attempts, instance, when = item
                delivery = self._handed.pop(str(number), None)
                if delivery is None:
                    continue  # forgotten (a reset, or the oldest beyond the bound)
                delivery.attempt = int(attempts)
                if process == self.owner:
                    # read back and ended here: the router published its event already
                    if delivery.on_outcome is not None:
                        delivery.on_outcome(delivery, str(outcome), status, session_id)
                    continue
                where = {"process": process, "instance": instance, "time": float(when)}
                router.ended_elsewhere(delivery, str(outcome), status, session_id, where)
            except Exception:
                self.log.failure("cluster {cluster}: delivery outcome {item!r} not applied", cluster=self.cluster, item=item)

    def _report(self) -> None:
        """The outcomes ended here since the last call, as one inbox element per owner (1000 outcomes at most)."""
        reports, self._reports = self._reports, {}
        for owner, items in reports.items():
            for start in range(0, len(items), 1000):
                element = json.dumps(
                    {"op": "outcomes", "process": self.owner, "items": items[start : start + 1000]},
                    separators=(",", ":"),
                )
                self._ops.append(FIELD_END.join(("R", "", owner, element, "", OP_END)))

    def reset(self) -> None:
        """The router forgot its deliveries: acknowledge the entries it held, forget the receipts owed."""
        for entry, (account, _since) in self._held.items():
            self._queue("A", account, "", "", entry)
        for message_id in self._planned:
            self._queue("S", "", message_id, "", "")
        self._held.clear()
        self._planned.clear()
        self._handed.clear()
        self._timeline.clear()

    def owe(self, delivery: Delivery, due: float, state: str) -> None:
        """Record a final receipt owed, due at ``due``."""
        self._planned[delivery.message_id] = state
        self._queue("O", "", delivery.message_id, pack(delivery, state), str(round(due * 1000)))

    def owed_state(self, message_id: str) -> str | None:
        """The state of the receipt recorded for the message."""
        return self._planned.get(message_id)

    def drop(self, message_id: str) -> None:
        """The message ended without a receipt: forget the one recorded."""
        if self._planned.pop(message_id, None) is not None:
            self._queue("S", "", message_id, "", "")

    def owed(self) -> int:
        """Owed receipts recorded by this process and not settled yet."""
        return len(self._planned)

    # ------------------------------------------------------------------
    # writing: one Lua call per reactor turn
    # ------------------------------------------------------------------

    def _queue(self, code: str, account: str, message_id: str, data: str, extra: str) -> None:
        ops = self._ops
        ops.append(FIELD_END.join((code, account, message_id, data, extra, OP_END)))
        if len(ops) > self._pending_max:
            # bounded as the router's pending queue is: the oldest goes
            ops.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                self.log.warn(
                    "cluster {cluster}: {dropped} deliveries dropped while the cluster store did not answer",
                    cluster=self.cluster,
                    dropped=self.dropped,
                )
        if self._flush_call is None and self._applying is None and not self._stopped:
            self._flush_call = self._clock.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        if self._reports:
            self._report()
        if self._applying is not None or not self._ops:
            return
        batch: list[str] = []
        ops = self._ops
        while ops and len(batch) < 2000:
            batch.append(ops.popleft())
        args: list[Any] = [
            self._prefix, GROUP, self._pending_max, self.owner, FINAL_NAMES, "".join(batch), INBOX_TTL_MS
        ]  # fmt: skip
        slow = self._clock.callLater(_SLOW, self._slow, len(batch))
        d = self._applying = self._redis.eval(APPLY, [], args)

        def applied(result: Any) -> None:
            self._answered()
            refused = int(result[1]) if isinstance(result, list) and len(result) > 1 else 0
            if refused:
                self.log.error(
                    "cluster {cluster}: {count} delivery operations refused by the cluster store"
                    " (a key of another type under smsc-sim:{cluster}:?)",
                    cluster=self.cluster,
                    count=refused,
                )

        def failed(failure: Any) -> None:
            from txredisapi import ResponseError  # loaded already: the connection is txredisapi's

            if failure.check(ResponseError):
                # Redis refused the call (a key of another type, say): sending it again would fail again
                self.log.error(
                    "cluster {cluster}: {count} delivery operations refused by the cluster store: {error}",
                    cluster=self.cluster,
                    count=len(batch),
                    error=failure.getErrorMessage(),
                )
                return
            # the connection broke under the call: send it again once Redis is back (an entry may be
            # added twice then: a receipt is sent at least once)
            self._ops.extendleft(reversed(batch))
            if not self._stopped:
                self._not_answering(failure.getErrorMessage())

        def done(_: Any) -> None:
            if slow.active():
                slow.cancel()
            self._applying = None
            if self._ops and self._flush_call is None and not self._unreachable and not self._stopped:
                self._flush_call = self._clock.callLater(0, self._flush)

        d.addCallbacks(applied, failed).addBoth(done)

    def _slow(self, count: int) -> None:
        self._not_answering(f"no answer within {_SLOW:g} s")

    def _not_answering(self, why: str) -> None:
        if not self._unreachable:
            self._unreachable = True
            self._healthy_since = None
            self.log.warn(
                "cluster {cluster}: the cluster store does not answer ({why}); {count} deliveries wait here",
                cluster=self.cluster,
                why=why,
                count=len(self._ops) + 1,
            )

    def _answered(self) -> None:
        if self._unreachable:
            self._unreachable = False
            self.log.info("cluster {cluster}: the cluster store answers again", cluster=self.cluster)

    # ------------------------------------------------------------------
    # reading: polls on the clock
    # ------------------------------------------------------------------

    def _poll(self) -> None:
        if (self._ops or self._reports) and self._applying is None and self._flush_call is None:
            self._flush()  # what a broken call left
        router = self._router
        if self._reading or router is None or self._unreachable:
            return
        accounts = sorted(router.receiving_accounts())
        if not accounts:
            return
        self._reading = True
        # taking over a dead reader's entries walks the pending lists: a few times per lease is enough
        now = self._clock.seconds()
        idle = 0
        if now - self._last_takeover >= self._lease / 6:
            self._last_takeover = now
            idle = self._lease_ms
        d = self._redis.eval(READ, [], [self._prefix, GROUP, self.owner, self._count, idle, *accounts])

        def read(result: Any) -> None:
            self._reading = False
            again = self._take(result or [])
            if again and self._poll_loop.running:
                self._clock.callLater(0, self._poll)  # more may wait: read on without waiting for the tick

        def failed(failure: Any) -> None:
            self._reading = False
            self._not_answering(failure.getErrorMessage())

        d.addCallbacks(read, failed)

    def _take(self, result: list[Any]) -> bool:
        """Deliver what was read; whether a stream had more than one read takes."""
        router = self._router
        assert router is not None
        now = self._clock.seconds()
        per_account: dict[str, int] = {}
        for index in range(0, len(result) - 2, 3):
            # the client turns replies that look like numbers into numbers: the account's name is the
            # one the delivery carries (a name such as "007" would come back as 7)
            reply_account, entry, data = str(result[index]), str(result[index + 1]), str(result[index + 2])
            per_account[reply_account] = per_account.get(reply_account, 0) + 1
            if entry in self._held:
                continue  # read here and not answered yet: taking it over again only reset its idle time
            try:
                delivery, _state = unpack(data)
            except Exception:
                self.log.failure("cluster {cluster}: unreadable delivery {entry} dropped", cluster=self.cluster, entry=entry)
                self._queue("A", reply_account, "", "", entry)
                continue
            delivery.entry = entry
            self._held[entry] = (delivery.account, now)
            router.take(delivery)
        return any(count >= self._count for count in per_account.values())

    # ------------------------------------------------------------------
    # the lease, and the receipts of dead processes
    # ------------------------------------------------------------------

    def _keep_alive(self) -> None:
        now = self._clock.seconds()
        claim = self._healthy_since is not None and now - self._healthy_since >= self._lease
        d = self._redis.eval(ALIVE, [], [self._prefix, self.owner, self._lease_ms, 1 if claim else 0, 5000])
        slow = self._clock.callLater(_SLOW, self._slow, 0)

        def alive(result: Any) -> None:
            if self._healthy_since is None:
                # others may have been away as long as this process: they get a lease to come back
                self._healthy_since = self._clock.seconds()
            self._answered()
            self._adopt(result or [])
            self._touch()

        def failed(failure: Any) -> None:
            self._not_answering(failure.getErrorMessage())

        def done(_: Any) -> None:
            if slow.active():
                slow.cancel()

        d.addCallbacks(alive, failed).addBoth(done)

    def _adopt(self, result: list[Any]) -> None:
        """Owed receipts taken from a dead process: each goes to the stream at its due time."""
        if not result:
            return
        self.log.info(
            "cluster {cluster}: {count} owed receipts taken over from a process that stopped",
            cluster=self.cluster,
            count=len(result) // 3,
        )
        for index in range(0, len(result) - 2, 3):
            due, data = float(result[index + 1]) / 1000, str(result[index + 2])
            try:
                delivery, state = unpack(data)
            except Exception:
                # its id as the reply gave it (the client may have made a number of it): the best there is
                self.log.failure("cluster {cluster}: unreadable owed receipt dropped", cluster=self.cluster)
                self._queue("S", "", str(result[index]), "", "")
                continue
            self._timeline.at(due, self._produce, delivery, state, data)

    def _produce(self, delivery: Delivery, state: str, data: str) -> None:
        self._queue("C", delivery.account, delivery.message_id, data, state)

    def _touch(self) -> None:
        """Entries read here long ago stay this process's (idle time reset), not taken over as a dead one's."""
        old = self._clock.seconds() - self._lease / 3
        by_account: dict[str, list[str]] = {}
        for entry, (account, since) in self._held.items():
            if since <= old:
                by_account.setdefault(account, []).append(entry)
        for account, entries in by_account.items():
            d = self._redis.execute_command(
                "XCLAIM", self.key(f"deliveries:{account}"), GROUP, self.owner, 0, *entries, "JUSTID"
            )
            d.addErrback(lambda _: None)  # Redis away: the keep-alive says so
