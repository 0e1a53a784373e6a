"""
The in-memory simulator (``smsc_sim.testing.memory``) as a Twisted ESME's
test would use it: protocols connected over in-memory transports, a fake
clock moved timer by timer, waits as Deferreds, the API over StubTreq.
"""

from __future__ import annotations

import os

from twisted.internet.protocol import Factory
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.testing.client import WaitTimeout
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.test_api import RecordingESME


class MemorySMSCTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.smsc = MemorySMSC()
        self.addCleanup(self.smsc.stop)

    def bound(self, instance: str = "SMPP1") -> RecordingESME:
        esme = RecordingESME()
        self.smsc.connect(esme, instance)
        esme.send(wire.bind())
        self.smsc.flush()
        return esme

    def test_connect_to_a_crashed_instance_is_refused(self) -> None:
        """Connecting in memory to an instance in a crash outage is refused, as TCP would refuse it."""
        self.smsc.start_outage("SMPP1", "crash")
        self.assertRaises(ConnectionRefusedError, self.smsc.connect, RecordingESME(), "SMPP1")

    def test_bind_submit_and_receipt_on_the_fake_clock(self) -> None:
        """An ESME binds and submits; the receipt comes once the fake clock passes its delay, not before."""
        esme = self.bound()
        esme.send(wire.submit_sm(2, text=b"memory"))
        self.smsc.flush()
        self.assertEqual(esme.commands(), [0x80000009, 0x80000004])
        self.assertEqual(self.smsc.messages()[0]["text"], "memory")
        self.smsc.advance(5)
        self.assertEqual(esme.commands()[-1], 0x05)
        self.assertEqual(self.smsc.messages(state="DELIVERED")[0]["receipts"][0]["outcome"], "acked")

    def test_advance_moves_bytes_between_timers(self) -> None:
        """A receipt written at t=1..5 is answered before the 10 s response timer, even when advancing 60 s at once."""
        esme = self.bound()
        esme.send(wire.submit_sm())
        self.smsc.flush()
        self.smsc.advance(60)
        self.assertEqual([r["outcome"] for r in self.smsc.messages()[0]["receipts"]], ["acked"])
        self.assertEqual(self.smsc.reactor.seconds(), 60)

    def test_endpoint_connects_a_factory(self) -> None:
        """ESME code that connects through an endpoint gets a connected protocol of its factory."""
        connected = self.successResultOf(self.smsc.endpoint("SMPP2").connect(Factory.forProtocol(RecordingESME)))
        assert isinstance(connected, RecordingESME), connected
        connected.send(wire.bind(0x01))
        self.smsc.flush()
        self.assertEqual(connected.commands(), [0x80000001])
        self.assertEqual(self.smsc.sessions()[0]["instance"], "SMPP2")

    def test_wait_for_messages(self) -> None:
        """wait_for_messages fires once enough messages match, and fails with TimeoutError when time runs out."""
        esme = self.bound()
        waiting = self.smsc.wait_for_messages(count=1, destination="447700900002", timeout=5)
        self.assertNoResult(waiting)
        esme.send(wire.submit_sm())
        self.smsc.flush()
        self.assertEqual(len(self.successResultOf(waiting)), 1)
        never = self.smsc.wait_for_messages(count=5, timeout=5)
        self.smsc.advance(5)
        self.failureResultOf(never, TimeoutError)

    def test_scenario_window_bounds_requests_in_flight(self) -> None:
        """A scenario's window (size 1, status ESME_RTHROTTLED) refuses a second submit while the first waits its latency."""
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("name: w\nlatency: 1s\nwindow: {size: 1, status: ESME_RTHROTTLED}\n")
        self.addCleanup(os.unlink, f.name)
        self.smsc.load_scenario(f.name)
        esme = self.bound()
        esme.send(wire.submit_sm(2) + wire.submit_sm(3))
        self.smsc.flush()
        headers = [(h.command_id, h.command_status, h.sequence_number) for h, _ in esme.received]
        self.assertEqual(headers[-1], (0x80000004, 0x58, 3))
        self.smsc.advance(1)
        headers = [(h.command_id, h.command_status, h.sequence_number) for h, _ in esme.received]
        self.assertIn((0x80000004, 0, 2), headers)

    def test_inject_mo_and_outage(self) -> None:
        """An MO reaches a bound receiver; a crash outage drops its connection."""
        esme = self.bound()
        self.assertEqual(len(self.smsc.inject_mo("447700900001", "1234", "ping")), 1)
        self.smsc.flush()
        self.assertEqual(esme.commands()[-1], 0x05)
        self.smsc.start_outage("SMPP1", "crash")
        self.smsc.flush()
        self.assertTrue(esme.closed)
        self.smsc.end_outage("SMPP1")

    def test_client_over_stub_treq(self) -> None:
        """The async client works against the in-memory API; a wait that runs out raises WaitTimeout."""
        self.bound()
        client = self.smsc.client
        self.assertEqual(self.successResultOf(client.sessions())[0]["bind_type"], "transceiver")
        waiting = client.wait_for_messages(count=1, timeout=2)
        self.smsc.advance(2)
        self.assertEqual(self.failureResultOf(waiting, WaitTimeout).value.status, 408)

    def test_scenario_and_reset(self) -> None:
        """Loading a scenario changes what submits get; reset forgets the messages."""
        self.smsc.load_scenario("throttling")
        self.assertEqual(self.smsc.simulator.scenario.describe()["name"], "throttling")
        esme = self.bound()
        esme.send(wire.submit_sm())
        self.smsc.flush()
        self.smsc.reset()
        self.assertEqual(self.smsc.messages(), [])
        self.assertEqual(self.smsc.events, [])

    def test_stop_unbinds(self) -> None:
        """Stopping unbinds every bound ESME."""
        esme = self.bound()
        self.smsc.stop()
        self.assertIn(0x06, esme.commands())
        self.assertTrue(esme.closed)

    def test_context_manager(self) -> None:
        """The memory simulator is a context manager that stops on exit."""
        with MemorySMSC(seed=7) as smsc:
            esme = RecordingESME()
            smsc.connect(esme)
            esme.send(wire.bind())
            smsc.flush()
            self.assertEqual(smsc.simulator.seed, 7)
        self.assertTrue(esme.closed)
