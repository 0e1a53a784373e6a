"""
The control API against hostile and broken clients, in memory: bounded work
per request (MO count x parts), bodies that are not JSON a parser survives
(deep nesting, bad encodings, NUL), the browser guards (Host, Origin,
Content-Type), the token checked before routing, and binary MO split like
text.  Each test asserts what the client sees: the HTTP status and JSON
body, the deliver_sm bytes a bound receiver gets, and a log without a
traceback.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import pytest_twisted
import treq
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.api.http import MAX_BODY, MAX_DEPTH
from smsc_sim.api.messages import MAX_MO_RECORDS
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.tap import Options
from tests import wire
from tests.test_api import BASE, APITestCase

MO = "/api/v1/mo"


class RawCalls(APITestCase):
    """Calls with raw bytes and headers as a hostile client sends them, and a log capture."""

    def setUp(self) -> None:
        super().setUp()
        # what EventLoggingObserver.createWithCleanup does; it is typed for trial's TestCase alone
        self.logged = EventLoggingObserver()
        globalLogPublisher.addObserver(self.logged)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged)

    def send(
        self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One request with exactly these headers (plus the token if the test case has one)."""
        sent = dict(headers or {})
        if self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        answer = self.smsc.http.request(method, BASE + path, data=data, headers=sent)
        self.smsc.flush()
        response = self.successResultOf(answer)
        content = self.successResultOf(treq.content(response))
        kind = (response.headers.getRawHeaders("content-type") or [""])[0]
        self.assertTrue(kind.startswith("application/json"), (response.code, kind, content[:200]))
        return response.code, json.loads(content)

    def assertNoTraceback(self) -> None:
        """Nothing was logged as a failure (a traceback)."""
        failures = [event for event in self.logged if "log_failure" in event]
        self.assertEqual(failures, [])


class MOLimitTests(RawCalls):
    def test_count_times_parts_over_the_limit_is_refused_whole(self) -> None:
        """
        count 1000 of a 255-part text (255,000 records) is refused with 400
        naming the 10,000-record limit, and not one MO is created or sent.
        """
        esme = self.bind(0x01)
        body = {"source": "1", "destination": "2", "text": "x" * (153 * 255), "count": 1000}
        code, answer = self.call("POST", MO, body)
        self.smsc.flush()
        self.assertEqual(code, 400)
        self.assertIn(f"at most {MAX_MO_RECORDS} records", answer["error"]["message"])
        self.assertIn("1000 x 255 = 255000", answer["error"]["message"])
        self.assertEqual(answer["error"]["limit"], 10_000)
        self.assertNotIn(0x05, esme.commands())
        self.assertEqual(self.call("GET", "/api/v1/messages?direction=mo")[1]["count"], 0)

    def test_limit_counts_parts_not_requests(self) -> None:
        """count 5001 of a 2-part text (10,002 records) is refused although count alone is within 10,000."""
        body = {"source": "1", "destination": "2", "text": "y" * 200, "count": 5001}
        code, answer = self.call("POST", MO, body)
        self.assertEqual(code, 400, answer)
        self.assertIn("5001 x 2 = 10002", answer["error"]["message"])

    def test_within_the_limit_every_part_is_sent(self) -> None:
        """count 3 of a 2-part text makes 6 MO records and 6 deliver_sm."""
        esme = self.bind(0x01)
        code, answer = self.call("POST", MO, {"source": "1", "destination": "2", "text": "z" * 200, "count": 3})
        self.smsc.flush()
        self.assertEqual((code, len(answer["message_ids"])), (201, 6))
        self.assertEqual(esme.commands().count(0x05), 6)

    def test_a_message_over_255_parts_is_refused_before_sending(self) -> None:
        """Text needing 256 parts is a 400 that says so; nothing is sent."""
        esme = self.bind(0x01)
        code, answer = self.call("POST", MO, {"source": "1", "destination": "2", "text": "x" * (153 * 256)})
        self.smsc.flush()
        self.assertEqual(code, 400)
        self.assertIn("at most 255", answer["error"]["message"])
        self.assertNotIn(0x05, esme.commands())


class BinaryMOSplitTests(RawCalls):
    def deliveries(self, esme: Any) -> list[dict[str, Any]]:
        """The deliver_sm PDUs the receiver got, decoded from the bytes."""
        return [wire.deliver_sm_fields(body) for header, body in esme.received if header.command_id == 0x05]

    def inject(self, data: bytes, split: str, esme: Any = None) -> list[dict[str, Any]]:
        """POST data_hex to a bound receiver; the deliver_sm it got for this MO."""
        esme = esme if esme is not None else self.bind(0x01)
        before = len(self.deliveries(esme))
        body = {"source": "1", "destination": "2", "data_hex": data.hex(), "split": split}
        code, answer = self.call("POST", MO, body)
        self.smsc.flush()
        self.assertEqual(code, 201, answer)
        parts = self.deliveries(esme)[before:]
        self.assertEqual(len(parts), len(answer["message_ids"]))
        return parts

    def test_140_octets_are_one_plain_deliver_sm(self) -> None:
        """data_hex of 140 octets is one deliver_sm, no UDH, no TLV, whatever the split."""
        data = bytes(range(140))
        esme = self.bind(0x01)
        for split in ("udh8", "udh16", "sar", "payload"):
            [part] = self.inject(data, split, esme)
            self.assertEqual((part["esm_class"], part["short_message"], part["tlvs"]), (0, data, {}), split)

    def test_udh8(self) -> None:
        """
        141 octets with split udh8: two deliver_sm with UDHI and an 8-bit
        concatenation UDH (05 00 03 ref 02 n), 134 + 7 octets after it.
        """
        data = bytes(i % 256 for i in range(141))
        parts = self.inject(data, "udh8")
        self.assertEqual([p["esm_class"] & 0x40 for p in parts], [0x40, 0x40])
        udhs = [p["short_message"][:6] for p in parts]
        self.assertEqual([u[:3] for u in udhs], [b"\x05\x00\x03"] * 2)
        self.assertEqual(udhs[0][3], udhs[1][3])
        self.assertEqual([(u[4], u[5]) for u in udhs], [(2, 1), (2, 2)])
        self.assertEqual([len(p["short_message"]) for p in parts], [140, 13])
        self.assertEqual(b"".join(p["short_message"][6:] for p in parts), data)
        self.assertTrue(all(len(p["short_message"]) <= 140 for p in parts))

    def test_udh16(self) -> None:
        """300 octets with split udh16: 16-bit UDH (06 08 04 ref ref 03 n), 133 octets a part, 140 in all."""
        data = bytes(i % 256 for i in range(300))
        parts = self.inject(data, "udh16")
        self.assertEqual([p["short_message"][:3] for p in parts], [b"\x06\x08\x04"] * 3)
        self.assertEqual([(p["short_message"][5], p["short_message"][6]) for p in parts], [(3, 1), (3, 2), (3, 3)])
        self.assertEqual([len(p["short_message"]) for p in parts], [140, 140, 7 + 34])
        self.assertEqual(b"".join(p["short_message"][7:] for p in parts), data)

    def test_sar(self) -> None:
        """300 octets with split sar: no UDH, SAR TLVs (ref, total 3, seqnum 1..3), 134 octets a part."""
        data = bytes(i % 256 for i in range(300))
        parts = self.inject(data, "sar")
        self.assertEqual([p["esm_class"] for p in parts], [0, 0, 0])
        self.assertEqual([p["tlvs"][0x020E] for p in parts], [b"\x03"] * 3)
        self.assertEqual([p["tlvs"][0x020F] for p in parts], [b"\x01", b"\x02", b"\x03"])
        self.assertEqual(len({p["tlvs"][0x020C] for p in parts}), 1)
        self.assertEqual([len(p["short_message"]) for p in parts], [134, 134, 32])
        self.assertEqual(b"".join(p["short_message"] for p in parts), data)

    def test_payload(self) -> None:
        """141 octets with split payload: one deliver_sm, empty short_message, the octets in message_payload."""
        data = bytes(i % 256 for i in range(141))
        [part] = self.inject(data, "payload")
        self.assertEqual((part["short_message"], part["tlvs"]), (b"", {0x0424: data}))


class BodyTests(RawCalls):
    JSON: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

    def assertRefused(self, path: str, data: bytes, code: int = 400, words: str = "") -> dict[str, Any]:
        status, body = self.send("POST", path, data, self.JSON)
        self.assertEqual((status, body["error"]["status"]), (code, code), body)
        self.assertIn(words, body["error"]["message"])
        self.assertNoTraceback()
        error: dict[str, Any] = body["error"]
        return error

    def test_deep_nesting(self) -> None:
        """100,000 '[' is a 400 JSON answer naming the nesting limit, never a 500 or a logged traceback."""
        self.assertRefused(MO, b"[" * 100_000, words=f"deeper than {MAX_DEPTH} levels")
        self.assertRefused(MO, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, words="nesting limit")

    def test_nesting_past_the_limit_that_python_parses(self) -> None:
        """33 nested arrays parse, but are over the 32-level limit: 400."""
        self.assertRefused("/api/v1/wait/messages", b"[" * 33 + b"]" * 33, words="nesting limit")
        status, _ = self.send("POST", MO, b'{"source": "1", "destination": "2", "text": "x"}', self.JSON)
        self.assertEqual(status, 201)

    def test_bad_encodings(self) -> None:
        """A body that is not UTF-8 (Latin-1, UTF-16, a stray 0xff) is a 400 that says so."""
        body = '{"source": "1", "destination": "2", "text": "café"}'
        self.assertRefused(MO, body.encode("latin-1"), words="not UTF-8")
        self.assertRefused(MO, body.encode("utf-16"), words="not UTF-8")
        self.assertRefused(MO, b"\xff", words="not UTF-8")

    def test_nul(self) -> None:
        """A raw NUL byte or an escaped \\u0000 in a string or key is a 400."""
        self.assertRefused(MO, b'{"source": "1\x00", "destination": "2", "text": "x"}', words="not valid JSON")
        self.assertRefused(MO, b"\x00{}", words="not valid JSON")
        self.assertRefused(MO, b'{"source": "1\\u0000", "destination": "2", "text": "x"}', words="NUL")
        self.assertRefused("/api/v1/reset", b'{"a\\u0000": 1}', words="NUL")

    def test_non_finite_numbers(self) -> None:
        """Infinity and NaN (which Python's parser accepts) are not numbers here: 400."""
        self.assertRefused("/api/v1/instances/SMPP1/outage", b'{"mode": "slow", "latency": Infinity}', words="latency")
        self.assertRefused("/api/v1/wait/messages", b'{"timeout": 1e999}', words="timeout")
        self.assertRefused("/api/v1/wait/messages", b'{"timeout": NaN}', words="timeout")

    def test_too_large(self) -> None:
        """A body over the limit is a 413 naming the limit."""
        error = self.assertRefused(MO, b" " * (MAX_BODY + 1), code=413, words=f"{MAX_BODY} bytes")
        self.assertEqual(error["limit"], MAX_BODY)

    def test_long_values_are_not_echoed(self) -> None:
        """An error quotes at most about 40 characters of a client's value."""
        error = self.assertRefused(
            MO, json.dumps({"source": "1", "destination": "2", "text": "x", "split": "s" * 10_000}).encode()
        )
        self.assertLess(len(error["message"]), 200)
        error = self.assertRefused(MO, json.dumps({"z" * 10_000: 1}).encode(), words="unknown body field")
        self.assertLess(len(error["message"]), 400)


class HostTests(RawCalls):
    def test_foreign_host_is_refused(self) -> None:
        """A Host that is neither loopback, an IP address nor configured (DNS rebinding) gets 421 naming the rule."""
        for host in ("evil.example", "evil.example:8775", "localhost.evil.example", "127.0.0.1.nip.io:8775"):
            code, body = self.send("GET", "/api/v1/health/live", headers={"Host": host})
            self.assertEqual((code, body["error"]["rule"]), (421, "host"), host)
            self.assertIn("DNS rebinding", body["error"]["message"])

    def test_loopback_and_addresses_are_allowed(self) -> None:
        """localhost, 127.0.0.1, [::1] (with or without port) and IP addresses are answered."""
        for host in (
            "127.0.0.1:8775",
            "127.0.0.1",
            "localhost:8775",
            "LOCALHOST",
            "[::1]:8775",
            "[::1]",
            "10.1.2.3:8775",
        ):
            self.assertEqual(self.send("GET", "/api/v1/health/live", headers={"Host": host})[0], 200, host)

    def test_configured_names_are_allowed(self) -> None:
        """A name in api_allowed_hosts is answered, with any port; other names still are not."""
        from treq.testing import StubTreq

        from smsc_sim.api.app import ControlAPI

        self.smsc.api = ControlAPI(self.smsc.simulator, allowed_hosts=("smsc-sim",))
        self.smsc._http = StubTreq(self.smsc.api.resource())
        self.assertEqual(self.send("GET", "/api/v1/health/live", headers={"Host": "smsc-sim:8775"})[0], 200)
        self.assertEqual(self.send("GET", "/api/v1/health/live", headers={"Host": "SMSC-SIM"})[0], 200)
        self.assertEqual(self.send("GET", "/api/v1/health/live", headers={"Host": "smsc:8775"})[0], 421)

    def test_foreign_origin_is_refused(self) -> None:
        """A request a web page elsewhere sends (Origin: http://evil.example), even a bodyless POST, gets 403."""
        for origin in ("http://evil.example", "null", "https://evil.example:443"):
            code, body = self.send("POST", "/api/v1/reset", headers={"Origin": origin})
            self.assertEqual((code, body["error"]["rule"]), (403, "origin"), origin)
        code, _ = self.send("POST", "/api/v1/reset", headers={"Origin": "http://localhost:3000"})
        self.assertEqual(code, 200)


class ContentTypeTests(RawCalls):
    BODY = b'{"source": "1", "destination": "2", "text": "x"}'

    def test_form_and_text_bodies_are_refused(self) -> None:
        """A body posted as a form, as text/plain or with no Content-Type is refused with 415; nothing happens."""
        for kind in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": kind} if kind else {}
            code, body = self.send("POST", MO, self.BODY, headers)
            self.assertEqual((code, body["error"]["rule"]), (415, "content-type"), kind)
            self.assertIn("application/json", body["error"]["message"])
        self.assertEqual(self.call("GET", "/api/v1/messages")[1]["count"], 0)
        code, _ = self.send("PUT", "/api/v1/scenario", b'{"name": "default"}', {"Content-Type": "text/plain"})
        self.assertEqual(code, 415)

    def test_json_with_parameters_and_bodyless_requests_pass(self) -> None:
        """application/json with a charset is accepted; a POST or DELETE without a body needs no Content-Type."""
        code, _ = self.send("POST", MO, self.BODY, {"Content-Type": "Application/JSON; charset=utf-8"})
        self.assertEqual(code, 201)
        self.assertEqual(self.send("POST", "/api/v1/reset")[0], 200)
        self.assertEqual(self.send("DELETE", "/api/v1/instances/SMPP1/outage")[0], 200)


class TokenFirstTests(RawCalls):
    token = "s3cret"

    def test_bad_token_gets_401_before_404_or_405(self) -> None:
        """With a wrong or no token, a wrong method or an unknown path answers 401, revealing no route."""
        for method, path in (
            ("DELETE", "/api/v1/health/live"),
            ("POST", "/api/v1/stats"),
            ("GET", "/api/v1/nope"),
            ("PUT", "/api/v1/openapi.json"),
        ):
            for auth in ("Bearer wrong", ""):
                code, body = self.send(method, path, headers={"Authorization": auth})
                self.assertEqual(code, 401, (method, path, auth))
                self.assertEqual(body["error"]["status"], 401)

    def test_good_token_then_routing(self) -> None:
        """With the token, the same requests get their 405 and 404; liveness and the description stay open."""
        self.assertEqual(self.send("DELETE", "/api/v1/health/live")[0], 405)
        self.assertEqual(self.send("GET", "/api/v1/nope")[0], 404)
        for path in ("/api/v1/health/live", "/api/v1/openapi.json"):
            self.assertEqual(self.send("GET", path, headers={"Authorization": ""})[0], 200)


class AllowedHostsConfigTests(SynchronousTestCase):
    def test_environment_option_and_file(self) -> None:
        """api_allowed_hosts comes from SMSC_SIM_API_ALLOWED_HOSTS (comma-separated), --api-allowed-hosts or the file."""
        config = load_config(None, {}, {"SMSC_SIM_API_ALLOWED_HOSTS": "smsc-sim, SMSC ,10.0.0.1"})
        self.assertEqual(config.api_allowed_hosts, ("smsc-sim", "smsc", "10.0.0.1"))
        options = Options(environ={"SMSC_SIM_API_ALLOWED_HOSTS": "ignored"})
        options.parseOptions(["--api-allowed-hosts", "a.example,*"])
        self.assertEqual(options.config.api_allowed_hosts, ("a.example", "*"))
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("api_allowed_hosts: [smsc-sim]\n")
        self.assertEqual(load_config(path, {}, {}).api_allowed_hosts, ("smsc-sim",))
        self.assertEqual(load_config(None, {}, {}).api_allowed_hosts, ())

    def test_bad_names_are_start_errors(self) -> None:
        """A name with a port, a path or a space stops the start with one line naming the variable."""
        for value in ("smsc-sim:8775", "http://smsc-sim", "two words"):
            with self.assertRaises(ConfigError) as caught:
                load_config(None, {}, {"SMSC_SIM_API_ALLOWED_HOSTS": value})
            message = str(caught.exception)
            self.assertIn("environment variable SMSC_SIM_API_ALLOWED_HOSTS", message)
            self.assertNotIn("\n", message)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_form_posts_over_tcp_get_json_415() -> None:
    """
    Over real HTTP, a multipart form post (even a malformed one, which
    twisted.web would answer with a bare 400 of its own) and a urlencoded
    one get the API's JSON 415, and their fields never reach the query.
    """
    from smsc_sim.testing.harness import InProcessSimulator

    smsc = await InProcessSimulator().start()
    try:
        for kind, body in (
            ("multipart/form-data; boundary=x", b"--x\r\nnot a part"),
            ("application/x-www-form-urlencoded", b"source=1&destination=2&text=x"),
        ):
            headers: dict[bytes | str, bytes | str] = {"Content-Type": kind}
            response = await treq.post(smsc.api_url + MO, data=body, headers=headers)
            assert response.code == 415, kind
            assert (await response.json())["error"]["rule"] == "content-type"
    finally:
        await smsc.stop()


class DocumentedGuardTests(RawCalls):
    token = "t"

    def test_guard_and_limit_answers_match_the_document(self) -> None:
        """The 401, 403, 413, 415 and 421 answers, and the 400 of the MO limit, are documented for those operations."""
        from smsc_sim.api.app import openapi_document
        from tests.test_api_openapi import OpenAPIChecker

        checker = OpenAPIChecker(openapi_document())
        json_type = {"Content-Type": "application/json"}
        mo = json.dumps({"source": "1", "destination": "2", "text": "x" * 400, "count": 5000}).encode()
        cases = [
            ("POST", "/api/v1/reset", None, {"Authorization": "Bearer no"}, 401),
            ("GET", "/api/v1/instances", None, {"Origin": "http://evil.example"}, 403),
            ("POST", MO, b" " * (MAX_BODY + 1), json_type, 413),
            ("PUT", "/api/v1/scenario", b"name=default", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ("GET", "/api/v1/health/live", None, {"Host": "evil.example"}, 421),
            ("POST", MO, mo, json_type, 400),
        ]
        for method, path, data, headers, expected in cases:
            code, body = self.send(method, path, data, headers)
            self.assertEqual(code, expected, (method, path, body))
            checker.check(method, path, code, body)


class FieldTypeTests(RawCalls):
    def test_wrong_types_and_sizes_are_400(self) -> None:
        """An outage status that is a list, object or float, or a receipt err past 999, is a 400, never a 500."""
        wrong: tuple[object, ...] = ([], {"a": 1}, 1.5, 1e300)
        for status in wrong:
            code, body = self.call("POST", "/api/v1/instances/SMPP1/outage", {"mode": "reject-binds", "status": status})
            self.assertEqual(code, 400, (status, body))
            self.assertIn("status", body["error"]["message"])
        esme = self.bind()
        message_id = self.submit(esme)
        for err in (1000, 10**30):
            code, body = self.call("POST", f"/api/v1/messages/{message_id}/receipt", {"stat": "UNDELIV", "err": err})
            self.assertEqual(code, 400, (err, body))
        self.assertNoTraceback()


class MOTurnTests(RawCalls):
    def test_a_large_request_is_originated_a_turn_at_a_time(self) -> None:
        """
        count 1000 is originated at most 200 records a reactor turn, the rest
        left for later turns (SMPP traffic is served in between); the 201
        with all 1000 ids comes once every MO is out.
        """
        from smsc_sim.api.messages import MO_RECORDS_PER_TURN

        body = json.dumps({"source": "1", "destination": "2", "text": "x", "count": 1000}).encode()
        waiting = set(self.smsc.reactor.getDelayedCalls())  # the API's own timers
        answer = self.smsc.http.request("POST", BASE + MO, data=body, headers={"Content-Type": "application/json"})
        self.smsc.http.flush()
        self.assertNoResult(answer)
        self.assertEqual(len(self.smsc.messages(direction="mo")), MO_RECORDS_PER_TURN)
        # the next turn's share, behind other work
        self.assertEqual(len(set(self.smsc.reactor.getDelayedCalls()) - waiting), 1)
        self.smsc.flush()
        response = self.successResultOf(answer)
        self.assertEqual(response.code, 201)
        self.assertEqual(len(json.loads(self.successResultOf(treq.content(response)))["message_ids"]), 1000)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_liveness_answers_while_a_large_mo_request_runs() -> None:
    """
    Over real HTTP, while a POST /mo of 10,000 records is being originated,
    a liveness request sent after it is answered first: the reactor is not
    held for the whole request.
    """
    from twisted.internet import reactor

    from smsc_sim.testing.harness import InProcessSimulator

    smsc = await InProcessSimulator().start()
    try:
        body = json.dumps({"source": "1", "destination": "2", "text": "x", "count": 10_000}).encode()
        order: list[str] = []

        def posted(response: Any) -> Any:
            order.append("mo")
            return response

        headers: dict[bytes | str, bytes | str] = {"Content-Type": "application/json"}
        posting = treq.post(smsc.api_url + MO, data=body, headers=headers)
        posting.addCallback(posted)
        await deferLater(reactor, 0.05)
        live = await treq.get(smsc.api_url + "/api/v1/health/live")
        order.append("live")
        assert live.code == 200
        response = await posting
        assert response.code == 201
        assert len((await response.json())["message_ids"]) == 10_000
        assert order == ["live", "mo"]
    finally:
        await smsc.stop()
