"""
The contracts of the core's cluster state that name the core's own types:
the bind registry and the throttle, as the core calls them (synchronously,
on the hot path).  The asynchronous, cluster-wide bind quota is
:class:`smsc_sim.contracts.IBindSlots`.  See docs/cluster.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import IScenario
from smsc_sim.core.binds import BindEntry, BindRegistry
from smsc_sim.core.throttle import Throttles


class IBindRegistry(Protocol):
    """
    The bind registry of one cluster as the core calls it: synchronously, on
    the hot path (every request looks its session's bind up).

    The in-memory :class:`smsc_sim.core.binds.BindRegistry` is the default.
    Live sessions are objects of one process, so this registry stays local
    to each process even in a cluster spread over processes; what processes
    share is the quota, through :class:`smsc_sim.contracts.IBindSlots`, consulted only when a
    bind is decided and released.
    """

    def entry(self, session_id: int) -> BindEntry | None:
        """The bind of a session, if it is bound."""

    def entries(self) -> list[BindEntry]:
        """Every live bind, in bind order."""

    def of_account(self, system_id: str) -> list[BindEntry]:
        """The live binds of an account, in bind order."""

    def count(self, system_id: str) -> int:
        """Binds counted against the account's quota: live ones and ghosts."""

    def ghost_count(self) -> int:
        """Ghost binds holding a slot now."""

    def add(self, entry: BindEntry) -> None:
        """Register a new bind."""

    def remove(self, session_id: int) -> BindEntry | None:
        """Forget a session's bind; its slot is free at once."""

    def hold_ghost(self, system_id: str, hold: float) -> None:
        """Keep one quota slot of the account taken for ``hold`` seconds."""

    def when_released(self, system_id: str) -> Deferred[None]:
        """Fires once the account holds no ghost bind."""

    def stop(self) -> None:
        """Release every ghost bind and cancel its timer."""


class IThrottle(Protocol):
    """
    The per-account (or per-scope) throttle as the core calls it: synchronously,
    once per submit, on the hot path.

    The in-memory :class:`smsc_sim.core.throttle.Throttles` is the default;
    with a ``cluster_store`` the assembly gives the core one whose account
    limits hold across the cluster's processes
    (:class:`smsc_sim.cluster.redis.throttle.RedisThrottles`).  A refusal is
    counted by the core.
    """

    def take(self, entry: BindEntry, parts: int, scenario: IScenario) -> int:
        """Take ``parts``; 0, or the status to refuse with."""

    def throughput(self, account: AccountSettings, scenario: IScenario) -> float:
        """The account's messages per second now."""

    def clear(self) -> None:
        """Start every limiter afresh (a new scenario, a reset)."""


if TYPE_CHECKING:
    # mypy checks that the in-memory classes keep to the contracts the core relies on
    _REGISTRY_CONTRACT: type[IBindRegistry] = BindRegistry
    _THROTTLE_CONTRACT: type[IThrottle] = Throttles
