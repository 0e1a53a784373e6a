"""
The control API in memory: a real twisted.web request for every call
(``treq.testing.StubTreq``), a simulator on a fake clock, and ESMEs
connected over in-memory transports.  Each endpoint's success and error
paths, as a user of the HTTP API sees them (status codes and JSON).
"""

from __future__ import annotations

import json
from typing import Any

import treq
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.testing.memory import MemorySMSC
from tests import wire

BASE = "http://smsc-sim.invalid"


class RecordingESME(Protocol):
    """A raw ESME that records every PDU it gets and acknowledges deliver_sm with status ``deliver_status``."""

    def __init__(self, deliver_status: int = 0) -> None:
        self.buffer = b""
        self.received: list[tuple[wire.Header, bytes]] = []
        self.deliver_status = deliver_status
        self.closed = False

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 16:
            length = int.from_bytes(self.buffer[:4], "big")
            if len(self.buffer) < length:
                return
            raw, self.buffer = self.buffer[:length], self.buffer[length:]
            [(header, body)] = wire.split_pdus(raw)
            self.received.append((header, body))
            if header.command_id == 0x05:
                self.send(wire.frame(0x80000005, header.sequence_number, b"\x00", self.deliver_status))
            elif header.command_id == 0x06:
                self.send(wire.frame(0x80000006, header.sequence_number))

    def send(self, data: bytes) -> None:
        """Write ``data`` to the SMSC (the ESME must be connected)."""
        assert self.transport is not None, "the ESME is not connected"
        self.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True

    def commands(self) -> list[int]:
        """The command_id of every PDU received."""
        return [header.command_id for header, _ in self.received]


class APITestCase(SynchronousTestCase):
    """A fresh in-memory simulator per test, with helpers to call the API."""

    token: str | None = None

    def setUp(self) -> None:
        self.smsc = MemorySMSC(token=self.token)
        self.addCleanup(self.smsc.stop)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        """One HTTP call; returns the status and the decoded JSON (or the text when not JSON)."""
        sent = {"Content-Type": "application/json"}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        answer = self.smsc.http.request(method, BASE + path, data=data, headers=sent)
        self.smsc.flush()
        response = self.successResultOf(answer)
        content = self.successResultOf(treq.content(response))
        kind = (response.headers.getRawHeaders("content-type") or [""])[0]
        return response.code, json.loads(content) if kind.startswith("application/json") else content.decode()

    def started(self, method: str, path: str, body: Any = None) -> Any:
        """Start a call that answers later (a long-poll); returns the Deferred of the response."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.smsc.http.request(method, BASE + path, data=json.dumps(body).encode(), headers=headers)

    def answer(self, deferred: Any) -> tuple[int, Any]:
        """The status and JSON of a started call, which must have answered by now."""
        response = self.successResultOf(deferred)
        return response.code, json.loads(self.successResultOf(treq.content(response)))

    def bind(self, command_id: int = 0x09, instance: str = "SMPP1", **options: Any) -> RecordingESME:
        """A bound ESME on ``instance``."""
        esme = RecordingESME(**options)
        self.smsc.connect(esme, instance)
        esme.send(wire.bind(command_id))
        self.smsc.flush()
        return esme

    def submit(self, esme: RecordingESME, sequence: int = 2, **fields: Any) -> str:
        """Submit a message and return its message_id from submit_sm_resp."""
        esme.send(wire.submit_sm(sequence, **fields))
        self.smsc.flush()
        header, body = esme.received[-1]
        self.assertEqual((header.command_id, header.command_status), (0x80000004, 0))
        return wire.read_cstr(body)[0]


class HealthTests(APITestCase):
    def test_live(self) -> None:
        """Liveness answers 200 {"status": "live"}."""
        self.assertEqual(self.call("GET", "/api/v1/health/live"), (200, {"status": "live"}))

    def test_ready_when_listening(self) -> None:
        """Readiness is 200 while every listener is open, with each instance's state."""
        code, body = self.call("GET", "/api/v1/health/ready")
        self.assertEqual(code, 200)
        self.assertTrue(body["ready"])
        self.assertEqual(set(body["instances"]), {"SMPP0", "SMPP1", "SMPP2"})

    def test_not_ready_when_a_listener_cannot_open(self) -> None:
        """A listener that is closed outside any outage makes readiness 503."""
        listener = self.smsc.simulator.instances["SMPP2"].listeners[0]
        self.successResultOf(listener.unlisten())
        code, body = self.call("GET", "/api/v1/health/ready")
        self.assertEqual(code, 503)
        self.assertFalse(body["instances"]["SMPP2"]["ready"])
        self.assertTrue(body["instances"]["SMPP1"]["ready"])

    def test_ready_during_graceful_outage(self) -> None:
        """An instance whose listeners are closed by an outage on purpose does not make the simulator unready."""
        self.call("POST", "/api/v1/instances/SMPP1/outage", {"mode": "graceful"})
        self.assertEqual(self.call("GET", "/api/v1/health/ready")[0], 200)

    def test_index(self) -> None:
        """The index names the version, seed, endpoints and accounts."""
        code, body = self.call("GET", "/api/v1")
        self.assertEqual(code, 200)
        self.assertEqual(body["accounts"], ["smppclient1"])
        self.assertEqual(body["seed"], 0)
        self.assertIn("SMPP1", body["endpoints"])

    def test_unknown_path_is_json_404(self) -> None:
        """An unknown path answers 404 with a JSON error."""
        code, body = self.call("GET", "/api/v1/nothing")
        self.assertEqual(code, 404)
        self.assertEqual(body["error"]["status"], 404)

    def test_wrong_method_is_json_405(self) -> None:
        """A method a path does not take answers 405 with an Allow header and a JSON error."""
        response = self.successResultOf(self.smsc.http.request("PATCH", BASE + "/api/v1/instances"))
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET"])
        body = json.loads(self.successResultOf(treq.content(response)))
        self.assertIn("PATCH is not allowed", body["error"]["message"])

    def test_bad_json_is_400(self) -> None:
        """A body that is not JSON answers 400 naming the problem."""
        code, body = self.call("POST", "/api/v1/instances/SMPP1/outage", raw=b"{mode:")
        self.assertEqual(code, 400)
        self.assertIn("not valid JSON", body["error"]["message"])

    def test_internal_error_is_json_500_without_traceback(self) -> None:
        """A bug in a handler answers 500 in JSON, with no traceback page."""
        def broken() -> dict[str, Any]:
            raise RuntimeError("boom")

        self.smsc.simulator.cores["NA"].stats = broken  # type: ignore[method-assign]
        code, body = self.call("GET", "/api/v1/stats")
        self.assertEqual(code, 500)
        self.assertEqual(body["error"]["message"], "internal error: RuntimeError: boom")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_openapi_document_is_served(self) -> None:
        """The OpenAPI description is served as JSON with the package version."""
        code, body = self.call("GET", "/api/v1/openapi.json")
        self.assertEqual(code, 200)
        self.assertEqual(body["openapi"], "3.1.0")
        self.assertIn("/api/v1/messages", body["paths"])


class TokenTests(APITestCase):
    token = "s3cret"

    def test_liveness_needs_no_token(self) -> None:
        """Liveness answers without a token."""
        code, _ = self.call("GET", "/api/v1/health/live", headers={"Authorization": ""})
        self.assertEqual(code, 200)

    def test_missing_token_is_401(self) -> None:
        """Any other call without the token answers 401 JSON with a WWW-Authenticate header."""
        response = self.successResultOf(self.smsc.http.get(BASE + "/api/v1/instances"))
        self.assertEqual(response.code, 401)
        self.assertEqual(response.headers.getRawHeaders("www-authenticate"), ['Bearer realm="smsc-sim"'])
        body = json.loads(self.successResultOf(treq.content(response)))
        self.assertEqual(body["error"]["status"], 401)

    def test_wrong_token_is_401(self) -> None:
        """A wrong bearer token answers 401, for unknown paths too."""
        self.assertEqual(self.call("GET", "/api/v1/instances", headers={"Authorization": "Bearer nope"})[0], 401)
        self.assertEqual(self.call("GET", "/api/v1/nothing", headers={"Authorization": "Bearer nope"})[0], 401)

    def test_right_token_is_accepted(self) -> None:
        """The right token opens every call."""
        self.assertEqual(self.call("GET", "/api/v1/instances")[0], 200)
        self.assertEqual(self.call("GET", "/metrics")[0], 200)


class InstanceTests(APITestCase):
    def test_instances_with_state(self) -> None:
        """Every instance is listed with its cluster, state and sessions."""
        esme = self.bind()
        code, body = self.call("GET", "/api/v1/instances")
        self.assertEqual(code, 200)
        by_name = {i["name"]: i for i in body["instances"]}
        self.assertEqual(by_name["SMPP1"]["cluster"], "NA")
        self.assertEqual(by_name["SMPP1"]["state"], "up")
        self.assertEqual(by_name["SMPP1"]["sessions"], 1)
        self.assertFalse(esme.closed)

    def test_one_instance_and_unknown(self) -> None:
        """One instance by name; an unknown name is 404."""
        self.assertEqual(self.call("GET", "/api/v1/instances/SMPP0")[1]["cluster"], "SMPP0")
        code, body = self.call("GET", "/api/v1/instances/SMPP9")
        self.assertEqual(code, 404)
        self.assertIn("SMPP9", body["error"]["message"])

    def test_crash_outage_resets_sessions_then_ends(self) -> None:
        """A crash outage resets the bound ESME and closes the listeners; DELETE brings the instance back."""
        esme = self.bind()
        code, body = self.call("POST", "/api/v1/instances/SMPP1/outage", {"mode": "crash"})
        self.smsc.flush()
        self.assertEqual((code, body["state"], body["listening"]), (200, "crash", []))
        self.assertTrue(esme.closed)
        code, body = self.call("DELETE", "/api/v1/instances/SMPP1/outage")
        self.assertEqual((code, body["state"]), (200, "up"))
        self.assertEqual(len(body["listening"]), 1)

    def test_reject_binds_outage_with_status_name_and_duration(self) -> None:
        """reject-binds takes a status by name; a bind gets it; the duration ends the outage by itself."""
        body = {"mode": "reject-binds", "status": "ESME_RBINDFAIL", "duration": 5}
        self.assertEqual(self.call("POST", "/api/v1/instances/SMPP1/outage", body)[0], 200)
        esme = self.bind()
        self.assertEqual([(h.command_id, h.command_status) for h, _ in esme.received], [(0x80000009, 0x0D)])
        self.smsc.advance(5)
        self.assertEqual(self.call("GET", "/api/v1/instances/SMPP1")[1]["state"], "up")

    def test_outage_errors(self) -> None:
        """
        Unknown mode, a slow outage with no latency, a negative duration, a
        bad status or field are 400; an unknown instance is 404.
        """
        cases = [
            ({"mode": "melt"}, 400),
            ({"mode": "slow"}, 400),
            ({"mode": "crash", "duration": -1}, 400),
            ({"mode": "reject-binds", "status": "ESME_NOPE"}, 400),
            ({"mode": "crash", "color": "red"}, 400),
        ]
        for body, code in cases:
            self.assertEqual(self.call("POST", "/api/v1/instances/SMPP1/outage", body)[0], code, body)
        self.assertEqual(self.call("POST", "/api/v1/instances/X/outage", {"mode": "crash"})[0], 404)
        self.assertEqual(self.call("DELETE", "/api/v1/instances/X/outage")[0], 404)
        self.assertEqual(self.call("GET", "/api/v1/instances/SMPP1")[1]["state"], "up")


class SessionTests(APITestCase):
    def test_sessions_with_account_bind_type_and_counters(self) -> None:
        """A bound session shows its account, instance, bind type, peer, times and counters."""
        self.bind(0x02, "SMPP2")
        code, body = self.call("GET", "/api/v1/sessions")
        self.assertEqual(code, 200)
        [session] = body["sessions"]
        self.assertEqual(session["account"], "smppclient1")
        self.assertEqual(session["instance"], "SMPP2")
        self.assertEqual(session["bind_type"], "transmitter")
        self.assertEqual(session["state"], "BOUND_TX")
        self.assertTrue(session["peer"].startswith("127.0.0.1:"))
        self.assertIn("pdus_in", session["counters"])

    def test_session_filters(self) -> None:
        """Sessions filter by instance and bind_type; an unknown filter is 400."""
        self.bind(0x02, "SMPP1")
        self.bind(0x01, "SMPP2")
        self.assertEqual(len(self.call("GET", "/api/v1/sessions?instance=SMPP2")[1]["sessions"]), 1)
        self.assertEqual(len(self.call("GET", "/api/v1/sessions?bind_type=receiver")[1]["sessions"]), 1)
        self.assertEqual(self.call("GET", "/api/v1/sessions?colour=red")[0], 400)

    def test_end_session_by_unbind(self) -> None:
        """DELETE a session sends unbind and answers once the ESME's unbind_resp closed it."""
        esme = self.bind()
        session_id = self.call("GET", "/api/v1/sessions")[1]["sessions"][0]["session_id"]
        self.assertEqual(self.call("GET", f"/api/v1/sessions/{session_id}")[0], 200)
        pending = self.started("DELETE", f"/api/v1/sessions/{session_id}")
        self.smsc.flush()
        code, body = self.answer(pending)
        self.assertEqual((code, body["ended"]), (200, "unbind"))
        self.assertIn(0x06, esme.commands())
        self.assertTrue(esme.closed)

    def test_end_session_by_reset(self) -> None:
        """DELETE ?how=reset drops the connection at once."""
        esme = self.bind()
        session_id = self.call("GET", "/api/v1/sessions")[1]["sessions"][0]["session_id"]
        code, body = self.call("DELETE", f"/api/v1/sessions/{session_id}?how=reset")
        self.smsc.flush()
        self.assertEqual((code, body["ended"]), (200, "reset"))
        self.assertTrue(esme.closed)
        self.assertNotIn(0x06, esme.commands())

    def test_session_errors(self) -> None:
        """An unknown session is 404; an unknown way of ending one is 400."""
        self.bind()
        self.assertEqual(self.call("GET", "/api/v1/sessions/99")[0], 404)
        self.assertEqual(self.call("DELETE", "/api/v1/sessions/99")[0], 404)
        self.assertEqual(self.call("DELETE", "/api/v1/sessions/1?how=gently")[0], 400)
