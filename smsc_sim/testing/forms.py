"""
What every simulator form of :mod:`smsc_sim.testing.harness` shares: where
a started simulator listens and with which account (:class:`Where`), the
configuration built from the options they all take (:func:`configure`),
ephemeral loopback ports, and the error of a failed start.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from smsc_sim.config import AccountSettings, Config, default_config
from smsc_sim.testing.protocol import FormOptionError

__all__ = ["EPHEMERAL", "LOOPBACK", "SimulatorStartError", "Where", "configure", "ephemeral_config"]

LOOPBACK = "127.0.0.1"
EPHEMERAL = f"tcp:0:interface={LOOPBACK}"


class SimulatorStartError(RuntimeError):
    """The simulator did not come up; the message carries the end of its log."""


class Where:
    """Addresses and credentials of a started simulator."""

    accounts: list[tuple[str, str]]

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listens: ``{"SMPP1": [("127.0.0.1", 40123)]}``."""
        raise NotImplementedError

    def address(self, instance: str = "SMPP1") -> tuple[str, int]:
        """``(host, port)`` of an instance's first listener."""
        try:
            return self.endpoints[instance][0]
        except (KeyError, IndexError):
            raise KeyError(f"instance {instance!r} does not listen; instances: {', '.join(self.endpoints)}") from None

    def port(self, instance: str = "SMPP1") -> int:
        """The port of an instance's first listener."""
        return self.address(instance)[1]

    @property
    def host(self) -> str:
        """The host every listener is on."""
        return LOOPBACK

    @property
    def system_id(self) -> str:
        """The first account's system_id."""
        return self.accounts[0][0]

    @property
    def password(self) -> str:
        """The first account's password."""
        return self.accounts[0][1]


def configure(
    config: Config | str | None = None,
    *,
    scenario: str | None = None,
    accounts: Iterable[tuple[str, str]] | None = None,
    seed: int | None = None,
    token: str | None = None,
) -> Config:
    """
    The configuration of a simulator in this process, from the options every form takes.

    :param config: a :class:`Config`, or the path of a YAML file (read as ``twistd
        smsc-sim --config`` reads it, ``SMSC_SIM_*`` variables aside); the embedded default when None.
    :param scenario: a scenario name or path instead of the configured one.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    :param seed: the seed of every random choice.
    :param token: a bearer token for the API.
    :raises FormOptionError: for an account that is not a ``(system_id, password)`` pair.
    """
    if isinstance(config, str):
        from smsc_sim.config_loader import load_config

        config = load_config(config, {}, {})
    config = config if config is not None else default_config()
    changes: dict[str, Any] = {}
    if scenario is not None:
        changes["scenario"] = scenario
    if seed is not None:
        changes["seed"] = seed
    if token is not None:
        changes["api_token"] = token
    if accounts is not None:
        pairs = [tuple(pair) for pair in accounts]
        if not pairs or any(len(pair) != 2 or not all(isinstance(x, str) and x for x in pair) for pair in pairs):
            raise FormOptionError(f"accounts must be non-empty (system_id, password) pairs of strings, got {pairs!r}")
        changes["accounts"] = tuple(AccountSettings(system_id, password) for system_id, password in pairs)
    return dataclasses.replace(config, **changes)


def ephemeral_config(config: Config | None = None) -> Config:
    """``config`` (default: the embedded one) with every listener and the API on an ephemeral loopback port."""
    config = config if config is not None else default_config()
    instances = tuple(
        dataclasses.replace(i, endpoints=tuple(EPHEMERAL for _ in i.endpoints)) for i in config.instances
    )
    return dataclasses.replace(config, instances=instances, api_endpoint=EPHEMERAL)
