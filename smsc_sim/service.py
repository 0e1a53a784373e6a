"""
Build the service tree for a configuration: the one place that turns a
:class:`~smsc_sim.config.Config` and a reactor into running parts.

``tap.makeService`` calls :func:`build_service` with the real reactor; tests
call it with a ``MemoryReactorClock`` or the real reactor on ephemeral ports.
"""

from __future__ import annotations

from typing import Any

from smsc_sim.config import Config
from smsc_sim.simulator import Simulator


def build_service(config: Config, reactor: Any) -> Simulator:
    """
    The simulator for ``config``, as a ``MultiService`` not yet started.

    :param config: a validated configuration.
    :param reactor: listens and keeps time for everything below.
    """
    simulator = Simulator(config, reactor)
    if config.api_endpoint:
        from smsc_sim.api.service import add_api

        add_api(simulator, config.api_endpoint, config.api_token)
    return simulator
