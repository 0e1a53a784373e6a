"""
The control API's message side in memory: listing and paging, one message,
long-poll waits, MO injection, forced receipts, scenarios, reset, stats.
"""

from __future__ import annotations

from tests import wire
from tests.test_api import APITestCase

UDH = bytes([0x05, 0x00, 0x03, 0x2A, 0x02])


class MessageTests(APITestCase):
    def test_list_with_filters(self) -> None:
        """Messages filter by destination, text, state and direction; the page says where the next starts."""
        esme = self.bind()
        self.submit(esme, 2, destination="447700900001", text=b"first")
        self.submit(esme, 3, destination="447700900002", text=b"second")
        code, body = self.call("GET", "/api/v1/messages?destination=447700900002")
        self.assertEqual(code, 200)
        self.assertEqual([m["text"] for m in body["messages"]], ["second"])
        self.assertEqual(self.call("GET", "/api/v1/messages?text=fir")[1]["count"], 1)
        self.assertEqual(self.call("GET", "/api/v1/messages?state=ENROUTE")[1]["count"], 2)
        self.assertEqual(self.call("GET", "/api/v1/messages?state=pending&direction=mt")[1]["count"], 2)
        self.assertEqual(self.call("GET", "/api/v1/messages?direction=mo")[1]["count"], 0)

    def test_paging(self) -> None:
        """limit and offset page through the messages, oldest first."""
        esme = self.bind()
        for n in range(5):
            self.submit(esme, 2 + n, text=f"m{n}".encode())
        first = self.call("GET", "/api/v1/messages?limit=2")[1]
        self.assertEqual([m["text"] for m in first["messages"]], ["m0", "m1"])
        self.assertEqual(first["next_offset"], 2)
        last = self.call("GET", "/api/v1/messages?limit=2&offset=4")[1]
        self.assertEqual(([m["text"] for m in last["messages"]], last["next_offset"]), (["m4"], None))

    def test_paging_across_clusters(self) -> None:
        """A page over SMPP0 and the SMPP1/SMPP2 cluster is in submit order, and total counts every match."""
        cluster, standalone = self.bind(), self.bind(instance="SMPP0")
        for n in range(6):
            esme = cluster if n % 2 else standalone
            self.submit(esme, 2 + n, text=f"m{n}".encode(), destination=f"44770090000{n % 3}")
            self.smsc.advance(1)
        page = self.call("GET", "/api/v1/messages?limit=2&offset=1")[1]
        self.assertEqual(([m["text"] for m in page["messages"]], page["total"], page["next_offset"]),
                         (["m1", "m2"], 6, 3))  # fmt: skip
        prefixed = self.call("GET", "/api/v1/messages?destination_prefix=4477009000&limit=2&offset=2")[1]
        self.assertEqual(([m["text"] for m in prefixed["messages"]], prefixed["total"]), (["m2", "m3"], 6))
        one_number = self.call("GET", "/api/v1/messages?destination_prefix=447700900001")[1]
        self.assertEqual(([m["text"] for m in one_number["messages"]], one_number["total"]), (["m1", "m4"], 2))

    def test_list_errors(self) -> None:
        """A bad limit, state, direction, time or filter name is 400."""
        for query in ("limit=0", "limit=x", "offset=-1", "state=SENT", "direction=up", "since=yesterday", "to=1"):
            code, body = self.call("GET", f"/api/v1/messages?{query}")
            self.assertEqual(code, 400, query)
            self.assertEqual(body["error"]["status"], 400)

    def test_one_message_with_history_and_receipt(self) -> None:
        """One message shows its text, its state history and its acknowledged receipt."""
        esme = self.bind()
        message_id = self.submit(esme, text=b"Hello")
        self.smsc.advance(30)
        code, body = self.call("GET", f"/api/v1/messages/{message_id}")
        self.assertEqual(code, 200)
        self.assertEqual((body["text"], body["reassembled_text"], body["state"]), ("Hello", "Hello", "DELIVERED"))
        self.assertEqual([h["state"] for h in body["history"]], ["ENROUTE", "DELIVERED"])
        self.assertEqual([(r["stat"], r["outcome"]) for r in body["receipts"]], [("DELIVRD", "acked")])

    def test_reassembled_text_of_concatenated_message(self) -> None:
        """Each part of a concatenated message carries the whole text once every part arrived."""
        esme = self.bind()
        first = self.submit(esme, 2, esm_class=0x40, text=UDH + b"\x01" + b"Hello, ")
        self.submit(esme, 3, esm_class=0x40, text=UDH[:4] + b"\x02\x02" + b"world")
        body = self.call("GET", f"/api/v1/messages/{first}")[1]
        self.assertEqual(body["text"], "Hello, ")
        self.assertEqual(body["reassembled_text"], "Hello, world")

    def test_unknown_message_is_404(self) -> None:
        """An unknown message id is 404."""
        self.assertEqual(self.call("GET", "/api/v1/messages/FFFF")[0], 404)


class WaitTests(APITestCase):
    def test_wait_answers_when_enough_messages_match(self) -> None:
        """A wait for 2 messages answers once the second is submitted, not before."""
        esme = self.bind()
        self.submit(esme, 2, destination="447700900001")
        waiting = self.started("POST", "/api/v1/wait/messages", {"count": 2, "destination": "447700900001"})
        self.smsc.flush()
        self.assertNoResult(waiting)
        self.submit(esme, 3, destination="447700900001")
        self.smsc.flush()
        code, body = self.answer(waiting)
        self.assertEqual((code, len(body["messages"])), (200, 2))

    def test_wait_times_out_with_what_matched(self) -> None:
        """A wait that runs out answers 408 with the messages that did match."""
        esme = self.bind()
        self.submit(esme)
        waiting = self.started("POST", "/api/v1/wait/messages", {"count": 3, "timeout": 2})
        self.smsc.advance(2)
        code, body = self.answer(waiting)
        self.assertEqual(code, 408)
        self.assertEqual(len(body["error"]["messages"]), 1)
        self.assertIn("1 of 3", body["error"]["message"])

    def test_wait_for_state(self) -> None:
        """A wait for DELIVERED answers when the receipt changes the state."""
        esme = self.bind()
        self.submit(esme)
        waiting = self.started("POST", "/api/v1/wait/messages", {"state": "DELIVRD", "timeout": 60})
        self.smsc.flush()
        self.assertNoResult(waiting)
        self.smsc.advance(30)
        self.assertEqual(self.answer(waiting)[1]["messages"][0]["state"], "DELIVERED")

    def test_wait_for_receipt_acknowledged(self) -> None:
        """A wait on a message's receipt answers once the ESME acknowledged it."""
        esme = self.bind()
        message_id = self.submit(esme)
        waiting = self.started("POST", "/api/v1/wait/receipt", {"message_id": message_id, "timeout": 60})
        self.smsc.flush()
        self.assertNoResult(waiting)
        self.smsc.advance(30)
        code, body = self.answer(waiting)
        self.assertEqual((code, body["receipt"]["stat"], body["receipt"]["outcome"]), (200, "DELIVRD", "acked"))
        self.assertIn(0x05, esme.commands())

    def test_wait_for_receipt_times_out(self) -> None:
        """A wait on a receipt that never comes (transmitter bind, no receiver) answers 408."""
        esme = self.bind(0x02)
        message_id = self.submit(esme)
        waiting = self.started("POST", "/api/v1/wait/receipt", {"message_id": message_id, "timeout": 60})
        self.smsc.advance(60)
        code, body = self.answer(waiting)
        self.assertEqual(code, 408)
        self.assertEqual(body["error"]["record"]["message_id"], message_id)

    def test_wait_for_bind(self) -> None:
        """A wait for a receiver bind answers when one binds."""
        waiting = self.started("POST", "/api/v1/wait/bind", {"bind_type": "receiver", "timeout": 5})
        self.bind(0x02)
        self.assertNoResult(waiting)
        self.bind(0x01)
        code, body = self.answer(waiting)
        self.assertEqual((code, body["sessions"][0]["bind_type"]), (200, "receiver"))

    def test_wait_for_bind_times_out(self) -> None:
        """A wait for a bind that never comes answers 408."""
        waiting = self.started("POST", "/api/v1/wait/bind", {"account": "nobody", "timeout": 1})
        self.smsc.advance(1)
        self.assertEqual(self.answer(waiting)[0], 408)

    def test_wait_errors(self) -> None:
        """Bad counts, timeouts, outcomes, unknown fields and a missing message_id are 400."""
        cases = [
            ("/api/v1/wait/messages", {"count": 0}),
            ("/api/v1/wait/messages", {"timeout": -1}),
            ("/api/v1/wait/messages", {"destinaton": "1"}),
            ("/api/v1/wait/receipt", {}),
            ("/api/v1/wait/receipt", {"message_id": "1", "outcome": "read"}),
            ("/api/v1/wait/bind", {"count": "two"}),
        ]
        for path, body in cases:
            self.assertEqual(self.call("POST", path, body)[0], 400, (path, body))

    def test_client_disconnect_ends_the_wait(self) -> None:
        """A long-poll whose client goes away stops waiting (nothing stays subscribed)."""
        waiting = self.started("POST", "/api/v1/wait/messages", {"timeout": 60})
        self.assertEqual(len(self.smsc.api.waits.open), 1)
        waiting.cancel()
        self.smsc.flush()
        self.failureResultOf(waiting)
        self.assertEqual(len(self.smsc.api.waits.open), 0)


class ActionTests(APITestCase):
    def test_inject_mo_reaches_receiver(self) -> None:
        """An injected MO is delivered as deliver_sm to the bound receiver and listed as direction mo."""
        esme = self.bind(0x01)
        body = {"source": "447700900009", "destination": "12345", "text": "hi"}
        code, answer = self.call("POST", "/api/v1/mo", body)
        self.smsc.flush()
        self.assertEqual((code, len(answer["message_ids"])), (201, 1))
        self.assertIn(0x05, esme.commands())
        fields = wire.deliver_sm_fields(esme.received[-1][1])
        self.assertEqual((fields["source_addr"], fields["short_message"]), ("447700900009", b"hi"))
        self.assertEqual(self.call("GET", "/api/v1/messages?direction=mo")[1]["messages"][0]["text"], "hi")

    def test_inject_many_mo_at_once(self) -> None:
        """``count: 3`` originates three MOs alike: three ids, three deliver_sm to the receiver."""
        esme = self.bind(0x01)
        body = {"source": "447700900009", "destination": "12345", "text": "flood", "count": 3}
        code, answer = self.call("POST", "/api/v1/mo", body)
        self.smsc.flush()
        self.assertEqual((code, len(set(answer["message_ids"]))), (201, 3))
        delivered = [wire.deliver_sm_fields(b)["short_message"] for h, b in esme.received if h.command_id == 0x05]
        self.assertEqual(delivered, [b"flood"] * 3)

    def test_inject_long_mo_split_sar_in_ucs2(self) -> None:
        """A long UCS-2 MO with split sar is cut into parts with SAR TLVs."""
        esme = self.bind(0x01)
        body = {"source": "1", "destination": "2", "text": "é" * 100, "encoding": "ucs2", "split": "sar"}
        code, answer = self.call("POST", "/api/v1/mo", body)
        self.smsc.flush()
        self.assertEqual((code, len(answer["message_ids"])), (201, 2))
        parts = [wire.deliver_sm_fields(b) for h, b in esme.received if h.command_id == 0x05]
        self.assertEqual([p["data_coding"] for p in parts], [8, 8])
        self.assertIn(0x020C, parts[0]["tlvs"])

    def test_inject_mo_errors(self) -> None:
        """Missing addresses, both or neither of text and data, bad encoding or split are 400; unknown account 404."""
        cases = [
            ({"destination": "2", "text": "x"}, 400),
            ({"source": "1", "destination": "2"}, 400),
            ({"source": "1", "destination": "2", "text": "x", "data_hex": "00"}, 400),
            ({"source": "1", "destination": "2", "text": "x", "encoding": "ebcdic"}, 400),
            ({"source": "1", "destination": "2", "text": "x", "split": "halves"}, 400),
            ({"source": "1", "destination": "2", "data_hex": "zz"}, 400),
            ({"source": "1", "destination": "2", "text": "x", "account": "nobody"}, 404),
            ({"source": "1", "destination": "2", "text": "x", "instance": "SMPP9"}, 404),
            ({"source": "1", "destination": "2", "text": "x", "count": 0}, 400),
            ({"source": "1", "destination": "2", "text": "x", "count": 10_001}, 400),
            ({"source": "1", "destination": "2", "text": "x", "count": "many"}, 400),
        ]
        for body, code in cases:
            self.assertEqual(self.call("POST", "/api/v1/mo", body)[0], code, body)

    def test_force_receipt(self) -> None:
        """A forced UNDELIV receipt ends the message UNDELIVERABLE with that err and is sent to the ESME."""
        esme = self.bind()
        message_id = self.submit(esme)
        code, body = self.call("POST", f"/api/v1/messages/{message_id}/receipt", {"stat": "UNDELIV", "err": 5})
        self.smsc.flush()
        self.assertEqual((code, body["state"], body["err"]), (200, "UNDELIVERABLE", 5))
        receipt = wire.deliver_sm_fields(esme.received[-1][1])["short_message"]
        self.assertIn(b"stat:UNDELIV err:005", receipt)

    def test_force_receipt_errors(self) -> None:
        """An unknown stat is 400, an unknown message 404, an MO message 409."""
        esme = self.bind()
        message_id = self.submit(esme)
        self.assertEqual(self.call("POST", f"/api/v1/messages/{message_id}/receipt", {"stat": "READ"})[0], 400)
        self.assertEqual(self.call("POST", "/api/v1/messages/FFFF/receipt", {"stat": "DELIVRD"})[0], 404)
        mo = self.call("POST", "/api/v1/mo", {"source": "1", "destination": "2", "text": "x"})[1]["message_ids"][0]
        self.assertEqual(self.call("POST", f"/api/v1/messages/{mo}/receipt", {"stat": "DELIVRD"})[0], 409)


class ScenarioTests(APITestCase):
    def test_active_scenario(self) -> None:
        """The active scenario is the configured one."""
        code, body = self.call("GET", "/api/v1/scenario")
        self.assertEqual((code, body["scenario"]["name"]), (200, "default"))
        self.assertIn("default", self.call("GET", "/api/v1/scenarios")[1]["scenarios"])

    def test_load_by_name(self) -> None:
        """A shipped scenario loads by name."""
        code, body = self.call("PUT", "/api/v1/scenario", {"name": "throttling"})
        self.assertEqual((code, body["scenario"]["name"]), (200, "throttling"))

    def test_load_by_body(self) -> None:
        """A scenario given as YAML text is validated and becomes active."""
        text = "name: inline\nrules:\n  - name: reject-all\n    status: ESME_RSUBMITFAIL\n"
        code, body = self.call("PUT", "/api/v1/scenario", {"yaml": text})
        self.assertEqual((code, body["scenario"]["name"]), (200, "inline"))
        esme = self.bind()
        esme.send(wire.submit_sm())
        self.smsc.flush()
        self.assertEqual(esme.received[-1][0].command_status, 0x45)

    def test_load_errors_change_nothing(self) -> None:
        """An invalid scenario answers 400 with line and key, and the active one stays."""
        code, body = self.call("PUT", "/api/v1/scenario", {"yaml": "name: bad\nrulez: []\n"})
        self.assertEqual(code, 400)
        self.assertEqual(body["error"]["line"], 2)
        self.assertIn("rulez", body["error"]["message"])
        self.assertEqual(self.call("PUT", "/api/v1/scenario", {"name": "no-such-scenario"})[0], 400)
        self.assertEqual(self.call("PUT", "/api/v1/scenario", {})[0], 400)
        self.assertEqual(self.call("GET", "/api/v1/scenario")[1]["scenario"]["name"], "default")

    def test_reset(self) -> None:
        """Reset forgets messages, ends outages and reloads the configured scenario; sessions stay bound."""
        esme = self.bind()
        self.submit(esme)
        self.call("POST", "/api/v1/instances/SMPP2/outage", {"mode": "blackhole"})
        self.call("PUT", "/api/v1/scenario", {"name": "throttling"})
        code, body = self.call("POST", "/api/v1/reset")
        self.assertEqual((code, body["reset"]), (200, {"outages": True, "scenario": True, "sessions": False}))
        self.assertEqual(self.call("GET", "/api/v1/messages")[1]["count"], 0)
        self.assertEqual(self.call("GET", "/api/v1/instances/SMPP2")[1]["state"], "up")
        self.assertEqual(self.call("GET", "/api/v1/scenario")[1]["scenario"]["name"], "default")
        self.assertEqual(len(self.call("GET", "/api/v1/sessions")[1]["sessions"]), 1)

    def test_reset_sessions(self) -> None:
        """Reset with sessions true drops every connection before answering."""
        esme = self.bind()
        code, _ = self.call("POST", "/api/v1/reset", {"sessions": True})
        self.smsc.flush()
        self.assertEqual(code, 200)
        self.assertTrue(esme.closed)
        self.assertEqual(self.call("POST", "/api/v1/reset", {"sessions": "yes"})[0], 400)

    def test_stats(self) -> None:
        """Stats show each cluster's counters."""
        esme = self.bind()
        self.submit(esme)
        code, body = self.call("GET", "/api/v1/stats")
        self.assertEqual(code, 200)
        self.assertEqual(body["clusters"]["NA"]["submits"], {"ESME_ROK": 1})
