"""
A session's own timers (SMPP 3.4 section 7.2): session-init, enquire_link,
inactivity and the partial-PDU read timer.

Timers are lazy: each one fires at a deadline, looks at what happened since
(the time of the last PDU received, the start of a partial PDU) and re-arms
itself, so that the per-PDU path never touches a timer.

:class:`SessionTimers` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.outbound import OutboundRequests
from smsc_sim.session_table import BOUND_STATES, SessionState
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.config import SessionSettings
    from smsc_sim.policy import IInstancePolicy

__all__ = ["SessionTimers"]


class SessionTimers:
    """Session-init, enquire_link/inactivity and read timers."""

    # the session's state these methods share (set by SMPPSession.__init__)
    log: Logger
    clock: IReactorTime
    settings: SessionSettings
    instance: IInstancePolicy[Any]
    session_id: int
    peer: str
    state: SessionState
    _outbound: OutboundRequests
    _init_timer: IDelayedCall | None
    _idle_timer: IDelayedCall | None
    _read_timer: IDelayedCall | None
    _enquire_outstanding: bool
    # when the last octets arrived, and since when a PDU is incomplete
    _last_rx: float
    _partial_since: float | None

    if TYPE_CHECKING:

        def unbind(self) -> Deferred[None]: ...

        def _close(self) -> None: ...

    def _session_init_expired(self) -> None:
        self._init_timer = None
        if self.instance.keeps_silent():
            return
        if self.state is SessionState.OPEN:
            self.log.info(
                "session {session_id} from {peer}: no bind within {timeout}s, closing",
                session_id=self.session_id,
                peer=self.peer,
                timeout=self.settings.session_init_timeout,
            )
            self._close()

    def _idle_period(self) -> float:
        periods = [p for p in (self.settings.enquire_link_interval, self.settings.inactivity_timeout) if p > 0]
        return min(periods) if periods else 0.0

    def _arm_idle_timer(self, delay: float | None = None) -> None:
        period = self._idle_period()
        if period <= 0:
            return
        self._idle_timer = self.clock.callLater(period if delay is None else delay, self._idle_check)

    def _idle_check(self) -> None:
        """Send enquire_link after an idle interval; unbind after the inactivity timeout."""
        self._idle_timer = None
        if self.state not in BOUND_STATES:
            return
        if self.instance.keeps_silent():
            self._arm_idle_timer()
            return
        now = self.clock.seconds()
        idle = now - self._last_rx
        inactivity = self.settings.inactivity_timeout
        if inactivity > 0 and idle >= inactivity:
            self.log.info(
                "session {session_id}: inactive for {idle:.0f}s, unbinding", session_id=self.session_id, idle=idle
            )
            self.unbind()
            return
        interval = self.settings.enquire_link_interval
        if interval > 0 and idle >= interval and not self._enquire_outstanding:
            self._enquire_outstanding = True
            probe: Deferred[PDU] = Deferred()
            probe.addErrback(lambda _: None)
            self._outbound.send(make_pdu(CommandId.enquire_link, 0), probe)
        # next check: when the earliest of the two deadlines can next be reached
        candidates = []
        if interval > 0:
            candidates.append(self._last_rx + interval - now if idle < interval else interval)
        if inactivity > 0:
            candidates.append(self._last_rx + inactivity - now)
        self._arm_idle_timer(max(0.001, min(candidates)) if candidates else None)

    def _arm_read_timer(self) -> None:
        timeout = self.settings.pdu_read_timeout
        if timeout <= 0 or self._read_timer is not None:
            return
        self._read_timer = self.clock.callLater(timeout, self._read_check)

    def _read_check(self) -> None:
        self._read_timer = None
        since = self._partial_since
        if since is None or self.state is SessionState.CLOSED:
            return
        waited = self.clock.seconds() - since
        if waited >= self.settings.pdu_read_timeout:
            self.log.info(
                "session {session_id}: partial PDU not completed in {timeout}s, closing",
                session_id=self.session_id,
                timeout=self.settings.pdu_read_timeout,
            )
            self._close()
        else:
            self._read_timer = self.clock.callLater(self.settings.pdu_read_timeout - waited, self._read_check)
