"""
The scenario outcome ``absent`` and alert_notification (SMPP 3.4 sections
4.12 and 5.3.2.29): a held message waits for its handset, and a submit that
asked with set_dpf = 1 gets an alert_notification on a bound receiver of the
account when the handset is back, after the hold or through the API.

The ESME speaks raw bytes (:mod:`tests.wire`) over an in-memory connection
on a fake clock; the alert_notification read back is checked with the
project's codec and with the spec's field table by hand.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.scenario.loader import ScenarioError, load_scenario
from smsc_sim.smpp.codec import decode
from smsc_sim.smpp.receipt import parse_receipt
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.test_topology_clock import ESME, temporary_file

ALERT_NOTIFICATION = 0x00000102
SET_DPF, MS_AVAILABILITY_STATUS = 0x0421, 0x0422

SCENARIO = """\
name: absent-handsets
receipt:
  stat: DELIVRD
  delay: 1s
rules:
  - name: switched-off
    match: {destination: "447700900"}
    absent: {hold: 30s}
"""


class AbsentTests(SynchronousTestCase):
    """Held messages and their alerts, on the wire."""

    def setUp(self) -> None:
        self.smsc = MemorySMSC(scenario=temporary_file(self, SCENARIO))
        self.addCleanup(self.smsc.stop)
        self.esme = ESME()
        self.smsc.connect(self.esme, "SMPP1")
        self.esme.send(wire.bind(0x09, 1))
        self.smsc.flush()
        self.assertEqual(self.esme.bind_status(), 0)

    def submit(self, destination: str, set_dpf: int | None = 1) -> str:
        tlvs = wire.tlv(SET_DPF, bytes([set_dpf])) if set_dpf is not None else b""
        sequence = self.esme.next_sequence()
        self.esme.send(wire.submit_sm(sequence, source="447700100200", destination=destination, tlvs=tlvs))
        self.smsc.flush()
        ((_, body),) = [(h, b) for h, b in self.esme.responses(0x80000004) if h.sequence_number == sequence]
        return wire.read_cstr(body)[0]

    def alerts(self) -> list[bytes]:
        """Every alert_notification the ESME got, as whole frames."""
        return [encode_frame(h, b) for h, b in self.esme.pdus if h.command_id == ALERT_NOTIFICATION]

    def receipts(self) -> list[str]:
        texts = []
        for h, b in self.esme.pdus:
            if h.command_id == 0x05:
                text = wire.deliver_sm_fields(b)["short_message"]
                assert isinstance(text, bytes), text
                texts.append(str(text, "latin-1"))
        return texts

    def test_held_message_alerts_when_the_hold_ends(self) -> None:
        """
        A submit with set_dpf 1 to a held handset: nothing for 30 s (the
        message is ENROUTE), then alert_notification with the handset as
        source_addr, the ESME address as esme_addr and ms_availability_status
        0; the DELIVRD receipt comes 1 s after that.
        """
        message_id = self.submit("447700900123")
        self.smsc.advance(29.9)
        self.assertEqual(self.alerts(), [])
        self.assertEqual(self.receipts(), [])
        self.assertEqual(self.smsc.message(message_id)["state"], "ENROUTE")  # type: ignore[index]
        self.smsc.advance(0.1)
        (frame,) = self.alerts()
        pdu = decode(frame)
        self.assertEqual(pdu.command_status, 0)
        self.assertEqual(
            {k: pdu.params[k] for k in ("source_addr_ton", "source_addr_npi", "source_addr")},
            {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "447700900123"},
        )
        self.assertEqual(
            {k: pdu.params[k] for k in ("esme_addr_ton", "esme_addr_npi", "esme_addr")},
            {"esme_addr_ton": 1, "esme_addr_npi": 1, "esme_addr": "447700100200"},
        )
        self.assertEqual(pdu.tlvs, {MS_AVAILABILITY_STATUS: b"\x00"})
        # the same octets by the spec's table: 3 + 13 + 3 + 13 octets of addresses, then the TLV
        body = frame[16:]
        self.assertEqual(body[:2] + body[2:15], b"\x01\x01447700900123\x00")
        self.assertEqual(body[-5:], struct.pack(">HHB", MS_AVAILABILITY_STATUS, 1, 0))
        self.assertEqual(self.receipts(), [])
        self.smsc.advance(1)
        (receipt,) = self.receipts()
        self.assertEqual(parse_receipt(receipt)["stat"], "DELIVRD")

    def test_no_alert_without_set_dpf(self) -> None:
        """Without set_dpf, or with set_dpf 0, a held message is delivered late but no alert_notification comes."""
        self.submit("447700900124", set_dpf=None)
        self.submit("447700900125", set_dpf=0)
        self.smsc.advance(31)
        self.assertEqual(self.alerts(), [])
        self.assertEqual(len(self.receipts()), 2)

    def test_messages_no_rule_holds_are_not_held(self) -> None:
        """Other destinations follow the plan at once, with no alert even with set_dpf."""
        self.submit("447800000001")
        self.smsc.advance(1)
        self.assertEqual(len(self.receipts()), 1)
        self.smsc.advance(60)
        self.assertEqual(self.alerts(), [])

    def test_api_brings_the_handset_back_sooner(self) -> None:
        """
        POST /api/v1/handsets/{address}/available at 5 s: the alert at once,
        the receipt 1 s later (the plan from then), and nothing more at 30 s;
        GET /api/v1/handsets lists the hold before and nothing after.
        """
        message_id = self.submit("447700900126")
        self.smsc.advance(5)
        held = self.get("/api/v1/handsets")["held"]
        self.assertEqual([(h["message_id"], h["handset"], h["alert"]) for h in held], [(message_id, "447700900126", True)])
        response = self.successResultOf(
            self.smsc.http.post("http://smsc-sim.invalid/api/v1/handsets/447700900126/available", json={})
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(self.successResultOf(response.content()))["message_ids"], [message_id])
        self.smsc.flush()
        self.assertEqual(len(self.alerts()), 1)
        self.assertEqual(self.receipts(), [])
        self.smsc.advance(1)
        self.assertEqual(len(self.receipts()), 1)
        self.smsc.advance(60)
        self.assertEqual((len(self.alerts()), len(self.receipts())), (1, 1))
        self.assertEqual(self.get("/api/v1/handsets")["held"], [])

    def test_no_receiver_bound_means_no_alert(self) -> None:
        """A transmitter-only account gets no alert_notification (an RX or TRX session is needed); it is published."""
        smsc = MemorySMSC(scenario=temporary_file(self, SCENARIO))
        self.addCleanup(smsc.stop)
        esme = ESME()
        smsc.connect(esme, "SMPP1")
        esme.send(wire.bind(0x02, 1))
        esme.send(wire.submit_sm(2, destination="447700900127", tlvs=wire.tlv(SET_DPF, b"\x01")))
        smsc.advance(30)
        self.assertEqual([h for h, _ in esme.pdus if h.command_id == ALERT_NOTIFICATION], [])
        (event,) = [e for e in smsc.events if e.kind == "alert"]
        self.assertEqual(event.data["outcome"], "no-receiver")

    def get(self, path: str) -> dict[str, Any]:
        response = self.successResultOf(self.smsc.http.get("http://smsc-sim.invalid" + path))
        self.assertEqual(response.code, 200)
        return json.loads(self.successResultOf(response.content()))


class AbsentParseTests(SynchronousTestCase):
    """The ``absent`` outcome in a scenario file."""

    def load(self, rule: str) -> object:
        return load_scenario(temporary_file(self, f"name: t\nrules:\n  - {rule}\n"))

    def test_hold_is_a_duration_or_distribution(self) -> None:
        """absent: {hold: 30s} and a uniform distribution both load; the hold is kept on the rule's outcome."""
        scenario = self.load("absent: {hold: 30s}")
        (rule,) = scenario.rule_sets["default"]  # type: ignore[attr-defined]
        self.assertEqual(rule.outcome.absent.fixed, 30.0)
        self.load("absent: {hold: {uniform: [10s, 20s]}}")

    def test_mistakes_name_line_and_key(self) -> None:
        """A missing hold, an unknown key or a refusing status with absent is an error at its line and key."""
        for rule, expected in (
            ("absent: {}", "hold"),
            ("absent: {hold: 1s, until: api}", "until"),
            ("{status: ESME_RSYSERR, absent: {hold: 1s}}", "absent holds an accepted message"),
            ("absent: {hold: -1s}", "hold"),
        ):
            with self.assertRaises(ScenarioError) as caught:
                self.load(rule)
            self.assertIn(expected, str(caught.exception))
            self.assertIn("file.yaml:3: rules[0]", str(caught.exception))


def encode_frame(header: wire.Header, body: bytes) -> bytes:
    """The whole frame of a PDU read back by :func:`wire.split_pdus`."""
    return struct.pack(">IIII", *header) + body



class AbsentDescribeTests(SynchronousTestCase):
    """What the API shows of an absent rule."""

    def test_scenario_view_shows_the_hold(self) -> None:
        """GET /api/v1/scenario shows absent.hold (seconds) on the rule that has it."""
        smsc = MemorySMSC(scenario=temporary_file(self, SCENARIO))
        self.addCleanup(smsc.stop)
        response = self.successResultOf(smsc.http.get("http://smsc-sim.invalid/api/v1/scenario"))
        view = json.loads(self.successResultOf(response.content()))["scenario"]
        (rule,) = view["rule_sets"]["default"]
        self.assertEqual((rule["name"], rule["absent"]), ("switched-off", {"hold": 30.0}))
