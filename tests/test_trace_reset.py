"""
``POST /api/v1/reset`` (the fixture's reset between tests) starts the trace
ring over: a test's capture never shows the previous test's connections,
and a connection still open is traced from the reset on.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any

import treq
from twisted.internet.address import IPv4Address
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import default_config
from smsc_sim.testing.memory import MemorySMSC
from smsc_sim.trace.ring import TraceRing
from tests import wire
from tests.test_api import BASE, RecordingESME
from tests.test_trace import Captured, _event, _read

ENQUIRE_LINK = wire.frame(0x15, 9)
ENQUIRE_LINK_RESP = wire.frame(0x80000015, 9)


def local_port(esme: RecordingESME) -> int:
    """The ESME's own port: the one the simulator names in the session's peer and the trace shows."""
    assert esme.transport is not None, "the ESME is not connected"
    host = esme.transport.getHost()
    assert isinstance(host, IPv4Address), host
    return host.port


class ResetThroughTheAPITests(SynchronousTestCase):
    """A simulator with a trace ring, driven as a test fixture drives it: SMPP sessions and the API."""

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="smsc-sim-trace-reset-")
        self.pcap = os.path.join(self.folder, "all.pcap")
        config = dataclasses.replace(default_config(), pcap=self.pcap, pcap_ring=1 << 20)
        self.smsc = MemorySMSC(config)
        self.addCleanup(self._remove)
        self.addCleanup(self.smsc.stop)

    def _remove(self) -> None:
        os.remove(self.pcap)
        os.rmdir(self.folder)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` of the API: the status and the body."""
        answer = self.smsc.http.get(BASE + "/api/v1" + path)
        self.smsc.flush()
        response = self.successResultOf(answer)
        return response.code, self.successResultOf(treq.content(response))

    def post_reset(self, **body: Any) -> None:
        """POST /api/v1/reset with ``body``; it must answer 200."""
        answer = self.smsc.http.post(BASE + "/api/v1/reset", json=body)
        self.smsc.flush()
        self.assertEqual(self.successResultOf(answer).code, 200)

    def capture(self, path: str = "/trace.pcap") -> list[Captured]:
        """The packets of a capture from the API."""
        code, body = self.get(path)
        self.assertEqual(code, 200, body[:200])
        return _read(body)

    def bind(self) -> tuple[RecordingESME, int]:
        """A bound ESME on SMPP1 that has submitted one message; its session id."""
        esme = RecordingESME()
        self.smsc.connect(esme)
        esme.send(wire.bind(0x09))
        esme.send(wire.submit_sm(2))
        self.smsc.flush()
        self.assertEqual([h.command_status for h, _ in esme.received], [0, 0])
        port = local_port(esme)
        [session_id] = [s["session_id"] for s in self.smsc.sessions() if s["peer"].endswith(f":{port}")]
        return esme, session_id

    def test_a_reset_forgets_closed_connections_and_traces_open_ones_from_then_on(self) -> None:
        """
        One ESME bound, submitted and went away; another is still bound. After
        the reset, the capture holds nothing; then the open one's enquire_link
        and its answer are all there is, without a handshake, its TCP sequence
        numbers following on from before the reset; the gone one is 404.
        """
        gone, gone_id = self.bind()
        stays, stays_id = self.bind()
        assert gone.transport is not None
        gone.transport.loseConnection()
        self.smsc.flush()
        port = local_port(stays)
        before = [p for p in self.capture() if port in (p.tcp.sport, p.tcp.dport)]
        self.assertEqual([p.flags for p in before[:3]], ["S", "SA", "A"])
        sent = [p for p in before if p.tcp.sport == port and p.payload]
        next_seq = sent[-1].tcp.seq + len(sent[-1].payload)

        self.post_reset()
        self.assertEqual(self.capture(), [])
        self.assertEqual(self.get(f"/sessions/{gone_id}/trace.pcap")[0], 404)

        stays.send(ENQUIRE_LINK)
        self.smsc.flush()
        after = self.capture()
        self.assertEqual([(p.payload, p.flags) for p in after], [(ENQUIRE_LINK, "PA"), (ENQUIRE_LINK_RESP, "PA")])
        self.assertEqual(after[0].tcp.seq, next_seq)
        self.assertEqual(
            [p.payload for p in self.capture(f"/sessions/{stays_id}/trace.pcap")], [ENQUIRE_LINK, ENQUIRE_LINK_RESP]
        )
        # the --pcap file is not the ring: it still holds every connection from the start
        with open(self.pcap, "rb") as f:
            ports = {p.tcp.sport for p in _read(f.read()) if p.flags == "S"}
        self.assertEqual(ports, {local_port(gone), local_port(stays)})

    def test_a_reset_of_the_sessions_leaves_an_empty_capture_for_the_next_test(self) -> None:
        """
        The fixture's reset (``"sessions": true``) drops every session: none of
        them shows in the next capture, even though they close after the reset
        began; the next test's connection shows whole, from its handshake.
        """
        first, first_id = self.bind()
        second, _ = self.bind()
        self.post_reset(sessions=True)
        self.assertTrue(first.closed and second.closed)
        self.assertEqual(self.capture(), [])
        self.assertEqual(self.get(f"/sessions/{first_id}/trace.pcap")[0], 404)

        third, third_id = self.bind()
        packets = self.capture()
        port = local_port(third)
        self.assertEqual([p for p in packets if port not in (p.tcp.sport, p.tcp.dport)], [])
        self.assertEqual([p.flags for p in packets[:3]], ["S", "SA", "A"])
        self.assertEqual(len(self.capture(f"/sessions/{third_id}/trace.pcap")), len(packets))


class RingResetTests(SynchronousTestCase):
    """The ring's own reset: what it keeps, and its bound's count."""

    def test_reset_keeps_open_connections_state_and_frees_the_bound(self) -> None:
        """Closed connections go, open ones keep their stream positions, and the ring's size starts over."""
        ring = TraceRing(1 << 20)
        for session in (1, 2):
            ring(_event("connection", 1.0, session))
            ring(_event("bytes_in", 1.1, session, data=b"x" * 100))
        ring(_event("session_closed", 1.2, 1))
        self.assertGreater(ring.size, 0)
        ring.reset()
        self.assertEqual((ring.size, [c.session_id for c in ring.connections()]), (0, [2]))
        ring(_event("bytes_out", 2.0, 2, data=b"y" * 10))
        [segment] = ring.get(2).segments  # type: ignore[union-attr]
        self.assertEqual((segment.offset, segment.acked), (0, 100))
        ring(_event("session_closed", 2.1, 2))
        self.assertEqual([c.session_id for c in ring.connections()], [2])  # it spoke after the reset: kept
