"""
The simulator: one engine behind the twistd plugin, the test fixtures and
the container.

A :class:`Simulator` is a ``MultiService`` built from a
:class:`~smsc_sim.config.Config` and a reactor.  It makes one core per
cluster, one :class:`~smsc_sim.topology.InstanceRuntime` per instance with a
listener per endpoint, the scenario runtime, and (when configured) the HTTP
control API.  Everything a test or the API may want to drive is a method
here: outages, MO injection, scenario switching, reset.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger

from smsc_sim.config import Config
from smsc_sim.conformance import Judge
from smsc_sim.conformance.wiring import landscape_for, shutdown_report, thresholds_for
from smsc_sim.contracts import IScenarioRuntime, MessageFacts, ReceiptPlan, ThrottleSettings
from smsc_sim.core.billing import Balances
from smsc_sim.core.ids import PROCESS_IDS
from smsc_sim.core.journal import NO_JOURNAL, BothJournals, IMessageJournal
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.durable.cluster import ClusterJournal
from smsc_sim.durable.restore import restore_clusters
from smsc_sim.durable.sqlite import open_journal
from smsc_sim.events import EventBus
from smsc_sim.gc_freezer import GCFreezer
from smsc_sim.limits import ConnectionLimiter, Refused
from smsc_sim.handsets import HandsetAvailability
from smsc_sim.outbind import Outbinder, endpoint_connect
from smsc_sim.scenario_loading import ScenarioLoader, allowed_scenario_dirs, default_scenario_loader
from smsc_sim.session import SMPPSession
from smsc_sim.topology import InstanceRuntime, Listener, OutageError
from smsc_sim.trace.wiring import Trace, start_trace

if TYPE_CHECKING:
    from smsc_sim.cluster.control import ClusterControl
    from smsc_sim.cluster.redis.connect import RedisClusterStore


class SMPPServerFactory(Factory):
    """Builds an :class:`SMPPSession` for each connection to one instance."""

    def __init__(self, simulator: Simulator, instance: InstanceRuntime) -> None:
        self.simulator = simulator
        self.instance = instance

    def buildProtocol(self, addr: Any) -> Protocol:
        """A new session on this factory's instance, or a refusal past the connection limits."""
        simulator = self.simulator
        if not simulator.limiter.admit(addr):
            return Refused()
        session = SMPPSession(
            core=self.instance.core,
            instance=self.instance,
            settings=simulator.config.session,
            clock=simulator.clock,
            events=simulator.events,
            session_id=next(simulator.session_ids),
            trace=simulator.config.trace,
        )
        session.factory = self
        simulator.limiter.release_on_close(session, addr)
        return session


class Simulator(MultiService):
    """
    The whole simulator for one configuration.

    :param config: the validated configuration.
    :param reactor: the reactor to listen with and the clock of every timer
        (a ``MemoryReactorClock`` in unit tests).
    :param scenario_loader: turns ``config.scenario`` into a scenario engine;
        the default is the shipped scenario engine.
    """

    log = Logger()

    def __init__(self, config: Config, reactor: Any, scenario_loader: ScenarioLoader | None = None) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.events = EventBus(reactor)
        self.session_ids = itertools.count(1)
        self.limiter = ConnectionLimiter(config.limits, reactor)
        self._scenario_loader = scenario_loader or default_scenario_loader
        # the configured seed wins, then the scenario file's own, then a fresh one (logged at start)
        self.scenario = self._scenario_loader(config.scenario, reactor, config.seed)
        #: what a reload (SIGHUP, smsc_sim.signals) reads again: the scenario's name or path; None when
        #: the active scenario came as an object (the API's YAML text), with no file behind it
        self.scenario_source: str | None = config.scenario
        self.seed: int = self.scenario.seed or config.seed or 0
        #: where the API may load scenario files from besides the shipped set (fixed at start)
        self.scenario_dirs: tuple[str, ...] = allowed_scenario_dirs(config)
        # None for "memory"; StoreError (a clear message) for a store that cannot be used
        self.journal = open_journal(config.store, reactor, config.core.store_final_ttl)
        #: each cluster's view of the journal, by cluster (none without a durable store)
        self._cluster_journals: dict[str, ClusterJournal] = {}
        self._restored = False
        self.cores: dict[str, SMSCCore] = {}
        self.instances: dict[str, InstanceRuntime] = {}
        #: the GC freeze of the twistd form (see GCFreezer); None: off, as in tests and fixtures
        self.gc_freezer: GCFreezer | None = None
        #: prices and balances of the billed accounts: one per process, as an account's balance
        #: is the account's whichever cluster it submits to
        self.balances = Balances(config.accounts, config.core.balance_status)
        #: the stores of the state shared with the other processes of a cluster (``cluster_store``),
        #: one connection per URL; empty: every cluster is in memory
        self.cluster_stores: dict[str, RedisClusterStore] = {}
        #: cluster-wide control (outages, scenario, reset); None when every cluster is in memory
        self.control: ClusterControl | None = None
        running = set(config.run_instances)
        for cluster in config.clusters():
            # every cluster, even one with no instance here: this process's API controls and shows it
            self._share_control(cluster)
        for cluster, members in config.clusters().items():
            if running and not running.intersection(member.name for member in members):
                continue  # no instance of this cluster runs here (--instances)
            store = self.store_for(cluster)
            journal: IMessageJournal = NO_JOURNAL
            if self.journal is not None:
                journal = self._cluster_journals[cluster] = ClusterJournal(
                    self.journal, cluster, {member.name: member.latency for member in members}
                )
            messages = None
            if store is not None:
                messages = store.messages_for(cluster, config.core.store_final_ttl)
                journal = messages.journal if journal is NO_JOURNAL else BothJournals(journal, messages.journal)
            core = SMSCCore(
                cluster,
                reactor,
                config,
                members,
                self.scenario,
                self.events,
                journal=journal,
                ids=messages.ids if messages is not None else PROCESS_IDS,
                balances=self.balances,
                bind_slots=store.slots_for(cluster) if store is not None else None,
                slot_owner=store.owner if store is not None else "",
                throttle=(
                    store.throttle_for(cluster, [member.name for member in members], running)
                    if store is not None
                    else None
                ),
                cluster_messages=messages.remote if messages is not None else None,
            )
            if messages is not None:
                messages.serve(core.operations, core.store.values)
            if self.journal is not None:
                self._cluster_journals[cluster].attach_store(core.store)
            if store is not None:
                store.deliveries_for(cluster).attach(core.router, core.lifecycle)
            self.cores[cluster] = core
            for settings in members:
                if running and settings.name not in running:
                    continue
                instance = InstanceRuntime(settings, core, reactor, self.events)
                self.instances[settings.name] = instance
                factory = SMPPServerFactory(self, instance)
                for description in settings.endpoints:
                    listener = Listener(reactor, description, factory)
                    listener.setName(f"{settings.name} {description}")
                    listener.setServiceParent(self)
                    instance.listeners.append(listener)
        self._apply_window(self.scenario)
        #: the conformance judge of the ESMEs under test: listens to every event, changes nothing
        self.judge = Judge(reactor, landscape_for(config, self.scenario), thresholds_for(config, self.scenario))
        if config.conformance_judge:
            self.judge.subscribe(self.events)
        #: the pcap trace (``pcap``, ``pcap_ring``): None when the config asks for none
        self.trace: Trace | None = start_trace(config, self.events)
        #: messages held for unavailable handsets (scenario ``absent``), and their alert_notification
        self.handsets = HandsetAvailability(reactor, self.events)
        #: the sessions the SMSC opens itself (accounts with ``outbind``)
        self.outbinder = Outbinder(
            reactor,
            config.accounts,
            self.events,
            endpoint_connect(reactor),
            self._outbind_session,
            lambda instance, account: self.instance(instance).core.router.waiting(account) > 0,
            lambda instance, account: any(
                entry.bind_type.can_receive for entry in self.instance(instance).core.binds.of_account(account)
            ),
            next(iter(self.instances)),
        )

    def store_for(self, cluster: str) -> RedisClusterStore | None:
        """The Redis store of a cluster (one per URL, made once); None when the cluster is in memory."""
        url = self.config.store_of(cluster)
        if url == "memory":
            return None
        store = self.cluster_stores.get(url)
        if store is None:
            # imported only here: the in-memory path never loads the Redis client
            from smsc_sim.cluster.redis.connect import RedisClusterStore

            store = self.cluster_stores[url] = RedisClusterStore(url, self.reactor)
        return store

    def _share_control(self, cluster: str) -> None:
        """Share control and views of ``cluster`` with its other processes (a Redis cluster only)."""
        store = self.store_for(cluster)
        if store is None:
            return
        from smsc_sim.cluster.control import ClusterControl
        from smsc_sim.cluster.snapshot import cluster_snapshot

        if self.control is None:
            self.control = ClusterControl(self)
        control = self.control
        control.add(store.control_for(cluster, control.apply, lambda: control.resync(cluster)))
        store.snapshots_for(cluster, lambda: cluster_snapshot(self, cluster))

    # ------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------

    def startService(self) -> None:
        """Open every listener and start the scenario's timeline."""
        self.log.info(
            "smsc-sim starting: scenario {scenario}, seed {seed}, instances {instances}",
            scenario=self.config.scenario,
            seed=self.seed,
            instances=", ".join(f"{i.name}={'/'.join(i.settings.endpoints)}" for i in self.instances.values()),
        )
        if self.journal is not None and not self._restored:
            self._restore()  # before any listener opens
        super().startService()
        if self.gc_freezer is not None:
            self.gc_freezer.start()
        self.scenario.start(self)
        self.outbinder.start()
        for store in self.cluster_stores.values():
            store.start()

    def stopService(self) -> Deferred[None]:
        """
        Stop gracefully: unbind every session and wait for the answers (each
        bounded by the response timer), then close the listeners.
        """
        self.scenario.stop()
        self.outbinder.stop()
        self.handsets.clear()
        if self.gc_freezer is not None:
            self.gc_freezer.stop()
        for instance in self.instances.values():
            instance.stop()
        unbinds = [
            session.unbind() for instance in self.instances.values() for session in list(instance.sessions.values())
        ]

        def then_stop(_: object) -> Deferred[None]:
            shutdown_report(self.judge, self.config.conformance_report, self.config.conformance_judge)
            for core in self.cores.values():
                core.stop()
            if self.journal is not None:
                self.journal.close()  # commit what waits
            for store in self.cluster_stores.values():
                store.stop()
            result = super(Simulator, self).stopService()
            return result if isinstance(result, Deferred) else succeed(None)

        stopping = DeferredList(unbinds, consumeErrors=True).addCallback(then_stop)
        trace = self.trace
        if trace is not None:
            # a turn later: the connections that closed meanwhile have published their close
            stopping.addCallback(lambda _: deferLater(self.clock, 0, trace.stop))
        return stopping.addCallback(lambda _: None)

    def _restore(self) -> None:
        """Put back the messages and owed deliveries of the durable store (``--store sqlite:PATH``)."""
        assert self.journal is not None
        self._restored = True
        restore_clusters(self.journal, self._cluster_journals, self.cores.values(), self.log)

    def freeze_gc(self, interval: float = 0.5, min_growth: int = 500) -> GCFreezer:
        """
        Keep the cyclic garbage collector off the message store from now on
        (see :class:`GCFreezer`).  Process-wide, so only the twistd form
        (``tap.makeService``) calls it; tests and fixtures leave it off.
        """
        self.gc_freezer = GCFreezer(self.clock, self.records_held, interval, min_growth)
        if self.running:
            self.gc_freezer.start()
        return self.gc_freezer

    def records_held(self) -> tuple[int, int]:
        """Records in the stores now, and records the stores dropped since their last reset."""
        stores = [core.store for core in self.cores.values()]
        return sum(len(store) for store in stores), sum(store.evicted for store in stores)

    # ------------------------------------------------------------------
    # what tests and the API drive
    # ------------------------------------------------------------------

    def instance(self, name: str) -> InstanceRuntime:
        """The instance of that name, or :class:`OutageError`."""
        try:
            return self.instances[name]
        except KeyError:
            raise OutageError(f"no instance named {name!r}; instances are {', '.join(self.instances)}") from None

    def _outbind_session(self, instance: str) -> SMPPSession:
        """A new SMSC-side session on ``instance`` for a connection the SMSC opened (outbind)."""
        runtime = self.instance(instance)
        return SMPPSession(
            core=runtime.core,
            instance=runtime,
            settings=self.config.session,
            clock=self.clock,
            events=self.events,
            session_id=next(self.session_ids),
            trace=self.config.trace,
        )

    def hold_message(self, facts: MessageFacts, message_id: str, hold: float, plan: ReceiptPlan) -> None:
        """
        The scenario held a message just accepted (``absent``): its handset is
        back after ``hold`` seconds, or sooner through the API.
        """
        core = self.instance(facts.instance).core
        self.handsets.hold(core, message_id, hold, plan, facts.dpf_requested)

    def core_for_account(self, system_id: str, instance: str | None = None) -> SMSCCore:
        """
        The core that serves ``instance``; without one, the first cluster where
        the account has a receiver bound, else the first cluster (where the
        message then waits for a bind).
        """
        if instance is not None:
            return self.instance(instance).core
        for core in self.cores.values():
            for session in core.sessions():
                if session.system_id == system_id and session.bind_type is not None and session.bind_type.can_receive:
                    return core
        return next(iter(self.cores.values()))

    def start_outage(self, instance: str, mode: str, duration: float | None = None, **options: Any) -> Deferred[None]:
        """
        Start an outage on an instance (see :mod:`smsc_sim.topology`).

        An instance of a shared cluster that runs in another process is left to
        that process, which runs the same scenario timeline (this is what the
        scenario calls).
        """
        if self.control is not None and self.control.runs_elsewhere(instance):
            return succeed(None)
        return self.instance(instance).start_outage(mode, duration, **options)

    def end_outage(self, instance: str) -> Deferred[None]:
        """End the outage of an instance (one run by another process: left to it)."""
        if self.control is not None and self.control.runs_elsewhere(instance):
            return succeed(None)
        return self.instance(instance).end_outage()

    def inject_mo(
        self,
        account: str,
        source: str,
        destination: str,
        text: str | None = None,
        data_coding: int | None = None,
        split: str = "udh8",
        instance: str | None = None,
        data: bytes | None = None,
    ) -> list[str]:
        """Originate an MO message to a bound receiver of ``account``."""
        core = self.core_for_account(account, instance)
        return core.inject_mo(
            account, source, destination, text=text, data=data, data_coding=data_coding, split=split, instance=instance
        )

    def _apply_window(self, scenario: IScenarioRuntime) -> None:
        """Give every instance its windows: the config's, or the scenario's ``window`` where it sets them."""
        size, status = self.config.session.inbound_window, self.config.session.window_status
        outbound: int | None = None
        window = scenario.window
        if window is not None:
            size = window.size if window.size is not None else size
            status = window.status if window.status is not None else status
            outbound = window.outbound
        for instance in self.instances.values():
            instance.window = (size, status)
            instance.outbound_window = outbound

    def set_scenario(self, scenario: IScenarioRuntime) -> None:
        """Switch every core to another scenario engine, stopping the old one's timeline."""
        self.scenario.stop()
        self.scenario = scenario
        self._apply_window(scenario)
        self.judge.set_thresholds(thresholds_for(self.config, scenario))
        self.judge.set_landscape(landscape_for(self.config, scenario))
        self.scenario_source = None  # no file behind a scenario given as an object: a reload keeps it
        for core in self.cores.values():
            core.set_scenario(scenario)
        if self.running:
            scenario.start(self)

    def load_scenario(self, name_or_path: str) -> IScenarioRuntime:
        """Load a scenario by name or path (errors raise before anything changes) and switch to it."""
        scenario = self._scenario_loader(name_or_path, self.clock, self.config.seed)
        self.set_scenario(scenario)
        self.scenario_source = name_or_path  # what a reload (SIGHUP) reads again
        return scenario

    def reset(self) -> None:
        """Forget messages, pending deliveries, counters, findings and the trace ring; sessions stay bound."""
        for core in self.cores.values():
            core.reset()
        self.handsets.clear()
        self.judge.reset()
        if self.trace is not None:
            self.trace.reset()

    def set_throttle(self, settings: ThrottleSettings | None) -> None:
        """The scenario's timeline changed the throttle: the judge measures against the new rate."""
        self.judge.set_landscape(landscape_for(self.config, self.scenario))

    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listens now: ``{"SMPP1": [("127.0.0.1", 2775)]}``."""
        return {name: instance.addresses() for name, instance in self.instances.items()}

    def when_listening(self) -> Deferred[None]:
        """Fires once every listener has tried to open (for ephemeral ports)."""
        waits = [listener.listen() for instance in self.instances.values() for listener in instance.listeners]
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)
