"""
The pcap trace, in process: the raw-octet events of the bus and the session,
the ring's bounds, the pcap it turns into (read back with dpkt),
the ``--pcap`` file and its bound, and the options and start errors.
tshark reads real captures in tests/test_trace_tshark.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import struct
import sys
import tempfile
from typing import Any

import dpkt
import treq
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import default_config
from smsc_sim.contracts import Event
from smsc_sim.events import EventBus
from smsc_sim.simulator import Simulator, SMPPServerFactory
from smsc_sim.tap import Options, makeService
from smsc_sim.trace.pcap import MAX_SEGMENT, PcapBuild, PcapFile, pcap_bytes
from smsc_sim.trace.ring import (
    CONNECTION_CHARGE,
    SEGMENT_CHARGE,
    TRACE_KINDS,
    TraceRing,
)
from smsc_sim.trace.wiring import Trace
from tests import wire

T0 = 1_700_000_000.0


class Captured:
    """One packet of a capture, decoded by dpkt."""

    def __init__(self, time: float, frame: bytes) -> None:
        self.time = time
        self.frame = frame
        ether = dpkt.ethernet.Ethernet(frame)
        self.ip = ether.data
        self.ipv6 = isinstance(self.ip, dpkt.ip6.IP6)
        self.tcp = self.ip.data
        family = socket.AF_INET6 if self.ipv6 else socket.AF_INET
        self.src = socket.inet_ntop(family, self.ip.src)
        self.dst = socket.inet_ntop(family, self.ip.dst)
        #: the flags as tcpdump spells them: S, SA, A, PA, FA
        self.flags = "".join(name for name, bit in (("S", 2), ("F", 1), ("P", 8), ("A", 16)) if self.tcp.flags & bit)
        self.payload = bytes(self.tcp.data)


def _read(data: bytes) -> list[Captured]:
    """
    The packets of a pcap: the records split here (and checked whole, none
    cut), each decoded by dpkt.
    """
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1), "a little-endian pcap 2.4 of Ethernet"
    packets, offset = [], 24
    while offset < len(data):
        seconds, micros, caplen, wirelen = struct.unpack("<IIII", data[offset : offset + 16])
        assert caplen == wirelen <= snaplen, "no packet is cut"
        packets.append(Captured(seconds + micros / 1e6, data[offset + 16 : offset + 16 + caplen]))
        offset += 16 + caplen
    assert offset == len(data), "whole records only"
    return packets


def _flags(packets: list[Captured]) -> list[str]:
    return [p.flags for p in packets]


class BusTests(SynchronousTestCase):
    """The event bus's opt-in kinds."""

    def test_octets_reach_only_who_asks(self) -> None:
        """A subscriber of everything never gets bytes_in; one that names it does, and wants() tells publishers so."""
        bus = EventBus(Clock())
        everything: list[Event] = []
        bus.subscribe(everything.append)
        self.assertFalse(bus.wants("bytes_in"))
        self.assertTrue(bus.wants("message"))
        bus.publish("bytes_in", data=b"x")
        named: list[Event] = []
        stop = bus.subscribe(named.append, kinds=("bytes_in",))
        self.assertTrue(bus.wants("bytes_in"))
        bus.publish("bytes_in", data=b"y")
        bus.publish("message", id=1)
        self.assertEqual([e.kind for e in everything], ["message"])
        self.assertEqual([(e.kind, e.data) for e in named], [("bytes_in", {"data": b"y"})])
        stop()
        self.assertFalse(bus.wants("bytes_in"))
        self.assertTrue(bus.active)

    def test_active_follows_subscriptions(self) -> None:
        """The bus is active while anyone of either sort listens, and idle again after."""
        bus = EventBus(Clock())
        self.assertFalse(bus.active)
        stop = bus.subscribe(lambda e: None, kinds=("connection",))
        self.assertTrue(bus.active)
        stop()
        self.assertFalse(bus.active)


class SimulatorCase(SynchronousTestCase):
    """A simulator on a MemoryReactorClock, its sessions on StringTransports."""

    def simulator(self, **changes: Any) -> Simulator:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(T0)
        config = dataclasses.replace(default_config(), api_endpoint="", seed=0, **changes)
        return Simulator(config, self.reactor)

    def connect(self, simulator: Simulator, port: int = 40000, ipv6: bool = False) -> tuple[Any, StringTransport]:
        factory = SMPPServerFactory(simulator, simulator.instances["SMPP1"])
        if ipv6:
            peer: Any = IPv6Address("TCP", "::1", port)
            host: Any = IPv6Address("TCP", "::1", 2775)
        else:
            peer, host = IPv4Address("TCP", "127.0.0.1", port), IPv4Address("TCP", "127.0.0.1", 2775)
        session = factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer, hostAddress=host)
        session.makeConnection(transport)
        return session, transport


class SessionOctetsTests(SimulatorCase):
    """What the session publishes for the trace."""

    def test_octets_as_read_and_written(self) -> None:
        """A malformed PDU is recorded exactly as the ESME sent it, and the answers exactly as written."""
        simulator = self.simulator()
        ring = TraceRing()
        ring.subscribe(simulator.events)
        session, transport = self.connect(simulator)
        bad = wire.frame(0x00000004, 7, b"\x00\x01")  # a submit_sm cut short
        session.dataReceived(wire.bind(0x09, 1) + bad)
        connection = ring.get(session.session_id)
        assert connection is not None
        self.assertEqual([(s.from_client, s.data) for s in connection.segments], [
            (True, wire.bind(0x09, 1) + bad),
            (False, transport.value()),
        ])
        self.assertEqual(connection.client, ("127.0.0.1", 40000))
        self.assertEqual(connection.server, ("127.0.0.1", 2775))
        self.assertEqual(connection.opened, T0)

    def test_no_octets_when_nobody_traces(self) -> None:
        """Without a trace subscriber no octet event is built: the other subscribers see none."""
        simulator = self.simulator()
        seen: list[str] = []
        simulator.events.subscribe(lambda e: seen.append(e.kind))
        session, _ = self.connect(simulator)
        session.dataReceived(wire.bind())
        self.assertNotIn("bytes_in", seen)
        self.assertNotIn("bytes_out", seen)
        self.assertIn("pdu_in", seen)


def _event(kind: str, time: float, session_id: int, **data: Any) -> Event:
    data.setdefault("peer", f"10.0.0.1:{40000 + session_id}")
    data.setdefault("local", "10.0.0.2:2775")
    return Event(kind, time, {"session_id": session_id, "instance": "SMPP1", **data})


class RingTests(SynchronousTestCase):
    """The ring's bound and retrieval."""

    def test_oldest_connections_lose_their_segments_first(self) -> None:
        """Past the bound the oldest connection's segments go first; a closed one left empty is forgotten."""
        ring = TraceRing(max_bytes=3 * (100 + SEGMENT_CHARGE) + CONNECTION_CHARGE)
        for session_id in (1, 2):
            ring(_event("connection", 1.0, session_id))
        ring(_event("bytes_in", 2.0, 1, data=b"a" * 100))
        ring(_event("bytes_out", 3.0, 1, data=b"b" * 100))
        ring(_event("session_closed", 4.0, 1))
        ring(_event("bytes_in", 5.0, 2, data=b"c" * 100))
        self.assertEqual(ring.dropped, 0)
        ring(_event("bytes_in", 6.0, 2, data=b"d" * 100))  # one too many: session 1's first goes
        first = ring.get(1)
        assert first is not None
        self.assertEqual([s.data[:1] for s in first.segments], [b"b"])
        self.assertEqual(first.dropped, 1)
        ring(_event("bytes_in", 7.0, 2, data=b"e" * 100))  # session 1 empties and, closed, is forgotten
        self.assertIsNone(ring.get(1))
        second = ring.get(2)
        assert second is not None
        self.assertEqual([s.data[:1] for s in second.segments], [b"c", b"d", b"e"])
        self.assertLessEqual(ring.size, ring.max_bytes)
        self.assertEqual(ring.dropped, 2)

    def test_a_live_connection_keeps_its_state_past_the_bound(self) -> None:
        """A connection bigger than the ring keeps its newest segments and its stream positions."""
        ring = TraceRing(max_bytes=2 * (1000 + SEGMENT_CHARGE))
        ring(_event("connection", 1.0, 1))
        for i in range(5):
            ring(_event("bytes_in", 2.0 + i, 1, data=bytes([i]) * 1000))
        connection = ring.get(1)
        assert connection is not None
        self.assertEqual([s.offset for s in connection.segments], [3000, 4000])
        self.assertEqual(connection.sent, [5000, 0])
        self.assertLessEqual(ring.size, ring.max_bytes)

    def test_no_ring_keeps_only_open_connections(self) -> None:
        """With a bound of 0 nothing is retained, and a closed connection is forgotten at once."""
        ring = TraceRing(max_bytes=0)
        ring(_event("connection", 1.0, 1))
        ring(_event("bytes_in", 2.0, 1, data=b"x" * 10))
        connection = ring.get(1)
        assert connection is not None
        self.assertEqual((list(connection.segments), connection.sent), ([], [10, 0]))
        ring(_event("session_closed", 3.0, 1))
        self.assertIsNone(ring.get(1))
        self.assertEqual(ring.size, 0)

    def test_since_keeps_recent_connections(self) -> None:
        """connections(since) leaves out a closed connection with nothing at or after it."""
        ring = TraceRing()
        ring(_event("connection", 1.0, 1))
        ring(_event("session_closed", 2.0, 1))
        ring(_event("connection", 3.0, 2))
        self.assertEqual([c.session_id for c in ring.connections(2.5)], [2])
        self.assertEqual([c.session_id for c in ring.connections()], [1, 2])

    def test_subscribes_to_its_kinds(self) -> None:
        """The ring asks the bus for connects, closes and octets only."""
        bus = EventBus(Clock())
        TraceRing().subscribe(bus)
        self.assertTrue(all(bus.wants(kind) for kind in TRACE_KINDS))
        self.assertFalse(bus.wants("message"))


class PcapTests(SynchronousTestCase):
    """The pcap of a connection, read back."""

    def ring(self, peer: str = "10.0.0.1:40001", local: str = "10.0.0.2:2775") -> TraceRing:
        ring = TraceRing()
        ring(_event("connection", 10.0, 1, peer=peer, local=local))
        ring(_event("bytes_in", 10.5, 1, data=b"REQUEST!"))
        ring(_event("bytes_out", 10.75, 1, data=b"ANSWER"))
        ring(_event("session_closed", 11.0, 1))
        return ring

    def test_handshake_data_and_close(self) -> None:
        """SYN, SYN-ACK, ACK, both payloads with their ports, sequence and ack numbers, then FINs; times kept."""
        packets = _read(pcap_bytes(self.ring().connections()))
        self.assertEqual(_flags(packets), ["S", "SA", "A", "PA", "PA", "FA", "FA", "A"])
        syn, syn_ack, _, request, answer, fin_s, fin_c, last = packets
        self.assertEqual((syn.src, syn.tcp.sport, syn.dst, syn.tcp.dport), ("10.0.0.1", 40001, "10.0.0.2", 2775))
        self.assertEqual((answer.src, answer.tcp.sport), ("10.0.0.2", 2775))
        self.assertEqual(request.payload, b"REQUEST!")
        self.assertEqual(answer.payload, b"ANSWER")
        client, server = syn.tcp.seq, syn_ack.tcp.seq
        self.assertEqual(syn_ack.tcp.ack, client + 1)
        self.assertEqual((request.tcp.seq, request.tcp.ack), (client + 1, server + 1))
        self.assertEqual((answer.tcp.seq, answer.tcp.ack), (server + 1, client + 1 + 8))
        self.assertEqual((fin_s.tcp.seq, fin_c.tcp.seq), (server + 1 + 6, client + 1 + 8))
        self.assertEqual(last.tcp.ack, fin_c.tcp.seq + 1)
        self.assertEqual([p.time for p in packets], [10.0, 10.0, 10.0, 10.5, 10.75, 11.0, 11.0, 11.0])

    def test_ipv6(self) -> None:
        """An IPv6 connection is captured over IPv6."""
        packets = _read(pcap_bytes(self.ring(peer="::1:40001", local="::1:2775").connections()))
        self.assertTrue(all(p.ipv6 for p in packets))
        self.assertEqual(packets[0].tcp.dport, 2775)

    def test_large_writes_split_at_the_ip_limit(self) -> None:
        """A read of 150,000 octets becomes packets within the 65,535-octet IP limit, contiguous in sequence."""
        ring = TraceRing()
        ring(_event("connection", 1.0, 1))
        data = bytes(range(256)) * 586  # 150,016 octets
        ring(_event("bytes_in", 2.0, 1, data=data))
        packets = [p for p in _read(pcap_bytes(ring.connections())) if p.payload]
        self.assertEqual([len(p.payload) for p in packets], [MAX_SEGMENT, MAX_SEGMENT, len(data) - 2 * MAX_SEGMENT])
        self.assertTrue(all(p.ip.len <= 65535 for p in packets))
        self.assertEqual([p.tcp.seq - packets[0].tcp.seq for p in packets], [0, MAX_SEGMENT, 2 * MAX_SEGMENT])
        self.assertEqual(b"".join(p.payload for p in packets), data)

    def test_since_and_dropped_start(self) -> None:
        """With since, earlier packets are left out (no handshake), and the later ones keep their numbers."""
        whole = _read(pcap_bytes(self.ring().connections()))
        later = _read(pcap_bytes(self.ring().connections(10.6), 10.6))
        self.assertEqual(_flags(later), ["PA", "FA", "FA", "A"])
        self.assertEqual([p.tcp.seq for p in later], [p.tcp.seq for p in whole[4:]])


class PcapBuildTests(SynchronousTestCase):
    """A capture is built a slice at a time, so that a full ring never holds the reactor."""

    def ring_of(self, segments: int, ring: TraceRing | None = None) -> TraceRing:
        """A ring (a new one, or ``ring``) that has recorded one connection of ``segments`` reads and writes."""
        ring = TraceRing(1 << 24) if ring is None else ring
        ring(_event("connection", 10.0, 1))
        for i in range(segments):
            ring(_event("bytes_in" if i % 2 == 0 else "bytes_out", 10.0 + i / 1000, 1, data=b"x" * 16))
        return ring

    def test_slices_give_the_same_file_as_one_go(self) -> None:
        """1 200 segments are written in slices of 500 packets; the file equals the one built in one go."""
        ring = self.ring_of(1200)
        build = PcapBuild(ring.connections())
        slices = sum(1 for _ in build.steps())
        self.assertEqual(slices, (3 + 1200) // PcapBuild.STEP)
        self.assertEqual(build.result(), pcap_bytes(ring.connections()))
        self.assertEqual(len(_read(build.result())), 3 + 1200)

    def test_api_answers_other_requests_while_a_capture_is_built(self) -> None:
        """
        GET /api/v1/trace.pcap of a large ring answers after several reactor
        turns; a health check sent after it is answered before it.
        """
        from smsc_sim.testing.memory import MemorySMSC

        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        simulator = smsc.simulator
        simulator.trace = Trace(dataclasses.replace(simulator.config, pcap_ring=1 << 24), simulator.events)
        self.ring_of(5000, simulator.trace.ring)  # a ring already full of traffic
        base = "http://127.0.0.1:8775/api/v1"
        capture = smsc.http.get(base + "/trace.pcap")
        smsc.reactor.advance(0)
        self.assertNoResult(capture)
        health = smsc.http.get(base + "/health/live")
        smsc.reactor.advance(0)
        self.assertEqual(self.successResultOf(health).code, 200)
        self.assertNoResult(capture)
        smsc.flush()
        response = self.successResultOf(capture)
        self.assertEqual(response.code, 200)
        body = self.successResultOf(treq.content(response))
        self.assertEqual(len(_read(body)), 3 + 5000)
        self.assertEqual(body, pcap_bytes(simulator.trace.ring.connections()))


class PcapFileTests(SimulatorCase):
    """``--pcap FILE``: streamed as it happens, bounded."""

    def path(self) -> str:
        directory = tempfile.mkdtemp(prefix="smsc-sim-trace-")
        self.addCleanup(shutil.rmtree, directory)
        return os.path.join(directory, "trace.pcap")

    def test_streams_each_connection(self) -> None:
        """The file holds the handshake as soon as a client connects, and its PDUs and close as they happen."""
        path = self.path()
        simulator = self.simulator(pcap=path)
        assert simulator.trace is not None
        session, transport = self.connect(simulator)
        self.assertEqual(_flags(_read(open(path, "rb").read())), ["S", "SA", "A"])
        session.dataReceived(wire.bind(0x09, 1))
        session.connectionLost(Failure(ConnectionError("gone")))
        packets = _read(open(path, "rb").read())
        self.assertEqual(_flags(packets), ["S", "SA", "A", "PA", "PA", "FA", "FA", "A"])
        self.assertEqual(packets[3].payload, wire.bind(0x09, 1))
        self.assertEqual(packets[4].payload, transport.value())
        simulator.trace.stop()

    def test_stops_whole_at_its_bound(self) -> None:
        """At the bound the file stops with whole packets only, and says how many it left out."""
        path = self.path()
        sink = PcapFile(path, max_bytes=24 + 3 * (16 + 54) + 10)
        ring = TraceRing(sink=sink)
        ring(_event("connection", 1.0, 1))
        ring(_event("bytes_in", 2.0, 1, data=b"x" * 100))
        ring(_event("session_closed", 3.0, 1))
        sink.close()
        self.assertEqual(_flags(_read(open(path, "rb").read())), ["S", "SA", "A"])
        self.assertEqual((sink.full, sink.left_out), (True, 4))
        self.assertEqual(os.path.getsize(path), sink.size)

    def test_closed_a_turn_after_stop(self) -> None:
        """stopService unbinds the sessions, and the file is closed with their FINs in it."""
        path = self.path()
        simulator = self.simulator(pcap=path)
        simulator.startService()
        session, transport = self.connect(simulator)
        session.dataReceived(wire.bind(0x09, 1))
        transport.clear()
        stopping = simulator.stopService()
        unbind = wire.headers(transport.value())[0]
        session.dataReceived(wire.frame(0x80000006, unbind[2]))  # the ESME answers the unbind
        session.connectionLost(Failure(ConnectionError("closed")))
        self.reactor.advance(0)
        self.successResultOf(stopping)
        assert simulator.trace is not None and simulator.trace.file is not None
        self.assertTrue(simulator.trace.file._file.closed)
        self.assertEqual(_flags(_read(open(path, "rb").read()))[-3:], ["FA", "FA", "A"])


class OptionTests(SynchronousTestCase):
    """The options, variables and start errors."""

    def test_options_and_variables(self) -> None:
        """--pcap, --pcap-max-bytes, --pcap-ring and their SMSC_SIM_ variables set the config; the path is made absolute."""
        options = Options(environ={"SMSC_SIM_PCAP_RING": "4096"})
        options.parseOptions(["--pcap", "t.pcap", "--pcap-max-bytes", "1000"])
        config = options.config
        self.assertEqual((config.pcap, config.pcap_max_bytes, config.pcap_ring), (os.path.abspath("t.pcap"), 1000, 4096))
        options = Options(environ={"SMSC_SIM_PCAP": "u.pcap", "SMSC_SIM_PCAP_MAX_BYTES": "0"})
        options.parseOptions([])
        self.assertEqual((options.config.pcap, options.config.pcap_max_bytes), (os.path.abspath("u.pcap"), 0))

    def test_bad_values_are_one_line(self) -> None:
        """A pcap in a missing directory or a negative bound is a usage error naming the option."""
        options = Options(environ={})
        error = self.assertRaises(usage.UsageError, options.parseOptions, ["--pcap", "/nonexistent-dir/t.pcap"])
        self.assertIn("option --pcap: pcap: no such directory", str(error))
        error = self.assertRaises(usage.UsageError, Options(environ={}).parseOptions, ["--pcap-ring", "-1"])
        self.assertIn("option --pcap-ring: pcap_ring: out of range: -1", str(error))
        error = self.assertRaises(usage.UsageError, Options(environ={"SMSC_SIM_PCAP_RING": "lots"}).parseOptions, [])
        self.assertIn("environment variable SMSC_SIM_PCAP_RING", str(error))

    def test_without_dpkt_the_start_names_the_extra(self) -> None:
        """--pcap without dpkt installed stops the start with one line naming the 'trace' extra."""
        saved = sys.modules["dpkt"]
        sys.modules["dpkt"] = None  # type: ignore[assignment]  # what a missing module raises
        self.addCleanup(sys.modules.__setitem__, "dpkt", saved)
        error = self.assertRaises(usage.UsageError, Options(environ={}).parseOptions, ["--pcap", "t.pcap"])
        self.assertEqual(
            str(error), "the pcap trace needs dpkt, which is not installed: pip install 'smsc-sim[trace]'"
        )

    def test_unwritable_file_is_one_line(self) -> None:
        """A pcap file that cannot be created ends makeService with one line naming it."""
        directory = tempfile.mkdtemp(prefix="smsc-sim-trace-")
        self.addCleanup(shutil.rmtree, directory)
        options = Options(environ={})
        options.parseOptions(["--api", "none", "--pcap", directory + "/sub"])
        os.mkdir(directory + "/sub")  # a directory where the file should go
        error = self.assertRaises(SystemExit, makeService, options)
        self.assertEqual(str(error.code), f"twistd: cannot write the pcap trace {directory}/sub: Is a directory")
