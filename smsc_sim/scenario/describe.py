"""
JSON-able summaries of scenario values, for the inspection API.
"""

from __future__ import annotations

from typing import Any

from smsc_sim.scenario.model import (
    AddressMatch,
    BitsMatch,
    EndOutageAction,
    Match,
    OutageAction,
    Rule,
    Scenario,
    ThrottleAction,
    ThrottleSpec,
    TimelineStep,
    UseRulesAction,
)
from smsc_sim.smpp.constants import Tag, status_name


def _status(value: int, names: dict[int, str]) -> dict[str, Any]:
    return {"value": value, "name": names.get(value) or status_name(value)}


def _address(match: AddressMatch) -> Any:
    if match.regex is not None:
        return {"regex": match.regex.pattern}
    return {"prefix": list(match.prefixes)}


def _bits(match: BitsMatch) -> Any:
    return {"mask": match.mask, "value": sorted(match.values)}


def _tag(tag: int) -> str | int:
    try:
        return Tag(tag).name
    except ValueError:
        return tag


def describe_match(match: Match) -> dict[str, Any]:
    """The conditions of a match, only those given."""
    result: dict[str, Any] = {}
    for key in ("commands", "instances", "accounts"):
        value = getattr(match, key)
        if value is not None:
            result[key] = sorted(value)
    if match.bind_types is not None:
        result["bind_types"] = sorted(b.value for b in match.bind_types)
    if match.source is not None:
        result["source"] = _address(match.source)
    if match.destination is not None:
        result["destination"] = _address(match.destination)
    if match.text is not None:
        result["text"] = match.text.pattern
    if match.data_coding is not None:
        result["data_coding"] = sorted(match.data_coding)
    if match.esm_class is not None:
        result["esm_class"] = _bits(match.esm_class)
    if match.registered_delivery is not None:
        result["registered_delivery"] = _bits(match.registered_delivery)
    if match.parts is not None:
        result["parts"] = {"min": match.parts[0], "max": match.parts[1]}
    if match.tlv_present:
        result["tlv_present"] = sorted(map(_tag, match.tlv_present), key=str)
    if match.tlv_absent:
        result["tlv_absent"] = sorted(map(_tag, match.tlv_absent), key=str)
    if match.counter is not None:
        result["counter"] = {match.counter.kind: match.counter.n, "scope": match.counter.scope}
    if match.probability is not None:
        result["probability"] = match.probability
    return result


def describe_rule(rule: Rule, names: dict[int, str] | None = None) -> dict[str, Any]:
    """A rule's name, line, conditions and outcome."""
    outcome = rule.outcome
    view = {
        "name": rule.name,
        "line": rule.line,
        "match": describe_match(rule.match),
        "status": _status(outcome.status, names or {}),
        "respond": outcome.respond.value,
        "then": outcome.then.value,
        "latency": outcome.latency.describe(),
        "receipt": outcome.receipt.describe() if outcome.receipt is not None else None,
    }
    if outcome.absent is not None:  # only where a rule has it: the views of other rules stay as they were
        view["absent"] = {"hold": outcome.absent.describe()}
    return view


def describe_throttle(throttle: ThrottleSpec | None) -> dict[str, Any] | None:
    """The throttle settings, or ``None`` when off."""
    return throttle.describe() if throttle is not None else None


def describe_step(step: TimelineStep) -> dict[str, Any]:
    """When a timeline step runs and what it does."""
    result: dict[str, Any] = {"at": step.at} if step.at is not None else {"after_submits": step.after_submits}
    action = step.action
    if isinstance(action, OutageAction):
        result["outage"] = {k: v for k, v in vars_of(action).items() if v is not None}
    elif isinstance(action, EndOutageAction):
        result["end_outage"] = action.instance
    elif isinstance(action, ThrottleAction):
        result["throttle"] = describe_throttle(action.spec)
    elif isinstance(action, UseRulesAction):
        result["use_rules"] = action.rule_set
    return result


def vars_of(value: Any) -> dict[str, Any]:
    """The fields of a slotted dataclass."""
    return {name: getattr(value, name) for name in value.__dataclass_fields__}


def describe_scenario(scenario: Scenario, throttle: ThrottleSpec | None) -> dict[str, Any]:
    """Everything about a scenario that does not change while it runs, plus the current throttle."""
    names = {value: name for name, value in scenario.statuses.items()}
    return {
        "name": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "rule_sets": {name: [describe_rule(r, names) for r in rules] for name, rules in scenario.rule_sets.items()},
        "latency": scenario.latency.describe(),
        "receipt": scenario.receipt.describe(),
        "throttle": describe_throttle(throttle),
        "window": vars_of(scenario.window),
        "deliver_retry": {**vars_of(scenario.retry), "temporary": sorted(scenario.retry.temporary)},
        "limits": vars_of(scenario.limits),
        "statuses": dict(scenario.statuses),
        "mo": [
            {"name": g.name, "account": g.account, "rate": g.rate, "at": list(g.at), "count": g.count}
            for g in scenario.mo
        ],
        "timeline": {"loop": scenario.timeline.loop, "steps": [describe_step(s) for s in scenario.timeline.steps]},
    }
