"""Every shipped scenario loads, validates against the JSON schema, and behaves as its header says."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

import smsc_sim.scenario
from smsc_sim.contracts import AfterReply, Respond, ThrottleSettings
from smsc_sim.scenario.engine import ScenarioRuntime
from smsc_sim.scenario.loader import find_scenario, load_scenario, shipped_scenarios
from smsc_sim.smpp.constants import CommandStatus
from tests.test_scenario_engine import FakeHost, facts


def started(name: str, seed: int | None = None) -> tuple[ScenarioRuntime, Clock, FakeHost]:
    """A shipped scenario's runtime, started on a fake clock with a recording host."""
    clock, host = Clock(), FakeHost()
    r = ScenarioRuntime.load(name, clock, seed)
    r.start(host)
    return r, clock, host


Call = tuple[float, tuple[Any, ...], dict[str, Any]]


def call_times(clock: Clock, host: FakeHost, seconds: int, method: str) -> list[Call]:
    """Advance second by second and note when ``method`` was called, with what."""
    seen = []
    for _ in range(seconds):
        before = len(host.calls)
        clock.advance(1)
        seen += [(clock.seconds(), args, kwargs) for name, args, kwargs in host.calls[before:] if name == method]
    return seen


class SchemaTests(SynchronousTestCase):
    """smsc_sim/scenario/schema.json describes the format for editors."""

    def setUp(self) -> None:
        schema_path = Path(smsc_sim.scenario.__file__).parent / "schema.json"
        schema = json.loads(schema_path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        self.validator = jsonschema.Draft202012Validator(schema)

    def test_every_shipped_scenario_validates(self) -> None:
        """Every shipped YAML file is valid against the schema and loads."""
        names = shipped_scenarios()
        self.assertGreaterEqual(len(names), 8)
        for name in names:
            path = find_scenario(name)
            errors = [e.message for e in self.validator.iter_errors(yaml.safe_load(path.read_text()))]
            self.assertEqual(errors, [], name)
            self.assertEqual(load_scenario(name).name, name)

    def test_schema_refuses_a_misspelt_key(self) -> None:
        """The schema catches the same typo the loader does."""
        self.assertFalse(self.validator.is_valid({"rules": [{"match": {"destinaton": "44"}}]}))

    def test_every_shipped_scenario_has_a_header_comment(self) -> None:
        """Each file starts with a comment describing it."""
        for name in shipped_scenarios():
            self.assertTrue(find_scenario(name).read_text().startswith(f"# {name}: "), name)


class DefaultTests(SynchronousTestCase):
    """default: accepted, DELIVRD after 1-5 s, 30/s per account."""

    def test_behaviour(self) -> None:
        """
        Every submit is accepted at once; receipts are DELIVRD spread over
        1-5 s; the throttle is the account's 30/s.
        """
        r = ScenarioRuntime.load("default", Clock(), seed=1)
        verdict = r.verdict(facts())
        self.assertEqual(
            (verdict.status, verdict.latency, verdict.receipt, verdict.respond), (0, 0.0, None, Respond.normal)
        )
        delays = [r.default_receipt().steps[-1].delay for _ in range(1000)]
        self.assertEqual({p.steps[-1].stat for p in [r.default_receipt()]}, {"DELIVRD"})
        self.assertTrue(all(1.0 <= d <= 5.0 for d in delays))
        self.assertTrue(min(delays) < 1.1 and max(delays) > 4.9)
        self.assertIsNone(r.throttle())  # each account's configured throughput: 30/s by default
        self.assertTrue(r.deliver_resp_is_temporary(0x58))


class BenchTests(SynchronousTestCase):
    """bench: no throttle, fixed 0.5 s receipts, many binds."""

    def test_behaviour(self) -> None:
        """No throttle, one cached verdict, DELIVRD exactly 0.5 s later, 10 000 binds, 50 receipts in flight."""
        r = ScenarioRuntime.load("bench", Clock())
        self.assertEqual(r.throttle(), ThrottleSettings(0.0, 0.0))
        self.assertIs(r.verdict(facts()), r.verdict(facts("1")))
        plan = r.default_receipt()
        self.assertIs(plan, r.default_receipt())
        self.assertEqual([(s.delay, s.stat) for s in plan.steps], [(0.5, "DELIVRD")])
        self.assertEqual((r.limits.max_binds, r.limits.throughput), (10_000, 0.0))
        self.assertEqual(r.window.outbound, 50)


class ThrottlingTests(SynchronousTestCase):
    """throttling: 10/s burst 5 with penalty, congestion periods, forced throttles."""

    def test_rules(self) -> None:
        """99958... is always throttled, and so is every 50th submit of an account."""
        r = ScenarioRuntime.load("throttling", Clock())
        self.assertEqual(r.throttle(), ThrottleSettings(10.0, 5.0, "account", 0x58, 1.0))
        self.assertEqual(r.verdict(facts("99958123")).status, 0x58)
        statuses = [r.verdict(facts(system_id="a")).status for _ in range(100)]
        # the 99958 submit was decided by the first rule, so the counter never saw it
        self.assertEqual([i + 1 for i, s in enumerate(statuses) if s], [50, 100])
        self.assertEqual(r.verdict(facts(system_id="b")).status, 0)

    def test_timeline(self) -> None:
        """The rate drops to 2/s at 60 s and returns to 10/s at 90 s, every 120 s."""
        r, clock, host = started("throttling")
        changes = call_times(clock, host, 200, "set_throttle")
        self.assertEqual([(t, args[0].rate) for t, args, _ in changes], [(60, 2.0), (90, 10.0), (180, 2.0)])
        self.assertEqual(r.throttle(), ThrottleSettings(2.0, 2.0, "account", 0x58, 0.0))


class ErrorCodesTests(SynchronousTestCase):
    """error-codes: the destination table in the file's header is what the engine does."""

    def setUp(self) -> None:
        self.runtime = ScenarioRuntime.load("error-codes", Clock())
        self.header = find_scenario("error-codes").read_text().split("\nname:")[0]

    def test_every_status_by_prefix(self) -> None:
        """9990SSSS gives command_status SSSS (decimal) for every SMPP 3.4 status and three vendor ones."""
        documented = re.findall(r"#   9990(\d{4})  0x([0-9A-F]+) ", self.header)
        self.assertEqual(len(documented), len(CommandStatus) - 1 + 3)
        for digits, hex_value in documented:
            self.assertEqual(int(digits), int(hex_value, 16))
            self.assertEqual(self.runtime.verdict(facts(f"9990{digits}55")).status, int(digits), digits)

    def test_every_receipt_err_by_prefix(self) -> None:
        """9991EEE is accepted and gets UNDELIV err EEE (DELIVRD for 000), for every documented provider err."""
        documented = re.findall(r"#   9991(\d{3})   err", self.header)
        self.assertEqual(len(documented), 22)
        for digits in documented:
            verdict = self.runtime.verdict(facts(f"9991{digits}"))
            assert verdict.receipt is not None
            final = verdict.receipt.steps[-1]
            self.assertEqual(
                (verdict.status, final.err, final.stat), (0, int(digits), "UNDELIV" if int(digits) else "DELIVRD")
            )
            self.assertEqual(final.delay, 1.0)

    def test_receipt_variants(self) -> None:
        """9992VV gives the receipt variants of the header."""
        plans = {}
        for vv in range(1, 15):
            plan = self.runtime.verdict(facts(f"9992{vv:02d}")).receipt
            assert plan is not None
            plans[vv] = plan
        self.assertEqual(
            [plans[v].steps[-1].stat for v in range(1, 6)], ["EXPIRED", "REJECTD", "DELETED", "UNKNOWN", "ACCEPTD"]
        )
        self.assertEqual(plans[6].steps, ())
        self.assertTrue(plans[7].duplicate)
        self.assertEqual((plans[8].id_format, plans[8].tlv_id_format), ("wrong", "wrong"))
        self.assertEqual((plans[9].id_format, plans[10].tlv_id_format), ("hex", "omit"))
        self.assertEqual([(s.stat, s.intermediate) for s in plans[11].steps], [("ENROUTE", True), ("DELIVRD", False)])
        self.assertEqual((plans[12].steps[-1].err, plans[12].network_error_code), (11, b"\x03\x00\x0b"))
        self.assertEqual((plans[13].per_part, plans[14].steps[-1].delay), ("last", 60.0))

    def test_response_variants(self) -> None:
        """9993RR gives the response variants of the header."""
        v = {rr: self.runtime.verdict(facts(f"9993{rr:02d}")) for rr in range(1, 10)}
        self.assertEqual(v[1].respond, Respond.none)
        self.assertEqual((v[2].respond, v[2].status), (Respond.generic_nack, 3))
        self.assertEqual(v[3].respond, Respond.generic_nack_no_seq)
        self.assertEqual([v[i].then for i in (4, 5, 6)], [AfterReply.unbind, AfterReply.close, AfterReply.reset])
        self.assertEqual((v[7].latency, v[8].latency), (5.0, 30.0))
        self.assertEqual((v[9].status, v[9].then), (8, AfterReply.reset))

    def test_other_destinations(self) -> None:
        """Anything else is accepted and gets DELIVRD after 1 s."""
        self.assertEqual(self.runtime.verdict(facts("447700900123")).status, 0)
        self.assertEqual([(s.delay, s.stat) for s in self.runtime.default_receipt().steps], [(1.0, "DELIVRD")])


class DelayedReceiptsTests(SynchronousTestCase):
    """delayed-receipts: ENROUTE at 1 s, then a long mixed delay."""

    def test_behaviour(self) -> None:
        """
        ENROUTE at 1 s; DELIVRD 70 % within 10-60 s, 25 % within 5-30 min;
        99940 never, 99941 EXPIRED at 48 h, 99942 twice.
        """
        r = ScenarioRuntime.load("delayed-receipts", Clock())
        plans = [r.default_receipt() for _ in range(4000)]
        self.assertTrue(all(p.steps[0] == p.steps[0].__class__(1.0, "ENROUTE", 0, True) for p in plans))
        finals = [p.steps[-1].delay for p in plans]
        short = sum(10 <= d <= 60 for d in finals) / len(finals)
        medium = sum(300 <= d <= 1800 for d in finals) / len(finals)
        self.assertTrue(0.66 < short < 0.74 and 0.21 < medium < 0.29, (short, medium))
        self.assertTrue(max(finals) <= 48 * 3600)
        never, expires, twice = (r.verdict(facts(d)).receipt for d in ("99940", "99941", "99942"))
        assert never is not None and expires is not None and twice is not None
        self.assertEqual(never.steps, ())
        self.assertEqual(
            (expires.steps[-1].stat, expires.steps[-1].err, expires.steps[-1].delay), ("EXPIRED", 2, 172800.0)
        )
        self.assertEqual((twice.duplicate, twice.steps[-1].delay), (True, 10.0))


class OutageFailoverTests(SynchronousTestCase):
    """outage-failover: one outage after another, every 600 s."""

    def test_timeline(self) -> None:
        """The outages start at 30, 150, 270, 390 and 510 s for 60 s each, and again from 630 s."""
        r, clock, host = started("outage-failover")
        outages = call_times(clock, host, 700, "start_outage")
        self.assertEqual(
            [(t, args, kwargs) for t, args, kwargs in outages],
            [
                (30, ("SMPP1", "crash", 60.0), {}),
                (150, ("SMPP2", "graceful", 60.0), {}),
                (270, ("SMPP1", "reject-binds", 60.0), {"status": 0x0D}),
                (390, ("SMPP2", "bind-hang", 60.0), {}),
                (510, ("SMPP0", "blackhole", 60.0), {}),
                (630, ("SMPP1", "crash", 60.0), {}),
            ],
        )


class FlakyNetworkTests(SynchronousTestCase):
    """flaky-network: mixed latency, lost responses, resets, nacks, duplicate receipts."""

    def test_verdicts(self) -> None:
        """Over 20 000 submits the latency mix and the failure rates are as documented."""
        r = ScenarioRuntime.load("flaky-network", Clock())
        verdicts = [r.verdict(facts()) for _ in range(20_000)]
        latencies = Counter(v.latency for v in verdicts)
        self.assertEqual(set(latencies), {0.01, 0.1, 1.0})
        self.assertTrue(0.78 < latencies[0.01] / 20_000 < 0.82)
        self.assertTrue(0.04 < latencies[1.0] / 20_000 < 0.06)
        lost = sum(v.respond is Respond.none for v in verdicts)
        reset = sum(v.then is AfterReply.reset for v in verdicts)
        nacks = [v for v in verdicts if v.respond is Respond.generic_nack]
        self.assertTrue(150 < lost < 250 and 60 < reset < 140 and 60 < len(nacks) < 140, (lost, reset, len(nacks)))
        self.assertEqual({v.status for v in nacks}, {0x08})
        duplicates = sum(r.default_receipt().duplicate for _ in range(10_000))
        self.assertTrue(150 < duplicates < 250, duplicates)

    def test_timeline(self) -> None:
        """SMPP1 is slow (+2 s) from 60 s for 30 s; SMPP2 hangs binds from 150 s for 20 s."""
        r, clock, host = started("flaky-network")
        self.assertEqual(
            call_times(clock, host, 160, "start_outage"),
            [(60, ("SMPP1", "slow", 30.0), {"latency": 2.0}), (150, ("SMPP2", "bind-hang", 20.0), {})],
        )


class ChaosTests(SynchronousTestCase):
    """chaos: a bit of everything."""

    def test_verdicts(self) -> None:
        """Error statuses at the documented rates, an unbind every 500th submit, lost long messages."""
        r = ScenarioRuntime.load("chaos", Clock())
        verdicts = [r.verdict(facts()) for _ in range(10_000)]
        statuses = Counter(v.status for v in verdicts)
        self.assertTrue(400 < statuses[0x58] < 600 and 120 < statuses[0x08] < 280, statuses)
        self.assertTrue(50 < statuses[0x401] < 150 and 50 < statuses[0x45] < 150, statuses)
        unbinds = [i + 1 for i, v in enumerate(verdicts) if v.then is AfterReply.unbind]
        self.assertEqual(unbinds, list(range(500, 10_001, 500)))
        self.assertTrue(all(0 <= v.latency <= 0.5 for v in verdicts))
        long_lost = sum(r.verdict(facts(parts_total=3)).respond is Respond.none for _ in range(2000))
        self.assertTrue(150 < long_lost < 250, long_lost)
        plan = r.default_receipt()
        self.assertEqual(plan.id_format, "hex")

    def test_traffic_and_timeline(self) -> None:
        """MO every ~5 s to smppclient1, SMPP1 crash at 200 s, a calm rule set from 300 s to 420 s, STOP replies."""
        r, clock, host = started("chaos", seed=2)
        self.assertEqual(call_times(clock, host, 299, "start_outage"), [(200, ("SMPP1", "crash", 30.0), {})])
        mo = host.named("inject_mo")
        self.assertTrue(40 < len(mo) < 80, len(mo))
        self.assertEqual({(a[0], a[1], a[2], a[5]) for a in mo}, {("smppclient1", "447700900001", "12345", "udh8")})
        self.assertTrue(any(len(a[3]) > 306 for a in mo))
        clock.advance(1)
        self.assertEqual(r.rule_set, "calm")
        self.assertEqual({r.verdict(facts()).status for _ in range(2000)}, {0})
        clock.advance(120)
        self.assertEqual(r.rule_set, "default")
        before = len(host.calls)
        r.on_submit(facts("447700900555", text="Stop please"), "X")
        clock.advance(2)
        self.assertIn(("smppclient1", "447700900555", "Acme", "You are unsubscribed from 447700900555.", None, "udh8"),
                      [args for _, args, _ in host.calls[before:]])


class DrillThrottleTests(SynchronousTestCase):
    """drill-throttle: the quota drops to 5/s from 30 s to 50 s, once."""

    def test_timeline(self) -> None:
        """
        Each account's throughput until 30 s, 5/s burst 5 with ESME_RTHROTTLED until 50 s, then the account's again.
        """
        r, clock, host = started("drill-throttle")
        self.assertIsNone(r.throttle())
        changes = call_times(clock, host, 200, "set_throttle")
        dropped = ThrottleSettings(5.0, 5.0, "account", 0x58, 0.0)
        self.assertEqual([(t, args) for t, args, _ in changes], [(30, (dropped,)), (50, (None,))])
        self.assertIsNone(r.throttle())
        self.assertEqual(r.verdict(facts()).status, 0)


class DrillFailoverTests(SynchronousTestCase):
    """drill-failover: SMPP1 crashes for 60 s, then SMPP2 shuts down gracefully for 60 s, once."""

    def test_timeline(self) -> None:
        """SMPP1 crashes at 30 s for 60 s, SMPP2 goes down gracefully at 120 s for 60 s, and nothing else happens."""
        r, clock, host = started("drill-failover")
        outages = call_times(clock, host, 700, "start_outage")
        self.assertEqual(
            [(t, args, kwargs) for t, args, kwargs in outages],
            [(30, ("SMPP1", "crash", 60.0), {}), (120, ("SMPP2", "graceful", 60.0), {})],
        )
        self.assertEqual(r.verdict(facts()).status, 0)


class DrillSlowReceiptsTests(SynchronousTestCase):
    """drill-slow-receipts: ENROUTE after 1 s, DELIVRD hours later."""

    def test_receipts(self) -> None:
        """ENROUTE at 1 s; DELIVRD between 1 h and 3 h, spread over the range; 6 h for destinations ending in 7."""
        r = ScenarioRuntime.load("drill-slow-receipts", Clock())
        plans = [r.default_receipt() for _ in range(2000)]
        self.assertTrue(all((p.steps[0].delay, p.steps[0].stat) == (1.0, "ENROUTE") for p in plans))
        finals = [p.steps[-1].delay for p in plans]
        self.assertTrue(all(3600 <= d <= 3 * 3600 for d in finals))
        self.assertTrue(min(finals) < 3700 and max(finals) > 3 * 3600 - 100)
        self.assertEqual({p.steps[-1].stat for p in plans}, {"DELIVRD"})
        late = r.verdict(facts("447700900127")).receipt
        assert late is not None
        self.assertEqual((late.steps[-1].stat, late.steps[-1].delay), ("DELIVRD", 6 * 3600.0))
        self.assertIsNone(r.verdict(facts("447700900123")).receipt)


class DrillErrorsTests(SynchronousTestCase):
    """drill-errors: every submit refused with a temporary status from 30 s to 45 s."""

    def test_burst(self) -> None:
        """Accepted before 30 s and after 45 s; in between 0x58, 0x14, 0x08 in turn, per account."""
        r, clock, host = started("drill-errors")
        self.assertEqual(r.verdict(facts()).status, 0)
        clock.advance(30)
        statuses = [r.verdict(facts()).status for _ in range(6)]
        self.assertEqual(statuses, [0x58, 0x14, 0x08, 0x58, 0x14, 0x08])
        self.assertEqual(r.verdict(facts(system_id="other")).status, 0x58)
        clock.advance(15)
        self.assertEqual(r.verdict(facts()).status, 0)
