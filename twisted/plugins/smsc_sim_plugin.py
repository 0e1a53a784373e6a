"""
The twistd plugin: ``twistd -n smsc-sim``.

One lazy ``ServiceMaker`` and nothing else: plugin discovery imports this
file, and ``ServiceMaker`` only imports :mod:`smsc_sim.tap` when the command
is used, so an error there cannot hide the subcommand.  There must be no
``twisted/__init__.py`` nor ``twisted/plugins/__init__.py`` beside this file.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import ServiceMaker


class _SMSCSimMaker(ServiceMaker):
    """The ServiceMaker whose options report a mistake in one line on stderr (``tap.TwistdOptions``)."""

    @property
    def options(self) -> Any:  # type: ignore[override]
        from twisted.python.reflect import namedAny

        return namedAny(self.module).TwistdOptions


smscSim = _SMSCSimMaker(
    "SMSC simulator",
    "smsc_sim.tap",
    "SMPP 3.4 SMSC simulator with HTTP control API.",
    "smsc-sim",
)
