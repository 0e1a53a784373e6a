"""
Fuzzing the framer, the codec and the session with mutated PDUs.

The same mutation language (:func:`mutate` over :data:`Mutation` tuples) and
the same session harness (:class:`SessionUnderFuzz`) serve Hypothesis here and
the long seeded run of ``scripts/fuzz.py``.  The invariants:

- ``decode`` raises nothing but ``PDUDecodeError``, which names the frame's own
  sequence number; what it accepts, ``encode`` can write back;
- the framer cuts any chunking of a stream as a reference framer does, raises
  nothing but ``FramingError`` and never holds a whole ``max_pdu_size``;
- ``dataReceived`` and the timers raise nothing and log nothing at error or
  critical level;
- every request that is not a framing error gets exactly one answer (its
  response or generic_nack) with its sequence number, or the connection is
  closed, and it is only closed where the spec says so (framing error, unbind);
- after a bad PDU the session still answers enquire_link; a partial PDU is
  closed by the PDU-read timer; no timer is left after the connection is lost.
"""

from __future__ import annotations

import random
import struct
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import SessionSettings
from smsc_sim.events import EventBus
from smsc_sim.session import SMPPSession
from smsc_sim.smpp.codec import PDUDecodeError, decode, decode_table, encode
from smsc_sim.smpp.constants import CommandId, Tag
from smsc_sim.smpp.framing import FramingError, SMPPFramer
from smsc_sim.smpp.pdu import FIELDS, PDU, DestAddress, UnsuccessSME, make_pdu
from tests import wire
from tests.test_session import StubCore, StubInstance

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IIII")
RESPONSE_BIT = 0x80000000
GENERIC_NACK = 0x80000000
UNBIND_RESP = 0x80000006
MAX_PDU_SIZE = 4096
SETTINGS = SessionSettings(max_pdu_size=MAX_PDU_SIZE, pdu_read_timeout=5.0, inbound_window=4)
STATES = ("OPEN", "BOUND_TX", "BOUND_RX", "BOUND_TRX", "UNBINDING")
_BIND_FOR_STATE = {"OPEN": None, "BOUND_TX": 0x02, "BOUND_RX": 0x01, "BOUND_TRX": 0x09, "UNBINDING": 0x09}
#: the sequence of the liveness probe sent after a stream; mutated PDUs may use it too, harmlessly
PROBE_SEQUENCE = 0x7FFFFFFE

# ---------------------------------------------------------------------------
# seeds: one valid PDU of every command, with and without TLVs
# ---------------------------------------------------------------------------

_SAMPLE_VALUES: dict[str, Any] = {
    "c": "4477",
    "i1": 1,
    "time": "",
    "sm": b"Hello",
    "dests": (DestAddress(1, 1, 1, "447700900002"), DestAddress(2, 0, 0, "friends")),
    "unsuccess": (UnsuccessSME(1, 1, "447700900003", 0x0B),),
}
_SAMPLE_TLVS = {Tag.user_message_reference: b"\x00\x01", 0x1400: b"vendor", Tag.message_payload: b"payload"}


def _seed_frames() -> list[bytes]:
    """A valid frame of every SMPP 3.4 command, plain and with TLVs, plus raw ones from tests.wire."""
    seeds = [wire.bind(command_id) for command_id in (0x01, 0x02, 0x09)]
    seeds += [wire.submit_sm(), wire.submit_sm(tlvs=wire.tlv(0x0424, b"x" * 200)), wire.frame(0x15, 1)]
    for command_id, spec in FIELDS.items():
        params = {name: _SAMPLE_VALUES[kind] for name, kind, _ in spec}
        for tlvs in ({}, _SAMPLE_TLVS):
            seeds.append(encode(make_pdu(command_id, 1, 0, tlvs=tlvs, **params)))
    return seeds


SEEDS: tuple[bytes, ...] = tuple(_seed_frames())

# ---------------------------------------------------------------------------
# the mutation language
# ---------------------------------------------------------------------------

#: ``(kind, a, b)``; positions are taken modulo the frame's size when applied.
Mutation = tuple[str, int, int]
KINDS = ("flip", "set", "truncate", "extend", "command_id", "status", "sequence", "length", "tlv", "insert", "delete")
#: command_length values that are wrong in every interesting way
ABSURD_LENGTHS = (0, 1, 4, 15, 16, 17, MAX_PDU_SIZE - 1, MAX_PDU_SIZE, MAX_PDU_SIZE + 1, 70_000, 0x7FFFFFFF, 0xFFFFFFFF)
#: command ids worth trying besides the real ones: unknown requests, responses to
#: requests that have none, the reserved bits
ODD_COMMAND_IDS = (0x0, 0x0A, 0x0C, 0x14, 0x16, 0x22, 0x101, 0x104, 0x7FFFFFFF, 0x8000000B, 0x80000102, 0x80000077, 0xFFFFFFFF)
ALL_COMMAND_IDS = tuple(sorted(int(c) for c in CommandId)) + ODD_COMMAND_IDS


def _filler(count: int, seed: int) -> bytes:
    return bytes((seed + i * 167) & 0xFF for i in range(count))


def mutate(frame: bytes, ops: Sequence[Mutation], fix_length: bool = True) -> bytes:
    """
    Apply mutations to a frame.

    :param ops: applied in order, except ``length`` lies, which go last.
    :param fix_length: rewrite command_length to the real size before the lies.
    """
    data = bytearray(frame)
    lies = []
    for kind, a, b in ops:
        size = len(data)
        if kind == "length":
            lies.append(a & 0xFFFFFFFF)
        elif kind == "flip" and size:
            data[a % size] ^= 1 << (b & 7)
        elif kind == "set" and size:
            data[a % size] = b & 0xFF
        elif kind == "truncate":
            del data[a % (size + 1) :]
        elif kind == "extend":
            data += _filler(a % 301, b)
        elif kind in ("command_id", "status", "sequence"):
            offset = {"command_id": 4, "status": 8, "sequence": 12}[kind]
            if size >= offset + 4:
                data[offset : offset + 4] = _U32.pack(b & 0xFFFFFFFF)
        elif kind == "tlv":
            data += struct.pack(">HH", a & 0xFFFF, b & 0xFFFF) + _filler((b >> 16) % 300, a)
        elif kind == "insert":
            at = a % (size + 1)
            data[at:at] = _U32.pack(b & 0xFFFFFFFF)
        elif kind == "delete" and size:
            del data[a % size]
    if fix_length and len(data) >= 4:
        data[0:4] = _U32.pack(len(data))
    for lie in lies:
        if len(data) >= 4:
            data[0:4] = _U32.pack(lie)
    return bytes(data)


def random_mutation(rng: random.Random) -> Mutation:
    """One mutation drawn from ``rng``, with the same shapes as :data:`mutations`."""
    kind = rng.choice(KINDS)
    if kind == "length":
        return (kind, rng.choice(ABSURD_LENGTHS) if rng.random() < 0.7 else rng.getrandbits(32), 0)
    if kind == "command_id":
        return (kind, 0, rng.choice(ALL_COMMAND_IDS) if rng.random() < 0.8 else rng.getrandbits(32))
    if kind == "tlv":
        tag = rng.choice(list(Tag)) if rng.random() < 0.5 else rng.getrandbits(16)
        return (kind, int(tag), rng.getrandbits(32))
    if kind in ("status", "sequence", "insert"):
        return (kind, rng.getrandbits(16), rng.getrandbits(32) if rng.random() < 0.7 else rng.choice((0, 1, 0xFFFFFFFF)))
    return (kind, rng.getrandbits(16), rng.getrandbits(8))


_u32 = st.integers(0, 0xFFFFFFFF)
_position = st.integers(0, 0xFFFF)
command_ids = st.one_of(st.sampled_from(ALL_COMMAND_IDS), _u32)
mutations = st.one_of(
    st.tuples(st.sampled_from(("flip", "set", "truncate", "extend", "delete")), _position, st.integers(0, 255)),
    st.tuples(st.just("command_id"), st.just(0), command_ids),
    st.tuples(st.sampled_from(("status", "sequence", "insert")), _position, _u32),
    st.tuples(st.just("length"), st.one_of(st.sampled_from(ABSURD_LENGTHS), _u32), st.just(0)),
    st.tuples(st.just("tlv"), st.one_of(st.sampled_from([int(t) for t in Tag]), st.integers(0, 0xFFFF)), _u32),
)


def with_sequence(frame: bytes, sequence: int) -> bytes:
    """The frame with its sequence_number replaced (when it has a whole header)."""
    if len(frame) < 16:
        return frame
    return frame[:12] + _U32.pack(sequence) + frame[16:]


def mutated_frame(seed: bytes, sequence: int, ops: Sequence[Mutation], fix_length: bool) -> bytes:
    """A seed given a sequence number, then mutated."""
    return mutate(with_sequence(seed, sequence), ops, fix_length)


def random_frame(rng: random.Random) -> bytes:
    """A seed, valid half of the time, else with one to three mutations, all drawn from ``rng``."""
    seed = with_sequence(rng.choice(SEEDS), rng.choice((1, 2, rng.getrandbits(31))))
    if rng.random() < 0.5:
        return seed
    ops = [random_mutation(rng) for _ in range(rng.randint(1, 3))]
    return mutate(seed, ops, rng.random() < 0.9)


mutated_frames = st.builds(
    mutated_frame,
    st.sampled_from(SEEDS),
    st.one_of(st.sampled_from((1, 2, 0, 0x7FFFFFFF)), _u32),
    st.lists(mutations, max_size=3),
    st.booleans(),
)


# ---------------------------------------------------------------------------
# reference framing and the session harness
# ---------------------------------------------------------------------------


@dataclass
class ReferenceFraming:
    """How a stream must be cut: frames ``(start, end)``, then a bad header or a partial tail."""

    frames: list[tuple[int, int]]
    error_at: int | None
    partial: bool


def reference_framing(stream: bytes, max_pdu_size: int) -> ReferenceFraming:
    """Cut a stream by command_length the simple way, independently of SMPPFramer."""
    frames: list[tuple[int, int]] = []
    pos = 0
    while len(stream) - pos >= 4:
        (length,) = _U32.unpack_from(stream, pos)
        if not 16 <= length <= max_pdu_size:
            return ReferenceFraming(frames, pos, False)
        if len(stream) - pos < length:
            break
        frames.append((pos, pos + length))
        pos += length
    return ReferenceFraming(frames, None, pos < len(stream))


@dataclass
class Report:
    """What happened to the PDUs of one or more streams, and what went wrong."""

    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def add(self, other: Report) -> None:
        """Accumulate another report."""
        self.counts.update(other.counts)
        self.violations.extend(other.violations)


def parse_output(data: bytes) -> list[tuple[int, int, int]]:
    """``(command_id, status, sequence)`` of each PDU written; raises ValueError on a malformed write."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 16:
            raise ValueError(f"{len(data) - pos} stray octets written")
        length, command_id, status, sequence = _HEADER.unpack_from(data, pos)
        if length < 16 or pos + length > len(data):
            raise ValueError(f"written PDU with command_length {length}")
        decode(data[pos : pos + length])  # what the session writes, an ESME can read
        out.append((command_id, status, sequence))
        pos += length
    return out


class SessionUnderFuzz:
    """
    One session on a StringTransport with the stub core of tests/test_session.py,
    brought into a state, fed a stream in chunks and checked.

    :param state: one of :data:`STATES`.
    :param strict: whether the instance is strict.
    :param trace: trace every PDU (log lines with decoded fields, each one
        formatted here) and subscribe to the event bus (``pdu_in``/``pdu_out``).
    """

    def __init__(self, state: str, strict: bool = False, trace: bool = False) -> None:
        self.state = state
        self.clock = Clock()
        self.clock.rightNow = 1_700_000_000.0
        self.core = StubCore()
        self.instance = StubInstance()
        self.instance.window = (SETTINGS.inbound_window, SETTINGS.window_status)
        self.instance.strict = strict
        self.session = SMPPSession(
            core=self.core,
            instance=self.instance,
            settings=SETTINGS,
            clock=self.clock,
            events=EventBus(self.clock),
            session_id=1,
        )
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        self.trace = trace
        if trace:
            self.session.trace = True
            self.session.events.subscribe(lambda event: None)
        self.events: list[dict[str, Any]] = []
        self.report = Report()
        self._read = 0
        #: sequences of SMSC requests an ESME response would answer (the unbind of UNBINDING)
        self.inflight: set[int] = set()
        globalLogPublisher.addObserver(cast(ILogObserver, self._observe))
        self.session.makeConnection(self.transport)
        bind = _BIND_FOR_STATE[state]
        if bind is not None:
            self.session.dataReceived(wire.bind(bind, sequence=1))
        if state == "UNBINDING":
            self.session.unbind()
            self.inflight.add(1)
        self.transport.clear()

    def _observe(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if "log_failure" in event or level in (LogLevel.error, LogLevel.critical):
            self.events.append(event)
        elif self.trace and formatEvent(event).startswith("Unable to format event"):
            self.events.append(event)

    def violation(self, text: str, stream: bytes) -> None:
        """Record a broken invariant with what reproduces it."""
        where = f"state {self.state}, strict {self.instance.strict}, trace {self.trace}"
        self.report.violations.append(f"{text} [{where}, stream {stream.hex()}]")

    def _new_output(self) -> list[tuple[int, int, int]]:
        data = self.transport.value()
        fresh, self._read = data[self._read :], len(data)
        return [h for h in parse_output(fresh) if h[0] & RESPONSE_BIT]

    def run(self, stream: bytes, cuts: Sequence[int] = ()) -> Report:
        """Feed ``stream`` cut at ``cuts``, check every invariant, then lose the connection."""
        try:
            self._run(stream, cuts)
        except Exception:
            self.violation("exception escaped:\n" + traceback.format_exc(), stream)
        finally:
            globalLogPublisher.removeObserver(cast(ILogObserver, self._observe))
        for event in self.events:
            self.violation(f"logged at {event.get('log_level')}: {event.get('log_format')} {event.get('log_failure')}", stream)
        return self.report

    def _run(self, stream: bytes, cuts: Sequence[int]) -> None:
        ref = reference_framing(stream, MAX_PDU_SIZE)
        ends = sorted({c % (len(stream) + 1) for c in cuts} | {len(stream)})
        fed = 0
        next_frame = 0
        closed = False
        error_reported = False
        for end in ends:
            if end <= fed:
                continue
            self.session.dataReceived(stream[fed:end])
            fed = end
            out = self._new_output()
            done = []
            while next_frame < len(ref.frames) and ref.frames[next_frame][1] <= fed:
                done.append(stream[slice(*ref.frames[next_frame])])
                next_frame += 1
            error_now = ref.error_at is not None and not error_reported and fed >= ref.error_at + 4
            if closed:
                self.report.counts["ignored after close"] += len(done)
                if out:
                    self.violation(f"wrote {out} after closing", stream)
                continue
            nacked = False
            if error_now:
                # the frames before the bad header are served first, then generic_nack and a close
                error_reported = True
                assert ref.error_at is not None
                seq = _U32.unpack_from(stream, ref.error_at + 12)[0] if fed >= ref.error_at + 16 else 0
                nack = (GENERIC_NACK, 0x02, seq)
                nacked = bool(out) and out[-1] == nack
                if nacked:
                    out = out[:-1]
                self.report.counts["framing error"] += 1
            closed = self._match(done, out, stream)
            if error_now and not closed and not nacked:
                self.violation(f"framing error at {ref.error_at} not answered with {nack}", stream)
            closed = closed or error_now
            if self.transport.disconnecting != closed:
                self.violation(f"connection {'closed' if self.transport.disconnecting else 'open'} unexpectedly", stream)
                return
        self._after(stream, ref, closed)

    def _match(self, frames: list[bytes], out: list[tuple[int, int, int]], stream: bytes) -> bool:
        """Match completed frames with the answers written, in order; return whether the session closed."""
        index = 0
        closed = False
        for frame in frames:
            if closed:
                self.report.counts["ignored after close"] += 1
                continue
            _, command_id, _, sequence = _HEADER.unpack_from(frame)
            if command_id & RESPONSE_BIT:
                try:
                    decode(frame)
                except PDUDecodeError as error:
                    expected = (GENERIC_NACK, error.status, sequence)
                    if out[index : index + 1] != [expected]:
                        self.violation(f"bad response {frame.hex()} wants {expected}, got {out[index:]}", stream)
                        return self.transport.disconnecting
                    index += 1
                    self.report.counts["response nacked"] += 1
                    continue
                if sequence in self.inflight:
                    # any response to the SMSC's unbind ends the session
                    self.inflight.discard(sequence)
                    closed = True
                    self.report.counts["unbind answered"] += 1
                else:
                    self.report.counts["response ignored"] += 1
                continue
            if index >= len(out):
                self.violation(f"request {frame.hex()} not answered", stream)
                return self.transport.disconnecting
            answer = out[index]
            index += 1
            if answer[2] != sequence or answer[0] not in (command_id | RESPONSE_BIT, GENERIC_NACK):
                self.violation(f"request {frame.hex()} answered with {answer}", stream)
                return self.transport.disconnecting
            if answer[0] == GENERIC_NACK:
                self.report.counts["generic_nack"] += 1
            else:
                self.report.counts["answered ok" if answer[1] == 0 else "answered with error"] += 1
            if answer[0] == UNBIND_RESP and answer[1] == 0:
                closed = True
                self.report.counts["closed by unbind"] += 1
        if index != len(out):
            self.violation(f"unexpected answers {out[index:]}", stream)
        return closed

    def _after(self, stream: bytes, ref: ReferenceFraming, closed: bool) -> None:
        """The session still serves after the stream, or times a partial PDU out; no timer leaks."""
        if not closed and ref.partial:
            self.clock.advance(SETTINGS.pdu_read_timeout)
            if not self.transport.disconnecting:
                self.violation("partial PDU not closed by the PDU-read timer", stream)
            self.report.counts["partial PDU timed out"] += 1
        elif not closed:
            self.session.dataReceived(wire.frame(0x15, PROBE_SEQUENCE))
            status = 0x04 if self.instance.strict and self.session.state.name == "OPEN" else 0
            out = self._new_output()
            if out != [(0x80000015, status, PROBE_SEQUENCE)]:
                self.violation(f"enquire_link after the stream answered {out}", stream)
            self.report.counts["served after"] += 1
        self.clock.advance(1000)  # every timer that can fire, fires (and must not raise)
        self.session.connectionLost()
        self.session.dataReceived(wire.frame(0x15, 3))  # after the end: ignored, no exception
        if self.clock.getDelayedCalls():
            self.violation(f"timers left after connectionLost: {self.clock.getDelayedCalls()}", stream)


def fuzz_stream(
    state: str, frames: Sequence[bytes], cuts: Sequence[int] = (), strict: bool = False, trace: bool = False
) -> Report:
    """Run one stream of frames through a fresh session in ``state``."""
    stream = b"".join(frames)
    report = SessionUnderFuzz(state, strict, trace).run(stream, cuts)
    report.counts["PDUs"] += len(frames)
    return report


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

# Sized so this file runs in about 10 s; scripts/fuzz.py is the long run.
_FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_STREAMS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SESSION = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decoded(decoder: Callable[[bytes], PDU], frame: bytes) -> tuple[Any, ...]:
    """What a decoder gives: the PDU, or everything a PDUDecodeError tells the session."""
    try:
        return ("pdu", decoder(frame))
    except PDUDecodeError as error:
        return ("error", error.status, error.command_id, error.sequence_number, error.nack, str(error))


class CodecFuzzTests(SynchronousTestCase):
    """decode() and encode() on garbage and on mutated PDUs, and the table path beside them."""

    @_FAST
    @given(st.binary(max_size=600))
    def test_random_bytes(self, frame: bytes) -> None:
        """Random bytes never make decode() raise anything but PDUDecodeError."""
        self.check(frame)

    @_FAST
    @given(mutated_frames)
    def test_mutated_pdus(self, frame: bytes) -> None:
        """Bit flips, truncations, lying lengths and TLV lies never make decode() raise anything else."""
        self.check(frame)

    @_FAST
    @given(st.sampled_from(ALL_COMMAND_IDS), _u32, _u32, st.binary(max_size=80))
    def test_every_command_id_with_any_body(self, command_id: int, status: int, sequence: int, body: bytes) -> None:
        """Any command_id, status and body decode or fail with a PDUDecodeError naming the header."""
        self.check(_HEADER.pack(16 + len(body), command_id, status, sequence) + body)

    def check(self, frame: bytes) -> None:
        """decode() gives a PDU that encodes again, or a PDUDecodeError naming the header; the table path agrees."""
        self.assertEqual(_decoded(decode, frame), _decoded(decode_table, frame))
        try:
            pdu = decode(frame)
        except PDUDecodeError as error:
            if len(frame) >= 16:
                _, command_id, _, sequence = _HEADER.unpack_from(frame)
                self.assertEqual((error.command_id, error.sequence_number), (command_id, sequence))
            self.assertTrue(0 <= error.status <= 0xFFFFFFFF)
            return
        try:
            again = encode(pdu)
        except ValueError:
            return
        self.assertEqual(decode(again).command_id, pdu.command_id)


class FramerFuzzTests(SynchronousTestCase):
    """The framer on arbitrary streams cut arbitrarily."""

    @_STREAMS
    @given(st.lists(mutated_frames, max_size=6), st.lists(st.integers(0, 5000), max_size=8))
    def test_any_chunking_frames_like_the_reference(self, frames: list[bytes], cuts: list[int]) -> None:
        """However a stream is cut into reads, the framer yields the reference frames, then a FramingError."""
        stream = b"".join(frames)
        ref = reference_framing(stream, MAX_PDU_SIZE)
        framer = SMPPFramer(MAX_PDU_SIZE)
        got: list[bytes] = []
        failed = False
        fed = 0
        for end in sorted({c % (len(stream) + 1) for c in cuts} | {len(stream)}):
            if end <= fed:
                continue
            try:
                got += framer.feed(stream[fed:end])
            except FramingError as error:
                failed = True
                self.assertEqual(error.status, 0x02)
                self.assertRaises(FramingError, framer.feed, b"\x00" * 16)
                break
            fed = end
            self.assertLess(framer.buffered, MAX_PDU_SIZE)
        self.assertEqual(got, [stream[s:e] for s, e in ref.frames][: len(got)])
        self.assertEqual(failed, ref.error_at is not None)
        if not failed:
            self.assertEqual(len(got), len(ref.frames))
            self.assertEqual(framer.partial, ref.partial)


class SessionFuzzTests(SynchronousTestCase):
    """The session on streams of mutated PDUs, in every state."""

    def assertClean(self, report: Report) -> None:
        self.assertEqual(report.violations, [])

    @_SESSION
    @given(
        st.sampled_from(STATES),
        st.lists(mutated_frames, min_size=1, max_size=8),
        st.lists(st.integers(0, 5000), max_size=6),
        st.booleans(),
        st.booleans(),
    )
    def test_mutated_streams(self, state: str, frames: list[bytes], cuts: list[int], strict: bool, trace: bool) -> None:
        """Mutated PDUs in any state, cut anyhow, traced or not: one answer per request, no escape, still serving."""
        self.assertClean(fuzz_stream(state, frames, cuts, strict, trace))

    @_SESSION
    @given(st.sampled_from(STATES), command_ids, st.one_of(st.sampled_from(SEEDS), st.binary(max_size=60)))
    def test_every_command_id_in_every_state(self, state: str, command_id: int, seed: bytes) -> None:
        """Any command_id, request or response, known or not, with any body, gets the answer the invariants say."""
        body = seed[16:] if len(seed) >= 16 else seed
        frame = _HEADER.pack(16 + len(body), command_id, 0, 5) + body
        self.assertClean(fuzz_stream(state, [frame]))

    @_SESSION
    @given(st.sampled_from(STATES), st.binary(min_size=1, max_size=200))
    def test_random_bytes(self, state: str, data: bytes) -> None:
        """Random bytes get a generic_nack and a close, or answers, never an exception."""
        report = SessionUnderFuzz(state).run(data, [7, 16, 33])
        self.assertClean(report)

    def test_every_seed_in_every_state(self) -> None:
        """Every valid PDU of every command, in every state, gets exactly one answer if it is a request."""
        for state in STATES:
            for strict in (False, True):
                for seed in SEEDS:
                    self.assertClean(fuzz_stream(state, [seed], strict=strict))

    def test_absurd_lengths(self) -> None:
        """Each absurd command_length, after a valid enquire_link, behaves as the spec says in every state."""
        for state in STATES:
            for length in ABSURD_LENGTHS:
                bad = mutate(wire.frame(0x15, 9), [("length", length, 0)])
                for cuts in ((), (16,), (18,), (20,), (24,)):
                    self.assertClean(fuzz_stream(state, [wire.frame(0x15, 8), bad], cuts))

    def test_tlv_length_lies(self) -> None:
        """A submit_sm whose TLV claims more octets than the PDU holds gets submit_sm_resp ESME_RINVPARLEN."""
        session = SessionUnderFuzz("BOUND_TRX")
        frame = mutate(wire.submit_sm(sequence=4), [("tlv", 0x0424, 0xFFFF)])
        report = session.run(frame)
        self.assertClean(report)
        self.assertEqual(wire.headers(session.transport.value())[0], (0x80000004, 0xC2, 4))
        self.assertEqual(report.counts["answered with error"], 1)
