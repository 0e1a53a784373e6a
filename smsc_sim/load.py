"""
A load generator ESME: many SMPP sessions submitting as fast as allowed.

``smsc-sim-load`` (or ``python -m smsc_sim.load``) binds ``--sessions``
sessions (transceivers, or a transmitter plus a receiver each), keeps up to
``--window`` submit_sm outstanding on each, at ``--rate`` messages per second
in total or flat out, for ``--count`` messages or ``--duration`` seconds.  It
answers every deliver_sm (receipts and MO), data_sm and enquire_link, sends
an enquire_link on every session each ``--enquire-link`` seconds, prints
a progress line on stderr every ``--progress`` seconds and a JSON result on
stdout: throughput, submit -> submit_sm_resp latency percentiles, receipts
received against expected, enquire_link round trips, and errors by status
name.  At most ``--connect-concurrency`` connections are being opened and
bound at once, so that thousands of sessions do not overflow the SMSC's
listen backlog.

It must not be the bottleneck of what it measures, so the per-message path
has no Deferred, no timer and no PDU object: the submit_sm is encoded once
and only its sequence number is patched (``struct.pack_into``), a window is
filled with one write, a submit_sm_resp is read from its header, and the
rate is a credit refilled from the clock whenever a session has room.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from array import array
from collections import deque
from dataclasses import asdict, dataclass
from typing import IO, Any, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from smsc_sim.rlimits import raise_open_files
from smsc_sim.smpp.codec import PDUDecodeError, decode, encode
from smsc_sim.smpp.constants import ESM_CLASS_DELIVERY_RECEIPT, ESM_CLASS_TYPE_MASK, CommandId, Tag, status_name
from smsc_sim.smpp.framing import FramingError, SMPPFramer
from smsc_sim.smpp.pdu import make_pdu

__all__ = ["LoadSettings", "LoadRun", "run_load", "parse_args", "main"]

_HEAD = struct.Struct(">4xIII")  # command_id, command_status, sequence_number
_SEQ = struct.Struct(">I")
_C = CommandId
_BINDS = {"trx": _C.bind_transceiver, "tx": _C.bind_transmitter, "rx": _C.bind_receiver}
# plain ints for the per-PDU dispatch (an IntEnum member lookup costs more than a global)
_SUBMIT_SM_RESP, _DELIVER_SM, _DATA_SM, _ENQUIRE_LINK = 0x80000004, 0x00000005, 0x00000103, 0x00000015
_ENQUIRE_LINK_RESP = 0x80000015
#: how often the enquire_link sweep runs; each sweep sends to one slice of the sessions
_ENQUIRE_SWEEP = 0.1
_BIND_RESPS = frozenset({0x80000001, 0x80000002, 0x80000009})


@dataclass(frozen=True)
class LoadSettings:
    """What to run; the command line's options, validated by :func:`parse_args`."""

    targets: tuple[tuple[str, int], ...]
    system_id: str = "smppclient1"
    password: str = "password"
    #: ``trx`` (one transceiver per session) or ``tx+rx`` (a transmitter and a receiver)
    bind: str = "trx"
    sessions: int = 1
    #: most submit_sm outstanding per session
    window: int = 10
    #: messages per second over all sessions; 0 = flat out
    rate: float = 0.0
    #: stop after this many submits (0 = no limit)
    count: int = 0
    #: stop submitting after this many seconds (0 = no limit)
    duration: float = 0.0
    receipts: bool = False
    #: bind and answer (receipts, MO, enquire_link) but never submit: the receiver of an MO flood
    listen_only: bool = False
    text: str = "Hello from smsc-sim-load"
    source: str = "447700900001"
    destination: str = "447700900002"
    #: after the last submit_sm_resp, how long to wait for missing receipts
    receipt_timeout: float = 30.0
    #: how long the binds and the last submit_sm_resp may take
    response_timeout: float = 10.0
    #: seconds between progress lines on stderr; 0 = none
    progress: float = 1.0
    #: seconds between enquire_link on each bound session; 0 = none
    enquire_link: float = 0.0
    #: most connections being opened and bound at once
    connect_concurrency: int = 200
    #: every message its own destination (the last 8 digits count up) and text (8 digits in front)
    unique: bool = False


#: digits of the counter --unique writes into each message's destination and text
_UNIQUE_DIGITS = 8


def _message(settings: LoadSettings) -> tuple[str, str, str]:
    """The destination and text of the template, and the text's codec (with room for the counter of --unique)."""
    destination, text = settings.destination, settings.text
    if settings.unique:
        destination = destination[: max(0, len(destination) - _UNIQUE_DIGITS)] + "0" * _UNIQUE_DIGITS
        text = "0" * _UNIQUE_DIGITS + " " + text
    try:
        text.encode("latin-1")
        return destination, text, "latin-1"
    except UnicodeEncodeError:
        return destination, text, "utf-16-be"


def _submit_template(settings: LoadSettings) -> bytearray:
    """The submit_sm of every message, encoded once; bytes 12..16 take the sequence number."""
    destination, text, codec = _message(settings)
    pdu = make_pdu(
        _C.submit_sm, 1,
        source_addr_ton=1, source_addr_npi=1, source_addr=settings.source,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
        registered_delivery=1 if settings.receipts else 0, data_coding=0 if codec == "latin-1" else 8,
        short_message=text.encode(codec),
    )  # fmt: skip
    return bytearray(encode(pdu))


def _unique_offsets(settings: LoadSettings) -> tuple[int, int, int]:
    """
    Where --unique writes its counter in the template: the end of
    destination_addr, the start of short_message, and the octets per digit there.
    """
    destination, _, codec = _message(settings)
    # header, service_type "" (its NUL), source TON and NPI, source_addr and NUL, dest TON and NPI
    destination_end = 16 + 1 + 2 + len(settings.source) + 1 + 2 + len(destination)
    # the NUL, esm_class, protocol_id, priority_flag, two empty times, registered_delivery,
    # replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
    text_start = destination_end + 1 + 10
    return destination_end, text_start, 1 if codec == "latin-1" else 2


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
        bind = make_pdu(_BINDS[self.role], self._next_sequence(), system_id=s.system_id, password=s.password,
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
                buf[end - _UNIQUE_DIGITS : end] = digits
                buf[text : text + _UNIQUE_DIGITS * width] = digits if width == 1 else digits.decode().encode("utf-16-be")
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


class _Factory(ClientFactory):
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


class LoadRun:
    """
    One run: its connections, its counters, and when to send and when to stop.

    Phases: ``binding`` (until every connection is bound or gone, or the
    response timeout), ``sending`` (until the count, the duration or the last
    submitting session), ``draining`` (the last submit_sm_resp, within the
    response timeout), ``receipts`` (the missing receipts, within the receipt
    timeout), ``unbinding`` (until every connection is closed).

    :param reactor: connects (``connectTCP``) and keeps time.
    :param settings: what to run.
    :param progress: where progress lines go (``None``: nowhere).
    """

    def __init__(self, reactor: Any, settings: LoadSettings, progress: IO[str] | None = None) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.settings = settings
        self.template = _submit_template(settings)
        self.unique_offsets = _unique_offsets(settings) if settings.unique else None
        self._unique_counter = 0
        self.phase = "binding"
        self._progress = progress
        #: every connection made; ``bound`` those bound and still up
        self.connected: list[ESMEProtocol] = []
        self.bound: list[ESMEProtocol] = []
        self.connections = 0
        self.sending = False
        self.in_flight = self.submitted = self.responses = self.accepted = self.unanswered = 0
        self.receipts = self.receipts_unmatched = self.mo = self.enquire_links = self.sessions_bound = 0
        # float32 seconds: microsecond precision, half the memory of a long run's samples
        self.latencies = array("f")
        self.enquire_links_sent = 0
        self.enquire_latencies = array("f")
        self.enquire_link_errors = 0
        # connections not opened yet, and how many are opening or binding now
        self._to_connect: deque[tuple[str, int, str]] = deque()
        self._connecting = 0
        self._enquirer: LoopingCall | None = None
        self._sweep = 0
        self.errors: dict[str, int] = {}
        self.session_errors: dict[str, int] = {}
        self._awaiting: set[str] = set()
        self._early: set[str] = set()
        self._credit = self._refilled = 0.0
        self.started = self.last_response = self.last_receipt = self.first_mo = self.last_mo = 0.0
        self._deadline: IDelayedCall | None = None
        self._ticker: LoopingCall | None = None
        self._last_line = (0.0, 0)
        self.done: Deferred[dict[str, Any]] = Deferred()

    def _set_deadline(self, seconds: float, then: Any) -> None:
        """Replace the phase's deadline."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = self.clock.callLater(seconds, then) if seconds > 0 else None

    # -- binding -------------------------------------------------------------

    def start(self) -> Deferred[dict[str, Any]]:
        """Connect every session; the result fires once every connection is closed."""
        s = self.settings
        roles = ["trx"] if s.bind == "trx" else ["tx", "rx"]
        self.connections = s.sessions * len(roles)
        for i in range(s.sessions):
            host, port = s.targets[i % len(s.targets)]
            for role in roles:
                self._to_connect.append((host, port, role))
        self._connect_more()
        self._set_deadline(s.response_timeout, self._begin)
        return self.done

    def _connect_more(self) -> None:
        """Open connections while fewer than ``connect_concurrency`` are opening or binding."""
        s = self.settings
        while self._to_connect and self._connecting < s.connect_concurrency and self.phase != "unbinding":
            host, port, role = self._to_connect.popleft()
            self._connecting += 1
            self.reactor.connectTCP(host, port, _Factory(self, role), timeout=s.response_timeout)

    def connect_settled(self, protocol: ESMEProtocol | None) -> None:
        """A connection bound, was refused or failed: open the next, and give binding another timeout."""
        if protocol is not None:
            if protocol.settled:
                return
            protocol.settled = True
        self._connecting -= 1
        if self.phase == "binding":
            # binding ends when every connection is bound or gone, or when none settles for a timeout
            self._set_deadline(self.settings.response_timeout, self._begin)
        self._connect_more()

    def session_bound(self, protocol: ESMEProtocol) -> None:
        """A connection is bound; sending begins once every connection is bound or gone."""
        self.bound.append(protocol)
        if self.phase == "unbinding":  # bound after the end (a slow connect): unbind it too
            protocol.unbind()
        elif self.phase == "sending":
            protocol.fill()
        elif self.phase == "binding" and len(self.bound) == self.connections:
            self._begin()

    def _begin(self) -> None:
        """Start sending on every bound session."""
        if self.phase != "binding":
            return
        self.phase = "sending"
        s = self.settings
        self.started = self._refilled = self.last_response = self.clock.seconds()
        self.sessions_bound = sum(1 for p in self.bound if p.submits or (s.listen_only and p.role != "tx"))
        if not self.sessions_bound:
            self.session_error("no session bound")
            self._finish()
            return
        self.sending = True
        self._set_deadline(s.duration, self._stop_sending)
        self._ticker = LoopingCall(self._tick)
        self._ticker.clock = self.clock
        self._ticker.start(0.005 if s.rate else 0.1, now=False)
        if s.enquire_link > 0:
            self._enquirer = LoopingCall(self._enquire_sweep)
            self._enquirer.clock = self.clock
            self._enquirer.start(_ENQUIRE_SWEEP, now=False)
        for protocol in self.bound:
            protocol.fill()

    def _enquire_sweep(self) -> None:
        """Send enquire_link on one slice of the bound sessions: each session once per ``--enquire-link`` seconds."""
        slices = max(1, round(self.settings.enquire_link / _ENQUIRE_SWEEP))
        turn = self._sweep % slices
        self._sweep += 1
        for protocol in self.bound[turn::slices]:
            protocol.enquire_link()

    def enquire_link_answered(self, sent: float, status: int) -> None:
        """Account for one enquire_link_resp."""
        self.enquire_latencies.append(self.clock.seconds() - sent)
        if status:
            self.enquire_link_errors += 1

    # -- the per-message path ------------------------------------------------

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` submits may go now (rate credit, count)."""
        if not self.sending:
            return 0
        s = self.settings
        if s.count:
            wanted = min(wanted, s.count - self.submitted)
        if s.rate:
            now = self.clock.seconds()
            # at most 50 ms worth of credit, so that a stall is not followed by a burst
            self._credit = min(self._credit + (now - self._refilled) * s.rate, max(1.0, s.rate * 0.05))
            self._refilled = now
            wanted = min(wanted, int(self._credit))
            self._credit -= wanted
        if wanted <= 0:
            return 0
        self.submitted += wanted
        self.in_flight += wanted
        if s.count and self.submitted >= s.count:
            self._stop_sending()
        return wanted

    def next_unique(self) -> int:
        """The counter --unique writes into the next message (round again after 10**8)."""
        self._unique_counter = (self._unique_counter + 1) % 10**_UNIQUE_DIGITS
        return self._unique_counter

    def response(self, sent: float, status: int, message_id: str | None) -> None:
        """Account for one submit_sm_resp."""
        now = self.clock.seconds()
        self.latencies.append(now - sent)
        self.responses += 1
        self.in_flight -= 1
        self.last_response = now
        if status:
            self.status(status)
        else:
            self.accepted += 1
            if message_id is not None and self.settings.receipts:
                if message_id in self._early:
                    self._early.discard(message_id)
                    self._count_receipt(now)
                else:
                    self._awaiting.add(message_id)
        if not self.sending:
            self._check_done()

    def receipt(self, message_id: str | None) -> None:
        """Account for one receipt; one that beats its submit_sm_resp waits for it."""
        if message_id is not None and message_id in self._awaiting:
            self._awaiting.discard(message_id)
            self._count_receipt(self.clock.seconds())
        elif message_id is not None and self.in_flight > 0:
            self._early.add(message_id)
        else:
            self.receipts_unmatched += 1

    def _count_receipt(self, now: float) -> None:
        self.receipts += 1
        self.last_receipt = now
        if self.phase == "receipts" and not self._awaiting:
            self._finish()

    def mo_received(self) -> None:
        """Count one MO (a deliver_sm or data_sm that is not a receipt)."""
        self.last_mo = self.clock.seconds()
        if not self.mo:
            self.first_mo = self.last_mo
        self.mo += 1

    def nacked(self) -> None:
        """A submit_sm answered with generic_nack."""
        self.in_flight -= 1
        if not self.sending:
            self._check_done()

    def status(self, status: int, prefix: str = "") -> None:
        """Count an error status by name."""
        key = prefix + status_name(status)
        self.errors[key] = self.errors.get(key, 0) + 1

    def session_error(self, what: str) -> None:
        """Count a session-level problem (connect, bind, lost connection)."""
        self.session_errors[what] = self.session_errors.get(what, 0) + 1

    # -- stopping ------------------------------------------------------------

    def _tick(self) -> None:
        """Refill the windows the rate held back; print progress when due."""
        if self.sending and self.settings.rate:
            for protocol in self.bound:
                if protocol.submits:
                    protocol.fill()
        interval, stream = self.settings.progress, self._progress
        if interval and stream is not None:
            now = self.clock.seconds()
            last_time, last_count = self._last_line
            since = now - max(last_time, self.started)
            if since >= interval:
                self._last_line = (now, self.responses)
                stream.write(
                    f"[{now - self.started:7.1f}s] {self.phase}: submitted {self.submitted} answered "
                    f"{self.responses} ({(self.responses - last_count) / since:.0f}/s) receipts {self.receipts} "
                    f"mo {self.mo} errors {sum(self.errors.values())} outstanding {self.in_flight}\n"
                )
                stream.flush()

    def _stop_sending(self) -> None:
        """No more submits: wait for the responses (then the receipts)."""
        if not self.sending:
            return
        self.sending = False
        self.phase = "draining"
        self._set_deadline(self.settings.response_timeout, self._responses_overdue)
        self._check_done()

    def _responses_overdue(self) -> None:
        """Give up on the missing submit_sm_resp."""
        self.unanswered += self.in_flight
        self.in_flight = 0
        for protocol in self.bound:
            protocol.outstanding.clear()
        self._check_done()

    def _check_done(self) -> None:
        """Move from draining to waiting for receipts to unbinding, as each is satisfied."""
        if self.phase != "draining" or self.in_flight > 0:
            return
        if self.settings.receipts and self._awaiting:
            self.phase = "receipts"
            self._set_deadline(self.settings.receipt_timeout, self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        """Unbind every connection; the result fires when the last one is closed."""
        if self.phase == "unbinding":
            return
        self.phase = "unbinding"
        self.sending = False
        self._set_deadline(0, None)
        for ticker in (self._ticker, self._enquirer):
            if ticker is not None and ticker.running:
                ticker.stop()
        self.connections -= len(self._to_connect)  # never opened
        self._to_connect.clear()
        for protocol in list(self.connected):
            protocol.unbind()
        self._maybe_done()

    def connection_done(self, protocol: ESMEProtocol | None) -> None:
        """A connection closed (or never opened)."""
        self.connections -= 1
        if protocol is not None and protocol in self.bound:
            self.bound.remove(protocol)
            self.in_flight -= len(protocol.outstanding)
            if self.phase != "unbinding":
                self.unanswered += len(protocol.outstanding)
            protocol.outstanding.clear()
        if self.phase == "binding" and len(self.bound) == self.connections:
            self._begin()
        elif self.phase in ("sending", "draining", "receipts") and not any(
            p.submits or self.settings.listen_only for p in self.bound
        ):
            self._finish()
        elif self.phase == "draining":
            self._check_done()
        self._maybe_done()

    def _maybe_done(self) -> None:
        """Fire the result once unbinding and no connection is left."""
        if self.phase == "unbinding" and self.connections <= 0 and not self.done.called:
            self.done.callback(self.report())

    # -- the result ----------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The result of the run, as JSON-ready data."""
        s = self.settings
        elapsed = max(self.last_response - self.started, 1e-9)
        receipt_time = max(self.last_receipt - self.started, 1e-9)
        latencies = sorted(self.latencies)
        enquire_latencies = sorted(self.enquire_latencies)

        def ms(p: float, samples: list[float] = latencies) -> float | None:
            """The p-th percentile (nearest rank) in milliseconds."""
            if not samples:
                return None
            return round(samples[max(0, min(len(samples), math.ceil(p / 100 * len(samples))) - 1)] * 1e3, 3)

        expected = self.accepted if s.receipts else 0
        # over the intervals between the first and the last MO: the flood's rate, not the wait before it
        mo_rate = (self.mo - 1) / (self.last_mo - self.first_mo) if self.last_mo > self.first_mo else 0.0
        return {
            "settings": {**asdict(s), "targets": [f"{host}:{port}" for host, port in s.targets]},
            "sessions_bound": self.sessions_bound,
            "submitted": self.submitted,
            "answered": self.responses,
            "accepted": self.accepted,
            "unanswered": self.unanswered,
            "elapsed_s": round(elapsed, 3) if self.responses else 0.0,
            "submits_per_s": round(self.responses / elapsed, 1) if self.responses else 0.0,
            "accepted_per_s": round(self.accepted / elapsed, 1) if self.responses else 0.0,
            "latency_ms": {"p50": ms(50), "p90": ms(90), "p99": ms(99), "max": ms(100)},
            "receipts": {
                "expected": expected,
                "received": self.receipts,
                "missing": expected - self.receipts,
                "unmatched": self.receipts_unmatched + len(self._early),
                "per_s": round(self.receipts / receipt_time, 1) if self.receipts else 0.0,
            },
            "mo_received": self.mo,
            "mo_per_s": round(mo_rate, 1),
            "enquire_links_answered": self.enquire_links,
            "enquire_links": {
                "sent": self.enquire_links_sent,
                "answered": len(enquire_latencies),
                "errors": self.enquire_link_errors,
                "latency_ms": {"p50": ms(50, enquire_latencies), "p99": ms(99, enquire_latencies),
                               "max": ms(100, enquire_latencies)},
            },  # fmt: skip
            "errors": dict(sorted(self.errors.items())),
            "session_errors": dict(sorted(self.session_errors.items())),
        }


def run_load(reactor: Any, settings: LoadSettings, progress: IO[str] | None = None) -> Deferred[dict[str, Any]]:
    """
    Run the load described by ``settings``.

    :param reactor: connects and keeps time (the real reactor, in tests too).
    :param settings: what to run.
    :param progress: where progress lines go; ``None`` for none.
    :returns: fires with :meth:`LoadRun.report` once every connection is closed.
    """
    return LoadRun(reactor, settings, progress).start()


def parse_args(argv: Sequence[str]) -> tuple[LoadSettings, str | None]:
    """
    The settings and the ``--json-out`` path from the command line.

    :raises SystemExit: for a usage error (argparse prints it).
    """
    p = argparse.ArgumentParser(prog="smsc-sim-load", description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--host", default="127.0.0.1", help="the SMSC's address (default %(default)s)")
    p.add_argument("--port", type=int, action="append", default=[], help="an SMSC port; repeatable (default 2775)")
    p.add_argument("--ports", default="", help="several ports at once, comma-separated; sessions go round them")
    p.add_argument("--system-id", default="smppclient1", help="default %(default)s")
    p.add_argument("--password", default="password", help="default %(default)s")
    p.add_argument("--bind", choices=("trx", "tx+rx"), default="trx",
                   help="a transceiver per session, or a transmitter and a receiver (default %(default)s)")
    p.add_argument("--sessions", type=int, default=1, help="sessions (default %(default)s)")
    p.add_argument("--window", type=int, default=10, help="submit_sm outstanding per session (default %(default)s)")
    p.add_argument("--rate", type=float, default=0.0, help="messages per second in total; 0 = flat out (default)")
    p.add_argument("--count", type=int, default=0, help="messages to submit in total")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to submit for (default 10 without --count)")
    p.add_argument("--receipts", action="store_true", help="request a receipt for every message and count them")
    p.add_argument("--listen-only", action="store_true", help="never submit: count MO and receipts for --duration")
    p.add_argument("--receipt-timeout", type=float, default=30.0, help="seconds to wait for late receipts")
    p.add_argument("--response-timeout", type=float, default=10.0, help="seconds for binds and the last responses")
    p.add_argument("--text", default=LoadSettings.text, help="short_message text (default %(default)r)")
    p.add_argument("--source", default=LoadSettings.source, help="source_addr")
    p.add_argument("--destination", default=LoadSettings.destination, help="destination_addr")
    p.add_argument("--unique", action="store_true",
                   help="every message its own destination (its last 8 digits count up) and text (8 digits in front)")
    p.add_argument("--progress", type=float, default=1.0, help="seconds between progress lines on stderr; 0 = none")
    p.add_argument("--enquire-link", type=float, default=0.0,
                   help="seconds between enquire_link on each session; 0 = none (default)")
    p.add_argument("--connect-concurrency", type=int, default=LoadSettings.connect_concurrency,
                   help="most connections being opened and bound at once (default %(default)s)")
    p.add_argument("--json-out", default=None, help="also write the JSON result to this file")
    a = p.parse_args(list(argv))
    ports = list(a.port)
    for part in filter(None, (x.strip() for x in a.ports.split(","))):
        if not part.isdigit():
            p.error(f"--ports wants numbers separated by commas, got {a.ports!r}")
        ports.append(int(part))
    if any(not 0 < port < 65536 for port in ports):
        p.error("ports are 1 to 65535")
    if a.sessions < 1 or a.window < 1:
        p.error("--sessions and --window are at least 1")
    if a.count < 0 or a.duration < 0 or a.rate < 0 or a.enquire_link < 0:
        p.error("--count, --duration, --rate and --enquire-link cannot be negative")
    if a.connect_concurrency < 1:
        p.error("--connect-concurrency is at least 1")
    try:
        _submit_template(LoadSettings(targets=(), text=a.text, unique=a.unique))
    except ValueError as error:
        p.error(f"--text: {error}")
    settings = LoadSettings(
        targets=tuple((a.host, port) for port in ports or [2775]),
        system_id=a.system_id, password=a.password, bind=a.bind, sessions=a.sessions, window=a.window,
        rate=a.rate, count=a.count, duration=a.duration or (0.0 if a.count else 10.0), receipts=a.receipts,
        listen_only=a.listen_only, text=a.text, source=a.source, destination=a.destination,
        receipt_timeout=a.receipt_timeout, response_timeout=a.response_timeout, progress=a.progress,
        enquire_link=a.enquire_link, connect_concurrency=a.connect_concurrency, unique=a.unique,
    )  # fmt: skip
    return settings, a.json_out


def main(argv: Sequence[str] | None = None) -> None:
    """The ``smsc-sim-load`` command: run, print the JSON result, exit 1 if nothing was accepted."""
    from twisted.internet.task import react

    settings, json_out = parse_args(sys.argv[1:] if argv is None else argv)
    connections = settings.sessions * (1 if settings.bind == "trx" else 2)
    raise_open_files(connections + 64)

    async def run(reactor: Any) -> None:
        result = await run_load(reactor, settings, sys.stderr)
        text = json.dumps(result, indent=2)
        sys.stdout.write(text + "\n")
        if json_out:
            with open(json_out, "w", encoding="utf-8") as stream:
                stream.write(text + "\n")
        if not result["sessions_bound"] or (result["submitted"] and not result["answered"]):
            raise SystemExit(1)

    react(lambda reactor: Deferred.fromCoroutine(run(reactor)))


if __name__ == "__main__":
    main()
