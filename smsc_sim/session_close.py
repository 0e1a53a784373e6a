"""
How a session ends: the SMSC's unbind, a clean close with a deadline, a
reset, and, once the connection is lost, its timers cancelled, its pending
deliveries failed and the core told once that the bind ended.

:class:`SessionClosing` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.contracts import ICore, ISession, Reply
from smsc_sim.events import EventBus
from smsc_sim.limits import Backpressure
from smsc_sim.outbound import OutboundRequests
from smsc_sim.session_table import BOUND_STATES, SessionState
from smsc_sim.smpp.constants import BindType, CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.config import SessionSettings
    from smsc_sim.policy import IInstancePolicy

__all__ = ["SessionClosing"]


class SessionClosing:
    """Unbind, close and reset, each bounded in time."""

    # the session's state these methods share (set by SMPPSession.__init__)
    log: Logger
    core: ICore
    clock: IReactorTime
    events: EventBus
    instance: IInstancePolicy[Any]
    settings: SessionSettings
    transport: ITransport | None
    session_id: int
    instance_name: str
    system_id: str | None
    bind_type: BindType | None
    peer: str
    state: SessionState
    _outbound: OutboundRequests
    _delayed_replies: dict[int, tuple[IDelayedCall, Reply]]
    _unbind_after: tuple[int, float, Reply] | None
    _unbind_deferred: Deferred[None] | None
    # the bind ended, or never began: nothing to tell the core
    _clean: bool
    # a close is decided: nothing more is read, replies already due are still written
    _closing: bool
    # loseConnection (or abortConnection) was called: nothing more is written
    _shut: bool
    # aborts a close the peer does not take (it stopped reading) after settings.close_timeout
    _close_timer: IDelayedCall | None
    _init_timer: IDelayedCall | None
    _idle_timer: IDelayedCall | None
    _read_timer: IDelayedCall | None
    _backpressure: Backpressure | None

    if TYPE_CHECKING:

        def _flush(self) -> None: ...

        def _reply_lost(self, reply: Reply) -> None: ...

    def unbind(self) -> Deferred[None]:
        """
        End the session from the SMSC side: unbind, wait for unbind_resp
        (bounded by the response timer), close.
        """
        if self._unbind_deferred is not None:
            return self._unbind_deferred
        done: Deferred[None] = Deferred()
        if self.state is SessionState.CLOSED:
            done.callback(None)
            return done
        if self.state not in BOUND_STATES:
            self._unbind_deferred = done
            self._close()
            return done
        self._unbind_deferred = done
        self.state = SessionState.UNBINDING
        request: Deferred[PDU] = Deferred()
        request.addErrback(lambda _: None)
        self._outbound.send(make_pdu(CommandId.unbind, 0), request, self.settings.unbind_timeout)
        return done

    def abort(self) -> None:
        """Reset the connection (RST), no unbind."""
        if self.transport is not None and self.state is not SessionState.CLOSED:
            self._flush()
            self._closing = self._shut = True
            if self._backpressure is not None:
                self._backpressure.detach()
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def _reset_after_writing(self) -> None:
        """
        Reset the connection once what was written has left.

        ``abortConnection`` discards Twisted's write buffer, which still holds
        the response just written, and an orderly close sends a FIN first; so
        the buffer is pushed to the kernel now through the transport's
        ``IWriteDescriptor.doWrite`` and then the connection is aborted (an
        RST).  The peer reads the response, then gets the reset.
        """
        transport = self.transport
        if transport is None or self.state is SessionState.CLOSED or self._closing:
            return
        self._flush()  # the answers collected in this dataReceived, the response among them
        flush = getattr(transport, "doWrite", None)
        if flush is not None:
            try:
                flush()
            except OSError:
                pass  # the peer is gone already; the abort below still ends it
        self.abort()

    def _unbound(self, why: str) -> None:
        """Tell the core, once, that the bind ended cleanly."""
        if self._clean:
            return  # never bound, or already reported
        if self.state in BOUND_STATES or self.state is SessionState.UNBINDING:
            self.log.info(
                "unbind of {system_id} on {instance}, session {session_id}: {why}",
                system_id=self.system_id,
                instance=self.instance_name,
                session_id=self.session_id,
                why=why,
            )
            self._clean = True
            # a part of SMPPSession, which is the ISession the core knows
            self.core.unbound(cast(ISession, self))
            self.events.publish(
                "unbind", session_id=self.session_id, instance=self.instance_name, system_id=self.system_id
            )

    def _close(self) -> None:
        """
        Close the connection cleanly (FIN), with a deadline.

        Nothing more is read.  Replies still waiting for their delay (an
        accepted message's submit_sm_resp among them) are written first, at
        their time; then the connection is closed.
        """
        if self.transport is not None and not self._closing:
            self._flush()  # what was answered before the close goes first, as it did unbatched
            self._closing = True
            # a paused producer would keep the connection open forever
            if self._backpressure is not None:
                self._backpressure.detach()
            if not self._delayed_replies and self._unbind_after is None:
                self._shut_down()
            # else _replies_written closes after the last one

    def _shut_down(self) -> None:
        """
        ``loseConnection``, and ``abortConnection`` if it has not ended within
        ``settings.close_timeout``: a clean close waits until the peer has
        read every octet written, which a peer that stopped reading never
        does, and the session would stay bound for ever.
        """
        transport = self.transport
        if transport is None or self._shut or self.state is SessionState.CLOSED:
            return
        self._shut = True
        self._flush()
        transport.loseConnection()
        timeout = self.settings.close_timeout
        if timeout > 0 and self.state is not SessionState.CLOSED:
            self._close_timer = self.clock.callLater(timeout, self._close_expired)

    def _close_expired(self) -> None:
        """The peer did not take the close in time: reset the connection; connectionLost frees the bind."""
        self._close_timer = None
        transport = self.transport
        if transport is None or self.state is SessionState.CLOSED:
            return
        self.log.info(
            "session {session_id} from {peer}: close not completed within {timeout}s (the peer does not read), "
            "resetting",
            session_id=self.session_id,
            peer=self.peer,
            timeout=self.settings.close_timeout,
        )
        transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = Failure(ConnectionError("lost"))) -> None:
        """Cancel every timer, fail every pending delivery and tell the core."""
        was_bound = self.state in BOUND_STATES or self.state is SessionState.UNBINDING
        clean = self._clean or not was_bound
        self.state = SessionState.CLOSED
        for timer in (self._init_timer, self._idle_timer, self._read_timer, self._close_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._init_timer = self._idle_timer = self._read_timer = self._close_timer = None
        self._unbind_after = None  # an unbind_resp has no on_sent: nothing to run for it
        lost_replies = list(self._delayed_replies.values())
        self._delayed_replies.clear()
        for call, lost in lost_replies:
            if call.active():
                call.cancel()
            self._reply_lost(lost)
        self._outbound.fail_all()
        if self._unbind_deferred is not None:
            unbind, self._unbind_deferred = self._unbind_deferred, None
            unbind.callback(None)
        self.instance.session_ended(self)
        self.core.connection_lost(cast(ISession, self), clean)
        self.log.info(
            "session {session_id} ended: system_id={system_id} bind={bind_type} instance={instance} "
            "peer={peer} reason={reason}",
            session_id=self.session_id,
            system_id=self.system_id,
            bind_type=self.bind_type.value if self.bind_type else None,
            instance=self.instance_name,
            peer=self.peer,
            reason=reason.getErrorMessage() if clean else "connection dropped while bound",
        )
        self.events.publish(
            "session_closed",
            session_id=self.session_id,
            instance=self.instance_name,
            system_id=self.system_id,
            clean=clean,
        )
