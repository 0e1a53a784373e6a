"""
The delivery router of one cluster: which bound session gets a receipt or
an MO message, what happens on its deliver_sm_resp, and the pending queue.

- Eligible sessions: the account's receiver and transceiver binds in this
  cluster whose instance is available and whose outbound queue has room.
- Policy ``origin``: the session the message came from if still eligible,
  else one on the same instance, else any (round-robin among candidates);
  ``round-robin``: every eligible session in turn.
- deliver_sm_resp 0: delivered.  A status the scenario calls temporary, or
  no answer (:class:`~smsc_sim.contracts.DeliveryFailed`: timeout or
  closed): retried after ``delivery_retry_backoff`` seconds, doubling, up to
  ``delivery_max_attempts`` attempts in all, on any eligible session.  Any
  other status: failed for good.
- No eligible session: the delivery waits in a per-cluster queue bounded by
  ``pending_max``.  When it is full the **oldest** waiting delivery is
  dropped (and counted), as a bounded buffer does: the newest receipts are
  the ones an ESME that comes back can still act on.  A delivery waiting
  longer than ``pending_expiry`` is dropped as expired.  The queue is
  flushed, in order, when a receiver binds or an instance comes back.
- Across processes (``cluster_store``, :attr:`Router.shared`): what no
  session of this process can take goes to the cluster's shared queue
  instead of the pending queue, and comes back through :meth:`Router.take`
  in a process that has a session of the account.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.config import CoreSettings
from smsc_sim.contracts import DeliveryFailed, IScenario
from smsc_sim.core.binds import BindEntry, BindRegistry
from smsc_sim.core.delivery import Delivery, OutcomeCallback, SharedDeliveries
from smsc_sim.core.journal import NO_JOURNAL, IMessageJournal, kept
from smsc_sim.core.record import MessageRecord
from smsc_sim.core.timeline import Timeline
from smsc_sim.events import EventBus
from smsc_sim.modes import DeliveryFailure, DeliveryOutcome
from smsc_sim.smpp.constants import INTERFACE_VERSION_34
from smsc_sim.smpp.pdu import PDU

__all__ = ["Delivery", "OutcomeCallback", "Router"]

class _Answer:
    """
    Waits for the answer to one delivery (a :class:`~smsc_sim.contracts.DeliveryWaiter`,
    in place of a Deferred per receipt): the session calls :meth:`callback`
    with the response or :meth:`errback` with :class:`DeliveryFailed`.
    """

    __slots__ = ("router", "delivery", "session_id", "epoch")

    def __init__(self, router: Router, delivery: Delivery, session_id: int, epoch: int) -> None:
        self.router = router
        self.delivery = delivery
        self.session_id = session_id
        self.epoch = epoch

    def callback(self, response: PDU) -> None:
        """The deliver_sm_resp (or data_sm_resp) arrived."""
        try:
            self.router._answered(response, self.delivery, self.session_id, self.epoch)
        except Exception:
            # a Deferred would have kept the error; here it must not reach the session that read the response
            Router.log.failure("handling the answer to {message_id} failed", message_id=self.delivery.message_id)

    def errback(self, error: Exception) -> None:
        """No usable answer."""
        try:
            self.router._failed(Failure(error), self.delivery, self.session_id, self.epoch)
        except Exception:
            Router.log.failure("handling the failure of {message_id} failed", message_id=self.delivery.message_id)


class Router:
    """
    Routes deliveries to bound sessions of one cluster.

    :param clock: the clock.
    :param timeline: where retries are scheduled.
    :param binds: the cluster's binds.
    :param settings: routing policy, retry and queue limits.
    :param events: where ``delivery`` events go.
    :param scenario: returns the current scenario (it decides which
        deliver_sm_resp statuses are temporary).
    :param queue_limit: a session whose outbound queue holds this many
        deliveries is not given more (they wait here instead).
    :param journal: told of every delivery handed to the router.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        timeline: Timeline,
        binds: BindRegistry,
        settings: CoreSettings,
        events: EventBus,
        scenario: Callable[[], IScenario],
        *,
        queue_limit: int = 10_000,
        journal: IMessageJournal = NO_JOURNAL,
    ) -> None:
        self._clock = clock
        self._timeline = timeline
        self._binds = binds
        self.settings = settings
        self._events = events
        self._scenario = scenario
        self.queue_limit = queue_limit
        self._journal = kept(journal)
        self._available: dict[str, bool] = {}
        self._rr: dict[str, int] = {}
        self._pending: dict[str, deque[Delivery]] = {}
        self._pending_total = 0
        self._flushing = False
        self._epoch = 0
        self.counters: Counter[str] = Counter()
        #: (delivery kind, outcome) -> delivery steps, never reset (the metrics sum them when scraped)
        self.outcomes: dict[tuple[str, str], int] = {}
        #: the cluster's shared queue when it spans processes; None: this process is the cluster
        self.shared: SharedDeliveries | None = None

    # ------------------------------------------------------------------
    # eligibility
    # ------------------------------------------------------------------

    def set_available(self, instance: str, available: bool) -> None:
        """Mark an instance (un)available; coming back flushes the queue."""
        self._available[instance] = available
        if available:
            self.flush()

    def available(self, instance: str) -> bool:
        """Whether an instance may carry deliveries."""
        return self._available.get(instance, True)

    def eligible(self, account: str) -> list[BindEntry]:
        """The sessions a delivery for ``account`` may go to now."""
        limit = self.queue_limit
        return [
            entry
            for entry in self._binds.of_account(account)
            if entry.bind_type.can_receive
            and self._available.get(entry.instance, True)
            and entry.session.outbound_pending() < limit
        ]

    def _origin(self, delivery: Delivery) -> BindEntry | None:
        """The session the delivery's message came from, if it may take the delivery now."""
        origin = delivery.origin_session
        if origin is None:
            return None
        entry = self._binds.entry(origin)
        if (
            entry is None
            or entry.account.system_id != delivery.account
            or not entry.bind_type.can_receive
            or not self._available.get(entry.instance, True)
            or entry.session.outbound_pending() >= self.queue_limit
        ):
            return None
        return entry

    def _choose(self, delivery: Delivery) -> BindEntry | None:
        origin_policy = self.settings.routing == "origin"
        if origin_policy:
            # the usual case, a receipt going back where its message came from, without listing every bind
            entry = self._origin(delivery)
            if entry is not None:
                return entry
        candidates = self.eligible(delivery.account)
        if not candidates:
            return None
        if origin_policy:
            same = [entry for entry in candidates if entry.instance == delivery.origin_instance]
            if same:
                candidates = same
        turn = self._rr.get(delivery.account, 0)
        self._rr[delivery.account] = turn + 1
        return candidates[turn % len(candidates)]

    # ------------------------------------------------------------------
    # sending
    # ------------------------------------------------------------------

    def send(self, delivery: Delivery, record: MessageRecord | None = None) -> None:
        """
        Deliver now if a session is eligible, else queue.

        :param record: the record the delivery belongs to, for the journal.
        """
        journal = self._journal
        if journal is not None and not delivery.done:
            journal.delivery_sent(delivery, record)
        entry = self._choose(delivery)
        if entry is None:
            if self.shared is not None:
                self._share(delivery)
            else:
                self._enqueue(delivery)
        else:
            self._dispatch(delivery, entry)

    def take(self, delivery: Delivery) -> None:
        """A delivery from the cluster's shared queue: deliver it here, or give it back."""
        if delivery.created <= self._clock.seconds() - self.settings.pending_expiry:
            self.counters["pending_expired"] += 1
            self._finish(delivery, "expired", None, None)
            return
        entry = self._choose(delivery)
        if entry is None:
            self._share(delivery)
        else:
            self._dispatch(delivery, entry)

    def _share(self, delivery: Delivery) -> None:
        """No session here may take it: another process of the cluster will (it is no longer ours)."""
        assert self.shared is not None
        self.counters["shared"] += 1
        self._outcome(delivery, "queued", None, None)
        delivery.done = True
        self.shared.publish(delivery)

    def receiving_accounts(self) -> set[str]:
        """The accounts with a session that may take a delivery now."""
        limit = self.queue_limit
        available = self._available
        return {
            entry.account.system_id
            for entry in self._binds.entries()
            if entry.bind_type.can_receive
            and available.get(entry.instance, True)
            and entry.session.outbound_pending() < limit
        }

    def _dispatch(self, delivery: Delivery, entry: BindEntry) -> None:
        delivery.attempt += 1
        self.counters["sent"] += 1
        pdu = delivery.pdu
        if pdu.tlvs and entry.interface_version < INTERFACE_VERSION_34:
            # SMPP 3.4 section 3.4: no TLVs to an ESME that bound as 3.3 or older
            pdu = dataclasses.replace(pdu, tlvs={})
        epoch = self._epoch
        session = entry.session
        session_id = session.session_id
        try:
            session.send_delivery(pdu, _Answer(self, delivery, session_id, epoch))
        except Exception:
            self.log.failure("session {session_id} refused a delivery", session_id=session_id)
            self._unanswered(delivery, session_id, DeliveryFailure.CLOSED, epoch)

    def _answered(self, response: PDU, delivery: Delivery, session_id: int, epoch: int) -> None:
        if epoch != self._epoch or delivery.done:
            return
        status = response.command_status
        if status == 0:
            self._finish(delivery, DeliveryOutcome.ACKED, status, session_id)
            self.counters["acked"] += 1
        elif self._scenario().deliver_resp_is_temporary(status):
            self._retry(delivery, status, session_id)
        else:
            self._finish(delivery, "failed", status, session_id)
            self.counters["failed"] += 1
        if self._pending.get(delivery.account):
            self.flush(delivery.account)

    def _failed(self, failure: Failure, delivery: Delivery, session_id: int, epoch: int) -> None:
        reason = failure.value.reason if isinstance(failure.value, DeliveryFailed) else "error"
        if not failure.check(DeliveryFailed):
            self.log.failure("delivery to session {session_id} failed", failure, session_id=session_id)
        self._unanswered(delivery, session_id, reason, epoch)

    def _unanswered(self, delivery: Delivery, session_id: int, reason: str, epoch: int) -> None:
        if epoch != self._epoch or delivery.done:
            return
        self.counters[f"unanswered_{reason}"] += 1
        self._retry(delivery, None, session_id)

    def _retry(self, delivery: Delivery, status: int | None, session_id: int) -> None:
        policy = self._scenario().retry
        max_attempts = self.settings.delivery_max_attempts
        if policy is not None and policy.max_attempts is not None:
            max_attempts = policy.max_attempts
        if delivery.attempt >= max_attempts:
            self._finish(delivery, "exhausted", status, session_id)
            self.counters["failed"] += 1
            return
        self.counters["retries"] += 1
        self._outcome(delivery, "retry", status, session_id)
        if policy is not None:
            wait = policy.delay(delivery.attempt, self.settings.delivery_retry_backoff)
        else:
            wait = self.settings.delivery_retry_backoff * 2 ** (delivery.attempt - 1)
        self._timeline.at(self._clock.seconds() + wait, self._resend, delivery, self._epoch)

    def _resend(self, delivery: Delivery, epoch: int) -> None:
        if epoch == self._epoch and not delivery.done:
            self.send(delivery)

    def _finish(self, delivery: Delivery, outcome: str, status: int | None, session_id: int | None) -> None:
        delivery.done = True
        self._outcome(delivery, outcome, status, session_id)
        if self.shared is not None and (delivery.owed or delivery.entry is not None):
            self.shared.settle(delivery, outcome, status, session_id)

    def ended_elsewhere(
        self, delivery: Delivery, outcome: str, status: int | None, session_id: int | None, where: dict[str, Any]
    ) -> None:
        """
        A delivery this process handed to the cluster ended in another process: tell its
        record and the event stream as if it had ended here (the other process counted it in
        its :attr:`outcomes`, so this one does not).

        :param where: the process, instance and time it ended, for the event.
        """
        self._announce(delivery, outcome, status, session_id, where)

    def instance_of(self, session_id: int | None) -> str | None:
        """The instance of a session of this process, if it is still bound."""
        entry = self._binds.entry(session_id) if session_id is not None else None
        return entry.instance if entry is not None else None

    def _outcome(self, delivery: Delivery, outcome: str, status: int | None, session_id: int | None) -> None:
        key = (delivery.kind, outcome)
        outcomes = self.outcomes
        outcomes[key] = outcomes.get(key, 0) + 1
        self._announce(delivery, outcome, status, session_id, {})

    def _announce(
        self, delivery: Delivery, outcome: str, status: int | None, session_id: int | None, where: dict[str, Any]
    ) -> None:
        """Publish a delivery's step (to those who listen) and tell its owner's callback."""
        if self._events.wants_deliveries:
            self._events.publish(
                "delivery",
                message_id=delivery.message_id,
                delivery=delivery.kind,
                account=delivery.account,
                outcome=outcome,
                status=status,
                attempt=delivery.attempt,
                session_id=session_id,
                **where,
            )
        if delivery.on_outcome is not None:
            delivery.on_outcome(delivery, outcome, status, session_id)

    # ------------------------------------------------------------------
    # the pending queue
    # ------------------------------------------------------------------

    def _enqueue(self, delivery: Delivery) -> None:
        self._expire()
        if self._pending_total >= self.settings.pending_max:
            self._drop_oldest()
        if self.settings.pending_max <= 0:
            self._finish(delivery, "dropped", None, None)
            self.counters["pending_dropped"] += 1
            return
        self._pending.setdefault(delivery.account, deque()).append(delivery)
        self._pending_total += 1
        self._outcome(delivery, "queued", None, None)

    def _drop_oldest(self) -> None:
        oldest: deque[Delivery] | None = None
        for queue in self._pending.values():
            if queue and (oldest is None or queue[0].created < oldest[0].created):
                oldest = queue
        if oldest is not None:
            delivery = oldest.popleft()
            self._pending_total -= 1
            self.counters["pending_dropped"] += 1
            self._finish(delivery, "dropped", None, None)

    def _expire(self) -> None:
        limit = self._clock.seconds() - self.settings.pending_expiry
        for queue in self._pending.values():
            while queue and queue[0].created <= limit:
                delivery = queue.popleft()
                self._pending_total -= 1
                self.counters["pending_expired"] += 1
                self._finish(delivery, "expired", None, None)

    def flush(self, account: str | None = None) -> None:
        """Send waiting deliveries, oldest first, while sessions are eligible."""
        if self._flushing:
            return  # the outer flush picks up where a nested one would
        self._flushing = True
        try:
            self._expire()
            accounts = [account] if account is not None else list(self._pending)
            for name in accounts:
                queue = self._pending.get(name)
                while queue:
                    entry = self._choose(queue[0])
                    if entry is None:
                        break
                    delivery = queue.popleft()
                    self._pending_total -= 1
                    self._dispatch(delivery, entry)
                if queue is not None and not queue:
                    self._pending.pop(name, None)
        finally:
            self._flushing = False

    def pending_depth(self) -> int:
        """Deliveries waiting for a session (expired ones removed first)."""
        self._expire()
        return self._pending_total

    def waiting(self, account: str) -> int:
        """Deliveries for ``account`` waiting for a session (outbind asks before it connects)."""
        return len(self._pending.get(account, ()))

    def pending(self) -> list[dict[str, Any]]:
        """The waiting deliveries, for inspection."""
        return [
            {"message_id": d.message_id, "kind": d.kind, "account": d.account, "since": d.created, "attempts": d.attempt}
            for queue in self._pending.values()
            for d in queue
        ]

    def clear(self) -> None:
        """Forget waiting deliveries and ignore answers to deliveries in flight."""
        self._pending.clear()
        self._pending_total = 0
        self._epoch += 1
        self.counters.clear()
        if self.shared is not None:
            self.shared.reset()
