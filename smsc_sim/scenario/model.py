"""
The scenario model: frozen values built by :mod:`smsc_sim.scenario.loader`.

A :class:`Scenario` holds named rule sets (first match wins), the default
latency and receipt, throttle, window and retry settings, MO generators,
auto-replies and a timeline.  Regexes are compiled here once (by RE2, in
time linear in the text: :mod:`smsc_sim.scenario.regex`), so matching a
message costs attribute reads, set lookups, ``str.startswith`` and RE2 searches.
Mutable state (counters, the active rule set, timers) lives in
:class:`smsc_sim.scenario.engine.ScenarioRuntime`, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from smsc_sim.contracts import AfterReply, MessageFacts, Respond, ThrottleSettings
from smsc_sim.modes import SplitMode
from smsc_sim.scenario.distributions import Distribution, Fixed
from smsc_sim.scenario.receipts import ReceiptSpec
from smsc_sim.scenario.regex import Regex
from smsc_sim.smpp.constants import PROVIDER_TEMPORARY_DELIVER_STATUSES, BindType, CommandStatus

THROTTLE_SCOPES = ("account", "bind", "instance")
#: ``throttle.model`` values: a token bucket, or at most ``rate`` in any one-second window
THROTTLE_MODELS = ("bucket", "window")
COUNTER_SCOPES = ("account", "global")
COMMANDS = ("submit_sm", "submit_multi", "data_sm")


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """An address test: any of some prefixes, or a regex (searched)."""

    prefixes: tuple[str, ...] = ()
    regex: Regex | None = None

    def matches(self, address: str) -> bool:
        """Whether ``address`` starts with a prefix or the regex finds something in it."""
        if self.regex is not None:
            return self.regex.found_in(address)
        return address.startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class BitsMatch:
    """An integer test: ``value & mask`` is one of ``values``."""

    mask: int
    values: frozenset[int]

    def matches(self, value: int) -> bool:
        """Whether the masked value is one of the expected ones."""
        return (value & self.mask) in self.values


@dataclass(frozen=True, slots=True)
class Counter:
    """
    A count condition.  The count is of messages that met every other
    condition of the same rule (probability aside), per account or global.

    :ivar kind: ``first`` (the first ``n``), ``every`` (the ``n``-th,
        ``2n``-th, ...) or ``after`` (from the ``n+1``-th on).
    """

    kind: str
    n: int
    scope: str = "account"

    def hit(self, count: int) -> bool:
        """Whether the ``count``-th message (1-based) meets the condition."""
        if self.kind == "first":
            return count <= self.n
        if self.kind == "every":
            return count % self.n == 0
        return count > self.n


@dataclass(frozen=True, slots=True)
class Match:
    """What a rule matches; ``None`` means "any"."""

    commands: frozenset[str] | None = None
    instances: frozenset[str] | None = None
    accounts: frozenset[str] | None = None
    bind_types: frozenset[BindType] | None = None
    source: AddressMatch | None = None
    destination: AddressMatch | None = None
    text: Regex | None = None
    data_coding: frozenset[int] | None = None
    esm_class: BitsMatch | None = None
    registered_delivery: BitsMatch | None = None
    parts: tuple[int, int] | None = None
    tlv_present: frozenset[int] = frozenset()
    tlv_absent: frozenset[int] = frozenset()
    counter: Counter | None = None
    probability: float | None = None

    def static_matches(self, facts: MessageFacts) -> bool:
        """Whether every condition but the counter and the probability holds."""
        if self.destination is not None and not self.destination.matches(facts.destination_addr):
            return False
        if self.accounts is not None and facts.system_id not in self.accounts:
            return False
        if self.source is not None and not self.source.matches(facts.source_addr):
            return False
        if self.instances is not None and facts.instance not in self.instances:
            return False
        if self.commands is not None and facts.command not in self.commands:
            return False
        if self.bind_types is not None and facts.bind_type not in self.bind_types:
            return False
        if self.data_coding is not None and facts.data_coding not in self.data_coding:
            return False
        if self.esm_class is not None and not self.esm_class.matches(facts.esm_class):
            return False
        if self.registered_delivery is not None and not self.registered_delivery.matches(facts.registered_delivery):
            return False
        if self.parts is not None and not self.parts[0] <= facts.parts_total <= self.parts[1]:
            return False
        if self.tlv_present and not self.tlv_present <= facts.tlv_tags:
            return False
        if self.tlv_absent and not self.tlv_absent.isdisjoint(facts.tlv_tags):
            return False
        if self.text is not None and (facts.text is None or not self.text.found_in(facts.text)):
            return False
        return True

    @property
    def dynamic(self) -> bool:
        """Whether matching needs a counter or a random draw."""
        return self.counter is not None or self.probability is not None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a matching rule decides; ``receipt`` ``None`` means the scenario's default."""

    status: int = 0
    respond: Respond = Respond.normal
    then: AfterReply = AfterReply.nothing
    latency: Distribution = Fixed(0.0)
    receipt: ReceiptSpec | None = None
    #: ``absent: {hold: ...}``: the handset is unavailable for this long after the submit; the
    #: message is held (its receipts come that much later) and, if the submit asked with set_dpf,
    #: an alert_notification goes to the ESME when the handset is back
    absent: Distribution | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: a name (for the inspection API), a match and an outcome."""

    name: str
    match: Match
    outcome: Outcome
    line: int = 0


@dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """
    The ``throttle:`` section: token-bucket throttling of submits.

    :ivar rate: messages (parts) per second; ``None``: each account's
        configured throughput (``scope``, ``burst``, ``status`` and ``penalty``
        then keep their defaults, which the loader checks).
    :ivar burst: bucket size; ``None``: the rate (one second's worth).
    :ivar scope: one bucket per ``account``, per ``bind`` or per ``instance``.
    :ivar status: the command_status of a refused submit.
    :ivar penalty: after a refusal, refuse everything in the scope this long.
    :ivar model: ``bucket`` (a token bucket, the default for a scenario's own
        rate) or ``window`` (at most ``rate`` in any one-second window).
    """

    rate: float | None = None
    burst: float | None = None
    scope: str = "account"
    status: int = int(CommandStatus.ESME_RTHROTTLED)
    penalty: float = 0.0
    model: str = "bucket"

    @property
    def customised(self) -> bool:
        """Whether anything but the rate differs from the defaults."""
        return (self.burst, self.scope, self.status, self.penalty, self.model) != (None, "account", 0x58, 0.0, "bucket")

    def settings(self, default_rate: float | None = None) -> ThrottleSettings | None:
        """
        The core's view (:class:`~smsc_sim.contracts.ThrottleSettings`).

        :param default_rate: the rate when the section gives none
            (``limits.throughput``); ``None`` keeps each account's.
        :returns: ``None`` when each account's configured throughput applies.
        """
        rate = self.rate if self.rate is not None else default_rate
        if rate is None:
            return None
        # a rate from limits.throughput stands in for each account's, so each account's model applies
        model = self.model if self.rate is not None else "account"
        return ThrottleSettings(rate, self.burst or 0.0, self.scope, self.status, self.penalty, model)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "rate": self.rate,
            "burst": self.burst,
            "scope": self.scope,
            "status": self.status,
            "penalty": self.penalty,
            "model": self.model,
        }


#: what throttle() gives when the scenario says ``throttle: off``: rate 0 is unlimited
THROTTLE_OFF = ThrottleSettings(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class WindowSettings:
    """
    The windows of every session: ``None`` fields keep the config's session settings.

    ``size`` and ``status`` bound the requests being answered at once (the
    inbound window); ``outbound`` bounds the deliver_sm and data_sm the SMSC
    keeps unanswered per session.
    """

    size: int | None = None
    status: int | None = None
    outbound: int | None = None


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """
    Retries of deliver_sm (receipts, MO) by deliver_sm_resp status.

    The n-th retry (1-based) waits ``backoff * factor ** (n - 1)`` seconds,
    capped at ``max_backoff``.  ``None`` fields keep the config's core settings.
    """

    temporary: frozenset[int] = PROVIDER_TEMPORARY_DELIVER_STATUSES
    backoff: float | None = None
    factor: float = 2.0
    max_backoff: float | None = None
    max_attempts: int | None = None

    def delay(self, retry: int, default_backoff: float) -> float:
        """Seconds before the ``retry``-th retry (1-based)."""
        base = self.backoff if self.backoff is not None else default_backoff
        delay = base * self.factor ** (retry - 1)
        return min(delay, self.max_backoff) if self.max_backoff is not None else delay


@dataclass(frozen=True, slots=True)
class Limits:
    """Account overrides for the whole cluster while this scenario runs."""

    max_binds: int | None = None
    throughput: float | None = None


@dataclass(frozen=True, slots=True)
class MOGenerator:
    """
    Mobile-originated traffic: at given times, or at a rate.

    ``texts`` are templates with ``{n}`` (1-based message count) and
    ``{name}``; ``length`` pads (by repeating) or cuts each text to that
    many characters, for long messages.
    """

    name: str
    account: str
    source: str
    destination: str
    texts: tuple[str, ...]
    pick: str = "cycle"
    data_coding: int | None = None
    split: str = SplitMode.UDH8.value
    length: int | None = None
    at: tuple[float, ...] = ()
    rate: float | None = None
    arrivals: str = "fixed"
    start: float = 0.0
    stop: float | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class AutoReply:
    """
    An MO reply to an accepted submit that matches; the reply goes from
    the submit's destination to its source, on the submitting account.
    ``text`` may use ``{text} {source} {destination} {account} {message_id}``.
    """

    name: str
    match: Match
    text: str
    delay: Distribution = Fixed(0.0)
    data_coding: int | None = None
    split: str = SplitMode.UDH8.value


@dataclass(frozen=True, slots=True)
class OutageAction:
    """Start an outage; the host ends it after ``duration`` when given."""

    instance: str
    mode: str
    duration: float | None = None
    status: int | None = None
    latency: float | None = None


@dataclass(frozen=True, slots=True)
class EndOutageAction:
    """End an instance's outage."""

    instance: str


@dataclass(frozen=True, slots=True)
class ThrottleAction:
    """Replace the throttle section (``None``: throttling off)."""

    spec: ThrottleSpec | None


@dataclass(frozen=True, slots=True)
class UseRulesAction:
    """Switch to another named rule set."""

    rule_set: str


Action = OutageAction | EndOutageAction | ThrottleAction | UseRulesAction


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One step: at ``at`` seconds after start (of the cycle), or after ``after_submits`` submits."""

    action: Action
    at: float | None = None
    after_submits: int | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Timeline:
    """Steps, repeated every ``loop`` seconds when given."""

    steps: tuple[TimelineStep, ...] = ()
    loop: float | None = None


DEFAULT_RULE_SET = "default"


@dataclass(frozen=True)
class Scenario:
    """One scenario file, validated."""

    name: str
    description: str = ""
    source: str = "<built-in>"
    seed: int | None = None
    rule_sets: Mapping[str, tuple[Rule, ...]] = field(default_factory=lambda: {DEFAULT_RULE_SET: ()})
    start_rules: str = DEFAULT_RULE_SET
    latency: Distribution = Fixed(0.0)
    receipt: ReceiptSpec = ReceiptSpec()
    throttle: ThrottleSpec | None = ThrottleSpec()
    window: WindowSettings = WindowSettings()
    retry: RetrySettings = RetrySettings()
    limits: Limits = Limits()
    mo: tuple[MOGenerator, ...] = ()
    auto_replies: tuple[AutoReply, ...] = ()
    timeline: Timeline = Timeline()
    #: vendor status names given by the file (name -> value)
    statuses: Mapping[str, int] = field(default_factory=dict)
    #: the judge's thresholds this scenario overrides (threshold name -> number), over the config's
    conformance: Mapping[str, float] = field(default_factory=dict)
