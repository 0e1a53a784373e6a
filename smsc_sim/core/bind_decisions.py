"""
How a cluster decides on binds: credentials, origin, the bind quota (in this
process or in the cluster's shared slots), ghost binds after a drop, and
the bind_resp.

:class:`BindDecisions` is a part of :class:`smsc_sim.core.smsc.SMSCCore`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.config import AccountSettings, InstanceSettings
from smsc_sim.contracts import IBindSlots, IScenario, ISession, Reply
from smsc_sim.core.accounts import Accounts
from smsc_sim.core.binds import BindEntry, BindRegistry
from smsc_sim.core.router import Router
from smsc_sim.events import EventBus
from smsc_sim.limits import BindFailureGuard, peer_host
from smsc_sim.smpp.constants import (
    BIND_TYPES,
    BindType,
    INTERFACE_VERSION_34,
    CommandId,
    CommandStatus,
    Tag,
    response_id,
    status_name,
)
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.config import CoreSettings

__all__ = ["BindDecisions"]

_SC_INTERFACE_VERSION = int(Tag.sc_interface_version)


class BindDecisions:
    """Bind, unbind and a lost connection, as the core decides them."""

    # the core's state these methods share (set by SMSCCore.__init__)
    log: Logger
    name: str
    clock: IReactorTime
    settings: CoreSettings
    scenario: IScenario
    instances: dict[str, InstanceSettings]
    accounts: Accounts
    binds: BindRegistry
    bind_guard: BindFailureGuard
    events: EventBus
    router: Router
    counters: Counter[str]
    bind_refusals: Counter[int]
    bind_slots: IBindSlots | None
    _slot_owner: str
    _slot_timeout: float
    _pending_binds: set[int]

    def bind(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """
        Decide on a bind: credentials, origin, quota; on success register it.

        With shared ``bind_slots`` the quota is decided by another process
        (Redis), so the answer is a Deferred; without, it is immediate.
        """
        p = pdu.params
        system_id = p.get("system_id", "")
        bind_type = BIND_TYPES[CommandId(pdu.command_id)]
        if self.binds.entry(session.session_id) is not None:
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "session already bound")
        host = peer_host(session.peer)
        if self.bind_guard.locked(host):
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RBINDFAIL, "address locked out after failed binds")
        known = self.accounts.get(system_id)
        if known is not None and not known.smpp_enabled:
            # the provider's accounts are REST-only until it enables SMPP: to an SMPP bind the
            # system_id does not exist, whatever the password
            self.log.info(
                "bind refused for {system_id}: SMPP is not enabled for this account (smpp_enabled: false)",
                system_id=system_id,
            )
            refusal = self._refuse_bind(session, pdu, CommandStatus.ESME_RINVSYSID, "SMPP not enabled for the account")
            return dataclasses.replace(refusal, delay=self.bind_guard.failed(host))
        account, status = self.accounts.check(system_id, p.get("password", ""), session.peer)
        if account is None:
            refusal = self._refuse_bind(session, pdu, status, "credentials or address")
            # a held-back answer slows password guessing down (limits.bind_failure_delay)
            return dataclasses.replace(refusal, delay=self.bind_guard.failed(host))
        if self.bind_slots is not None:
            return self._bind_shared(session, pdu, account, bind_type, host)
        if 0 < self.max_binds(account) <= self.binds.count(system_id):
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "bind quota reached")
        return self._accept_bind(session, pdu, account, bind_type, host)

    def _slot_holder(self, session: ISession) -> str:
        return f"{self._slot_owner}/{session.session_id}"

    def _bind_shared(
        self, session: ISession, pdu: PDU, account: AccountSettings, bind_type: BindType, host: str
    ) -> Deferred[Reply]:
        """The quota decided by the cluster's shared slots: taken, refused, or Redis unreachable."""
        assert self.bind_slots is not None
        slots = self.bind_slots
        session_id = session.session_id
        system_id = account.system_id
        holder = self._slot_holder(session)
        self._pending_binds.add(session_id)
        d = slots.acquire(system_id, holder, self.max_binds(account))
        d.addTimeout(self._slot_timeout, self.clock)

        def decided(taken: bool) -> Reply:
            if session_id not in self._pending_binds:
                # the connection ended while Redis answered: give the slot straight back
                if taken:
                    slots.release(system_id, holder).addErrback(lambda _: None)
                return Reply(None)
            self._pending_binds.discard(session_id)
            if not taken:
                return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "bind quota reached")
            return self._accept_bind(session, pdu, account, bind_type, host)

        def unreachable(failure: Any) -> Reply:
            self._pending_binds.discard(session_id)
            self.log.warn(
                "bind refused for {system_id}: the cluster store did not answer ({error})",
                system_id=system_id,
                error=failure.getErrorMessage() or failure.type.__name__,
            )
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RSYSERR, "cluster store unreachable")

        return d.addCallbacks(decided, unreachable)

    def _accept_bind(
        self, session: ISession, pdu: PDU, account: AccountSettings, bind_type: BindType, host: str
    ) -> Reply:
        """Register a bind whose credentials and quota passed, and build its bind_resp."""
        p = pdu.params
        system_id = account.system_id
        self.bind_guard.succeeded(host)
        interface_version = p.get("interface_version", INTERFACE_VERSION_34)
        now = self.clock.seconds()
        entry = BindEntry(session, account, bind_type, interface_version, session.instance_name, now)
        self.binds.add(entry)
        self.counters["binds"] += 1
        instance = self.instances.get(session.instance_name)
        tlvs: dict[int, bytes] = {}
        if instance is not None:
            smsc_id = instance.system_id or instance.name
            if interface_version >= INTERFACE_VERSION_34:
                tlvs[_SC_INTERFACE_VERSION] = bytes([instance.sc_interface_version & 0xFF])
        else:
            smsc_id = self.name
        response = make_pdu(response_id(pdu.command_id), pdu.sequence_number, tlvs=tlvs, system_id=smsc_id[:15])
        self.events.publish(
            "bind",
            session_id=session.session_id,
            instance=session.instance_name,
            cluster=self.name,
            system_id=system_id,
            bind_type=bind_type.value,
            interface_version=interface_version,
            peer=session.peer,
        )
        on_sent: Callable[[], None] | None = None
        if bind_type.can_receive:
            flush = self.router.flush
            name = account.system_id

            def on_sent() -> None:
                flush(name)

        return Reply(response, on_sent=on_sent)

    def _refuse_bind(self, session: ISession, pdu: PDU, status: int, why: str) -> Reply:
        self.bind_refusals[status] += 1
        self.events.publish(
            "bind_refused",
            session_id=session.session_id,
            instance=session.instance_name,
            cluster=self.name,
            system_id=pdu.params.get("system_id", ""),
            status=status,
            status_name=status_name(status),
            reason=why,
            peer=session.peer,
        )
        return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, status))

    def unbound(self, session: ISession) -> None:
        """A clean unbind: the quota slot is free at once."""
        entry = self.binds.remove(session.session_id)
        if entry is not None and self.bind_slots is not None:
            self._slot_call(self.bind_slots.release(entry.account.system_id, self._slot_holder(session)))

    def connection_lost(self, session: ISession, clean: bool) -> None:
        """The connection closed; a drop while bound keeps a ghost bind for ``ghost_bind_hold``."""
        self._pending_binds.discard(session.session_id)
        entry = self.binds.remove(session.session_id)
        if entry is None:
            return
        system_id = entry.account.system_id
        if self.bind_slots is not None:
            holder = self._slot_holder(session)
            if clean:
                self._slot_call(self.bind_slots.release(system_id, holder))
            else:
                self._slot_call(self.bind_slots.hold_ghost(system_id, holder, self.settings.ghost_bind_hold))
        elif not clean:
            self.binds.hold_ghost(system_id, self.settings.ghost_bind_hold)

    def _slot_call(self, d: Deferred[None]) -> None:
        """A release or ghost hold sent to the cluster store; if it fails the lease runs out by itself."""

        def failed(failure: Any) -> None:
            self.log.warn("cluster store: bind slot not updated ({error})", error=failure.getErrorMessage())

        d.addErrback(failed)

    def max_binds(self, account: AccountSettings) -> int:
        """The account's bind quota, unless the scenario's ``limits`` override it."""
        limits = self.scenario.limits
        if limits is not None and limits.max_binds is not None:
            return int(limits.max_binds)
        return account.max_binds
