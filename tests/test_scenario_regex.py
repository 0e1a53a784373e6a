"""
Scenario regexes are RE2's: matched in time linear in the text, so a
catastrophically backtracking pattern cannot hold the simulator; what RE2
cannot do (backreferences, lookaround) is refused at load with the file and
the line, from a file, at start and through the API.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import tempfile
import textwrap
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.scenario.loader import ScenarioError, load_scenario, parse_scenario, shipped_scenarios
from smsc_sim.scenario.parse_rules import MAX_REGEX_PROGRAM, MAX_REGEXES
from smsc_sim.scenario.regex import Regex
from smsc_sim.testing.harness import SimulatorProcess
from tests import wire
from tests.test_api import APITestCase
from tests.test_scenario_engine import facts

#: a pattern Python's re takes exponential time on when the text almost matches
CATASTROPHIC = "^(a+)+$"


def write_scenario(test: SynchronousTestCase, text: str) -> str:
    """``text`` as a scenario file in a directory removed after the test; its path."""
    folder = tempfile.mkdtemp(prefix="smsc-sim-regex-")
    path = os.path.join(folder, "mine.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text).lstrip("\n"))
    test.addCleanup(os.rmdir, folder)
    test.addCleanup(os.remove, path)
    return path


class RefusedTests(SynchronousTestCase):
    """What RE2 cannot do is refused at load, in one line naming the file, the line and the reason."""

    CASES = [
        ("(?=stop)", "lookahead is not supported"),
        ("(?!stop)x", "lookahead is not supported"),
        ("(?<=a)b", "lookbehind is not supported"),
        ("(?<!a)b", "lookbehind is not supported"),
        ("(a)\\\\1", "backreferences are not supported"),
        ("(?P<w>a)(?P=w)", "backreferences ((?P=name)) are not supported"),
        ("a\\\\Z", "write \\z for the end of the text"),
        ("(?>a)", "atomic groups are not supported"),
        ("a++", "possessive repeats are not supported"),
        ("(?x) a", "only the flags i, m, s and U are supported"),
    ]

    def test_each_refused_with_file_line_and_reason(self) -> None:
        """Each unsupported construct, in match.text, is refused with file:line: path: the reason."""
        for pattern, reason in self.CASES:
            with self.subTest(pattern=pattern):
                path = write_scenario(self, f'rules:\n  - status: ESME_RSYSERR\n    match:\n      text: "{pattern}"\n')
                error = self.assertRaises(ScenarioError, load_scenario, path)
                text = str(error)
                self.assertTrue(text.startswith(f"{path}:4: rules[0].match.text: bad regex "), text)
                self.assertIn(reason, text)
                self.assertNotIn("\n", text)

    def test_address_regexes_and_auto_replies_too(self) -> None:
        """source and destination regexes, and an auto-reply's text, go through the same check."""
        for text, line, where in (
            ("rules:\n  - match: {source: {regex: '(?<=4)4'}}\n", 2, "rules[0].match.source.regex"),
            ("rules:\n  - match:\n      destination: {regex: '(1)\\1'}\n", 3, "rules[0].match.destination.regex"),
            ("auto_replies:\n  - match: {text: '(?=stop)'}\n    text: bye\n", 2, "auto_replies[0].match.text"),
        ):
            with self.subTest(where=where):
                error = self.assertRaises(ScenarioError, parse_scenario, text, "bad.yaml")
                self.assertEqual((error.file, error.line, error.path), ("bad.yaml", line, where))
                self.assertIn("not supported", error.problem)

    def test_matching_cost_is_bounded_at_load(self) -> None:
        """Regexes whose RE2 programs add up to more than the limit are refused at the one that passes it."""
        rules = "".join(f"  - match: {{text: '\\pL{i}'}}\n" for i in range(6))  # \pL: about 1 200 instructions
        error = self.assertRaises(ScenarioError, parse_scenario, "rules:\n" + rules, "big.yaml")
        self.assertEqual(error.line, 6)
        self.assertIn(f"RE2 instructions in the scenario; the limit is {MAX_REGEX_PROGRAM}", error.problem)

    def test_number_of_regexes_is_bounded_at_load(self) -> None:
        """One regex more than the limit (each small) is refused at its line, naming the limit."""
        rules = "".join(f"  - match: {{destination: {{regex: '^{i}'}}}}\n" for i in range(MAX_REGEXES + 1))
        error = self.assertRaises(ScenarioError, parse_scenario, "rules:\n" + rules, "many.yaml")
        self.assertEqual((error.line, error.path), (MAX_REGEXES + 2, f"rules[{MAX_REGEXES}].match.destination.regex"))
        self.assertEqual(error.problem, f"more than {MAX_REGEXES} regexes in the scenario (the limit)")
        parse_scenario("rules:\n" + "".join(rules.splitlines(keepends=True)[:MAX_REGEXES]), "enough.yaml")


class SemanticsTests(SynchronousTestCase):
    """The regexes users write match as they did with Python's re: searched, Unicode text."""

    def test_same_answers_as_python_re(self) -> None:
        """Common patterns give re.search's yes or no on ASCII and Unicode texts."""
        patterns = [
            "^Acme", "7$", "(?i)\\bstop\\b", "^(?i:stop)\\b", "^44(77|78)[0-9]{8}$", "(?i)arrêt|halt",
            "(?i)é", "✓", "^.{3}$", "a.c", "(?s)a.c", "^$", "x*", "[0-9]+", "(?m)^stop$", "STOP|Stop|stop",
            "(?P<word>[a-z]+) now", "\\d{4}", "\\s", "^\\+?44",
        ]
        texts = [
            "", "Acme Ltd", "447700900127", "447800900123", "please STOP", "nonstop", "Stop.", "stop",
            "Ünïcödé ✓ 3", "ARRÊT", "é", "É", "abc", "a\nc", "a✓c", "line\nstop\nend", "go now", "2024",
            "a b", "+447", "日本語", "😀x",
        ]
        for pattern in patterns:
            ours = Regex(pattern)
            for text in texts:
                with self.subTest(pattern=pattern, text=text):
                    self.assertEqual(ours.found_in(text), re.search(pattern, text) is not None)

    def test_shipped_scenarios_still_match(self) -> None:
        """Every shipped scenario loads, and chaos's STOP auto-reply and the drill's 7$ match as before."""
        for name in shipped_scenarios():
            load_scenario(name)
        [stop] = [reply for reply in load_scenario("chaos").auto_replies if reply.name == "stop"]
        self.assertEqual(
            [stop.match.static_matches(facts(text=t)) for t in ("STOP", "stop please", "nonstop", "Stopwatch")],
            [True, True, False, False],
        )
        drill = load_scenario("drill-slow-receipts")
        regexes = [
            rule.match.destination.regex
            for rules in drill.rule_sets.values()
            for rule in rules
            if rule.match.destination is not None and rule.match.destination.regex is not None
        ]
        self.assertEqual([(r.found_in("447700900127"), r.found_in("447700900128")) for r in regexes], [(True, False)])


class APITests(APITestCase):
    """Scenario text sent to the API with a pattern RE2 refuses answers 400 with the line, and nothing changes."""

    def test_lookbehind_in_put_yaml_is_400(self) -> None:
        """PUT /api/v1/scenario {"yaml": ...} with a lookbehind answers 400 JSON naming the line; the scenario stays."""
        text = "name: mine\nrules:\n  - status: ESME_RSYSERR\n    match: {text: '(?<!un)subscribe'}\n"
        code, body = self.call("PUT", "/api/v1/scenario", {"yaml": text})
        self.assertEqual(code, 400, body)
        error = body["error"]
        self.assertEqual((error["file"], error["line"], error["path"]), ("<request body>", 4, "rules[0].match.text"))
        self.assertIn("lookbehind is not supported", error["message"])
        self.assertEqual(self.call("GET", "/api/v1/scenario")[1]["scenario"]["name"], "default")

    def test_regex_rules_apply_through_the_api(self) -> None:
        """A scenario put through the API refuses what its text regex finds, and accepts the rest."""
        text = "name: mine\nrules:\n  - status: ESME_RSYSERR\n    match: {text: '(?i)\\bstop\\b'}\n"
        self.assertEqual(self.call("PUT", "/api/v1/scenario", {"yaml": text})[0], 200)
        esme = self.bind()
        statuses = []
        for sequence, message in enumerate((b"Please STOP", b"nonstop", "arrêt stop".encode("latin-1")), start=2):
            esme.send(wire.submit_sm(sequence, text=message))
            self.smsc.flush()
            statuses.append(esme.received[-1][0].command_status)
        self.assertEqual(statuses, [0x08, 0, 0x08])


def _read_pdu(sock: socket.socket) -> tuple[int, int, int]:
    """(command_id, command_status, sequence_number) of the next PDU; the socket's timeout bounds the wait."""
    data = b""
    while len(data) < 16 or len(data) < struct.unpack(">I", data[:4])[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("the simulator closed the connection")
        data += chunk
    _, command_id, status, sequence = struct.unpack(">IIII", data[:16])
    return command_id, status, sequence


@pytest.mark.integration
class HostileTextTests(SynchronousTestCase):
    """A simulator process whose scenario has a catastrophic pattern, and an ESME sending hostile text."""

    def test_catastrophic_pattern_against_a_10000_character_message_answers_within_a_second(self) -> None:
        """
        ``^(a+)+$`` against 10 000 ``a`` and a ``b`` in message_payload (with
        Python's re: longer than anyone waits, the reactor held) is answered in
        under a second, and the rule still refuses the message it matches.
        """
        path = write_scenario(
            self, f"name: hostile\nrules:\n  - status: ESME_RSYSERR\n    match: {{text: '{CATASTROPHIC}'}}\n"
        )
        simulator = SimulatorProcess(scenario=path)
        simulator.start()
        try:
            host, port = simulator.endpoints["SMPP1"][0]
            system_id, password = simulator.accounts[0]
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(wire.bind(0x02, 1, system_id, password))
                self.assertEqual(_read_pdu(sock), (0x80000002, 0, 1))
                answers = {}
                for sequence, payload in ((2, b"a" * 10_000), (3, b"a" * 10_000 + b"b"), (4, b"b" + b"a" * 10_000)):
                    sock.sendall(wire.submit_sm(sequence, text=b"", tlvs=wire.tlv(0x0424, payload)))
                    started = time.monotonic()
                    sock.settimeout(1.0)
                    try:
                        command_id, status, got = _read_pdu(sock)
                    except socket.timeout:
                        raise AssertionError(f"no submit_sm_resp to submit {sequence} within 1 s") from None
                    answers[got] = (command_id, status, time.monotonic() - started < 1.0)
            self.assertEqual(answers, {2: (0x80000004, 0x08, True), 3: (0x80000004, 0, True), 4: (0x80000004, 0, True)})
        finally:
            simulator.stop(timeout=2)
