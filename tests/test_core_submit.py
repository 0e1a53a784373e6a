"""The submit path: field checks, throttling, verdicts, records, store bounds."""

from __future__ import annotations

from typing import Any

import re

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import AfterReply, MessageFacts, ReceiptPlan, Respond, ThrottleSettings, Verdict
from smsc_sim.smpp.constants import BindType, CommandId, CommandStatus, MessageState, Tag
from tests.test_core_fakes import T0, Harness, ScriptedScenario


class ValidationTests(SynchronousTestCase):
    def status(self, **params: Any) -> int:
        h = Harness()
        reply = h.submit(h.bound(), **params)
        assert reply.pdu is not None
        return reply.pdu.command_status

    def test_field_statuses(self) -> None:
        """Each invalid field of submit_sm gets the status SMPP 3.4 names for it."""
        cases: list[tuple[dict[str, Any], int]] = [
            ({"source_addr_ton": 7}, CommandStatus.ESME_RINVSRCTON),
            ({"source_addr_npi": 2}, CommandStatus.ESME_RINVSRCNPI),
            ({"dest_addr_ton": 9}, CommandStatus.ESME_RINVDSTTON),
            ({"dest_addr_npi": 5}, CommandStatus.ESME_RINVDSTNPI),
            ({"destination_addr": ""}, CommandStatus.ESME_RINVDSTADR),
            ({"esm_class": 0x0C}, CommandStatus.ESME_RINVESMCLASS),
            ({"esm_class": 0x04}, CommandStatus.ESME_RINVESMCLASS),
            ({"registered_delivery": 3}, CommandStatus.ESME_RINVREGDLVFLG),
            ({"priority_flag": 4}, CommandStatus.ESME_RINVPRTFLG),
            ({"replace_if_present_flag": 2}, CommandStatus.ESME_RINVREPFLAG),
            ({"tlvs": {Tag.message_payload: b"x"}}, CommandStatus.ESME_RINVMSGLEN),
            ({"schedule_delivery_time": "garbage"}, CommandStatus.ESME_RINVSCHED),
            ({"validity_period": "991399000000000+"}, CommandStatus.ESME_RINVEXPIRY),
            ({"validity_period": "200101000000000+"}, CommandStatus.ESME_RINVEXPIRY),
        ]
        for params, expected in cases:
            self.assertEqual((params, self.status(**params)), (params, expected))

    def test_accepted_variants(self) -> None:
        """Every NPI of the spec, esm_class types 0x08/0x10 with UDHI, and any data_coding are accepted."""
        variants: tuple[dict[str, Any], ...] = (
            {"source_addr_npi": 18, "dest_addr_npi": 14},
            {"esm_class": 0x08},
            {"esm_class": 0x10 | 0x80},
            {"data_coding": 0xF5},
            {"data_coding": 0x0B},
            {"short_message": b"", "tlvs": {Tag.message_payload: b"long text"}},
            {"registered_delivery": 0x11},
        )
        for params in variants:
            self.assertEqual((params, self.status(**params)), (params, 0))


class AcceptTests(SynchronousTestCase):
    def test_message_id_and_record(self) -> None:
        """An accepted submit_sm gets 16 upper-case hex digits and an ENROUTE record with its fields."""
        h = Harness()
        session = h.bound("SMPP2")
        reply = h.submit(session, sent=False, short_message=b"caf\xe9", data_coding=3, service_type="CMT")
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_id, CommandId.submit_sm_resp)
        self.assertEqual(reply.pdu.sequence_number, 7)
        message_id = reply.pdu.params["message_id"]
        self.assertTrue(re.fullmatch(r"[0-9A-F]{16}", message_id), message_id)
        record = h.core.message(message_id)
        assert record is not None
        self.assertEqual(record.state, MessageState.ENROUTE)
        self.assertEqual(record.text, "café")
        self.assertEqual((record.instance, record.account, record.service_type), ("SMPP2", "esme", "CMT"))
        self.assertEqual(record.history, [(T0, "ENROUTE")])
        data = record.to_dict()
        self.assertEqual(data["short_message_hex"], "636166e9")
        self.assertEqual(data["state"], "ENROUTE")

    def test_ids_unique(self) -> None:
        """Message ids never repeat, across cores too."""
        a, b = Harness(), Harness()
        sa, sb = a.bound(), b.bound()
        ids = [a.submit_id(sa) for _ in range(50)] + [b.submit_id(sb) for _ in range(50)]
        self.assertEqual(len(set(ids)), 100)

    def test_decimal_ids(self) -> None:
        """
        message_id_format decimal writes the same message number in decimal:
        the next number after a hex16 id, and the number the receipt's text
        and receipted_message_id carry.
        """
        hex_core, decimal_core = Harness(), Harness(message_id_format="decimal")
        hex_id = hex_core.submit_id(hex_core.bound())
        session = decimal_core.bound()
        decimal_id = decimal_core.submit_id(session, registered_delivery=1)
        self.assertRegex(decimal_id, r"^[1-9][0-9]*$")
        self.assertEqual(int(decimal_id), int(hex_id, 16) + 1)  # one process-wide counter
        self.assertEqual(int(decimal_id) >> 56, 0x0B)  # the provider's top octet, as in hex ids
        decimal_core.clock.advance(1)
        [receipt] = session.pdus
        self.assertTrue(receipt.params["short_message"].decode().startswith(f"id:{decimal_id} sub:001 "))
        self.assertEqual(receipt.tlvs[Tag.receipted_message_id], decimal_id.encode() + b"\x00")

    def test_text_of_each_kind_of_message(self) -> None:
        """The record's text (what the API shows) is the message's, whether it is the octets as they came
        (Latin-1, IA5, message_payload), follows a UDH, or is decoded from UCS-2 or GSM 03.38."""
        h = Harness()
        session = h.bound()
        udh = b"\x05\x00\x03\x2a\x02\x01"
        cases: list[tuple[dict[str, Any], str]] = [
            ({"short_message": b"Hello \xe9t\xe9"}, "Hello été"),
            ({"short_message": b"plain ascii", "data_coding": 1}, "plain ascii"),
            ({"short_message": b"", "tlvs": {Tag.message_payload: b"from the payload"}}, "from the payload"),
            ({"short_message": udh + b"part one", "esm_class": 0x40}, "part one"),
            ({"short_message": "\u20ac5".encode("utf-16-be"), "data_coding": 8}, "\u20ac5"),
        ]
        for params, text in cases:
            record = h.core.message(h.submit_id(session, **params))
            assert record is not None
            self.assertEqual((params, record.text, record.to_dict()["text"]), (params, text, text))

    def test_undecodable_text_flagged(self) -> None:
        """A UCS-2 message with an odd octet count is kept, with undecodable set and no text."""
        h = Harness()
        record = h.core.message(h.submit_id(h.bound(), data_coding=8, short_message=b"\x00a\x00"))
        assert record is not None
        self.assertTrue(record.undecodable)
        self.assertIsNone(record.text)

    def test_default_plan_delivers_after_one_second(self) -> None:
        """With no receipt asked for, the message still becomes DELIVERED one second after its response."""
        h = Harness()
        message_id = h.submit_id(h.bound())
        h.clock.advance(1.0)
        record = h.core.message(message_id)
        assert record is not None
        self.assertEqual(record.state, MessageState.DELIVERED)
        self.assertEqual(record.final_time, T0 + 1.0)

    def test_plan_waits_for_response(self) -> None:
        """Nothing happens to a message until its response has been written."""
        h = Harness()
        reply = h.submit(h.bound(), sent=False, registered_delivery=1)
        h.clock.advance(10)
        record = h.core.message(reply.pdu.params["message_id"])  # type: ignore[union-attr]
        assert record is not None
        self.assertEqual(record.state, MessageState.ENROUTE)


class VerdictTests(SynchronousTestCase):
    def test_rejection_makes_no_record(self) -> None:
        """A verdict status other than 0 is the response status; nothing is stored."""
        h = Harness(ScriptedScenario(answer=Verdict(status=0x45, latency=2.5, then=AfterReply.unbind)))
        reply = h.submit(h.bound(), registered_delivery=1)
        assert reply.pdu is not None
        self.assertEqual((reply.pdu.command_status, reply.delay, reply.then), (0x45, 2.5, AfterReply.unbind))
        self.assertEqual(len(h.core.store), 0)
        self.assertEqual(h.core.stats()["submits"], {"ESME_RSUBMITFAIL": 1})

    def test_no_response(self) -> None:
        """Respond.none gives a reply with no PDU and no record."""
        h = Harness(ScriptedScenario(answer=Verdict(respond=Respond.none)))
        reply = h.submit(h.bound())
        self.assertIsNone(reply.pdu)
        self.assertEqual(len(h.core.store), 0)

    def test_generic_nack(self) -> None:
        """Respond.generic_nack keeps the sequence number; status 0 becomes ESME_RUNKNOWNERR."""
        h = Harness(ScriptedScenario(answer=Verdict(respond=Respond.generic_nack)))
        reply = h.submit(h.bound())
        assert reply.pdu is not None
        self.assertEqual(
            (reply.pdu.command_id, reply.pdu.sequence_number, reply.pdu.command_status),
            (CommandId.generic_nack, 7, CommandStatus.ESME_RUNKNOWNERR),
        )

    def test_generic_nack_no_seq(self) -> None:
        """Respond.generic_nack_no_seq answers with sequence number 0 and the verdict's status."""
        h = Harness(ScriptedScenario(answer=Verdict(status=0x08, respond=Respond.generic_nack_no_seq)))
        reply = h.submit(h.bound())
        assert reply.pdu is not None
        self.assertEqual((reply.pdu.sequence_number, reply.pdu.command_status), (0, 0x08))

    def test_facts(self) -> None:
        """The scenario sees the command, instance, account, addresses and decoded text."""
        scenario = ScriptedScenario()
        h = Harness(scenario)
        h.submit(h.bound("SMPP2"), short_message=b"hi there", registered_delivery=1)
        [facts] = scenario.facts
        self.assertEqual(
            (facts.command, facts.instance, facts.system_id, facts.text, facts.parts_total, facts.registered_delivery),
            ("submit_sm", "SMPP2", "esme", "hi there", 1, 1),
        )


    def test_facts_are_whole(self) -> None:
        """Every field the scenario may match on is set, equal to what MessageFacts itself builds."""
        scenario = ScriptedScenario()
        h = Harness(scenario)
        h.submit(h.bound("SMPP2"), short_message=b"hi there", registered_delivery=1, esm_class=0, data_coding=0)
        [facts] = scenario.facts
        expected = MessageFacts(
            "submit_sm", "SMPP2", "esme", BindType.transceiver, "447700900001", "447700900002", "hi there", 0, 0, 1, 1
        )
        self.assertEqual(facts, expected)
        self.assertEqual(hash(facts), hash(expected))

class ThrottleTests(SynchronousTestCase):
    def test_account_throughput_across_cluster(self) -> None:
        """An account of 2/s in the bucket model shares its bucket across both instances: the third submit gets ESME_RTHROTTLED."""
        h = Harness(accounts=(AccountSettings("esme", "secret", throughput=2, throttle_model="bucket"),))
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        statuses = [h.submit(s).pdu.command_status for s in (one, two, one)]  # type: ignore[union-attr]
        self.assertEqual(statuses, [0, 0, CommandStatus.ESME_RTHROTTLED])
        h.clock.advance(0.5)
        self.assertEqual(h.submit(two).pdu.command_status, 0)  # type: ignore[union-attr]
        self.assertEqual(h.core.stats()["throttled"], 1)

    def test_scenario_throttle_per_bind_with_status(self) -> None:
        """A scenario throttle of scope bind limits each session alone, with its own status."""
        scenario = ScriptedScenario(throttle_settings=ThrottleSettings(rate=1, burst=1, scope="bind", status=0x14))
        h = Harness(scenario)
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        statuses = [h.submit(s).pdu.command_status for s in (one, two, one)]  # type: ignore[union-attr]
        self.assertEqual(statuses, [0, 0, 0x14])

    def test_penalty(self) -> None:
        """After a violation with a penalty, everything is refused until the penalty ends."""
        scenario = ScriptedScenario(throttle_settings=ThrottleSettings(rate=10, burst=1, penalty=5.0))
        h = Harness(scenario)
        s = h.bound()
        self.assertEqual(h.submit(s).pdu.command_status, 0)  # type: ignore[union-attr]
        self.assertEqual(h.submit(s).pdu.command_status, 0x58)  # type: ignore[union-attr]
        h.clock.advance(4.9)
        self.assertEqual(h.submit(s).pdu.command_status, 0x58)  # type: ignore[union-attr]
        h.clock.advance(0.2)
        self.assertEqual(h.submit(s).pdu.command_status, 0)  # type: ignore[union-attr]


class StoreBoundTests(SynchronousTestCase):
    def test_full_of_pending_gets_msgqful(self) -> None:
        """With the store full of pending messages, a submit gets ESME_RMSGQFUL."""
        h = Harness(ScriptedScenario(plan=ReceiptPlan()), store_max_messages=3)
        s = h.bound()
        for _ in range(3):
            h.submit_id(s)
        self.assertEqual(h.submit(s).pdu.command_status, CommandStatus.ESME_RMSGQFUL)  # type: ignore[union-attr]

    def test_final_records_evicted_oldest_first(self) -> None:
        """When full, the oldest final record makes room for a new one."""
        h = Harness(store_max_messages=3)
        s = h.bound()
        first, second = h.submit_id(s), h.submit_id(s)
        h.clock.advance(1.0)  # both DELIVERED
        third, fourth = h.submit_id(s), h.submit_id(s)
        self.assertIsNone(h.core.message(first))
        self.assertIsNotNone(h.core.message(second))
        self.assertIsNotNone(h.core.message(fourth))
        self.assertEqual(h.core.stats()["store_size"], 3)
        self.assertIsNotNone(h.core.message(third))

    def test_final_ttl(self) -> None:
        """Final records older than store_final_ttl are gone."""
        h = Harness(store_final_ttl=60.0)
        message_id = h.submit_id(h.bound())
        h.clock.advance(1)  # DELIVERED at T0 + 1
        h.clock.advance(59.9)
        self.assertIsNotNone(h.core.message(message_id))
        h.clock.advance(0.1)
        self.assertIsNone(h.core.message(message_id))


class OrphanTests(SynchronousTestCase):
    def test_unwritten_responses_expire_when_store_is_full(self) -> None:
        """Messages whose response was never written are expired past their validity to make room."""
        h = Harness(store_max_messages=2, default_validity=60.0)
        s = h.bound()
        orphans = [h.submit(s, sent=False).pdu.params["message_id"] for _ in range(2)]  # type: ignore[union-attr]
        self.assertEqual(h.submit(s, sent=False).pdu.command_status, CommandStatus.ESME_RMSGQFUL)  # type: ignore[union-attr]
        h.clock.advance(60)
        self.assertEqual(h.submit(s).pdu.command_status, 0)  # type: ignore[union-attr]
        self.assertEqual(h.core.message(orphans[1]).state, MessageState.EXPIRED)  # type: ignore[union-attr]
