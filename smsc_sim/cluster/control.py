"""
Control that reaches every process of a cluster: outages, scenario switches, resets.

The API applies a control action to its own process first, then hands it
here, which publishes it on each cluster's control channel (Redis, see
:mod:`smsc_sim.cluster.redis.control`).  Every other process applies what it
hears: an outage of an instance it runs, a scenario switch, a reset.  What
stays in force (the scenario, the outages) is recorded too, and read at
start and after each reconnection, so a process that starts late or was
away takes the cluster's state.

Scenario-driven outages are not published: every process runs the same
scenario (a switch is published), and each applies the timeline's outages to
the instances it runs.

Nothing here imports Redis; the in-memory path never makes a ClusterControl.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

if TYPE_CHECKING:
    from smsc_sim.config import Config
    from smsc_sim.contracts import IScenarioRuntime
    from smsc_sim.topology import InstanceRuntime

#: control messages remembered to ignore one heard twice (a process on two clusters' channels)
REMEMBERED = 256
#: seconds the API waits for Redis to take a control message before answering without it
PUBLISH_WITHIN = 2.0
#: the outage options a control message may carry
OUTAGE_OPTIONS = ("status", "latency")


class IControlChannel(Protocol):
    """One cluster's control channel and the state in force (:class:`~smsc_sim.cluster.redis.control.RedisControl`)."""

    cluster: str

    def publish(self, message: dict[str, Any], state: dict[str, Any | None] | None = None) -> Deferred[bool]:
        """Record ``state`` and publish ``message`` to the cluster's other processes; whether it was."""

    def state(self) -> Deferred[dict[str, Any]]:
        """The state in force."""

    def clear_shared(self, keep_state: Callable[[str], bool]) -> Deferred[int]:
        """Delete the cluster's shared keys (a reset)."""


class IControlled(Protocol):
    """What the control acts on: the :class:`~smsc_sim.simulator.Simulator`."""

    config: Config
    instances: dict[str, InstanceRuntime]
    clock: IReactorTime
    seed: int
    scenario_dirs: tuple[str, ...]

    def load_scenario(self, name_or_path: str) -> IScenarioRuntime:
        """Load a scenario file and switch to it."""

    def set_scenario(self, scenario: IScenarioRuntime) -> None:
        """Switch to a scenario engine."""

    def reset(self) -> None:
        """Forget messages, pending deliveries and counters."""


def switch_scenario(simulator: IControlled, spec: dict[str, Any]) -> None:
    """
    Switch the simulator's scenario as ``spec`` says: ``{"name": ...}`` (found in
    its allowed directories), ``{"yaml": ...}`` or ``{"configured": true}``.

    :raises ValueError: (``ScenarioError`` among them) when it cannot; nothing changed then.
    """
    if spec.get("configured"):
        simulator.load_scenario(simulator.config.scenario)
    elif isinstance(spec.get("name"), str):
        from smsc_sim.scenario.loader import find_scenario

        simulator.load_scenario(str(find_scenario(spec["name"], simulator.scenario_dirs)))
    elif isinstance(spec.get("yaml"), str):
        from smsc_sim.scenario.engine import ScenarioRuntime
        from smsc_sim.scenario.loader import parse_scenario

        parsed = parse_scenario(spec["yaml"], "<request body>", name="request")
        simulator.set_scenario(ScenarioRuntime(parsed, simulator.clock, simulator.seed))
    else:
        raise ValueError("a scenario switch names a scenario ('name'), gives its text ('yaml') or the configured one")


class ClusterControl:
    """
    The cluster-wide side of a simulator's control.

    :param simulator: what the control messages heard are applied to.
    """

    log = Logger()

    def __init__(self, simulator: IControlled) -> None:
        self.simulator = simulator
        self.channels: dict[str, IControlChannel] = {}
        self._ids = itertools.count(1)
        self._heard: deque[str] = deque(maxlen=REMEMBERED)
        #: the scenario switch last applied from the shared state (so a reconnection does not restart it)
        self._scenario_in_force: dict[str, Any] | None = None
        #: what else forgets its state at a reset another process asked for (the API's submit log)
        self.reset_hooks: list[Callable[[], None]] = []

    def add(self, channel: IControlChannel) -> None:
        """Share control with the cluster of ``channel``."""
        self.channels[channel.cluster] = channel

    # -- what the API hands over after applying it here --------------------------------

    def cluster_of(self, instance: str) -> str | None:
        """The cluster of a configured instance whose control is shared; None otherwise."""
        for settings in self.simulator.config.instances:
            if settings.name == instance:
                return settings.cluster if settings.cluster in self.channels else None
        return None

    def runs_elsewhere(self, instance: str) -> bool:
        """Whether ``instance`` is configured, shares its cluster's control and runs in another process."""
        return instance not in self.simulator.instances and self.cluster_of(instance) is not None

    def _message(self, kind: str, **data: Any) -> dict[str, Any]:
        return dict(data, kind=kind, id=str(next(self._ids)))

    def outage(self, instance: str, mode: str, duration: float | None, options: dict[str, Any]) -> Deferred[bool]:
        """Tell the cluster that ``instance`` has an outage now; whether Redis took it in time."""
        cluster = self.cluster_of(instance)
        if cluster is None:
            return _done(True)
        options = {key: value for key, value in options.items() if key in OUTAGE_OPTIONS}
        until = self.simulator.clock.seconds() + duration if duration is not None else None
        record = {"mode": mode, "options": options, "until": until}
        message = self._message("outage", instance=instance, mode=mode, duration=duration, options=options)
        return self._bounded(self.channels[cluster].publish(message, {f"outage:{instance}": record}))

    def end_outage(self, instance: str) -> Deferred[bool]:
        """Tell the cluster that the outage of ``instance`` ended; whether Redis took it in time."""
        cluster = self.cluster_of(instance)
        if cluster is None:
            return _done(True)
        message = self._message("end_outage", instance=instance)
        return self._bounded(self.channels[cluster].publish(message, {f"outage:{instance}": None}))

    def scenario(self, spec: dict[str, Any]) -> Deferred[bool]:
        """Tell every cluster of this process that the scenario is now ``spec``; whether Redis took it in time."""
        self._scenario_in_force = spec
        message = self._message("scenario", spec=spec)
        state = {"scenario": None if spec.get("configured") else spec}
        return self._bounded(_all(channel.publish(message, state) for channel in self.channels.values()))

    def reset(self, flags: dict[str, bool]) -> Deferred[bool]:
        """Tell every cluster to reset as ``flags`` say, and delete their shared keys; whether Redis took it in time."""
        if flags.get("scenario"):
            self._scenario_in_force = None
        message = self._message("reset", flags=flags)

        def keep(field: str) -> bool:
            if field == "scenario":
                return not flags.get("scenario")
            return not (field.startswith("outage:") and flags.get("outages"))

        def publish(cleared: object, channel: IControlChannel) -> Deferred[bool]:
            return channel.publish(message)

        waits = []
        for channel in self.channels.values():
            cleared: Deferred[Any] = channel.clear_shared(keep)
            cleared.addErrback(self._not_cleared, channel.cluster)
            waits.append(cleared.addCallback(publish, channel))
        return self._bounded(_all(waits))

    def _bounded(self, published: Deferred[bool]) -> Deferred[bool]:
        """
        ``published``, or False after :data:`PUBLISH_WITHIN` seconds: commands wait
        for a Redis that is down, and an API call must not wait with them.
        """
        answer: Deferred[bool] = Deferred()

        def late() -> None:
            if not answer.called:
                self.log.warn("control: the cluster store did not take it within {seconds} s; not shared",
                              seconds=PUBLISH_WITHIN)  # fmt: skip
                answer.callback(False)

        timer = self.simulator.clock.callLater(PUBLISH_WITHIN, late)

        def settle(result: object) -> None:
            if timer.active():
                timer.cancel()
            if not answer.called:
                answer.callback(result is True)

        published.addBoth(settle)
        return answer

    def _not_cleared(self, failure: Any, cluster: str) -> None:
        self.log.warn("cluster {cluster}: shared keys not cleared: {error}", cluster=cluster,
                      error=failure.getErrorMessage())  # fmt: skip

    # -- what the channels deliver ---------------------------------------------------------

    def apply(self, message: dict[str, Any]) -> None:
        """Apply a control message another process published (each once, whatever the channel)."""
        key = f"{message.get('origin')}/{message.get('id')}"
        if key in self._heard:
            return
        self._heard.append(key)
        kind = message["kind"]
        try:
            if kind == "outage":
                self._outage(message.get("instance"), message.get("mode"), message.get("duration"),
                             message.get("options"))  # fmt: skip
            elif kind == "end_outage":
                self._end_outage(message.get("instance"))
            elif kind == "scenario" and isinstance(message.get("spec"), dict):
                self._scenario(message["spec"])
            elif kind == "reset" and isinstance(message.get("flags"), dict):
                self._reset(message["flags"])
            else:
                self.log.warn("control: unknown message {kind!r} from {origin}, ignored", kind=kind,
                              origin=message.get("origin"))  # fmt: skip
        except (ValueError, TypeError) as e:
            # one line, never a traceback: the other process already answered its caller
            self.log.warn("control: {kind} from {origin} not applied: {error}", kind=kind,
                          origin=message.get("origin"), error=str(e).splitlines()[0] if str(e) else repr(e))  # fmt: skip

    def _outage(self, instance: Any, mode: Any, duration: Any, options: Any) -> None:
        runtime = self.simulator.instances.get(instance) if isinstance(instance, str) else None
        if runtime is None:
            return  # not run here: the process that runs it applies it
        kwargs = {k: v for k, v in (options or {}).items() if k in OUTAGE_OPTIONS}
        self.log.info("control: outage {mode} of {instance} from another process", mode=mode, instance=instance)
        runtime.start_outage(mode, duration if isinstance(duration, (int, float)) else None, **kwargs)

    def _end_outage(self, instance: Any) -> None:
        runtime = self.simulator.instances.get(instance) if isinstance(instance, str) else None
        if runtime is not None:
            self.log.info("control: end of the outage of {instance} from another process", instance=instance)
            runtime.end_outage()

    def _scenario(self, spec: dict[str, Any]) -> None:
        switch_scenario(self.simulator, spec)
        self._scenario_in_force = spec
        self.log.info("control: scenario switched by another process")

    def _reset(self, flags: dict[str, Any]) -> None:
        simulator = self.simulator
        if flags.get("sessions"):
            for instance in simulator.instances.values():
                for session in list(instance.sessions.values()):
                    session.abort()
        if flags.get("outages"):
            for instance in simulator.instances.values():
                instance.end_outage()
        if flags.get("scenario"):
            self._scenario_in_force = None
            simulator.load_scenario(simulator.config.scenario)
        simulator.reset()
        for hook in self.reset_hooks:
            hook()
        self.log.info("control: reset by another process")

    # -- the state in force, at start and after a reconnection -----------------------------

    def resync(self, cluster: str) -> Deferred[None]:
        """Read the cluster's state in force and apply what differs here."""
        channel = self.channels.get(cluster)
        if channel is None:
            return succeed(None)
        d = channel.state().addCallback(self._sync)
        d.addErrback(lambda f: self.log.warn("cluster {cluster}: control state not read: {error}", cluster=cluster,
                                             error=f.getErrorMessage()))  # fmt: skip
        return d

    def _sync(self, state: dict[str, Any]) -> None:
        now = self.simulator.clock.seconds()
        scenario = state.get("scenario")
        if isinstance(scenario, dict) and scenario != self._scenario_in_force:
            try:
                self._scenario(scenario)
            except ValueError as e:
                self.log.warn("control: the cluster's scenario not applied: {error}", error=str(e).splitlines()[0])
        for field, record in state.items():
            if not field.startswith("outage:") or not isinstance(record, dict):
                continue
            runtime = self.simulator.instances.get(field[len("outage:") :])
            if runtime is None or runtime.mode.value == record.get("mode"):
                continue
            until = record.get("until")
            if isinstance(until, (int, float)) and until <= now:
                continue  # it has ended meanwhile
            duration = until - now if isinstance(until, (int, float)) else None
            try:
                self._outage(runtime.name, record.get("mode"), duration, record.get("options"))
            except ValueError as e:
                self.log.warn("control: the cluster's outage of {instance} not applied: {error}",
                              instance=runtime.name, error=str(e))  # fmt: skip


def _done(result: bool) -> Deferred[bool]:
    d: Deferred[bool] = Deferred()
    d.callback(result)
    return d


def _all(waits: Any) -> Deferred[bool]:
    """Whether every wait gave True."""
    d: Deferred[Any] = DeferredList(list(waits), consumeErrors=True)
    return d.addCallback(lambda results: all(ok and result is True for ok, result in results))
