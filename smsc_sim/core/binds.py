"""
The bind registry of one cluster: who is bound, and the bind quota.

The quota counts live binds and ghost binds (a bind whose connection dropped
without an unbind keeps its slot for ``ghost_bind_hold`` seconds, as the
provider's platform does until its own timers notice the loss), across every
instance of the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from smsc_sim.config import AccountSettings
from smsc_sim.contracts import ISession
from smsc_sim.smpp.constants import BindType


@dataclass(slots=True)
class BindEntry:
    """
    One bound session as the core knows it.

    The bind type and interface version are taken from the bind PDU, so they
    are right even before the session has updated its own attributes.
    """

    session: ISession
    account: AccountSettings
    bind_type: BindType
    interface_version: int
    instance: str
    bound_at: float

    @property
    def session_id(self) -> int:
        """The session's id."""
        return self.session.session_id


class BindRegistry:
    """
    Bound sessions by session id and by account, plus ghost binds.

    :param clock: runs the ghost-bind release timers.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._by_session: dict[int, BindEntry] = {}
        self._by_account: dict[str, list[BindEntry]] = {}
        self._ghosts: dict[str, list[IDelayedCall]] = {}
        self._release_waiters: dict[str, list[Deferred[None]]] = {}

    def entry(self, session_id: int) -> BindEntry | None:
        """The bind of a session, if it is bound."""
        return self._by_session.get(session_id)

    def entries(self) -> list[BindEntry]:
        """Every live bind, in bind order."""
        return list(self._by_session.values())

    def of_account(self, system_id: str) -> list[BindEntry]:
        """The live binds of an account, in bind order (the registry's own list: do not change it)."""
        return self._by_account.get(system_id, [])

    def count(self, system_id: str) -> int:
        """Binds counted against the account's quota: live ones and ghosts."""
        return len(self._by_account.get(system_id, ())) + len(self._ghosts.get(system_id, ()))

    def ghost_count(self) -> int:
        """Ghost binds holding a slot now."""
        return sum(len(calls) for calls in self._ghosts.values())

    def add(self, entry: BindEntry) -> None:
        """Register a new bind."""
        self._by_session[entry.session_id] = entry
        self._by_account.setdefault(entry.account.system_id, []).append(entry)

    def remove(self, session_id: int) -> BindEntry | None:
        """Forget a session's bind; its slot is free at once."""
        entry = self._by_session.pop(session_id, None)
        if entry is not None:
            binds = self._by_account.get(entry.account.system_id)
            if binds is not None:
                binds.remove(entry)
                if not binds:
                    del self._by_account[entry.account.system_id]
        return entry

    def hold_ghost(self, system_id: str, hold: float) -> None:
        """
        Keep one quota slot of the account taken for ``hold`` seconds.

        :param system_id: the account.
        :param hold: seconds; nothing is held when ``<= 0``.
        """
        if hold <= 0:
            return
        calls = self._ghosts.setdefault(system_id, [])

        def release() -> None:
            held = self._ghosts.get(system_id)
            if held is not None and call in held:
                held.remove(call)
                if not held:
                    del self._ghosts[system_id]
                    self._released(system_id)

        call = self._clock.callLater(hold, release)
        calls.append(call)

    def when_released(self, system_id: str) -> Deferred[None]:
        """
        Fires once the account holds no ghost bind (at once when it holds none).

        For tests and tools that must wait for the hold to pass without
        guessing its end: on the real reactor it fires when the release timer
        does.
        """
        if system_id not in self._ghosts:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._release_waiters.setdefault(system_id, []).append(waiter)
        return waiter

    def _released(self, system_id: str) -> None:
        for waiter in self._release_waiters.pop(system_id, []):
            waiter.callback(None)

    def stop(self) -> None:
        """Release every ghost bind and cancel its timer."""
        for calls in self._ghosts.values():
            for call in calls:
                if call.active():
                    call.cancel()
        released = list(self._ghosts)
        self._ghosts.clear()
        for system_id in released:
            self._released(system_id)
