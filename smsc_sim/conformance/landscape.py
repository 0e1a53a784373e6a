"""
What the judge must know of the simulator that no event says: which
instances form a cluster, each account's throughput, the session's window.

It is plain data given to the judge's constructor (built from the
configuration by :meth:`Landscape.from_config`), so the judge never
reaches into the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from smsc_sim.config import Config


@dataclass(frozen=True)
class Landscape:
    """
    The simulator's topology and limits, as the judge needs them.

    :ivar clusters: instance name -> cluster name.
    :ivar throughput: account (system_id) -> messages per second; 0 or
        absent: unlimited (throttle-ignored is then never flagged).
    :ivar inbound_window: requests of one session answered-later at once;
        more get :attr:`window_status`.
    :ivar window_status: the status of a request beyond the window (ESME_RMSGQFUL).
    """

    clusters: Mapping[str, str] = field(default_factory=dict)
    throughput: Mapping[str, float] = field(default_factory=dict)
    inbound_window: int = 100
    window_status: int = 0x14

    @classmethod
    def from_config(cls, config: Config) -> Landscape:
        """The landscape of a configuration (instances, accounts, session limits)."""
        return cls(
            clusters={instance.name: instance.cluster for instance in config.instances},
            throughput={account.system_id: account.throughput for account in config.accounts},
            inbound_window=config.session.inbound_window,
            window_status=config.session.window_status,
        )

    def cluster_of(self, instance: str | None) -> str | None:
        """The cluster of an instance; an unknown instance is a cluster of its own."""
        if instance is None:
            return None
        return self.clusters.get(instance, instance)

    def members(self, cluster: str) -> tuple[str, ...]:
        """The instances of a cluster, in configuration order."""
        found = tuple(name for name, of in self.clusters.items() if of == cluster)
        return found if found else (cluster,)
