"""Tests for smsc_sim.scenario.engine: verdicts, counters, determinism, timeline, MO and auto-replies."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import AfterReply, MessageFacts, ReceiptStep, Respond
from smsc_sim.scenario.engine import ScenarioRuntime
from smsc_sim.scenario.loader import parse_scenario
from smsc_sim.contracts import ThrottleSettings
from smsc_sim.scenario.model import ThrottleSpec
from smsc_sim.smpp.constants import BindType, Tag


def facts(destination: str = "447700900123", **changes: Any) -> MessageFacts:
    """A plain single-part submit_sm from smppclient1 on SMPP1, with ``changes``."""
    base = MessageFacts(
        command="submit_sm",
        instance="SMPP1",
        system_id="smppclient1",
        bind_type=BindType.transceiver,
        source_addr="Acme",
        destination_addr=destination,
        text="hello",
        data_coding=0,
        esm_class=0,
        registered_delivery=1,
        parts_total=1,
    )
    return replace(base, **changes)


class FakeHost:
    """Records what the scenario engine asks of the simulator."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def inject_mo(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("inject_mo", args, kwargs))

    def start_outage(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("start_outage", args, kwargs))

    def end_outage(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("end_outage", args, kwargs))

    def set_throttle(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("set_throttle", args, kwargs))

    def named(self, method: str) -> list[tuple[Any, ...]]:
        """The arguments of every call of ``method``."""
        return [args for name, args, _ in self.calls if name == method]


def runtime(text: str, clock: Clock | None = None, seed: int | None = 1) -> ScenarioRuntime:
    """A runtime of a scenario given inline."""
    return ScenarioRuntime(parse_scenario(textwrap.dedent(text), "test.yaml"), clock or Clock(), seed)


class RuleTests(SynchronousTestCase):
    """Rules are tried in order and the first that matches decides."""

    def test_first_match_wins(self) -> None:
        """Two rules match; the first one's status is the answer."""
        r = runtime(
            """
            rules:
              - {name: a, match: {destination: "44"}, status: ESME_RINVDSTADR}
              - {name: b, match: {destination: "4477"}, status: ESME_RTHROTTLED}
            """
        )
        verdict = r.verdict(facts("447700900123"))
        self.assertEqual((verdict.status, verdict.rule), (0x0B, "a"))

    def test_no_match_accepts_with_the_scenario_latency(self) -> None:
        """A message no rule matches is accepted, with the scenario's latency and its default receipt."""
        r = runtime("latency: 250ms\nrules: [{match: {destination: '99'}, status: 8}]\n")
        verdict = r.verdict(facts("447700"))
        self.assertEqual((verdict.status, verdict.latency, verdict.receipt), (0, 0.25, None))
        self.assertEqual(verdict.respond, Respond.normal)

    def test_every_condition_must_hold(self) -> None:
        """A rule with several conditions matches only when all of them do."""
        r = runtime(
            """
            rules:
              - match:
                  instance: SMPP2
                  account: [smppclient1, other]
                  bind_type: transmitter
                  source: {regex: "^Ac"}
                  destination: ["4477", "4478"]
                  text: "(?i)^stop"
                  data_coding: [0, 3]
                  esm_class: {mask: 0x40, value: 0x40}
                  registered_delivery: {mask: 0x03, value: [1, 2]}
                  parts: {min: 2, max: 3}
                  tlv: {present: [sar_msg_ref_num], absent: [0x0424]}
                  command: submit_sm
                status: ESME_RSYSERR
            """
        )
        good = facts(
            "447800",
            instance="SMPP2",
            bind_type=BindType.transmitter,
            text="STOP now",
            data_coding=3,
            esm_class=0x43,
            registered_delivery=0x11,
            parts_total=2,
            tlv_tags=frozenset({int(Tag.sar_msg_ref_num), 0x1421}),
        )
        self.assertEqual(r.verdict(good).status, 8)
        spoilers: list[dict[str, Any]] = [
            {"instance": "SMPP1"},
            {"system_id": "nobody"},
            {"bind_type": BindType.transceiver},
            {"source_addr": "xAcme"},
            {"destination_addr": "4479"},
            {"text": "please stop"},
            {"text": None},
            {"data_coding": 8},
            {"esm_class": 0x03},
            {"registered_delivery": 0},
            {"parts_total": 4},
            {"tlv_tags": frozenset({0x1421})},
            {"tlv_tags": frozenset({int(Tag.sar_msg_ref_num), int(Tag.message_payload)})},
            {"command": "data_sm"},
        ]
        for spoiler in spoilers:
            self.assertEqual(r.verdict(replace(good, **spoiler)).status, 0, spoiler)

    def test_generic_nack_defaults_to_invalid_command_id(self) -> None:
        """respond: generic_nack without a status carries ESME_RINVCMDID."""
        r = runtime("rules: [{respond: generic_nack_no_seq, then: close}]\n")
        verdict = r.verdict(facts())
        self.assertEqual(
            (verdict.respond, verdict.status, verdict.then), (Respond.generic_nack_no_seq, 3, AfterReply.close)
        )

    def test_vendor_status_by_name_and_number(self) -> None:
        """Vendor statuses 0x400-0x4FF work as numbers and as names declared in statuses:."""
        r = runtime(
            """
            statuses: {ACME_RBLOCKED: 0x4A0}
            rules:
              - {match: {destination: "1"}, status: ACME_RBLOCKED}
              - {match: {destination: "2"}, status: 0x401}
              - {match: {destination: "3"}, status: "1279"}
            """
        )
        self.assertEqual([r.verdict(facts(d)).status for d in "123"], [0x4A0, 0x401, 0x4FF])
        self.assertEqual(r.describe()["rule_sets"]["default"][0]["status"], {"value": 0x4A0, "name": "ACME_RBLOCKED"})

    def test_fixed_outcome_is_one_cached_verdict(self) -> None:
        """A rule whose outcome cannot vary returns the very same Verdict object every time."""
        r = runtime("rules: [{match: {destination: '44'}, status: 0x58, latency: 10ms}]\n")
        self.assertIs(r.verdict(facts()), r.verdict(facts()))

    def test_prefix_tables_keep_rule_order(self) -> None:
        """Among many prefix-only rules, the earliest matching one wins even if a longer prefix matches later."""
        rules = "\n".join(f"  - {{name: r{i}, match: {{destination: '9{i:02d}'}}, status: {i + 1}}}" for i in range(10))
        r = runtime(f"rules:\n  - {{name: short, match: {{destination: '905'}}, status: 0x58}}\n{rules}\n"
                    "  - {name: long, match: {destination: '9011'}, status: 0x45}\n")
        self.assertEqual(r.verdict(facts("9051")).rule, "short")
        self.assertEqual(r.verdict(facts("9011")).rule, "r1")
        self.assertEqual(r.verdict(facts("9")).rule, "(no rule matched)")


class CounterTests(SynchronousTestCase):
    """Counters count the messages that meet a rule's other conditions."""

    def test_first_n_per_account(self) -> None:
        """first: 2 matches the first two submits of each account."""
        r = runtime("rules: [{match: {counter: {first: 2}}, status: 0x58}]\n")
        statuses = [r.verdict(facts(system_id=a)).status for a in ("a", "a", "a", "b", "b", "b")]
        self.assertEqual(statuses, [0x58, 0x58, 0, 0x58, 0x58, 0])

    def test_every_nth_global(self) -> None:
        """every: 3 with scope global matches the 3rd, 6th... submit whatever the account."""
        r = runtime("rules: [{match: {counter: {every: 3, scope: global}}, then: unbind}]\n")
        thens = [r.verdict(facts(system_id=str(i % 2))).then for i in range(6)]
        self.assertEqual([t is AfterReply.unbind for t in thens], [False, False, True, False, False, True])

    def test_after_n_counts_only_messages_meeting_other_conditions(self) -> None:
        """after: 1 on destination 99 matches from the second message to 99, ignoring others."""
        r = runtime("rules: [{match: {destination: '99', counter: {after: 1}}, status: 0x45}]\n")
        statuses = [r.verdict(facts(d)).status for d in ("99", "44", "44", "99", "99")]
        self.assertEqual(statuses, [0, 0, 0, 0x45, 0x45])


class DeterminismTests(SynchronousTestCase):
    """One seed, same inputs in the same order: same verdicts."""

    SCENARIO = """
        latency: {mix: [{weight: 0.5, value: 10ms}, {weight: 0.5, value: {uniform: [0, 1s]}}]}
        receipt:
          outcomes: [{weight: 0.7, stat: DELIVRD}, {weight: 0.3, stat: UNDELIV, err: 5}]
          delay: {exponential: 2s}
          duplicate: 0.1
        rules:
          - {match: {probability: 0.1}, status: ESME_RTHROTTLED}
          - {match: {probability: 0.05}, respond: none}
          - {match: {destination: "44"}, receipt: {delay: {normal: {mean: 1s, stddev: 0.5s}}}}
        """

    def _sequence(self, seed: int) -> list[Any]:
        r = runtime(self.SCENARIO, seed=seed)
        return [(r.verdict(facts(f"{i % 3}4{i}")), r.default_receipt()) for i in range(500)]

    def test_same_seed_same_verdicts(self) -> None:
        """Two runtimes with one seed give identical verdict and receipt sequences."""
        self.assertEqual(self._sequence(42), self._sequence(42))

    def test_other_seed_other_verdicts(self) -> None:
        """Another seed gives another sequence."""
        self.assertNotEqual(self._sequence(42), self._sequence(43))

    def test_file_seed_is_used_and_caller_seed_wins(self) -> None:
        """The file's seed is used unless the caller gives one."""
        scenario = parse_scenario("seed: 9\n", "t.yaml")
        self.assertEqual(ScenarioRuntime(scenario, Clock()).seed, 9)
        self.assertEqual(ScenarioRuntime(scenario, Clock(), seed=3).seed, 3)

    def test_probability_is_about_right(self) -> None:
        """A 10 % rule matches close to 10 % of 10 000 messages."""
        r = runtime("rules: [{match: {probability: 0.1}, status: 8}]\n", seed=5)
        hits = sum(r.verdict(facts()).status == 8 for _ in range(10_000))
        self.assertTrue(900 < hits < 1100, hits)

    def test_mo_traffic_does_not_shift_verdicts(self) -> None:
        """Random MO traffic running alongside leaves the verdict sequence unchanged."""
        text = self.SCENARIO + """
        mo:
          - {account: a, source: "1", destination: "2", texts: [x, y], pick: random, rate: 5, arrivals: poisson}
        """
        quiet = runtime(text, seed=1)
        clock = Clock()
        busy = runtime(text, clock, seed=1)
        busy.start(FakeHost())
        sequence_quiet, sequence_busy = [], []
        for i in range(200):
            clock.advance(0.3)
            sequence_quiet.append(quiet.verdict(facts(str(i))))
            sequence_busy.append(busy.verdict(facts(str(i))))
        self.assertEqual(sequence_quiet, sequence_busy)


class ReceiptTests(SynchronousTestCase):
    """Receipt plans from the scenario and from rules."""

    def test_rule_receipt_starts_from_the_scenario_receipt(self) -> None:
        """A rule naming only stat/err keeps the scenario's delay and id formats."""
        r = runtime(
            """
            receipt: {delay: 3s, id_format: hex, network_error_code: {type: 3, code: 11}}
            rules: [{match: {destination: "1"}, receipt: {stat: UNDELIV, err: 5}}]
            """
        )
        plan = r.verdict(facts("1")).receipt
        assert plan is not None
        self.assertEqual(plan.steps, (ReceiptStep(3.0, "UNDELIV", 5),))
        self.assertEqual((plan.id_format, plan.network_error_code), ("hex", b"\x03\x00\x0b"))

    def test_default_err_per_stat(self) -> None:
        """Without err, a failure stat gets the provider's closest err code; DELIVRD gets 0."""
        r = runtime(
            "rules:\n" + "".join(f"  - {{match: {{destination: '{s}'}}, receipt: {{stat: {s}}}}}\n"
                                 for s in ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN", "ACCEPTD"))
        )
        errs = {}
        for stat in ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN", "ACCEPTD"):
            plan = r.verdict(facts(stat)).receipt
            assert plan is not None
            errs[stat] = plan.steps[-1].err
        self.assertEqual(
            errs, {"DELIVRD": 0, "UNDELIV": 1, "EXPIRED": 2, "REJECTD": 6, "DELETED": 99, "UNKNOWN": 1, "ACCEPTD": 0}
        )

    def test_intermediate_receipts_come_first(self) -> None:
        """Intermediate steps are sorted by time and the final one is never earlier than them."""
        r = runtime(
            """
            receipt:
              delay: 1s
              intermediate: [{stat: ACCEPTD, delay: 2s}, {stat: ENROUTE, delay: 500ms}]
              per_part: last
            """
        )
        plan = r.default_receipt()
        self.assertEqual(
            plan.steps,
            (
                ReceiptStep(0.5, "ENROUTE", 0, True),
                ReceiptStep(2.0, "ACCEPTD", 0, True),
                ReceiptStep(2.0, "DELIVRD", 0),
            ),
        )
        self.assertEqual(plan.per_part, "last")

    def test_no_receipt_and_duplicates(self) -> None:
        """receipt: none gives an empty plan; duplicate: true sends the final one twice."""
        r = runtime("rules: [{match: {destination: '1'}, receipt: none}, {receipt: {duplicate: true}}]\n")
        none, twice = r.verdict(facts("1")).receipt, r.verdict(facts("2")).receipt
        assert none is not None and twice is not None
        self.assertEqual((none.steps, twice.duplicate), ((), True))

    def test_rejected_messages_carry_no_plan(self) -> None:
        """A rule rejecting the submit draws no receipt (there is no message to receipt)."""
        r = runtime("rules: [{status: 0x45, receipt: {stat: UNDELIV, delay: {uniform: [1, 2]}}}]\n")
        self.assertIsNone(r.verdict(facts()).receipt)

    def test_weighted_outcomes(self) -> None:
        """Outcome weights 0.7/0.3 give about 70 % DELIVRD over 5000 messages."""
        r = runtime("receipt: {outcomes: [{weight: 0.7, stat: DELIVRD}, {weight: 0.3, stat: UNDELIV}]}\n", seed=11)
        delivered = sum(r.default_receipt().steps[-1].stat == "DELIVRD" for _ in range(5000))
        self.assertTrue(3300 < delivered < 3700, delivered)


class SettingsTests(SynchronousTestCase):
    """Throttle, window, retry and limits as the core reads them."""

    def test_settings(self) -> None:
        """Every section is available to the core, with None meaning "keep the config's"."""
        r = runtime(
            """
            throttle: {rate: 5, scope: bind, penalty: 2s}
            window: {size: 10}
            deliver_retry: {temporary: [ESME_RTHROTTLED, 0x64], backoff: 2s, max_attempts: 3, max_backoff: 5s}
            limits: {max_binds: 4}
            """
        )
        self.assertEqual(r.throttle(), ThrottleSettings(5.0, 0.0, "bind", 0x58, 2.0))
        self.assertEqual(r.throttle_spec, ThrottleSpec(5.0, None, "bind", 0x58, 2.0))
        self.assertEqual((r.window.size, r.window.status), (10, None))
        self.assertTrue(r.deliver_resp_is_temporary(0x64))
        self.assertFalse(r.deliver_resp_is_temporary(0x08))
        self.assertEqual([r.retry.delay(n, 9.0) for n in (1, 2, 3)], [2.0, 4.0, 5.0])
        self.assertEqual((r.limits.max_binds, r.limits.throughput), (4, None))

    def test_provider_defaults(self) -> None:
        """
        With nothing said, the provider's temporary deliver_sm_resp statuses
        apply and the throttle uses the account's rate.
        """
        r = runtime("{}\n")
        self.assertEqual(
            {s for s in range(0x100) if r.deliver_resp_is_temporary(s)}, {0x58, 0x08, 0x14, 0x45, 0x67, 0xFE, 0xFF}
        )
        self.assertIsNone(r.throttle())

    def test_throttle_off(self) -> None:
        """throttle: off means no throttling at all: rate 0, which the core reads as unlimited."""
        r = runtime("throttle: off\n")
        self.assertEqual((r.throttle(), r.throttle_spec), (ThrottleSettings(0.0, 0.0), None))

    def test_limits_throughput_is_the_rate(self) -> None:
        """limits.throughput gives every account that rate, in the account's own model, when the throttle section gives none."""
        self.assertEqual(runtime("limits: {throughput: 100}\n").throttle(), ThrottleSettings(100.0, 0.0, model="account"))
        both = runtime("limits: {throughput: 100}\nthrottle: {rate: 5}\n")
        self.assertEqual(both.throttle(), ThrottleSettings(5.0, 0.0))

    def test_describe_is_json(self) -> None:
        """describe() is JSON-able and counts rule hits."""
        r = runtime(
            "rules: [{name: x, match: {destination: '1'}, status: 8}]\n"
            "mo: [{account: a, source: '1', destination: '2', text: t, at: [1]}]\n",
        )
        r.verdict(facts("1"))
        summary = json.loads(json.dumps(r.describe()))
        self.assertEqual(summary["rule_sets"]["default"][0]["hits"], 1)
        self.assertEqual((summary["rule_set"], summary["seed"], summary["submits"]), ("default", 1, 1))

    def test_unknown_rule_set(self) -> None:
        """Switching to a rule set that does not exist is refused with the names that do."""
        self.assertRaises(ValueError, runtime("{}\n").use_rules, "nope")
