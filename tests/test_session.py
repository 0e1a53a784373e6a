"""
The SMSC-side SMPP session, driven with StringTransport and task.Clock.

The core behind the session is a stub that records what it was asked, so
these tests pin the mechanics: framing, the state table, windows, timers.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import InstanceSettings, SessionSettings
from smsc_sim.contracts import AfterReply, DeliveryFailed, Reply
from smsc_sim.events import EventBus
from smsc_sim.session import SessionState, SMPPSession
from smsc_sim.smpp.constants import CommandId, CommandStatus
from smsc_sim.smpp.pdu import PDU, make_pdu, make_response
from smsc_sim.topology import InstanceRuntime
from tests import wire

RINVBNDSTS = int(CommandStatus.ESME_RINVBNDSTS)


class _NoRouting:
    """What an instance tells its core about routing during an outage, ignored."""

    def set_instance_available(self, name: str, available: bool) -> None:
        pass


class StubInstance(InstanceRuntime):
    """
    A real instance (its outages are the topology's), with no listeners and a
    core that ignores routing; a test sets its latency and windows directly.
    """

    def __init__(self) -> None:
        clock = Clock()
        settings = InstanceSettings("SMPP1", (), cluster="NA")
        super().__init__(settings, _NoRouting(), clock, EventBus(clock))  # type: ignore[arg-type]
        self.window = (2, 0x14)


class StubCore:
    """Accepts every bind and answers every request with a fixed Reply."""

    def __init__(self) -> None:
        self.requests: list[PDU] = []
        self.lost: list[bool] = []
        self.unbinds = 0
        self.bind_status = 0
        self.next_reply: Reply | None = None

    def bind(self, session: Any, pdu: PDU) -> Reply:
        return Reply(make_response(pdu, self.bind_status, system_id="SMPP1"))

    def request(self, session: Any, pdu: PDU) -> Reply | Deferred[Reply]:
        self.requests.append(pdu)
        if self.next_reply is not None:
            return self.next_reply
        if pdu.command_id == CommandId.submit_sm:
            return Reply(make_response(pdu, message_id="0123456789ABCDEF"))
        return Reply(make_response(pdu))

    def unbound(self, session: Any) -> None:
        self.unbinds += 1

    def connection_lost(self, session: Any, clean: bool) -> None:
        self.lost.append(clean)


class SessionTestCase(SynchronousTestCase):
    """A session on a StringTransport with a stub core, instance and clock."""

    settings = SessionSettings(
        session_init_timeout=30.0,
        enquire_link_interval=60.0,
        response_timeout=10.0,
        inactivity_timeout=600.0,
        outbound_window=2,
        outbound_queue_limit=3,
        inbound_window=2,
        pdu_read_timeout=5.0,
        max_pdu_size=4096,
    )

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.rightNow = 1_700_000_000.0
        self.core = StubCore()
        self.instance = StubInstance()
        self.session = SMPPSession(
            core=self.core,
            instance=self.instance,
            settings=self.settings,
            clock=self.clock,
            events=EventBus(self.clock),
            session_id=1,
        )
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        self.session.makeConnection(self.transport)

    def sent(self) -> list[tuple[int, int, int]]:
        """Header triples written since the last call."""
        out = wire.headers(self.transport.value())
        self.transport.clear()
        return out

    def bind(self, command_id: int = 0x09) -> None:
        self.session.dataReceived(wire.bind(command_id))
        self.assertEqual(self.sent(), [(command_id | 0x80000000, 0, 1)])

    def tearDown(self) -> None:
        if self.session.state is not SessionState.CLOSED:
            self.session.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class FramingTests(SessionTestCase):
    def test_pdu_byte_by_byte(self) -> None:
        """A bind arriving one byte at a time is answered once, when complete."""
        data = wire.bind()
        for byte in data[:-1]:
            self.session.dataReceived(bytes([byte]))
        self.assertEqual(self.transport.value(), b"")
        self.session.dataReceived(data[-1:])
        self.assertEqual(self.sent(), [(0x80000009, 0, 1)])

    def test_many_pdus_in_one_read(self) -> None:
        """A bind and three enquire_links in one read get four answers, in order."""
        data = wire.bind() + b"".join(wire.frame(0x15, seq) for seq in (2, 3, 4))
        self.session.dataReceived(data)
        self.assertEqual(
            self.sent(), [(0x80000009, 0, 1), (0x80000015, 0, 2), (0x80000015, 0, 3), (0x80000015, 0, 4)]
        )

    def test_command_length_too_short(self) -> None:
        """command_length under 16 gets generic_nack ESME_RINVCMDLEN and the connection closes."""
        self.session.dataReceived(b"\x00\x00\x00\x08\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x07")
        self.assertEqual(self.sent(), [(0x80000000, 0x02, 7)])
        self.assertTrue(self.transport.disconnecting)

    def test_command_length_too_long(self) -> None:
        """command_length over the maximum gets generic_nack ESME_RINVCMDLEN and a close."""
        self.session.dataReceived(b"\x00\x10\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x09")
        self.assertEqual(self.sent(), [(0x80000000, 0x02, 9)])
        self.assertTrue(self.transport.disconnecting)

    def test_unknown_command_id(self) -> None:
        """An unknown command_id gets generic_nack ESME_RINVCMDID with its sequence; the session goes on."""
        self.bind()
        self.session.dataReceived(wire.frame(0x00000077, 42))
        self.assertEqual(self.sent(), [(0x80000000, 0x03, 42)])
        self.session.dataReceived(wire.frame(0x15, 43))
        self.assertEqual(self.sent(), [(0x80000015, 0, 43)])
        self.assertFalse(self.transport.disconnecting)

    def test_partial_pdu_times_out(self) -> None:
        """Half a PDU that is never completed closes the connection after the PDU-read timeout."""
        self.bind()
        self.session.dataReceived(wire.frame(0x15, 5)[:10])
        self.clock.advance(4.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(self.transport.disconnecting)

    def test_undecodable_body_gets_response_with_status(self) -> None:
        """A submit_sm with a 30-character destination gets submit_sm_resp ESME_RINVDSTADR, with no body."""
        self.bind()
        self.session.dataReceived(wire.submit_sm(sequence=9, destination="1" * 30))
        data = self.transport.value()
        self.assertEqual(wire.headers(data), [(0x80000004, 0x0B, 9)])
        self.assertEqual(len(data), 16)
        self.assertEqual(self.core.requests, [])


# The outcome of every (state, command) pair an ESME can send.
CORE = "core"
REQUESTS = {
    "bind_transmitter": 0x02,
    "bind_receiver": 0x01,
    "bind_transceiver": 0x09,
    "enquire_link": 0x15,
    "unbind": 0x06,
    "submit_sm": 0x04,
    "submit_multi": 0x21,
    "query_sm": 0x03,
    "cancel_sm": 0x08,
    "replace_sm": 0x07,
    "data_sm": 0x103,
    "deliver_sm": 0x05,
    "outbind": 0x0B,
    "alert_notification": 0x102,
}
BOUND_COMMON = {
    "bind_transmitter": 0x05,
    "bind_receiver": 0x05,
    "bind_transceiver": 0x05,
    "enquire_link": 0,
    "unbind": 0,
    "deliver_sm": RINVBNDSTS,
    "outbind": "nack",
    "alert_notification": "nack",
    "data_sm": CORE,
}
EXPECTED: dict[str, dict[str, object]] = {
    "OPEN": {
        "bind_transmitter": 0,
        "bind_receiver": 0,
        "bind_transceiver": 0,
        "enquire_link": 0,
        "unbind": RINVBNDSTS,
        "submit_sm": RINVBNDSTS,
        "submit_multi": RINVBNDSTS,
        "query_sm": RINVBNDSTS,
        "cancel_sm": RINVBNDSTS,
        "replace_sm": RINVBNDSTS,
        "data_sm": RINVBNDSTS,
        "deliver_sm": RINVBNDSTS,
        "outbind": "nack",
        "alert_notification": "nack",
    },
    "BOUND_TX": {
        **BOUND_COMMON,
        **{name: CORE for name in ("submit_sm", "submit_multi", "query_sm", "cancel_sm", "replace_sm")},
    },
    "BOUND_RX": {
        **BOUND_COMMON,
        **{name: RINVBNDSTS for name in ("submit_sm", "submit_multi", "query_sm", "cancel_sm", "replace_sm")},
    },
    "BOUND_TRX": {
        **BOUND_COMMON,
        **{name: CORE for name in ("submit_sm", "submit_multi", "query_sm", "cancel_sm", "replace_sm")},
    },
}
BIND_FOR_STATE = {"OPEN": None, "BOUND_TX": 0x02, "BOUND_RX": 0x01, "BOUND_TRX": 0x09}


def minimal_body(name: str) -> bytes:
    """The smallest valid body of each request."""
    z = b"\x00"
    if name.startswith("bind_"):
        return wire.bind(REQUESTS[name])[16:]
    if name in ("submit_sm", "deliver_sm"):
        return wire.submit_sm()[16:]
    if name == "submit_multi":
        return z + b"\x01\x01" + wire.cstr("1") + b"\x01" + b"\x01\x01\x01" + wire.cstr("2") + b"\x00\x00\x00" + z + z + b"\x00\x00\x00\x00\x00"
    if name == "query_sm":
        return wire.cstr("ABC") + b"\x01\x01" + wire.cstr("1")
    if name == "cancel_sm":
        return z + wire.cstr("ABC") + b"\x01\x01" + wire.cstr("1") + b"\x01\x01" + wire.cstr("2")
    if name == "replace_sm":
        return wire.cstr("ABC") + b"\x01\x01" + wire.cstr("1") + z + z + b"\x00\x00\x00"
    if name == "data_sm":
        return z + b"\x01\x01" + wire.cstr("1") + b"\x01\x01" + wire.cstr("2") + b"\x00\x00\x00"
    if name == "outbind":
        return wire.cstr("x") + wire.cstr("y")
    if name == "alert_notification":
        return b"\x01\x01" + wire.cstr("1") + b"\x01\x01" + wire.cstr("2")
    return b""


class StateTableTests(SessionTestCase):
    """Every (state, command) pair of SMPP 3.4 Table 2-1 has a defined outcome."""

    def check(self, state: str, name: str) -> None:
        self.setUp()
        bind = BIND_FOR_STATE[state]
        if bind is not None:
            self.bind(bind)
        self.core.requests.clear()
        command_id = REQUESTS[name]
        self.session.dataReceived(wire.frame(command_id, 77, minimal_body(name)))
        expected = EXPECTED[state][name]
        out = self.sent()
        if expected == CORE:
            self.assertEqual([p.command_id for p in self.core.requests], [command_id], (state, name))
            self.assertEqual(out, [(command_id | 0x80000000, 0, 77)], (state, name))
        elif expected == "nack":
            self.assertEqual(out, [(0x80000000, 0x03, 77)], (state, name))
            self.assertEqual(self.core.requests, [])
        else:
            self.assertEqual(out, [(command_id | 0x80000000, expected, 77)], (state, name))
            self.assertEqual(self.core.requests, [], (state, name))
        self.tearDown()

    def test_every_state_and_command(self) -> None:
        """Each request in each state gets the response, status or core hand-off the table gives."""
        for state in EXPECTED:
            for name in REQUESTS:
                self.check(state, name)

    def test_unbind_from_esme_closes_after_resp(self) -> None:
        """unbind from a bound ESME gets unbind_resp, then the connection closes cleanly."""
        self.bind()
        self.session.dataReceived(wire.frame(0x06, 3))
        self.assertEqual(self.sent(), [(0x80000006, 0, 3)])
        self.assertTrue(self.transport.disconnecting)
        self.session.connectionLost()
        self.assertEqual(self.core.lost, [True])
        self.assertEqual(self.core.unbinds, 1)

    def test_strict_instance_refuses_enquire_link_before_bind(self) -> None:
        """On a strict instance an enquire_link before bind gets ESME_RINVBNDSTS."""
        self.instance.strict = True
        self.session.dataReceived(wire.frame(0x15, 3))
        self.assertEqual(self.sent(), [(0x80000015, RINVBNDSTS, 3)])

    def test_failed_bind_leaves_session_open(self) -> None:
        """A refused bind keeps the session in OPEN, so submit_sm still gets ESME_RINVBNDSTS."""
        self.core.bind_status = int(CommandStatus.ESME_RINVPASWD)
        self.session.dataReceived(wire.bind())
        self.assertEqual(self.sent(), [(0x80000009, 0x0E, 1)])
        self.session.dataReceived(wire.submit_sm(sequence=2))
        self.assertEqual(self.sent(), [(0x80000004, RINVBNDSTS, 2)])


class ReplyTests(SessionTestCase):
    def test_delayed_reply_and_on_sent(self) -> None:
        """A reply with a delay is written only when the clock reaches it; on_sent runs right after."""
        self.bind()
        calls: list[bytes] = []
        self.core.next_reply = None

        def request(session: Any, pdu: PDU) -> Reply:
            return Reply(
                make_response(pdu, message_id="AB"), delay=0.5, on_sent=lambda: calls.append(self.transport.value())
            )

        self.core.request = request  # type: ignore[method-assign]
        self.session.dataReceived(wire.submit_sm(sequence=5))
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0.5)
        self.assertEqual(wire.headers(calls[0]), [(0x80000004, 0, 5)])

    def test_inbound_window_full(self) -> None:
        """With two delayed replies outstanding, a third request gets ESME_RMSGQFUL at once."""
        self.bind()
        self.core.next_reply = Reply(PDU(0x80000004, 0, 0, {"message_id": "X"}), delay=1.0)
        self.session.dataReceived(wire.submit_sm(sequence=5) + wire.submit_sm(sequence=6) + wire.submit_sm(sequence=7))
        self.assertEqual(self.sent(), [(0x80000004, 0x14, 7)])
        self.clock.advance(1.0)
        self.assertEqual(len(self.sent()), 2)

    def test_never_answered(self) -> None:
        """A reply without a PDU writes nothing, ever."""
        self.bind()
        self.core.next_reply = Reply(None)
        self.session.dataReceived(wire.submit_sm(sequence=5))
        self.clock.advance(100)
        self.assertNotIn((0x80000004, 0, 5), self.sent())

    def test_reply_then_reset(self) -> None:
        """A reply followed by a reset aborts the connection after writing."""
        self.bind()
        self.core.next_reply = Reply(PDU(0x80000004, 5, 0x08), then=AfterReply.reset)
        self.session.dataReceived(wire.submit_sm(sequence=5))
        self.assertEqual(self.sent(), [(0x80000004, 0x08, 5)])
        self.assertTrue(self.transport.disconnected)

    def test_reply_then_unbind(self) -> None:
        """A reply followed by unbind sends the response, then an unbind request."""
        self.bind()
        self.core.next_reply = Reply(PDU(0x80000004, 5, 0x08), then=AfterReply.unbind)
        self.session.dataReceived(wire.submit_sm(sequence=5))
        out = self.sent()
        self.assertEqual(out[0], (0x80000004, 0x08, 5))
        self.assertEqual(out[1][:2], (0x06, 0))


class OutboundTests(SessionTestCase):
    def deliver_sm(self) -> PDU:
        return make_pdu(CommandId.deliver_sm, 0, source_addr="1", destination_addr="2", esm_class=4, short_message=b"x")

    def test_outbound_window(self) -> None:
        """With a window of 2, a third deliver_sm waits until one of the first two is answered."""
        self.bind()
        results: list[int] = []
        for _ in range(3):
            self.session.deliver(self.deliver_sm()).addCallbacks(
                lambda pdu: results.append(pdu.command_status), lambda failure: None
            )
        out = self.sent()
        self.assertEqual([h[0] for h in out], [0x05, 0x05])
        first_seq = out[0][2]
        self.session.dataReceived(wire.frame(0x80000005, first_seq, b"\x00"))
        self.assertEqual(results, [0])
        self.assertEqual([h[0] for h in self.sent()], [0x05])
        self.assertEqual(self.session.outbound_pending(), 2)

    def test_outbound_window_of_the_scenario(self) -> None:
        """A scenario's ``window.outbound`` of 3 lets a third deliver_sm out before any answer, where the settings say 2."""
        self.instance.outbound_window = 3
        self.bind()
        for _ in range(4):
            self.session.deliver(self.deliver_sm()).addErrback(lambda failure: None)
        self.assertEqual([h[0] for h in self.sent()], [0x05, 0x05, 0x05])
        self.assertEqual(self.session.outbound_pending(), 4)

    def test_outbound_queue_limit(self) -> None:
        """Beyond the window and the queue limit, a delivery fails with queue_full."""
        self.bind()
        failures: list[str] = []
        for _ in range(6):
            self.session.deliver(self.deliver_sm()).addErrback(lambda f: failures.append(f.value.reason))
        self.assertEqual(failures, ["queue_full"])

    def test_response_timeout(self) -> None:
        """A deliver_sm unanswered within the response timer fails with timeout; the session stays."""
        self.bind()
        failures: list[str] = []
        self.session.deliver(self.deliver_sm()).addErrback(lambda f: failures.append(f.trap(DeliveryFailed) and f.value.reason))
        self.clock.advance(9.9)
        self.assertEqual(failures, [])
        self.clock.advance(0.2)
        self.assertEqual(failures, ["timeout"])
        self.assertFalse(self.transport.disconnecting)

    def test_deliver_to_transmitter_fails(self) -> None:
        """A transmitter bind cannot be delivered to."""
        self.bind(0x02)
        failures: list[str] = []
        self.session.deliver(self.deliver_sm()).addErrback(lambda f: failures.append(f.value.reason))
        self.assertEqual(failures, ["closed"])
        self.assertEqual(self.transport.value(), b"")

    def test_pending_deliveries_fail_on_close(self) -> None:
        """Deliveries in flight or queued fail with 'closed' when the connection drops, and the core hears it was not clean."""
        self.bind()
        failures: list[str] = []
        for _ in range(3):
            self.session.deliver(self.deliver_sm()).addErrback(lambda f: failures.append(f.value.reason))
        self.session.connectionLost()
        self.assertEqual(failures, ["closed"] * 3)
        self.assertEqual(self.core.lost, [False])

    def test_smsc_unbind_waits_for_resp(self) -> None:
        """An SMSC-initiated unbind closes only once unbind_resp arrives."""
        self.bind()
        done: list[None] = []
        self.session.unbind().addCallback(done.append)
        (command_id, _, seq), = self.sent()
        self.assertEqual(command_id, 0x06)
        self.assertFalse(self.transport.disconnecting)
        self.session.dataReceived(wire.frame(0x80000006, seq))
        self.assertTrue(self.transport.disconnecting)
        self.session.connectionLost()
        self.assertEqual(done, [None])
        self.assertEqual(self.core.lost, [True])

    def test_smsc_unbind_unanswered(self) -> None:
        """An unanswered SMSC unbind closes the connection after the unbind timeout."""
        self.bind()
        self.session.unbind()
        self.sent()
        self.clock.advance(1.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnecting)


class TimerTests(SessionTestCase):
    def test_session_init_timer(self) -> None:
        """A connection that never binds is closed after the session-init timeout."""
        self.clock.advance(29.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnecting)

    def test_bind_cancels_session_init_timer(self) -> None:
        """A bound session is not closed by the session-init timer."""
        self.bind()
        self.clock.advance(31)
        self.assertFalse(self.transport.disconnecting)

    def test_enquire_link_after_idle(self) -> None:
        """After the idle interval the SMSC sends enquire_link; an answer keeps the session."""
        self.bind()
        self.clock.advance(59.9)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0.1)
        (command_id, _, seq), = self.sent()
        self.assertEqual(command_id, 0x15)
        self.session.dataReceived(wire.frame(0x80000015, seq))
        self.clock.advance(30)
        self.assertFalse(self.transport.disconnecting)

    def test_enquire_link_unanswered_closes(self) -> None:
        """An enquire_link unanswered past the response timer closes the session."""
        self.bind()
        self.clock.advance(60)
        self.sent()
        self.clock.advance(10)
        self.assertTrue(self.transport.disconnecting)

    def test_traffic_postpones_enquire_link(self) -> None:
        """PDUs from the ESME reset the idle interval."""
        self.bind()
        self.clock.advance(50)
        self.session.dataReceived(wire.frame(0x15, 9))
        self.sent()
        self.clock.advance(50)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(10)
        self.assertEqual(self.sent()[0][0], 0x15)

    def test_blackhole_instance_answers_nothing(self) -> None:
        """While the instance is a black hole, nothing is answered and no enquire_link is sent."""
        self.bind()
        self.instance.start_outage("blackhole")
        self.session.dataReceived(wire.frame(0x15, 9))
        self.clock.advance(200)
        self.assertEqual(self.transport.value(), b"")

    def test_slow_instance_delays_every_response(self) -> None:
        """An instance with added latency answers enquire_link only after it."""
        self.bind()
        self.instance.latency = 2.0
        self.session.dataReceived(wire.frame(0x15, 9))
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(2.0)
        self.assertEqual(self.sent(), [(0x80000015, 0, 9)])

    def test_reject_binds_mode(self) -> None:
        """An instance rejecting binds answers bind with its configured status."""
        self.instance.start_outage("reject-binds")
        self.session.dataReceived(wire.bind())
        self.assertEqual(self.sent(), [(0x80000009, 0x0D, 1)])

    def test_bind_hang_mode(self) -> None:
        """An instance in bind-hang never answers a bind."""
        self.instance.start_outage("bind-hang")
        self.session.dataReceived(wire.bind())
        self.assertEqual(self.transport.value(), b"")


class FramingRecoveryTests(SessionTestCase):
    def test_sound_pdus_before_a_bad_length_are_answered(self) -> None:
        """PDUs that arrived in the same read before a corrupt command_length still get their answers."""
        self.bind()
        bad = b"\x00\x00\x00\x04\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x08"
        self.session.dataReceived(wire.frame(0x15, 6) + wire.frame(0x15, 7) + bad)
        self.assertEqual(self.sent(), [(0x80000015, 0, 6), (0x80000015, 0, 7), (0x80000000, 0x02, 8)])
        self.assertTrue(self.transport.disconnecting)


class InternalErrorTests(SessionTestCase):
    def test_core_failure_answers_system_error(self) -> None:
        """A failure inside the core gets submit_sm_resp ESME_RSYSERR; the session stays up and logs it."""
        self.bind()

        def broken(session: Any, pdu: PDU) -> Reply:
            raise RuntimeError("boom")

        self.core.request = broken  # type: ignore[method-assign]
        self.session.dataReceived(wire.submit_sm(sequence=5))
        self.assertEqual(self.sent(), [(0x80000004, 0x08, 5)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.session.dataReceived(wire.frame(0x15, 6))
        self.assertEqual(self.sent(), [(0x80000015, 0, 6)])


class SlowUnbindTests(SessionTestCase):
    def test_unbind_on_slow_instance_is_answered_before_close(self) -> None:
        """On an instance with added latency, an ESME's unbind still gets its unbind_resp, then the close."""
        self.bind()
        self.instance.latency = 0.5
        self.session.dataReceived(wire.frame(0x06, 9))
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.5)
        self.assertEqual(self.sent(), [(0x80000006, 0, 9)])
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.core.unbinds, 1)


class LongBlackholeTests(SessionTestCase):
    def test_blackhole_longer_than_inactivity_stays_silent(self) -> None:
        """A black hole lasting longer than the inactivity timeout sends no unbind and keeps the connection."""
        self.bind()
        self.instance.start_outage("blackhole")
        self.clock.advance(self.settings.inactivity_timeout * 3)
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.transport.disconnecting)


class WriteBatchingTests(SessionTestCase):
    """The answers to one read leave in one write, in order; later writes go at once."""

    def setUp(self) -> None:
        super().setUp()
        self.writes: list[bytes] = []
        write = self.transport.write

        def recording(data: bytes) -> None:
            self.writes.append(data)
            write(data)

        self.transport.write = recording  # type: ignore[method-assign]

    def test_answers_to_one_read_in_one_write(self) -> None:
        """A bind, three submit_sm and an enquire_link in one read are answered in one write, in order."""
        data = wire.bind() + b"".join(wire.submit_sm(sequence=seq) for seq in (2, 3, 4)) + wire.frame(0x15, 5)
        self.session.dataReceived(data)
        self.assertEqual(len(self.writes), 1)
        self.assertEqual(
            self.sent(),
            [(0x80000009, 0, 1), (0x80000004, 0, 2), (0x80000004, 0, 3), (0x80000004, 0, 4), (0x80000015, 0, 5)],
        )
        self.assertEqual(self.session.counters["pdus_out"], 5)

    def test_delivery_started_by_a_reply_follows_it(self) -> None:
        """A deliver_sm sent while a read is handled (by a bind_resp's on_sent) follows the bind_resp in one write."""
        deliver = make_pdu(CommandId.deliver_sm, 0, source_addr="1", destination_addr="2", esm_class=4)
        self.core.bind = lambda session, pdu: Reply(  # type: ignore[method-assign]
            make_response(pdu, system_id="SMPP1"), on_sent=lambda: session.deliver(deliver).addErrback(lambda _: None)
        )
        self.session.dataReceived(wire.bind() + wire.frame(0x15, 2))
        self.assertEqual(len(self.writes), 1)
        out = self.sent()
        self.assertEqual([h[0] for h in out], [0x80000009, 0x05, 0x80000015])

    def test_delayed_reply_and_deliveries_written_at_once(self) -> None:
        """A reply held back by latency, and a delivery outside any read, each go out in their own write when made."""
        self.bind()
        self.writes.clear()
        self.instance.latency = 0.5
        self.session.dataReceived(wire.submit_sm(sequence=5))
        self.assertEqual(self.writes, [])
        self.clock.advance(0.5)
        self.assertEqual(len(self.writes), 1)
        self.assertEqual(self.sent(), [(0x80000004, 0, 5)])
        self.session.deliver(make_pdu(CommandId.deliver_sm, 0, short_message=b"x")).addErrback(lambda _: None)
        self.assertEqual(len(self.writes), 2)
        self.assertEqual([h[0] for h in self.sent()], [0x05])

    def test_unbind_in_a_read_answers_everything_before_closing(self) -> None:
        """Submits and an unbind in one read: every answer is written before the close; what follows is ignored."""
        self.bind()
        self.writes.clear()
        self.session.dataReceived(wire.submit_sm(sequence=5) + wire.frame(0x06, 6) + wire.submit_sm(sequence=7))
        self.assertEqual(len(self.writes), 1)
        self.assertEqual(self.sent(), [(0x80000004, 0, 5), (0x80000006, 0, 6)])
        self.assertTrue(self.transport.disconnecting)

    def test_answers_pushed_to_the_socket_at_once(self) -> None:
        """On a transport that can write now (TCP's doWrite), the answers of a read are pushed before it returns."""
        pushed: list[int] = []
        self.transport.doWrite = lambda: pushed.append(len(self.writes))  # type: ignore[attr-defined]
        self.session.dataReceived(wire.bind() + wire.frame(0x15, 2))
        self.assertEqual(pushed, [1])
        self.transport.disconnecting = True  # closing already: its last write is the reactor's
        self.session.dataReceived(wire.frame(0x15, 3))
        self.assertEqual((pushed, len(self.writes)), ([1], 2))

    def test_reset_after_the_answers_of_the_read(self) -> None:
        """A reply with then: reset within a read: the answers so far, its own included, are written before the RST."""
        self.bind()
        replies = iter(
            [Reply(PDU(0x80000004, 5, 0, {"message_id": "A"})), Reply(PDU(0x80000004, 6, 0x08), then=AfterReply.reset)]
        )
        self.core.request = lambda session, pdu: next(replies)  # type: ignore[method-assign]
        self.session.dataReceived(wire.submit_sm(sequence=5) + wire.submit_sm(sequence=6) + wire.submit_sm(sequence=7))
        self.assertEqual(self.sent(), [(0x80000004, 0, 5), (0x80000004, 0x08, 6)])
        self.assertTrue(self.transport.disconnected)


class RecordingWaiter:
    """A waiter for send_delivery that records what it is told."""

    def __init__(self) -> None:
        self.results: list[Any] = []

    def callback(self, result: PDU) -> None:
        self.results.append(result.command_status)

    def errback(self, fail: Exception) -> None:
        self.results.append(fail)


class SendDeliveryTests(SessionTestCase):
    def deliver_sm(self) -> PDU:
        return make_pdu(CommandId.deliver_sm, 0, source_addr="1", destination_addr="2", esm_class=4, short_message=b"x")

    def test_waiter_gets_the_response(self) -> None:
        """A delivery sent with a waiter goes through the same window; the waiter hears the deliver_sm_resp status."""
        self.bind()
        waiters = [RecordingWaiter() for _ in range(3)]
        for waiter in waiters:
            self.session.send_delivery(self.deliver_sm(), waiter)
        out = self.sent()
        self.assertEqual([h[0] for h in out], [0x05, 0x05])  # a window of 2
        self.session.dataReceived(wire.frame(0x80000005, out[0][2], b"\x00", status=0x45))
        self.assertEqual(waiters[0].results, [0x45])
        self.assertEqual([h[0] for h in self.sent()], [0x05])

    def test_waiter_hears_failures(self) -> None:
        """Past the queue limit, or on a closed session, the waiter gets DeliveryFailed with the reason."""
        self.bind()
        waiters = [RecordingWaiter() for _ in range(6)]
        for waiter in waiters:
            self.session.send_delivery(self.deliver_sm(), waiter)
        self.assertEqual([w.results[0].reason for w in waiters if w.results], ["queue_full"])
        self.session.connectionLost()
        self.assertEqual([w.results[0].reason for w in waiters], ["closed"] * 5 + ["queue_full"])
        late = RecordingWaiter()
        self.session.send_delivery(self.deliver_sm(), late)
        self.assertEqual(late.results[0].reason, "closed")


class LostReplyTests(SessionTestCase):
    def test_delayed_reply_lost_to_a_close_still_runs_on_sent(self) -> None:
        """
        An accepted submit whose delayed submit_sm_resp never leaves (the
        connection ended first) still starts its lifecycle: on_sent runs, so
        the message cannot stay ENROUTE for ever.
        """
        self.bind()
        started: list[bool] = []
        self.core.next_reply = Reply(
            PDU(0x80000004, 5, 0, {"message_id": "AB"}), delay=1.0, on_sent=lambda: started.append(True)
        )
        self.session.dataReceived(wire.submit_sm(sequence=5))
        self.session.connectionLost()
        self.assertEqual(started, [True])
        self.assertEqual(self.transport.value(), b"")
