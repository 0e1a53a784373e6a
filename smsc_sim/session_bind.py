"""
A bind, session side: the instance's outage decides first, then the
inbound window; the core decides on the rest (at once, or later when the
quota lives in the cluster store), and an accepted bind moves the session
to its bound state.

:class:`SessionBinding` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.contracts import ICore, ISession, Reply
from smsc_sim.session_table import BOUND_STATE, SessionState
from smsc_sim.smpp.constants import BIND_TYPES, BindType, CommandId, CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU

if TYPE_CHECKING:
    from smsc_sim.policy import IInstancePolicy

__all__ = ["SessionBinding"]

_CLOSED = SessionState.CLOSED


class SessionBinding:
    """The session's bind: refused early, or asked of the core, then answered."""

    # the session's state these methods share (set by SMPPSession.__init__)
    log: Logger
    core: ICore
    clock: IReactorTime
    instance: IInstancePolicy[Any]
    instance_name: str
    session_id: int
    peer: str
    state: SessionState
    system_id: str | None
    bind_type: BindType | None
    interface_version: int
    bound_at: float | None
    counters: dict[str, int]
    _delayed_replies: dict[int, tuple[IDelayedCall, Reply]]
    _init_timer: IDelayedCall | None
    # a bind waits for the cluster store's quota decision (cluster_store)
    _bind_pending: bool
    _clean: bool

    if TYPE_CHECKING:

        def _apply(self, reply: Reply) -> None: ...

        def _reply_now(self, pdu: PDU) -> None: ...

        def _internal_error(self, pdu: PDU) -> None: ...

        def _arm_idle_timer(self, delay: float | None = None) -> None: ...

    def _bind(self, pdu: PDU) -> None:
        """Ask the core about a bind, unless the instance's outage decides first."""
        verdict = self.instance.bind_verdict(pdu)
        if verdict is not None:
            if verdict.pdu is not None:
                self._apply(verdict)
            return
        size, status = self.instance.window
        if len(self._delayed_replies) >= size > 0:
            # failed binds may be answered late (limits.bind_failure_delay): keep them bounded too
            self.counters["window_refused"] += 1
            self._reply_now(PDU(response_id(pdu.command_id), pdu.sequence_number, status))
            return
        if self._bind_pending:
            # a second bind before the first one's answer: the first one holds the session
            self._reply_now(PDU(response_id(pdu.command_id), pdu.sequence_number, CommandStatus.ESME_RALYBND))
            return
        self.interface_version = pdu.params.get("interface_version", 0x34)
        try:
            decision = self.core.bind(cast(ISession, self), pdu)
        except Exception:
            self._internal_error(pdu)
            return
        if isinstance(decision, Deferred):
            # the quota lives in another process (cluster_store): answer when it has decided
            self._bind_pending = True

            def decided(reply: Reply) -> None:
                self._bind_pending = False
                if self.state is not _CLOSED and reply.pdu is not None:
                    self._bind_answered(pdu, reply)

            def failed(failure: Failure) -> None:
                self._bind_pending = False
                if self.state is not _CLOSED:
                    self._internal_error(pdu)

            decision.addCallbacks(decided, failed)
            return
        self._bind_answered(pdu, decision)

    def _bind_answered(self, pdu: PDU, reply: Reply) -> None:
        """Move to the bound state if the core accepted the bind, and write its answer."""
        if reply.pdu is not None and reply.pdu.command_status == 0:
            bind_type = BIND_TYPES[CommandId(pdu.command_id)]
            self.state = BOUND_STATE[bind_type]
            self.bind_type = bind_type
            self.system_id = pdu.params.get("system_id", "")
            self.bound_at = self.clock.seconds()
            self._clean = False
            if self._init_timer is not None and self._init_timer.active():
                self._init_timer.cancel()
            self._init_timer = None
            self._arm_idle_timer()
            self.log.info(
                "bind {bind_type} from {system_id} on {instance} ({peer}), session {session_id}",
                bind_type=bind_type.value,
                system_id=self.system_id,
                instance=self.instance_name,
                peer=self.peer,
                session_id=self.session_id,
            )
        else:
            self.log.info(
                "bind refused for {system_id} on {instance} ({peer}): {status}",
                system_id=pdu.params.get("system_id", ""),
                instance=self.instance_name,
                peer=self.peer,
                status=reply.pdu.command_status if reply.pdu is not None else "no answer",
            )
        self._apply(reply)
