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
from typing import Any, Callable

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from smsc_sim.config import Config
from smsc_sim.contracts import IScenario
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.events import EventBus
from smsc_sim.limits import ConnectionLimiter, Refused
from smsc_sim.session import SMPPSession
from smsc_sim.topology import InstanceRuntime, Listener, OutageError

ScenarioLoader = Callable[[str, IReactorTime, "int | None"], IScenario]


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
        self._scenario_loader = scenario_loader or _default_scenario_loader
        # the configured seed wins, then the scenario file's own, then a fresh one (logged at start)
        self.scenario = self._scenario_loader(config.scenario, reactor, config.seed)
        self.seed: int = getattr(self.scenario, "seed", None) or config.seed or 0
        self.cores: dict[str, SMSCCore] = {}
        self.instances: dict[str, InstanceRuntime] = {}
        for cluster, members in config.clusters().items():
            core = SMSCCore(cluster, reactor, config, members, self.scenario, self.events)
            self.cores[cluster] = core
            for settings in members:
                instance = InstanceRuntime(settings, core, reactor, self.events)
                self.instances[settings.name] = instance
                factory = SMPPServerFactory(self, instance)
                for description in settings.endpoints:
                    listener = Listener(reactor, description, factory)
                    listener.setName(f"{settings.name} {description}")
                    listener.setServiceParent(self)
                    instance.listeners.append(listener)

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
        super().startService()
        start = getattr(self.scenario, "start", None)
        if start is not None:
            start(self)

    def stopService(self) -> Deferred[None]:
        """
        Stop gracefully: unbind every session and wait for the answers (each
        bounded by the response timer), then close the listeners.
        """
        stop = getattr(self.scenario, "stop", None)
        if stop is not None:
            stop()
        for instance in self.instances.values():
            instance.stop()
        unbinds = [
            session.unbind() for instance in self.instances.values() for session in list(instance.sessions.values())
        ]

        def then_stop(_: object) -> Deferred[None]:
            for core in self.cores.values():
                core.stop()
            result = super(Simulator, self).stopService()
            return result if isinstance(result, Deferred) else succeed(None)

        return DeferredList(unbinds, consumeErrors=True).addCallback(then_stop).addCallback(lambda _: None)

    # ------------------------------------------------------------------
    # what tests and the API drive
    # ------------------------------------------------------------------

    def instance(self, name: str) -> InstanceRuntime:
        """The instance of that name, or :class:`OutageError`."""
        try:
            return self.instances[name]
        except KeyError:
            raise OutageError(f"no instance named {name!r}; instances are {', '.join(self.instances)}") from None

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
        """Start an outage on an instance (see :mod:`smsc_sim.topology`)."""
        return self.instance(instance).start_outage(mode, duration, **options)

    def end_outage(self, instance: str) -> Deferred[None]:
        """End the outage of an instance."""
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

    def set_scenario(self, scenario: IScenario) -> None:
        """Switch every core to another scenario engine, stopping the old one's timeline."""
        stop = getattr(self.scenario, "stop", None)
        if stop is not None:
            stop()
        self.scenario = scenario
        for core in self.cores.values():
            core.set_scenario(scenario)
        start = getattr(scenario, "start", None)
        if start is not None and self.running:
            start(self)

    def load_scenario(self, name_or_path: str) -> IScenario:
        """Load a scenario by name or path (errors raise before anything changes) and switch to it."""
        scenario = self._scenario_loader(name_or_path, self.clock, self.config.seed)
        self.set_scenario(scenario)
        return scenario

    def reset(self) -> None:
        """Forget messages, pending deliveries and counters; sessions stay bound."""
        for core in self.cores.values():
            core.reset()

    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listens now: ``{"SMPP1": [("127.0.0.1", 2775)]}``."""
        return {name: instance.addresses() for name, instance in self.instances.items()}

    def when_listening(self) -> Deferred[None]:
        """Fires once every listener has tried to open (for ephemeral ports)."""
        waits = [listener.listen() for instance in self.instances.values() for listener in instance.listeners]
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)


def _default_scenario_loader(name_or_path: str, clock: IReactorTime, seed: int | None) -> IScenario:
    """Load a scenario with the scenario engine (raises ScenarioError with file, line and key)."""
    from smsc_sim.scenario.runtime_loader import load_scenario_runtime

    return load_scenario_runtime(name_or_path, clock, seed)
