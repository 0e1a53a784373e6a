"""
Instances and their outages.

An instance (the provider's SMPP1, SMPP2, SMPP0) is a named set of
listeners in front of the core of its cluster.  Its runtime state says
whether it is up or in one of the outage modes
(:class:`smsc_sim.modes.InstanceMode`), and each mode is carried out here
with the mechanics it needs on the wire; sessions learn what the mode means
for them through :class:`smsc_sim.policy.IInstancePolicy`, which
:class:`InstanceRuntime` implements:

``graceful``
    every session gets an unbind, listeners stop, new connections are refused
``crash``
    every connection is reset (RST), listeners stop
``blackhole``
    connections stay open and nothing is answered; new ones are accepted and ignored
``bind-hang``
    existing sessions go on; binds on new connections are never answered
``reject-binds``
    binds are answered with a configured status
``slow``
    every response is delayed by a configured latency
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.config import InstanceSettings, SessionSettings
from smsc_sim.contracts import Reply
from smsc_sim.events import EventBus
from smsc_sim.modes import DROPPING_MODES, OUTAGE_MODES, InstanceMode
from smsc_sim.smpp.constants import CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU

if TYPE_CHECKING:
    from smsc_sim.core.smsc import SMSCCore
    from smsc_sim.session import SMPPSession

__all__ = ["OUTAGE_MODES", "OutageError", "Listener", "InstanceRuntime"]

# a bind on a bind-hang instance: nothing is written, ever
_NO_ANSWER = Reply(None)

#: after an outage, a listener whose port another process took meanwhile tries to take it back this often...
RELISTEN_INTERVAL = 1.0
#: ... and this many times before it gives up (and says so in the log)
RELISTEN_ATTEMPTS = 60


class OutageError(ValueError):
    """An outage request that cannot be carried out (unknown mode or instance)."""


class Listener(Service):
    """
    One listening endpoint of an instance.

    Unlike ``strports.service`` it keeps its port, so the bound address of an
    ephemeral port can be read, and it can be stopped and started again for
    outages.  When it cannot listen again after an outage (another process
    took the port while it was closed), it tries again every
    :data:`RELISTEN_INTERVAL` seconds, :data:`RELISTEN_ATTEMPTS` times at most;
    a listener that could not listen at start does not (the configuration is
    wrong, and the start says so).

    :param clock: for the tries again (``reactor`` when not given).
    """

    log = Logger()

    def __init__(self, reactor: Any, description: str, factory: Factory, clock: IReactorTime | None = None) -> None:
        self.description = description
        self._endpoint = serverFromString(reactor, description)
        self._factory = factory
        self._clock: IReactorTime = clock if clock is not None else reactor
        self.port: IListeningPort | None = None
        self._starting = False
        self._waiters: list[Deferred[IListeningPort | None]] = []
        # listened once: a failure to listen again is an outage's end losing its port, worth trying again
        self._listened = False
        self._retry: IDelayedCall | None = None
        self._failed_tries = 0

    def startService(self) -> None:
        """Start listening; a failure is logged and leaves the listener down."""
        super().startService()
        self.listen()

    def listen(self) -> Deferred[IListeningPort | None]:
        """Listen (again); fires with the port when it is open, or None when it cannot be."""
        if self.port is not None:
            return succeed(self.port)
        waiter: Deferred[IListeningPort | None] = Deferred()
        self._waiters.append(waiter)
        if not self._starting:
            self._cancel_retry()
            self._failed_tries = 0
            self._try()
        return waiter

    def _try(self) -> None:
        self._retry = None
        self._starting = True
        self._endpoint.listen(self._factory).addCallbacks(self._listening, self._listen_failed)

    def _listening(self, port: IListeningPort) -> None:
        self._starting = False
        if self._failed_tries:
            self.log.info("listening again on {description} after {tries} failed tries",
                          description=self.description, tries=self._failed_tries)  # fmt: skip
        self._failed_tries = 0
        self._listened = True
        self.port = port
        self._pin(port)
        self._notify(port)

    def _pin(self, port: IListeningPort) -> None:
        """
        Listen on the same port after an outage when the description asked
        for an ephemeral one (``tcp:0``): an ESME that learned the address at
        start must find the instance there again when it recovers, as it
        would the provider's, instead of a new random port.
        """
        # TCP4/TCP6/SSL4ServerEndpoint keep the port in ``_port``; any other
        # endpoint is left as it is
        if getattr(self._endpoint, "_port", None) != 0:
            return
        bound = getattr(port.getHost(), "port", 0)
        if bound:
            pinned = copy.copy(self._endpoint)
            pinned._port = bound  # type: ignore[attr-defined]
            self._endpoint = pinned

    def _listen_failed(self, failure: Failure) -> None:
        self._starting = False
        self._failed_tries += 1
        again = self._listened and self.running and self._failed_tries <= RELISTEN_ATTEMPTS
        if self._failed_tries == 1 or not again:
            self.log.error(
                "cannot listen on {description}: {error}{then}",
                description=self.description,
                error=failure.getErrorMessage(),
                then=(f"; trying again every {RELISTEN_INTERVAL:g} s, {RELISTEN_ATTEMPTS} times at most" if again
                      else f"; gave up after {self._failed_tries} tries" if self._failed_tries > 1 else ""),
            )  # fmt: skip
        if again:
            self._retry = self._clock.callLater(RELISTEN_INTERVAL, self._try)
        # the callers (an outage's end, the start) learn of the failure now, not after the tries
        self._notify(None)

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _notify(self, port: IListeningPort | None) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(port)

    def unlisten(self) -> Deferred[None]:
        """Stop listening; open connections are not touched."""
        self._cancel_retry()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        return maybeDeferred(port.stopListening).addCallback(lambda _: None)

    def stopService(self) -> Deferred[None]:
        """Stop listening."""
        super().stopService()
        return self.unlisten()

    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` while listening."""
        if self.port is None:
            return None
        host = self.port.getHost()
        return (getattr(host, "host", ""), getattr(host, "port", 0))


class InstanceRuntime:
    """
    The live state of one instance: its sessions, listeners and outage mode;
    the :class:`~smsc_sim.policy.IInstancePolicy` of its sessions.

    :param settings: the instance's configuration.
    :param core: the core of its cluster.
    :param clock: for outage durations.
    :param events: where outages are published.
    """

    log = Logger()

    def __init__(self, settings: InstanceSettings, core: SMSCCore, clock: IReactorTime, events: EventBus) -> None:
        self.settings = settings
        self.name = settings.name
        self.core = core
        self.clock = clock
        self.events = events
        self.strict = settings.strict
        self.mode = InstanceMode.UP
        self.since = clock.seconds()
        self.reject_status = int(CommandStatus.ESME_RBINDFAIL)
        self.outage_latency = 0.0
        self.latency = settings.latency
        #: the inbound window of its sessions, (size, status): the config's
        #: session settings unless the scenario overrides them (Simulator sets it)
        self.window = (SessionSettings.inbound_window, SessionSettings.window_status)
        #: deliveries each session keeps unanswered when the scenario sets it
        #: (``window.outbound``); ``None``: the session's own settings
        self.outbound_window: int | None = None
        self.sessions: dict[int, SMPPSession] = {}
        self.listeners: list[Listener] = []
        self._recovery: IDelayedCall | None = None

    # ------------------------------------------------------------------
    # what its sessions ask (IInstancePolicy)
    # ------------------------------------------------------------------

    def swallows_input(self) -> bool:
        """A black hole reads nothing and answers nothing, not even enquire_link."""
        return self.mode is InstanceMode.BLACKHOLE

    def keeps_silent(self) -> bool:
        """A black hole stays silent however long it lasts: no enquire_link, no unbind, no close."""
        return self.mode is InstanceMode.BLACKHOLE

    def bind_verdict(self, pdu: PDU) -> Reply | None:
        """Binds hang in a bind-hang outage, are refused in a reject-binds one; else the core decides."""
        mode = self.mode
        if mode is InstanceMode.BIND_HANG:
            return _NO_ANSWER
        if mode is InstanceMode.REJECT_BINDS:
            return Reply(PDU(response_id(pdu.command_id), pdu.sequence_number, self.reject_status))
        return None

    def session_started(self, session: SMPPSession) -> None:
        """A connection arrived on this instance."""
        self.sessions[session.session_id] = session

    def session_ended(self, session: SMPPSession) -> None:
        """A connection on this instance closed."""
        self.sessions.pop(session.session_id, None)

    def addresses(self) -> list[tuple[str, int]]:
        """The addresses the instance listens on now."""
        return [address for listener in self.listeners if (address := listener.address()) is not None]

    def describe(self) -> dict[str, Any]:
        """A JSON-able view for the API."""
        return {
            "name": self.name,
            "cluster": self.settings.cluster,
            "state": self.mode.value,
            "since": self.since,
            "endpoints": list(self.settings.endpoints),
            "listening": [f"{host}:{port}" for host, port in self.addresses()],
            "sessions": len(self.sessions),
            "latency": self.latency,
        }

    def start_outage(
        self,
        mode: str | InstanceMode,
        duration: float | None = None,
        status: int | None = None,
        latency: float | None = None,
    ) -> Deferred[None]:
        """
        Put the instance in an outage mode (ending any outage first).

        :param mode: one of :data:`OUTAGE_MODES`.
        :param duration: end it by itself after this many seconds.
        :param status: the bind_resp status for ``reject-binds``.
        :param latency: the added latency for ``slow`` (seconds).
        :returns: fires when the outage is in place (sessions unbound, listeners closed).
        """
        if mode not in OUTAGE_MODES:
            raise OutageError(f"unknown outage mode {str(mode)!r}; expected one of {', '.join(OUTAGE_MODES)}")
        mode = InstanceMode(mode)
        if duration is not None and duration < 0:
            raise OutageError(f"outage duration must not be negative, got {duration}")
        if mode is InstanceMode.SLOW and (latency is None or latency < 0):
            raise OutageError("a 'slow' outage needs a latency in seconds (0 or more)")
        self._cancel_recovery()
        if self.mode is not InstanceMode.UP:
            self._restore()
        self.mode = mode
        self.since = self.clock.seconds()
        if status is not None:
            self.reject_status = status
        if mode is InstanceMode.SLOW:
            self.outage_latency = float(latency or 0.0)
            self.latency = self.settings.latency + self.outage_latency
        self.log.warn("instance {name}: outage {mode} starts", name=self.name, mode=mode.value)
        self.events.publish("outage", instance=self.name, mode=mode.value, duration=duration)
        done: Deferred[Any]
        if mode in DROPPING_MODES:
            self.core.set_instance_available(self.name, False)
        if mode is InstanceMode.GRACEFUL:
            waits = [listener.unlisten() for listener in self.listeners]
            waits += [session.unbind() for session in list(self.sessions.values())]
            done = DeferredList(waits, consumeErrors=True)
        elif mode is InstanceMode.CRASH:
            waits = [listener.unlisten() for listener in self.listeners]
            for session in list(self.sessions.values()):
                session.abort()
            done = DeferredList(waits, consumeErrors=True)
        else:
            done = succeed(None)
        if duration is not None:
            self._recovery = self.clock.callLater(duration, self.end_outage)
        return done.addCallback(lambda _: None)

    def end_outage(self) -> Deferred[None]:
        """Bring the instance back up: listeners reopen and pending deliveries flow."""
        self._cancel_recovery()
        if self.mode is InstanceMode.UP:
            return succeed(None)
        self.log.warn("instance {name}: outage {mode} ends", name=self.name, mode=self.mode.value)
        self.events.publish("outage", instance=self.name, mode=InstanceMode.UP.value, duration=None)
        return self._restore()

    def _restore(self) -> Deferred[None]:
        self.mode = InstanceMode.UP
        self.since = self.clock.seconds()
        self.outage_latency = 0.0
        self.latency = self.settings.latency
        waits = [listener.listen() for listener in self.listeners if listener.running]
        self.core.set_instance_available(self.name, True)
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    def _cancel_recovery(self) -> None:
        if self._recovery is not None and self._recovery.active():
            self._recovery.cancel()
        self._recovery = None

    def stop(self) -> None:
        """Cancel the pending recovery timer (used at shutdown)."""
        self._cancel_recovery()
