"""
The simulator in memory: no sockets, a fake clock, for unit tests of ESME
code written on Twisted.

>>> smsc = MemorySMSC()
>>> connection = smsc.connect(my_esme_protocol)         # or smsc.endpoint("SMPP1")
>>> smsc.flush()                                         # move every byte both ways
>>> smsc.advance(5)                                      # 5 s pass, timer by timer
>>> smsc.messages(destination="447700900001")

Every connection is an :class:`twisted.test.iosim.IOPump` between the ESME's
protocol and a real :class:`~smsc_sim.session.SMPPSession`; the clock is a
``MemoryReactorClock`` shared by the simulator and (if it takes one) the
ESME.  :meth:`MemorySMSC.advance` moves time from one due timer to the next
and moves bytes at each, so a response written at t=1 reaches the ESME
before a timeout due at t=10 fires.  The HTTP API is there too, over
``treq.testing.StubTreq`` (:attr:`MemorySMSC.http`, :attr:`MemorySMSC.client`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import FakeTransport, IOPump, connect

from smsc_sim.api.app import ControlAPI
from smsc_sim.api.messages import message_view, parse_filters
from smsc_sim.api.views import session_view
from smsc_sim.config import Config, default_config
from smsc_sim.contracts import Event
from smsc_sim.modes import CLOSED_MODES
from smsc_sim.session import SMPPSession
from smsc_sim.simulator import Simulator, SMPPServerFactory

#: the base URL the in-memory API answers on (any host works)
MEMORY_API_URL = "http://smsc-sim.invalid"


@dataclasses.dataclass
class MemoryConnection:
    """One ESME connection in memory: the ESME's protocol, the SMSC's session and the pump between them."""

    client: Protocol
    session: SMPPSession
    pump: IOPump

    def disconnect(self) -> None:
        """Close the connection from the ESME's side (a FIN)."""
        self.pump.clientIO.loseConnection()
        self.pump.flush()


class _MemoryEndpoint:
    """An ``IStreamClientEndpoint`` whose connections go to one instance in memory."""

    def __init__(self, smsc: MemorySMSC, instance: str) -> None:
        self._smsc = smsc
        self._instance = instance

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        """Connect ``factory``'s protocol at once (the pump runs on :meth:`MemorySMSC.flush`)."""
        address = self._smsc._next_peer()
        protocol = factory.buildProtocol(address)
        if protocol is None:
            raise ValueError("the factory built no protocol")
        try:
            self._smsc.connect(protocol, self._instance, address)  # type: ignore[arg-type]
        except ConnectionRefusedError as refused:
            return fail(refused)
        return succeed(protocol)


class MemorySMSC:
    """
    A started simulator on a ``MemoryReactorClock``.

    :param config: the configuration (default: the provider's topology;
        its API endpoint is ignored: the API is served in memory).
    :param seed: the seed of every random choice (0 unless given, so runs repeat).
    :param scenario: a scenario name or path to load instead of the configured one.
    :param token: a bearer token for the in-memory API.
    """

    def __init__(
        self,
        config: Config | None = None,
        seed: int | None = 0,
        scenario: str | None = None,
        token: str | None = None,
    ) -> None:
        config = config if config is not None else default_config()
        changes: dict[str, Any] = {"api_endpoint": ""}
        if seed is not None:
            changes["seed"] = seed
        if scenario is not None:
            changes["scenario"] = scenario
        self.config = dataclasses.replace(config, **changes)
        self.reactor = MemoryReactorClock()
        self.clock = self.reactor
        self.simulator = Simulator(self.config, self.reactor)
        # StubTreq sends the Host of MEMORY_API_URL, a name that can never resolve
        hosts = self.config.api_allowed_hosts + (MEMORY_API_URL.split("//", 1)[1],)
        self.api = ControlAPI(self.simulator, token, allowed_hosts=hosts)
        self.events: list[Event] = []
        self._unsubscribe = self.simulator.events.subscribe(self.events.append)
        self.connections: list[MemoryConnection] = []
        self._peers = 40000
        self._factories: dict[str, SMPPServerFactory] = {}
        self.simulator.startService()
        self._http: Any = None

    # -- connections -------------------------------------------------------------

    def _next_peer(self) -> IPv4Address:
        self._peers += 1
        return IPv4Address("TCP", "127.0.0.1", self._peers)

    def connect(self, client: Protocol, instance: str = "SMPP1", peer: IPv4Address | None = None) -> MemoryConnection:
        """
        Connect an ESME protocol to an instance, as a TCP connection would.

        :param client: the ESME's protocol, not yet connected.
        :param instance: the instance's name.
        :param peer: the ESME's address as the SMSC sees it.
        :returns: the connection; bytes move on :meth:`flush` and :meth:`advance`.
        """
        runtime = self.simulator.instance(instance)
        if runtime.mode in CLOSED_MODES:
            # its listeners are closed: a real TCP connect would be refused
            raise ConnectionRefusedError(f"{instance} is down ({runtime.mode} outage)")
        factory = self._factories.get(instance)
        if factory is None:
            factory = self._factories[instance] = SMPPServerFactory(self.simulator, runtime)
        address = peer if peer is not None else self._next_peer()
        server_address = IPv4Address("TCP", "127.0.0.1", 2775)
        session = factory.buildProtocol(address)
        if not isinstance(session, SMPPSession):
            # the connection limits refused it
            raise ConnectionRefusedError(f"{instance} refused the connection (connection limits)")
        server_io = FakeTransport(session, isServer=True, hostAddress=server_address, peerAddress=address)
        client_io = FakeTransport(client, isServer=False, hostAddress=address, peerAddress=server_address)
        pump = connect(session, server_io, client, client_io, greet=True, clock=self.reactor)
        connection = MemoryConnection(client, session, pump)
        self.connections.append(connection)
        return connection

    def endpoint(self, instance: str = "SMPP1") -> _MemoryEndpoint:
        """A client endpoint for ESME code that connects through endpoints."""
        return _MemoryEndpoint(self, instance)

    # -- time and bytes -------------------------------------------------------------

    def flush(self) -> None:
        """Run what is due now and move bytes both ways on every connection until nothing moves."""
        moved = True
        while moved:
            moved = False
            self.reactor.advance(0)
            for connection in list(self.connections):
                if connection.pump.flush():
                    moved = True
            if self._http is not None:
                # answers written after the request (long-polls) travel on the stub's own pump
                self._http.flush()

    def advance(self, seconds: float) -> None:
        """
        Let ``seconds`` pass: every timer due in between fires at its time,
        with bytes moved after each.
        """
        target = self.reactor.seconds() + seconds
        self.flush()
        for _ in range(1_000_000):
            due = [call.getTime() for call in self.reactor.getDelayedCalls() if call.getTime() <= target]
            if not due:
                break
            self.reactor.advance(max(0.0, min(due) - self.reactor.seconds()))
            self.flush()
        if target > self.reactor.seconds():
            self.reactor.advance(target - self.reactor.seconds())
        self.flush()

    # -- the API in memory ---------------------------------------------------------------

    @property
    def http(self) -> Any:
        """A ``treq.testing.StubTreq`` over the control API (its calls need no reactor)."""
        if self._http is None:
            from treq.testing import StubTreq

            self._http = StubTreq(self.api.resource())
        return self._http

    @property
    def client(self) -> Any:
        """An :class:`~smsc_sim.testing.client.SMSCClient` on :attr:`http`."""
        from smsc_sim.testing.client import SMSCClient

        return SMSCClient(MEMORY_API_URL, token=self.api.api.token, http=self.http)

    # -- direct helpers (no HTTP) --------------------------------------------------------

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Messages as the API shows them; filters as in ``GET /api/v1/messages``."""
        limit = int(filters.pop("limit", 10_000))
        offset = int(filters.pop("offset", 0))
        return self.api.messages.query(parse_filters(filters), limit, offset)

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message as the API shows it, or None."""
        record = self.api.messages.find(message_id)
        return message_view(record) if record is not None else None

    def sessions(self) -> list[dict[str, Any]]:
        """Open sessions as the API shows them."""
        return [session_view(s) for i in self.simulator.instances.values() for s in i.sessions.values()]

    def wait_for_messages(
        self, count: int = 1, timeout: float = 60.0, **filters: Any
    ) -> Deferred[list[dict[str, Any]]]:
        """
        Fires with the first ``count`` matching messages once there are that many
        (advance the clock or flush to get there), or fails with ``TimeoutError``.
        """
        parsed = parse_filters(filters)

        def check() -> list[dict[str, Any]] | None:
            found = self.api.messages.query(parsed, count, 0)
            return found if len(found) >= count else None

        def done(found: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
            if found is None:
                raise TimeoutError(f"fewer than {count} messages matched {filters} within {timeout:g} s")
            return found

        kinds = frozenset({"message", "delivery", "pdu_in", "pdu_out"})
        return self.api.waits.until(check, kinds, timeout).addCallback(done)

    def inject_mo(
        self, source: str, destination: str, text: str, account: str | None = None, **options: Any
    ) -> list[str]:
        """Originate an MO (see :meth:`Simulator.inject_mo`); the account defaults to the first one."""
        account = account or self.config.accounts[0].system_id
        return self.simulator.inject_mo(account, source, destination, text=text, **options)

    def start_outage(self, instance: str, mode: str, duration: float | None = None, **options: Any) -> Deferred[None]:
        """Start an outage (see :mod:`smsc_sim.topology`); flush to let it take effect."""
        return self.simulator.start_outage(instance, mode, duration, **options)

    def end_outage(self, instance: str) -> Deferred[None]:
        """End an outage."""
        return self.simulator.end_outage(instance)

    def load_scenario(self, name_or_path: str) -> None:
        """Switch to another scenario."""
        self.simulator.load_scenario(name_or_path)

    def reset(self) -> None:
        """Forget messages, pending deliveries and counters; sessions stay."""
        self.simulator.reset()
        self.events.clear()

    def conformance(self, **filters: Any) -> dict[str, Any]:
        """
        The judge's summary as ``GET /api/v1/conformance`` answers it (filters:
        account, session_id, severity, since; a bad one raises ``ValueError``).
        """
        from smsc_sim.conformance.query import parse_filters

        summary = self.simulator.judge.summary(**parse_filters(filters))
        summary["time"] = self.clock.seconds()
        summary["judging"] = self.config.conformance_judge
        return summary

    def assert_conformant(self, allow: Iterable[str] = (), fail_on: str = "warning", **filters: Any) -> None:
        """
        Raise ``AssertionError`` listing each finding, one readable line each, unless the ESME is conformant.

        :param allow: codes that never fail, e.g. ``["single-instance"]``.
        :param fail_on: ``warning`` (errors and warnings fail; info never) or ``error``.
        """
        from smsc_sim.conformance.query import assertion_failure

        message = assertion_failure(self.conformance(**filters), allow, fail_on)
        if message is not None:
            raise AssertionError(message)

    def reset_conformance(self) -> None:
        """Forget the judge's findings (:meth:`reset` does it too)."""
        self.simulator.judge.reset()

    def on_event(self, subscriber: Callable[[Event], None]) -> Callable[[], None]:
        """Subscribe to the simulator's events; returns the unsubscribe function."""
        return self.simulator.events.subscribe(subscriber)

    def stop(self) -> None:
        """Stop the simulator: unbind every session (answered or timed out), close everything."""
        if not self.simulator.running:
            return
        done = self.simulator.stopService()
        self.advance(self.config.session.response_timeout + 1)
        self.api.close()
        self._unsubscribe()
        done.addErrback(lambda _: None)

    def __enter__(self) -> MemorySMSC:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
