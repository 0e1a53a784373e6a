"""
One SMPP connection of the load generator, and the factory that makes it.

Its per-message path has no Deferred, no timer and no PDU object: the
submit_sm is encoded once and only its sequence number (and, with
``--unique``, a counter) is patched, a window is filled with one write, a
submit_sm_resp is read from its header.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol as TypingProtocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from smsc_sim.load.settings import UNIQUE_DIGITS, LoadSettings
from smsc_sim.smpp.codec import PDUDecodeError, decode, encode
from smsc_sim.smpp.constants import ESM_CLASS_DELIVERY_RECEIPT, ESM_CLASS_TYPE_MASK, CommandId, Tag, status_name
from smsc_sim.smpp.framing import FramingError, SMPPFramer
from smsc_sim.smpp.pdu import make_pdu

__all__ = ["ESMEProtocol", "ESMEFactory", "BINDS", "LoadRun"]


class LoadRun(TypingProtocol):
    """
    What a connection of the generator reads from and reports to its run
    (:class:`smsc_sim.load.run.LoadRun` is the one implementation).  Declared
    here so that the connection does not import the run that imports it.
    """

    settings: LoadSettings
    clock: IReactorTime
    template: bytearray
    unique_offsets: tuple[int, int, int] | None
    connected: list[ESMEProtocol]
    enquire_links: int
    enquire_links_sent: int

    def take(self, wanted: int) -> int: ...

    def next_unique(self) -> int: ...

    def response(self, sent: float, status: int, message_id: str | None) -> None: ...

    def receipt(self, message_id: str | None) -> None: ...

    def mo_received(self) -> None: ...

    def nacked(self) -> None: ...

    def status(self, status: int, prefix: str = "") -> None: ...

    def session_error(self, what: str) -> None: ...

    def enquire_link_answered(self, sent: float, status: int) -> None: ...

    def connect_settled(self, protocol: ESMEProtocol | None) -> None: ...

    def session_bound(self, protocol: ESMEProtocol) -> None: ...

    def connection_done(self, protocol: ESMEProtocol | None) -> None: ...

_HEAD = struct.Struct(">4xIII")  # command_id, command_status, sequence_number
_SEQ = struct.Struct(">I")
_C = CommandId
#: the bind command of each role
BINDS = {"trx": _C.bind_transceiver, "tx": _C.bind_transmitter, "rx": _C.bind_receiver}
# plain ints for the per-PDU dispatch (an IntEnum member lookup costs more than a global)
_SUBMIT_SM_RESP, _DELIVER_SM, _DATA_SM, _ENQUIRE_LINK = 0x80000004, 0x00000005, 0x00000103, 0x00000015
_ENQUIRE_LINK_RESP = 0x80000015
_BIND_RESPS = frozenset({0x80000001, 0x80000002, 0x80000009})


def _receipt_id(frame: bytes) -> tuple[bool, str | None]:
    """Whether a deliver_sm or data_sm is a receipt, and the message id it is about."""
    pdu = decode(frame)
    if pdu.params.get("esm_class", 0) & ESM_CLASS_TYPE_MASK != ESM_CLASS_DELIVERY_RECEIPT:
        return False, None
    message_id = pdu.tlv_cstring(Tag.receipted_message_id)
    if message_id is None:  # the text form: "id:XXXX sub:001 ..."
        text: bytes = pdu.params.get("short_message", b"")
        if text[:3].lower() == b"id:":
            message_id = text[3:].split(b" ", 1)[0].decode("latin-1")
    return True, message_id

class ESMEProtocol(Protocol):
    """
    One SMPP connection of the generator.

    :param run: the run it belongs to.
    :param role: ``trx``, ``tx`` or ``rx``.
    """

    def __init__(self, run: LoadRun, role: str) -> None:
        self.run = run
        self.role = role
        self.submits = role != "rx" and not run.settings.listen_only
        self.bound = False
        self.closed = False
        #: bound, refused or closed: no longer counted against the connect concurrency
        self.settled = False
        self.outstanding: dict[int, float] = {}
        #: enquire_link written and unanswered: sequence -> when
        self.enquiring: dict[int, float] = {}
        self._framer = SMPPFramer(70_000)
        self._sequence = 1
        self._template = bytearray(run.template)
        self._unique = run.unique_offsets
        self._deliver_resp = bytearray(encode(make_pdu(_C.deliver_sm_resp, 0)))
        self._unbind_timer: IDelayedCall | None = None
        # while dataReceived runs, what it writes is collected here and sent in one write
        self._batch: list[bytes] | None = None

    def _next_sequence(self) -> int:
        """The next sequence number, 1..0x7FFFFFFF and round again."""
        sequence = self._sequence
        self._sequence = 1 if sequence >= 0x7FFFFFFF else sequence + 1
        return sequence

    def _write(self, data: bytes) -> None:
        """Write now, or with the rest of the answers to the data being handled."""
        if self._batch is not None:
            self._batch.append(data)
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def connectionMade(self) -> None:
        """Bind at once; Nagle off, as small PDUs one at a time are the whole point."""
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        s = self.run.settings
        bind = make_pdu(BINDS[self.role], self._next_sequence(), system_id=s.system_id, password=s.password,
                        interface_version=0x34)  # fmt: skip
        self.transport.write(encode(bind))  # type: ignore[union-attr]

    def fill(self) -> None:
        """Send as many submit_sm as the window, the rate and the count allow, in one write."""
        room = self.run.settings.window - len(self.outstanding)
        if room <= 0 or not self.submits or not self.bound or self.closed:
            return
        granted = self.run.take(room)
        if not granted:
            return
        now = self.run.clock.seconds()
        buf, pack, outstanding, frames = self._template, _SEQ.pack_into, self.outstanding, []
        unique = self._unique
        for _ in range(granted):
            sequence = self._next_sequence()
            pack(buf, 12, sequence)
            if unique is not None:
                digits = b"%08d" % self.run.next_unique()
                end, text, width = unique
                buf[end - UNIQUE_DIGITS : end] = digits
                buf[text : text + UNIQUE_DIGITS * width] = digits if width == 1 else digits.decode().encode("utf-16-be")
            frames.append(bytes(buf))
            outstanding[sequence] = now
        self._write(b"".join(frames))

    def dataReceived(self, data: bytes) -> None:
        """Answer what needs answering, account for every submit_sm_resp, then refill the window."""
        try:
            frames = self._framer.feed(data)
        except FramingError as error:
            self.run.session_error(f"framing: {error}")
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        run = self.run
        receipts = run.settings.receipts
        out = self._batch = []
        for frame in frames:
            command_id, status, sequence = _HEAD.unpack_from(frame)
            if command_id == _SUBMIT_SM_RESP:
                sent = self.outstanding.pop(sequence, None)
                if sent is None:
                    run.session_error("submit_sm_resp with an unknown sequence_number")
                    continue
                if status == 0 and receipts:
                    run.response(sent, 0, frame[16 : frame.find(0, 16)].decode("latin-1"))
                else:
                    run.response(sent, status, None)
            elif command_id == _DELIVER_SM or command_id == _DATA_SM:
                self._delivery(command_id, sequence, frame)
            elif command_id == _ENQUIRE_LINK:
                out.append(encode(make_pdu(_C.enquire_link_resp, sequence)))
                run.enquire_links += 1
            elif command_id == _ENQUIRE_LINK_RESP:
                sent = self.enquiring.pop(sequence, None)
                if sent is not None:
                    run.enquire_link_answered(sent, status)
            elif command_id == _C.generic_nack:
                run.status(status, "generic_nack ")
                if self.outstanding.pop(sequence, None) is not None:
                    run.nacked()
            elif command_id == _C.unbind:
                out.append(encode(make_pdu(_C.unbind_resp, sequence)))
                run.session_error("unbind from the SMSC")
                self.closed = True
            elif command_id == _C.unbind_resp:
                self.transport.loseConnection()  # type: ignore[union-attr]
            elif command_id in _BIND_RESPS:
                self._bind_resp(status)
            elif command_id & 0x80000000 == 0 and command_id != _C.alert_notification:
                out.append(encode(make_pdu(_C.generic_nack, sequence, 0x03)))  # ESME_RINVCMDID
        if self.submits and not self.closed:
            self.fill()
        self._batch = None
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]
        if self.closed and self._unbind_timer is None:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def _delivery(self, command_id: int, sequence: int, frame: bytes) -> None:
        """A receipt or an MO: answer it, then count it (counting may end the run)."""
        try:
            is_receipt, message_id = _receipt_id(frame)
        except PDUDecodeError as error:
            self.run.status(error.status, f"{CommandId(command_id).name} undecodable ")
            self._write(encode(make_pdu(command_id | 0x80000000, sequence, error.status)))
            return
        if command_id == _C.data_sm:
            self._write(encode(make_pdu(_C.data_sm_resp, sequence)))
        else:
            _SEQ.pack_into(self._deliver_resp, 12, sequence)
            self._write(bytes(self._deliver_resp))
        if is_receipt:
            self.run.receipt(message_id)
        else:
            self.run.mo_received()

    def _bind_resp(self, status: int) -> None:
        """Bound: tell the run.  Refused: count it and hang up."""
        if status:
            self.run.session_error(f"bind {status_name(status)}")
            self.closed = True
            self.run.connect_settled(self)
        else:
            self.bound = True
            self.run.connect_settled(self)
            self.run.session_bound(self)

    def enquire_link(self) -> None:
        """Send one enquire_link (the run's sweep calls this every ``--enquire-link`` seconds)."""
        if not self.bound or self.closed or self.transport is None:
            return
        sequence = self._next_sequence()
        self.enquiring[sequence] = self.run.clock.seconds()
        self.run.enquire_links_sent += 1
        self._write(encode(make_pdu(_C.enquire_link, sequence)))

    def unbind(self) -> None:
        """Unbind; close if the SMSC does not answer within the response timeout."""
        if self.closed or self.transport is None:
            return
        self.closed = True
        if not self.bound:
            self.transport.loseConnection()
            return
        self._write(encode(make_pdu(_C.unbind, self._next_sequence())))
        self._unbind_timer = self.run.clock.callLater(self.run.settings.response_timeout, self.transport.loseConnection)

    def connectionLost(self, reason: Failure = Failure(ConnectionError("lost"))) -> None:
        """Count an unexpected loss, and tell the run this connection is done."""
        if self._unbind_timer is not None and self._unbind_timer.active():
            self._unbind_timer.cancel()
        if not self.closed:
            self.run.session_error(f"connection lost: {reason.getErrorMessage()}")
        self.closed = True
        self.run.connect_settled(self)
        self.run.connection_done(self)


class ESMEFactory(ClientFactory):
    """Builds the one :class:`ESMEProtocol` of a connection; a failed connection is counted."""

    def __init__(self, run: LoadRun, role: str) -> None:
        self.run = run
        self.role = role

    def buildProtocol(self, addr: Any) -> ESMEProtocol:
        """The protocol of this factory's connection."""
        protocol = ESMEProtocol(self.run, self.role)
        self.run.connected.append(protocol)
        return protocol

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        """Count the failure; the run goes on without this connection."""
        self.run.session_error(f"connect: {reason.getErrorMessage()}")
        self.run.connect_settled(None)
        self.run.connection_done(None)


