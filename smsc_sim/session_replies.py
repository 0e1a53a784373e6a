"""
When and in what order a session writes its replies.

A :class:`~smsc_sim.contracts.Reply` may wait (its own delay, the
instance's latency); while replies wait, an ESME's unbind is answered only
after the responses to everything it sent before, and a close waits until the
last one is written.  A reply whose connection ended first still runs what
the core hung on it.

:class:`ReplyWriting` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.contracts import AfterReply, Reply
from smsc_sim.session_table import SessionState
from smsc_sim.smpp.constants import CommandId, CommandStatus, response_id
from smsc_sim.smpp.pdu import PDU

if TYPE_CHECKING:
    from smsc_sim.policy import IInstancePolicy

__all__ = ["ReplyWriting"]

_NOTHING = AfterReply.nothing


class _Awaited:
    """
    Stands for the timer of a reply the core has not given yet: nothing to
    cancel when the connection ends (the core's answer still comes, and what
    hangs on it still runs).
    """

    __slots__ = ()

    def active(self) -> bool:
        """Never a timer to cancel."""
        return False

    def cancel(self) -> None:
        """Nothing to cancel."""


_AWAITED: Any = _Awaited()


class ReplyWriting:
    """Writing replies at their time, unbind_resp after what came before it."""

    # the session's state these methods share (set by SMPPSession.__init__)
    log: Logger
    clock: IReactorTime
    instance: IInstancePolicy[Any]
    session_id: int
    state: SessionState
    _closing: bool
    _shut: bool
    # replies waiting for their delay: id -> (timer, reply)
    _delayed_replies: dict[int, tuple[IDelayedCall, Reply]]
    _reply_ids: int
    # the ESME's unbind, answered once every reply to what it sent before is written:
    # (the last reply id before it, when it arrived, its unbind_resp)
    _unbind_after: tuple[int, float, Reply] | None

    if TYPE_CHECKING:

        def _write(self, pdu: PDU) -> None: ...

        def unbind(self) -> Any: ...

        def _unbound(self, why: str) -> None: ...

        def _close(self) -> None: ...

        def _shut_down(self) -> None: ...

        def _reset_after_writing(self) -> None: ...

    def _reply_now(self, pdu: PDU) -> None:
        """Write a session-level response, with the instance's added latency if any."""
        if self.instance.latency > 0:
            self._apply(Reply(pdu))
        else:
            self._write(pdu)

    def _apply(self, reply: Reply) -> None:
        """Carry out a :class:`Reply`: wait, write, then act."""
        self._schedule(reply, reply.delay + self.instance.latency)

    def _schedule(self, reply: Reply, delay: float) -> None:
        """Carry out ``reply`` after ``delay`` seconds (at once if none)."""
        if delay > 0:
            self._reply_ids += 1
            reply_id = self._reply_ids
            self._delayed_replies[reply_id] = (self.clock.callLater(delay, self._due, reply_id, reply), reply)
        else:
            self._deliver_reply(reply)

    def _due(self, reply_id: int, reply: Reply) -> None:
        """A delayed reply's time came: write it (or, the connection gone, run what hangs on it)."""
        self._delayed_replies.pop(reply_id, None)
        if self.state is not SessionState.CLOSED and not self._shut:
            # also while a close waits for it: an accepted message keeps its response
            self._deliver_reply(reply)
        else:
            self._reply_lost(reply)
        self._replies_written()

    def _await_reply(self, pdu: PDU, decision: Deferred[Reply]) -> None:
        """
        The core answers later (a message of another process of the cluster).

        The reply takes its place among the delayed ones at once: it counts in
        the inbound window, an unbind waits for it, a close waits for it (up to
        the close deadline).  The core bounds the wait, so it always fires.
        """
        self._reply_ids += 1
        reply_id = self._reply_ids
        self._delayed_replies[reply_id] = (_AWAITED, Reply(None))

        def decided(reply: Reply) -> None:
            if reply_id not in self._delayed_replies:
                self._reply_lost(reply)  # the connection ended meanwhile
                return
            delay = reply.delay + self.instance.latency
            if delay > 0:
                # the same id, so the same place among the replies an unbind waits for
                self._delayed_replies[reply_id] = (self.clock.callLater(delay, self._due, reply_id, reply), reply)
            else:
                self._due(reply_id, reply)

        def failed(failure: Failure) -> None:
            self.log.failure(
                "session {session_id}: internal error handling {name} seq={seq}",
                failure,
                session_id=self.session_id,
                name=pdu.name,
                seq=pdu.sequence_number,
            )
            decided(Reply(PDU(response_id(pdu.command_id), pdu.sequence_number, CommandStatus.ESME_RSYSERR)))

        decision.addCallbacks(decided, failed)

    def _replies_written(self) -> None:
        """
        A delayed reply was written: answer a waiting unbind once nothing
        received before it is left unanswered, and close once nothing at all
        is left when a close waits.
        """
        waiting = self._unbind_after
        if waiting is not None and self.state is not SessionState.CLOSED:
            last_before, received, reply = waiting
            # reply ids grow and the dict keeps insertion order: its first key is the oldest left
            if not self._delayed_replies or next(iter(self._delayed_replies)) > last_before:
                self._unbind_after = None
                self._schedule(reply, max(0.0, received + self.instance.latency - self.clock.seconds()))
        if self._closing and not self._delayed_replies and self._unbind_after is None:
            self._shut_down()

    def _reply_lost(self, reply: Reply) -> None:
        """
        A delayed reply could not be written: the connection ended first.

        The core has decided already (an accepted message is in the store), so
        what it hung on the write still runs: the message's lifecycle starts
        and its receipt goes to another bind of the account, as a real SMSC
        would deliver a message whose submit_sm_resp was lost.  Otherwise the
        record would stay ENROUTE for ever.
        """
        if reply.on_sent is None:
            return
        try:
            reply.on_sent()
        except Exception:
            self.log.failure("session {session_id}: after a lost reply", session_id=self.session_id)

    def _deliver_reply(self, reply: Reply) -> None:
        pdu = reply.pdu
        if pdu is not None:
            self._write(pdu)
            on_sent = reply.on_sent
            if on_sent is not None:
                on_sent()
        then = reply.then
        if then is _NOTHING or self._closing:
            return  # a reply written while the connection closes acts no more
        if then is AfterReply.unbind:
            self.unbind()
        elif then is AfterReply.close:
            self._unbound("closed by scenario")
            self._close()
        elif then is AfterReply.reset:
            self._unbound("reset by scenario")
            self._reset_after_writing()

    def _unbind_received(self, pdu: PDU) -> None:
        """
        The ESME unbinds: its unbind_resp, then the close, come after the
        responses to everything it sent before.
        """
        self._unbound("unbind from the ESME")
        self.state = SessionState.UNBINDING
        reply = Reply(PDU(CommandId.unbind_resp, pdu.sequence_number, 0), then=AfterReply.close)
        if self._delayed_replies:
            # the requests before it are still being answered (latency, a reply delay, the
            # durable store's commit): their responses go first, then unbind_resp and the close
            self._unbind_after = (self._reply_ids, self.clock.seconds(), reply)
        else:
            # through _apply, so that a slow instance delays the unbind_resp and the close together
            self._apply(reply)
