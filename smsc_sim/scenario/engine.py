"""
The scenario engine: turns a message plus the run's state into a verdict,
and runs the scenario's timeline, MO generators and auto-replies.

:class:`ScenarioRuntime` implements :class:`~smsc_sim.contracts.IScenario`.
The core calls :meth:`~ScenarioRuntime.verdict` for every submit, so that path
is kept cheap: rules are scanned in order with precompiled conditions, and a
rule whose outcome cannot vary returns one prebuilt :class:`Verdict`.

Determinism: one seed (the file's, or the caller's) seeds the verdict
generator and, through fixed derivations, the generators of the timeline/MO
and of auto-replies, so MO traffic never shifts the verdict sequence.  The
same messages in the same order get the same verdicts.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import MessageFacts, ReceiptPlan, ThrottleSettings, Verdict
from smsc_sim.scenario.describe import describe_scenario
from smsc_sim.scenario.loader import load_scenario
from smsc_sim.scenario.model import (
    Action,
    AutoReply,
    EndOutageAction,
    Limits,
    Match,
    THROTTLE_OFF,
    OutageAction,
    Outcome,
    RetrySettings,
    Rule,
    Scenario,
    ThrottleAction,
    ThrottleSpec,
    UseRulesAction,
    WindowSettings,
)
from smsc_sim.scenario.program import IScenarioHost, Program

__all__ = ["IScenarioHost", "ScenarioRuntime"]


class _Live:
    """A rule (or auto-reply match) with its counters and, when fixed, its verdict."""

    __slots__ = ("rule", "match", "dynamic", "counts", "total", "cached", "hits")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.match: Match = rule.match
        self.dynamic = rule.match.dynamic
        self.counts: dict[str, int] = {}
        self.total = 0
        self.hits = 0
        outcome = rule.outcome
        self.cached: Verdict | None = None
        latency = outcome.latency.fixed
        fixed_receipt = outcome.receipt is None or outcome.status != 0 or not outcome.receipt.is_random
        if latency is not None and fixed_receipt and outcome.absent is None:
            self.cached = self._build(latency, None)

    def _build(self, latency: float, rng: random.Random | None) -> Verdict:
        outcome = self.rule.outcome
        receipt: ReceiptPlan | None = None
        if outcome.receipt is not None and outcome.status == 0:
            # any rng works for a receipt that is not random: it draws nothing
            receipt = outcome.receipt.sample(rng or random.Random(0))
        return Verdict(outcome.status, outcome.respond, latency, outcome.then, receipt, self.rule.name)

    def decide(self, rng: random.Random) -> Verdict:
        """The verdict for a message this rule matched."""
        self.hits += 1
        if self.cached is not None:
            return self.cached
        return self._build(self.rule.outcome.latency.sample(rng), rng)

    def matches(self, facts: MessageFacts, rng: random.Random) -> bool:
        """Whether the message matches; advances the counter when the static conditions hold."""
        match = self.match
        if not match.static_matches(facts):
            return False
        if not self.dynamic:
            return True
        counter = match.counter
        if counter is not None:
            if counter.scope == "global":
                self.total += 1
                count = self.total
            else:
                count = self.counts.get(facts.system_id, 0) + 1
                self.counts[facts.system_id] = count
            if not counter.hit(count):
                return False
        probability = match.probability
        return probability is None or rng.random() < probability


class _PrefixBlock:
    """
    A run of rules that test only destination prefixes, looked up by
    prefix instead of one by one (the error-codes scenario has ~90 of them).
    """

    __slots__ = ("lives", "index", "lengths")

    def __init__(self, lives: list[_Live]) -> None:
        self.lives = lives
        self.index: dict[str, int] = {}
        for position, live in enumerate(lives):
            assert live.match.destination is not None
            for prefix in live.match.destination.prefixes:
                self.index.setdefault(prefix, position)
        self.lengths = sorted({len(prefix) for prefix in self.index})

    def find(self, destination: str) -> _Live | None:
        """The first rule of the run whose prefix starts ``destination``."""
        best = -1
        for length in self.lengths:
            if length > len(destination):
                break
            position = self.index.get(destination[:length], -1)
            if position >= 0 and (best < 0 or position < best):
                best = position
        return self.lives[best] if best >= 0 else None

    @staticmethod
    def eligible(live: _Live) -> bool:
        """Whether a rule tests nothing but destination prefixes."""
        match = live.match
        return (
            match.destination is not None
            and match.destination.regex is None
            and replace(match, destination=None) == _ANY
        )


_ANY = Match()
#: runs shorter than this are scanned one by one (a dict lookup per prefix length costs more)
_BLOCK_MIN = 4


def _plan(lives: list[_Live]) -> list[_Live | _PrefixBlock]:
    """The rules in order, with long runs of prefix-only rules folded into blocks."""
    plan: list[_Live | _PrefixBlock] = []
    run: list[_Live] = []
    for live in [*lives, None]:
        if live is not None and _PrefixBlock.eligible(live):
            run.append(live)
            continue
        if len(run) >= _BLOCK_MIN:
            plan.append(_PrefixBlock(run))
        else:
            plan.extend(run)
        run = []
        if live is not None:
            plan.append(live)
    return plan


class ScenarioRuntime:
    """
    One running scenario: verdicts, counters, the active rule set, the
    current throttle, and (once started) the timeline and MO traffic.

    :param scenario: the validated scenario.
    :param clock: the clock of every timer (timeline, MO, auto-replies).
    :param seed: overrides the file's seed; with neither, one is chosen and
        can be read back from :attr:`seed`.
    """

    log = Logger()

    def __init__(self, scenario: Scenario, clock: IReactorTime, seed: int | None = None) -> None:
        self._scenario = scenario
        self._clock = clock
        if seed is None:
            seed = scenario.seed if scenario.seed is not None else random.SystemRandom().randrange(2**31)
        self._seed = seed
        self._rng = random.Random(seed)
        self._program_rng = random.Random(f"{seed}/program")
        self._reply_rng = random.Random(f"{seed}/replies")
        self._sets = {name: [_Live(rule) for rule in rules] for name, rules in scenario.rule_sets.items()}
        self._rule_set = scenario.start_rules
        self._plans = {name: _plan(lives) for name, lives in self._sets.items()}
        self._active = self._plans[self._rule_set]
        self._fallback = _Live(Rule("(no rule matched)", Match(), Outcome(latency=scenario.latency)))
        self._replies = [(reply, _Live(Rule(reply.name, reply.match, Outcome()))) for reply in scenario.auto_replies]
        self._default_plan = None if scenario.receipt.is_random else scenario.receipt.sample(self._rng)
        self._throttle_spec = scenario.throttle
        self._throttle = self._settings(scenario.throttle)
        self._program: Program | None = None
        #: the last verdict's hold, for on_submit: (its facts, seconds, the plan before the hold)
        self._held: tuple[MessageFacts, float, ReceiptPlan] | None = None
        self.submits = 0

    @classmethod
    def load(cls, name_or_path: str | Path, clock: IReactorTime, seed: int | None = None) -> ScenarioRuntime:
        """
        Load a scenario by name or path and make its runtime.

        :raises ScenarioError: when the scenario cannot be found or used.
        """
        return cls(load_scenario(name_or_path), clock, seed)

    # -- IScenario -------------------------------------------------------------

    def verdict(self, facts: MessageFacts) -> Verdict:
        """Decide on one submit_sm / submit_multi / data_sm (counters advance)."""
        rng = self._rng
        chosen = self._fallback
        for item in self._active:
            if isinstance(item, _Live):
                if item.matches(facts, rng):
                    chosen = item
                    break
            else:
                found = item.find(facts.destination_addr)
                if found is not None:
                    chosen = found
                    break
        result = chosen.decide(rng)
        self._held = None
        absent = chosen.rule.outcome.absent
        if absent is not None and result.status == 0:
            result = self._hold(facts, result, absent.sample(rng))
        self.submits += 1
        if self._program is not None:
            self._program.submitted()
        return result

    def _hold(self, facts: MessageFacts, verdict: Verdict, hold: float) -> Verdict:
        """
        An ``absent`` rule matched: the receipts come ``hold`` seconds later
        than the plan says, and :meth:`on_submit` tells the host the message is
        held (with the plan as it was, for a handset the API brings back sooner).
        """
        plan = verdict.receipt or self.default_receipt()
        later = tuple(replace(step, delay=step.delay + hold) for step in plan.steps)
        self._held = (facts, hold, plan)
        return replace(verdict, receipt=replace(plan, steps=later))

    def default_receipt(self) -> ReceiptPlan:
        """The scenario's receipt plan for a message no rule gave a plan for."""
        if self._default_plan is not None:
            return self._default_plan
        return self._scenario.receipt.sample(self._rng)

    def deliver_resp_is_temporary(self, status: int) -> bool:
        """Whether a deliver_sm_resp status asks for a retry."""
        return status in self._scenario.retry.temporary

    # -- lifecycle -------------------------------------------------------------

    def start(self, host: IScenarioHost) -> None:
        """Start the timeline and MO generators (a second start restarts them)."""
        self.stop()
        self._program = Program(
            self._clock, host, self._program_rng, self._scenario.timeline, self._scenario.mo, self._apply
        )
        self._program.start()

    def stop(self) -> None:
        """Stop the timeline, MO generators and pending auto-replies."""
        if self._program is not None:
            self._program.stop()
            self._program = None

    @property
    def running(self) -> bool:
        """Whether the timeline and MO generators run."""
        return self._program is not None

    def on_submit(self, facts: MessageFacts, message_id: str) -> None:
        """
        An accepted submit: the first matching auto-reply (if any) sends its
        MO after its delay.  Ignored until :meth:`start`.
        """
        program = self._program
        held, self._held = self._held, None
        if held is not None and held[0] is facts and program is not None:
            # the verdict of this very submit held it (an identity check: a refused submit leaves no record)
            _, hold, plan = held
            program.call_host("hold_message", facts, message_id, hold, plan, optional=True)
        if program is None or not self._replies:
            return
        for reply, live in self._replies:
            if live.matches(facts, self._reply_rng):
                live.hits += 1
                values = {
                    "text": facts.text or "",
                    "source": facts.source_addr,
                    "destination": facts.destination_addr,
                    "account": facts.system_id,
                    "message_id": message_id,
                }
                delay = reply.delay.sample(self._reply_rng)
                program.later(delay, self._send_reply, reply, facts, reply.text.format_map(values))
                return

    def _send_reply(self, reply: AutoReply, facts: MessageFacts, text: str) -> None:
        if self._program is not None:
            self._program.call_host(
                "inject_mo",
                facts.system_id,
                facts.destination_addr,
                facts.source_addr,
                text,
                reply.data_coding,
                reply.split,
            )

    # -- state the core and the API read or change -----------------------------

    @property
    def scenario(self) -> Scenario:
        """The scenario this runtime runs."""
        return self._scenario

    @property
    def seed(self) -> int:
        """The seed in use."""
        return self._seed

    @property
    def rule_set(self) -> str:
        """The name of the active rule set."""
        return self._rule_set

    def use_rules(self, name: str) -> None:
        """
        Switch to another rule set (counters of every rule are kept).

        :raises ValueError: for an unknown name.
        """
        if name not in self._sets:
            raise ValueError(f"unknown rule set {name!r}; defined: {', '.join(self._sets)}")
        self._rule_set = name
        self._active = self._plans[name]
        self.log.info("scenario {scenario}: rule set {name}", scenario=self._scenario.name, name=name)

    def throttle(self) -> ThrottleSettings | None:
        """
        The throttle now, as the core applies it (the timeline may change it).

        :returns: ``None`` when each account's configured throughput applies;
            rate 0 (unlimited) for ``throttle: off``.
        """
        return self._throttle

    @property
    def throttle_spec(self) -> ThrottleSpec | None:
        """The throttle section now, as written (``None``: off)."""
        return self._throttle_spec

    def _settings(self, spec: ThrottleSpec | None) -> ThrottleSettings | None:
        if spec is None:
            return THROTTLE_OFF
        return spec.settings(self._scenario.limits.throughput)

    def set_throttle(self, spec: ThrottleSpec | None) -> None:
        """Replace the throttle section (``None``: off) and tell the host, if it listens."""
        self._throttle_spec = spec
        self._throttle = self._settings(spec)
        if self._program is not None:
            self._program.call_host("set_throttle", self._throttle, optional=True)

    @property
    def window(self) -> WindowSettings:
        """Inbound window settings (``None`` fields: keep the config's)."""
        return self._scenario.window

    @property
    def conformance(self) -> dict[str, float]:
        """The judge's thresholds this scenario overrides (threshold name -> number; empty: none)."""
        return dict(self._scenario.conformance)

    @property
    def retry(self) -> RetrySettings:
        """deliver_sm retry settings (``None`` fields: keep the config's)."""
        return self._scenario.retry

    @property
    def limits(self) -> Limits:
        """Account overrides (``None`` fields: keep the config's)."""
        return self._scenario.limits

    def _apply(self, action: Action) -> None:
        program = self._program
        if isinstance(action, UseRulesAction):
            self.use_rules(action.rule_set)
        elif isinstance(action, ThrottleAction):
            self.set_throttle(action.spec)
        elif program is None:
            return
        elif isinstance(action, OutageAction):
            options: dict[str, Any] = {}
            if action.status is not None:
                options["status"] = action.status
            if action.latency is not None:
                options["latency"] = action.latency
            program.call_host("start_outage", action.instance, action.mode, action.duration, **options)
        elif isinstance(action, EndOutageAction):
            program.call_host("end_outage", action.instance)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for the inspection API."""
        summary = describe_scenario(self._scenario, self._throttle_spec)
        summary.update(seed=self._seed, rule_set=self._rule_set, submits=self.submits, running=self.running)
        for name, lives in self._sets.items():
            for rule, live in zip(summary["rule_sets"][name], lives):
                rule["hits"] = live.hits
        summary["auto_replies"] = [
            {"name": reply.name, "text": reply.text, "hits": live.hits} for reply, live in self._replies
        ]
        program = self._program
        if program is not None:
            summary["timeline"]["cycle"] = program.cycle
            summary["timeline"]["cycle_started"] = program.cycle_start
            for generator in summary["mo"]:
                generator["sent"] = program.sent.get(generator["name"], 0)
        return summary
