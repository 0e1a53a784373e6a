"""
outbind (SMPP 3.4 sections 2.2.1 and 4.1.7): the SMSC connects to the
ESME's endpoint, sends outbind, the ESME binds as receiver on that
connection, and what waits for the account flows to it.

smpplib has no outbind, so the ESME here is a small raw-bytes protocol
(:mod:`tests.wire`, independent of the project's codec).  The clock tests
run a :class:`~smsc_sim.testing.memory.MemorySMSC` whose outbind connects
in memory (or not at all, to drive the timeouts and the backoff); the
socket test runs the simulator and the ESME on 127.0.0.1, port 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Factory, Protocol, ServerFactory
from twisted.test.iosim import FakeTransport, connect
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, OutbindSettings, default_config
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.outbind import Outbinder
from smsc_sim.testing.memory import MemoryConnection, MemorySMSC
from tests import wire

OUTBIND, BIND_RX, BIND_RX_RESP, DELIVER_SM = 0x0B, 0x01, 0x80000001, 0x05


class OutbindESME(Protocol):
    """
    An ESME that waits for the SMSC: on outbind it sends bind_receiver (unless
    ``bind`` is false, then it drops the connection, as section 2.2.1 says an
    ESME that refuses does), and answers deliver_sm, unbind and enquire_link.
    """

    def __init__(self, bind: bool = True) -> None:
        self.bind = bind
        self.pdus: list[tuple[wire.Header, bytes]] = []
        self.waiters: list[tuple[int, Deferred[bytes]]] = []
        self._stream = wire.PDUStream()

    def dataReceived(self, data: bytes) -> None:
        for header, body in self._stream.feed(data):
            self.pdus.append((header, body))
            self._answer(header)
            for command_id, waiter in list(self.waiters):
                if command_id == header.command_id and not waiter.called:
                    self.waiters.remove((command_id, waiter))
                    waiter.callback(body)

    def _answer(self, header: wire.Header) -> None:
        assert self.transport is not None
        if header.command_id == OUTBIND:
            if self.bind:
                self.transport.write(wire.bind(BIND_RX, 1, system_id="smppclient1", password="password"))
            else:
                self.transport.loseConnection()
        elif header.command_id == DELIVER_SM:
            self.transport.write(wire.frame(0x80000005, header.sequence_number, b"\x00"))
        elif header.command_id == 0x06:
            self.transport.write(wire.frame(0x80000006, header.sequence_number))
        elif header.command_id == 0x15:
            self.transport.write(wire.frame(0x80000015, header.sequence_number))

    def wait_for(self, command_id: int) -> Deferred[bytes]:
        """Fires with the body of the next PDU with that command_id."""
        waiter: Deferred[bytes] = Deferred()
        self.waiters.append((command_id, waiter))
        return waiter

    def received(self, command_id: int) -> list[tuple[wire.Header, bytes]]:
        return [(h, b) for h, b in self.pdus if h.command_id == command_id]


def outbind_config(when: str = "pending", endpoint: str = "tcp:host=127.0.0.1:port=2800", **more: Any) -> Any:
    """The embedded default with outbind set on its account."""
    settings = OutbindSettings(endpoint=endpoint, when=when, **more)
    account = dataclasses.replace(default_config().accounts[0], outbind=settings)
    return dataclasses.replace(default_config(), accounts=(account,))


class OutbindMemoryTests(SynchronousTestCase):
    """The whole path on a fake clock, the ESME connected in memory."""

    def setUp(self) -> None:
        self.smsc = MemorySMSC(outbind_config())
        self.addCleanup(self.smsc.stop)
        self.esmes: list[OutbindESME] = []
        self.attempts: list[tuple[float, str]] = []

    def connect_in_memory(self, esme_bind: bool = True) -> None:
        """Make the outbinder's connects reach a new in-memory ESME each time."""
        smsc = self.smsc

        def connect_esme(description: str, factory: Factory) -> Deferred[Protocol]:
            self.attempts.append((smsc.reactor.seconds(), description))
            esme = OutbindESME(bind=esme_bind)
            self.esmes.append(esme)
            address = IPv4Address("TCP", "127.0.0.1", 2800)
            local = IPv4Address("TCP", "127.0.0.1", 50000 + len(self.esmes))
            session = factory.buildProtocol(address)
            assert isinstance(session, Protocol), session
            session_io = FakeTransport(session, isServer=False, hostAddress=local, peerAddress=address)
            esme_io = FakeTransport(esme, isServer=True, hostAddress=address, peerAddress=local)
            pump = connect(esme, esme_io, session, session_io, greet=True, clock=smsc.reactor)
            smsc.connections.append(MemoryConnection(esme, session, pump))  # type: ignore[arg-type]
            return succeed(session)

        smsc.simulator.outbinder._connect = connect_esme

    def refuse_connects(self) -> None:
        """Make every connect fail at once, as a refused TCP connect does."""

        def refused(description: str, factory: Factory) -> Deferred[Protocol]:
            self.attempts.append((self.smsc.reactor.seconds(), description))
            return fail(ConnectionRefusedError("connection refused"))

        self.smsc.simulator.outbinder._connect = refused

    def post(self, path: str) -> tuple[int, Any]:
        response = self.successResultOf(self.smsc.http.post("http://smsc-sim.invalid" + path, json={}))
        body = self.successResultOf(response.content())
        return response.code, json.loads(body)

    def test_pending_mo_outbinds_and_the_esme_receives_it(self) -> None:
        """
        An MO for an account with no receiver makes the SMSC connect and send
        outbind (system_id, password); the ESME's bind_receiver on that
        connection succeeds and the waiting MO arrives as deliver_sm.
        """
        self.connect_in_memory()
        self.smsc.inject_mo("447700900001", "447700900002", "hello outbind")
        self.smsc.flush()
        (esme,) = self.esmes
        ((header, body),) = esme.received(OUTBIND)
        self.assertEqual(wire.read_cstr(body, 0)[0], "smppclient1")
        self.assertEqual(wire.read_cstr(body, len("smppclient1") + 1)[0], "password")
        self.assertEqual(header.command_length, 16 + len(body))
        ((bind_resp, _),) = esme.received(BIND_RX_RESP)
        self.assertEqual(bind_resp.command_status, 0)
        ((_, deliver),) = esme.received(DELIVER_SM)
        self.assertEqual(wire.deliver_sm_fields(deliver)["short_message"], b"hello outbind")
        link = self.smsc.simulator.outbinder.links["smppclient1"]
        self.assertEqual(link.state, "bound")

    def test_refused_connects_back_off_then_give_up(self) -> None:
        """
        A refused connect is retried after 1 s, then 2, 4, 8, 16, 32 and 60 s
        (doubled, capped at 60); after 8 failures in a row the link gives up
        until asked again through the API.
        """
        self.refuse_connects()
        code, view = self.post("/api/v1/accounts/smppclient1/outbind")
        self.assertEqual((code, view["account"]), (202, "smppclient1"))
        self.smsc.advance(1000)
        self.assertEqual([t for t, _ in self.attempts], [0, 1, 3, 7, 15, 31, 63, 123])
        self.assertEqual([d for _, d in self.attempts], ["tcp:host=127.0.0.1:port=2800"] * 8)
        link = self.smsc.simulator.outbinder.links["smppclient1"]
        self.assertEqual((link.state, link.failures), ("failed", 8))
        self.assertIn("connection refused", link.last_error)
        code, view = self.post("/api/v1/accounts/smppclient1/outbind")
        self.assertEqual((code, len(self.attempts)), (202, 9))

    def test_esme_that_drops_the_outbind_is_retried(self) -> None:
        """An ESME that closes the connection instead of binding counts as a failure: a new attempt 1 s later."""
        self.connect_in_memory(esme_bind=False)
        self.smsc.inject_mo("447700900001", "447700900002", "waiting")
        self.smsc.flush()
        self.assertEqual(len(self.attempts), 1)
        link = self.smsc.simulator.outbinder.links["smppclient1"]
        self.assertEqual((link.state, link.last_error), ("retrying", "closed before a bind"))
        self.smsc.advance(1)
        self.assertEqual(len(self.attempts), 2)

    def test_api_leaves_a_bound_link_alone_and_shows_it(self) -> None:
        """POST on a bound link changes nothing (202 with state bound); GET shows the link."""
        self.connect_in_memory()
        self.post("/api/v1/accounts/smppclient1/outbind")
        self.smsc.flush()
        code, view = self.post("/api/v1/accounts/smppclient1/outbind")
        self.assertEqual((code, view["state"], view["attempts"]), (202, "bound", 1))
        response = self.successResultOf(self.smsc.http.get("http://smsc-sim.invalid/api/v1/accounts/smppclient1/outbind"))
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(self.successResultOf(response.content()))["endpoint"], "tcp:host=127.0.0.1:port=2800")
        self.assertEqual(len(self.attempts), 1)

    def test_unknown_account_and_account_without_outbind(self) -> None:
        """404 for an account that does not exist; 409 for one without outbind."""
        code, body = self.post("/api/v1/accounts/nobody/outbind")
        self.assertEqual(code, 404)
        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        response = self.successResultOf(
            smsc.http.post("http://smsc-sim.invalid/api/v1/accounts/smppclient1/outbind", json={})
        )
        self.assertEqual(response.code, 409)
        message = json.loads(self.successResultOf(response.content()))["error"]["message"]
        self.assertEqual(message, "account 'smppclient1' has no outbind configured")


class OutbindAlwaysTests(SynchronousTestCase):
    """``when: always`` through the real endpoint parser, on a MemoryReactorClock that never connects."""

    def test_connects_at_start_and_the_connect_times_out(self) -> None:
        """
        At start the SMSC connects to the configured host and port; a connect
        that does not complete is abandoned after 10 s and tried again 1 s later.
        """
        smsc = MemorySMSC(outbind_config(when="always", endpoint="tcp:host=127.0.0.1:port=2801"))
        self.addCleanup(smsc.stop)
        self.assertEqual([(host, port) for host, port, *_ in smsc.reactor.tcpClients], [("127.0.0.1", 2801)])
        smsc.advance(10)
        link = smsc.simulator.outbinder.links["smppclient1"]
        self.assertEqual(link.state, "retrying")
        self.assertIn("connect failed", link.last_error)
        smsc.advance(1)
        self.assertEqual(len(smsc.reactor.tcpClients), 2)

    def test_stop_cancels_the_backoff(self) -> None:
        """Stopping the simulator leaves no outbind timer behind."""
        smsc = MemorySMSC(outbind_config(when="always", endpoint="tcp:host=127.0.0.1:port=2801"))
        smsc.advance(10.5)
        outbinder: Outbinder = smsc.simulator.outbinder
        self.assertIsNotNone(outbinder.links["smppclient1"].retry)
        smsc.stop()
        self.assertIsNone(outbinder.links["smppclient1"].retry)
        calls_before = len(smsc.reactor.tcpClients)
        smsc.reactor.advance(100)
        self.assertEqual(len(smsc.reactor.tcpClients), calls_before)


class OutbindConfigTests(SynchronousTestCase):
    """The ``outbind:`` key of an account."""

    def write(self, text: str) -> str:
        directory = tempfile.mkdtemp(prefix="smsc-sim-test-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "smsc-sim.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def account(self, outbind: str) -> str:
        return self.write(f"accounts:\n  - system_id: esme1\n    password: secret\n    outbind: {outbind}\n")

    def test_parsed_with_defaults(self) -> None:
        """An endpoint alone gives when: pending and the account's own credentials at run time."""
        config = load_config(self.account("{endpoint: 'tcp:host=10.0.0.5:port=2775'}"), {}, {})
        (account,) = config.accounts
        self.assertEqual(account.outbind, OutbindSettings(endpoint="tcp:host=10.0.0.5:port=2775"))
        self.assertIsNone(default_config().accounts[0].outbind)

    def test_mistakes_name_the_line_and_key(self) -> None:
        """A bad when, endpoint, password or instance is one line naming file, line and key."""
        cases = {
            "{endpoint: 'tcp:host=h:port=1', when: sometimes}": "accounts[0].outbind.when: unknown value 'sometimes'",
            "{endpoint: 'nonsense:x'}": "accounts[0].outbind.endpoint: bad endpoint 'nonsense:x'",
            "{endpoint: 'tcp:host=h:port=1', password: '123456789'}": "accounts[0].outbind.password: too long",
            "{when: always}": "accounts[0].outbind: missing key 'endpoint'",
            "{endpoint: 'tcp:host=h:port=1', instance: SMPP9}": "accounts[0].outbind.instance: no instance named 'SMPP9'",
        }
        for value, expected in cases.items():
            path = self.account(value)
            with self.assertRaises(ConfigError) as caught:
                load_config(path, {}, {})
            self.assertIn(expected, str(caught.exception))
            self.assertTrue(str(caught.exception).startswith(path), str(caught.exception))

    def test_account_settings_default(self) -> None:
        """Accounts built in code have no outbind unless given one."""
        self.assertIsNone(AccountSettings("a", "b").outbind)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_outbind_on_real_sockets() -> None:
    """
    On 127.0.0.1: an ESME listens; an MO for its account, which has no
    receiver, makes the simulator connect to it and send outbind; the ESME
    binds as receiver on that connection and gets the MO as deliver_sm.
    """
    from twisted.internet import reactor

    from smsc_sim.service import build_service
    from smsc_sim.testing.harness import ephemeral_config

    esmes: list[OutbindESME] = []
    outbind_seen: Deferred[bytes] = Deferred()
    delivered: Deferred[bytes] = Deferred()

    def build() -> OutbindESME:
        esme = OutbindESME()
        esme.waiters.append((OUTBIND, outbind_seen))
        esme.waiters.append((DELIVER_SM, delivered))
        esmes.append(esme)
        return esme

    # forProtocol is typed to give a Factory, and listenTCP takes a ServerFactory
    factory: ServerFactory = ServerFactory()
    factory.protocol = build
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    simulator = None
    try:
        host = port.getHost()
        assert isinstance(host, IPv4Address), host
        endpoint = f"tcp:host=127.0.0.1:port={host.port}:timeout=5"
        config = dataclasses.replace(ephemeral_config(outbind_config(endpoint=endpoint)), api_endpoint="")
        simulator = build_service(config, reactor)
        simulator.startService()
        await simulator.when_listening()
        simulator.inject_mo("smppclient1", "447700900001", "447700900002", text="over the wire")
        body = await outbind_seen.addTimeout(5, reactor)
        assert wire.read_cstr(body)[0] == "smppclient1"
        deliver = await delivered.addTimeout(5, reactor)
        assert wire.deliver_sm_fields(deliver)["short_message"] == b"over the wire"
        (esme,) = esmes
        assert [h.command_status for h, _ in esme.received(BIND_RX_RESP)] == [0]
    finally:
        if simulator is not None:
            await simulator.stopService()
        stopped = port.stopListening()
        if stopped is not None:
            await stopped


class _FakeSession:
    """What the outbinder touches of a session: its id and the unanswered write."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.sent: list[Any] = []

    def send_unanswered(self, pdu: Any) -> int:
        self.sent.append(pdu)
        return len(self.sent)


class OutbinderUnitTests(SynchronousTestCase):
    """The outbinder alone, on a Clock, with sessions and events faked."""

    def make(self, when: str, receiver: bool = False, pending: bool = True) -> tuple[Outbinder, Any, list[float]]:
        from twisted.internet.task import Clock

        from smsc_sim.events import EventBus

        clock = Clock()
        events = EventBus(clock)
        attempts: list[float] = []
        sessions = iter(range(1, 100))

        def connect(description: str, factory: Factory) -> Deferred[Protocol]:
            attempts.append(clock.seconds())
            return succeed(_FakeSession(next(sessions)))  # type: ignore[arg-type]

        account = dataclasses.replace(
            AccountSettings("esme1", "secret"), outbind=OutbindSettings("tcp:host=127.0.0.1:port=2800", when=when)
        )
        outbinder = Outbinder(
            clock,
            (account,),
            events,
            connect,
            lambda instance: Protocol(),
            lambda instance, system_id: pending,
            lambda instance, system_id: receiver,
            "SMPP1",
        )
        outbinder.start()
        self.addCleanup(outbinder.stop)
        return outbinder, (clock, events), attempts

    def test_always_reconnects_a_second_after_a_bound_session_ends(self) -> None:
        """when: always connects at start; once its bound session closes, it connects again 1 s later."""
        outbinder, (clock, events), attempts = self.make("always")
        self.assertEqual(attempts, [0])
        link = outbinder.links["esme1"]
        assert isinstance(link.session, _FakeSession), link.session
        self.assertEqual(link.session.sent[0].command_id, OUTBIND)
        self.assertEqual(link.session.sent[0].params["system_id"], "esme1")
        events.publish("bind", session_id=1)
        self.assertEqual(link.state, "bound")
        clock.advance(100)
        events.publish("session_closed", session_id=1)
        self.assertEqual(link.state, "retrying")
        clock.advance(1)
        self.assertEqual(attempts, [0, 101])

    def test_pending_waits_while_a_receiver_is_bound(self) -> None:
        """when: pending does not connect for a queued delivery while the account has a receiver bound."""
        outbinder, (clock, events), attempts = self.make("pending", receiver=True)
        events.publish("delivery", account="esme1", outcome="queued")
        self.assertEqual((attempts, outbinder.links["esme1"].state), ([], "idle"))

    def test_pending_connects_once_for_many_queued_deliveries(self) -> None:
        """Many queued deliveries make one connect, not one each."""
        outbinder, (clock, events), attempts = self.make("pending")
        for _ in range(5):
            events.publish("delivery", account="esme1", outcome="queued")
        self.assertEqual(attempts, [0])
        self.assertEqual(outbinder.links["esme1"].state, "waiting-bind")
