"""
Topology presets: named sets of instances added to the configured ones.

The provider documents five instances (the facts file, A.1): SMPP1 and
SMPP2 clustered in North America, SMPP3 and SMPP4 clustered in APAC
(Singapore), and SMPP0 alone.  The embedded default has the first three;
the ``apac`` preset adds the APAC cluster, so that a client that binds to
"both SMPP3 and SMPP4", as the provider recommends, can be tested without
writing the instances out by hand.

A preset is chosen with ``topology:`` in the file, ``SMSC_SIM_TOPOLOGY`` or
``--topology``; ``--topology list`` prints :func:`describe_presets`.
"""

from __future__ import annotations

from collections.abc import Mapping

from smsc_sim.config import InstanceSettings

__all__ = ["PRESETS", "PRESET_SUMMARIES", "preset_instances", "describe_presets"]

#: preset name -> the instances it adds after the configured ones.  The ports
#: go on from the default's 2775-2777: the provider serves every instance on
#: port 8000 of its own host, which one loopback address cannot do.
PRESETS: Mapping[str, tuple[InstanceSettings, ...]] = {
    "default": (),
    "apac": (
        InstanceSettings("SMPP3", ("tcp:2778:interface=127.0.0.1",), cluster="APAC", system_id="SMPP3"),
        InstanceSettings("SMPP4", ("tcp:2779:interface=127.0.0.1",), cluster="APAC", system_id="SMPP4"),
    ),
}

#: one line per preset, for ``--topology list``
PRESET_SUMMARIES: Mapping[str, str] = {
    "default": "the instances configured (embedded: SMPP1+SMPP2 cluster NA on 2775/2776, SMPP0 alone on 2777)",
    "apac": "adds SMPP3+SMPP4, cluster APAC (the provider's Singapore pair), on 2778/2779",
}


def preset_instances(name: str) -> tuple[InstanceSettings, ...]:
    """The instances preset ``name`` adds; raises KeyError for an unknown name."""
    return PRESETS[name]


def describe_presets() -> str:
    """The text ``--topology list`` prints: one ``NAME  summary`` line per preset."""
    width = max(len(name) for name in PRESETS)
    return "\n".join(f"{name.ljust(width)}  {PRESET_SUMMARIES[name]}" for name in PRESETS)
