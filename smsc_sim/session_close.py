"""
How a session ends: the SMSC's unbind, a clean close with a deadline, a
reset, and telling the core once that the bind ended.

:class:`SessionClosing` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITransport
from twisted.logger import Logger

from smsc_sim.contracts import ICore, ISession, Reply
from smsc_sim.events import EventBus
from smsc_sim.limits import Backpressure
from smsc_sim.outbound import OutboundRequests
from smsc_sim.session_table import BOUND_STATES, SessionState
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.config import SessionSettings

__all__ = ["SessionClosing"]


class SessionClosing:
    """Unbind, close and reset, each bounded in time."""

    # the session's state these methods share (set by SMPPSession.__init__)
    log: Logger
    core: ICore
    clock: IReactorTime
    events: EventBus
    settings: SessionSettings
    transport: ITransport | None
    session_id: int
    instance_name: str
    system_id: str | None
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
    _backpressure: Backpressure | None

    if TYPE_CHECKING:

        def _flush(self) -> None: ...

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
