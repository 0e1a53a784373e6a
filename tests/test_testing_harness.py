"""
The simulator as a child process (``smsc_sim.testing.harness``) driven from
a test with no reactor: smpplib binds and submits over TCP on 127.0.0.1,
the blocking client follows with long-poll waits.
"""

from __future__ import annotations

import os
import sys

import smpplib.client
import smpplib.exceptions
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.testing import serve
from smsc_sim.testing.client import APIRequestError, SyncSMSCClient, WaitTimeout
from smsc_sim.testing.harness import SimulatorProcess, SimulatorStartError

FAST_RECEIPTS = "name: fast\nreceipt:\n  stat: DELIVRD\n  delay: 0s\n"


def smpplib_client(smsc: SimulatorProcess, instance: str = "SMPP1") -> tuple[smpplib.client.Client, list[str]]:
    """A bound smpplib transceiver, and the list its submit_sm_resp message ids go to."""
    host, port = smsc.address(instance)
    client = smpplib.client.Client(host, port, timeout=10, allow_unknown_opt_params=True)
    ids: list[str] = []
    client.set_message_sent_handler(lambda pdu: ids.append(pdu.message_id.decode()))
    client.connect()
    client.bind_transceiver(system_id=smsc.system_id, password=smsc.password)
    return client, ids


class SimulatorProcessTests(SynchronousTestCase):
    #: one child process for the class, started in setUpClass
    smsc: SimulatorProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.smsc = SimulatorProcess(token="tok")
        cls.smsc.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.smsc.stop()

    def setUp(self) -> None:
        self.smsc.reset(sessions=True)

    def test_endpoints_and_credentials(self) -> None:
        """Every instance listens on an ephemeral loopback port; the credentials are the configured account's."""
        self.assertEqual(set(self.smsc.endpoints), {"SMPP0", "SMPP1", "SMPP2"})
        host, port = self.smsc.address("SMPP2")
        self.assertEqual((host, port > 0), ("127.0.0.1", True))
        self.assertEqual((self.smsc.system_id, self.smsc.password), ("smppclient1", "password"))
        self.assertTrue(self.smsc.ready())
        self.assertTrue(self.smsc.running)

    def test_smpplib_bind_submit_receipt(self) -> None:
        """smpplib binds, submits and gets the receipt; the waits see each step."""
        self.smsc.load_scenario(yaml=FAST_RECEIPTS)
        client, ids = smpplib_client(self.smsc)
        try:
            self.assertEqual(self.smsc.wait_for_bind(bind_type="transceiver", timeout=5)[0]["account"], "smppclient1")
            client.send_message(
                source_addr_ton=1, source_addr="447700900001", dest_addr_ton=1, destination_addr="447700900002",
                short_message=b"from smpplib", registered_delivery=1,
            )  # fmt: skip
            client.read_once()
            [message] = self.smsc.wait_for_messages(count=1, destination="447700900002", timeout=5)
            self.assertEqual((message["message_id"], message["text"]), (ids[0], "from smpplib"))
            client.read_once()
            receipt = self.smsc.wait_for_receipt(ids[0], timeout=5)["receipt"]
            self.assertEqual((receipt["stat"], receipt["outcome"]), ("DELIVRD", "acked"))
        finally:
            client.unbind()
            client.disconnect()

    def test_inject_mo_to_smpplib(self) -> None:
        """An injected MO reaches smpplib's message handler."""
        client, _ = smpplib_client(self.smsc)
        received: list[bytes] = []
        client.set_message_received_handler(lambda pdu: received.append(pdu.short_message))
        try:
            self.smsc.wait_for_bind(timeout=5)
            self.assertEqual(len(self.smsc.inject_mo("447700900009", "1234", "hello ESME")), 1)
            client.read_once()
            self.assertEqual(received, [b"hello ESME"])
        finally:
            client.unbind()
            client.disconnect()

    def test_outage_and_reset(self) -> None:
        """A reject-binds outage refuses smpplib's bind with the status given; reset ends it."""
        self.smsc.start_outage("SMPP1", "reject-binds", status="ESME_RBINDFAIL")
        with self.assertRaises(smpplib.exceptions.PDUError):
            smpplib_client(self.smsc)
        self.smsc.reset()
        client, _ = smpplib_client(self.smsc)
        client.unbind()
        client.disconnect()

    def test_errors_and_timeouts(self) -> None:
        """A wait that runs out raises WaitTimeout; a call without the token raises a 401 APIRequestError."""
        with self.assertRaises(WaitTimeout) as timeout:
            self.smsc.wait_for_messages(count=1, timeout=0.05)
        self.assertEqual(timeout.exception.status, 408)
        with self.assertRaises(APIRequestError) as denied:
            SyncSMSCClient(self.smsc.api_url).instances()
        self.assertEqual(denied.exception.status, 401)
        self.assertEqual(SyncSMSCClient(self.smsc.api_url).live(), {"status": "live"})

    def test_metrics_text(self) -> None:
        """Metrics come back as Prometheus text."""
        self.assertIn("# TYPE smsc_sim_pdus_total counter", self.smsc.metrics())


class StartAndStopTests(SynchronousTestCase):
    def test_context_manager_stops_the_child(self) -> None:
        """Leaving the with block stops the child process."""
        with SimulatorProcess(scenario="throttling", accounts=[("esme", "pw")], seed=3) as smsc:
            self.assertEqual(smsc.accounts, [("esme", "pw")])
            self.assertEqual(smsc.scenario()["name"], "throttling")
            self.assertEqual(smsc.info()["seed"], 3)
            process = smsc.process
        assert process is not None
        self.assertEqual(process.returncode, 0)
        self.assertFalse(smsc.running)

    def test_token_from_the_environment(self) -> None:
        """A token given as SMSC_SIM_API_TOKEN protects the child's API, and the harness uses it."""
        with SimulatorProcess(env={"SMSC_SIM_API_TOKEN": "from-env"}) as smsc:
            self.assertEqual(len(smsc.instances()), 3)
            with self.assertRaises(APIRequestError):
                SyncSMSCClient(smsc.api_url).instances()

    def test_bad_option_reports_the_log(self) -> None:
        """A child that cannot start raises SimulatorStartError with what it said."""
        with self.assertRaises(SimulatorStartError) as error:
            SimulatorProcess(scenario="no-such-scenario").start()
        self.assertIn("no-such-scenario", str(error.exception))

    def test_serve_usage_error(self) -> None:
        """The runner exits 2 on a bad option, before touching the reactor."""
        stderr = sys.stderr
        sys.stderr = open(os.devnull, "w")
        try:
            self.assertEqual(serve.main(["--no-such-option"]), 2)
        finally:
            sys.stderr.close()
            sys.stderr = stderr
