"""
Finding and loading scenario files.

A scenario is chosen by name (a shipped file, ``scenarios/<name>.yaml`` in
the source tree or ``smsc_sim/scenario/shipped/<name>.yaml`` when installed)
or by path.  Loading is YAML safe loading with line numbers; every mistake is
a :class:`~smsc_sim.scenario.source.ScenarioError` naming the file, the line,
the key path and what would be right.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import smsc_sim
import smsc_sim.scenario
from smsc_sim.scenario.distributions import parse_distribution
from smsc_sim.scenario.model import DEFAULT_RULE_SET, Rule, Scenario, Timeline
from smsc_sim.scenario.parse_program import (
    parse_auto_reply,
    parse_limits,
    parse_mo,
    parse_retry,
    parse_throttle,
    parse_timeline,
    parse_window,
)
from smsc_sim.scenario.parse_rules import Context, parse_receipt, parse_rules
from smsc_sim.scenario.receipts import ReceiptSpec
from smsc_sim.scenario.source import Cursor, ScenarioError, excerpt, load_yaml
from smsc_sim.smpp.constants import VENDOR_STATUS_MAX, VENDOR_STATUS_MIN, CommandStatus
from smsc_sim.yaml_source import YAMLSourceError, read_text

__all__ = [
    "ScenarioError",
    "ScenarioRefused",
    "find_scenario",
    "load_scenario",
    "parse_scenario",
    "scenario_dirs",
    "shipped_scenarios",
]

_SUFFIXES = (".yaml", ".yml")
#: longest scenario name or path the API looks up
_MAX_NAME = 1024


def scenario_dirs() -> tuple[Path, ...]:
    """Where shipped scenarios are looked for: the source tree's ``scenarios/``, then the package data."""
    return (
        Path(smsc_sim.__file__).resolve().parent.parent / "scenarios",
        Path(smsc_sim.scenario.__file__).resolve().parent / "shipped",
    )


def shipped_scenarios() -> list[str]:
    """The names of every shipped scenario, sorted."""
    names = {p.stem for d in scenario_dirs() if d.is_dir() for p in d.iterdir() if p.suffix in _SUFFIXES}
    return sorted(names)


class ScenarioRefused(ScenarioError):
    """A scenario path outside the shipped set and the operator's ``scenario_dirs`` (the API answers 403)."""


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; a name too long or holding NUL is simply not one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _inside(path: Path, directories: Sequence[Path]) -> bool:
    return any(path.is_relative_to(directory) for directory in directories)


def find_scenario(name_or_path: str | Path, allowed_dirs: Sequence[str | Path] | None = None) -> Path:
    """
    The file of a scenario.

    :param name_or_path: a shipped scenario's name (``default``,
        ``throttling``...) or the path of a YAML file.
    :param allowed_dirs: ``None`` (the operator's own ``--scenario``): any
        path.  Otherwise the only directories, besides the shipped ones, a
        scenario may come from: a name is also looked up in them, a relative
        path is taken relative to each, and every path is resolved (``..``,
        symbolic links) and must lie inside one of them.
    :raises ScenarioRefused: for a path outside those directories.
    :raises ScenarioError: when there is no such scenario or file.
    """
    text = str(name_or_path)
    if allowed_dirs is None:  # the operator's own option: any file, shown as typed
        path = Path(text).expanduser()
        if isinstance(name_or_path, Path) or "/" in text or "\\" in text or path.suffix in _SUFFIXES or _is_file(path):
            if _is_file(path):
                return path
            raise ScenarioError(text, 0, "", "no such scenario file")
        return _find_by_name(text, scenario_dirs())
    shown = excerpt(text)  # a name from the API is quoted only as a short excerpt
    if "\x00" in text or len(text) > _MAX_NAME:
        raise ScenarioError(shown, 0, "", "not a scenario name or path")
    path = Path(text)
    roots = tuple(Path(d).resolve() for d in (*scenario_dirs(), *allowed_dirs))
    if not (isinstance(name_or_path, Path) or "/" in text or "\\" in text or path.suffix in _SUFFIXES):
        found = _find_by_name(text, roots)
        if _inside(found.resolve(), roots):  # a link inside a directory may point out of it
            return found
        raise _refused(shown, allowed_dirs)
    # a relative path is tried from the working directory and from each root; only what
    # resolves (after "..", symbolic links) inside a root may be read
    bases = () if path.is_absolute() else (Path.cwd(), *roots)
    candidates = [path.resolve()] if path.is_absolute() else [(base / path).resolve() for base in bases]
    inside = [c for c in candidates if _inside(c, roots)]
    for candidate in inside:
        if _is_file(candidate):
            return candidate
    if not inside or any(_is_file(c) for c in candidates if c not in inside):
        raise _refused(shown, allowed_dirs)
    raise ScenarioError(shown, 0, "", "no such scenario file in the shipped set or scenario_dirs")


def _find_by_name(name: str, directories: Sequence[Path]) -> Path:
    for directory in directories:
        for suffix in _SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if _is_file(candidate):
                return candidate
    shipped = ", ".join(shipped_scenarios()) or "none"
    raise ScenarioError(excerpt(name), 0, "", f"no scenario named {excerpt(name)}; shipped: {shipped}")


def _refused(shown: str, allowed_dirs: Sequence[str | Path]) -> ScenarioRefused:
    dirs = ", ".join(str(d) for d in allowed_dirs) or "none configured"
    return ScenarioRefused(
        shown, 0, "", f"refused: scenarios load only from the shipped set or scenario_dirs: {dirs}"
    )


def load_scenario(name_or_path: str | Path, allowed_dirs: Sequence[str | Path] | None = None) -> Scenario:
    """
    Find, read and validate a scenario.

    The file is read within :data:`smsc_sim.yaml_source.MAX_BYTES` (its size
    is checked first) and parsed within the YAML bounds of that module.

    :param allowed_dirs: as for :func:`find_scenario`.
    :raises ScenarioError: when it cannot be found, read or used.
    """
    path = find_scenario(name_or_path, allowed_dirs)
    try:
        text = read_text(path)
    except YAMLSourceError as e:
        raise ScenarioError(e.file, e.line, "", e.problem) from None
    return parse_scenario(text, str(path), name=path.stem)


_TOP_KEYS = (
    "name",
    "description",
    "seed",
    "statuses",
    "latency",
    "receipt",
    "rules",
    "rule_sets",
    "start_rules",
    "throttle",
    "window",
    "deliver_retry",
    "limits",
    "mo",
    "auto_replies",
    "timeline",
    "conformance",
)


def _parse_statuses(cursor: Cursor) -> dict[str, int]:
    result: dict[str, int] = {}
    for name, value in cursor.entries("status names to numbers").items():
        if not name.isidentifier():
            raise value.error(f"status name {excerpt(name)} must be a word such as VENDOR_RBLOCKED")
        if name in CommandStatus.__members__ or f"ESME_{name}" in CommandStatus.__members__:
            raise value.error(f"{excerpt(name)} is already a standard command_status")
        number = value.as_int()
        if not VENDOR_STATUS_MIN <= number <= VENDOR_STATUS_MAX:
            raise value.error(
                f"0x{number:X} is not a vendor status; "
                f"vendor statuses are 0x{VENDOR_STATUS_MIN:X}-0x{VENDOR_STATUS_MAX:X}"
            )
        result[name] = number
    return result


def _parse_conformance(cursor: Cursor) -> dict[str, float]:
    """``conformance: {failover_window: 90}``: the judge's thresholds, checked by the judge's own rules."""
    from smsc_sim.conformance.thresholds import ThresholdError, Thresholds

    values: dict[str, float] = {}
    for key, value in cursor.entries("threshold names to numbers").items():
        try:
            Thresholds.from_mapping({key: value.value})
        except ThresholdError as e:
            _, _, problem = str(e).partition(": ")  # "conformance.KEY: problem": the cursor names the key
            raise value.error(problem) from None
        values[key] = value.value
    return values


def parse_scenario(text: str, file: str = "<string>", name: str | None = None) -> Scenario:
    """
    Validate a scenario given as YAML text.

    :param file: the file name used in messages.
    :param name: the scenario's name when the file gives none.
    :raises ScenarioError: on the first mistake.
    """
    data = load_yaml(text, file)
    root = Cursor(data if data is not None else {}, file, "", 1)
    f = root.mapping(_TOP_KEYS)
    ctx = Context()
    if "statuses" in f:
        ctx.statuses = _parse_statuses(f["statuses"])
    latency = parse_distribution(f["latency"], "latency") if "latency" in f else parse_distribution(Cursor(0, file))
    ctx.latency = latency
    receipt = parse_receipt(f["receipt"], ReceiptSpec()) if "receipt" in f else ReceiptSpec()
    ctx.receipt = receipt
    rule_sets: dict[str, tuple[Rule, ...]] = {}
    if "rule_sets" in f:
        for set_name, rules in f["rule_sets"].entries("rule set names to lists of rules").items():
            rule_sets[set_name] = parse_rules(rules, ctx)
    if "rules" in f:
        if DEFAULT_RULE_SET in rule_sets:
            raise f["rules"].error(
                f"rule set {DEFAULT_RULE_SET!r} is given twice (rules and rule_sets.{DEFAULT_RULE_SET})"
            )
        rule_sets = {DEFAULT_RULE_SET: parse_rules(f["rules"], ctx), **rule_sets}
    if not rule_sets:
        rule_sets[DEFAULT_RULE_SET] = ()
    start_rules = next(iter(rule_sets)) if DEFAULT_RULE_SET not in rule_sets else DEFAULT_RULE_SET
    if "start_rules" in f:
        start_rules = f["start_rules"].as_str(tuple(rule_sets))
    defaults = Scenario(name="")
    return Scenario(
        name=f["name"].as_str() if "name" in f else (name or Path(file).stem),
        description=f["description"].as_str().strip() if "description" in f else "",
        source=file,
        seed=f["seed"].as_int() if "seed" in f else None,
        rule_sets=rule_sets,
        start_rules=start_rules,
        latency=latency,
        receipt=receipt,
        throttle=parse_throttle(f["throttle"], ctx) if "throttle" in f else defaults.throttle,
        window=parse_window(f["window"], ctx) if "window" in f else defaults.window,
        retry=parse_retry(f["deliver_retry"], ctx) if "deliver_retry" in f else defaults.retry,
        limits=parse_limits(f["limits"]) if "limits" in f else defaults.limits,
        mo=tuple(parse_mo(item) for item in f["mo"].as_list()) if "mo" in f else (),
        auto_replies=(
            tuple(parse_auto_reply(item, ctx) for item in f["auto_replies"].as_list()) if "auto_replies" in f else ()
        ),
        timeline=parse_timeline(f["timeline"], ctx, tuple(rule_sets)) if "timeline" in f else Timeline(),
        statuses=dict(ctx.statuses),
        conformance=_parse_conformance(f["conformance"]) if "conformance" in f else {},
    )
