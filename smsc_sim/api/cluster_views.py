"""
The API's views of a cluster shared with other processes (``cluster_store: redis://...``).

Each view shows this process's own objects, as always, and adds the other
processes' parts from their snapshots (:mod:`smsc_sim.cluster.snapshot`),
each item saying which process it came from.  A process whose snapshot
expired is shown as gone, with what it showed last.  Without a Redis
cluster store every view is as it was: nothing is added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsc_sim.cluster.snapshot import other_processes, process_name

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

__all__ = ["cluster_health", "merged_instances", "merged_sessions", "process_stats"]


def _mine(items: list[dict[str, Any]], simulator: Simulator) -> list[dict[str, Any]]:
    me = process_name(simulator)
    return items if me is None else [dict(item, process=me) for item in items]


def merged_instances(simulator: Simulator, own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This process's instances and the other processes'; a gone process's instances have the state ``gone``."""
    result = _mine(own, simulator)
    for entry in other_processes(simulator):
        for instance in entry["snapshot"].get("instances", ()):
            if isinstance(instance, dict):
                shown = dict(instance, process=entry["process"])
                if entry["state"] == "gone":
                    shown.update(state="gone", listening=[], sessions=0)
                result.append(shown)
    return result


def merged_sessions(simulator: Simulator, own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This process's sessions and the other (live) processes' (as their last snapshot showed them)."""
    result = _mine(own, simulator)
    for entry in other_processes(simulator):
        if entry["state"] == "gone":
            continue
        result += [dict(session, process=entry["process"]) for session in entry["snapshot"].get("sessions", ())
                   if isinstance(session, dict)]  # fmt: skip
    return result


def process_stats(simulator: Simulator, own: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every process's counters, cluster by cluster (None without a shared cluster)."""
    me = process_name(simulator)
    if me is None:
        return None
    result = [{"process": me, "cluster": cluster, "state": "up", "stats": stats} for cluster, stats in own.items()]
    for entry in other_processes(simulator):
        snapshot = entry["snapshot"]
        result.append({
            "process": entry["process"],
            "cluster": entry["cluster"],
            "state": entry["state"],
            "stats": snapshot.get("stats", {}),
        })  # fmt: skip
    return result


def cluster_health(simulator: Simulator) -> tuple[bool, dict[str, Any] | None]:
    """Whether every Redis cluster store answers, and what readiness says of them (None: none configured)."""
    if not simulator.cluster_stores:
        return True, None
    ok = True
    stores = []
    for url, store in simulator.cluster_stores.items():
        reachable, reason = store.reachable()
        ok = ok and reachable
        stores.append({"url": url, "reachable": reachable, **({"reason": reason} if reason else {})})
    processes = [{"process": entry["process"], "cluster": entry["cluster"], "state": entry["state"]}
                 for entry in other_processes(simulator)]  # fmt: skip
    return ok, {"process": process_name(simulator), "stores": stores, "other_processes": processes}
