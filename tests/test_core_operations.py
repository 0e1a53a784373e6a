"""query_sm, cancel_sm, replace_sm, replace_if_present, submit_multi and data_sm."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.smpp.constants import CommandId, CommandStatus, MessageState, Tag
from smsc_sim.smpp.pdu import DestAddress, UnsuccessSME
from tests.test_core_fakes import Harness, ScriptedScenario

SRC = "447700900001"
DST = "447700900002"


def slow() -> ScriptedScenario:
    """Messages delivered after 100 s, so they stay pending during a test."""
    return ScriptedScenario(plan=ReceiptPlan(steps=(ReceiptStep(100, "DELIVRD"),)))


class QueryTests(SynchronousTestCase):
    def test_query_pending_then_final(self) -> None:
        """query_sm shows ENROUTE with no final_date, then DELIVERED with the final date."""
        h = Harness()
        s = h.bound()
        message_id = h.submit_id(s)
        reply = h.request(s, CommandId.query_sm, message_id=message_id, source_addr=SRC, source_addr_ton=1, source_addr_npi=1)
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_id, CommandId.query_sm_resp)
        p = reply.pdu.params
        self.assertEqual((p["message_id"], p["final_date"], p["message_state"], p["error_code"]), (message_id, "", 1, 0))
        h.clock.advance(1)
        p = h.request(s, CommandId.query_sm, message_id=message_id, source_addr=SRC).pdu.params  # type: ignore[union-attr]
        self.assertEqual((p["final_date"], p["message_state"]), ("231114221321000+", 2))

    def test_query_fail(self) -> None:
        """An unknown id, a different source, or another account's message gets ESME_RQUERYFAIL."""
        h = Harness(accounts=(AccountSettings("esme", "secret", throughput=0), AccountSettings("other", "pw", throughput=0)))
        s = h.bound()
        other = h.session()
        h.bind(other, system_id="other", password="pw")
        message_id = h.submit_id(s)
        for session, mid, source in ((s, "FFFF", SRC), (s, message_id, "123"), (other, message_id, SRC)):
            reply = h.request(session, CommandId.query_sm, message_id=mid, source_addr=source)
            self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RQUERYFAIL)  # type: ignore[union-attr]


class CancelTests(SynchronousTestCase):
    def test_cancel_by_id(self) -> None:
        """cancel_sm of a pending message ends it DELETED, with a DELETED receipt when asked; twice fails."""
        h = Harness(slow())
        s = h.bound()
        message_id = h.submit_id(s, registered_delivery=1)
        reply = h.request(s, CommandId.cancel_sm, message_id=message_id, source_addr=SRC)
        self.assertEqual((reply.pdu.command_id, reply.pdu.command_status), (CommandId.cancel_sm_resp, 0))  # type: ignore[union-attr]
        self.assertEqual(h.core.message(message_id).state, MessageState.DELETED)  # type: ignore[union-attr]
        [receipt] = s.pdus
        self.assertIn(b"stat:DELETED", receipt.params["short_message"])
        again = h.request(s, CommandId.cancel_sm, message_id=message_id, source_addr=SRC)
        self.assertEqual(again.pdu.command_status, CommandStatus.ESME_RCANCELFAIL)  # type: ignore[union-attr]
        h.clock.advance(200)
        self.assertEqual(len(s.pdus), 1)

    def test_cancel_by_addresses(self) -> None:
        """cancel_sm with no message_id cancels every pending message from that source to that destination."""
        h = Harness(slow())
        s = h.bound()
        ids = [h.submit_id(s) for _ in range(2)]
        other = h.submit_id(s, destination_addr="999")
        reply = h.request(s, CommandId.cancel_sm, source_addr=SRC, destination_addr=DST)
        self.assertEqual(reply.pdu.command_status, 0)  # type: ignore[union-attr]
        states = [h.core.message(i).state for i in ids + [other]]  # type: ignore[union-attr]
        self.assertEqual(states, [MessageState.DELETED, MessageState.DELETED, MessageState.ENROUTE])
        none_left = h.request(s, CommandId.cancel_sm, source_addr=SRC, destination_addr=DST)
        self.assertEqual(none_left.pdu.command_status, CommandStatus.ESME_RCANCELFAIL)  # type: ignore[union-attr]

    def test_cancel_final_fails(self) -> None:
        """A delivered message cannot be cancelled."""
        h = Harness()
        s = h.bound()
        message_id = h.submit_id(s)
        h.clock.advance(1)
        reply = h.request(s, CommandId.cancel_sm, message_id=message_id, source_addr=SRC)
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RCANCELFAIL)  # type: ignore[union-attr]


class ReplaceTests(SynchronousTestCase):
    def test_replace_sm(self) -> None:
        """replace_sm changes the text and restarts the plan from the replace_sm_resp."""
        h = Harness(ScriptedScenario(plan=ReceiptPlan(steps=(ReceiptStep(10, "DELIVRD"),))))
        s = h.bound()
        message_id = h.submit_id(s, registered_delivery=1)
        h.clock.advance(5)
        reply = h.request(s, CommandId.replace_sm, message_id=message_id, source_addr=SRC, short_message=b"new", registered_delivery=1)
        self.assertEqual((reply.pdu.command_id, reply.pdu.command_status), (CommandId.replace_sm_resp, 0))  # type: ignore[union-attr]
        record = h.core.message(message_id)
        assert record is not None
        self.assertEqual(record.text, "new")
        h.clock.advance(5)
        self.assertEqual(s.pdus, [])  # the old step no longer applies
        h.clock.advance(5)
        self.assertEqual(len(s.pdus), 1)

    def test_replace_fail(self) -> None:
        """replace_sm of an unknown, final or foreign-source message gets ESME_RREPLACEFAIL."""
        h = Harness()
        s = h.bound()
        message_id = h.submit_id(s)
        for mid, source in (("00", SRC), (message_id, "1")):
            reply = h.request(s, CommandId.replace_sm, message_id=mid, source_addr=source)
            self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RREPLACEFAIL)  # type: ignore[union-attr]
        h.clock.advance(1)
        reply = h.request(s, CommandId.replace_sm, message_id=message_id, source_addr=SRC)
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RREPLACEFAIL)  # type: ignore[union-attr]

    def test_replace_if_present(self) -> None:
        """submit_sm with replace_if_present_flag 1 replaces the pending message in place and returns its id."""
        h = Harness(slow())
        s = h.bound()
        message_id = h.submit_id(s, short_message=b"old")
        again = h.submit_id(s, short_message=b"new", replace_if_present_flag=1)
        self.assertEqual(again, message_id)
        self.assertEqual(h.core.message(message_id).text, "new")  # type: ignore[union-attr]
        self.assertEqual(len(h.core.store), 1)
        different = h.submit_id(s, short_message=b"x", replace_if_present_flag=1, service_type="OTHER")
        self.assertNotEqual(different, message_id)


class MultiAndDataTests(SynchronousTestCase):
    def test_submit_multi(self) -> None:
        """submit_multi: one record and one receipt per good destination; bad ones and unknown lists in unsuccess_sme."""
        h = Harness()
        s = h.bound()
        dests = (
            DestAddress(1, 1, 1, "111"),
            DestAddress(1, 9, 1, "222"),
            DestAddress(2, 0, 0, "friends"),
            DestAddress(1, 1, 1, "333"),
        )
        reply = h.request(
            s, CommandId.submit_multi, source_addr=SRC, dest_address=dests, short_message=b"hi", registered_delivery=1
        )
        assert reply.pdu is not None
        self.assertEqual((reply.pdu.command_id, reply.pdu.command_status), (CommandId.submit_multi_resp, 0))
        message_id = reply.pdu.params["message_id"]
        self.assertEqual(
            list(reply.pdu.params["unsuccess_sme"]),
            [UnsuccessSME(9, 1, "222", CommandStatus.ESME_RINVDSTTON), UnsuccessSME(0, 0, "friends", CommandStatus.ESME_RINVDLNAME)],
        )
        records = h.core.messages()
        self.assertEqual([(r.message_id, r.destination_addr) for r in records], [(message_id, "111"), (message_id, "333")])
        h.clock.advance(1)
        self.assertEqual([p.params["source_addr"] for p in s.pdus], ["111", "333"])
        self.assertEqual({p.tlvs[Tag.receipted_message_id] for p in s.pdus}, {message_id.encode() + b"\x00"})

    def test_submit_multi_number_of_dests(self) -> None:
        """submit_multi with no destination or more than 254 gets ESME_RINVNUMDESTS."""
        h = Harness()
        s = h.bound()
        for dests in ((), tuple(DestAddress(1, 1, 1, str(n)) for n in range(255))):
            reply = h.request(s, CommandId.submit_multi, source_addr=SRC, dest_address=dests)
            self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RINVNUMDESTS)  # type: ignore[union-attr]

    def test_distribution_list(self) -> None:
        """A known distribution list expands to its members."""
        h = Harness()
        h.core.distribution_lists["friends"] = ((1, 1, "444"), (1, 1, "555"))
        s = h.bound()
        reply = h.request(s, CommandId.submit_multi, source_addr=SRC, dest_address=(DestAddress(2, 0, 0, "friends"),))
        self.assertEqual(reply.pdu.params["unsuccess_sme"], ())  # type: ignore[union-attr]
        self.assertEqual([r.destination_addr for r in h.core.messages()], ["444", "555"])

    def test_data_sm(self) -> None:
        """data_sm takes its text from message_payload, answers data_sm_resp with an id, and gets a receipt."""
        h = Harness()
        s = h.bound()
        reply = h.request(s, CommandId.data_sm, registered_delivery=1, tlvs={Tag.message_payload: b"payload text"})
        assert reply.pdu is not None
        self.assertEqual((reply.pdu.command_id, reply.pdu.command_status), (CommandId.data_sm_resp, 0))
        record = h.core.message(reply.pdu.params["message_id"])
        assert record is not None
        self.assertEqual((record.text, record.command), ("payload text", "data_sm"))
        h.clock.advance(1)
        self.assertEqual(len(s.pdus), 1)

    def test_data_sm_checks(self) -> None:
        """data_sm with a bad destination TON gets ESME_RINVDSTTON."""
        h = Harness()
        reply = h.request(h.bound(), CommandId.data_sm, dest_addr_ton=8)
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RINVDSTTON)  # type: ignore[union-attr]
