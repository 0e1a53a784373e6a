"""
Read and validate the configuration: embedded default, YAML file, environment, options.

:func:`load_config` is the only entry point.  The layers apply in this order,
each overriding the one before: the embedded default
(:func:`smsc_sim.config.default_config`), the YAML file, the ``SMSC_SIM_*``
environment variables, then the overrides from the command line.  Every
mistake is a :class:`ConfigError` whose message names where the bad value
came from (``FILE:LINE``, an environment variable or an option), the key
path, the problem and what was expected.

The parts: :mod:`smsc_sim.config_file` reads the file,
:mod:`smsc_sim.config_environ` applies variables and options, and
:mod:`smsc_sim.config_checks` holds the value checks both use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from smsc_sim.config import Config, default_config
from smsc_sim.config_checks import ConfigError, fail
from smsc_sim.config_environ import (
    OVERRIDE_KEYS,
    apply_environ,
    apply_overrides,
    apply_topology,
    run_instances,
)
from smsc_sim.config_file import load_file
from smsc_sim.yaml_source import excerpt

# re-exported: ConfigError (from config_checks) because tap.py and the tests import it
# from here, OVERRIDE_KEYS (from config_environ) because load_config's contract names it
__all__ = ["OVERRIDE_KEYS", "ConfigError", "load_config"]


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
    config = default_config() if path is None else load_file(path)
    config = apply_topology(config, environ, overrides)
    # accounts named by variables or options keep the settings the file gives them
    known = {account.system_id: account for account in config.accounts}
    config = apply_environ(config, environ, known)
    config = apply_overrides(config, overrides, known)
    _check_outbind_instances(config)
    if config.run_instances:
        # a file's list is matched here, against the instances every layer left
        chosen = run_instances(config, config.run_instances, config.source)
        config = dataclasses.replace(config, run_instances=chosen)
    return config


def _check_outbind_instances(config: Config) -> None:
    """An account's ``outbind.instance`` must name an instance of the final configuration."""
    names = [instance.name for instance in config.instances]
    for i, account in enumerate(config.accounts):
        wanted = account.outbind.instance if account.outbind is not None else ""
        if wanted and wanted not in names:
            expected = "one of " + ", ".join(names)
            fail(config.source, f"accounts[{i}].outbind.instance", f"no instance named {excerpt(wanted)}", expected)
