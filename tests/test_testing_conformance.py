"""
``smsc.conformance()`` and ``smsc.assert_conformant()`` in the three forms
of the test fixtures: in memory (:class:`MemorySMSC`), the asynchronous
client the in-process simulator is made of (:class:`SMSCClient`), and the
blocking client of the subprocess form (:class:`SimulatorProcess`).
"""

from __future__ import annotations

import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.testing.harness import SimulatorProcess
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.conformance_harness import RawESME


class _Memory(SynchronousTestCase):
    def setUp(self) -> None:
        self.smsc = MemorySMSC()
        self.addCleanup(self.smsc.stop)

    def esme(self, instance: str) -> RawESME:
        """A raw ESME bound as transceiver on ``instance``."""
        esme = RawESME(self.smsc.clock)
        esme.connection = self.smsc.connect(esme, instance)
        esme.send(wire.bind(0x09, esme.next_sequence()))
        self.smsc.flush()
        return esme

    def misbehave(self) -> None:
        """Bind on SMPP1 only, submit with sequence_number 0, close without unbind."""
        esme = self.esme("SMPP1")
        esme.submit(sequence=0)
        self.smsc.flush()
        esme.connection.disconnect()
        self.smsc.flush()

    def behave(self) -> None:
        """Bind on SMPP1 and SMPP2, submit, keep the link alive, unbind both before closing."""
        esmes = [self.esme("SMPP1"), self.esme("SMPP2")]
        for esme in esmes:
            esme.submit()
            esme.enquire_link()
        self.smsc.flush()
        self.smsc.advance(2)
        for esme in esmes:
            esme.unbind()
            self.smsc.flush()
            esme.connection.disconnect()
        self.smsc.flush()


class MemoryFormTests(_Memory):
    """The in-memory form reads the judge directly."""

    def test_misbehaving_esme_fails_with_each_code(self) -> None:
        """
        A misbehaving ESME makes assert_conformant fail; the message names each finding's code, account and session.
        """
        self.misbehave()
        with self.assertRaises(AssertionError) as caught:
            self.smsc.assert_conformant()
        message = str(caught.exception)
        self.assertIn("the ESME is not conformant", message)
        self.assertIn("error smppclient1 sequence-reuse (session 1, on SMPP1)", message)
        self.assertIn("warning smppclient1 no-unbind (session 1, on SMPP1)", message)
        self.assertEqual(self.smsc.conformance()["verdict"], "fail")

    def test_allow_and_fail_on(self) -> None:
        """allow= drops codes from the assertion; fail_on='error' lets warnings pass but not errors."""
        self.misbehave()
        with self.assertRaises(AssertionError) as caught:
            self.smsc.assert_conformant(allow=["no-unbind", "single-instance"])
        self.assertNotIn("warning smppclient1 no-unbind", str(caught.exception))
        self.assertIn("allowed: no-unbind, single-instance", str(caught.exception))
        self.assertIn("sequence-reuse", str(caught.exception))
        self.smsc.assert_conformant(allow=["sequence-reuse"], fail_on="error")
        self.smsc.assert_conformant(allow=["sequence-reuse", "no-unbind", "single-instance"])

    def test_well_behaved_esme_passes(self) -> None:
        """An ESME bound to both instances of the cluster that unbinds before closing passes."""
        self.behave()
        self.smsc.assert_conformant()
        self.assertIn(self.smsc.conformance()["verdict"], ("pass",))

    def test_filters_and_mistakes(self) -> None:
        """
        Filters narrow the summary; a misspelt allowed code or filter raises ValueError rather than hiding anything.
        """
        self.misbehave()
        self.assertEqual(self.smsc.conformance(account="other")["findings"], [])
        self.assertEqual(self.smsc.conformance(severity="error")["counts"], {"sequence-reuse": 1})
        with self.assertRaises(ValueError) as caught:
            self.smsc.assert_conformant(allow=["single-instanse"])
        self.assertIn("unknown finding code(s) single-instanse", str(caught.exception))
        with self.assertRaises(ValueError):
            self.smsc.conformance(severity="fatal")
        with self.assertRaises(ValueError):
            self.smsc.assert_conformant(fail_on="info")

    def test_reset_clears(self) -> None:
        """reset() and reset_conformance() both clear the judge."""
        self.misbehave()
        self.smsc.reset_conformance()
        self.smsc.assert_conformant()
        self.misbehave()
        self.smsc.reset()
        self.smsc.assert_conformant()


class AsyncClientFormTests(_Memory):
    """The asynchronous client (what InProcessSimulator is) over the in-memory API."""

    def test_misbehaving_esme_fails_the_deferred(self) -> None:
        """assert_conformant's Deferred fails with an AssertionError naming each finding's code."""
        self.misbehave()
        failure = self.failureResultOf(self.smsc.client.assert_conformant(), AssertionError)
        self.assertIn("sequence-reuse (session 1, on SMPP1)", str(failure.value))
        self.assertIn("no-unbind", str(failure.value))
        summary = self.successResultOf(self.smsc.client.conformance(severity="error"))
        self.assertEqual(summary["counts"], {"sequence-reuse": 1})
        xml = self.successResultOf(self.smsc.client.conformance_report())
        self.assertIn('<failure message="sequence-reuse:', xml)
        self.successResultOf(self.smsc.client.reset_conformance())
        self.successResultOf(self.smsc.client.assert_conformant())

    def test_well_behaved_esme_passes(self) -> None:
        """A well-behaved ESME: the Deferred fires with the summary, verdict pass."""
        self.behave()
        self.assertEqual(self.successResultOf(self.smsc.client.assert_conformant())["verdict"], "pass")

    def test_bad_allow_raises_at_once(self) -> None:
        """A misspelt allowed code raises ValueError before any request."""
        self.assertRaises(ValueError, self.smsc.client.assert_conformant, allow=["nope"])


class SubprocessFormTests(SynchronousTestCase):
    """The blocking client of the subprocess form, against a real child process over TCP."""

    #: one child process for the class, started in setUpClass
    smsc: SimulatorProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.smsc = SimulatorProcess()
        cls.smsc.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.smsc.stop()

    def setUp(self) -> None:
        self.smsc.reset(sessions=True)

    def bind(self, instance: str) -> socket.socket:
        """A raw TCP ESME bound as transceiver on ``instance`` (the bind_resp read)."""
        connection = socket.create_connection(self.smsc.address(instance), timeout=10)
        connection.sendall(wire.bind(0x09, 1))
        header = connection.recv(16)
        self.assertEqual(header[4:8], b"\x80\x00\x00\x09")
        connection.recv(4096)
        return connection

    def closed(self) -> None:
        """Wait (bounded, 5 s) until the simulator has no session left: it has seen every close."""
        deadline = time.monotonic() + 5
        while self.smsc.sessions() and time.monotonic() < deadline:
            time.sleep(0.05)

    def test_misbehaving_esme_fails(self) -> None:
        """An ESME that binds only SMPP1 and closes without unbind fails assert_conformant, naming no-unbind."""
        self.bind("SMPP1").close()
        self.closed()
        with self.assertRaises(AssertionError) as caught:
            self.smsc.assert_conformant()
        self.assertIn("warning smppclient1 no-unbind", str(caught.exception))
        self.assertEqual(self.smsc.conformance()["verdict"], "warn")

    def test_well_behaved_esme_passes(self) -> None:
        """Binding SMPP1 and SMPP2 and unbinding each before closing passes."""
        for connection in (self.bind("SMPP1"), self.bind("SMPP2")):
            connection.sendall(wire.frame(0x06, 2))
            self.assertEqual(connection.recv(16)[4:8], b"\x80\x00\x00\x06")
            connection.close()
        self.closed()
        self.assertEqual(self.smsc.assert_conformant()["verdict"], "pass")
