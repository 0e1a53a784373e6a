"""
Reading the non-rule sections of a scenario file: throttle, window,
deliver_sm retries, limits, MO generators, auto-replies and the timeline.
"""

from __future__ import annotations

import string

from smsc_sim.modes import OUTAGE_MODES, SPLIT_MODES, OutageMode, SplitMode
from smsc_sim.scenario.distributions import parse_distribution, parse_duration
from smsc_sim.scenario.model import (
    THROTTLE_MODELS,
    THROTTLE_SCOPES,
    Action,
    AutoReply,
    EndOutageAction,
    Limits,
    MOGenerator,
    OutageAction,
    RetrySettings,
    ThrottleAction,
    ThrottleSpec,
    Timeline,
    TimelineStep,
    UseRulesAction,
    WindowSettings,
)
from smsc_sim.scenario.parse_rules import Context, parse_match, parse_status_value
from smsc_sim.scenario.source import Cursor, ScenarioError, excerpt, suggest

_OFF = (False, "off", "none")


def parse_throttle(cursor: Cursor, ctx: Context) -> ThrottleSpec | None:
    """``throttle: off`` or a mapping of rate, burst, scope, status, penalty, model."""
    if cursor.value in _OFF:
        return None
    f = cursor.mapping(("rate", "burst", "scope", "status", "penalty", "model"))
    spec = ThrottleSpec(
        rate=f["rate"].as_float(0.0) if "rate" in f else None,
        burst=f["burst"].as_float(0.0) if "burst" in f else None,
        scope=f["scope"].as_str(THROTTLE_SCOPES) if "scope" in f else "account",
        status=parse_status_value(f["status"], ctx) if "status" in f else ThrottleSpec().status,
        penalty=parse_duration(f["penalty"], "penalty") if "penalty" in f else 0.0,
        model=f["model"].as_str(THROTTLE_MODELS) if "model" in f else "bucket",
    )
    if spec.rate is None and spec.customised:
        # the core applies either the account's configured bucket or one the scenario describes in full
        custom = [k for k in ("burst", "scope", "status", "penalty", "model") if k in f]
        verb = "needs" if len(custom) == 1 else "need"
        raise cursor.error(f"{', '.join(custom)} {verb} a rate (without one, each account's throughput applies)")
    return spec


def parse_window(cursor: Cursor, ctx: Context) -> WindowSettings:
    """``window: {size: 10, status: ESME_RMSGQFUL, outbound: 10}``."""
    f = cursor.mapping(("size", "status", "outbound"))
    return WindowSettings(
        size=f["size"].as_int(1) if "size" in f else None,
        status=parse_status_value(f["status"], ctx) if "status" in f else None,
        outbound=f["outbound"].as_int(1) if "outbound" in f else None,
    )


def parse_retry(cursor: Cursor, ctx: Context) -> RetrySettings:
    """``deliver_retry: {temporary: [...], backoff: 5s, factor: 2, max_backoff: 15m, max_attempts: 5}``."""
    f = cursor.mapping(("temporary", "backoff", "factor", "max_backoff", "max_attempts"))
    base = RetrySettings()
    return RetrySettings(
        temporary=frozenset(parse_status_value(s, ctx) for s in f["temporary"].items())
        if "temporary" in f
        else base.temporary,
        backoff=parse_duration(f["backoff"], "backoff") if "backoff" in f else None,
        factor=f["factor"].as_float(1.0) if "factor" in f else base.factor,
        max_backoff=parse_duration(f["max_backoff"], "backoff") if "max_backoff" in f else None,
        max_attempts=f["max_attempts"].as_int(1) if "max_attempts" in f else None,
    )


def parse_limits(cursor: Cursor) -> Limits:
    """``limits: {max_binds: 10, throughput: 100}``."""
    f = cursor.mapping(("max_binds", "throughput"))
    return Limits(
        max_binds=f["max_binds"].as_int(1) if "max_binds" in f else None,
        throughput=f["throughput"].as_float(0.0) if "throughput" in f else None,
    )


def check_template(cursor: Cursor, fields: tuple[str, ...]) -> str:
    """A text template whose ``{placeholders}`` are all among ``fields``."""
    text = cursor.as_str()
    try:
        for _, name, _, _ in string.Formatter().parse(text):
            if name is not None and name not in fields:
                shown = name if len(name) <= 40 else name[:40] + "..."
                raise cursor.error(
                    f"unknown placeholder {{{shown}}}" + suggest(name, fields) + f"; available: {', '.join(fields)}"
                )
        text.format_map({name: "" for name in fields})
    except ScenarioError:
        raise
    except (ValueError, IndexError) as e:
        raise cursor.error(
            f"bad text template {excerpt(text)}: {excerpt(str(e))} (write {{{{ and }}}} for literal braces)"
        ) from None
    return text


MO_FIELDS = ("n", "name")
REPLY_FIELDS = ("text", "source", "destination", "account", "message_id")

_MO_KEYS = (
    "name",
    "account",
    "source",
    "destination",
    "text",
    "texts",
    "pick",
    "data_coding",
    "split",
    "length",
    "at",
    "rate",
    "arrivals",
    "start",
    "stop",
    "count",
)


def parse_mo(cursor: Cursor) -> MOGenerator:
    """One MO generator."""
    f = cursor.mapping(_MO_KEYS, required=("account", "source", "destination"))
    if ("text" in f) == ("texts" in f):
        raise cursor.error("give either text or texts")
    texts = tuple(check_template(t, MO_FIELDS) for t in (f["texts"].as_list() if "texts" in f else [f["text"]]))
    if not texts:
        raise f["texts"].error("give at least one text")
    if ("at" in f) == ("rate" in f):
        raise cursor.error("give either at (times) or rate (messages per second)")
    rate = None
    if "rate" in f:
        rate = f["rate"].as_float()
        if rate <= 0:
            raise f["rate"].error(f"rate must be above 0, got {rate:g}")
    return MOGenerator(
        name=f["name"].as_str() if "name" in f else cursor.path,
        account=f["account"].as_str(),
        source=f["source"].as_str(),
        destination=f["destination"].as_str(),
        texts=texts,
        pick=f["pick"].as_str(("cycle", "random")) if "pick" in f else "cycle",
        data_coding=f["data_coding"].as_int(0, 0xFF) if "data_coding" in f else None,
        split=f["split"].as_str(SPLIT_MODES) if "split" in f else SplitMode.UDH8.value,
        length=f["length"].as_int(1) if "length" in f else None,
        at=tuple(sorted(parse_duration(t, "time") for t in f["at"].items())) if "at" in f else (),
        rate=rate,
        arrivals=f["arrivals"].as_str(("fixed", "poisson")) if "arrivals" in f else "fixed",
        start=parse_duration(f["start"], "time") if "start" in f else 0.0,
        stop=parse_duration(f["stop"], "time") if "stop" in f else None,
        count=f["count"].as_int(1) if "count" in f else None,
    )


def parse_auto_reply(cursor: Cursor, ctx: Context | None = None) -> AutoReply:
    """One auto-reply."""
    f = cursor.mapping(("name", "match", "text", "delay", "data_coding", "split"), required=("text",))
    return AutoReply(
        name=f["name"].as_str() if "name" in f else cursor.path,
        match=parse_match(f["match"], ctx) if "match" in f else parse_match(Cursor(None, cursor.file)),
        text=check_template(f["text"], REPLY_FIELDS),
        delay=parse_distribution(f["delay"], "delay") if "delay" in f else parse_distribution(Cursor(0, cursor.file)),
        data_coding=f["data_coding"].as_int(0, 0xFF) if "data_coding" in f else None,
        split=f["split"].as_str(SPLIT_MODES) if "split" in f else SplitMode.UDH8.value,
    )


def _parse_outage(cursor: Cursor, ctx: Context) -> OutageAction:
    f = cursor.mapping(("instance", "mode", "duration", "status", "latency"), required=("instance", "mode"))
    mode = f["mode"].as_str(OUTAGE_MODES)
    if "status" in f and mode != OutageMode.REJECT_BINDS:
        raise f["status"].error("status is only for mode reject-binds")
    if "latency" in f and mode != OutageMode.SLOW:
        raise f["latency"].error("latency is only for mode slow")
    if mode == OutageMode.SLOW and "latency" not in f:
        raise cursor.error("mode slow needs a latency")
    return OutageAction(
        instance=f["instance"].as_str(),
        mode=mode,
        duration=parse_duration(f["duration"], "duration") if "duration" in f else None,
        status=parse_status_value(f["status"], ctx) if "status" in f else None,
        latency=parse_duration(f["latency"], "latency") if "latency" in f else None,
    )


_ACTIONS = ("outage", "end_outage", "throttle", "use_rules")


def parse_step(cursor: Cursor, ctx: Context, rule_sets: tuple[str, ...]) -> TimelineStep:
    """One timeline step: when (``at`` or ``after_submits``) and one action."""
    f = cursor.mapping(("at", "after_submits", "note", *_ACTIONS))
    if ("at" in f) == ("after_submits" in f):
        raise cursor.error("give either at (seconds) or after_submits (a count)")
    actions = [k for k in _ACTIONS if k in f]
    if len(actions) != 1:
        raise cursor.error(f"give exactly one action of {', '.join(_ACTIONS)}")
    kind = actions[0]
    arg = f[kind]
    action: Action
    if kind == "outage":
        action = _parse_outage(arg, ctx)
    elif kind == "end_outage":
        action = EndOutageAction(arg.as_str())
    elif kind == "throttle":
        action = ThrottleAction(parse_throttle(arg, ctx))
    else:
        name = arg.as_str()
        if name not in rule_sets:
            hint = suggest(name, rule_sets)
            raise arg.error(f"unknown rule set {excerpt(name)}{hint}; defined: {', '.join(rule_sets)}")
        action = UseRulesAction(name)
    return TimelineStep(
        action=action,
        at=parse_duration(f["at"], "time") if "at" in f else None,
        after_submits=f["after_submits"].as_int(1) if "after_submits" in f else None,
        line=cursor.line,
    )


def parse_timeline(cursor: Cursor, ctx: Context, rule_sets: tuple[str, ...]) -> Timeline:
    """``timeline: [steps]`` or ``timeline: {loop: 300s, steps: [...]}``."""
    if cursor.is_mapping():
        f = cursor.mapping(("loop", "steps"), required=("steps",))
        loop = parse_duration(f["loop"], "loop") if "loop" in f else None
        steps_cursor = f["steps"]
    else:
        loop, steps_cursor = None, cursor
    steps = tuple(parse_step(item, ctx, rule_sets) for item in steps_cursor.as_list())
    if loop is not None:
        if loop <= 0:
            raise f["loop"].error("loop must be above 0")
        for item, step in zip(steps_cursor.items(), steps):
            if step.at is not None and step.at >= loop:
                raise item.error(f"at {step.at:g} is not within the loop of {loop:g} s")
    return Timeline(tuple(sorted(steps, key=lambda s: (s.at is None, s.at or 0.0))), loop)
