"""
The twistd plugin: ``twistd -n smsc-sim``.

One lazy ``ServiceMaker`` and nothing else: plugin discovery imports this
file, and ``ServiceMaker`` only imports :mod:`smsc_sim.tap` when the command
is used, so an error there cannot hide the subcommand.  There must be no
``twisted/__init__.py`` nor ``twisted/plugins/__init__.py`` beside this file.
"""

from __future__ import annotations

from twisted.application.service import ServiceMaker

smscSim = ServiceMaker(
    "SMSC simulator",
    "smsc_sim.tap",
    "SMPP 3.4 SMSC simulator with HTTP control API.",
    "smsc-sim",
)
