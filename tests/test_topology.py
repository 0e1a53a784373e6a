"""
Instance outages, driven by a MemoryReactorClock: what each mode does to
the sessions, the listeners and the core's routing.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import InstanceSettings, SessionSettings
from smsc_sim.events import EventBus
from smsc_sim.session import SMPPSession
from smsc_sim.topology import InstanceRuntime, Listener, OutageError
from tests import wire
from tests.test_session import StubCore


class AvailabilityCore(StubCore):
    """A stub core that also records what the instance says about routing."""

    def __init__(self) -> None:
        super().__init__()
        self.available: list[tuple[str, bool]] = []

    def set_instance_available(self, name: str, available: bool) -> None:
        self.available.append((name, available))


class OutageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.core = AvailabilityCore()
        self.events = EventBus(self.reactor)
        self.seen: list[Any] = []
        self.events.subscribe(self.seen.append)
        settings = InstanceSettings("SMPP1", ("tcp:2775:interface=127.0.0.1",), cluster="NA")
        self.instance = InstanceRuntime(settings, self.core, self.reactor, self.events)  # type: ignore[arg-type]
        self.listener = Listener(self.reactor, settings.endpoints[0], Factory())
        self.instance.listeners.append(self.listener)
        self.listener.startService()

    def connect(self) -> tuple[SMPPSession, StringTransport]:
        session = SMPPSession(
            self.core,
            self.instance,
            SessionSettings(),
            self.reactor,
            self.events,
            session_id=len(self.instance.sessions) + 1,
        )
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        session.makeConnection(transport)
        session.dataReceived(wire.bind())
        transport.clear()
        return session, transport

    def test_listener_opens_on_configured_endpoint(self) -> None:
        """The instance listens on its endpoint's port and interface."""
        (port, _factory, _backlog, interface), = self.reactor.tcpServers
        self.assertEqual((port, interface), (2775, "127.0.0.1"))

    def test_graceful_outage_unbinds_and_stops_listening(self) -> None:
        """A graceful outage sends unbind to every session and closes the listener."""
        session, transport = self.connect()
        done: list[None] = []
        self.instance.start_outage("graceful").addCallback(done.append)
        (command_id, _, seq), = wire.headers(transport.value())
        self.assertEqual(command_id, 0x06)
        self.assertIsNone(self.listener.port)
        self.assertEqual(self.core.available, [("SMPP1", False)])
        session.dataReceived(wire.frame(0x80000006, seq))
        self.assertTrue(transport.disconnecting)
        session.connectionLost()
        self.assertEqual(done, [None])
        self.assertEqual(self.instance.mode, "graceful")

    def test_crash_resets_every_connection(self) -> None:
        """A crash aborts every connection (no unbind written) and closes the listener."""
        session, transport = self.connect()
        self.instance.start_outage("crash")
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnected)
        self.assertIsNone(self.listener.port)

    def test_outage_with_duration_recovers(self) -> None:
        """An outage with a duration ends by itself: listening again, routing restored."""
        self.instance.start_outage("crash", duration=30)
        self.reactor.advance(29)
        self.assertEqual(self.instance.mode, "crash")
        self.reactor.advance(1)
        self.assertEqual(self.instance.mode, "up")
        self.assertEqual(len(self.reactor.tcpServers), 2)
        self.assertEqual(self.core.available, [("SMPP1", False), ("SMPP1", True)])
        self.assertEqual([e.data["mode"] for e in self.seen if e.kind == "outage"], ["crash", "up"])

    def test_slow_outage_adds_latency(self) -> None:
        """A slow outage delays responses by its latency and ends back at the configured latency."""
        session, transport = self.connect()
        self.instance.start_outage("slow", latency=1.5)
        session.dataReceived(wire.frame(0x15, 5))
        self.assertEqual(transport.value(), b"")
        self.reactor.advance(1.5)
        self.assertEqual(wire.headers(transport.value()), [(0x80000015, 0, 5)])
        self.instance.end_outage()
        self.assertEqual(self.instance.latency, 0.0)

    def test_reject_binds_with_status(self) -> None:
        """reject-binds answers new binds with the given status."""
        self.instance.start_outage("reject-binds", status=0x08)
        session = SMPPSession(
            self.core, self.instance, SessionSettings(), self.reactor, self.events, session_id=9
        )
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40001))
        session.makeConnection(transport)
        session.dataReceived(wire.bind())
        self.assertEqual(wire.headers(transport.value()), [(0x80000009, 0x08, 1)])

    def test_unknown_mode_refused(self) -> None:
        """An unknown outage mode is refused with the list of modes."""
        error = self.assertRaises(OutageError, self.instance.start_outage, "meltdown")
        self.assertIn("graceful", str(error))

    def test_slow_without_latency_refused(self) -> None:
        """A slow outage needs a latency."""
        self.assertRaises(OutageError, self.instance.start_outage, "slow")
