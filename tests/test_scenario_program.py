"""Tests for smsc_sim.scenario.program: the timeline, MO generators and auto-replies on a fake clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import ThrottleSettings
from smsc_sim.scenario.model import ThrottleSpec
from tests.test_scenario_engine import FakeHost, facts, runtime


class TimelineTests(SynchronousTestCase):
    """Timeline steps run at their times, or after a number of submits."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.host = FakeHost()

    def test_outages_at_their_times(self) -> None:
        """An outage step calls the host at its time with the mode, duration and options."""
        r = runtime(
            """
            timeline:
              - {at: 30s, outage: {instance: SMPP1, mode: crash, duration: 60s}}
              - {at: 40s, outage: {instance: SMPP2, mode: reject-binds, status: ESME_RBINDFAIL}}
              - {at: 50s, outage: {instance: SMPP0, mode: slow, latency: 2s}}
              - {at: 100s, end_outage: SMPP2}
            """,
            self.clock,
        )
        r.start(self.host)
        self.clock.advance(29.9)
        self.assertEqual(self.host.calls, [])
        self.clock.advance(0.1)
        self.assertEqual(self.host.calls, [("start_outage", ("SMPP1", "crash", 60.0), {})])
        self.clock.advance(70)
        self.assertEqual(
            self.host.calls[1:],
            [
                ("start_outage", ("SMPP2", "reject-binds", None), {"status": 0x0D}),
                ("start_outage", ("SMPP0", "slow", None), {"latency": 2.0}),
                ("end_outage", ("SMPP2",), {}),
            ],
        )

    def test_loop_repeats_the_timeline(self) -> None:
        """With loop: 100s, a step at 10 s runs at 10 s, 110 s and 210 s."""
        r = runtime("timeline: {loop: 100s, steps: [{at: 10s, end_outage: SMPP1}]}\n", self.clock)
        r.start(self.host)
        times = []
        for _ in range(250):
            before = len(self.host.calls)
            self.clock.advance(1)
            if len(self.host.calls) > before:
                times.append(self.clock.seconds())
        self.assertEqual(times, [10, 110, 210])

    def test_loop_does_not_drift_when_the_clock_jumps(self) -> None:
        """Cycles stay on their schedule when time moves in big steps: the step of cycle 2 runs at 110 s, not later."""
        r = runtime("timeline: {loop: 100s, steps: [{at: 10s, end_outage: SMPP1}]}\n", self.clock)
        r.start(self.host)
        self.clock.advance(95)
        self.assertEqual(len(self.host.calls), 1)
        self.clock.advance(30)  # now 125: the loop timer (due 100) fired late
        self.clock.advance(0)
        self.assertEqual(len(self.host.calls), 2)

    def test_throttle_and_rule_set_steps(self) -> None:
        """A throttle step changes the runtime's throttle and tells the host; use_rules switches rule sets."""
        r = runtime(
            """
            rule_sets:
              default: []
              storm: [{status: ESME_RTHROTTLED}]
            timeline:
              - {at: 5s, throttle: {rate: 2, burst: 1}}
              - {at: 6s, use_rules: storm}
              - {at: 7s, throttle: off}
            """,
            self.clock,
        )
        r.start(self.host)
        self.clock.advance(5)
        self.assertEqual((r.throttle(), r.throttle_spec), (ThrottleSettings(2.0, 1.0), ThrottleSpec(2.0, 1.0)))
        self.assertEqual(self.host.named("set_throttle"), [(ThrottleSettings(2.0, 1.0),)])
        self.assertEqual(r.verdict(facts()).status, 0)
        self.clock.advance(1)
        self.assertEqual((r.rule_set, r.verdict(facts()).status), ("storm", 0x58))
        self.clock.advance(1)
        self.assertEqual(r.throttle(), ThrottleSettings(0.0, 0.0))
        self.assertEqual(self.host.named("set_throttle")[-1], (ThrottleSettings(0.0, 0.0),))

    def test_after_submits(self) -> None:
        """after_submits: 3 switches the rules right after the 3rd submit; an outage follows on the next tick."""
        r = runtime(
            """
            rule_sets:
              default: []
              broken: [{status: 8}]
            timeline:
              - {after_submits: 3, use_rules: broken}
              - {after_submits: 3, outage: {instance: SMPP1, mode: graceful}}
            """,
            self.clock,
        )
        r.start(self.host)
        self.assertEqual([r.verdict(facts()).status for _ in range(4)], [0, 0, 0, 8])
        self.assertEqual(self.host.calls, [])
        self.clock.advance(0)
        self.assertEqual(self.host.named("start_outage"), [("SMPP1", "graceful", None)])

    def test_stop_cancels_everything(self) -> None:
        """After stop(), no timer is left and nothing more reaches the host."""
        r = runtime(
            """
            timeline: {loop: 10s, steps: [{at: 5s, end_outage: SMPP1}]}
            mo: [{account: a, source: "1", destination: "2", text: hi, rate: 1}]
            auto_replies: [{text: re, delay: 5s}]
            """,
            self.clock,
        )
        r.start(self.host)
        r.on_submit(facts(), "1")
        r.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(self.host.calls, [])
        self.assertFalse(r.running)

    def test_failing_host_does_not_stop_the_timeline(self) -> None:
        """A host that raises on one step is logged, and later steps still run."""

        class Failing(FakeHost):
            def start_outage(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("no such instance")

        host = Failing()
        r = runtime("timeline: [{at: 1, outage: {instance: X, mode: crash}}, {at: 2, end_outage: X}]\n", self.clock)
        r.start(host)
        self.clock.advance(2)
        self.assertEqual(host.named("end_outage"), [("X",)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class MOTests(SynchronousTestCase):
    """MO generators send through host.inject_mo."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.host = FakeHost()

    def test_at_times_with_cycled_templates(self) -> None:
        """Scheduled MO messages go out at their times, texts cycling, {n} counting from 1."""
        r = runtime(
            """
            mo:
              - name: hello
                account: smppclient1
                source: "447700900001"
                destination: "12345"
                texts: ["hi {n}", "bye {name}"]
                data_coding: 8
                split: sar
                at: [2s, 1s, 3s]
            """,
            self.clock,
        )
        r.start(self.host)
        self.clock.advance(1)
        self.assertEqual(self.host.named("inject_mo"), [("smppclient1", "447700900001", "12345", "hi 1", 8, "sar")])
        self.clock.advance(2)
        self.assertEqual([call[3] for call in self.host.named("inject_mo")], ["hi 1", "bye hello", "hi 3"])

    def test_rate_with_start_and_count(self) -> None:
        """rate: 2 from 10 s with count: 5 sends at 10, 10.5, 11, 11.5 and 12 s, then stops."""
        r = runtime(
            "mo: [{account: a, source: '1', destination: '2', text: x, rate: 2, start: 10s, count: 5}]\n", self.clock
        )
        r.start(self.host)
        times = []
        for _ in range(100):
            before = len(self.host.calls)
            self.clock.advance(0.25)
            if len(self.host.calls) > before:
                times.append(self.clock.seconds())
        self.assertEqual(times, [10, 10.5, 11, 11.5, 12])

    def test_rate_with_stop(self) -> None:
        """rate: 1 with stop: 5s sends at 0..5 s and never after."""
        r = runtime("mo: [{account: a, source: '1', destination: '2', text: x, rate: 1, stop: 5s}]\n", self.clock)
        r.start(self.host)
        self.clock.pump([0] + [1] * 20)
        self.assertEqual(len(self.host.calls), 6)

    def test_poisson_rate_is_about_right(self) -> None:
        """Poisson arrivals at 2/s give about 2000 messages in 1000 s, and the same ones for the same seed."""
        text = "mo: [{account: a, source: '1', destination: '2', text: x, rate: 2, arrivals: poisson}]\n"
        counts = []
        for _ in range(2):
            clock, host = Clock(), FakeHost()
            runtime(text, clock, seed=8).start(host)
            clock.pump([1] * 1000)
            counts.append(len(host.calls))
        self.assertEqual(counts[0], counts[1])
        self.assertTrue(1850 < counts[0] < 2150, counts)

    def test_long_messages_by_length(self) -> None:
        """length: 400 repeats the text up to exactly 400 characters."""
        r = runtime(
            "mo: [{account: a, source: '1', destination: '2', text: 'Long {n}', length: 400, at: [0]}]\n", self.clock
        )
        r.start(self.host)
        self.clock.advance(0)
        text = self.host.named("inject_mo")[0][3]
        self.assertEqual((len(text), text[:16]), (400, "Long 1 Long 1 Lo"))


class AutoReplyTests(SynchronousTestCase):
    """Auto-replies answer accepted submits that match."""

    def test_reply_goes_back_after_its_delay(self) -> None:
        """A STOP submit gets a reply from its destination to its source on the same account, 2 s later."""
        clock, host = Clock(), FakeHost()
        r = runtime(
            """
            auto_replies:
              - match: {text: "(?i)^stop"}
                text: "Bye from {destination}: you said {text!r} ({message_id})"
                delay: 2s
                data_coding: 3
            """,
            clock,
        )
        r.start(host)
        r.on_submit(facts("447700", text="hello"), "A1")
        r.on_submit(facts("447700", text="STOP"), "A2")
        clock.advance(1.9)
        self.assertEqual(host.calls, [])
        clock.advance(0.1)
        self.assertEqual(
            host.named("inject_mo"),
            [("smppclient1", "447700", "Acme", "Bye from 447700: you said 'STOP' (A2)", 3, "udh8")],
        )

    def test_no_reply_before_start(self) -> None:
        """Before start() there is no host, and submits get no reply."""
        clock = Clock()
        r = runtime("auto_replies: [{text: re}]\n", clock)
        r.on_submit(facts(), "1")
        self.assertEqual(clock.getDelayedCalls(), [])
