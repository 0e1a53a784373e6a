"""
The SMSC core of one cluster: the brain behind the sessions.

SMPP1 and SMPP2 of the provider's topology share one :class:`SMSCCore`
(one bind quota, one throttle, one message store, receipts routed to any
bind of the account); SMPP0 has its own.  Sessions ask it what to answer
(:class:`~smsc_sim.contracts.ICore`); it asks the scenario engine for a
verdict on each message; the topology tells it when an instance is out.

The pieces, each built here with only the collaborators it uses:
:mod:`~smsc_sim.core.bind_decisions` (bind, unbind, a lost connection),
:mod:`~smsc_sim.core.inspection` (sessions, messages, stats),
:mod:`~smsc_sim.core.accounts` (credentials),
:mod:`~smsc_sim.core.binds` (quota, ghost binds),
:mod:`~smsc_sim.core.submit` (the submit path, throttling),
:mod:`~smsc_sim.core.operations` (query/cancel/replace),
:mod:`~smsc_sim.core.lifecycle` (receipt plans, expiry),
:mod:`~smsc_sim.core.router` (who gets a receipt or MO, retries, pending
queue), :mod:`~smsc_sim.core.reassembly`, :mod:`~smsc_sim.core.store`, all
timed work on one :class:`~smsc_sim.core.timeline.Timeline`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterator, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import AccountSettings, Config, InstanceSettings
from smsc_sim.contracts import IBindSlots, IScenario, ISession, Reply
from smsc_sim.core.accounts import Accounts
from smsc_sim.core.admission import Admission
from smsc_sim.core.billing import Balances, Networks
from smsc_sim.core.bind_decisions import BindDecisions
from smsc_sim.core.binds import BindEntry, BindRegistry
from smsc_sim.core.contracts import IThrottle
from smsc_sim.core.ids import PROCESS_IDS, IMessageNumbers
from smsc_sim.core.inspection import Inspection
from smsc_sim.core.journal import NO_JOURNAL, Handler, IMessageJournal
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.mo import Originator
from smsc_sim.core.operations import Operations
from smsc_sim.core.reassembly import Reassembler
from smsc_sim.core.remote import IClusterMessages
from smsc_sim.core.router import Router
from smsc_sim.core.store import MessageQuery, MessageRecord, MessageStore
from smsc_sim.core.submit import Submissions
from smsc_sim.core.throttle import Limiter, Throttles
from smsc_sim.core.timeline import Timeline
from smsc_sim.events import EventBus
from smsc_sim.limits import BindFailureGuard
from smsc_sim.smpp.constants import CommandId, CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU, make_pdu
from smsc_sim.smpp.receipt import STAT_DEFAULT_ERR


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
        self.bind_decisions = BindDecisions(
            cluster=name,
            clock=clock,
            instances=self.instances,
            scenario=self._current_scenario,
            accounts=self.accounts,
            binds=self.binds,
            guard=self.bind_guard,
            events=events,
            flush=self.router.flush,
            counters=self.counters,
            refusals=self.bind_refusals,
            ghost_bind_hold=self.settings.ghost_bind_hold,
            slots=bind_slots,
            slot_owner=slot_owner,
            slot_timeout=slot_timeout,
        )
        self.inspection = Inspection(
            cluster=name,
            binds=self.binds,
            store=self.store,
            router=self.router,
            lifecycle=self.lifecycle,
            reassembler=self.reassembler,
            timeline=self.timeline,
            counters=self.counters,
            submit_statuses=self.submit_statuses,
            bind_refusals=self.bind_refusals,
        )
        #: records matching every filter given, oldest submit first (:meth:`Inspection.messages`, its
        #: keyword filters and page as they are, not written out a second time here)
        self.messages = self.inspection.messages

    # ------------------------------------------------------------------
    # ICore
    # ------------------------------------------------------------------

    def bind(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """Decide on a bind (see :meth:`BindDecisions.bind`)."""
        return self.bind_decisions.bind(session, pdu)

    def unbound(self, session: ISession) -> None:
        """A clean unbind: the quota slot is free at once."""
        self.bind_decisions.unbound(session)

    def connection_lost(self, session: ISession, clean: bool) -> None:
        """The connection closed; a drop while bound keeps a ghost bind for ``ghost_bind_hold``."""
        self.bind_decisions.connection_lost(session, clean)

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


    def throughput(self, account: AccountSettings) -> float:
        """The account's messages per second, unless the scenario's ``limits`` override it."""
        return self.throttles.throughput(account, self.scenario)

    def max_binds(self, account: AccountSettings) -> int:
        """The account's bind quota, unless the scenario's ``limits`` override it."""
        return self.bind_decisions.max_binds(account)

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
    # read-only views (see :class:`~smsc_sim.core.inspection.Inspection`)
    # ------------------------------------------------------------------

    def sessions(self) -> list[ISession]:
        """The bound sessions of the cluster, in bind order."""
        return self.inspection.sessions()

    def binds_info(self) -> list[dict[str, Any]]:
        """The bound sessions as JSON-ready data."""
        return self.inspection.binds_info()

    def message(self, message_id: str) -> MessageRecord | None:
        """The record of a message id (or a submit_multi destination key ``<id>/<n>``)."""
        return self.inspection.message(message_id)

    def matching(self, query: MessageQuery) -> Iterator[MessageRecord]:
        """Every record matching the query's filters (not its page), oldest submit first, one at a time."""
        return self.inspection.matching(query)

    def stats(self) -> dict[str, Any]:
        """Counters of the cluster, JSON-ready."""
        return self.inspection.stats()

    # ------------------------------------------------------------------
    # reset and stop
    # ------------------------------------------------------------------

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
