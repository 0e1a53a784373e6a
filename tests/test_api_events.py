"""
The live event stream, ``GET /api/v1/events``, in memory: a real
twisted.web request over ``treq.testing.StubTreq``, a simulator on a fake
clock, ESMEs over in-memory transports.  What a client reading the stream
sees: the events, the stats tick each second, its connection dropped when
it does not read, and the API's access rules.
"""

from __future__ import annotations

import json
from typing import Any

import treq

from smsc_sim.api import sse
from tests.test_api import BASE, APITestCase


class StreamReader:
    """The client side of one event stream: its response and the events parsed so far."""

    def __init__(self, case: APITestCase, path: str = "/api/v1/events", headers: dict[str, str] | None = None) -> None:
        self.case = case
        self.chunks: list[bytes] = []
        sent = {"Authorization": f"Bearer {case.token}"} if case.token else {}
        sent.update(headers or {})
        self.response_deferred = case.smsc.http.request("GET", BASE + path, headers=sent)
        case.smsc.flush()
        self.response = case.successResultOf(self.response_deferred)
        self.ended: list[Any] = []
        if self.response.code == 200:
            done = treq.collect(self.response, self.chunks.append)
            done.addBoth(self.ended.append)
            case.smsc.flush()

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Every complete event so far, as (kind, data)."""
        text = b"".join(self.chunks).decode()
        found = []
        for block in text.split("\n\n"):
            kind: str | None = None
            data: dict[str, Any] | None = None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
            if kind is not None:
                # the stream writes a data line with every event
                assert data is not None, block
                found.append((kind, data))
        return found

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events()]


class EventStreamTests(APITestCase):
    def test_stream_headers_and_hello(self) -> None:
        """The stream answers 200 text/event-stream and starts with a hello (stating its bounds) and a stats event."""
        reader = StreamReader(self)
        self.assertEqual(reader.response.code, 200)
        self.assertEqual(
            reader.response.headers.getRawHeaders("content-type"), ["text/event-stream; charset=utf-8"]
        )
        events = reader.events()
        self.assertEqual([kind for kind, _ in events[:2]], ["hello", "stats"])
        self.assertEqual(events[0][1]["limits"]["queued_events"], sse.MAX_QUEUED_EVENTS)
        self.assertEqual(events[0][1]["pdus"], False)

    def test_session_and_message_events_arrive(self) -> None:
        """A bind, a submit and its receipt show up on the stream as bind, message and delivery events."""
        reader = StreamReader(self)
        esme = self.bind()
        message_id = self.submit(esme, 2, text=b"Hello")
        self.smsc.advance(10)
        events = reader.events()
        kinds = [kind for kind, _ in events]
        self.assertIn("connection", kinds)
        self.assertIn("bind", kinds)
        states = [data["state"] for kind, data in events if kind == "message" and data["message_id"] == message_id]
        self.assertEqual(states[0], "ENROUTE")
        self.assertIn("DELIVERED", states)
        self.assertIn("delivery", kinds)
        self.assertNotIn("pdu", kinds)

    def test_outage_event(self) -> None:
        """Starting and ending an outage sends outage events with the instance's new state."""
        reader = StreamReader(self)
        self.assertEqual(self.call("POST", "/api/v1/instances/SMPP1/outage", {"mode": "crash"})[0], 200)
        self.call("DELETE", "/api/v1/instances/SMPP1/outage")
        outages = [data for kind, data in reader.events() if kind == "outage"]
        self.assertEqual([o["mode"] for o in outages], ["crash", "up"])
        self.assertEqual(outages[0]["describe"]["state"], "crash")

    def test_stats_tick_every_second(self) -> None:
        """A stats event comes every second of the simulator's clock, with submits per second."""
        reader = StreamReader(self)
        esme = self.bind()
        before = reader.kinds().count("stats")
        self.smsc.advance(1)
        self.submit(esme, 2, text=b"a")
        self.submit(esme, 3, text=b"b")
        self.smsc.advance(1)
        self.smsc.advance(1)
        stats = [data for kind, data in reader.events() if kind == "stats"]
        self.assertEqual(len(stats) - before, 3)
        self.assertEqual(stats[-2]["rates"]["submits"], 2.0)
        self.assertEqual(stats[-1]["rates"]["submits"], 0.0)
        self.assertEqual(stats[-1]["totals"]["submits"], 2)
        self.assertEqual(stats[-1]["sessions"], 1)
        self.assertEqual({i["name"] for i in stats[-1]["instances"]}, {"SMPP0", "SMPP1", "SMPP2"})

    def test_pdu_events_on_request_only_without_password(self) -> None:
        """With ?pdus=1 the decoded PDUs in and out arrive, the bind's password masked."""
        reader = StreamReader(self, "/api/v1/events?pdus=1")
        self.bind()
        pdus = [data for kind, data in reader.events() if kind == "pdu"]
        self.assertEqual([(p["direction"], p["command"]) for p in pdus],
                         [("in", "bind_transceiver"), ("out", "bind_transceiver_resp")])
        self.assertEqual(pdus[0]["params"]["password"], "***")
        self.assertEqual(pdus[0]["sequence_number"], 1)

    def test_slow_consumer_is_dropped(self) -> None:
        """A client whose connection stops taking data is disconnected once its queue is full, and its stream is gone."""
        reader = StreamReader(self)
        [stream] = self.smsc.api.streams.streams
        # what the HTTP channel does when the transport's write buffer is over its limit
        stream.pauseProducing()
        for n in range(sse.MAX_QUEUED_EVENTS):
            self.smsc.simulator.events.publish("outage", instance="SMPP9", mode="up", duration=None)
        self.assertFalse(stream.closed)
        self.assertEqual(len(stream.queue), sse.MAX_QUEUED_EVENTS)
        self.smsc.simulator.events.publish("outage", instance="SMPP9", mode="up", duration=None)
        self.smsc.flush()
        self.assertTrue(stream.dropped)
        self.assertEqual(self.smsc.api.streams.streams, [])
        self.assertEqual(len(reader.ended), 1)
        # the bus subscription and the tick end with the last stream
        self.assertIsNone(self.smsc.api.streams._unsubscribe)
        self.assertIsNone(self.smsc.api.streams._tick)

    def test_paused_then_resumed_consumer_gets_everything(self) -> None:
        """A client that is briefly slow gets the queued events, in order, when it reads again."""
        reader = StreamReader(self)
        [stream] = self.smsc.api.streams.streams
        stream.pauseProducing()
        for name in ("A", "B", "C"):
            self.smsc.simulator.events.publish("outage", instance=name, mode="up", duration=None)
        self.smsc.flush()
        self.assertNotIn("outage", reader.kinds())
        stream.resumeProducing()
        self.smsc.flush()
        self.assertEqual([d["instance"] for k, d in reader.events() if k == "outage"], ["A", "B", "C"])

    def test_client_leaving_ends_the_stream(self) -> None:
        """When the client disconnects its stream is forgotten and the tick stops."""
        StreamReader(self)
        [stream] = self.smsc.api.streams.streams
        transport = stream.request.channel.transport
        assert transport is not None
        transport.loseConnection()
        self.smsc.flush()
        self.assertEqual(self.smsc.api.streams.streams, [])
        self.assertIsNone(self.smsc.api.streams._tick)

    def test_stream_limit(self) -> None:
        """Beyond the stream limit a new stream is refused with 503 and the limit."""
        self.smsc.api.streams.max_streams = 2
        StreamReader(self)
        StreamReader(self)
        code, body = self.call("GET", "/api/v1/events")
        self.assertEqual(code, 503)
        self.assertEqual(body["error"]["limit"], 2)

    def test_head_opens_no_stream(self) -> None:
        """HEAD answers the stream's headers at once, with no body and no stream left open."""
        answer = self.smsc.http.request("HEAD", BASE + "/api/v1/events")
        self.smsc.flush()
        response = self.successResultOf(answer)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/event-stream; charset=utf-8"])
        self.assertEqual(self.smsc.api.streams.streams, [])

    def test_bad_query(self) -> None:
        """An unknown query parameter or a bad pdus flag is 400."""
        self.assertEqual(self.call("GET", "/api/v1/events?kinds=all")[0], 400)
        self.assertEqual(self.call("GET", "/api/v1/events?pdus=maybe")[0], 400)

    def test_foreign_origin_refused(self) -> None:
        """A page of another site cannot read the stream: 403."""
        code, body = self.call("GET", "/api/v1/events", headers={"Origin": "http://evil.example"})
        self.assertEqual((code, body["error"]["rule"]), (403, "origin"))


class EventStreamTokenTests(APITestCase):
    token = "s3cret"

    def test_bad_token_is_401(self) -> None:
        """With a token configured, a stream with no or a wrong token is refused with 401 and nothing is streamed."""
        self.assertEqual(self.call("GET", "/api/v1/events", headers={"Authorization": "Bearer wrong"})[0], 401)
        self.assertEqual(self.smsc.api.streams.streams, [])

    def test_good_token_streams(self) -> None:
        """With the right token in the Authorization header the stream opens."""
        reader = StreamReader(self)
        self.assertEqual(reader.response.code, 200)
        self.assertEqual(reader.kinds()[:1], ["hello"])
