"""
``GET /api/v1/conformance`` and ``POST /api/v1/conformance/reset``: the
judge's report over HTTP, its filters, JUnit XML, and the resets.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from tests import wire
from tests.test_api import APITestCase, RecordingESME


class ConformanceAPITests(APITestCase):
    def misbehave(self) -> RecordingESME:
        """An ESME on SMPP1 that submits with sequence_number 0 (an error) and closes without unbind (a warning)."""
        esme = self.bind()
        esme.send(wire.submit_sm(0, registered_delivery=0))
        self.smsc.flush()
        assert esme.transport is not None
        esme.transport.loseConnection()
        self.smsc.flush()
        return esme

    def test_report_lists_findings_with_verdict(self) -> None:
        """The report says fail, counts each code, and lists each finding with its evidence."""
        self.misbehave()
        code, body = self.call("GET", "/api/v1/conformance")
        self.assertEqual(code, 200)
        self.assertEqual(body["verdict"], "fail")
        self.assertEqual(body["counts"]["sequence-reuse"], 1)
        self.assertEqual(body["counts"]["no-unbind"], 1)
        [reuse] = [f for f in body["findings"] if f["code"] == "sequence-reuse"]
        self.assertEqual((reuse["severity"], reuse["account"], reuse["instance"]), ("error", "smppclient1", "SMPP1"))
        self.assertEqual(reuse["evidence"][0]["command"], "submit_sm")
        self.assertEqual(reuse["evidence"][0]["sequence_number"], 0)

    def test_filters(self) -> None:
        """severity, account, session_id and since narrow the findings; the verdict follows what is left."""
        self.misbehave()
        _, warnings = self.call("GET", "/api/v1/conformance?severity=warning")
        self.assertEqual((warnings["verdict"], sorted(warnings["counts"])), ("warn", ["no-unbind", "single-instance"]))
        _, other = self.call("GET", "/api/v1/conformance?account=someoneelse")
        self.assertEqual((other["verdict"], other["findings"]), ("pass", []))
        _, session = self.call("GET", "/api/v1/conformance?session_id=1")
        self.assertEqual(sorted(session["counts"]), ["no-unbind", "sequence-reuse"])
        _, later = self.call("GET", f"/api/v1/conformance?since={self.smsc.clock.seconds() + 1}")
        self.assertEqual(later["findings"], [])

    def test_bad_filters_are_400_json(self) -> None:
        """Each bad filter value, an unknown filter and an unknown format get 400 with a JSON error naming it."""
        cases = {
            "severity=fatal": "severity must be one of error, warning, info, got 'fatal'",
            "session_id=abc": "session_id must be an integer of 1 or more, got 'abc'",
            "session_id=0": "session_id must be an integer of 1 or more, got '0'",
            "since=nan": "since must be a number (seconds since the epoch), got 'nan'",
            "account=" + "a" * 16: "account must be a system_id of 1 to 15 characters",
            "format=pdf": "format must be one of json, junit, markdown, got 'pdf'",
            "colour=red": "unknown query field(s) colour",
        }
        for query, message in cases.items():
            code, body = self.call("GET", f"/api/v1/conformance?{query}")
            self.assertEqual(code, 400, query)
            self.assertEqual(body["error"]["status"], 400)
            self.assertIn(message, body["error"]["message"])

    def test_junit(self) -> None:
        """format=junit answers application/xml: a testcase per check for the account, a failure per error finding."""
        self.misbehave()
        answer = self.smsc.http.get("http://smsc-sim.invalid/api/v1/conformance?format=junit")
        self.smsc.flush()
        response = self.successResultOf(answer)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/xml"])
        import treq

        suite = ElementTree.fromstring(self.successResultOf(treq.content(response)))
        self.assertEqual(suite.get("failures"), "1")
        [failure] = suite.iter("failure")
        self.assertEqual(failure.get("type"), "sequence-reuse")
        names = {case.get("name") for case in suite.iter("testcase") if case.get("classname") == "smppclient1"}
        self.assertIn("no-failover", names)

    def test_conformance_reset(self) -> None:
        """POST /api/v1/conformance/reset forgets the findings; messages stay."""
        self.misbehave()
        self.assertEqual(self.call("POST", "/api/v1/conformance/reset", {}), (200, {"reset": True}))
        _, body = self.call("GET", "/api/v1/conformance")
        self.assertEqual((body["verdict"], body["findings"]), ("pass", []))
        _, messages = self.call("GET", "/api/v1/messages")
        self.assertEqual(len(messages["messages"]), 1)

    def test_global_reset_clears_the_judge(self) -> None:
        """POST /api/v1/reset clears the judge's findings too."""
        self.misbehave()
        self.assertEqual(self.call("POST", "/api/v1/reset", {})[0], 200)
        _, body = self.call("GET", "/api/v1/conformance")
        self.assertEqual(body["findings"], [])

    def test_reset_refuses_a_form_post(self) -> None:
        """A conformance reset posted as a form (a cross-site attempt) is refused with 415; the findings stay."""
        self.misbehave()
        code, body = self.call(
            "POST", "/api/v1/conformance/reset", headers={"Content-Type": "text/plain"}, raw=b"x=1"
        )
        self.assertEqual((code, body["error"]["rule"]), (415, "content-type"))
        self.assertEqual(self.call("GET", "/api/v1/conformance")[1]["verdict"], "fail")


class ConformanceTokenTests(APITestCase):
    token: str | None = "secret"

    def test_token_required(self) -> None:
        """Without the bearer token the report is 401."""
        self.token = None
        code, _ = self.call("GET", "/api/v1/conformance")
        self.assertEqual(code, 401)
