"""Tests for smsc_sim.scenario.loader: finding scenarios and refusing mistakes with file, line and key."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.scenario.distributions import Exponential, Fixed, Mix, Normal, Uniform
from smsc_sim.scenario.loader import ScenarioError, find_scenario, load_scenario, parse_scenario, shipped_scenarios
from smsc_sim.scenario.model import Scenario


def parse(text: str) -> Scenario:
    """Parse an inline scenario named ``bad.yaml``."""
    return parse_scenario(textwrap.dedent(text).lstrip("\n"), "bad.yaml")


class MistakeTests(SynchronousTestCase):
    """Each kind of mistake names the file, the line, the key path and the fix."""

    def assertRefused(self, text: str, line: int, path: str, problem: str) -> None:
        error = self.assertRaises(ScenarioError, parse, text)
        self.assertEqual((error.file, error.line, error.path), ("bad.yaml", line, path))
        self.assertIn(problem, error.problem)
        self.assertEqual(
            str(error), f"bad.yaml:{line}: {path}: {error.problem}" if path else f"bad.yaml:{line}: {error.problem}"
        )
        self.assertIsInstance(error, ValueError)

    def test_unknown_key_with_suggestion(self) -> None:
        """A misspelt key is named with its path and the closest right key."""
        self.assertRefused(
            """
            rules:
              - match: {destination: "1"}
              - match: {destination: "2"}
              - match:
                  destinaton: "3"
            """,
            5,
            "rules[2].match.destinaton",
            "unknown key 'destinaton' (did you mean 'destination'?)",
        )

    def test_unknown_key_without_close_match_lists_the_keys(self) -> None:
        """A key like nothing known lists what is allowed."""
        self.assertRefused(
            "throttle: {zzz: 1}\n", 1, "throttle.zzz", "expected one of rate, burst, scope, status, penalty"
        )

    def test_weights_must_add_up_to_one(self) -> None:
        """Receipt outcome weights that add up to 0.9 are refused."""
        self.assertRefused(
            """
            receipt:
              outcomes:
                - {weight: 0.5, stat: DELIVRD}
                - {weight: 0.4, stat: UNDELIV}
            """,
            2,
            "receipt.outcomes",
            "weights add up to 0.9, must be 1",
        )

    def test_mix_weights_too(self) -> None:
        """Latency mix weights adding up to 1.1 are refused."""
        self.assertRefused(
            "latency: {mix: [{weight: 0.6, value: 1s}, {weight: 0.5, value: 2s}]}\n",
            1,
            "latency.mix",
            "weights add up to 1.1, must be 1",
        )

    def test_negative_delay(self) -> None:
        """A negative delay is refused with its value."""
        self.assertRefused(
            """
            rules:
              - receipt:
                  delay: -1
            """,
            3,
            "rules[0].receipt.delay",
            "negative delay -1",
        )

    def test_bad_duration_text(self) -> None:
        """A duration with an unknown unit is refused with examples of right ones."""
        self.assertRefused("latency: 10 parsecs\n", 1, "latency", "expected a latency such as 250ms, 1.5s, 2m")

    def test_unknown_status_with_suggestion(self) -> None:
        """A misspelt status name gets the closest real name."""
        self.assertRefused(
            """
            rules:
              - status: ESME_RTHROTLED
            """,
            2,
            "rules[0].status",
            "unknown status 'ESME_RTHROTLED' (did you mean 'ESME_RTHROTTLED'?)",
        )

    def test_status_out_of_range(self) -> None:
        """A status beyond 32 bits is refused."""
        self.assertRefused("rules: [{status: 0x100000000}]\n", 1, "rules[0].status", "outside 0..0xFFFFFFFF")

    def test_outbound_window_of_zero(self) -> None:
        """window.outbound must let at least one delivery out; a mistyped key is named with the right one."""
        self.assertRefused("window:\n  outbound: 0\n", 2, "window.outbound", "0 is below the minimum 1")
        self.assertRefused("window: {outbund: 5}\n", 1, "window.outbund", "did you mean 'outbound'?")
        self.assertEqual(parse("window: {outbound: 50}\n").window.outbound, 50)

    def test_vendor_status_names_must_be_vendor_numbers(self) -> None:
        """statuses: accepts only the vendor range 0x400-0x4FF and no standard names."""
        self.assertRefused("statuses: {MINE: 0x58}\n", 1, "statuses.MINE", "0x58 is not a vendor status")
        self.assertRefused("statuses: {ESME_RTHROTTLED: 0x401}\n", 1, "statuses.ESME_RTHROTTLED", "already a standard")

    def test_regex_length_bounded(self) -> None:
        """A regex over 1,000 characters, or regexes over 5,000 characters in all, are refused before compiling."""
        self.assertRefused(f"rules: [{{match: {{text: '{'a' * 1001}'}}}}]", 1, "rules[0].match.text", "the limit is 1000")
        rules = "".join(f"  - match: {{text: '{'a' * 990}{i}'}}\n" for i in range(6))
        self.assertRefused(
            "rules:\n" + rules, 7, "rules[5].match.text", "more than 5000 characters of regexes in the scenario"
        )

    def test_bad_regex(self) -> None:
        """A regex that does not compile is refused with RE2's error."""
        self.assertRefused(
            """
            rules:
              - match:
                  text: "(unclosed"
            """,
            3,
            "rules[0].match.text",
            "bad regex '(unclosed': missing ): (unclosed",
        )

    def test_unknown_choice(self) -> None:
        """An unknown enumerated value lists the right ones."""
        self.assertRefused(
            "rules: [{respond: nothing}]\n", 1, "rules[0].respond", "expected one of normal, none, generic_nack"
        )
        self.assertRefused("receipt: {stat: DELIVERED}\n", 1, "receipt.stat", "(did you mean 'DELIVRD'?)")

    def test_wrong_type(self) -> None:
        """A number where a mapping belongs, or text where a number belongs, is refused."""
        self.assertRefused("throttle: {rate: fast}\n", 1, "throttle.rate", "expected a number, got 'fast'")
        self.assertRefused("rules: {a: 1}\n", 1, "rules", "expected a list, got a mapping")

    def test_duplicate_key(self) -> None:
        """A key given twice is refused with both lines."""
        self.assertRefused("seed: 1\nname: x\nseed: 2\n", 3, "seed", "duplicate key (first given on line 1)")

    def test_yaml_syntax(self) -> None:
        """Broken YAML is refused with its line."""
        error = self.assertRaises(ScenarioError, parse, "rules:\n  - {status: 8\nseed: 1\n")
        self.assertEqual(error.file, "bad.yaml")
        self.assertIn("not valid YAML", error.problem)
        self.assertGreater(error.line, 1)

    def test_network_error_code(self) -> None:
        """network_error_code must be 3 octets."""
        self.assertRefused(
            'receipt: {network_error_code: "03 0B"}\n', 1, "receipt.network_error_code", "has 2 octets, must be 3"
        )
        self.assertRefused(
            'receipt: {network_error_code: "zz 00 0B"}\n', 1, "receipt.network_error_code", "three hex octets"
        )

    def test_unknown_tlv_name(self) -> None:
        """A TLV name not in the SMPP 3.4 tag table is refused with the closest one."""
        self.assertRefused(
            "rules: [{match: {tlv: [messsage_payload]}}]\n",
            1,
            "rules[0].match.tlv[0]",
            "(did you mean 'message_payload'?)",
        )

    def test_unknown_rule_set_in_timeline(self) -> None:
        """A timeline step naming a rule set that does not exist is refused."""
        self.assertRefused(
            """
            rule_sets: {default: [], storm: []}
            timeline:
              - {at: 1, use_rules: strom}
            """,
            3,
            "timeline[0].use_rules",
            "unknown rule set 'strom' (did you mean 'storm'?)",
        )

    def test_step_outside_the_loop(self) -> None:
        """A step later than the loop period could never run, and is refused."""
        self.assertRefused(
            "timeline: {loop: 60s, steps: [{at: 90s, end_outage: SMPP1}]}\n",
            1,
            "timeline.steps[0]",
            "not within the loop",
        )

    def test_step_needs_one_action_and_one_time(self) -> None:
        """A step with two actions, or neither time, is refused."""
        self.assertRefused(
            "timeline: [{at: 1, end_outage: A, use_rules: default}]\n", 1, "timeline[0]", "exactly one action"
        )
        self.assertRefused("timeline: [{end_outage: A}]\n", 1, "timeline[0]", "either at (seconds) or after_submits")

    def test_outage_options_belong_to_their_mode(self) -> None:
        """A slow outage needs a latency; status is only for reject-binds."""
        self.assertRefused(
            "timeline: [{at: 1, outage: {instance: A, mode: slow}}]\n", 1, "timeline[0].outage", "needs a latency"
        )
        self.assertRefused(
            "timeline: [{at: 1, outage: {instance: A, mode: crash, status: 8}}]\n",
            1,
            "timeline[0].outage.status",
            "only for mode reject-binds",
        )

    def test_bad_template(self) -> None:
        """An MO or reply text with an unknown placeholder is refused, naming the available ones."""
        self.assertRefused(
            "auto_replies: [{text: 'hi {sender}'}]\n", 1, "auto_replies[0].text", "unknown placeholder {sender}"
        )
        self.assertRefused(
            "mo: [{account: a, source: '1', destination: '2', text: 'x {', at: [1]}]\n",
            1,
            "mo[0].text",
            "bad text template",
        )

    def test_throttle_customisation_needs_a_rate(self) -> None:
        """A throttle penalty or scope without a rate is refused: the account's own bucket cannot take them."""
        self.assertRefused("throttle: {penalty: 1s}\n", 1, "throttle", "penalty needs a rate")
        self.assertRefused("throttle: {scope: bind, burst: 3}\n", 1, "throttle", "burst, scope need a rate")

    def test_missing_key(self) -> None:
        """A generator without an account is refused."""
        self.assertRefused(
            "mo: [{source: '1', destination: '2', text: x, at: [1]}]\n", 1, "mo[0]", "missing key 'account'"
        )


class FormTests(SynchronousTestCase):
    """The ways a scenario may write things."""

    def test_prefixes_keep_leading_zeros(self) -> None:
        """Unquoted prefixes are read as written: 0044 stays 0044, not 44 or an octal number."""
        scenario = parse("rules: [{match: {destination: 0044, source: [012, 99]}}]\n")
        match = scenario.rule_sets["default"][0].match
        assert match.destination is not None and match.source is not None
        self.assertEqual((match.destination.prefixes, match.source.prefixes), (("0044",), ("012", "99")))

    def test_distributions(self) -> None:
        """Each way of writing a latency gives the matching distribution."""
        cases = {
            "1.5s": Fixed(1.5),
            "250ms": Fixed(0.25),
            "2m": Fixed(120.0),
            "3": Fixed(3.0),
            "{fixed: 1h}": Fixed(3600.0),
            "{uniform: [1s, 5s]}": Uniform(1.0, 5.0),
            "{uniform: {min: 1, max: 2}}": Uniform(1.0, 2.0),
            "{normal: {mean: 100ms, stddev: 20ms, max: 1s}}": Normal(0.1, 0.02, 0.0, 1.0),
            "{exponential: 2s}": Exponential(2.0),
            "{exponential: {mean: 2s, max: 10s}}": Exponential(2.0, 10.0),
        }
        for text, expected in cases.items():
            self.assertEqual(parse(f"latency: {text}\n").latency, expected, text)
        text = "latency: {mix: [{weight: 0.8, value: 10ms}, {weight: 0.2, value: {uniform: [1, 2]}}]}\n"
        mix = parse(text).latency
        assert isinstance(mix, Mix)
        self.assertEqual((mix.weights, mix.choices), ((0.8, 0.2), (Fixed(0.01), Uniform(1.0, 2.0))))

    def test_network_error_code_forms(self) -> None:
        """'03 00 0B' and {type: 3, code: 11} are the same three octets."""
        a = parse('receipt: {network_error_code: "03 00 0B"}\n').receipt
        b = parse("receipt: {network_error_code: {type: 3, code: 11}}\n").receipt
        self.assertEqual(a.network_error_code, b"\x03\x00\x0b")
        self.assertEqual(b.network_error_code, b"\x03\x00\x0b")

    def test_status_forms(self) -> None:
        """Statuses may be written as full names, short names, hex or decimal."""
        scenario = parse(
            "rules: [{status: ESME_RTHROTTLED}, {status: RTHROTTLED}, {status: 0x58}, {status: 88}, {status: '0x58'}]\n"
        )
        self.assertEqual(
            {r.outcome.status for r in scenario.rule_sets["default"]}, {0x58}
        )

    def test_empty_file_is_the_plain_default(self) -> None:
        """An empty file is a valid scenario: accept everything, DELIVRD at once, account throttle."""
        scenario = parse("")
        self.assertEqual((scenario.name, scenario.rule_sets), ("bad", {"default": ()}))


class FindTests(SynchronousTestCase):
    """Scenarios are found by name or path."""

    def temporary_file(self) -> Path:
        """A path for a scenario file in a directory removed after the test."""
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        return Path(directory.name) / "mine.yaml"

    def test_find_by_name(self) -> None:
        """A shipped name finds the file in the source tree's scenarios/ directory."""
        path = find_scenario("default")
        self.assertEqual((path.name, path.parent.name), ("default.yaml", "scenarios"))

    def test_find_by_path(self) -> None:
        """A path is used as it is, and its file name is the scenario's default name."""
        path = self.temporary_file()
        path.write_text("seed: 3\n")
        self.assertEqual(find_scenario(str(path)), path)
        scenario = load_scenario(path)
        self.assertEqual((scenario.name, scenario.seed, scenario.source), (path.stem, 3, str(path)))

    def test_unknown_name_lists_the_shipped_ones(self) -> None:
        """An unknown name is refused, listing what is shipped."""
        error = self.assertRaises(ScenarioError, find_scenario, "defualt")
        self.assertIn("no scenario named 'defualt'; shipped: bench, chaos, default", str(error))

    def test_missing_file(self) -> None:
        """A path to nothing is refused."""
        error = self.assertRaises(ScenarioError, find_scenario, "nowhere/x.yaml")
        self.assertIn("no such scenario file", str(error))

    def test_errors_in_files_name_the_file(self) -> None:
        """A mistake in a file on disk names that file's path."""
        path = self.temporary_file()
        path.write_text("seed: 1\nlatency: -5ms\n")
        error = self.assertRaises(ScenarioError, load_scenario, path)
        self.assertEqual((error.file, error.line, error.path), (str(path), 2, "latency"))
        self.assertIn("negative latency -5ms", error.problem)

    def test_shipped_list(self) -> None:
        """Every scenario the brief asks for is shipped."""
        self.assertTrue(
            {
                "default",
                "bench",
                "throttling",
                "error-codes",
                "delayed-receipts",
                "outage-failover",
                "flaky-network",
                "chaos",
            }
            <= set(shipped_scenarios())
        )
