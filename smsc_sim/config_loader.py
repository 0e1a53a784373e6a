"""
Read and validate the configuration: embedded default, YAML file, environment, options.

:func:`load_config` is the only entry point.  The layers apply in this order,
each overriding the one before: the embedded default
(:func:`smsc_sim.config.default_config`), the YAML file, the ``SMSC_SIM_*``
environment variables, then the overrides from the command line.  Every
mistake is a :class:`ConfigError` whose message names where the bad value
came from (``FILE:LINE``, an environment variable or an option), the key
path, the problem and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import yaml
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor

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
from smsc_sim.presets import PRESETS
from smsc_sim.core.billing import parse_money
from smsc_sim.yaml_source import YAMLSourceError, clip, excerpt, load, read_text

__all__ = ["ConfigError", "load_config", "OVERRIDE_KEYS"]

#: keys :func:`load_config` accepts in ``overrides``, with the option each comes from
OVERRIDE_KEYS: Mapping[str, str] = {
    "scenario": "--scenario",
    "scenario_dirs": "--scenario-dirs",
    "seed": "--seed",
    "api_endpoint": "--api",
    "api_token": "--api-token",
    "api_allowed_hosts": "--api-allowed-hosts",
    "trace": "--trace",
    "store": "--store",
    "conformance_report": "--conformance-report",
    "pcap": "--pcap",
    "pcap_max_bytes": "--pcap-max-bytes",
    "pcap_ring": "--pcap-ring",
    "conformance_judge": "--no-conformance-judge",
    "accounts": "--account",
    "listen": "--listen",
    "topology": "--topology",
}

#: fields whose value must be one of a few words
_CHOICES: Mapping[tuple[type, str], tuple[str, ...]] = {
    (CoreSettings, "message_id_format"): ("hex16", "decimal"),
    (CoreSettings, "routing"): ("origin", "round-robin"),
    (CoreSettings, "reassembly_incomplete"): ("undeliverable", "deliver"),
    (CoreSettings, "vendor_tlv_strings"): ("cstring", "text"),
    (CoreSettings, "mo_control_characters"): ("gsm", "space", "keep"),
    (AccountSettings, "default_alphabet"): ("latin-1", "gsm0338"),
    (AccountSettings, "receipts_as"): ("deliver_sm", "data_sm"),
    (Config, "topology"): tuple(PRESETS),
    (OutbindSettings, "when"): ("pending", "always"),
    (AccountSettings, "throttle_model"): ("window", "bucket"),
    (AccountSettings, "receipt_id_format"): ("decimal", "hex"),
}
#: integer fields with bounds other than the default "0 or more"
_INT_RANGES: Mapping[tuple[type, str], tuple[int, int | None]] = {
    (SessionSettings, "max_pdu_size"): (16, None),
    (SessionSettings, "inbound_window"): (1, None),
    (SessionSettings, "outbound_window"): (1, None),
    (SessionSettings, "window_status"): (0, 0xFFFFFFFF),
    (CoreSettings, "store_max_messages"): (1, None),
    (CoreSettings, "delivery_max_attempts"): (1, None),
    (CoreSettings, "balance_status"): (0, 0xFFFFFFFF),
    (CoreSettings, "short_code_digits"): (0, 20),
    (InstanceSettings, "sc_interface_version"): (0, 0xFF),
}
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ENV_ENDPOINT = re.compile(r"^SMSC_SIM_(.+)_ENDPOINT$")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """
    A configuration mistake, with a message fit to show the user as is.

    The message reads ``WHERE: key.path: problem (expected ...)``, where
    WHERE is ``FILE:LINE``, ``environment variable NAME`` or ``option --NAME``.
    """


@dataclasses.dataclass(frozen=True)
class _Node:
    """A YAML value with the line it starts on (1-based)."""

    value: Any
    line: int


def _fail(where: str, path: str, problem: str, expected: str = "") -> NoReturn:
    """Raise the :class:`ConfigError` for one mistake."""
    suffix = f" (expected {expected})" if expected else ""
    if len(path) > 120:  # the keys of a path come from the file and may be any length
        path = path[:120] + "..."
    raise ConfigError(f"{where}: {path}: {problem}{suffix}")


def load_config(path: str | None, overrides: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """
    Build the validated configuration of one simulator process.

    :param path: the YAML file; ``None`` or empty means ``$SMSC_SIM_CONFIG``,
        and if that is unset too, the embedded default alone.
    :param overrides: values from the command line, keyed as in
        :data:`OVERRIDE_KEYS`; ``None`` values are ignored.  ``accounts`` is a
        sequence of ``"system_id:password"``; ``listen`` maps an instance name
        to the endpoint that replaces its first one.
    :param environ: the environment (``os.environ`` in production).
    :returns: the frozen :class:`~smsc_sim.config.Config`.
    :raises ConfigError: on any mistake, naming where it is.
    """
    if not path:
        path = environ.get("SMSC_SIM_CONFIG") or None
    config = default_config() if path is None else _load_file(path)
    config = _apply_topology(config, environ, overrides)
    # accounts named by variables or options keep the settings the file gives them
    known = {account.system_id: account for account in config.accounts}
    config = _apply_environ(config, environ, known)
    config = _apply_overrides(config, overrides, known)
    _check_outbind_instances(config)
    return config


def _check_outbind_instances(config: Config) -> None:
    """An account's ``outbind.instance`` must name an instance of the final configuration."""
    names = [instance.name for instance in config.instances]
    for i, account in enumerate(config.accounts):
        wanted = account.outbind.instance if account.outbind is not None else ""
        if wanted and wanted not in names:
            expected = "one of " + ", ".join(names)
            _fail(config.source, f"accounts[{i}].outbind.instance", f"no instance named {excerpt(wanted)}", expected)


def _apply_topology(config: Config, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> Config:
    """
    Add the instances of the chosen preset (option over variable over file).

    It comes before the other variables and options, so that
    ``SMSC_SIM_SMPP3_ENDPOINT``, ``--listen SMPP3=...`` and
    ``SMSC_SIM_LISTEN_HOST`` reach the instances it adds.  An instance the
    file already names (case-insensitively) is kept as the file gives it.
    """
    option, variable = overrides.get("topology"), environ.get("SMSC_SIM_TOPOLOGY") or None
    if option is not None:
        config = _set(config, "topology", option, f"option {OVERRIDE_KEYS['topology']}", {})
    elif variable is not None:
        config = _set(config, "topology", variable, "environment variable SMSC_SIM_TOPOLOGY", {})
    names = {instance.name.upper() for instance in config.instances}
    added = tuple(i for i in PRESETS[config.topology] if i.name.upper() not in names)
    return dataclasses.replace(config, instances=config.instances + added) if added else config


# -- the file --------------------------------------------------------------


def _load_file(path: str) -> Config:
    """Read, parse and validate one YAML file over the embedded default, within the YAML bounds."""
    try:
        text = read_text(path, what="the configuration file")
        root = load(text, path, lambda loader, node: _to_tree(loader, node, path))
    except YAMLSourceError as e:
        raise ConfigError(str(e)) from None
    tree = _Node({}, 1) if root is None else root
    if not isinstance(tree.value, dict):
        _fail(f"{path}:{tree.line}", "(top level)", "not a mapping", "keys such as instances, accounts, session, core")
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
                _fail(f"{path}:{key_line}", excerpt(key), "keys must be strings")
            if key in seen:
                _fail(f"{path}:{key_line}", key, f"duplicate key (first on line {seen[key]})")
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
        _fail(where, path or "(top level)", f"not a mapping: {_show(node.value)}", f"a mapping of {cls.__name__} keys")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    values: dict[str, Any] = {}
    for key, child in node.value.items():
        if cls is Config and key.startswith("x-"):
            continue  # free top-level keys, as in compose files: a home for YAML anchors
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f", did you mean '{close[0]}'?" if close else ""
            _fail(f"{source}:{child.line}", _join(path, key), f"unknown key{hint}", "one of " + ", ".join(names))
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
        _fail(where, path, "missing key " + ", ".join(repr(m) for m in missing))
    if cls is AccountSettings and values.get("price") and values.get("balance"):
        _same_currency(values["price"], values["balance"], f"{source}:{node.value['balance'].line}", _join(path, "balance"))
    return cls(**values)


def _same_currency(price: str, balance: str, where: str, path: str) -> None:
    """Refuse a balance in another currency than the price (both written: one account, one currency)."""
    price_currency, balance_currency = parse_money(price)[1], parse_money(balance)[1]
    if price_currency and balance_currency and price_currency != balance_currency:
        _fail(where, path, f"currency {balance_currency} is not the price's ({price_currency})", "one currency per account")


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
            _fail(where, path, f"not a list: {_show(node.value)}", f"a list of {args[0].__name__} mappings")
        if not node.value and args[0] is InstanceSettings:
            _fail(where, path, "no instances", "at least one SMPP instance")
        items = tuple(_build(args[0], item, f"{path}[{i}]", source, None) for i, item in enumerate(node.value))
        _check_unique(items, path, [f"{source}:{item.line}" for item in node.value])
        return items
    if cls is CoreSettings and name == "networks":
        return _networks(node, path, source)
    if origin is dict:
        return _lists_by_name(node, path, source)
    if origin is tuple:
        if not isinstance(node.value, list):
            _fail(where, path, f"not a list: {_show(node.value)}", "a list of strings")
        for i, item in enumerate(node.value):
            if not isinstance(item.value, str):
                _fail(f"{source}:{item.line}", f"{path}[{i}]", f"not a string: {_show(item.value)}", "a string")
        value = tuple(item.value for item in node.value)
        _check_value(cls, name, value, where, path)
        return value
    return _check_value(cls, name, _check_type(hint, node.value, where, path), where, path)


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
        _fail(f"{source}:{node.line}", path, f"not a mapping: {_show(node.value)}", expected)
    values: dict[str, float] = {}
    for key, child in node.value.items():
        try:
            Thresholds.from_mapping({key: child.value})
        except ThresholdError as e:
            # the judge's message reads "conformance.KEY: problem"; the loader's adds where it is
            _, _, problem = str(e).partition(": ")
            _fail(f"{source}:{child.line}", _join(path, str(key)), problem)
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
        _fail(where, path, f"not a mapping: {_show(node.value)}", 'a mapping of prefixes to MCC+MNC, {"44": "23410"}')
    if len(node.value) > 10_000:
        _fail(where, path, f"{len(node.value)} prefixes", "at most 10000")
    table: dict[str, str] = {}
    for prefix, child in node.value.items():
        key = _join(path, prefix)
        if not re.fullmatch(r"[0-9]{1,15}", prefix):
            _fail(f"{source}:{child.line}", key, f"not a number prefix: {excerpt(prefix)}", "1 to 15 digits")
        if not isinstance(child.value, str) or not re.fullmatch(r"[0-9]{5,6}", child.value):
            expected = 'MCC and MNC, 5 or 6 digits as a string ("23410")'
            _fail(f"{source}:{child.line}", key, f"not an MCC+MNC: {_show(child.value)}", expected)
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
        _fail(f"{source}:{node.line}", path, f"not a mapping: {_show(node.value)}", "a mapping of list names to addresses")
    lists: dict[str, tuple[str, ...]] = {}
    for name, child in node.value.items():
        where, key = f"{source}:{child.line}", _join(path, name)
        if not 1 <= len(name) <= 20:
            _fail(where, key, f"bad list name length ({len(name)} characters)", "1 to 20 characters")
        if not isinstance(child.value, list):
            _fail(where, key, f"not a list: {_show(child.value)}", "a list of addresses")
        members: list[str] = []
        for i, item in enumerate(child.value):
            if not isinstance(item.value, str) or not 1 <= len(item.value) <= 20:
                expected = 'an address of 1 to 20 characters, quoted ("447700900001")'
                _fail(f"{source}:{item.line}", f"{key}[{i}]", f"not an address: {_show(item.value)}", expected)
            members.append(item.value)
        lists[name] = tuple(members)
    return lists


def _check_type(hint: Any, value: Any, where: str, path: str) -> Any:
    """Check a scalar against its annotation (``int``, ``float``, ``bool``, ``str``, ``X | None``)."""
    if isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            _fail(where, path, f"not a finite number: {value}", "a number")
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
    _fail(where, path, f"wrong type: {_show(value)}", expected)


def _show(value: Any) -> str:
    """A short description of a bad value for an error message."""
    kind = {dict: "a mapping", list: "a list", type(None): "null"}.get(type(value))
    return kind if kind is not None else f"{excerpt(value)} ({type(value).__name__})"


def _check_value(cls: type, name: str, value: Any, where: str, path: str) -> Any:
    """Check the meaning of a well-typed value of field ``cls.name``; return it."""
    choices = _CHOICES.get((cls, name))
    if choices is not None and value not in choices:
        _fail(where, path, f"unknown value {excerpt(value)}", "one of " + ", ".join(choices))
    if isinstance(value, float) and value < 0:
        _fail(where, path, f"negative: {value:g}", "0 or more; 0 switches a timer off")
    if isinstance(value, int) and not isinstance(value, bool) and (cls, name) != (Config, "seed"):
        low, high = _INT_RANGES.get((cls, name), (0, None))
        if value < low or (high is not None and value > high):
            _fail(where, path, f"out of range: {value}", f"{low} to {high}" if high is not None else f"{low} or more")
    if cls is InstanceSettings:
        if name == "name" and not _INSTANCE_NAME.match(value):
            _fail(where, path, f"bad instance name {excerpt(value)}", "1 to 32 letters, digits, '_' or '-'")
        if name == "cluster" and not value:
            _fail(where, path, "empty cluster name", "a name; instances with the same one share a core")
        if name == "system_id" and len(value) > 15:
            _fail(where, path, f"too long ({len(value)} characters)", "at most 15 characters, the SMPP limit")
        if name == "endpoints":
            if not value:
                _fail(where, path, "no endpoints", "at least one endpoint such as tcp:2775:interface=127.0.0.1")
            for i, endpoint in enumerate(value):
                _check_endpoint(endpoint, where, f"{path}[{i}]")
    if cls is AccountSettings:
        if name == "system_id" and not 1 <= len(value) <= 15:
            _fail(where, path, f"bad length ({len(value)} characters)", "1 to 15 characters, the SMPP limit")
        if name == "password" and len(value) > 8:
            _fail(where, path, f"too long ({len(value)} characters)", "at most 8 characters, the SMPP limit")
        if name in ("price", "balance") and value:
            try:
                amount, _, _ = parse_money(value)
            except ValueError as e:
                _fail(where, path, str(e), "an amount and an optional currency, such as 0.03330000 EUR")
            if name == "price" and amount < 0:
                _fail(where, path, f"negative: {excerpt(value)}", "0 or more")
        if name == "allowed_addresses":
            for i, cidr in enumerate(value):
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    _fail(where, f"{path}[{i}]", f"not an address range: {excerpt(cidr)}", "CIDR such as 10.0.0.0/8")
    if cls is OutbindSettings:
        if name == "endpoint":
            _check_client_endpoint(value, where, path)
        if name == "system_id" and len(value) > 15:
            _fail(where, path, f"too long ({len(value)} characters)", "at most 15 characters, the SMPP limit")
        if name == "password" and len(value) > 8:
            _fail(where, path, f"too long ({len(value)} characters)", "at most 8 characters, the SMPP limit")
    if cls is Config:
        value = _check_top_level(name, value, where, path)
    return value


def _check_top_level(name: str, value: Any, where: str, path: str) -> Any:
    """Check (and normalise) one top-level value such as ``store`` or ``api_endpoint``."""
    if name == "scenario" and not value:
        _fail(where, path, "empty scenario", "a shipped scenario name or a path to a YAML file")
    if name == "scenario_dirs":
        return _scenario_dirs(value, where, path)
    if name == "store" and not (value == "memory" or (value.startswith("sqlite:") and len(value) > 7)):
        _fail(where, path, f"unknown store {excerpt(value)}", "memory or sqlite:PATH")
    if name == "api_endpoint":
        if value.strip().lower() in ("", "none"):
            return ""
        _check_endpoint(value, where, path)
    if name == "api_token" and value == "":
        return None
    if name == "api_allowed_hosts":
        return _allowed_hosts(value, where, path)
    if name in ("conformance_report", "pcap") and value is not None:
        return _report_path(value, where, path)
    return value


def _report_path(value: str, where: str, path: str) -> str | None:
    """A report file whose directory exists, made absolute (twistd may change directory before shutdown)."""
    if not value.strip():
        return None
    full = os.path.abspath(value)
    if os.path.isdir(full):
        _fail(where, path, f"a directory: {excerpt(value)}", "a file path such as conformance.xml")
    if not os.path.isdir(os.path.dirname(full)):
        _fail(where, path, f"no such directory for {excerpt(value)}", "a file in an existing directory")
    return full


def _scenario_dirs(value: Sequence[str], where: str, path: str) -> tuple[str, ...]:
    """Existing directories, made absolute (the API checks paths against them after resolving links)."""
    dirs: list[str] = []
    for i, entry in enumerate(value):
        if not entry:
            continue
        if not os.path.isdir(entry):
            _fail(where, f"{path}[{i}]", f"not a directory: {excerpt(entry)}", "an existing directory of scenarios")
        dirs.append(os.path.realpath(entry))
    return tuple(dirs)


def _allowed_hosts(value: Sequence[str], where: str, path: str) -> tuple[str, ...]:
    """Check the API's extra Host names: DNS names or IP addresses without port, or ``*``; lower-cased."""
    names: list[str] = []
    for i, raw in enumerate(value):
        name = raw.strip().lower()
        if name == "*":
            names.append(name)
            continue
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            if not _HOST_NAME.match(name) or len(name) > 253:
                _fail(where, f"{path}[{i}]", f"not a host name: {excerpt(raw)}", "a DNS name such as smsc-sim (no port), or *")
            names.append(name.rstrip("."))
        else:
            names.append(name.strip("[]"))
    return tuple(names)


def _check_unique(items: Sequence[Any], path: str, wheres: Sequence[str]) -> None:
    """Refuse two instances with one name, or two accounts with one system_id."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, InstanceSettings):  # names are matched case-insensitively
            key, shown, label = item.name.upper(), item.name, "instance name"
        else:
            key, shown, label = item.system_id, item.system_id, "system_id"
        if key in seen:
            _fail(
                wheres[i],
                f"{path}[{i}]",
                f"duplicate {label} {shown!r} (also {path}[{seen[key]}])",
                f"a unique {label}",
            )
        seen[key] = i


# -- endpoints -------------------------------------------------------------


def _split_endpoint(description: str) -> list[str]:
    """Split a Twisted endpoint description on unescaped colons, keeping the escapes."""
    parts: list[str] = []
    current, escaped = "", False
    for char in description:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == ":":
            parts, current = parts + [current], ""
        else:
            current += char
    return parts + [current]


def _check_endpoint(description: str, where: str, path: str) -> None:
    """Parse a server endpoint description without listening; refuse it if Twisted would."""
    expected = "a Twisted server endpoint such as tcp:2775:interface=127.0.0.1"
    try:
        serverFromString(MemoryReactor(), description)
    except Exception as e:  # the parsers raise ValueError, TypeError, OSError...: all mean "bad endpoint"
        _fail(where, path, f"bad endpoint {excerpt(description)}: {clip(str(e))}", expected)
    parts = _split_endpoint(description)
    if parts[0] in ("tcp", "tcp6"):
        positional = [p for p in parts[1:] if "=" not in p]
        keyword = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        port = int(positional[0] if positional else keyword["port"])
        if not 0 <= port <= 65535:
            _fail(where, path, f"bad endpoint {excerpt(description)}: port {port} out of range", "a port from 0 to 65535")


def _check_client_endpoint(description: str, where: str, path: str) -> None:
    """Parse a client endpoint description without connecting; refuse it if Twisted would."""
    from twisted.internet.endpoints import clientFromString

    expected = "a Twisted client endpoint such as tcp:host=127.0.0.1:port=2800"
    try:
        clientFromString(MemoryReactor(), description)
    except Exception as e:  # as for server endpoints: any parser error means a bad description
        _fail(where, path, f"bad endpoint {excerpt(description)}: {clip(str(e))}", expected)


def _with_interface(description: str, host: str) -> str:
    """``description`` listening on ``host`` if it is a TCP endpoint, else unchanged."""
    parts = _split_endpoint(description)
    if parts[0] not in ("tcp", "tcp6"):
        return description
    escaped = "interface=" + host.replace(":", "\\:")
    kept = [p for p in parts if not p.startswith("interface=")]
    return ":".join(kept + [escaped])


# -- environment and options -----------------------------------------------


def _apply_environ(config: Config, environ: Mapping[str, str], known: Mapping[str, AccountSettings]) -> Config:
    """Apply the ``SMSC_SIM_*`` variables; an empty variable counts as unset."""
    env = {k: v for k, v in environ.items() if k.startswith("SMSC_SIM_") and v != ""}
    host = env.get("SMSC_SIM_LISTEN_HOST")
    if host is not None:
        where = "environment variable SMSC_SIM_LISTEN_HOST"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            _fail(where, "listen host", f"not an IP address: {excerpt(host)}", "an address such as 0.0.0.0 or ::")
        instances = tuple(
            dataclasses.replace(i, endpoints=tuple(_with_interface(e, host) for e in i.endpoints))
            for i in config.instances
        )
        api = _with_interface(config.api_endpoint, host) if config.api_endpoint else ""
        config = dataclasses.replace(config, instances=instances, api_endpoint=api)
    simple = {
        "SMSC_SIM_SCENARIO": "scenario",
        "SMSC_SIM_SEED": "seed",
        "SMSC_SIM_API": "api_endpoint",
        "SMSC_SIM_API_TOKEN": "api_token",
        "SMSC_SIM_API_ALLOWED_HOSTS": "api_allowed_hosts",
        "SMSC_SIM_TRACE": "trace",
        "SMSC_SIM_STORE": "store",
        "SMSC_SIM_CONFORMANCE_REPORT": "conformance_report",
        "SMSC_SIM_PCAP": "pcap",
        "SMSC_SIM_PCAP_MAX_BYTES": "pcap_max_bytes",
        "SMSC_SIM_PCAP_RING": "pcap_ring",
        "SMSC_SIM_CONFORMANCE_JUDGE": "conformance_judge",
    }
    if "SMSC_SIM_SCENARIO_DIRS" in env:
        where = "environment variable SMSC_SIM_SCENARIO_DIRS"
        config = _set(config, "scenario_dirs", env["SMSC_SIM_SCENARIO_DIRS"], where, known)
    for variable, key in simple.items():
        if variable in env:
            value = _from_text(key, env[variable], f"environment variable {variable}")
            config = _set(config, key, value, f"environment variable {variable}", known)
    if "SMSC_SIM_ACCOUNTS" in env:
        entries = [e for e in env["SMSC_SIM_ACCOUNTS"].split(",") if e.strip()]
        config = _set(config, "accounts", entries, "environment variable SMSC_SIM_ACCOUNTS", known)
    listen: dict[str, tuple[str, str]] = {}
    for variable in sorted(env):
        match = _ENV_ENDPOINT.match(variable)
        if match:
            listen[match.group(1)] = (env[variable], f"environment variable {variable}")
    return _listen(config, listen, env_names=True)


def _from_text(key: str, text: str, where: str) -> Any:
    """Convert the text of an environment variable for ``key``."""
    if key in ("seed", "pcap_max_bytes", "pcap_ring"):
        try:
            return int(text)
        except ValueError:
            _fail(where, key, f"not an integer: {excerpt(text)}", "an integer")
    if key == "api_allowed_hosts":
        return [name for name in text.split(",") if name.strip()]
    if key in ("trace", "conformance_judge"):
        if text.strip().lower() in _TRUE + _FALSE:
            return text.strip().lower() in _TRUE
        _fail(where, key, f"not a boolean: {excerpt(text)}", "one of " + ", ".join(_TRUE + _FALSE))
    return text


def _set(config: Config, key: str, value: Any, where: str, known: Mapping[str, AccountSettings]) -> Config:
    """``config`` with one top-level value replaced, after checking it."""
    if key == "accounts":
        return dataclasses.replace(config, accounts=_accounts(known, value, where))
    if key == "scenario_dirs":
        # like PATH: directories separated by os.pathsep (":" on POSIX) in a variable or an option
        entries = value.split(os.pathsep) if isinstance(value, str) else list(value)
        return dataclasses.replace(config, scenario_dirs=_scenario_dirs(entries, where, key))
    if key == "api_allowed_hosts":
        if isinstance(value, str):
            value = [name for name in value.split(",") if name.strip()]
        return dataclasses.replace(config, api_allowed_hosts=_allowed_hosts(value, where, key))
    hint = typing.get_type_hints(Config)[key]
    value = _check_value(Config, key, _check_type(hint, value, where, key), where, key)
    return dataclasses.replace(config, **{key: value})


def _accounts(known: Mapping[str, AccountSettings], entries: Sequence[Any], where: str) -> tuple[AccountSettings, ...]:
    """
    The accounts named by ``system_id:password`` entries, replacing all others.

    An entry naming an account of the file (or the default) keeps that
    account's other settings (throughput, binds...) and only changes the password.
    """
    result: list[AccountSettings] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) or ":" not in entry:
            _fail(where, f"accounts[{i}]", f"not system_id:password: {excerpt(entry)}", "system_id:password")
        system_id, password = entry.strip().split(":", 1)
        path = f"accounts[{i}]"
        _check_value(AccountSettings, "system_id", system_id, where, path + ".system_id")
        _check_value(AccountSettings, "password", password, where, path + ".password")
        base = known.get(system_id)
        result.append(dataclasses.replace(base, password=password) if base else AccountSettings(system_id, password))
    _check_unique(result, "accounts", [where] * len(result))
    return tuple(result)


def _listen(config: Config, listen: Mapping[str, tuple[str, str]], env_names: bool) -> Config:
    """Replace the first endpoint of the named instances."""
    instances = list(config.instances)
    for name, (endpoint, where) in listen.items():
        key = _instance_key(name, env_names)
        found = [i for i, inst in enumerate(instances) if _instance_key(inst.name, env_names) == key]
        if not found:
            names = ", ".join(_instance_key(i.name, env_names) for i in instances)
            hint = "; the API endpoint is SMSC_SIM_API" if env_names and key == "API" else ""
            _fail(where, "instances", f"no instance named {excerpt(name)}{hint}", f"one of {names}")
        index = found[0]
        _check_endpoint(endpoint, where, f"instances[{index}].endpoints[0]")
        old = instances[index]
        instances[index] = dataclasses.replace(old, endpoints=(endpoint,) + old.endpoints[1:])
    return dataclasses.replace(config, instances=tuple(instances))


def _instance_key(name: str, env_names: bool) -> str:
    """How an instance name is matched: case-insensitively, and with ``-`` as ``_`` in variable names."""
    return name.upper().replace("-", "_") if env_names else name.upper()


def _apply_overrides(config: Config, overrides: Mapping[str, Any], known: Mapping[str, AccountSettings]) -> Config:
    """Apply the command-line values (the highest layer)."""
    for key, value in overrides.items():
        if key not in OVERRIDE_KEYS:
            raise ConfigError(f"unknown override {excerpt(key)} (expected one of {', '.join(OVERRIDE_KEYS)})")
        if value is None or key == "topology":  # the topology is applied first (_apply_topology)
            continue
        where = f"option {OVERRIDE_KEYS[key]}"
        if key == "listen":
            listen = {name: (endpoint, f"{where} {name}") for name, endpoint in value.items()}
            config = _listen(config, listen, env_names=False)
        else:
            config = _set(config, key, value, where, known)
    return config
