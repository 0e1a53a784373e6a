"""
Read the YAML configuration file into a validated :class:`~smsc_sim.config.Config`.

The file is parsed with the line of every value kept, so that each mistake
names ``FILE:LINE``; the values are then built into the settings
dataclasses over the embedded default and checked by
:mod:`smsc_sim.config_checks`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Sequence
from typing import Any

import yaml

from smsc_sim.config import (
    AccountSettings,
    Config,
    CoreSettings,
    InstanceSettings,
    LimitSettings,
    OutbindSettings,
    SessionSettings,
    default_config,
)
from smsc_sim.config_checks import (
    ConfigError,
    check_type,
    check_unique,
    check_value,
    fail,
    show,
)
from smsc_sim.core.billing import parse_money
from smsc_sim.yaml_source import YAMLSourceError, excerpt, load, read_text

__all__ = ["load_file"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclasses.dataclass(frozen=True)
class _Node:
    """A YAML value with the line it starts on (1-based)."""

    value: Any
    line: int


def load_file(path: str) -> Config:
    """Read, parse and validate one YAML file over the embedded default, within the YAML bounds."""
    try:
        text = read_text(path, what="the configuration file")
        root = load(text, path, lambda loader, node: _to_tree(loader, node, path))
    except YAMLSourceError as e:
        raise ConfigError(str(e)) from None
    tree = _Node({}, 1) if root is None else root
    if not isinstance(tree.value, dict):
        fail(f"{path}:{tree.line}", "(top level)", "not a mapping", "keys such as instances, accounts, session, core")
    base = dataclasses.replace(default_config(), source=path)
    config: Config = _build(Config, tree, "", path, base, exclude=("source",))
    return config


def _to_tree(loader: yaml.SafeLoader, node: yaml.Node, path: str) -> _Node:
    """Turn a composed YAML node into :class:`_Node` values that keep line numbers."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key, key_line = loader.construct_object(key_node), key_node.start_mark.line + 1
            if not isinstance(key, str):
                fail(f"{path}:{key_line}", excerpt(key), "keys must be strings")
            if key in seen:
                fail(f"{path}:{key_line}", key, f"duplicate key (first on line {seen[key]})")
            seen[key] = key_line
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor); later keys win
        mapping: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            mapping[loader.construct_object(key_node)] = _to_tree(loader, value_node, path)
        return _Node(mapping, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_to_tree(loader, item, path) for item in node.value], line)
    return _Node(loader.construct_object(node, deep=True), line)


def _join(path: str, key: str) -> str:
    """The dotted key path of ``key`` under ``path``."""
    return f"{path}.{key}" if path else key


def _build(cls: type, node: _Node, path: str, source: str, base: Any, exclude: Sequence[str] = ()) -> Any:
    """Build a settings dataclass from a mapping node, over ``base`` (or from scratch if ``None``)."""
    where = f"{source}:{node.line}"
    if not isinstance(node.value, dict):
        fail(where, path or "(top level)", f"not a mapping: {show(node.value)}", f"a mapping of {cls.__name__} keys")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    values: dict[str, Any] = {}
    for key, child in node.value.items():
        if cls is Config and key.startswith("x-"):
            continue  # free top-level keys, as in compose files: a home for YAML anchors
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f", did you mean '{close[0]}'?" if close else ""
            fail(f"{source}:{child.line}", _join(path, key), f"unknown key{hint}", "one of " + ", ".join(names))
        values[key] = _convert(cls, key, hints[key], child, _join(path, key), source)
    if base is not None:
        return dataclasses.replace(base, **values)
    if cls is InstanceSettings and "name" in values:
        # as in the embedded default: alone, an instance is its own cluster and names itself
        values.setdefault("cluster", values["name"])
        if len(values["name"]) <= 15:
            values.setdefault("system_id", values["name"])
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        fail(where, path, "missing key " + ", ".join(repr(m) for m in missing))
    if cls is AccountSettings and values.get("price") and values.get("balance"):
        _same_currency(values["price"], values["balance"], f"{source}:{node.value['balance'].line}", _join(path, "balance"))
    return cls(**values)


def _same_currency(price: str, balance: str, where: str, path: str) -> None:
    """Refuse a balance in another currency than the price (both written: one account, one currency)."""
    price_currency, balance_currency = parse_money(price)[1], parse_money(balance)[1]
    if price_currency and balance_currency and price_currency != balance_currency:
        fail(where, path, f"currency {balance_currency} is not the price's ({price_currency})", "one currency per account")


def _convert(cls: type, name: str, hint: Any, node: _Node, path: str, source: str) -> Any:
    """Convert and check the file value of field ``cls.name``."""
    where = f"{source}:{node.line}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (SessionSettings, CoreSettings, LimitSettings):
        return _build(hint, node, path, source, hint())
    if cls is Config and name == "conformance":
        return _conformance(node, path, source)
    if cls is AccountSettings and name == "outbind":
        return None if node.value is None else _build(OutbindSettings, node, path, source, None)
    if origin is tuple and args[0] in (InstanceSettings, AccountSettings):
        if not isinstance(node.value, list):
            fail(where, path, f"not a list: {show(node.value)}", f"a list of {args[0].__name__} mappings")
        if not node.value and args[0] is InstanceSettings:
            fail(where, path, "no instances", "at least one SMPP instance")
        items = tuple(_build(args[0], item, f"{path}[{i}]", source, None) for i, item in enumerate(node.value))
        check_unique(items, path, [f"{source}:{item.line}" for item in node.value])
        return items
    if cls is CoreSettings and name == "networks":
        return _networks(node, path, source)
    if origin is dict:
        return _lists_by_name(node, path, source)
    if origin is tuple:
        if not isinstance(node.value, list):
            fail(where, path, f"not a list: {show(node.value)}", "a list of strings")
        for i, item in enumerate(node.value):
            if not isinstance(item.value, str):
                fail(f"{source}:{item.line}", f"{path}[{i}]", f"not a string: {show(item.value)}", "a string")
        value = tuple(item.value for item in node.value)
        check_value(cls, name, value, where, path)
        return value
    return check_value(cls, name, check_type(hint, node.value, where, path), where, path)


def _conformance(node: _Node, path: str, source: str) -> dict[str, float]:
    """
    The judge's thresholds, each checked where it is written (the judge's own rules:
    :meth:`smsc_sim.conformance.Thresholds.from_mapping`), so a bad one stops the start.
    """
    from smsc_sim.conformance.thresholds import ThresholdError, Thresholds

    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        expected = "a mapping of threshold names to numbers"
        fail(f"{source}:{node.line}", path, f"not a mapping: {show(node.value)}", expected)
    values: dict[str, float] = {}
    for key, child in node.value.items():
        try:
            Thresholds.from_mapping({key: child.value})
        except ThresholdError as e:
            # the judge's message reads "conformance.KEY: problem"; the loader's adds where it is
            _, _, problem = str(e).partition(": ")
            fail(f"{source}:{child.line}", _join(path, str(key)), problem)
        values[key] = child.value
    return values


def _networks(node: _Node, path: str, source: str) -> dict[str, str]:
    """
    ``core.networks``: number prefixes (1 to 15 digits, as strings) to MCC and MNC (5 or 6 digits).

    At most 10 000 prefixes, looked up longest first.
    """
    where = f"{source}:{node.line}"
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        fail(where, path, f"not a mapping: {show(node.value)}", 'a mapping of prefixes to MCC+MNC, {"44": "23410"}')
    if len(node.value) > 10_000:
        fail(where, path, f"{len(node.value)} prefixes", "at most 10000")
    table: dict[str, str] = {}
    for prefix, child in node.value.items():
        key = _join(path, prefix)
        if not re.fullmatch(r"[0-9]{1,15}", prefix):
            fail(f"{source}:{child.line}", key, f"not a number prefix: {excerpt(prefix)}", "1 to 15 digits")
        if not isinstance(child.value, str) or not re.fullmatch(r"[0-9]{5,6}", child.value):
            expected = 'MCC and MNC, 5 or 6 digits as a string ("23410")'
            fail(f"{source}:{child.line}", key, f"not an MCC+MNC: {show(child.value)}", expected)
        table[prefix] = child.value
    return table


def _lists_by_name(node: _Node, path: str, source: str) -> dict[str, tuple[str, ...]]:
    """
    A mapping of names to lists of addresses (an account's ``distribution_lists``).

    Names and addresses are 1 to 20 characters (C-Octet Strings of at most
    21 octets in submit_multi); addresses must be YAML strings, so that
    leading zeros and ``+`` survive.
    """
    if not isinstance(node.value, dict):
        fail(f"{source}:{node.line}", path, f"not a mapping: {show(node.value)}", "a mapping of list names to addresses")
    lists: dict[str, tuple[str, ...]] = {}
    for name, child in node.value.items():
        where, key = f"{source}:{child.line}", _join(path, name)
        if not 1 <= len(name) <= 20:
            fail(where, key, f"bad list name length ({len(name)} characters)", "1 to 20 characters")
        if not isinstance(child.value, list):
            fail(where, key, f"not a list: {show(child.value)}", "a list of addresses")
        members: list[str] = []
        for i, item in enumerate(child.value):
            if not isinstance(item.value, str) or not 1 <= len(item.value) <= 20:
                expected = 'an address of 1 to 20 characters, quoted ("447700900001")'
                fail(f"{source}:{item.line}", f"{key}[{i}]", f"not an address: {show(item.value)}", expected)
            members.append(item.value)
        lists[name] = tuple(members)
    return lists
