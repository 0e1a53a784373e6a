"""
What a process shows the others of its part of a cluster, and how the API merges their parts.

A snapshot is what the API's views need: the instances this process runs
(their state, listeners, session count), their open sessions (at most
:data:`MAX_SESSIONS`) and the cluster core's counters.  The Redis side
(:mod:`smsc_sim.cluster.redis.snapshots`) writes it every second and reads
the others'; nothing here imports Redis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from smsc_sim.api.views import session_view

if TYPE_CHECKING:
    from smsc_sim.core.smsc import SMSCCore
    from smsc_sim.topology import InstanceRuntime

#: most sessions one snapshot lists (the count of the rest is given)
MAX_SESSIONS = 100


class ISnapshots(Protocol):
    """One cluster's snapshots as read (:class:`~smsc_sim.cluster.redis.snapshots.RedisSnapshots`)."""

    cluster: str
    owner: str
    others: dict[str, dict[str, Any]]
    gone: set[str]


class IStores(Protocol):
    """A Redis cluster store as seen here: its process tag and its clusters' snapshots."""

    owner: str

    @property
    def snapshots(self) -> Mapping[str, ISnapshots]:
        """Each cluster's snapshots."""


class IShown(Protocol):
    """What a snapshot shows: the :class:`~smsc_sim.simulator.Simulator`."""

    instances: dict[str, InstanceRuntime]
    cores: dict[str, SMSCCore]

    @property
    def cluster_stores(self) -> Mapping[str, IStores]:
        """The Redis stores, by URL."""


def cluster_snapshot(simulator: IShown, cluster: str) -> dict[str, Any] | None:
    """This process's part of ``cluster``; None when none of its instances runs here."""
    instances = [instance for instance in simulator.instances.values() if instance.settings.cluster == cluster]
    core = simulator.cores.get(cluster)
    if not instances or core is None:
        return None
    sessions = sorted(
        (session for instance in instances for session in instance.sessions.values()), key=lambda s: s.session_id
    )
    return {
        "cluster": cluster,
        "instances": [instance.describe() for instance in instances],
        "sessions": [session_view(session) for session in sessions[:MAX_SESSIONS]],
        "sessions_left_out": max(0, len(sessions) - MAX_SESSIONS),
        "stats": json.loads(json.dumps(core.stats(), default=str)),
    }


def snapshots_of(simulator: IShown) -> list[ISnapshots]:
    """Every cluster's snapshots of the simulator (none when every cluster is in memory)."""
    found: list[ISnapshots] = []
    for store in simulator.cluster_stores.values():
        found.extend(store.snapshots.values())
    return found


def other_processes(simulator: IShown) -> list[dict[str, Any]]:
    """
    The other processes of this process's shared clusters, one entry per process and cluster:
    ``{"process", "cluster", "state": "up"|"gone", "snapshot"}`` (the last one seen when gone).
    """
    result = []
    for snapshots in snapshots_of(simulator):
        for owner, snapshot in sorted(snapshots.others.items()):
            state = "gone" if owner in snapshots.gone else "up"
            result.append({"process": owner, "cluster": snapshots.cluster, "state": state, "snapshot": snapshot})
    return result


def process_name(simulator: IShown) -> str | None:
    """This process's tag among the cluster's processes; None when nothing is shared."""
    for store in simulator.cluster_stores.values():
        return store.owner
    return None
