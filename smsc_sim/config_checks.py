"""
Check configuration values: the meaning of each well-typed value, endpoints
and host names, and the one error every configuration mistake raises.

Used by :mod:`smsc_sim.config_file` (values from the YAML file) and
:mod:`smsc_sim.config_environ` (values from variables and options), so
that a value is held to the same rules wherever it is written.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor

from smsc_sim.config import (
    AccountSettings,
    Config,
    CoreSettings,
    InstanceSettings,
    OutbindSettings,
    SessionSettings,
)
from smsc_sim.core.billing import parse_money
from smsc_sim.presets import PRESETS
from smsc_sim.yaml_source import clip, excerpt

__all__ = [
    "ConfigError",
    "allowed_hosts",
    "check_endpoint",
    "check_type",
    "check_unique",
    "check_value",
    "fail",
    "scenario_dirs",
    "show",
    "with_interface",
]

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
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")


class ConfigError(ValueError):
    """
    A configuration mistake, with a message fit to show the user as is.

    The message reads ``WHERE: key.path: problem (expected ...)``, where
    WHERE is ``FILE:LINE``, ``environment variable NAME`` or ``option --NAME``.
    """



def fail(where: str, path: str, problem: str, expected: str = "") -> NoReturn:
    """Raise the :class:`ConfigError` for one mistake."""
    suffix = f" (expected {expected})" if expected else ""
    if len(path) > 120:  # the keys of a path come from the file and may be any length
        path = path[:120] + "..."
    raise ConfigError(f"{where}: {path}: {problem}{suffix}")


def check_type(hint: Any, value: Any, where: str, path: str) -> Any:
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
            fail(where, path, f"not a finite number: {value}", "a number")
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
    fail(where, path, f"wrong type: {show(value)}", expected)


def show(value: Any) -> str:
    """A short description of a bad value for an error message."""
    kind = {dict: "a mapping", list: "a list", type(None): "null"}.get(type(value))
    return kind if kind is not None else f"{excerpt(value)} ({type(value).__name__})"


def check_value(cls: type, name: str, value: Any, where: str, path: str) -> Any:
    """Check the meaning of a well-typed value of field ``cls.name``; return it."""
    choices = _CHOICES.get((cls, name))
    if choices is not None and value not in choices:
        fail(where, path, f"unknown value {excerpt(value)}", "one of " + ", ".join(choices))
    if isinstance(value, float) and value < 0:
        fail(where, path, f"negative: {value:g}", "0 or more; 0 switches a timer off")
    if isinstance(value, int) and not isinstance(value, bool) and (cls, name) != (Config, "seed"):
        low, high = _INT_RANGES.get((cls, name), (0, None))
        if value < low or (high is not None and value > high):
            fail(where, path, f"out of range: {value}", f"{low} to {high}" if high is not None else f"{low} or more")
    if cls is InstanceSettings:
        if name == "name" and not _INSTANCE_NAME.match(value):
            fail(where, path, f"bad instance name {excerpt(value)}", "1 to 32 letters, digits, '_' or '-'")
        if name == "cluster" and not value:
            fail(where, path, "empty cluster name", "a name; instances with the same one share a core")
        if name == "cluster_store":
            # empty: the top-level cluster_store, as when not given
            return cluster_store(value, where, path) if value.strip() else ""
        if name == "system_id" and len(value) > 15:
            fail(where, path, f"too long ({len(value)} characters)", "at most 15 characters, the SMPP limit")
        if name == "endpoints":
            if not value:
                fail(where, path, "no endpoints", "at least one endpoint such as tcp:2775:interface=127.0.0.1")
            for i, endpoint in enumerate(value):
                check_endpoint(endpoint, where, f"{path}[{i}]")
    if cls is AccountSettings:
        if name == "system_id" and not 1 <= len(value) <= 15:
            fail(where, path, f"bad length ({len(value)} characters)", "1 to 15 characters, the SMPP limit")
        if name == "password" and len(value) > 8:
            fail(where, path, f"too long ({len(value)} characters)", "at most 8 characters, the SMPP limit")
        if name in ("price", "balance") and value:
            try:
                amount, _, _ = parse_money(value)
            except ValueError as e:
                fail(where, path, str(e), "an amount and an optional currency, such as 0.03330000 EUR")
            if name == "price" and amount < 0:
                fail(where, path, f"negative: {excerpt(value)}", "0 or more")
        if name == "allowed_addresses":
            for i, cidr in enumerate(value):
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    fail(where, f"{path}[{i}]", f"not an address range: {excerpt(cidr)}", "CIDR such as 10.0.0.0/8")
    if cls is OutbindSettings:
        if name == "endpoint":
            _check_client_endpoint(value, where, path)
        if name == "system_id" and len(value) > 15:
            fail(where, path, f"too long ({len(value)} characters)", "at most 15 characters, the SMPP limit")
        if name == "password" and len(value) > 8:
            fail(where, path, f"too long ({len(value)} characters)", "at most 8 characters, the SMPP limit")
    if cls is Config:
        value = _check_top_level(name, value, where, path)
    return value


def _check_top_level(name: str, value: Any, where: str, path: str) -> Any:
    """Check (and normalise) one top-level value such as ``store`` or ``api_endpoint``."""
    if name == "scenario" and not value:
        fail(where, path, "empty scenario", "a shipped scenario name or a path to a YAML file")
    if name == "scenario_dirs":
        return scenario_dirs(value, where, path)
    if name == "store" and not (value == "memory" or (value.startswith("sqlite:") and len(value) > 7)):
        fail(where, path, f"unknown store {excerpt(value)}", "memory or sqlite:PATH")
    if name == "cluster_store":
        return cluster_store(value, where, path)
    if name == "run_instances":
        # checked against the instances once every layer is applied (config_loader)
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            fail(where, path, f"not a list of instance names: {excerpt(value)}", "a list such as [SMPP1]")
        return tuple(v.strip() for v in value if v.strip())
    if name == "api_endpoint":
        if value.strip().lower() in ("", "none"):
            return ""
        check_endpoint(value, where, path)
    if name == "api_token" and value == "":
        return None
    if name == "api_allowed_hosts":
        return allowed_hosts(value, where, path)
    if name in ("conformance_report", "pcap") and value is not None:
        return _report_path(value, where, path)
    return value


def _report_path(value: str, where: str, path: str) -> str | None:
    """A report file whose directory exists, made absolute (twistd may change directory before shutdown)."""
    if not value.strip():
        return None
    full = os.path.abspath(value)
    if os.path.isdir(full):
        fail(where, path, f"a directory: {excerpt(value)}", "a file path such as conformance.xml")
    if not os.path.isdir(os.path.dirname(full)):
        fail(where, path, f"no such directory for {excerpt(value)}", "a file in an existing directory")
    return full


def scenario_dirs(value: Sequence[str], where: str, path: str) -> tuple[str, ...]:
    """Existing directories, made absolute (the API checks paths against them after resolving links)."""
    dirs: list[str] = []
    for i, entry in enumerate(value):
        if not entry:
            continue
        if not os.path.isdir(entry):
            fail(where, f"{path}[{i}]", f"not a directory: {excerpt(entry)}", "an existing directory of scenarios")
        dirs.append(os.path.realpath(entry))
    return tuple(dirs)


def allowed_hosts(value: Sequence[str], where: str, path: str) -> tuple[str, ...]:
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
                fail(where, f"{path}[{i}]", f"not a host name: {excerpt(raw)}", "a DNS name such as smsc-sim (no port), or *")
            names.append(name.rstrip("."))
        else:
            names.append(name.strip("[]"))
    return tuple(names)


def check_unique(items: Sequence[Any], path: str, wheres: Sequence[str]) -> None:
    """Refuse two instances with one name, or two accounts with one system_id."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, InstanceSettings):  # names are matched case-insensitively
            key, shown, label = item.name.upper(), item.name, "instance name"
        else:
            key, shown, label = item.system_id, item.system_id, "system_id"
        if key in seen:
            fail(
                wheres[i],
                f"{path}[{i}]",
                f"duplicate {label} {shown!r} (also {path}[{seen[key]}])",
                f"a unique {label}",
            )
        seen[key] = i
    stores: dict[str, tuple[int, str]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, InstanceSettings) or not item.cluster_store:
            continue
        first = stores.setdefault(item.cluster, (i, item.cluster_store))
        if first[1] != item.cluster_store:
            fail(
                wheres[i],
                f"{path}[{i}].cluster_store",
                f"cluster {item.cluster} already has cluster_store {first[1]} ({path}[{first[0]}])",
                "one cluster_store per cluster: the same on each of its instances, or on one of them",
            )


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


def check_endpoint(description: str, where: str, path: str) -> None:
    """Parse a server endpoint description without listening; refuse it if Twisted would."""
    expected = "a Twisted server endpoint such as tcp:2775:interface=127.0.0.1"
    try:
        serverFromString(MemoryReactor(), description)
    except Exception as e:  # the parsers raise ValueError, TypeError, OSError...: all mean "bad endpoint"
        fail(where, path, f"bad endpoint {excerpt(description)}: {clip(str(e))}", expected)
    parts = _split_endpoint(description)
    if parts[0] in ("tcp", "tcp6"):
        positional = [p for p in parts[1:] if "=" not in p]
        keyword = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        port = int(positional[0] if positional else keyword["port"])
        if not 0 <= port <= 65535:
            fail(where, path, f"bad endpoint {excerpt(description)}: port {port} out of range", "a port from 0 to 65535")


def _check_client_endpoint(description: str, where: str, path: str) -> None:
    """Parse a client endpoint description without connecting; refuse it if Twisted would."""
    from twisted.internet.endpoints import clientFromString

    expected = "a Twisted client endpoint such as tcp:host=127.0.0.1:port=2800"
    try:
        clientFromString(MemoryReactor(), description)
    except Exception as e:  # as for server endpoints: any parser error means a bad description
        fail(where, path, f"bad endpoint {excerpt(description)}: {clip(str(e))}", expected)


def with_interface(description: str, host: str) -> str:
    """``description`` listening on ``host`` if it is a TCP endpoint, else unchanged."""
    parts = _split_endpoint(description)
    if parts[0] not in ("tcp", "tcp6"):
        return description
    escaped = "interface=" + host.replace(":", "\\:")
    kept = [p for p in parts if not p.startswith("interface=")]
    return ":".join(kept + [escaped])


# -- environment and options -----------------------------------------------


#: ``redis://HOST:PORT/DB``: a host name or address (IPv6 in brackets), a port, a database number
_REDIS_URL = re.compile(r"^redis://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})/(?P<db>[0-9]{1,2})$")


def parse_redis_url(value: str) -> tuple[str, int, int] | None:
    """``(host, port, db)`` of a ``redis://HOST:PORT/DB`` URL; ``None`` when it is not one."""
    match = _REDIS_URL.match(value)
    if match is None:
        return None
    port, db = int(match.group("port")), int(match.group("db"))
    if not 0 < port < 65536 or db > 15:
        return None
    return match.group("host").strip("[]"), port, db


def cluster_store(value: str, where: str, path: str) -> str:
    """Check a ``cluster_store``: ``memory`` or ``redis://HOST:PORT/DB``."""
    value = value.strip()
    if value == "memory" or parse_redis_url(value) is not None:
        return value
    fail(where, path, f"unknown cluster store {excerpt(value)}", "memory or redis://HOST:PORT/DB (DB 0-15)")
