"""
The SMSC core of one cluster: the brain behind the sessions.

SMPP1 and SMPP2 of the provider's topology share one :class:`SMSCCore`
(one bind quota, one throttle, one message store, receipts routed to any
bind of the account); SMPP0 has its own.  Sessions ask it what to answer
(:class:`~smsc_sim.contracts.ICore`); it asks the scenario engine for a
verdict on each message; the topology tells it when an instance is out.

The pieces: :mod:`~smsc_sim.core.accounts` (credentials),
:mod:`~smsc_sim.core.binds` (quota, ghost binds),
:mod:`~smsc_sim.core.submit` (the submit path, throttling),
:mod:`~smsc_sim.core.operations` (query/cancel/replace),
:mod:`~smsc_sim.core.lifecycle` (receipt plans, expiry),
:mod:`~smsc_sim.core.router` (who gets a receipt or MO, retries, pending
queue), :mod:`~smsc_sim.core.reassembly`, :mod:`~smsc_sim.core.store`, all
timed work on one :class:`~smsc_sim.core.timeline.Timeline`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Callable, Iterator, Sequence

from twisted.internet.defer import Deferred

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.config import AccountSettings, Config, InstanceSettings
from smsc_sim.contracts import IBindSlots, IScenario, ISession, Reply
from smsc_sim.core.accounts import Accounts
from smsc_sim.core.admission import Admission
from smsc_sim.core.billing import Balances, Networks
from smsc_sim.core.binds import BindEntry, BindRegistry
from smsc_sim.core.contracts import IThrottle
from smsc_sim.core.ids import PROCESS_IDS, IMessageNumbers
from smsc_sim.core.journal import NO_JOURNAL, Handler, IMessageJournal
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.mo import Originator
from smsc_sim.core.operations import Operations
from smsc_sim.core.reassembly import Reassembler
from smsc_sim.core.remote import IClusterMessages
from smsc_sim.core.router import Router
from smsc_sim.core.store import MessageQuery, MessageRecord, MessageStore, matching, select
from smsc_sim.core.submit import Submissions
from smsc_sim.core.throttle import Limiter, Throttles
from smsc_sim.core.timeline import Timeline
from smsc_sim.events import EventBus
from smsc_sim.limits import BindFailureGuard, peer_host
from smsc_sim.smpp.constants import (
    BIND_TYPES,
    BindType,
    INTERFACE_VERSION_34,
    CommandId,
    CommandStatus,
    MessageState,
    Tag,
    response_id,
    status_name,
)
from smsc_sim.smpp.pdu import PDU, make_pdu
from smsc_sim.smpp.receipt import STAT_DEFAULT_ERR

_SC_INTERFACE_VERSION = int(Tag.sc_interface_version)


class SMSCCore:
    """
    The core of one cluster.

    :param name: the cluster's name (``NA``, ``SMPP0``).
    :param clock: the clock of every timer and timestamp.
    :param config: the whole configuration (accounts, core and session settings).
    :param instances: the instances of this cluster.
    :param scenario: the scenario engine deciding on each message.
    :param events: where events are published.
    :param journal: told of every message, state change and owed delivery
        (a durable store); the default keeps nothing.
    :param ids: where message numbers come from; every core of a process shares one.
    :param bind_slots: the bind quota shared with the other processes of the cluster
        (``cluster_store``); ``None``, the default, keeps the quota in this process
        and every bind decision synchronous.
    :param slot_owner: names this process in ``bind_slots`` (unique per process).
    :param slot_timeout: seconds a bind (or an operation on another process's message)
        waits for the cluster store before ESME_RSYSERR.
    :param cluster_messages: the messages of the cluster's other processes, for
        query_sm, cancel_sm and replace_sm (``cluster_store``); ``None``, the
        default: every message of the cluster is in this process.
    :param throttle: the throttle of the cluster's submits; ``None``, the default, builds
        this process's in-memory :class:`~smsc_sim.core.throttle.Throttles`
        (a ``cluster_store`` gives one shared with the other processes).
    """

    log = Logger()

    def __init__(
        self,
        name: str,
        clock: IReactorTime,
        config: Config,
        instances: Sequence[InstanceSettings],
        scenario: IScenario,
        events: EventBus,
        *,
        journal: IMessageJournal = NO_JOURNAL,
        ids: IMessageNumbers = PROCESS_IDS,
        balances: Balances | None = None,
        bind_slots: IBindSlots | None = None,
        slot_owner: str = "",
        slot_timeout: float = 2.0,
        throttle: IThrottle | None = None,
        cluster_messages: IClusterMessages | None = None,
    ) -> None:
        self.name = name
        self.bind_slots = bind_slots
        self._slot_owner = slot_owner
        self._slot_timeout = slot_timeout
        #: sessions whose bind waits for ``bind_slots``; a session that ends meanwhile leaves it
        self._pending_binds: set[int] = set()
        self.clock = clock
        self.config = config
        self.settings = config.core
        self.instances = {instance.name: instance for instance in instances}
        self.scenario = scenario
        self.events = events
        self.accounts = Accounts(config.accounts)
        #: prices and balances: the process's (shared by every core), or this core's own
        self.balances = balances if balances is not None else Balances(config.accounts, self.settings.balance_status)
        #: the destination networks (TLV 0x1402), by number prefix
        self.networks = Networks(self.settings.networks)
        self.binds = BindRegistry(clock)
        self.bind_guard = BindFailureGuard(config.limits, clock)
        self.timeline = Timeline(clock)
        self.store = MessageStore(
            self.settings.store_max_messages, self.settings.store_final_ttl, clock.seconds, journal=journal
        )
        self.journal = journal
        self.ids = ids
        self.router = Router(
            clock,
            self.timeline,
            self.binds,
            self.settings,
            events,
            self._current_scenario,
            queue_limit=config.session.outbound_queue_limit,
            journal=journal,
        )
        # "deliver" lets parts follow their own plans; the default models the provider
        hold = self.settings.reassembly_incomplete != "deliver"
        self.lifecycle = Lifecycle(
            clock,
            self.timeline,
            self.store,
            self.router,
            events,
            self.accounts.get,
            hold_incomplete=hold,
            journal=journal,
            networks=self.networks if self.settings.network_in_receipt else None,
            vendor_cstring=self.settings.vendor_tlv_strings == "cstring",
        )
        self.reassembler = Reassembler(
            self.timeline,
            self.settings.reassembly_window,
            clock.seconds,
            self.lifecycle.group_complete,
            self.lifecycle.group_incomplete,
        )
        #: distribution lists for submit_multi (dest_flag 2): name -> (ton, npi, address) members
        self.distribution_lists: dict[str, tuple[tuple[int, int, str], ...]] = {}
        #: the in-memory throttle's limiters (windows or token buckets) by scope key
        self.buckets: dict[tuple[Any, ...], Limiter] = {}
        self.counters: Counter[str] = Counter()
        self.submit_statuses: Counter[int] = Counter()
        self.bind_refusals: Counter[int] = Counter()
        self.throttles: IThrottle = throttle if throttle is not None else Throttles(clock, self.buckets)
        self.admission = Admission(clock, self.store, self.lifecycle, journal, events, self.counters)
        self.operations = Operations(
            clock=clock,
            settings=self.settings,
            store=self.store,
            lifecycle=self.lifecycle,
            account=self.accounts.get,
            counters=self.counters,
            remote=cluster_messages,
            remote_timeout=slot_timeout,
        )
        self.submissions = Submissions(
            clock=clock,
            settings=self.settings,
            scenario=scenario,
            ids=ids,
            admission=self.admission,
            lifecycle=self.lifecycle,
            reassembler=self.reassembler,
            operations=self.operations,
            throttles=self.throttles,
            balances=self.balances,
            networks=self.networks,
            distribution_lists=self.distribution_lists,
            counters=self.counters,
            statuses=self.submit_statuses,
        )
        self.originator = Originator(
            cluster=name,
            instances=self.instances,
            clock=clock,
            settings=self.settings,
            ids=ids,
            account=self.accounts.get,
            store=self.store,
            admission=self.admission,
            lifecycle=self.lifecycle,
            router=self.router,
            counters=self.counters,
        )
        submits: dict[int, Handler] = {
            CommandId.submit_sm: self.submissions.submit_sm,
            CommandId.data_sm: self.submissions.data_sm,
            CommandId.submit_multi: self.submissions.submit_multi,
        }
        # the journal may hold the acknowledgement of a new message until the message is durable;
        # query, cancel and replace make no new message (and may answer later: cluster_store)
        self._handlers: dict[int, Callable[[BindEntry, PDU], Reply | Deferred[Reply]]] = {
            command: journal.answering(handler) for command, handler in submits.items()
        }
        self._handlers[CommandId.query_sm] = self.operations.query_sm
        self._handlers[CommandId.cancel_sm] = self.operations.cancel_sm
        self._handlers[CommandId.replace_sm] = self.operations.replace_sm

    # ------------------------------------------------------------------
    # ICore
    # ------------------------------------------------------------------

    def bind(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """
        Decide on a bind: credentials, origin, quota; on success register it.

        With shared ``bind_slots`` the quota is decided by another process
        (Redis), so the answer is a Deferred; without, it is immediate.
        """
        p = pdu.params
        system_id = p.get("system_id", "")
        bind_type = BIND_TYPES[CommandId(pdu.command_id)]
        if self.binds.entry(session.session_id) is not None:
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "session already bound")
        host = peer_host(session.peer)
        if self.bind_guard.locked(host):
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RBINDFAIL, "address locked out after failed binds")
        known = self.accounts.get(system_id)
        if known is not None and not known.smpp_enabled:
            # the provider's accounts are REST-only until it enables SMPP: to an SMPP bind the
            # system_id does not exist, whatever the password
            self.log.info(
                "bind refused for {system_id}: SMPP is not enabled for this account (smpp_enabled: false)",
                system_id=system_id,
            )
            refusal = self._refuse_bind(session, pdu, CommandStatus.ESME_RINVSYSID, "SMPP not enabled for the account")
            return dataclasses.replace(refusal, delay=self.bind_guard.failed(host))
        account, status = self.accounts.check(system_id, p.get("password", ""), session.peer)
        if account is None:
            refusal = self._refuse_bind(session, pdu, status, "credentials or address")
            # a held-back answer slows password guessing down (limits.bind_failure_delay)
            return dataclasses.replace(refusal, delay=self.bind_guard.failed(host))
        if self.bind_slots is not None:
            return self._bind_shared(session, pdu, account, bind_type, host)
        if 0 < self.max_binds(account) <= self.binds.count(system_id):
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "bind quota reached")
        return self._accept_bind(session, pdu, account, bind_type, host)

    def _slot_holder(self, session: ISession) -> str:
        return f"{self._slot_owner}/{session.session_id}"

    def _bind_shared(
        self, session: ISession, pdu: PDU, account: AccountSettings, bind_type: BindType, host: str
    ) -> Deferred[Reply]:
        """The quota decided by the cluster's shared slots: taken, refused, or Redis unreachable."""
        assert self.bind_slots is not None
        slots = self.bind_slots
        session_id = session.session_id
        system_id = account.system_id
        holder = self._slot_holder(session)
        self._pending_binds.add(session_id)
        d = slots.acquire(system_id, holder, self.max_binds(account))
        d.addTimeout(self._slot_timeout, self.clock)

        def decided(taken: bool) -> Reply:
            if session_id not in self._pending_binds:
                # the connection ended while Redis answered: give the slot straight back
                if taken:
                    slots.release(system_id, holder).addErrback(lambda _: None)
                return Reply(None)
            self._pending_binds.discard(session_id)
            if not taken:
                return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "bind quota reached")
            return self._accept_bind(session, pdu, account, bind_type, host)

        def unreachable(failure: Any) -> Reply:
            self._pending_binds.discard(session_id)
            self.log.warn(
                "bind refused for {system_id}: the cluster store did not answer ({error})",
                system_id=system_id,
                error=failure.getErrorMessage() or failure.type.__name__,
            )
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RSYSERR, "cluster store unreachable")

        return d.addCallbacks(decided, unreachable)

    def _accept_bind(
        self, session: ISession, pdu: PDU, account: AccountSettings, bind_type: BindType, host: str
    ) -> Reply:
        """Register a bind whose credentials and quota passed, and build its bind_resp."""
        p = pdu.params
        system_id = account.system_id
        self.bind_guard.succeeded(host)
        interface_version = p.get("interface_version", INTERFACE_VERSION_34)
        now = self.clock.seconds()
        entry = BindEntry(session, account, bind_type, interface_version, session.instance_name, now)
        self.binds.add(entry)
        self.counters["binds"] += 1
        instance = self.instances.get(session.instance_name)
        tlvs: dict[int, bytes] = {}
        if instance is not None:
            smsc_id = instance.system_id or instance.name
            if interface_version >= INTERFACE_VERSION_34:
                tlvs[_SC_INTERFACE_VERSION] = bytes([instance.sc_interface_version & 0xFF])
        else:
            smsc_id = self.name
        response = make_pdu(response_id(pdu.command_id), pdu.sequence_number, tlvs=tlvs, system_id=smsc_id[:15])
        self.events.publish(
            "bind",
            session_id=session.session_id,
            instance=session.instance_name,
            cluster=self.name,
            system_id=system_id,
            bind_type=bind_type.value,
            interface_version=interface_version,
            peer=session.peer,
        )
        on_sent: Callable[[], None] | None = None
        if bind_type.can_receive:
            flush = self.router.flush
            name = account.system_id

            def on_sent() -> None:
                flush(name)

        return Reply(response, on_sent=on_sent)

    def _refuse_bind(self, session: ISession, pdu: PDU, status: int, why: str) -> Reply:
        self.bind_refusals[status] += 1
        self.events.publish(
            "bind_refused",
            session_id=session.session_id,
            instance=session.instance_name,
            cluster=self.name,
            system_id=pdu.params.get("system_id", ""),
            status=status,
            status_name=status_name(status),
            reason=why,
            peer=session.peer,
        )
        return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, status))

    def request(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """
        Decide on submit_sm, submit_multi, data_sm, query_sm, cancel_sm or replace_sm.

        The answer is a Deferred only for an operation on a message of
        another process of the cluster (``cluster_messages``).
        """
        entry = self.binds.entry(session.session_id)
        if entry is None:
            return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, CommandStatus.ESME_RINVBNDSTS))
        handler = self._handlers.get(pdu.command_id)
        if handler is None:
            return Reply(PDU(CommandId.generic_nack, pdu.sequence_number, CommandStatus.ESME_RINVCMDID, {}))
        return handler(entry, pdu)

    def unbound(self, session: ISession) -> None:
        """A clean unbind: the quota slot is free at once."""
        entry = self.binds.remove(session.session_id)
        if entry is not None and self.bind_slots is not None:
            self._slot_call(self.bind_slots.release(entry.account.system_id, self._slot_holder(session)))

    def connection_lost(self, session: ISession, clean: bool) -> None:
        """The connection closed; a drop while bound keeps a ghost bind for ``ghost_bind_hold``."""
        self._pending_binds.discard(session.session_id)
        entry = self.binds.remove(session.session_id)
        if entry is None:
            return
        system_id = entry.account.system_id
        if self.bind_slots is not None:
            holder = self._slot_holder(session)
            if clean:
                self._slot_call(self.bind_slots.release(system_id, holder))
            else:
                self._slot_call(self.bind_slots.hold_ghost(system_id, holder, self.settings.ghost_bind_hold))
        elif not clean:
            self.binds.hold_ghost(system_id, self.settings.ghost_bind_hold)

    def _slot_call(self, d: Deferred[None]) -> None:
        """A release or ghost hold sent to the cluster store; if it fails the lease runs out by itself."""

        def failed(failure: Any) -> None:
            self.log.warn("cluster store: bind slot not updated ({error})", error=failure.getErrorMessage())

        d.addErrback(failed)

    # ------------------------------------------------------------------
    # runtime control
    # ------------------------------------------------------------------

    def _current_scenario(self) -> IScenario:
        return self.scenario

    def set_scenario(self, scenario: IScenario) -> None:
        """Decide with another scenario engine from now on (throttle buckets start afresh)."""
        self.scenario = scenario
        self.submissions.use_scenario(scenario)
        self.throttles.clear()

    def max_binds(self, account: AccountSettings) -> int:
        """The account's bind quota, unless the scenario's ``limits`` override it."""
        limits = self.scenario.limits
        if limits is not None and limits.max_binds is not None:
            return int(limits.max_binds)
        return account.max_binds

    def throughput(self, account: AccountSettings) -> float:
        """The account's messages per second, unless the scenario's ``limits`` override it."""
        return self.throttles.throughput(account, self.scenario)

    def set_instance_available(self, name: str, available: bool) -> None:
        """An instance went out (no deliveries through it) or came back (the pending queue flushes)."""
        self.router.set_available(name, available)

    def hold(self, record: MessageRecord) -> bool:
        """Put a new record in the store (see :meth:`Admission.hold`); whether it is stored."""
        return self.admission.hold(record)

    def expire_overdue(self) -> int:
        """End EXPIRED every pending MT record past its validity; returns how many."""
        return self.admission.expire_overdue()

    def inject_mo(
        self,
        account: str,
        source: str,
        destination: str,
        text: str | None = None,
        data: bytes | None = None,
        data_coding: int | None = None,
        split: str = "udh8",
        instance: str | None = None,
    ) -> list[str]:
        """
        Originate an MO message to a bound receiver of ``account`` (see :meth:`smsc_sim.core.mo.Originator.originate`).

        :returns: the message ids of its deliver_sm parts.
        :raises ValueError: for an unknown account or instance, or text the
            coding cannot carry.
        """
        return self.originator.originate(
            account, source, destination, text=text, data=data, data_coding=data_coding, split=split, instance=instance
        )

    def force_receipt(self, message_id: str, stat: str, err: int | None = None) -> None:
        """
        Set a message's state from a ``stat:`` word and send that receipt now,
        whatever its registered_delivery; a final stat stops its plan.

        :param message_id: as in submit_sm_resp.
        :param stat: DELIVRD, UNDELIV, EXPIRED, DELETED, ACCEPTD, UNKNOWN, REJECTD or ENROUTE.
        :param err: the ``err:`` code; ``None``: the provider's usual one for the stat.
        :raises KeyError: for an unknown message or stat.
        """
        record = self.store.get(message_id)
        if record is None or record.direction != "mt":
            raise KeyError(f"no message {message_id!r} in cluster {self.name}")
        if stat not in STAT_DEFAULT_ERR:
            raise KeyError(f"stat {stat!r} is not one of {', '.join(STAT_DEFAULT_ERR)}")
        self.lifecycle.force(record, stat, STAT_DEFAULT_ERR[stat] if err is None else err)

    # ------------------------------------------------------------------
    # inspection (read-only views)
    # ------------------------------------------------------------------

    def sessions(self) -> list[ISession]:
        """The bound sessions of the cluster, in bind order."""
        return [entry.session for entry in self.binds.entries()]

    def binds_info(self) -> list[dict[str, Any]]:
        """The bound sessions as JSON-ready data."""
        return [
            {
                "session_id": entry.session_id,
                "system_id": entry.account.system_id,
                "bind_type": entry.bind_type.value,
                "instance": entry.instance,
                "interface_version": entry.interface_version,
                "peer": entry.session.peer,
                "bound_at": entry.bound_at,
                "outbound_pending": entry.session.outbound_pending(),
            }
            for entry in self.binds.entries()
        ]

    def message(self, message_id: str) -> MessageRecord | None:
        """The record of a message id (or a submit_multi destination key ``<id>/<n>``)."""
        self.store.sweep()
        return self.store.get(message_id)

    def messages(
        self,
        *,
        account: str | None = None,
        instance: str | None = None,
        source: str | None = None,
        destination: str | None = None,
        state: str | MessageState | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        direction: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[MessageRecord]:
        """
        Records matching every filter given, oldest submit first.

        :param state: a state name (``DELIVERED``) or value; ``pending`` matches every non-final one.
        :param since: submitted at or after this time; ``until``: before it.
        :param text: contained in the text (or the reassembled text).
        :param limit: most records returned (``None``: all); ``offset``: skipped first.
        """
        query = MessageQuery(
            account=account,
            instance=instance,
            source=source,
            destination=destination,
            state=state,
            since=since,
            until=until,
            text=text,
            direction=direction,
            limit=limit,
            offset=offset,
        )
        return select(self.store, query)

    def matching(self, query: MessageQuery) -> Iterator[MessageRecord]:
        """Every record matching the query's filters (not its page), oldest submit first, one at a time."""
        return matching(self.store, query)

    def stats(self) -> dict[str, Any]:
        """Counters of the cluster, JSON-ready."""
        routed = self.router.counters
        receipts = self.lifecycle.counters
        return {
            "cluster": self.name,
            "binds": len(self.binds.entries()),
            "ghost_binds": self.binds.ghost_count(),
            "binds_accepted": self.counters["binds"],
            "binds_refused": {status_name(s): n for s, n in sorted(self.bind_refusals.items())},
            "submits": {status_name(s): n for s, n in sorted(self.submit_statuses.items())},
            "throttled": self.counters["throttled"],
            "not_answered": self.counters["not_answered"],
            "generic_nack": self.counters["generic_nack"],
            "operations_failed": {k: v for k, v in self.counters.items() if k.endswith("_failed")},
            "receipts": {
                "sent": receipts["receipts_sent"],
                "acked": receipts["receipts_acked"],
                "failed": receipts["receipts_failed"] + receipts["receipts_exhausted"],
                "expired": receipts["receipts_expired"],
                "dropped": receipts["receipts_dropped"],
            },
            "mo": {"sent": self.counters["mo"]},
            "deliveries": {
                "attempts": routed["sent"],
                "acked": routed["acked"],
                "failed": routed["failed"],
                "timeouts": routed["unanswered_timeout"],
                "closed": routed["unanswered_closed"],
            },
            "retries": routed["retries"],
            "pending": self.router.pending_depth(),
            "pending_dropped": routed["pending_dropped"],
            "pending_expired": routed["pending_expired"],
            "store_size": len(self.store),
            "store_pending": len(self.store.pending),
            "store_evicted": self.store.evicted,
            "reassembly_open": len(self.reassembler),
            "timeline": len(self.timeline),
        }

    def reset(self) -> None:
        """Forget messages, pending deliveries, timers of messages and counters; binds stay."""
        self.timeline.clear()
        self.store.clear()
        self.router.clear()
        self.reassembler.clear()
        self.throttles.clear()
        self.counters.clear()
        self.submit_statuses.clear()
        self.bind_refusals.clear()
        self.lifecycle.counters.clear()
        self.store.evicted = 0
        self.balances.reset()

    def stop(self) -> None:
        """Cancel every timer (message timeline, ghost binds), so nothing is left on the clock."""
        self.timeline.clear()
        self.reassembler.clear()
        self.binds.stop()
