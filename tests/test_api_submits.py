"""
``GET /api/v1/submits`` shows every submit an ESME sent, refused ones too,
with the status it got; message lists give a ``total``; the destination
filter matches exactly and ``destination_prefix`` by prefix; ``/api`` is
an index of links.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.api.submits import SubmitLog
from smsc_sim.config import default_config
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.test_api import RecordingESME


class SubmitsTests(SynchronousTestCase):
    """The submits log over the in-memory API."""

    def setUp(self) -> None:
        self.smsc = MemorySMSC(scenario="error-codes")
        self.addCleanup(self.smsc.stop)
        self.esme = RecordingESME()
        self.smsc.connect(self.esme)
        self.esme.send(wire.bind())
        self.smsc.flush()

    def submit(self, sequence: int, destination: str) -> None:
        self.esme.send(wire.submit_sm(sequence=sequence, destination=destination))
        self.smsc.flush()

    def test_refused_and_accepted_submits_are_listed_with_their_status(self) -> None:
        """A refused submit (ESME_RINVDSTADR by the error-codes scenario) is listed beside an accepted one."""
        self.submit(2, "447700900002")
        self.submit(3, "99900011")
        [accepted, refused] = self.smsc.submits()
        self.assertEqual(
            (accepted["status_name"], accepted["destination_addr"], accepted["account"], accepted["command"]),
            ("ESME_ROK", ["447700900002"], "smppclient1", "submit_sm"),
        )
        self.assertIsNotNone(accepted["message_id"])
        self.assertEqual(
            (refused["status"], refused["status_name"], refused["message_id"]), (0x0B, "ESME_RINVDSTADR", None)
        )
        # the refused one left no message: only /submits shows it
        self.assertEqual([m["destination_addr"] for m in self.smsc.messages()], ["447700900002"])

    def test_filters_and_total(self) -> None:
        """status (name or number), account, destination (exact), destination_prefix filter; total counts all."""
        for sequence, destination in enumerate(["447700900002", "99900011", "99900011123", "447700900003"], 2):
            self.submit(sequence, destination)
        self.assertEqual(len(self.smsc.submits(status="ESME_RINVDSTADR")), 2)
        self.assertEqual(len(self.smsc.submits(status="0x0b")), 2)
        self.assertEqual(len(self.smsc.submits(status="ESME_ROK", account="smppclient1")), 2)
        self.assertEqual([s["sequence_number"] for s in self.smsc.submits(destination="99900011")], [3])
        self.assertEqual(len(self.smsc.submits(destination_prefix="4477")), 2)
        answer = self.smsc._now(self.smsc.client._call(_get("/submits", {"limit": 1})))
        self.assertEqual((answer["count"], answer["total"], answer["next_offset"]), (1, 4, 1))

    def test_bad_status_filter_is_a_400(self) -> None:
        """An unknown status name is answered 400 naming what a status may be."""
        from smsc_sim.testing.client import APIRequestError

        with self.assertRaises(APIRequestError) as raised:
            self.smsc.submits(status="sideways")
        self.assertEqual(raised.exception.status, 400)
        self.assertIn("command_status name", raised.exception.message)

    def test_reset_forgets_submits(self) -> None:
        """The API's reset forgets the submits with the messages."""
        self.submit(2, "99900011")
        self.smsc.reset()
        self.assertEqual(self.smsc.submits(), [])

    def test_the_log_is_bounded(self) -> None:
        """Only the newest entries are kept: the log never grows past its bound."""
        log = SubmitLog(self.smsc.simulator, bound=2)
        self.addCleanup(log.close)
        for sequence in range(2, 7):
            self.submit(sequence, "99900011")
        self.assertEqual([entry["sequence_number"] for entry in log.entries], [5, 6])

    def test_an_accepted_submit_outlives_its_message_in_part(self) -> None:
        """
        An accepted submit's entry shows the message's details while the store holds it; once the store let
        it go (its final TTL passed) the entry stays, with its number, status and message_id.
        """
        base = default_config()
        smsc = MemorySMSC(replace(base, core=replace(base.core, store_final_ttl=5.0)), scenario="default")
        self.addCleanup(smsc.stop)
        esme = RecordingESME()
        smsc.connect(esme)
        esme.send(wire.bind())
        esme.send(wire.submit_sm(sequence=2, destination="447700900002"))
        smsc.flush()
        [entry] = smsc.submits()
        self.assertEqual(
            (entry["account"], entry["instance"], entry["sequence_number"], entry["source_addr"],
             entry["destination_addr"], entry["status"]),
            ("smppclient1", "SMPP1", 2, "447700900001", ["447700900002"], 0),
        )  # fmt: skip
        self.assertEqual(entry["answered_at"], entry["time"])
        smsc.advance(20.0)  # DELIVRD within 5 s, then 5 s of TTL
        self.assertEqual(smsc.messages(), [])
        self.assertEqual(
            smsc.submits(),
            [{"number": 1, "time": None, "account": None, "instance": None, "session_id": None,
              "command": "submit_sm", "sequence_number": None, "source_addr": "", "destination_addr": [], "status": 0,
              "status_name": "ESME_ROK", "message_id": entry["message_id"], "answered_at": None}],
        )  # fmt: skip
        self.assertEqual(smsc.submits(account="smppclient1"), [])

    def test_a_submit_that_replaced_a_message_is_listed_as_sent(self) -> None:
        """
        A submit_sm with replace_if_present_flag=1 that replaced a pending message in place (the same
        message_id) is listed with its own session and sequence_number, not the first submit's.
        """
        smsc = MemorySMSC(scenario="delayed-receipts")
        self.addCleanup(smsc.stop)
        first, second = RecordingESME(), RecordingESME()
        for esme in (first, second):
            smsc.connect(esme)
            esme.send(wire.bind())
        first.send(wire.submit_sm(sequence=2, text=b"first"))
        second.send(wire.submit_sm(sequence=7, text=b"second", replace_if_present=1))
        smsc.flush()
        [one, two] = smsc.submits()
        self.assertEqual(one["message_id"], two["message_id"])  # replaced in place
        self.assertEqual([one["sequence_number"], two["sequence_number"]], [2, 7])
        self.assertNotEqual(one["session_id"], two["session_id"])
        self.assertEqual([m["session_id"] for m in smsc.messages()], [one["session_id"]])


class MessageListTests(SynchronousTestCase):
    """Message lists with a total and a destination prefix."""

    def test_total_and_destination_prefix(self) -> None:
        """count is the page, total every match; destination is exact, destination_prefix a prefix."""
        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        for destination in ("447700900001", "447700900002", "447800900003"):
            smsc.inject_mo("447700900000", destination, "hi")
        answer = smsc._now(smsc.client._call(_get("/messages", {"limit": 1, "destination_prefix": "4477"})))
        self.assertEqual((answer["count"], answer["total"], answer["next_offset"]), (1, 2, 1))
        self.assertEqual(len(smsc.messages(destination="4477")), 0)
        self.assertEqual(len(smsc.messages(destination_prefix="4477")), 2)
        found = smsc.wait_for_messages(count=2, timeout=1, destination_prefix="4477")
        self.assertEqual(len(self.successResultOf(found)), 2)

    def test_api_index_links(self) -> None:
        """GET /api answers an index linking the API, its OpenAPI document and the docs (no longer a 404)."""
        smsc = MemorySMSC()
        self.addCleanup(smsc.stop)
        import json

        import treq

        from smsc_sim.testing.memory import MEMORY_API_URL

        response = smsc._now(smsc.http.get(MEMORY_API_URL + "/api"))
        self.assertEqual(response.code, 200)
        answer = json.loads(smsc._now(treq.content(response)))
        self.assertEqual(answer["links"]["openapi"], "/api/v1/openapi.json")
        self.assertIn("docs", answer["links"])
        self.assertEqual(smsc.info()["links"]["api"], "/api/v1")


def _get(path: str, query: dict[str, object]) -> object:
    from smsc_sim.testing.client import _Request

    return _Request("GET", path, query=dict(query))
