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
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connect

from smsc_sim.api.app import ControlAPI
from smsc_sim.api.messages import message_view, parse_filters
from smsc_sim.api.views import session_view
from smsc_sim.config import Config
from smsc_sim.contracts import Event
from smsc_sim.modes import CLOSED_MODES
from smsc_sim.session import SMPPSession
from smsc_sim.simulator import Simulator, SMPPServerFactory
from smsc_sim.testing.client import WaitTimeout
from smsc_sim.testing.forms import Where, configure


class MemoryWaitTimeout(WaitTimeout, TimeoutError):
    """A wait in memory ran out of (fake) time: a :class:`WaitTimeout` as in the other forms, and a ``TimeoutError``."""


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


class MemorySMSC(Where):
    """
    A started simulator on a ``MemoryReactorClock``.

    It is a :class:`~smsc_sim.testing.protocol.SimulatorForm`: every member of
    the client API is here, answering at once, except the waits and the
    outages, which return Deferreds that fire as :meth:`advance` moves time.

    :param config: the configuration, or the path of a YAML file (default: the
        provider's topology; its API endpoint is ignored: the API is served in memory).
    :param seed: the seed of every random choice (0 unless given, so runs repeat).
    :param scenario: a scenario name or path to load instead of the configured one.
    :param token: a bearer token for the in-memory API.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    """

    def __init__(
        self,
        config: Config | str | None = None,
        seed: int | None = 0,
        scenario: str | None = None,
        token: str | None = None,
        accounts: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.config = configure(config, scenario=scenario, accounts=accounts, seed=seed, token=token)
        self.config = dataclasses.replace(self.config, api_endpoint="")
        token = self.config.api_token
        self.accounts = [(a.system_id, a.password) for a in self.config.accounts]
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
        self._client: Any = None

    # -- where and who (the same members as the socket forms) ---------------------------------

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """
        The configured address of each instance's listeners.  Nothing listens
        there (connect with :meth:`connect` or :meth:`endpoint`): it is the
        address a session reports as its own, so the names and the numbers
        match what the socket forms report.
        """
        return {instance.name: [_nominal(e) for e in instance.endpoints] for instance in self.config.instances}

    # address(), port(), host, system_id and password come from Where, as in the socket forms

    def start(self) -> MemorySMSC:
        """Nothing to do (it starts when made); here so every form starts the same way."""
        return self

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
        host, port = self.address(instance) if self.endpoints.get(instance) else ("127.0.0.1", 2775)
        server_address = IPv4Address("TCP", host, port)
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
        """An :class:`~smsc_sim.testing.client.SMSCClient` on :attr:`http` (its calls return Deferreds)."""
        if self._client is None:
            from smsc_sim.testing.client import SMSCClient

            self._client = SMSCClient(MEMORY_API_URL, token=self.api.api.token, http=self.http)
        return self._client

    def _now(self, answer: Deferred[Any]) -> Any:
        """The answer of an API call that needs no time to pass: its value, or its error raised."""
        self.flush()
        box: list[Any] = []

        def keep(result: Any) -> None:
            box.append(result)

        answer.addBoth(keep)
        if not box:
            raise RuntimeError("the in-memory API did not answer without time passing")
        if isinstance(box[0], Failure):
            box[0].raiseException()
        return box[0]

    def _later(self, answer: Deferred[Any]) -> Deferred[Any]:
        """The answer of an API call that waits for the fake clock: a Deferred."""
        self.flush()
        return answer

    # -- the client API, answered in memory ------------------------------------------------

    def info(self) -> Any:
        """``GET /api/v1``: version, seed, endpoints, accounts."""
        return self._now(self.client.info())

    def instances(self) -> Any:
        """Every instance with its state."""
        return self._now(self.client.instances())

    def instance(self, name: str) -> Any:
        """One instance."""
        return self._now(self.client.instance(name))

    def end_session(self, session_id: int, how: str = "unbind") -> Any:
        """End a session: ``how="reset"`` answers at once, an unbind fires once answered (a Deferred)."""
        return self._later(self.client.end_session(session_id, how))

    def submits(self, limit: int = 100, offset: int = 0, **filters: Any) -> Any:
        """Every submit the ESMEs sent, accepted or refused, with the status each got."""
        return self._now(self.client.submits(limit, offset, **filters))

    def force_receipt(self, message_id: str, stat: str, err: int | None = None) -> Any:
        """End a message now with receipt ``stat`` (DELIVRD, UNDELIV...) and ``err``."""
        return self._now(self.client.force_receipt(message_id, stat, err))

    def wait_for_receipt(self, message_id: str, outcome: str = "acked", timeout: float = 10.0) -> Deferred[Any]:
        """Fires with ``{"message": ..., "receipt": ...}`` once the receipt reached ``outcome`` (advance the clock)."""
        return self._later(self.client.wait_for_receipt(message_id, outcome, timeout))

    def wait_for_bind(
        self,
        account: str | None = None,
        instance: str | None = None,
        bind_type: str | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> Deferred[Any]:
        """Fires with the bound sessions matching once there are ``count`` of them (flush or advance)."""
        return self._later(self.client.wait_for_bind(account, instance, bind_type, count, timeout))

    def scenario(self) -> Any:
        """The active scenario's summary."""
        return self._now(self.client.scenario())

    def scenarios(self) -> Any:
        """The names of the shipped scenarios."""
        return self._now(self.client.scenarios())

    def stats(self) -> Any:
        """Every cluster's counters."""
        return self._now(self.client.stats())

    def metrics(self) -> Any:
        """The Prometheus exposition, as text."""
        return self._now(self.client.metrics())

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

    def sessions(self, **filters: Any) -> list[dict[str, Any]]:
        """Open sessions as the API shows them (filters: account, instance, bind_type, state)."""
        if filters:
            found: list[dict[str, Any]] = self._now(self.client.sessions(**filters))
            return found
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
                said = f"fewer than {count} messages matched {filters} within {timeout:g} s"
                raise MemoryWaitTimeout(408, said, {"error": {"message": said}})
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

    def load_scenario(self, name: str | None = None, *, yaml: str | None = None) -> Any:
        """Switch scenario: by shipped name or path (any path: this is the test's own process), or by YAML text."""
        if name is not None and yaml is None:
            self.simulator.load_scenario(name)
            return self.scenario()
        return self._now(self.client.load_scenario(name, yaml=yaml))

    def reset(self, outages: bool = True, scenario: bool = True, sessions: bool = False) -> Any:
        """
        Forget messages, pending deliveries, counters, the judge's findings and
        the trace ring; unless told not to,
        end outages and reload the configured scenario; with ``sessions=True``
        reset every session too.  Sessions stay by default.
        """
        answer = self._now(self.client.reset(outages, scenario, sessions))
        self.events.clear()
        return answer

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


def _nominal(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` of a ``tcp:PORT:interface=HOST`` description (0 when it names none)."""
    parts = endpoint.split(":")
    host = "127.0.0.1"
    port = 0
    for part in parts[1:]:
        if part.startswith("interface="):
            host = part.split("=", 1)[1]
        elif part.isdigit() and not port:
            port = int(part)
    return host, port
