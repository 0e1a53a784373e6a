"""
The judge as a whole: a good ESME passes, the reports (summary, filters,
JUnit XML, Markdown) say what a CI user reads, thresholds are validated
with the key named, and the judge's memory is bounded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.conformance import CODES, Judge, Landscape, ThresholdError, Thresholds
from smsc_sim.conformance.report import describe
from smsc_sim.contracts import Event
from smsc_sim.load.run import LoadRun
from smsc_sim.load.settings import LoadSettings
from tests import wire
from tests.conformance_harness import JudgeCase, MemoryTCP, RawESME


class GoodESMETests(JudgeCase):
    def test_good_esme_passes(self) -> None:
        """
        TRX binds on SMPP1 and SMPP2, 10 submits/s for 5 s asking for
        receipts, deliver_sm answered at once, enquire_link every 30 s for
        two minutes, unbind: verdict pass, no finding at all.
        """
        first, second = self.esme("SMPP1"), self.esme("SMPP2")
        for n in range(50):
            (first if n % 2 else second).submit(destination=f"4477009{n:05d}", registered_delivery=1)
            self.smsc.advance(0.1)
        self.smsc.inject_mo("447700900001", "447700900002", "hello")
        self.live(120, first, second)
        self.leave(first)
        self.leave(second)
        self.assertEqual(len(self.smsc.messages(state="DELIVERED", direction="mt")), 50)
        self.assertEqual(self.judge.findings(), [])
        summary = self.judge.summary()
        self.assertEqual((summary["verdict"], summary["counts"], summary["findings"]), ("pass", {}, []))
        suite = ElementTree.fromstring(self.judge.junit())
        self.assertEqual((suite.get("tests"), suite.get("failures")), (str(len(CODES)), "0"))
        self.assertEqual(self.judge.markdown(), "# ESME conformance: pass\n\nNo findings.\n")


    def test_load_generator_with_sensible_settings_passes(self) -> None:
        """
        The project's load generator, one transceiver on SMPP1 and one on
        SMPP2, 20 messages/s asking for receipts, enquire_link every 30 s:
        it finishes its run cleanly and the judge has no finding.
        """
        settings = LoadSettings(
            targets=(("127.0.0.1", 2775), ("127.0.0.1", 2776)),
            sessions=2,
            rate=20,
            count=100,
            receipts=True,
            enquire_link=30,
            progress=0,
        )
        done = LoadRun(MemoryTCP(self.smsc), settings).start()
        self.smsc.advance(60)
        result = self.successResultOf(done)
        self.assertEqual((result["accepted"], result["receipts"]["received"]), (100, 100))
        self.assertEqual(self.judge.findings(), [])


class ReportTests(JudgeCase):
    def bad_run(self) -> RawESME:
        """A single-instance ESME that drops its connection and writes a '+' destination."""
        esme = self.esme("SMPP1")
        esme.submit(destination="+447700900002")
        self.smsc.advance(1)
        esme.connection.disconnect()
        self.smsc.flush()
        return esme

    def test_summary_counts_by_code_and_verdict(self) -> None:
        """Only warnings: verdict warn, counts by code, each finding with its evidence as JSON-ready data."""
        self.bad_run()
        summary = self.judge.summary()
        self.assertEqual(summary["verdict"], "warn")
        self.assertEqual(summary["counts"], {"single-instance": 1, "no-unbind": 1, "address-format": 1})
        self.assertEqual(summary["severities"], {"error": 0, "warning": 3, "info": 0})
        address = [f for f in summary["findings"] if f["code"] == "address-format"][0]
        self.assertEqual(
            {k: address[k] for k in ("severity", "account", "session_id", "instance", "count")},
            {"severity": "warning", "account": "smppclient1", "session_id": 1, "instance": "SMPP1", "count": 1},
        )
        self.assertEqual(address["evidence"][0]["command"], "submit_sm")

    def test_filters(self) -> None:
        """Findings filter by account, session, severity and since; an unknown severity is a ValueError naming it."""
        self.bad_run()
        self.assertEqual(len(self.judge.findings(account="smppclient1")), 3)
        self.assertEqual(self.judge.findings(account="other"), [])
        self.assertEqual(sorted(f.code for f in self.judge.findings(session_id=1)), ["address-format", "no-unbind"])
        self.assertEqual(self.judge.findings(severity="error"), [])
        self.assertEqual(len(self.judge.findings(severity="warning")), 3)
        self.assertEqual(self.judge.findings(since=self.smsc.clock.seconds() + 1), [])
        error = self.assertRaises(ValueError, self.judge.findings, severity="fatal")
        self.assertIn("'fatal'", str(error))

    def test_junit_has_a_failure_per_error_finding_and_escapes(self) -> None:
        """
        Six refused binds of system_id 'a<b&"c' in 3 s: rebind-storm, a JUnit
        failure under that account's testcase, the XML well-formed; warnings
        go to system-out, not failures.
        """
        for _ in range(6):
            esme = RawESME(self.smsc.clock)
            esme.connection = self.smsc.connect(esme, "SMPP0")
            esme.send(wire.bind(0x09, 1, system_id='a<b&"c', password="nope"))
            self.smsc.advance(0.5)
            esme.connection.disconnect()
        self.bad_run()
        suite = ElementTree.fromstring(self.judge.junit())
        cases = suite.findall("testcase")
        self.assertEqual(len(cases), 2 * len(CODES))
        self.assertEqual(suite.get("failures"), "1")
        [failed] = [c for c in cases if c.find("failure") is not None]
        self.assertEqual((failed.get("classname"), failed.get("name")), ('a<b&"c', "rebind-storm"))
        [no_unbind] = [c for c in cases if c.get("classname") == "smppclient1" and c.get("name") == "no-unbind"]
        self.assertIn("warning: no-unbind", no_unbind.findtext("system-out") or "")
        self.assertEqual(self.judge.summary()["verdict"], "fail")

    def test_markdown_summary(self) -> None:
        """The Markdown names the verdict, has a row per code found and a line per finding."""
        self.bad_run()
        text = self.judge.markdown()
        self.assertTrue(text.startswith("# ESME conformance: warn\n"))
        self.assertIn("| `no-unbind` | warning | 1 | smppclient1 |", text)
        self.assertEqual(text.count("\n- **warning**"), 3)

    def test_describe_is_readable(self) -> None:
        """describe() gives one line per finding: severity, account, code, place and detail."""
        self.bad_run()
        lines = describe(self.judge.findings()).splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(any(line.startswith("warning smppclient1 no-unbind (session 1, on SMPP1): ") for line in lines))

    def test_reset_forgets_findings(self) -> None:
        """After reset there are no findings, and the verdict is pass again."""
        self.bad_run()
        self.judge.reset()
        self.assertEqual(self.judge.summary()["verdict"], "pass")
        self.assertEqual(self.judge.findings(), [])


class BoundTests(JudgeCase):
    thresholds = Thresholds(max_evidence=2, max_findings=2)

    def test_evidence_and_findings_are_bounded(self) -> None:
        """At most max_evidence evidence entries per finding (the count goes on) and max_findings findings."""
        esme = self.esme()
        for _ in range(5):
            esme.submit(destination="+447700900002")
        esme.submit(text="héllo".encode("utf-8"))
        esme.submit(sequence=0)
        self.smsc.flush()
        self.leave(esme)
        [address, encoding] = sorted(self.judge.findings(), key=lambda f: f.code)
        self.assertEqual((address.code, address.count, len(address.evidence)), ("address-format", 5, 2))
        self.assertEqual(encoding.code, "encoding-suspect")
        self.assertEqual(self.judge.dropped, 1)
        self.assertEqual(self.judge.summary()["dropped"], 1)

    def test_closed_sessions_are_forgotten(self) -> None:
        """200 sessions opened and closed leave no session state behind."""
        for n in range(200):
            self.leave(self.esme("SMPP0"))
            self.smsc.advance(3)
        self.assertEqual(self.judge.sizes()["sessions"], 0)
        self.assertEqual(self.judge.sizes()["accounts"], 1)


class SyntheticTests(SynchronousTestCase):
    def test_unknown_event_kinds_and_sessions_are_ignored(self) -> None:
        """Events of kinds the judge does not know, or of sessions it never saw, change nothing."""
        clock = Clock()
        judge = Judge(clock, Landscape())
        judge(Event("message", 0.0, {"message_id": "1"}))
        judge(Event("pdu_in", 0.0, {"session_id": 99, "pdu": None}))
        judge(Event("session_closed", 0.0, {"session_id": 99, "clean": False}))
        self.assertEqual(judge.findings(), [])


class ThresholdTests(SynchronousTestCase):
    def test_defaults_are_the_issue_values(self) -> None:
        """Defaults: 2x throughput for 1 s, deliver_sm slow at 5 s, failover 30 s, 5 binds per 10 s, idle 60 s."""
        t = Thresholds()
        self.assertEqual(
            (t.throttle_factor, t.throttle_grace, t.deliver_sm_slow, t.failover_window, t.rebind_max, t.rebind_period),
            (2.0, 1.0, 5.0, 30.0, 5, 10.0),
        )
        self.assertEqual((t.keepalive_idle, t.keepalive_min_interval), (60.0, 1.0))

    def test_mapping_overrides_and_keeps_the_rest(self) -> None:
        """A mapping changes the keys it names; a scenario override applies over the config's values."""
        config = Thresholds.from_mapping({"deliver_sm_slow": 2, "rebind_max": 3})
        self.assertEqual((config.deliver_sm_slow, config.rebind_max, config.failover_window), (2.0, 3, 30.0))
        scenario = Thresholds.from_mapping({"failover_window": 10}, base=config)
        self.assertEqual((scenario.deliver_sm_slow, scenario.failover_window), (2.0, 10.0))
        self.assertEqual(Thresholds.from_mapping(None), Thresholds())

    def test_errors_name_the_key(self) -> None:
        """
        Unknown keys, non-numbers, booleans, negatives, zero where it must be
        positive, fractions of counts: errors naming the key.
        """
        cases = {
            "conformance.deliver_sm_slowness: unknown threshold": {"deliver_sm_slowness": 1},
            "conformance.deliver_sm_slow: expected a number, got '5s'": {"deliver_sm_slow": "5s"},
            "conformance.throttle_grace: expected a number, got True": {"throttle_grace": True},
            "conformance.failover_window: must be 0 or more, got -1.0": {"failover_window": -1},
            "conformance.rebind_max: must be above 0, got 0": {"rebind_max": 0},
            "conformance.rebind_max: expected a whole number, got 2.5": {"rebind_max": 2.5},
            "conformance.keepalive_idle: expected a finite number": {"keepalive_idle": float("inf")},
        }
        for message, mapping in cases.items():
            error = self.assertRaises(ThresholdError, Thresholds.from_mapping, mapping)
            self.assertTrue(str(error).startswith(message), str(error))
        error = self.assertRaises(ThresholdError, Thresholds.from_mapping, [1, 2])
        self.assertIn("expected a mapping", str(error))
