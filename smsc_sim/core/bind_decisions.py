"""
How a cluster decides on binds: credentials, origin, the bind quota (in this
process or in the cluster's shared slots), ghost binds after a drop, and
the bind_resp.

:class:`BindDecisions` is a component :class:`smsc_sim.core.smsc.SMSCCore`
builds and asks; it holds the collaborators it uses, not the core.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Callable, Mapping

from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.config import AccountSettings, InstanceSettings
from smsc_sim.contracts import IBindSlots, IScenario, ISession, Reply
from smsc_sim.core.accounts import Accounts
from smsc_sim.core.binds import BindEntry, BindRegistry
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

__all__ = ["BindDecisions"]

_SC_INTERFACE_VERSION = int(Tag.sc_interface_version)


class BindDecisions:
    """
    Bind, unbind and a lost connection, as one cluster decides them.

    :param cluster: the cluster's name (the bind_resp's system_id when the instance is unknown).
    :param clock: the clock of bind times and of the wait for ``slots``.
    :param instances: the cluster's instances by name (system_id and
        sc_interface_version of the bind_resp).
    :param scenario: gives the scenario deciding now (its ``limits`` may
        override an account's quota); asked at each bind, so a scenario
        switched at run time counts at once.
    :param accounts: the credentials and origins of the accounts.
    :param binds: who is bound; the quota in this process and its ghost binds.
    :param guard: failed binds per host: the delay and the lockout.
    :param events: where ``bind`` and ``bind_refused`` are published.
    :param flush: sends an account's pending deliveries, once a bind that can
        receive has its bind_resp written.
    :param counters: the cluster's counters (``binds``).
    :param refusals: refused binds, by command_status.
    :param ghost_bind_hold: seconds a bind dropped without an unbind keeps its slot.
    :param slots: the bind quota shared with the cluster's other processes
        (``cluster_store``); ``None``, the default, keeps it in ``binds`` and
        every decision synchronous.
    :param slot_owner: names this process in ``slots`` (unique per process).
    :param slot_timeout: seconds a bind waits for ``slots`` before ESME_RSYSERR.
    """

    log = Logger()

    def __init__(
        self,
        *,
        cluster: str,
        clock: IReactorTime,
        instances: Mapping[str, InstanceSettings],
        scenario: Callable[[], IScenario],
        accounts: Accounts,
        binds: BindRegistry,
        guard: BindFailureGuard,
        events: EventBus,
        flush: Callable[[str], None],
        counters: Counter[str],
        refusals: Counter[int],
        ghost_bind_hold: float,
        slots: IBindSlots | None = None,
        slot_owner: str = "",
        slot_timeout: float = 2.0,
    ) -> None:
        self._cluster = cluster
        self._clock = clock
        self._instances = instances
        self._scenario = scenario
        self._accounts = accounts
        self._binds = binds
        self._guard = guard
        self._events = events
        self._flush = flush
        self._counters = counters
        self._refusals = refusals
        self._ghost_bind_hold = ghost_bind_hold
        self._slots = slots
        self._slot_owner = slot_owner
        self._slot_timeout = slot_timeout
        #: sessions whose bind waits for ``slots``; a session that ends meanwhile leaves it
        self._pending: set[int] = set()

    def bind(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """
        Decide on a bind: credentials, origin, quota; on success register it.

        With shared ``bind_slots`` the quota is decided by another process
        (Redis), so the answer is a Deferred; without, it is immediate.
        """
        p = pdu.params
        system_id = p.get("system_id", "")
        bind_type = BIND_TYPES[CommandId(pdu.command_id)]
        if self._binds.entry(session.session_id) is not None:
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "session already bound")
        host = peer_host(session.peer)
        if self._guard.locked(host):
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RBINDFAIL, "address locked out after failed binds")
        known = self._accounts.get(system_id)
        if known is not None and not known.smpp_enabled:
            # the provider's accounts are REST-only until it enables SMPP: to an SMPP bind the
            # system_id does not exist, whatever the password
            self.log.info(
                "bind refused for {system_id}: SMPP is not enabled for this account (smpp_enabled: false)",
                system_id=system_id,
            )
            refusal = self._refuse_bind(session, pdu, CommandStatus.ESME_RINVSYSID, "SMPP not enabled for the account")
            return dataclasses.replace(refusal, delay=self._guard.failed(host))
        account, status = self._accounts.check(system_id, p.get("password", ""), session.peer)
        if account is None:
            refusal = self._refuse_bind(session, pdu, status, "credentials or address")
            # a held-back answer slows password guessing down (limits.bind_failure_delay)
            return dataclasses.replace(refusal, delay=self._guard.failed(host))
        if self._slots is not None:
            return self._bind_shared(session, pdu, account, bind_type, host)
        if 0 < self.max_binds(account) <= self._binds.count(system_id):
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "bind quota reached")
        return self._accept_bind(session, pdu, account, bind_type, host)

    def _slot_holder(self, session: ISession) -> str:
        return f"{self._slot_owner}/{session.session_id}"

    def _bind_shared(
        self, session: ISession, pdu: PDU, account: AccountSettings, bind_type: BindType, host: str
    ) -> Deferred[Reply]:
        """The quota decided by the cluster's shared slots: taken, refused, or Redis unreachable."""
        assert self._slots is not None
        slots = self._slots
        session_id = session.session_id
        system_id = account.system_id
        holder = self._slot_holder(session)
        self._pending.add(session_id)
        d = slots.acquire(system_id, holder, self.max_binds(account))
        d.addTimeout(self._slot_timeout, self._clock)

        def decided(taken: bool) -> Reply:
            if session_id not in self._pending:
                # the connection ended while Redis answered: give the slot straight back
                if taken:
                    slots.release(system_id, holder).addErrback(lambda _: None)
                return Reply(None)
            self._pending.discard(session_id)
            if not taken:
                return self._refuse_bind(session, pdu, CommandStatus.ESME_RALYBND, "bind quota reached")
            return self._accept_bind(session, pdu, account, bind_type, host)

        def unreachable(failure: Any) -> Reply:
            self._pending.discard(session_id)
            # addTimeout's TimeoutError carries (seconds, 'Deferred') as its message: say it in words
            timed_out = failure.check(defer.TimeoutError, error.TimeoutError) is not None
            reason = f"no answer within {self._slot_timeout:g} s" if timed_out else (
                failure.getErrorMessage() or failure.type.__name__
            )
            self.log.warn(
                "bind refused for {system_id}: the cluster store did not answer ({error})",
                system_id=system_id,
                error=reason,
            )
            return self._refuse_bind(session, pdu, CommandStatus.ESME_RSYSERR, "cluster store unreachable")

        return d.addCallbacks(decided, unreachable)

    def _accept_bind(
        self, session: ISession, pdu: PDU, account: AccountSettings, bind_type: BindType, host: str
    ) -> Reply:
        """Register a bind whose credentials and quota passed, and build its bind_resp."""
        p = pdu.params
        system_id = account.system_id
        self._guard.succeeded(host)
        interface_version = p.get("interface_version", INTERFACE_VERSION_34)
        now = self._clock.seconds()
        entry = BindEntry(session, account, bind_type, interface_version, session.instance_name, now)
        self._binds.add(entry)
        self._counters["binds"] += 1
        instance = self._instances.get(session.instance_name)
        tlvs: dict[int, bytes] = {}
        if instance is not None:
            smsc_id = instance.system_id or instance.name
            if interface_version >= INTERFACE_VERSION_34:
                tlvs[_SC_INTERFACE_VERSION] = bytes([instance.sc_interface_version & 0xFF])
        else:
            smsc_id = self._cluster
        response = make_pdu(response_id(pdu.command_id), pdu.sequence_number, tlvs=tlvs, system_id=smsc_id[:15])
        self._events.publish(
            "bind",
            session_id=session.session_id,
            instance=session.instance_name,
            cluster=self._cluster,
            system_id=system_id,
            bind_type=bind_type.value,
            interface_version=interface_version,
            peer=session.peer,
        )
        on_sent: Callable[[], None] | None = None
        if bind_type.can_receive:
            flush = self._flush
            name = account.system_id

            def on_sent() -> None:
                flush(name)

        return Reply(response, on_sent=on_sent)

    def _refuse_bind(self, session: ISession, pdu: PDU, status: int, why: str) -> Reply:
        self._refusals[status] += 1
        self._events.publish(
            "bind_refused",
            session_id=session.session_id,
            instance=session.instance_name,
            cluster=self._cluster,
            system_id=pdu.params.get("system_id", ""),
            status=status,
            status_name=status_name(status),
            reason=why,
            peer=session.peer,
        )
        return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, status))

    def unbound(self, session: ISession) -> None:
        """A clean unbind: the quota slot is free at once."""
        entry = self._binds.remove(session.session_id)
        if entry is not None and self._slots is not None:
            self._slot_call(self._slots.release(entry.account.system_id, self._slot_holder(session)))

    def connection_lost(self, session: ISession, clean: bool) -> None:
        """The connection closed; a drop while bound keeps a ghost bind for ``ghost_bind_hold``."""
        self._pending.discard(session.session_id)
        entry = self._binds.remove(session.session_id)
        if entry is None:
            return
        system_id = entry.account.system_id
        if self._slots is not None:
            holder = self._slot_holder(session)
            if clean:
                self._slot_call(self._slots.release(system_id, holder))
            else:
                self._slot_call(self._slots.hold_ghost(system_id, holder, self._ghost_bind_hold))
        elif not clean:
            self._binds.hold_ghost(system_id, self._ghost_bind_hold)

    def _slot_call(self, d: Deferred[None]) -> None:
        """A release or ghost hold sent to the cluster store; if it fails the lease runs out by itself."""

        def failed(failure: Any) -> None:
            self.log.warn("cluster store: bind slot not updated ({error})", error=failure.getErrorMessage())

        d.addErrback(failed)

    def max_binds(self, account: AccountSettings) -> int:
        """The account's bind quota, unless the scenario's ``limits`` override it."""
        limits = self._scenario().limits
        if limits is not None and limits.max_binds is not None:
            return int(limits.max_binds)
        return account.max_binds
