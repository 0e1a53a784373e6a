"""
Prometheus metrics and the API service: what a scrape shows after some
traffic, one registry per simulator, and the warning for an API open
beyond loopback with no token.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import provider

from smsc_sim.api.service import SERVICE_NAME, add_api, endpoint_is_loopback
from smsc_sim.config import (
    Config,
    CoreSettings,
    LimitSettings,
    SessionSettings,
    default_config,
)
from smsc_sim.core.delivery import Delivery
from smsc_sim.simulator import Simulator
from smsc_sim.smpp.pdu import make_pdu
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.test_api import APITestCase, RecordingESME


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
        other.send(wire.bind(password="wrong"))
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

    def test_a_delivery_ended_in_another_process_is_counted_there_only(self) -> None:
        """
        The outcome of a receipt this process handed to the cluster and another
        process delivered is told to this process's record and event stream, but
        not counted again here: summed over the processes, each delivery counts once.
        """
        esme = self.bind()
        self.submit(esme)
        self.smsc.advance(30)  # its receipt, delivered and acknowledged here
        router = self.smsc.simulator.cores["NA"].router
        handed = Delivery(make_pdu(0x00000005, 9), "smppclient1", "receipt", "1", None, None, 0.0)
        told: list[str] = []
        handed.on_outcome = lambda delivery, outcome, status, session_id: told.append(outcome)
        router.ended_elsewhere(handed, "acked", 0, 3, {"process": "host:2:bb", "instance": "SMPP2", "time": 1.0})
        found = self.scrape()
        self.assertEqual(told, ["acked"])
        self.assertEqual(found[("smsc_sim_deliveries_total", (("kind", "receipt"), ("outcome", "acked")))], 1)

    def test_throttled_submits(self) -> None:
        """Submits beyond the throttle count as throttled for the account."""
        self.call("PUT", "/api/v1/scenario", {"yaml": "throttle: {rate: 1, burst: 1}\n"})
        esme = self.bind()
        for sequence in (2, 3, 4):
            esme.send(wire.submit_sm(sequence))
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


class SilentESME(RecordingESME):
    """An ESME that records what it gets and never answers a deliver_sm."""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 16 and len(self.buffer) >= int.from_bytes(self.buffer[:4], "big"):
            length = int.from_bytes(self.buffer[:4], "big")
            raw, self.buffer = self.buffer[:length], self.buffer[length:]
            self.received.extend(wire.split_pdus(raw))


MQF = 0x14  # ESME_RMSGQFUL


class BoundsMetricsTests(APITestCase):
    """What happened at each limit of docs/reliability.md, as a scrape shows it."""

    def use(self, **changes: Any) -> None:
        """Replace the test's simulator by one with these configuration changes."""
        self.smsc.stop()
        config: Config = dataclasses.replace(default_config(), **changes)
        self.smsc = MemorySMSC(config)
        self.addCleanup(self.smsc.stop)

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, text = self.call("GET", "/metrics")
        self.assertEqual(code, 200)
        return samples(text)

    def status_of_last(self, esme: RecordingESME) -> int:
        header, _ = esme.received[-1]
        return header.command_status

    def test_connections_refused_by_reason(self) -> None:
        """Connections past the per-address and the total limits count under their own reason; open ones show."""
        self.use(limits=LimitSettings(max_connections=2, max_connections_per_address=1))
        admitted = []
        for port, host in enumerate(("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3")):
            try:
                self.smsc.connect(RecordingESME(), peer=IPv4Address("TCP", host, 40000 + port))
                admitted.append(host)
            except ConnectionRefusedError:
                pass
        self.assertEqual(admitted, ["10.0.0.1", "10.0.0.2"])
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_connections_refused_total", (("reason", "max_connections_per_address"),))], 1)
        self.assertEqual(found[("smsc_sim_connections_refused_total", (("reason", "max_connections"),))], 1)
        self.assertEqual(found[("smsc_sim_open_connections", ())], 2)

    def test_bind_lockout(self) -> None:
        """After two failed binds in a row an address is locked out: its next bind counts as a lockout refusal."""
        self.use(limits=LimitSettings(bind_failure_lockout_after=2, bind_failure_lockout=60))
        for password in ("wrong", "wrong", "password"):
            esme = RecordingESME()
            self.smsc.connect(esme)
            esme.send(wire.bind(password=password))
            self.smsc.flush()
        self.assertEqual(self.status_of_last(esme), 0x0D)  # ESME_RBINDFAIL, though the password is right
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_bind_lockout_refusals_total", (("cluster", "NA"),))], 1)
        self.assertEqual(found[("smsc_sim_bind_locked_out_addresses", (("cluster", "NA"),))], 1)
        failures = {key: n for key, n in found.items() if key[0] == "smsc_sim_bind_failures_total"}
        self.assertEqual(sorted(dict(key[1])["status"] for key in failures), ["ESME_RBINDFAIL", "ESME_RINVPASWD"])
        self.smsc.advance(61)
        self.assertEqual(self.scrape()[("smsc_sim_bind_locked_out_addresses", (("cluster", "NA"),))], 0)

    def test_pending_deliveries_dropped_and_expired(self) -> None:
        """With no receiver bound, an MO pushed out of a full pending queue and one past the expiry are counted."""
        self.use(core=CoreSettings(pending_max=1, pending_expiry=10))
        mo = {"source": "447700900001", "destination": "12345", "text": "hi"}
        self.call("POST", "/api/v1/mo", mo)
        self.call("POST", "/api/v1/mo", mo)  # the queue holds one: the first is dropped
        self.smsc.advance(11)
        self.call("POST", "/api/v1/mo", mo)  # the second has expired meanwhile
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_pending_deliveries_lost_total", (("cluster", "NA"), ("reason", "full")))], 1)
        self.assertEqual(
            found[("smsc_sim_pending_deliveries_lost_total", (("cluster", "NA"), ("reason", "expired")))], 1
        )

    def test_store_full_refusals(self) -> None:
        """A store of one pending record refuses the next submit with ESME_RMSGQFUL, and counts the refusal."""
        self.use(core=CoreSettings(store_max_messages=1))
        esme = self.bind()
        self.submit(esme, 2)
        esme.send(wire.submit_sm(3))
        self.smsc.flush()
        self.assertEqual(self.status_of_last(esme), MQF)
        self.assertEqual(self.scrape()[("smsc_sim_store_full_refusals_total", (("cluster", "NA"),))], 1)

    def test_store_evictions(self) -> None:
        """A store of one record evicts it once final, to take the next submit."""
        self.use(core=CoreSettings(store_max_messages=1))
        esme = self.bind()
        self.submit(esme, 2)
        self.smsc.advance(10)  # the first gets its receipt: final
        self.submit(esme, 3)
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_store_evictions_total", (("cluster", "NA"),))], 1)
        self.assertEqual(found[("smsc_sim_store_messages", (("cluster", "NA"),))], 1)

    def test_inbound_window_refusals(self) -> None:
        """A request beyond the inbound window is answered ESME_RMSGQFUL at once and counted, after its session too."""
        config = default_config()
        instances = tuple(dataclasses.replace(i, latency=1.0) if i.name == "SMPP1" else i for i in config.instances)
        self.use(instances=instances, session=SessionSettings(inbound_window=1))
        esme = self.bind()
        self.smsc.advance(1)  # the bind_resp has the instance's latency too
        for sequence in (2, 3):
            esme.send(wire.submit_sm(sequence))
        self.smsc.flush()
        self.smsc.advance(1)  # the refusal carries the instance's latency too
        answers = [(h.sequence_number, h.command_status) for h, _ in esme.received if h.command_id == 0x80000004]
        self.assertEqual(answers, [(2, 0), (3, MQF)])
        labels = (("instance", "SMPP1"),)
        self.assertEqual(self.scrape()[("smsc_sim_inbound_window_refusals_total", labels)], 1)
        self.smsc.connections[-1].disconnect()
        self.smsc.flush()
        self.assertEqual(self.scrape()[("smsc_sim_inbound_window_refusals_total", labels)], 1)

    def test_sessions_at_queue_limit(self) -> None:
        """A receiver that does not answer fills its outbound queue; the gauge shows it and receipts wait."""
        self.use(session=SessionSettings(outbound_window=1, outbound_queue_limit=1))
        esme = SilentESME()
        self.smsc.connect(esme)
        esme.send(wire.bind())
        self.smsc.flush()
        for sequence in (2, 3, 4):
            esme.send(wire.submit_sm(sequence))
        self.smsc.flush()
        self.smsc.advance(6)
        found = self.scrape()
        self.assertEqual(found[("smsc_sim_sessions_at_queue_limit", (("instance", "SMPP1"),))], 1)
        self.assertEqual(found[("smsc_sim_pending_deliveries", (("cluster", "NA"),))], 2)
        self.assertEqual(found[("smsc_sim_outbound_queue_full_total", (("cluster", "NA"),))], 0)

    def test_outbound_queue_full(self) -> None:
        """A delivery a session refuses because its queue is full is counted (the router normally avoids it)."""
        self.use(session=SessionSettings(outbound_window=1, outbound_queue_limit=1))
        self.smsc.simulator.cores["NA"].router.queue_limit = 5  # let the router pick the full session anyway
        esme = SilentESME()
        self.smsc.connect(esme)
        esme.send(wire.bind())
        self.smsc.flush()
        for sequence in (2, 3, 4):
            esme.send(wire.submit_sm(sequence))
        self.smsc.flush()
        self.smsc.advance(6)
        self.assertGreaterEqual(self.scrape()[("smsc_sim_outbound_queue_full_total", (("cluster", "NA"),))], 1)


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

        @provider(ILogObserver)
        def observe(event: LogEvent) -> None:
            logged.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
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
