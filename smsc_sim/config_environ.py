"""
Apply the ``SMSC_SIM_*`` environment variables and the command-line options
over a configuration: the topology preset, listen endpoints and hosts,
accounts and the top-level values.

Each value is checked as if the file had given it
(:mod:`smsc_sim.config_checks`); a mistake names the variable or option.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from smsc_sim.config import AccountSettings, Config
from smsc_sim.config_checks import (
    ConfigError,
    allowed_hosts,
    check_endpoint,
    check_type,
    check_unique,
    check_value,
    fail,
    scenario_dirs,
    with_interface,
)
from smsc_sim.presets import PRESETS
from smsc_sim.yaml_source import excerpt

__all__ = ["OVERRIDE_KEYS", "apply_environ", "apply_overrides", "apply_topology", "run_instances"]

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
    "cluster_store": "--cluster-store",
    "run_instances": "--instances",
    "conformance_report": "--conformance-report",
    "pcap": "--pcap",
    "pcap_max_bytes": "--pcap-max-bytes",
    "pcap_ring": "--pcap-ring",
    "conformance_judge": "--no-conformance-judge",
    "accounts": "--account",
    "listen": "--listen",
    "topology": "--topology",
}
_ENV_ENDPOINT = re.compile(r"^SMSC_SIM_(.+)_ENDPOINT$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def apply_topology(config: Config, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> Config:
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


def apply_environ(config: Config, environ: Mapping[str, str], known: Mapping[str, AccountSettings]) -> Config:
    """Apply the ``SMSC_SIM_*`` variables; an empty variable counts as unset."""
    env = {k: v for k, v in environ.items() if k.startswith("SMSC_SIM_") and v != ""}
    host = env.get("SMSC_SIM_LISTEN_HOST")
    if host is not None:
        where = "environment variable SMSC_SIM_LISTEN_HOST"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            fail(where, "listen host", f"not an IP address: {excerpt(host)}", "an address such as 0.0.0.0 or ::")
        instances = tuple(
            dataclasses.replace(i, endpoints=tuple(with_interface(e, host) for e in i.endpoints))
            for i in config.instances
        )
        api = with_interface(config.api_endpoint, host) if config.api_endpoint else ""
        config = dataclasses.replace(config, instances=instances, api_endpoint=api)
    simple = {
        "SMSC_SIM_SCENARIO": "scenario",
        "SMSC_SIM_SEED": "seed",
        "SMSC_SIM_API": "api_endpoint",
        "SMSC_SIM_API_TOKEN": "api_token",
        "SMSC_SIM_API_ALLOWED_HOSTS": "api_allowed_hosts",
        "SMSC_SIM_TRACE": "trace",
        "SMSC_SIM_STORE": "store",
        "SMSC_SIM_CLUSTER_STORE": "cluster_store",
        "SMSC_SIM_INSTANCES": "run_instances",
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
            fail(where, key, f"not an integer: {excerpt(text)}", "an integer")
    if key == "api_allowed_hosts":
        return [name for name in text.split(",") if name.strip()]
    if key in ("trace", "conformance_judge"):
        if text.strip().lower() in _TRUE + _FALSE:
            return text.strip().lower() in _TRUE
        fail(where, key, f"not a boolean: {excerpt(text)}", "one of " + ", ".join(_TRUE + _FALSE))
    return text


def _set(config: Config, key: str, value: Any, where: str, known: Mapping[str, AccountSettings]) -> Config:
    """``config`` with one top-level value replaced, after checking it."""
    if key == "accounts":
        return dataclasses.replace(config, accounts=_accounts(known, value, where))
    if key == "scenario_dirs":
        # like PATH: directories separated by os.pathsep (":" on POSIX) in a variable or an option
        entries = value.split(os.pathsep) if isinstance(value, str) else list(value)
        return dataclasses.replace(config, scenario_dirs=scenario_dirs(entries, where, key))
    if key == "run_instances":
        return dataclasses.replace(config, run_instances=run_instances(config, value, where))
    if key == "api_allowed_hosts":
        if isinstance(value, str):
            value = [name for name in value.split(",") if name.strip()]
        return dataclasses.replace(config, api_allowed_hosts=allowed_hosts(value, where, key))
    hint = typing.get_type_hints(Config)[key]
    value = check_value(Config, key, check_type(hint, value, where, key), where, key)
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
            fail(where, f"accounts[{i}]", f"not system_id:password: {excerpt(entry)}", "system_id:password")
        system_id, password = entry.strip().split(":", 1)
        path = f"accounts[{i}]"
        check_value(AccountSettings, "system_id", system_id, where, path + ".system_id")
        check_value(AccountSettings, "password", password, where, path + ".password")
        base = known.get(system_id)
        result.append(dataclasses.replace(base, password=password) if base else AccountSettings(system_id, password))
    check_unique(result, "accounts", [where] * len(result))
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
            fail(where, "instances", f"no instance named {excerpt(name)}{hint}", f"one of {names}")
        index = found[0]
        check_endpoint(endpoint, where, f"instances[{index}].endpoints[0]")
        old = instances[index]
        instances[index] = dataclasses.replace(old, endpoints=(endpoint,) + old.endpoints[1:])
    return dataclasses.replace(config, instances=tuple(instances))


def _instance_key(name: str, env_names: bool) -> str:
    """How an instance name is matched: case-insensitively, and with ``-`` as ``_`` in variable names."""
    return name.upper().replace("-", "_") if env_names else name.upper()


def apply_overrides(config: Config, overrides: Mapping[str, Any], known: Mapping[str, AccountSettings]) -> Config:
    """Apply the command-line values (the highest layer)."""
    for key, value in overrides.items():
        if key not in OVERRIDE_KEYS:
            raise ConfigError(f"unknown override {excerpt(key)} (expected one of {', '.join(OVERRIDE_KEYS)})")
        if value is None or key == "topology":  # the topology is applied first (apply_topology)
            continue
        where = f"option {OVERRIDE_KEYS[key]}"
        if key == "listen":
            listen = {name: (endpoint, f"{where} {name}") for name, endpoint in value.items()}
            config = _listen(config, listen, env_names=False)
        else:
            config = _set(config, key, value, where, known)
    return config


def run_instances(config: Config, value: Any, where: str) -> tuple[str, ...]:
    """
    The configured instances a process runs (``--instances SMPP1,SMPP2``), by
    their configured names; matched case-insensitively.
    """
    entries = value.split(",") if isinstance(value, str) else list(value)
    names = {instance.name.upper(): instance.name for instance in config.instances}
    chosen: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            continue
        name = names.get(entry.strip().upper())
        if name is None:
            fail(where, "instances", f"no instance named {excerpt(entry)}", "one of " + ", ".join(names.values()))
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        fail(where, "instances", "no instance named", "one of " + ", ".join(names.values()))
    return tuple(chosen)
