"""Receipts: text, TLVs, registered_delivery, plans, schedule and validity."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import ReceiptPlan, ReceiptStep, Verdict
from smsc_sim.smpp.constants import CommandId, MessageState, Tag
from tests.test_core_fakes import T0, Harness, ScriptedScenario


def plan_scenario(*steps: ReceiptStep, **kw: object) -> ScriptedScenario:
    return ScriptedScenario(plan=ReceiptPlan(steps=steps, **kw))  # type: ignore[arg-type]


class ReceiptTextTests(SynchronousTestCase):
    def test_exact_receipt(self) -> None:
        """With a pinned clock the receipt is the provider's text, decimal id, and the hex id in the TLV."""
        h = Harness()
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1, source_addr="447700900001", destination_addr="15550001")
        h.clock.advance(0.9)
        self.assertEqual(session.pdus, [])
        h.clock.advance(0.1)
        [pdu] = session.pdus
        self.assertEqual(pdu.command_id, CommandId.deliver_sm)
        self.assertEqual(pdu.params["esm_class"], 0x04)
        self.assertEqual(
            pdu.params["short_message"].decode(),
            f"id:{int(message_id, 16)} sub:001 dlvrd:001 submit date:2311142213 done date:2311142213"
            " stat:DELIVRD err:000 text:none",
        )
        self.assertEqual(
            (pdu.params["source_addr"], pdu.params["destination_addr"]), ("15550001", "447700900001")
        )
        self.assertEqual(pdu.tlvs[Tag.receipted_message_id], message_id.encode() + b"\x00")
        self.assertEqual(pdu.tlvs[Tag.message_state], b"\x02")
        self.assertNotIn(Tag.network_error_code, pdu.tlvs)

    def test_swapped_ton_npi(self) -> None:
        """The receipt's source TON/NPI are the original destination's and vice versa."""
        h = Harness()
        session = h.bound()
        h.submit(session, registered_delivery=1, source_addr_ton=5, source_addr_npi=0, source_addr="Brand")
        h.clock.advance(1)
        p = session.pdus[0].params
        self.assertEqual((p["source_addr_ton"], p["source_addr_npi"], p["dest_addr_ton"], p["dest_addr_npi"]), (1, 1, 5, 0))
        self.assertEqual(p["destination_addr"], "Brand")

    def test_id_formats_and_network_error(self) -> None:
        """The plan's id formats apply to the text and the TLV; network_error_code is added when given."""
        h = Harness(
            plan_scenario(
                ReceiptStep(0.5, "UNDELIV", 5), id_format="hex", tlv_id_format="hex-lower", network_error_code=b"\x03\x00\x01"
            )
        )
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(0.5)
        [pdu] = session.pdus
        self.assertTrue(pdu.params["short_message"].decode().startswith(f"id:{message_id} sub:001 dlvrd:000"))
        self.assertIn(b"stat:UNDELIV err:005", pdu.params["short_message"])
        self.assertEqual(pdu.tlvs[Tag.receipted_message_id], message_id.lower().encode() + b"\x00")
        self.assertEqual(pdu.tlvs[Tag.network_error_code], b"\x03\x00\x01")
        self.assertEqual(pdu.tlvs[Tag.message_state], bytes([MessageState.UNDELIVERABLE]))

    def test_omit_tlv_id(self) -> None:
        """tlv_id_format omit leaves receipted_message_id out."""
        h = Harness(plan_scenario(ReceiptStep(1, "DELIVRD"), tlv_id_format="omit"))
        session = h.bound()
        h.submit(session, registered_delivery=1)
        h.clock.advance(1)
        self.assertNotIn(Tag.receipted_message_id, session.pdus[0].tlvs)

    def test_no_tlvs_for_smpp33(self) -> None:
        """A receiver bound with interface_version 0x33 gets the receipt without any TLV."""
        h = Harness()
        session = h.bound(interface_version=0x33)
        h.submit(session, registered_delivery=1)
        h.clock.advance(1)
        [pdu] = session.pdus
        self.assertEqual(pdu.tlvs, {})
        self.assertIn(b"stat:DELIVRD", pdu.params["short_message"])

    def test_receipts_as_data_sm(self) -> None:
        """An account with receipts_as data_sm gets a data_sm with the text in message_payload."""
        h = Harness(accounts=(AccountSettings("esme", "secret", throughput=0, receipts_as="data_sm"),))
        session = h.bound()
        h.submit(session, registered_delivery=1)
        h.clock.advance(1)
        [pdu] = session.pdus
        self.assertEqual(pdu.command_id, CommandId.data_sm)
        self.assertEqual(pdu.params["esm_class"], 0x04)
        self.assertIn(b"stat:DELIVRD", pdu.tlvs[Tag.message_payload])


class RegisteredDeliveryTests(SynchronousTestCase):
    def receipts(self, registered_delivery: int, *steps: ReceiptStep) -> list[bytes]:
        h = Harness(plan_scenario(*steps))
        session = h.bound()
        h.submit(session, registered_delivery=registered_delivery)
        for _ in range(10):
            h.clock.advance(1)
        return [pdu.params["short_message"][pdu.params["short_message"].index(b"stat:") :][:12] for pdu in session.pdus]

    def test_none(self) -> None:
        """registered_delivery 0 gets no receipt."""
        self.assertEqual(self.receipts(0, ReceiptStep(1, "DELIVRD")), [])

    def test_failure_only(self) -> None:
        """registered_delivery 2 gets a receipt for UNDELIV but not for DELIVRD."""
        self.assertEqual(self.receipts(2, ReceiptStep(1, "DELIVRD")), [])
        self.assertEqual(self.receipts(2, ReceiptStep(1, "UNDELIV", 1)), [b"stat:UNDELIV"])

    def test_intermediate_only_when_asked(self) -> None:
        """Intermediate steps (esm_class 0x20) go out only with bit 0x10 set."""
        steps = (ReceiptStep(1, "ENROUTE", intermediate=True), ReceiptStep(2, "DELIVRD"))
        self.assertEqual(self.receipts(1, *steps), [b"stat:DELIVRD"])
        self.assertEqual(self.receipts(0x11, *steps), [b"stat:ENROUTE", b"stat:DELIVRD"])

    def test_intermediate_esm_class(self) -> None:
        """An intermediate notification has esm_class 0x20."""
        h = Harness(plan_scenario(ReceiptStep(1, "ACCEPTD", intermediate=True)))
        session = h.bound()
        h.submit(session, registered_delivery=0x10)
        h.clock.advance(1)
        self.assertEqual(session.pdus[0].params["esm_class"], 0x20)

    def test_duplicate(self) -> None:
        """A plan with duplicate sends the final receipt twice."""
        h = Harness(plan_scenario(ReceiptStep(1, "DELIVRD"), duplicate=True))
        session = h.bound()
        h.submit(session, registered_delivery=1)
        h.clock.advance(1)
        self.assertEqual(len(session.pdus), 2)
        self.assertEqual(session.pdus[0].params, session.pdus[1].params)

    def test_accepted_is_final(self) -> None:
        """A plan ending ACCEPTD leaves the message ACCEPTED: no EXPIRED receipt follows at its validity."""
        h = Harness(plan_scenario(ReceiptStep(1, "ACCEPTD")))
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1, validity_period="000000000010000R")
        h.clock.advance(1)
        h.clock.advance(60)
        self.assertEqual(len(session.pdus), 1)
        self.assertIn(b"stat:ACCEPTD", session.pdus[0].params["short_message"])
        self.assertEqual(h.core.message(message_id).state, MessageState.ACCEPTED)  # type: ignore[union-attr]

    def test_verdict_plan_wins(self) -> None:
        """A verdict's own plan replaces the scenario's default plan."""
        scenario = ScriptedScenario(answer=Verdict(receipt=ReceiptPlan(steps=(ReceiptStep(3, "REJECTD", 99),))))
        h = Harness(scenario)
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1)
        h.clock.advance(1)
        h.clock.advance(2)
        self.assertIn(b"stat:REJECTD err:099", session.pdus[0].params["short_message"])
        self.assertEqual(h.core.message(message_id).state, MessageState.REJECTED)  # type: ignore[union-attr]


class TimingTests(SynchronousTestCase):
    def test_schedule_delays_receipt(self) -> None:
        """A message scheduled 60 s ahead gets its receipt 1 s after the scheduled time, not before."""
        h = Harness()
        session = h.bound()
        h.submit(session, registered_delivery=1, schedule_delivery_time="000000000100000R")
        h.clock.advance(60)
        self.assertEqual(session.pdus, [])
        h.clock.advance(1)
        self.assertEqual(len(session.pdus), 1)

    def test_expiry_at_validity(self) -> None:
        """A message still pending at its validity deadline ends EXPIRED with an EXPIRED receipt."""
        h = Harness(plan_scenario(ReceiptStep(600, "DELIVRD")))
        session = h.bound()
        message_id = h.submit_id(session, registered_delivery=1, validity_period="000000000500000R")
        h.clock.advance(299)
        self.assertEqual(session.pdus, [])
        h.clock.advance(1)
        [pdu] = session.pdus
        self.assertIn(b"stat:EXPIRED err:002", pdu.params["short_message"])
        record = h.core.message(message_id)
        assert record is not None
        self.assertEqual(record.state, MessageState.EXPIRED)
        self.assertEqual(record.final_time, T0 + 300)

    def test_empty_plan_expires_at_default_validity(self) -> None:
        """With an empty plan the message stays ENROUTE until the default validity, then EXPIRED."""
        h = Harness(plan_scenario(), default_validity=3600.0)
        message_id = h.submit_id(h.bound())
        h.clock.advance(3599)
        self.assertEqual(h.core.message(message_id).state, MessageState.ENROUTE)  # type: ignore[union-attr]
        h.clock.advance(1)
        self.assertEqual(h.core.message(message_id).state, MessageState.EXPIRED)  # type: ignore[union-attr]

    def test_relative_validity_capped(self) -> None:
        """A relative validity longer than max_validity is cut to it."""
        h = Harness(max_validity=100.0)
        record = h.core.message(h.submit_id(h.bound(), validity_period="000010000000000R"))
        assert record is not None
        self.assertEqual(record.validity_time, T0 + 100)

    def test_force_receipt(self) -> None:
        """force_receipt sends the receipt now even without registered_delivery and ends the plan."""
        h = Harness()
        session = h.bound()
        message_id = h.submit_id(session)
        h.core.force_receipt(message_id, "UNDELIV", 11)
        [pdu] = session.pdus
        self.assertIn(b"stat:UNDELIV err:011", pdu.params["short_message"])
        h.clock.advance(5)
        self.assertEqual(h.core.message(message_id).state, MessageState.UNDELIVERABLE)  # type: ignore[union-attr]
        with self.assertRaises(KeyError):
            h.core.force_receipt("nope", "DELIVRD")

    def test_state_events(self) -> None:
        """Each state change is published as a message event."""
        h = Harness()
        message_id = h.submit_id(h.bound())
        h.clock.advance(1)
        states = [(e.data["message_id"], e.data["state"]) for e in h.kinds("message")]
        self.assertEqual(states, [(message_id, "ENROUTE"), (message_id, "DELIVERED")])

    def test_one_clock_call_per_bucket(self) -> None:
        """A thousand messages submitted in the same instant need a single clock call for their receipts."""
        h = Harness()
        session = h.bound()
        for _ in range(1000):
            h.submit(session, registered_delivery=1)
        self.assertEqual(len(h.clock.getDelayedCalls()), 1)
        h.clock.advance(1)
        self.assertEqual(len(session.pdus), 1000)
