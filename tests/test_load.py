"""
The load generator ESME (``smsc-sim-load``): its protocol handling and its
counting, never its speed.

Three layers: the command line and the wire templates (no I/O); the run
driven byte by byte on a ``MemoryReactorClock`` (deterministic); and whole
runs on 127.0.0.1 port 0 with the real reactor, against a tiny stub SMSC and
against the simulator itself.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.load import ESMEProtocol, LoadRun, LoadSettings, parse_args, run_load
from smsc_sim.smpp.codec import decode, encode
from smsc_sim.smpp.constants import CommandId, CommandStatus, Tag
from smsc_sim.smpp.framing import SMPPFramer
from smsc_sim.smpp.pdu import PDU, make_pdu
from tests import wire
from tests.ports import refusing_port

_C = CommandId
THROTTLED = int(CommandStatus.ESME_RTHROTTLED)


def connect(factory: Any) -> ESMEProtocol:
    """The generator's protocol for one connection the run asked the fake reactor for."""
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2775))
    assert isinstance(protocol, ESMEProtocol)
    return protocol


def frames(data: bytes) -> list[PDU]:
    """Every PDU in a byte string, decoded."""
    return [decode(frame) for frame in SMPPFramer(70_000).feed(data)]


def receipt(sequence: int, message_id: str, with_tlv: bool = True) -> bytes:
    """A deliver_sm receipt for ``message_id``."""
    text = f"id:{message_id} sub:001 dlvrd:001 submit date:2401011200 done date:2401011200 stat:DELIVRD err:000 text:"
    tlvs = {int(Tag.receipted_message_id): message_id.encode() + b"\x00"} if with_tlv else {}
    return encode(make_pdu(_C.deliver_sm, sequence, esm_class=0x04, short_message=text.encode(), tlvs=tlvs))


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------


class ParseArgsTests(SynchronousTestCase):
    """What the options turn into."""

    def test_defaults(self) -> None:
        """With no options: one transceiver to 127.0.0.1:2775 as smppclient1, window 10, 10 seconds flat out."""
        settings, json_out = parse_args([])
        self.assertEqual(settings.targets, (("127.0.0.1", 2775),))
        self.assertEqual((settings.system_id, settings.password, settings.bind), ("smppclient1", "password", "trx"))
        self.assertEqual((settings.sessions, settings.window, settings.rate), (1, 10, 0.0))
        self.assertEqual((settings.count, settings.duration, settings.receipts), (0, 10.0, False))
        self.assertIsNone(json_out)

    def test_ports_repeatable_and_listed(self) -> None:
        """--port repeats and --ports adds a comma-separated list; sessions go round all of them."""
        settings, _ = parse_args(["--host", "10.0.0.1", "--port", "1", "--ports", "2, 3", "--count", "5"])
        self.assertEqual(settings.targets, (("10.0.0.1", 1), ("10.0.0.1", 2), ("10.0.0.1", 3)))
        self.assertEqual((settings.count, settings.duration), (5, 0.0))

    def test_every_option(self) -> None:
        """Each documented option lands in the settings."""
        settings, json_out = parse_args(
            ["--system-id", "esme", "--password", "pw", "--bind", "tx+rx", "--sessions", "4", "--window", "50",
             "--rate", "1000", "--duration", "3", "--receipts", "--text", "hi", "--json-out", "/tmp/x.json",
             "--enquire-link", "5", "--connect-concurrency", "7", "--unique"]
        )  # fmt: skip
        self.assertEqual((settings.system_id, settings.password, settings.bind), ("esme", "pw", "tx+rx"))
        self.assertEqual((settings.sessions, settings.window, settings.rate), (4, 50, 1000.0))
        self.assertEqual((settings.duration, settings.receipts, settings.text), (3.0, True, "hi"))
        self.assertEqual((settings.enquire_link, settings.connect_concurrency, settings.unique), (5.0, 7, True))
        self.assertEqual(json_out, "/tmp/x.json")

    def test_bad_values_are_usage_errors(self) -> None:
        """A bad port list, a zero window or connect concurrency, an unknown bind mode, a negative rate or
        enquire_link interval, or a text too long once --unique adds its digits exits with status 2 (argparse)."""
        for argv in (["--ports", "a,b"], ["--window", "0"], ["--bind", "rx"], ["--port", "70000"], ["--rate", "-1"],
                     ["--enquire-link", "-1"], ["--connect-concurrency", "0"], ["--unique", "--text", "x" * 250]):  # fmt: skip
            with self.assertRaises(SystemExit) as caught:
                parse_args(argv)
            self.assertEqual(caught.exception.code, 2, argv)


# ---------------------------------------------------------------------------
# the run, byte by byte, on a fake reactor
# ---------------------------------------------------------------------------


class RunTests(SynchronousTestCase):
    """A run whose connections are StringTransports and whose time is a Clock."""

    def start(self, **options: Any) -> tuple[LoadRun, list[tuple[ESMEProtocol, StringTransport]]]:
        """Start a run and connect each connection it asks for to a StringTransport."""
        self.reactor = MemoryReactorClock()
        self.results: list[dict[str, Any]] = []
        settings = LoadSettings(targets=(("127.0.0.1", 2775),), progress=0, **options)
        run = LoadRun(self.reactor, settings)
        run.start().addCallback(self.results.append)
        conns = []
        for host, port, factory, _timeout, _bind in self.reactor.tcpClients:
            self.assertEqual((host, port), ("127.0.0.1", 2775))
            protocol = connect(factory)
            transport = StringTransport()
            protocol.makeConnection(transport)
            conns.append((protocol, transport))
        return run, conns

    def bind_all(self, conns: list[tuple[ESMEProtocol, StringTransport]]) -> None:
        """Answer every bind with ESME_ROK."""
        for protocol, transport in conns:
            [bind] = frames(transport.value())
            transport.clear()
            protocol.dataReceived(encode(make_pdu(bind.command_id | 0x80000000, bind.sequence_number, system_id="S")))

    def test_binds_then_fills_the_window_with_patched_sequence_numbers(self) -> None:
        """Each session binds as a transceiver, then writes exactly --window submit_sm, numbered one by one."""
        run, conns = self.start(sessions=2, window=3, count=100, text="hello")
        self.assertEqual(len(conns), 2)
        for _, transport in conns:
            [bind] = frames(transport.value())
            self.assertEqual(bind.command_id, _C.bind_transceiver)
            self.assertEqual((bind.params["system_id"], bind.params["password"]), ("smppclient1", "password"))
        self.bind_all(conns)
        for _, transport in conns:
            submits = frames(transport.value())
            self.assertEqual([p.sequence_number for p in submits], [2, 3, 4])
            self.assertEqual({p.params["short_message"] for p in submits}, {b"hello"})
            self.assertEqual({p.params["registered_delivery"] for p in submits}, {0})
        self.assertEqual(run.submitted, 6)

    def test_unique_gives_every_message_its_own_destination_and_text(self) -> None:
        """With --unique, the last 8 digits of the destination and 8 digits before the text count up
        over all sessions, in Latin-1 and in UCS-2 alike; the rest of each submit_sm stays as given."""
        for text, coding, encoded in (("hi", 0, lambda t: t.encode("latin-1")), ("\u20ac", 8, lambda t: t.encode("utf-16-be"))):
            run, conns = self.start(sessions=2, window=2, count=100, text=text, destination="447700900002", unique=True)
            self.bind_all(conns)
            submits = [pdu for _, transport in conns for pdu in frames(transport.value())]
            self.assertEqual([p.params["destination_addr"] for p in submits],
                             ["4477" + f"{n:08d}" for n in (1, 2, 3, 4)])  # fmt: skip
            self.assertEqual([p.params["short_message"] for p in submits], [encoded(f"{n:08d} {text}") for n in (1, 2, 3, 4)])
            self.assertEqual({(p.params["data_coding"], p.params["source_addr"]) for p in submits}, {(coding, "447700900001")})

    def test_counts_responses_latency_and_errors_by_status_name(self) -> None:
        """Each submit_sm_resp is counted with its latency; an error status is counted under its name."""
        run, conns = self.start(window=2, count=2)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        self.reactor.advance(0.25)
        protocol.dataReceived(
            encode(make_pdu(_C.submit_sm_resp, 2, message_id="A1"))
            + encode(PDU(_C.submit_sm_resp, 3, THROTTLED))
        )
        unbind = frames(transport.value())[-1]
        self.assertEqual((unbind.command_id, unbind.sequence_number), (_C.unbind, 4))
        protocol.dataReceived(encode(make_pdu(_C.unbind_resp, 4)))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost()
        [result] = self.results
        self.assertEqual((result["submitted"], result["answered"], result["accepted"]), (2, 2, 1))
        self.assertEqual(result["errors"], {"ESME_RTHROTTLED": 1})
        self.assertEqual(result["latency_ms"]["p50"], 250.0)
        self.assertEqual(result["latency_ms"]["max"], 250.0)

    def test_receipts_matched_by_message_id_even_before_their_response(self) -> None:
        """A receipt is matched to its submit by message id, also when it overtakes the submit_sm_resp;
        a receipt for an unknown id is unmatched; every deliver_sm is answered with its sequence number."""
        run, conns = self.start(window=2, count=2, receipts=True, receipt_timeout=5)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        self.assertEqual({p.params["registered_delivery"] for p in frames(transport.value())}, {1})
        transport.clear()
        early = receipt(7, "B2", with_tlv=False)
        protocol.dataReceived(early + encode(make_pdu(_C.submit_sm_resp, 2, message_id="A1")))
        protocol.dataReceived(encode(make_pdu(_C.submit_sm_resp, 3, message_id="B2")))
        self.assertEqual(run.phase, "receipts")
        protocol.dataReceived(receipt(8, "ZZ") + receipt(9, "A1"))
        answers = frames(transport.value())
        self.assertEqual(
            [(p.command_id, p.sequence_number, p.command_status) for p in answers[:3]],
            [(_C.deliver_sm_resp, 7, 0), (_C.deliver_sm_resp, 8, 0), (_C.deliver_sm_resp, 9, 0)],
        )
        self.assertEqual(answers[3].command_id, _C.unbind)
        protocol.connectionLost()
        [result] = self.results
        self.assertEqual(result["receipts"] | {"per_s": 0}, {"expected": 2, "received": 2, "missing": 0,
                                                              "unmatched": 1, "per_s": 0})

    def test_missing_receipts_reported_after_the_receipt_timeout(self) -> None:
        """Receipts that never come are reported as missing once --receipt-timeout has passed."""
        run, conns = self.start(window=1, count=1, receipts=True, receipt_timeout=5)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        protocol.dataReceived(encode(make_pdu(_C.submit_sm_resp, 2, message_id="A1")))
        self.reactor.advance(4.9)
        self.assertEqual(self.results, [])
        self.reactor.advance(0.1)
        protocol.connectionLost()
        [result] = self.results
        self.assertEqual((result["receipts"]["expected"], result["receipts"]["missing"]), (1, 1))

    def test_mo_enquire_link_and_unknown_requests_are_answered(self) -> None:
        """An MO deliver_sm is counted and answered, enquire_link gets enquire_link_resp,
        and a request an ESME does not take gets generic_nack ESME_RINVCMDID."""
        run, conns = self.start(window=1, count=1)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        transport.clear()
        mo = encode(make_pdu(_C.deliver_sm, 11, short_message=b"hi"))
        protocol.dataReceived(mo + wire.frame(_C.enquire_link, 12) + wire.frame(_C.query_sm, 13, b"x\x00\x00\x00\x00"))
        self.assertEqual(
            [(p.command_id, p.sequence_number, p.command_status) for p in frames(transport.value())],
            [(_C.deliver_sm_resp, 11, 0), (_C.enquire_link_resp, 12, 0), (_C.generic_nack, 13, 3)],
        )
        self.assertEqual((run.mo, run.enquire_links, run.receipts), (1, 1, 0))

    def test_rate_spreads_submits_over_time(self) -> None:
        """With --rate 100 and a large window, about one submit goes per 10 ms, not the whole window."""
        run, conns = self.start(window=1000, rate=100, duration=1)
        self.bind_all(conns)
        self.assertEqual(run.submitted, 0)
        for _ in range(20):
            self.reactor.advance(0.005)
        self.assertIn(run.submitted, (9, 10, 11))
        self.assertEqual(len(frames(conns[0][1].value())), run.submitted)

    def test_duration_stops_submitting_and_unanswered_are_counted(self) -> None:
        """After --duration no more submits go; responses that never come count as unanswered."""
        run, conns = self.start(window=3, duration=2, response_timeout=1)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        self.reactor.advance(2)
        self.assertEqual(run.phase, "draining")
        self.reactor.advance(1)
        self.assertEqual(frames(transport.value())[-1].command_id, _C.unbind)
        protocol.connectionLost()
        [result] = self.results
        self.assertEqual((result["submitted"], result["answered"], result["unanswered"]), (3, 0, 3))

    def test_transmitter_and_receiver_per_session(self) -> None:
        """--bind tx+rx opens a transmitter and a receiver per session; only the transmitter submits."""
        run, conns = self.start(bind="tx+rx", sessions=2, window=2, count=4)
        self.assertEqual(
            [frames(t.value())[0].command_id for _, t in conns],
            [_C.bind_transmitter, _C.bind_receiver] * 2,
        )
        self.bind_all(conns)
        self.assertEqual([len(frames(t.value())) for _, t in conns], [2, 0, 2, 0])
        self.assertEqual(run.sessions_bound, 2)

    def test_refused_bind_ends_the_run_with_the_status(self) -> None:
        """A bind refused with ESME_RINVPASWD is reported by name, and the run ends with no session."""
        run, conns = self.start(count=5)
        [(protocol, transport)] = conns
        protocol.dataReceived(encode(PDU(_C.bind_transceiver_resp, 1, int(CommandStatus.ESME_RINVPASWD))))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost()
        [result] = self.results
        self.assertEqual(result["session_errors"], {"bind ESME_RINVPASWD": 1, "no session bound": 1})
        self.assertEqual((result["sessions_bound"], result["submitted"]), (0, 0))

    def test_generic_nack_frees_the_window_and_is_counted(self) -> None:
        """A generic_nack for a submit is counted under its status and its window slot is reused."""
        run, conns = self.start(window=1, count=2)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        transport.clear()
        protocol.dataReceived(encode(PDU(_C.generic_nack, 2, int(CommandStatus.ESME_RINVCMDLEN))))
        self.assertEqual([p.sequence_number for p in frames(transport.value())], [3])
        self.assertEqual(run.errors, {"generic_nack ESME_RINVCMDLEN": 1})

    def test_listen_only_counts_mo_and_never_submits(self) -> None:
        """--listen-only binds, answers and counts MO for --duration, and sends no submit_sm."""
        run, conns = self.start(listen_only=True, duration=2)
        self.bind_all(conns)
        [(protocol, transport)] = conns
        for sequence in (5, 6):
            self.reactor.advance(0.5)
            protocol.dataReceived(encode(make_pdu(_C.deliver_sm, sequence, short_message=b"MO")))
        self.reactor.advance(1)
        sent = frames(transport.value())
        self.assertEqual([p.command_id for p in sent], [_C.deliver_sm_resp, _C.deliver_sm_resp, _C.unbind])
        protocol.connectionLost()
        [result] = self.results
        self.assertEqual((result["sessions_bound"], result["submitted"], result["mo_received"]), (1, 0, 2))
        self.assertEqual(result["mo_per_s"], 2.0)

    def test_enquire_link_every_interval_on_every_session(self) -> None:
        """With --enquire-link 1, each of 4 bound sessions writes one enquire_link per second, spread
        over the second; each enquire_link_resp is counted with its round trip."""
        run, conns = self.start(sessions=4, listen_only=True, duration=2.05, enquire_link=1.0)
        self.bind_all(conns)
        for _ in range(10):
            self.reactor.advance(0.1)
        sent = [[p for p in frames(t.value()) if p.command_id == _C.enquire_link] for _, t in conns]
        self.assertEqual([len(pdus) for pdus in sent], [1, 1, 1, 1])
        for (protocol, _), [pdu] in zip(conns, sent):
            protocol.dataReceived(encode(make_pdu(_C.enquire_link_resp, pdu.sequence_number)))
        for _, transport in conns:
            transport.clear()
        for _ in range(10):
            self.reactor.advance(0.1)
        self.assertEqual([len(frames(t.value())) for _, t in conns], [1, 1, 1, 1])  # one more each, unanswered
        self.reactor.advance(0.1)  # the end: unbind
        for protocol, transport in conns:
            unbind = frames(transport.value())[-1]
            self.assertEqual(unbind.command_id, _C.unbind)
            protocol.dataReceived(encode(make_pdu(_C.unbind_resp, unbind.sequence_number)))
            protocol.connectionLost()
        [result] = self.results
        self.assertEqual((result["enquire_links"]["sent"], result["enquire_links"]["answered"]), (8, 4))
        self.assertIsNotNone(result["enquire_links"]["latency_ms"]["p99"])

    def test_connections_open_a_few_at_a_time(self) -> None:
        """With --connect-concurrency 2, 5 sessions are opened two at a time: the next connection is
        asked for only once one of the first has bound or been refused."""
        reactor = MemoryReactorClock()
        run = LoadRun(reactor, LoadSettings(targets=(("h", 1),), sessions=5, connect_concurrency=2, count=1, progress=0))
        run.start()
        self.assertEqual(len(reactor.tcpClients), 2)
        first, second = (connect(client[2]) for client in reactor.tcpClients)
        for protocol in (first, second):
            protocol.makeConnection(StringTransport())
        first.dataReceived(encode(make_pdu(_C.bind_transceiver_resp, 1)))
        self.assertEqual(len(reactor.tcpClients), 3)
        second.dataReceived(encode(make_pdu(_C.bind_transceiver_resp, 1, CommandStatus.ESME_RALYBND)))
        self.assertEqual(len(reactor.tcpClients), 4)
        reactor.tcpClients[2][2].clientConnectionFailed(reactor.connectors[2], Failure(ConnectionRefusedError()))
        self.assertEqual(len(reactor.tcpClients), 5)
        self.assertEqual(run.session_errors, {"bind ESME_RALYBND": 1, "connect: ": 1})

    def test_a_connection_made_after_the_end_is_unbound(self) -> None:
        """A session whose TCP connection completes only after the run ended binds and is unbound at once,
        so the run still completes."""
        reactor = MemoryReactorClock()
        results: list[dict[str, Any]] = []
        run = LoadRun(reactor, LoadSettings(targets=(("h", 1),), sessions=2, count=1, response_timeout=1, progress=0))
        run.start().addCallback(results.append)
        [first_factory, late_factory] = [client[2] for client in reactor.tcpClients]
        first, transport = connect(first_factory), StringTransport()
        first.makeConnection(transport)
        first.dataReceived(encode(make_pdu(_C.bind_transceiver_resp, 1)))
        reactor.advance(1)  # the bind deadline: the run begins with the one bound session
        first.dataReceived(encode(make_pdu(_C.submit_sm_resp, 2, message_id="A1")))
        self.assertEqual(frames(transport.value())[-1].command_id, _C.unbind)
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(results, [])
        late, late_transport = connect(late_factory), StringTransport()
        late.makeConnection(late_transport)
        late_transport.clear()
        late.dataReceived(encode(make_pdu(_C.bind_transceiver_resp, 1)))
        self.assertEqual([p.command_id for p in frames(late_transport.value())], [_C.unbind])
        late.connectionLost(Failure(ConnectionDone()))
        [result] = results
        self.assertEqual((result["sessions_bound"], result["accepted"]), (1, 1))

    def test_progress_lines(self) -> None:
        """Every --progress seconds a line with the counts goes to the progress stream."""
        reactor = MemoryReactorClock()
        stream = io.StringIO()
        run = LoadRun(reactor, LoadSettings(targets=(("h", 1),), duration=5, progress=1.0), stream)
        run.start()
        [client] = reactor.tcpClients
        protocol = connect(client[2])
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(encode(make_pdu(_C.bind_transceiver_resp, 1)))
        for _ in range(25):
            reactor.advance(0.1)
        lines = stream.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn("submitted 10 answered 0 (0/s)", lines[0])


# ---------------------------------------------------------------------------
# whole runs on 127.0.0.1, real reactor
# ---------------------------------------------------------------------------


class StubSMSC(Protocol):
    """
    A tiny SMSC: accepts every bind, answers every submit_sm with a fresh id
    (and a receipt when one is asked for), says enquire_link and sends one MO
    after the bind, answers unbind and hangs up.
    """

    def __init__(self, seen: dict[str, int]) -> None:
        self.seen = seen
        self.framer = SMPPFramer(70_000)
        self.sequence = 1000

    def send(self, pdu: PDU) -> None:
        self.transport.write(encode(pdu))  # type: ignore[union-attr]

    def request(self, command_id: int, **params: Any) -> None:
        self.sequence += 1
        self.send(make_pdu(command_id, self.sequence, **params))

    def dataReceived(self, data: bytes) -> None:
        for frame in self.framer.feed(data):
            pdu = decode(frame)
            self.seen[pdu.name] = self.seen.get(pdu.name, 0) + 1
            if pdu.command_id in (_C.bind_transceiver, _C.bind_transmitter, _C.bind_receiver):
                self.send(make_pdu(pdu.command_id | 0x80000000, pdu.sequence_number, system_id="STUB"))
                self.request(_C.enquire_link)
                self.request(_C.deliver_sm, short_message=b"an MO")
            elif pdu.command_id == _C.submit_sm:
                self.seen["ids"] = message_id = self.seen.get("ids", 0) + 1
                self.send(make_pdu(_C.submit_sm_resp, pdu.sequence_number, message_id=f"{message_id:016X}"))
                if pdu.params["registered_delivery"]:
                    self.sequence += 1
                    self.transport.write(receipt(self.sequence, f"{message_id:016X}"))  # type: ignore[union-attr]
            elif pdu.command_id == _C.unbind:
                self.send(make_pdu(_C.unbind_resp, pdu.sequence_number))
                self.transport.loseConnection()  # type: ignore[union-attr]
            elif pdu.command_id in (_C.deliver_sm_resp, _C.enquire_link_resp) and pdu.command_status:
                self.seen["bad answers"] = self.seen.get("bad answers", 0) + 1


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_against_a_stub_smsc() -> None:
    """Against a stub SMSC on 127.0.0.1: every submit, receipt, MO and enquire_link is counted and answered,
    and every session unbinds before the result is given."""
    from twisted.internet import reactor

    seen: dict[str, int] = {}
    factory: Any = Factory.forProtocol(lambda: StubSMSC(seen))
    port: Any = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        settings = LoadSettings(targets=(("127.0.0.1", port.getHost().port),), sessions=3, window=5, count=50,
                                receipts=True, progress=0)  # fmt: skip
        result = await run_load(reactor, settings).addTimeout(10, reactor)
    finally:
        await port.stopListening()
    assert (result["sessions_bound"], result["submitted"], result["answered"], result["accepted"]) == (3, 50, 50, 50)
    assert result["receipts"]["expected"] == result["receipts"]["received"] == 50
    assert (result["receipts"]["missing"], result["receipts"]["unmatched"]) == (0, 0)
    assert (result["mo_received"], result["enquire_links_answered"]) == (3, 3)
    assert result["errors"] == {} and result["session_errors"] == {}
    assert seen["submit_sm"] == 50 and seen["deliver_sm_resp"] == 53 and seen["unbind"] == 3
    assert "bad answers" not in seen
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
    json.dumps(result)  # the result is JSON as it is


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_nobody_listening() -> None:
    """With nothing listening, the run ends at once with the connection error and no session."""
    from twisted.internet import reactor

    # held during the run: a port merely picked free could meanwhile get another run's listener
    with refusing_port() as number:
        settings = LoadSettings(targets=(("127.0.0.1", number),), count=5, progress=0)
        result = await run_load(reactor, settings).addTimeout(10, reactor)
    assert result["sessions_bound"] == 0 and result["submitted"] == 0
    assert result["session_errors"]["no session bound"] == 1
    assert any(key.startswith("connect:") for key in result["session_errors"])


class CommandTests(SynchronousTestCase):
    """``python -m smsc_sim.load`` as a user runs it."""

    def test_json_on_stdout_and_failure_status_when_nothing_binds(self) -> None:
        """With no SMSC at the port, the command prints the JSON result (also to --json-out) and exits 1."""
        import os
        import subprocess
        import sys
        import tempfile

        # held during the run (nobody listens on it): a port merely picked free could meanwhile get another
        # run's listener
        with refusing_port() as number, tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "result.json")
            done = subprocess.run(
                [sys.executable, "-m", "smsc_sim.load", "--port", str(number), "--count", "3", "--json-out", out],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            with open(out, encoding="utf-8") as stream:
                written = json.load(stream)
        self.assertEqual(done.returncode, 1, done.stderr)
        result = json.loads(done.stdout)
        self.assertEqual(result, written)
        self.assertEqual((result["sessions_bound"], result["submitted"]), (0, 0))
        self.assertEqual(result["settings"]["targets"], [f"127.0.0.1:{number}"])


# ---------------------------------------------------------------------------
# against the simulator itself
# ---------------------------------------------------------------------------


async def against_simulator(settings: dict[str, Any], scenario: str = "default", binds: int = 2) -> dict[str, Any]:
    """Run the generator against an in-process simulator (embedded default, SMPP1 on port 0)."""
    from twisted.internet import reactor

    from smsc_sim.config import AccountSettings, InstanceSettings, default_config
    from smsc_sim.service import build_service

    listener = InstanceSettings("SMPP1", ("tcp:0:interface=127.0.0.1",), cluster="NA", system_id="SMPP1")
    account = AccountSettings("smppclient1", "password", max_binds=binds)
    config = dataclasses.replace(
        default_config(), instances=(listener,), accounts=(account,), api_endpoint="", scenario=scenario
    )
    simulator = build_service(config, reactor)
    simulator.startService()
    try:
        await simulator.when_listening()
        [address] = simulator.endpoints()["SMPP1"]
        load = LoadSettings(targets=(address,), progress=0, **settings)
        result: dict[str, Any] = await run_load(reactor, load).addTimeout(20, reactor)
    finally:
        await simulator.stopService()
    return result


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_simulator_throttles_past_the_account_limit() -> None:
    """Flat out against the default account (30 msg/s), every submit is answered: some accepted,
    the rest ESME_RTHROTTLED, reported by name."""
    result = await against_simulator({"count": 200, "window": 20})
    assert (result["sessions_bound"], result["submitted"], result["answered"], result["unanswered"]) == (1, 200, 200, 0)
    throttled = result["errors"].get("ESME_RTHROTTLED", 0)
    assert 0 < result["accepted"] < 200 and throttled > 0
    assert result["accepted"] + throttled == 200 and set(result["errors"]) == {"ESME_RTHROTTLED"}
    assert result["session_errors"] == {}


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_simulator_receipts_all_counted() -> None:
    """Under the bench scenario every submit is accepted and every receipt arrives, matched to its message."""
    result = await against_simulator({"count": 300, "sessions": 3, "window": 10, "receipts": True}, "bench", binds=4)
    assert (result["sessions_bound"], result["answered"], result["accepted"]) == (3, 300, 300)
    assert result["receipts"] | {"per_s": 0} == {"expected": 300, "received": 300, "missing": 0, "unmatched": 0,
                                                 "per_s": 0}  # fmt: skip
    assert result["errors"] == {} and result["session_errors"] == {}


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_simulator_receipts_to_the_receiver_of_tx_rx() -> None:
    """With a transmitter and a receiver per session, the receipts come to the receivers and are all counted."""
    result = await against_simulator({"count": 60, "sessions": 2, "bind": "tx+rx", "receipts": True}, "bench", binds=4)
    assert (result["sessions_bound"], result["accepted"]) == (2, 60)
    assert (result["receipts"]["received"], result["receipts"]["unmatched"]) == (60, 0)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_simulator_refuses_binds_past_the_quota() -> None:
    """A third session of an account allowed two binds is refused; the run goes on with two and says why."""
    result = await against_simulator({"count": 20, "sessions": 3})
    assert result["sessions_bound"] == 2 and result["answered"] == 20
    [(problem, count)] = result["session_errors"].items()
    assert problem.startswith("bind ESME_R") and count == 1
