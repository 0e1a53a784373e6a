"""
One ESME connection, SMSC side: the SMPP 3.4 session state machine.

The session knows framing, states (section 2.3), sequence numbers, the
inbound and outbound windows and the timers of section 7.2.  It does not
know accounts, messages, scenarios or outage modes: it asks its core
(:class:`smsc_sim.contracts.ICore`) what to answer, and writes the answer
when and how the :class:`~smsc_sim.contracts.Reply` says; it asks its
instance (:class:`smsc_sim.policy.IInstancePolicy`) what an outage means for
it.

This module holds the connection's start, the inbound path (bytes, frames,
the state table, the core) and the wire.  The other parts of
:class:`SMPPSession` have a module each: the bind
(:mod:`smsc_sim.session_bind`), when replies are written
(:mod:`smsc_sim.session_replies`), the requests it sends to the ESME
(:mod:`smsc_sim.session_requests`), how the session ends and the connection's
loss (:mod:`smsc_sim.session_close`), its timers
(:mod:`smsc_sim.session_timers`) and the PDU trace
(:mod:`smsc_sim.session_trace`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from smsc_sim.contracts import AfterReply, ICore, Reply
from smsc_sim.events import EventBus
from smsc_sim.limits import Backpressure
from smsc_sim.outbound import DeliveryWaiter, OutboundRequests
from smsc_sim.session_bind import SessionBinding
from smsc_sim.session_close import SessionClosing
from smsc_sim.session_replies import ReplyWriting
from smsc_sim.session_requests import SessionRequests
from smsc_sim.session_table import (
    BOUND_STATE,
    BOUND_STATES,
    CORE_REQUESTS,
    SMSC_ONLY_NO_RESPONSE,
    SessionState,
)
from smsc_sim.session_timers import SessionTimers
from smsc_sim.session_trace import SessionTracing
from smsc_sim.smpp.codec import PDUDecodeError, decode, encode
from smsc_sim.smpp.constants import (
    BIND_TYPES,
    BindType,
    CommandId,
    RESPONSE_BIT,
    CommandStatus,
    is_response,
    response_id,
)
from smsc_sim.smpp.framing import FramingError, SMPPFramer
from smsc_sim.smpp.pdu import PDU, make_pdu

# the state table's names, and the waiter, where they were first defined (imported from here elsewhere)
__all__ = ["SMPPSession", "SessionState", "BOUND_STATE", "CORE_REQUESTS", "DeliveryWaiter", "SessionFactoryCallable"]

if TYPE_CHECKING:
    from smsc_sim.config import SessionSettings
    from smsc_sim.policy import IInstancePolicy


# the hot path compares plain ints and module constants (an enum member is a class attribute lookup)
_SUBMIT_SM = int(CommandId.submit_sm)
_SUBMIT_SM_RESP = int(CommandId.submit_sm_resp)
_BOUND_TX = SessionState.BOUND_TX
_BOUND_TRX = SessionState.BOUND_TRX
_CLOSED = SessionState.CLOSED
_NOTHING = AfterReply.nothing
_BYTES_IN = "bytes_in"
_BYTES_OUT = "bytes_out"


class SMPPSession(
    ReplyWriting, SessionRequests, SessionBinding, SessionClosing, SessionTimers, SessionTracing, Protocol
):
    """
    The SMSC side of one SMPP connection.

    :param core: the core of the instance's cluster.
    :param instance: the instance the connection arrived on: what its outage
        means for the session, its latency and windows are asked on every PDU.
    :param settings: timers and windows.
    :param clock: the clock every timer runs on.
    :param events: where PDUs and state changes are published.
    :param session_id: unique in the process.
    :param trace: log every PDU, decoded.
    """

    log = Logger()

    def __init__(
        self,
        core: ICore,
        instance: IInstancePolicy[SMPPSession],
        settings: SessionSettings,
        clock: IReactorTime,
        events: EventBus,
        session_id: int,
        trace: bool = False,
    ) -> None:
        self.core = core
        self.instance = instance
        self.instance_name = instance.name
        self.settings = settings
        self.clock = clock
        self.events = events
        self.session_id = session_id
        self.trace = trace
        self.state = SessionState.OPEN
        self.system_id: str | None = None
        self.bind_type: BindType | None = None
        self.interface_version = 0x34
        self.peer = ""
        self.local = ""
        self.connected_at = 0.0
        self.bound_at: float | None = None
        self.counters: dict[str, int] = {"pdus_in": 0, "pdus_out": 0, "window_refused": 0}
        self._framer = SMPPFramer(settings.max_pdu_size)
        self._last_rx = 0.0
        self._partial_since: float | None = None
        # deliver_sm, data_sm, enquire_link and unbind sent to the ESME: window, queue, deadlines
        self._outbound = OutboundRequests(
            clock, settings, self._outbound_window, self._write, self._may_deliver, self._request_expired
        )
        # replies waiting for their delay: id -> (timer, reply)
        self._delayed_replies: dict[int, tuple[IDelayedCall, Reply]] = {}
        self._reply_ids = 0
        self._init_timer: IDelayedCall | None = None
        #: a bind waits for the cluster store's quota decision (cluster_store)
        self._bind_pending = False
        self._idle_timer: IDelayedCall | None = None
        self._read_timer: IDelayedCall | None = None
        self._enquire_outstanding = False
        self._unbind_deferred: Deferred[None] | None = None
        # the ESME's unbind, answered once every reply to what it sent before is written:
        # (the last reply id before it, when it arrived, its unbind_resp)
        self._unbind_after: tuple[int, float, Reply] | None = None
        self._clean = True
        # a close is decided: nothing more is read, replies already due are still written
        self._closing = False
        # loseConnection (or abortConnection) was called: nothing more is written
        self._shut = False
        # aborts a close the peer does not take (it stopped reading) after settings.close_timeout
        self._close_timer: IDelayedCall | None = None
        self._backpressure: Backpressure | None = None
        # encoded PDUs waiting for the one write at the end of dataReceived (None: write at once)
        self._batch: list[bytes] | None = None
        # a submit_sm read while PDU taps listen, not yet told to them, and when it was read: its answer,
        # written at once as usual, tells them of both in one call (IPduTap.submit_answered)
        self._untold: PDU | None = None
        self._untold_at = 0.0
        #: submit_sm accepted at once and told to the accepted-submit sinks alone (ISession.accepted_at_once)
        self.accepted_at_once = 0

    # ------------------------------------------------------------------
    # connection lifecycle
    # ------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Start the session-init timer and announce the connection."""
        peer = self.transport.getPeer()  # type: ignore[union-attr]
        host = getattr(peer, "host", None)
        port = getattr(peer, "port", None)
        self.peer = f"{host}:{port}" if host is not None else str(peer)
        self.local = _address(self.transport.getHost())  # type: ignore[union-attr]
        now = self.clock.seconds()
        self.connected_at = now
        self._last_rx = now
        # stop reading from an ESME that does not read what we write (docs/reliability.md)
        self._backpressure = Backpressure(self.transport)
        self._backpressure.attach()
        self.instance.session_started(self)
        self.log.info(
            "connection {session_id} from {peer} on {instance}",
            session_id=self.session_id,
            peer=self.peer,
            instance=self.instance_name,
        )
        self.events.publish(
            "connection", session_id=self.session_id, instance=self.instance_name, peer=self.peer, local=self.local
        )
        if self.settings.session_init_timeout > 0:
            self._init_timer = self.clock.callLater(self.settings.session_init_timeout, self._session_init_expired)

    # ------------------------------------------------------------------
    # inbound bytes
    # ------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Frame, decode and dispatch every complete PDU in ``data``.

        The answers written meanwhile are collected and go to the transport
        in one write at the end (or before the connection is closed), in the
        order they were made: one write per read instead of one per PDU.
        """
        if self.events.wants(_BYTES_IN):
            self._publish_octets(_BYTES_IN, data)  # as read, malformed or not: the pcap trace shows the wire
        if self.state is SessionState.CLOSED or self._closing:
            return
        if self.instance.swallows_input():
            return
        if self._batch is not None:  # re-entered from a write of our own handling: the outer call writes
            self._handle(data)
            return
        self._batch = []
        try:
            self._handle(data)
        finally:
            self._flush()
            self._batch = None

    def _handle(self, data: bytes) -> None:
        """Frame and dispatch ``data`` (see :meth:`dataReceived`)."""
        self._last_rx = self.clock.seconds()
        failure: FramingError | None = None
        try:
            frames = self._framer.feed(data)
        except FramingError as error:
            frames, failure = error.frames, error
        for frame in frames:
            if self.state is SessionState.CLOSED or self._closing:
                return
            self._frame_received(frame)
        if failure is not None:
            self.log.warn(
                "session {session_id}: bad command_length, closing ({error})", session_id=self.session_id, error=failure
            )
            self._write(make_pdu(CommandId.generic_nack, failure.sequence_number, failure.status))
            self._close()
            return
        if self._framer.partial:
            if self._partial_since is None:
                self._partial_since = self._last_rx
                self._arm_read_timer()
        else:
            self._partial_since = None

    def _frame_received(self, frame: bytes) -> None:
        """Decode one frame and dispatch it; decoding errors get the spec's answer."""
        self.counters["pdus_in"] += 1
        try:
            pdu = decode(frame)
        except PDUDecodeError as error:
            self._decode_failed(error)
            return
        if self.trace:
            self._trace("in", pdu)
        events = self.events
        if events.wants_pdus:
            events.publish("pdu_in", session_id=self.session_id, instance=self.instance_name, pdu=pdu)
        taps = events.pdu_taps
        if taps and self._untold is not None:
            self._tell_untold()  # read re-entrantly while a submit is handled: keep the taps' order
        state = self.state
        if pdu.command_id == _SUBMIT_SM and (state is _BOUND_TRX or state is _BOUND_TX):
            # the PDU an ESME sends most, straight to the core (Table 2-1 allows it)
            if not taps:
                self._core_request(pdu)
                return
            # the taps hear of it with its answer when that is written at once (one call instead of two),
            # else now that the core has decided
            self._untold = pdu
            self._untold_at = self._last_rx
            try:
                self._core_request(pdu)
            finally:
                if self._untold is not None:
                    self._tell_untold()
            return
        for tap in taps:
            tap.pdu_in(self, pdu, self._last_rx)
        self._dispatch(pdu)

    def _tell_untold(self) -> None:
        """Tell the taps of the submit_sm read that they have not heard of yet."""
        pdu = self._untold
        self._untold = None
        if pdu is not None:
            for tap in self.events.pdu_taps:
                tap.pdu_in(self, pdu, self._untold_at)

    def _decode_failed(self, error: PDUDecodeError) -> None:
        """Answer an undecodable PDU: generic_nack for header errors, else the response with the status."""
        self.log.info(
            "session {session_id}: undecodable PDU: {error}", session_id=self.session_id, error=str(error)
        )
        command_id = error.command_id
        # A malformed response, or a request with no response PDU, can only be
        # answered with generic_nack (section 2.8).
        if error.nack or command_id is None or is_response(command_id) or command_id in SMSC_ONLY_NO_RESPONSE:
            self._write(make_pdu(CommandId.generic_nack, error.sequence_number, error.status))
            return
        self._write(PDU(response_id(command_id), error.sequence_number, error.status))

    # ------------------------------------------------------------------
    # the state table
    # ------------------------------------------------------------------

    def _dispatch(self, pdu: PDU) -> None:
        """Apply SMPP 3.4 Table 2-1 to one decoded PDU."""
        command_id = pdu.command_id
        state = self.state
        if command_id & RESPONSE_BIT:  # is_response, inline: every deliver_sm_resp comes here
            self._response_received(pdu)
            return
        if command_id == CommandId.enquire_link:
            if state is SessionState.OPEN and self.instance.strict:
                self._reply_now(PDU(CommandId.enquire_link_resp, pdu.sequence_number, CommandStatus.ESME_RINVBNDSTS))
            else:
                self._reply_now(PDU(CommandId.enquire_link_resp, pdu.sequence_number, 0))
            return
        if command_id in BIND_TYPES:
            if state is SessionState.OPEN:
                self._bind(pdu)
            else:
                self._reply_now(PDU(response_id(command_id), pdu.sequence_number, CommandStatus.ESME_RALYBND))
            return
        if command_id == CommandId.unbind:
            if state in BOUND_STATES:
                self._unbind_received(pdu)
            else:
                self._reply_now(PDU(CommandId.unbind_resp, pdu.sequence_number, CommandStatus.ESME_RINVBNDSTS))
            return
        if command_id in SMSC_ONLY_NO_RESPONSE:
            self._reply_now(PDU(CommandId.generic_nack, pdu.sequence_number, CommandStatus.ESME_RINVCMDID))
            return
        allowed = CORE_REQUESTS.get(state)
        if allowed is not None and command_id in allowed:
            self._core_request(pdu)
            return
        # a known request in the wrong state (or deliver_sm, which only an SMSC sends)
        self._reply_now(PDU(response_id(command_id), pdu.sequence_number, CommandStatus.ESME_RINVBNDSTS))

    def _core_request(self, pdu: PDU) -> None:
        """Hand an operation to the core, within the inbound window."""
        size, status = self.instance.window
        if len(self._delayed_replies) >= size > 0:
            self.counters["window_refused"] += 1
            self._reply_now(PDU(response_id(pdu.command_id), pdu.sequence_number, status))
            return
        try:
            reply = self.core.request(self, pdu)
        except Exception:
            self._internal_error(pdu)
            return
        # Deferred's metaclass is ABCMeta, whose isinstance costs a Python frame: the usual Reply is told first
        if reply.__class__ is not Reply and isinstance(reply, Deferred):
            # a message of another process (cluster_store): its reply keeps its place in the window
            self._await_reply(pdu, reply)
            return
        if reply.delay + self.instance.latency > 0:
            self._apply(reply)
        else:
            self._deliver_reply(reply)

    def _internal_error(self, pdu: PDU) -> None:
        """
        A bug behind the session must not cost the ESME its session: log it
        and answer ESME_RSYSERR, which every ESME knows how to handle.
        """
        self.log.failure(
            "session {session_id}: internal error handling {name} seq={seq}",
            session_id=self.session_id,
            name=pdu.name,
            seq=pdu.sequence_number,
        )
        self._reply_now(PDU(response_id(pdu.command_id), pdu.sequence_number, CommandStatus.ESME_RSYSERR))

    # ------------------------------------------------------------------
    # the wire
    # ------------------------------------------------------------------

    def _write(self, pdu: PDU) -> None:
        if self.transport is None or self.state is _CLOSED:
            return
        self.counters["pdus_out"] += 1
        if self.trace:
            self._trace("out", pdu)
        events = self.events
        if events.wants_pdus:
            events.publish("pdu_out", session_id=self.session_id, instance=self.instance_name, pdu=pdu)
        taps = events.pdu_taps
        if taps:
            untold = self._untold
            if untold is None:
                for tap in taps:
                    tap.pdu_out(self, pdu)
            elif pdu.sequence_number == untold.sequence_number and pdu.command_id & RESPONSE_BIT:
                self._untold = None  # the submit's answer (its response, or generic_nack)
                sinks = events.accepted_sinks
                if (
                    sinks
                    and pdu.command_id == _SUBMIT_SM_RESP
                    and not pdu.command_status
                    and not untold.command_status
                    and not untold.params.get("replace_if_present_flag")
                ):
                    # accepted at once, the usual submit: the sinks take its message_id (a builtin call each)
                    self.accepted_at_once += 1
                    message_id = pdu.params.get("message_id", "")
                    for sink in sinks:
                        sink(message_id)
                    taps = events.submit_taps
                for tap in taps:
                    tap.submit_answered(self, untold, pdu, self._untold_at)
            else:
                self._tell_untold()  # something else first: the taps hear of the submit before it
                for tap in taps:
                    tap.pdu_out(self, pdu)
        batch = self._batch
        if batch is None:
            data = encode(pdu)
            self.transport.write(data)
            if self.events.wants(_BYTES_OUT):
                self._publish_octets(_BYTES_OUT, data)
        else:
            batch.append(encode(pdu))

    def _flush(self) -> None:
        """
        Write what :meth:`dataReceived` collected so far (before closing, and at its end).

        The octets are also pushed to the socket at once, through the
        transport's ``IWriteDescriptor.doWrite`` where it has one (TCP), as
        the reactor would on its next turn: the ESME gets its answers while
        the reactor reads the other connections, not after.  Not while the
        transport is closing, whose last write the reactor must see.
        """
        batch = self._batch
        if batch:
            self._batch = []
            transport = self.transport
            if transport is not None:
                data = batch[0] if len(batch) == 1 else b"".join(batch)
                transport.write(data)
                if self.events.wants(_BYTES_OUT):
                    self._publish_octets(_BYTES_OUT, data)
                push = getattr(transport, "doWrite", None)
                if push is not None and not self._closing and not getattr(transport, "disconnecting", True):
                    push()  # a failure stays in the transport: the reactor's own doWrite reports it


def _address(address: object) -> str:
    """``host:port`` of a transport address (its text for one without them, a UNIX socket's)."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    return f"{host}:{port}" if host is not None else str(address)


SessionFactoryCallable = Callable[[], SMPPSession]
