"""
Reload the scenario on SIGHUP, without dropping a session.

``kill -HUP <pid>`` makes a running simulator read its scenario again: the
file or shipped name it was configured with (``--scenario``), or the one
last loaded by name or path through the API (``PUT /api/v1/scenario``).
Every session stays bound; messages already accepted keep the receipt plan
they were given, new submits follow the new file, and the new scenario's
timeline starts from its beginning.  A file that no longer loads is logged
with the loader's message (file, line, key) and the old scenario stays.

Only the twistd form installs the handler (``tap.makeService``): a signal
handler is process-wide, so tests and fixtures that embed a simulator in
their own process leave SIGHUP alone.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from twisted.logger import Logger

from smsc_sim.scenario.source import ScenarioError

__all__ = ["install_reload_on_sighup", "reload_scenario"]

log = Logger()


def reload_scenario(simulator: Any) -> bool:
    """
    Load the simulator's scenario again from its file or name.

    :param simulator: a :class:`~smsc_sim.simulator.Simulator`; its
        ``scenario_source`` (the last name or path loaded) is read again,
        ``config.scenario`` when it has none.
    :returns: whether the new scenario is active (``False``: the old one stays).
    """
    source = simulator.scenario_source
    if source is None:
        # text given through the API has no file to read again; replacing it by the configured
        # scenario would undo what the API was asked to do, so it stays
        log.warn("SIGHUP: the active scenario was given as YAML text through the API; nothing to reload, it stays")
        return False
    sessions = sum(len(instance.sessions) for instance in simulator.instances.values())
    try:
        scenario = simulator.load_scenario(source)
    except (ScenarioError, OSError) as error:
        # the loader raises before anything changes: the old scenario is still the active one
        log.error(
            "SIGHUP: scenario {source} not reloaded, the old one stays: {problem}", source=source, problem=str(error)
        )
        return False
    except Exception:
        log.failure("SIGHUP: scenario {source} not reloaded, the old one stays", source=source)
        return False
    name = scenario.describe().get("name") or source
    log.info(
        "SIGHUP: scenario {name} reloaded from {source}; {sessions} sessions stay bound",
        name=name,
        source=source,
        sessions=sessions,
    )
    return True


def install_reload_on_sighup(simulator: Any, reactor: Any) -> None:
    """
    Reload the scenario (:func:`reload_scenario`) whenever the process gets SIGHUP.

    The handler only asks the reactor to reload (``callFromThread``): a
    signal interrupts the main thread between any two bytecodes, possibly in
    the middle of a session's work, and ``callFromThread`` is the reactor's
    signal-safe way in (it is how Twisted's own SIGINT handler stops the
    reactor).  The reload then runs as an ordinary reactor call.

    :param simulator: the simulator to reload.
    :param reactor: the running reactor (``IReactorThreads``).
    """
    number = getattr(signal, "SIGHUP", None)
    if number is None:  # Windows has no SIGHUP
        log.info("no SIGHUP on this platform: reload the scenario with PUT /api/v1/scenario")
        return

    def on_sighup(signum: int, frame: FrameType | None) -> None:
        reactor.callFromThread(reload_scenario, simulator)

    signal.signal(number, on_sighup)
