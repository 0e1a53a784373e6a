"""
Prometheus metrics and the API service: what a scrape shows after some
traffic, one registry per simulator, and the warning for an API open
beyond loopback with no token.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.api.service import SERVICE_NAME, add_api, endpoint_is_loopback
from smsc_sim.config import default_config
from smsc_sim.simulator import Simulator
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.test_api import APITestCase


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class MetricsTests(APITestCase):
    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, text = self.call("GET", "/metrics")
        self.assertEqual(code, 200)
        return samples(text)

    def test_binds_pdus_and_latency(self) -> None:
        """A bind and a submit show up as binds by instance and account, PDUs by command and status, and latency."""
        esme = self.bind(0x09, "SMPP2")
        self.submit(esme)
        found = self.scrape()
        bound = (("account", "smppclient1"), ("bind_type", "transceiver"), ("instance", "SMPP2"))
        self.assertEqual(found[("smsc_sim_binds_total", bound)], 1)
        submit_resp = (
            ("command", "submit_sm_resp"), ("direction", "out"), ("instance", "SMPP2"), ("status", "ESME_ROK"),
        )  # fmt: skip
        self.assertEqual(found[("smsc_sim_pdus_total", submit_resp)], 1)
        self.assertEqual(found[("smsc_sim_response_latency_seconds_count", (("command", "submit_sm"),))], 1)
        self.assertEqual(found[("smsc_sim_bound_sessions", bound)], 1)
        self.assertEqual(found[("smsc_sim_instance_up", (("instance", "SMPP2"),))], 1)

    def test_refused_bind(self) -> None:
        """A bind with a wrong password counts as a bind failure with its status and account."""
        esme = self.bind(0x09)
        self.smsc.connect(esme)
        other = type(esme)()
        self.smsc.connect(other)
        other.transport.write(wire.bind(password="wrong"))
        self.smsc.flush()
        failures = [key for key in self.scrape() if key[0] == "smsc_sim_bind_failures_total"]
        self.assertEqual(len(failures), 1)
        self.assertIn(("account", "smppclient1"), failures[0][1])

    def test_receipts_retries_and_queue_depth(self) -> None:
        """A receipt answered with a temporary error is retried; deliveries count by outcome."""
        esme = self.bind(0x09, deliver_status=0x58)
        self.submit(esme)
        self.smsc.advance(30)
        found = self.scrape()
        self.assertGreaterEqual(found[("smsc_sim_delivery_retries_total", (("kind", "receipt"),))], 1)
        self.assertGreaterEqual(found[("smsc_sim_deliveries_total", (("kind", "receipt"), ("outcome", "retry")))], 1)
        self.assertIn(("smsc_sim_pending_deliveries", (("cluster", "NA"),)), found)
        self.assertIn(("smsc_sim_outbound_queue_depth", (("instance", "SMPP1"),)), found)

    def test_throttled_submits(self) -> None:
        """Submits beyond the throttle count as throttled for the account."""
        self.call("PUT", "/api/v1/scenario", {"yaml": "throttle: {rate: 1, burst: 1}\n"})
        esme = self.bind()
        for sequence in (2, 3, 4):
            esme.transport.write(wire.submit_sm(sequence))
        self.smsc.flush()
        found = self.scrape()
        labels = (("account", "smppclient1"), ("instance", "SMPP1"))
        self.assertEqual(found[("smsc_sim_throttled_submits_total", labels)], 2)

    def test_outages_counted(self) -> None:
        """Starting and ending an outage count by mode, and the mode gauge follows."""
        self.call("POST", "/api/v1/instances/SMPP0/outage", {"mode": "blackhole"})
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_instance_mode", (("instance", "SMPP0"), ("mode", "blackhole")))], 1)
        self.assertEqual(found[("smsc_sim_instance_up", (("instance", "SMPP0"),))], 0)
        self.call("DELETE", "/api/v1/instances/SMPP0/outage")
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_outages_total", (("instance", "SMPP0"), ("mode", "blackhole")))], 1)
        self.assertEqual(found[("smsc_sim_outages_total", (("instance", "SMPP0"), ("mode", "up")))], 1)

    def test_registry_per_simulator(self) -> None:
        """Two simulators in one process keep their own counts."""
        self.bind()
        other = MemorySMSC()
        self.addCleanup(other.stop)
        text = other.api.metrics.exposition().decode()
        self.assertNotIn("smsc_sim_binds_total{", text)
        self.assertIn("smsc_sim_binds_total{", self.smsc.api.metrics.exposition().decode())


class ServiceTests(SynchronousTestCase):
    def test_loopback_endpoints(self) -> None:
        """Loopback and unix endpoints are local; no interface, a wildcard or another address are not."""
        self.assertTrue(endpoint_is_loopback("tcp:8775:interface=127.0.0.1"))
        self.assertTrue(endpoint_is_loopback("tcp6:8775:interface=\\:\\:1"))
        self.assertTrue(endpoint_is_loopback("unix:/tmp/api.sock"))
        self.assertFalse(endpoint_is_loopback("tcp:8775"))
        self.assertFalse(endpoint_is_loopback("tcp:8775:interface=0.0.0.0"))
        self.assertFalse(endpoint_is_loopback("tcp:8775:interface=10.1.2.3"))

    def start(self, endpoint: str, token: str | None) -> list[dict[str, object]]:
        logged: list[dict[str, object]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        reactor = MemoryReactorClock()
        simulator = Simulator(default_config(), reactor)
        service = add_api(simulator, endpoint, token)
        self.assertIs(simulator.getServiceNamed(SERVICE_NAME), service)
        service.startService()
        self.addCleanup(service.stopService)
        return [e for e in logged if e.get("log_level") == LogLevel.warn and "token" in str(e.get("log_format"))]

    def test_open_api_without_token_warns(self) -> None:
        """An API on every interface with no token logs a warning at start."""
        warnings = self.start("tcp:8775:interface=0.0.0.0", None)
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["endpoint"], "tcp:8775:interface=0.0.0.0")

    def test_open_api_with_token_or_loopback_is_quiet(self) -> None:
        """With a token, or on loopback, nothing is logged about it."""
        self.assertEqual(self.start("tcp:8775:interface=0.0.0.0", "t"), [])
        self.assertEqual(self.start("tcp:8775:interface=127.0.0.1", None), [])
