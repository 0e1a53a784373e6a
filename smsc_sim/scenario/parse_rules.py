"""
Reading rules from a scenario file: match conditions, outcomes and receipts.

Every function takes a :class:`~smsc_sim.scenario.source.Cursor` and either
returns a model value or raises a :class:`~smsc_sim.scenario.source.ScenarioError`
at the offending key.  See ``docs/scenarios.md`` for the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from smsc_sim.contracts import AfterReply, Respond
from smsc_sim.scenario.distributions import (
    Distribution,
    check_weights,
    parse_distribution,
    parse_weight,
)
from smsc_sim.scenario.model import COMMANDS, COUNTER_SCOPES, AddressMatch, BitsMatch, Counter, Match, Outcome, Rule
from smsc_sim.scenario.receipts import (
    DEFAULT_ERR,
    FINAL_STATS,
    ID_FORMATS,
    INTERMEDIATE_STATS,
    PER_PART,
    TLV_ID_FORMATS,
    IntermediateReceipt,
    ReceiptOutcome,
    ReceiptSpec,
)
from smsc_sim.scenario.regex import Regex, RegexError
from smsc_sim.scenario.source import Cursor, excerpt, suggest
from smsc_sim.smpp.constants import BindType, CommandStatus, Tag, parse_status


@dataclass
class Context:
    """What parsing one file needs to know beyond the value at hand."""

    #: vendor status names from the file's ``statuses:`` section
    statuses: Mapping[str, int] = field(default_factory=dict)
    #: the scenario's default receipt, which rule receipts start from
    receipt: ReceiptSpec = ReceiptSpec()
    #: the scenario's default latency, which rules without one use
    latency: Distribution | None = None
    #: characters of regular expressions compiled so far (bounded: compiling costs time)
    regex_chars: int = 0
    #: RE2 instructions of the regular expressions compiled so far (bounded: matching costs time)
    regex_program: int = 0
    #: regular expressions compiled so far (bounded: each may hold RE2's max_mem)
    regexes: int = 0


def parse_status_value(cursor: Cursor, ctx: Context) -> int:
    """
    A command_status: a name (``ESME_RTHROTTLED``, ``RTHROTTLED``, a vendor
    name from ``statuses:``) or a number (``0x58``, ``88``, ``0x401``).
    """
    value = cursor.value
    if isinstance(value, str) and value.strip() in ctx.statuses:
        return ctx.statuses[value.strip()]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise cursor.error(f"expected a command_status name or number, got {excerpt(value)}")
    try:
        return parse_status(value)
    except ValueError:
        if isinstance(value, int):
            raise cursor.error(f"status {value} is outside 0..0xFFFFFFFF") from None
        names = [*CommandStatus.__members__, *ctx.statuses]
        hint = suggest(value.strip().upper(), names) or suggest(value.strip(), names)
        raise cursor.error(f"unknown status {excerpt(value)}{hint}") from None


def parse_tag(cursor: Cursor) -> int:
    """A TLV tag: a name from :class:`~smsc_sim.smpp.constants.Tag` or a number 0..0xFFFF."""
    value = cursor.value
    if isinstance(value, str) and not value.strip()[:1].isdigit():
        name = value.strip()
        if name in Tag.__members__:
            return int(Tag[name])
        raise cursor.error(f"unknown TLV {excerpt(name)}" + suggest(name, Tag.__members__))
    return cursor.as_int(0, 0xFFFF)


#: longest regular expression, in characters
MAX_REGEX_CHARS = 1_000
#: most characters of regular expressions in one scenario: compiling one takes about 1 us a
#: character or less, so this keeps a scenario's regexes within a few milliseconds
MAX_REGEX_TOTAL = 5_000
#: most RE2 instructions of the regular expressions of one scenario: matching a text costs at
#: most about 17 ns per octet per instruction (the slowest pattern we could write), so this
#: bounds what one message can cost (see docs/scenarios.md, "Limits")
MAX_REGEX_PROGRAM = 5_000
#: most regular expressions in one scenario: each may grow to RE2's ``max_mem`` (1 MiB) as its automaton
#: caches states, so this bounds a scenario's regexes to 64 MiB; the shipped scenarios have two at most
MAX_REGEXES = 64


def parse_regex(cursor: Cursor, ctx: Context | None = None) -> Regex:
    """
    A regular expression in RE2's syntax, compiled; :data:`MAX_REGEX_CHARS` long at most,
    :data:`MAX_REGEX_TOTAL` characters, :data:`MAX_REGEX_PROGRAM` instructions and :data:`MAX_REGEXES`
    regexes per ``ctx``.
    """
    text = cursor.as_str()
    if len(text) > MAX_REGEX_CHARS:
        raise cursor.error(f"regex of {len(text)} characters; the limit is {MAX_REGEX_CHARS}")
    if ctx is not None:
        ctx.regexes += 1
        if ctx.regexes > MAX_REGEXES:
            raise cursor.error(f"more than {MAX_REGEXES} regexes in the scenario (the limit)")
        ctx.regex_chars += len(text)
        if ctx.regex_chars > MAX_REGEX_TOTAL:
            raise cursor.error(f"more than {MAX_REGEX_TOTAL} characters of regexes in the scenario (the limit)")
    try:
        regex = Regex(text)
    except RegexError as e:
        raise cursor.error(f"bad regex {excerpt(text)}: {e}") from None
    program = regex.program_size + (ctx.regex_program if ctx is not None else 0)
    if program > MAX_REGEX_PROGRAM:
        raise cursor.error(
            f"regexes of {program} RE2 instructions in the scenario; the limit is {MAX_REGEX_PROGRAM}"
            f" (this one has {regex.program_size}; Unicode classes such as \\pL are the large ones)"
        )
    if ctx is not None:
        ctx.regex_program = program
    return regex


def _strings(cursor: Cursor, choices: tuple[str, ...] | None = None) -> frozenset[str]:
    return frozenset(item.as_str(choices) for item in cursor.items())


def parse_address(cursor: Cursor, ctx: Context | None = None) -> AddressMatch:
    """``"4477"``, ``["4477", "4478"]``, ``{prefix: ...}`` or ``{regex: "^44"}``."""
    if cursor.is_mapping():
        fields = cursor.mapping(("prefix", "regex"))
        if len(fields) != 1:
            raise cursor.error("give either prefix or regex")
        if "regex" in fields:
            return AddressMatch(regex=parse_regex(fields["regex"], ctx))
        cursor = fields["prefix"]
    prefixes = tuple(item.as_str() for item in cursor.items())
    if not prefixes:
        raise cursor.error("give at least one prefix")
    return AddressMatch(prefixes=prefixes)


def _parse_bits(cursor: Cursor) -> BitsMatch:
    if cursor.is_mapping():
        fields = cursor.mapping(("mask", "value"), required=("mask", "value"))
        mask = fields["mask"].as_int(0, 0xFF)
        return BitsMatch(mask, frozenset(item.as_int(0, 0xFF) & mask for item in fields["value"].items()))
    return BitsMatch(0xFF, frozenset(item.as_int(0, 0xFF) for item in cursor.items()))


def _parse_counter(cursor: Cursor) -> Counter:
    fields = cursor.mapping(("first", "every", "after", "scope"))
    kinds = [k for k in ("first", "every", "after") if k in fields]
    if len(kinds) != 1:
        raise cursor.error("give exactly one of first, every, after")
    kind = kinds[0]
    n = fields[kind].as_int(1 if kind == "every" else 0)
    scope = fields["scope"].as_str(COUNTER_SCOPES) if "scope" in fields else "account"
    return Counter(kind, n, scope)


_MATCH_KEYS = (
    "command",
    "instance",
    "account",
    "bind_type",
    "source",
    "destination",
    "text",
    "data_coding",
    "esm_class",
    "registered_delivery",
    "parts",
    "tlv",
    "counter",
    "probability",
)


def parse_match(cursor: Cursor, ctx: Context | None = None) -> Match:
    """A ``match:`` mapping (every condition must hold; none given matches everything)."""
    if cursor.value is None:
        return Match()
    f = cursor.mapping(_MATCH_KEYS)
    parts = None
    if "parts" in f:
        if f["parts"].is_mapping():
            bounds = f["parts"].mapping(("min", "max"))
            low = bounds["min"].as_int(1) if "min" in bounds else 1
            high = bounds["max"].as_int(1) if "max" in bounds else 255
            if high < low:
                raise f["parts"].error(f"max {high} is below min {low}")
            parts = (low, high)
        else:
            n = f["parts"].as_int(1)
            parts = (n, n)
    present: frozenset[int] = frozenset()
    absent: frozenset[int] = frozenset()
    if "tlv" in f:
        if f["tlv"].is_mapping():
            tlv = f["tlv"].mapping(("present", "absent"))
            present = frozenset(parse_tag(t) for t in tlv["present"].items()) if "present" in tlv else present
            absent = frozenset(parse_tag(t) for t in tlv["absent"].items()) if "absent" in tlv else absent
        else:
            present = frozenset(parse_tag(t) for t in f["tlv"].items())
    bind_types = None
    if "bind_type" in f:
        bind_types = frozenset(BindType(b) for b in _strings(f["bind_type"], tuple(BindType.__members__)))
    return Match(
        commands=_strings(f["command"], COMMANDS) if "command" in f else None,
        instances=_strings(f["instance"]) if "instance" in f else None,
        accounts=_strings(f["account"]) if "account" in f else None,
        bind_types=bind_types,
        source=parse_address(f["source"], ctx) if "source" in f else None,
        destination=parse_address(f["destination"], ctx) if "destination" in f else None,
        text=parse_regex(f["text"], ctx) if "text" in f else None,
        data_coding=frozenset(i.as_int(0, 0xFF) for i in f["data_coding"].items()) if "data_coding" in f else None,
        esm_class=_parse_bits(f["esm_class"]) if "esm_class" in f else None,
        registered_delivery=_parse_bits(f["registered_delivery"]) if "registered_delivery" in f else None,
        parts=parts,
        tlv_present=present,
        tlv_absent=absent,
        counter=_parse_counter(f["counter"]) if "counter" in f else None,
        probability=f["probability"].as_float(0.0, 1.0) if "probability" in f else None,
    )


def parse_network_error_code(cursor: Cursor) -> bytes:
    """``"03 00 0B"`` (three hex octets) or ``{type: 3, code: 11}``."""
    if cursor.is_mapping():
        fields = cursor.mapping(("type", "code"), required=("type", "code"))
        return bytes([fields["type"].as_int(0, 0xFF)]) + fields["code"].as_int(0, 0xFFFF).to_bytes(2, "big")
    text = cursor.as_str()
    try:
        octets = bytes.fromhex(text)
    except ValueError:
        raise cursor.error(
            f"expected three hex octets such as '03 00 0B' or {{type: 3, code: 11}}, got {excerpt(text)}"
        ) from None
    if len(octets) != 3:
        raise cursor.error(f"network_error_code has {len(octets)} octets, must be 3 (type, then a 2-octet code)")
    return octets


def _parse_outcome_entry(cursor: Cursor, weight: float, fields: dict[str, Cursor]) -> ReceiptOutcome:
    stat = fields["stat"].as_str(FINAL_STATS) if "stat" in fields else "DELIVRD"
    err = fields["err"].as_int(0, 999) if "err" in fields else DEFAULT_ERR[stat]
    nec = parse_network_error_code(fields["network_error_code"]) if "network_error_code" in fields else None
    return ReceiptOutcome(weight, stat, err, nec)


_RECEIPT_KEYS = (
    "stat",
    "err",
    "outcomes",
    "delay",
    "intermediate",
    "duplicate",
    "id_format",
    "tlv_id_format",
    "network_error_code",
    "per_part",
)


def parse_receipt(cursor: Cursor, base: ReceiptSpec) -> ReceiptSpec:
    """
    A ``receipt:`` value: ``none`` (or ``false``) for no receipt, or a
    mapping whose keys replace those of ``base``.
    """
    if cursor.value is False or cursor.value == "none":
        return replace(base, none=True)
    f = cursor.mapping(_RECEIPT_KEYS)
    changes: dict[str, object] = {"none": False}
    if "outcomes" in f:
        if "stat" in f or "err" in f:
            raise f["outcomes"].error("give either stat/err or outcomes, not both")
        outcomes = []
        for entry in f["outcomes"].as_list():
            fields = entry.mapping(("weight", "stat", "err", "network_error_code"), required=("weight",))
            outcomes.append(_parse_outcome_entry(entry, parse_weight(fields["weight"]), fields))
        if not outcomes:
            raise f["outcomes"].error("give at least one outcome")
        check_weights(f["outcomes"], [o.weight for o in outcomes])
        changes["outcomes"] = tuple(outcomes)
    elif "stat" in f or "err" in f:
        fields = {k: f[k] for k in ("stat", "err") if k in f}
        if "stat" not in fields and len(base.outcomes) == 1:
            fields["stat"] = Cursor(base.outcomes[0].stat, cursor.file, cursor.path, cursor.line)
        changes["outcomes"] = (_parse_outcome_entry(cursor, 1.0, fields),)
    if "delay" in f:
        changes["delay"] = parse_distribution(f["delay"], "delay")
    if "intermediate" in f:
        steps = []
        for entry in f["intermediate"].as_list():
            fields = entry.mapping(("stat", "delay"), required=("stat", "delay"))
            stat = fields["stat"].as_str(INTERMEDIATE_STATS)
            steps.append(IntermediateReceipt(stat, parse_distribution(fields["delay"])))
        changes["intermediate"] = tuple(steps)
    if "duplicate" in f:
        value = f["duplicate"].value
        changes["duplicate"] = (1.0 if value else 0.0) if isinstance(value, bool) else f["duplicate"].as_float(0.0, 1.0)
    if "id_format" in f:
        changes["id_format"] = f["id_format"].as_str(ID_FORMATS)
    if "tlv_id_format" in f:
        changes["tlv_id_format"] = f["tlv_id_format"].as_str(TLV_ID_FORMATS)
    if "network_error_code" in f:
        changes["network_error_code"] = parse_network_error_code(f["network_error_code"])
    if "per_part" in f:
        changes["per_part"] = f["per_part"].as_str(PER_PART)
    return replace(base, **changes)  # type: ignore[arg-type]


_RULE_KEYS = ("name", "match", "status", "respond", "then", "latency", "receipt", "absent")


def parse_absent(cursor: Cursor) -> Distribution:
    """``absent: {hold: DURATION or distribution}``: how long the handset stays unavailable."""
    fields = cursor.mapping(("hold",), required=("hold",))
    return parse_distribution(fields["hold"], "hold")


def parse_rule(cursor: Cursor, ctx: Context) -> Rule:
    """One rule of a rule set."""
    f = cursor.mapping(_RULE_KEYS)
    respond = Respond(f["respond"].as_str(tuple(Respond.__members__))) if "respond" in f else Respond.normal
    if "status" in f:
        status = parse_status_value(f["status"], ctx)
    elif respond in (Respond.generic_nack, Respond.generic_nack_no_seq):
        # a generic_nack says what was wrong with the request; "invalid command id" is the usual one
        status = int(CommandStatus.ESME_RINVCMDID)
    else:
        status = 0
    then = AfterReply(f["then"].as_str(tuple(AfterReply.__members__))) if "then" in f else AfterReply.nothing
    if "latency" in f:
        latency = parse_distribution(f["latency"], "latency")
    else:
        latency = ctx.latency if ctx.latency is not None else Outcome().latency
    receipt = parse_receipt(f["receipt"], ctx.receipt) if "receipt" in f else None
    name = f["name"].as_str() if "name" in f else cursor.path
    match = parse_match(f["match"], ctx) if "match" in f else Match()
    absent = None
    if "absent" in f:
        if status != 0 or respond is not Respond.normal:
            raise f["absent"].error("absent holds an accepted message: give no status and no respond with it")
        absent = parse_absent(f["absent"])
    return Rule(name, match, Outcome(status, respond, then, latency, receipt, absent), cursor.line)


def parse_rules(cursor: Cursor, ctx: Context) -> tuple[Rule, ...]:
    """A list of rules (a rule set)."""
    if cursor.value is None:
        return ()
    return tuple(parse_rule(item, ctx) for item in cursor.as_list())
