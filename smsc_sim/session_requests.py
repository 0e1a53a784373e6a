"""
The requests an SMSC sends on a session: deliver_sm and data_sm through the
outbound window, outbind and alert_notification (no response), and what the
ESME's responses to them, or their expiry, do to the session.

:class:`SessionRequests` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ITransport
from twisted.logger import Logger

from smsc_sim.contracts import DeliveryFailed
from smsc_sim.modes import DeliveryFailure
from smsc_sim.outbound import DeliveryWaiter, OutboundRequests
from smsc_sim.session_table import SessionState
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU

if TYPE_CHECKING:
    from smsc_sim.config import SessionSettings
    from smsc_sim.policy import IInstancePolicy

__all__ = ["SessionRequests"]

# plain ints and module constants, as on the session's hot path (a response comes here for every delivery)
_UNBIND = int(CommandId.unbind)
_ENQUIRE_LINK = int(CommandId.enquire_link)
_BOUND_TRX = SessionState.BOUND_TRX
_BOUND_RX = SessionState.BOUND_RX
_CLOSED = SessionState.CLOSED


class SessionRequests:
    """Send the SMSC's requests and take the ESME's responses to them."""

    # the session's state these methods share (set by SMPPSession.__init__)
    log: Logger
    instance: IInstancePolicy[Any]
    settings: SessionSettings
    session_id: int
    transport: ITransport | None
    state: SessionState
    _outbound: OutboundRequests
    _closing: bool
    _enquire_outstanding: bool

    if TYPE_CHECKING:

        def _unbound(self, why: str) -> None: ...

        def _close(self) -> None: ...

    def deliver(self, pdu: PDU) -> Deferred[PDU]:
        """
        Send a deliver_sm or data_sm through the outbound window.

        :returns: fires with the ESME's response, or fails with
            :class:`DeliveryFailed` (``timeout``, ``closed``, ``queue_full``).
        """
        deferred: Deferred[PDU] = Deferred()
        self.send_delivery(pdu, deferred)
        return deferred

    def send_delivery(self, pdu: PDU, waiter: DeliveryWaiter) -> None:
        """
        :meth:`deliver` with the caller's own waiter instead of a new Deferred:
        ``waiter.callback(response)``, or ``waiter.errback(DeliveryFailed(...))``
        (the router sends every receipt this way).
        """
        if self._may_deliver():
            self._outbound.deliver(pdu, waiter)
        else:
            waiter.errback(DeliveryFailed(DeliveryFailure.CLOSED))

    def send_unanswered(self, pdu: PDU) -> int:
        """
        Write outbind or alert_notification, the SMSC's requests without a
        response PDU (SMPP 3.4 sections 4.1.7 and 4.12), with the session's
        next sequence number; nothing is written on a closed or closing session.

        :returns: the sequence number, or 0 when nothing was written.
        """
        if self.transport is None or self.state is _CLOSED or self._closing:
            return 0
        return self._outbound.send_unanswered(pdu)

    def outbound_pending(self) -> int:
        """Deliveries written and unanswered plus those waiting behind the window."""
        return len(self._outbound)

    def _may_deliver(self) -> bool:
        """Bound to receive (RX or TRX) and not closing: deliveries may be written."""
        state = self.state
        return (state is _BOUND_TRX or state is _BOUND_RX) and not self._closing

    def _outbound_window(self) -> int:
        """Deliveries kept unanswered at most: the scenario's ``window.outbound``, else the settings'."""
        return self.instance.outbound_window or self.settings.outbound_window

    def _response_received(self, pdu: PDU) -> None:
        request = self._outbound.answered(pdu)
        if request is None:
            self.log.debug(
                "session {session_id}: {name} for unknown sequence {seq} ignored",
                session_id=self.session_id,
                name=pdu.name,
                seq=pdu.sequence_number,
            )
            return
        command_id = request.command_id
        if command_id == _UNBIND:
            self._unbound("unbind answered")
            self._close()
        elif command_id == _ENQUIRE_LINK:
            self._enquire_outstanding = False

    def _request_expired(self, request: PDU) -> None:
        """A request of ours went unanswered: an enquire_link or unbind ends the connection."""
        if request.command_id == _ENQUIRE_LINK:
            self.log.info("session {session_id}: enquire_link unanswered, closing", session_id=self.session_id)
            self._close()
        elif request.command_id == _UNBIND:
            self._close()
