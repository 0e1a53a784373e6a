"""
The OpenAPI description against the API as it answers: the document is
valid OpenAPI 3.1 (openapi-spec-validator), names every route the API has
(and no other), and real answers of every operation, errors included, match
its schemas (JSON Schema 2020-12, the dialect of OpenAPI 3.1, with jsonschema).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import treq

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from smsc_sim.api.app import openapi_document
from smsc_sim.api.trace import PCAP_TYPE
from smsc_sim.trace.wiring import Trace
from tests import wire
from tests.test_api import BASE, APITestCase

DOC = "urn:smsc-sim-openapi"


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


class OpenAPIChecker:
    """Validates answers against the response schemas of one document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC, resource)
        self.templates = [(t, re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", t) + "$")) for t in document["paths"]]

    def template(self, path: str) -> str:
        """The documented path template a concrete path falls under."""
        path = path.split("?")[0]
        for template, pattern in self.templates:
            if pattern.match(path):
                return template
        raise AssertionError(f"{path} is not documented")

    def check(self, method: str, path: str, code: int, body: Any, kind: str | None = None) -> None:
        """Raise when the answer (of content type ``kind``) does not match the documented response."""
        template = self.template(path)
        operation = self.document["paths"][template].get(method.lower())
        assert operation is not None, f"{method} {template} is not documented"
        responses = operation["responses"]
        assert str(code) in responses, f"{method} {template} answered {code}, documented: {sorted(responses)}"
        response = responses[str(code)]
        location = ["paths", template, method.lower(), "responses", str(code)]
        if "$ref" in response:
            location = response["$ref"].lstrip("#/").split("/")
            response = self.document[location[0]][location[1]][location[2]]
        if kind is None:
            kind = "application/json" if isinstance(body, (dict, list)) else "text/plain"
        assert kind in response["content"], f"{method} {template} {code}: {kind} not documented"
        pointer = _pointer(*location, "content", kind, "schema")
        validator = Draft202012Validator({"$ref": f"{DOC}#/{pointer}"}, registry=self.registry)
        validator.validate(body)


class OpenAPITests(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.checker = OpenAPIChecker(openapi_document())
        self.checked: set[tuple[str, str, int]] = set()

    def check(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        """Call, check the answer (its content type too) against the document, return the body."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        answer = self.smsc.http.request(
            method, BASE + path, data=json.dumps(body).encode() if body is not None else None, headers=headers
        )
        self.smsc.flush()
        response = self.successResultOf(answer)
        raw = self.successResultOf(treq.content(response))
        kind = (response.headers.getRawHeaders("content-type") or [""])[0].split(";")[0]
        code = response.code
        if kind == "application/json":
            answer = json.loads(raw)
        elif kind == PCAP_TYPE:
            answer = raw.decode("latin-1")  # binary: a string of its octets for the schema's check
        else:
            answer = raw.decode()
        if expect is not None:
            self.assertEqual(code, expect, (method, path, answer))
        self.checker.check(method, path, code, answer, kind)
        self.checked.add((method, self.checker.template(path), code))
        return answer

    def checkStarted(self, method: str, path: str, deferred: Any) -> Any:
        """Check a long-poll's answer."""
        code, answer = self.answer(deferred)
        self.checker.check(method, path, code, answer)
        self.checked.add((method, self.checker.template(path), code))
        return answer

    def test_document_is_valid_openapi(self) -> None:
        """The document is valid OpenAPI 3.1."""
        validate_spec(openapi_document())

    def test_every_route_is_documented(self) -> None:
        """Every path and method the API serves is in the document, and the document has no other."""
        served = {(route.template, method.lower()) for route in self.smsc.api.api.routes for method in route.methods}
        documented = {
            (path, method)
            for path, item in openapi_document()["paths"].items()
            for method in item
            if method in ("get", "put", "post", "delete", "patch")
        }
        self.assertEqual(served, documented)

    def test_answers_match_the_document(self) -> None:
        """Real answers of every operation, success and error, match their documented schemas."""
        check = self.check
        check("GET", "/api/v1", expect=200)
        check("GET", "/api/v1/openapi.json", expect=200)
        check("GET", "/api/v1/health/live", expect=200)
        check("GET", "/api/v1/health/ready", expect=200)
        check("GET", "/api/v1/instances", expect=200)
        check("GET", "/api/v1/instances/SMPP1", expect=200)
        check("GET", "/api/v1/instances/NOPE", expect=404)
        check("POST", "/api/v1/instances/SMPP2/outage", {"mode": "slow", "latency": 0.5, "duration": 10}, 200)
        check("POST", "/api/v1/instances/SMPP2/outage", {"mode": "warp"}, 400)
        check("DELETE", "/api/v1/instances/SMPP2/outage", expect=200)
        check("POST", "/api/v1/instances/SMPP0/outage", {"mode": "graceful"}, 200)
        check("GET", "/api/v1/health/ready", expect=200)
        self.successResultOf(self.smsc.simulator.instances["SMPP2"].listeners[0].unlisten())
        check("GET", "/api/v1/health/ready", expect=503)
        check("DELETE", "/api/v1/instances/NOPE/outage", expect=404)

        check("GET", "/api/v1/trace.pcap", expect=404)  # no ring: the simulator was started without one
        simulator = self.smsc.simulator
        simulator.trace = Trace(dataclasses.replace(simulator.config, pcap_ring=1 << 20), simulator.events)
        esme = self.bind()
        receiver = self.bind(0x01, "SMPP2")
        sessions = check("GET", "/api/v1/sessions", expect=200)["sessions"]
        check("GET", "/api/v1/sessions?bind_type=receiver", expect=200)
        check("GET", "/api/v1/sessions?nope=1", expect=400)
        check("GET", f"/api/v1/sessions/{sessions[0]['session_id']}", expect=200)
        check("GET", "/api/v1/sessions/999", expect=404)
        check("GET", f"/api/v1/sessions/{sessions[0]['session_id']}/trace.pcap", expect=200)
        check("GET", "/api/v1/sessions/999/trace.pcap", expect=404)
        check("GET", "/api/v1/trace.pcap?since=0", expect=200)
        check("GET", "/api/v1/trace.pcap?since=soon", expect=400)
        check("DELETE", "/api/v1/sessions/999", expect=404)
        check("DELETE", f"/api/v1/sessions/{sessions[1]['session_id']}?how=sideways", expect=400)
        check("DELETE", f"/api/v1/sessions/{sessions[1]['session_id']}?how=reset", expect=200)
        self.smsc.flush()
        self.assertTrue(receiver.closed)

        message_id = self.submit(esme, 2, text=b"Hello")
        self.submit(esme, 3, esm_class=0x40, text=bytes([5, 0, 3, 9, 2, 1]) + b"Hel")
        check("GET", "/api/v1/messages", expect=200)
        check("GET", "/api/v1/messages?limit=1&state=pending", expect=200)
        check("GET", "/api/v1/messages?limit=none", expect=400)
        check("GET", "/api/v1/messages?destination_prefix=4477", expect=200)
        check("GET", "/api/v1/submits", expect=200)
        check("GET", "/api/v1/submits?status=ESME_RTHROTTLED&destination_prefix=44", expect=200)
        check("GET", "/api/v1/submits?status=sideways", expect=400)
        check("GET", "/api", expect=200)
        check("GET", f"/api/v1/messages/{message_id}", expect=200)
        check("GET", "/api/v1/messages/NOPE", expect=404)
        check("POST", "/api/v1/wait/messages", {"count": 1, "timeout": 0}, 200)
        check("POST", "/api/v1/wait/messages", {"count": 0}, 400)
        waiting = self.started("POST", "/api/v1/wait/messages", {"count": 9, "timeout": 1})
        self.smsc.advance(1)
        self.checkStarted("POST", "/api/v1/wait/messages", waiting)
        self.smsc.advance(10)
        check("POST", "/api/v1/wait/receipt", {"message_id": message_id, "timeout": 0}, 200)
        check("POST", "/api/v1/wait/receipt", {"message_id": "NOPE", "timeout": 0}, 408)
        check("POST", "/api/v1/wait/receipt", {}, 400)
        check("POST", "/api/v1/wait/bind", {"timeout": 0}, 200)
        check("POST", "/api/v1/wait/bind", {"count": 5, "timeout": 0}, 408)
        check("POST", "/api/v1/wait/bind", {"bind_type": 1}, 400)
        check("POST", f"/api/v1/messages/{message_id}/receipt", {"stat": "EXPIRED"}, 200)
        check("POST", f"/api/v1/messages/{message_id}/receipt", {"stat": "GONE"}, 400)
        check("POST", "/api/v1/messages/NOPE/receipt", {"stat": "DELIVRD"}, 404)
        mo = check("POST", "/api/v1/mo", {"source": "1", "destination": "2", "text": "hi"}, 201)["message_ids"][0]
        check("POST", f"/api/v1/messages/{mo}/receipt", {"stat": "DELIVRD"}, 409)
        check("POST", "/api/v1/mo", {"source": "1"}, 400)
        check("POST", "/api/v1/mo", {"source": "1", "destination": "2", "text": "x", "account": "x"}, 404)

        check("GET", "/api/v1/scenario", expect=200)
        check("GET", "/api/v1/scenarios", expect=200)
        check("PUT", "/api/v1/scenario", {"name": "throttling"}, 200)
        check("PUT", "/api/v1/scenario", {"yaml": "rules: 3\n"}, 400)
        check("POST", "/api/v1/reset", {"sessions": True}, 200)
        check("POST", "/api/v1/reset", {"everything": True}, 400)
        check("GET", "/api/v1/stats", expect=200)
        esme = self.bind()
        assert esme.transport is not None
        esme.transport.loseConnection()  # no unbind: a no-unbind finding
        self.smsc.flush()
        report = check("GET", "/api/v1/conformance", expect=200)
        self.assertIn("no-unbind", report["counts"])
        check("GET", "/api/v1/conformance?severity=warning&account=smppclient1&session_id=1&since=0", expect=200)
        check("GET", "/api/v1/conformance?format=junit", expect=200)
        check("GET", "/api/v1/conformance?format=markdown", expect=200)
        check("GET", "/api/v1/conformance?severity=fatal", expect=400)
        check("POST", "/api/v1/conformance/reset", {}, 200)
        check("POST", "/api/v1/conformance/reset", {"all": True}, 400)
        check("GET", "/api/v1/accounts", expect=200)
        check("GET", "/api/v1/accounts?x=1", expect=400)
        check("GET", "/api/v1/accounts/smppclient1", expect=200)
        check("GET", "/api/v1/accounts/nobody", expect=404)
        check("PUT", "/api/v1/accounts/smppclient1/balance", {"balance": "5.00 EUR"}, 200)
        check("PUT", "/api/v1/accounts/smppclient1/balance", {"balance": 5}, 400)
        check("PUT", "/api/v1/accounts/nobody/balance", {"balance": "5"}, 404)
        check("GET", "/api/v1/metrics", expect=200)
        check("GET", "/api/v1/events?pdus=maybe", expect=400)
        check("GET", "/metrics", expect=200)
        check("GET", "/api/v1/accounts/smppclient1/outbind", expect=409)  # the default account has no outbind
        check("POST", "/api/v1/accounts/smppclient1/outbind", {}, 409)
        check("POST", "/api/v1/accounts/nobody/outbind", {}, 404)
        check("GET", "/api/v1/handsets", expect=200)
        check("POST", "/api/v1/handsets/447700900001/available", {}, 200)
        check("POST", "/api/v1/handsets/447700900001/available", {"now": True}, 400)

        methods = ("get", "put", "post", "delete")
        operations = {(m.upper(), p) for p, item in openapi_document()["paths"].items() for m in item if m in methods}
        exercised = {(method, template) for method, template, _ in self.checked}
        self.assertEqual(operations - exercised, set())

    def test_unauthorized_answer_matches(self) -> None:
        """A 401 answer matches the document's error schema."""
        self.smsc.api.api.token = "t"
        code, body = self.call("GET", "/api/v1/instances")
        self.assertEqual(code, 401)
        self.checker.check("GET", "/api/v1/instances", code, body)
        self.assertEqual(wire.cstr("x"), b"x\x00")
