"""
The codec's one fast path (submit_sm, deliver_sm and their responses) against
the table-driven path: the same PDU or the same error for random valid and
malformed frames, the same octets or the same error for any values.  Also the
direct submit_sm_resp and deliver_sm_resp against the octets smpp.pdu3
writes, the TLV writer, ``build_pdu`` and the submit path's Reply builder.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from smpp.pdu import operations as pdu3_operations
from smpp.pdu.pdu_encoding import PDUEncoder
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp._fields import TLV_SIZES, pack_tlvs
from smsc_sim.smpp.codec import (
    NO_BODY_ON_ERROR,
    PDUDecodeError,
    build_pdu,
    decode,
    decode_table,
    encode,
    encode_table,
)
from smsc_sim.smpp.constants import CommandId as C
from smsc_sim.smpp.constants import CommandStatus as S
from smsc_sim.smpp.pdu import FIELDS, PDU, make_pdu
from smsc_sim.smpp.pdu3_reference import decode_with_pdu3
from tests.test_codec import valid_hot_pdu

_LATIN1 = st.characters(min_codepoint=1, max_codepoint=255)
_BYTE = st.integers(0, 255)


def _string(size: int) -> st.SearchStrategy[str]:
    """A C-Octet String value that fits ``size`` octets (NUL included), up to the limit."""
    return st.text(_LATIN1, max_size=size - 1)


#: submit_sm / deliver_sm params that fit their fields, of every length up to the maximum
_SM_PARAMS = st.fixed_dictionaries(
    {
        name: (_BYTE if kind == "i1" else st.binary(max_size=254) if kind == "sm" else _string(size))
        for name, kind, size in FIELDS[C.submit_sm]
    }
)

#: values that may not fit: too long, with a NUL, beyond Latin-1, out of range, of the wrong type
_ANY_STRING = st.one_of(st.text(max_size=25), st.just("a\x00b"), st.just("\u20ac"), st.none())
_ANY_INT = st.one_of(st.integers(-2, 300), st.none(), st.just("1"))
_ANY_SM = st.one_of(st.binary(max_size=260), st.just("text"))
_ANY_SM_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        name: (_ANY_INT if kind == "i1" else _ANY_SM if kind == "sm" else _ANY_STRING)
        for name, kind, size in FIELDS[C.submit_sm]
    },
)


def _decoded(decoder: Callable[[bytes], PDU], frame: bytes) -> tuple[Any, ...]:
    """What a decoder gives: the PDU, or everything a PDUDecodeError tells the session."""
    try:
        return ("pdu", decoder(frame))
    except PDUDecodeError as error:
        return ("error", error.status, error.command_id, error.sequence_number, error.nack, str(error))


def _encoded(encoder: Callable[[PDU], bytes], pdu: PDU) -> tuple[Any, ...]:
    """What an encoder gives: the octets, or the type and text of what it raised."""
    try:
        return ("octets", encoder(pdu))
    except Exception as error:
        return (type(error).__name__, str(error))


_HOT = (C.submit_sm, C.deliver_sm, C.submit_sm_resp, C.deliver_sm_resp)
_STATUS = st.one_of(st.just(0), st.sampled_from([0x01, 0x08, 0x45, 0x58, 0x400]), st.integers(0, 0xFFFFFFFF))
_TLV_TAGS = [0x0204, 0x020A, 0x020C, 0x0424, 0x001E, 0x0427, 0x0005, 0x1400, 0x1500, 0x2000]


@st.composite
def _tlv(draw: st.DrawFn) -> tuple[int, bytes]:
    """A TLV of a size the spec allows for its tag (any size for a vendor tag)."""
    tag = draw(st.sampled_from(_TLV_TAGS))
    low, high = TLV_SIZES.get(tag, (0, 8))
    return tag, draw(st.binary(min_size=low, max_size=min(high, 8)))


_TLVS = st.lists(_tlv(), max_size=3).map(dict)


@st.composite
def hot_pdu(draw: st.DrawFn) -> PDU:
    """submit_sm, deliver_sm or their responses with any values that fit, any status, any TLVs."""
    command_id = draw(st.sampled_from(_HOT))
    params = draw(_SM_PARAMS) if command_id in (C.submit_sm, C.deliver_sm) else {"message_id": draw(_string(65))}
    status = 0 if command_id in (C.submit_sm, C.deliver_sm) else draw(_STATUS)
    return PDU(command_id, draw(st.integers(0, 0xFFFFFFFF)), status, params, draw(_TLVS))


@st.composite
def malformed_frame(draw: st.DrawFn) -> bytes:
    """A hot frame broken somewhere: sm_length set, cut, an octet changed, inserted or removed, octets added."""
    pdu = draw(hot_pdu())
    frame = bytearray(encode_table(pdu))
    if pdu.command_id in (C.submit_sm, C.deliver_sm) and draw(st.booleans()):
        sm_at = len(frame) - len(pack_tlvs(pdu.tlvs)) - len(pdu.params["short_message"]) - 1
        frame[sm_at] = draw(st.one_of(st.sampled_from([253, 254, 255]), _BYTE))
        frame += b"x" * draw(st.sampled_from([0, 1, 255, draw(st.integers(0, 300))]))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(16, max(16, len(frame) - 1)))
        how = draw(st.sampled_from(["cut", "set", "insert", "remove", "append"]))
        if how == "cut":
            del frame[at:]
        elif how == "set" and at < len(frame):
            frame[at] = draw(st.sampled_from([0, 0xFF, draw(_BYTE)]))
        elif how == "insert":
            frame[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif how == "remove" and at < len(frame):
            del frame[at]
        elif how == "append":
            frame += draw(st.binary(min_size=1, max_size=8))
    if draw(st.integers(0, 9)):  # most keep a true command_length, so that the body is judged
        frame[0:4] = struct.pack(">I", len(frame))
    return bytes(frame)


class FastDecodeTests(SynchronousTestCase):
    """The fast path's decode against the table path's, for submit_sm, deliver_sm and their responses."""

    def assertSameDecode(self, frame: bytes) -> None:
        """Both paths give the same PDU, or the same status, command_id, sequence, nack and message."""
        self.assertEqual(_decoded(decode, frame), _decoded(decode_table, frame), frame.hex())

    @settings(max_examples=500, deadline=None)
    @given(hot_pdu(), st.binary(max_size=12))
    def test_valid_frames(self, pdu: PDU, tail: bytes) -> None:
        """Every valid frame, with or without stray octets after it, decodes the same way on both paths."""
        frame = encode_table(pdu)
        self.assertSameDecode(frame)
        if pdu.command_status == 0 or pdu.command_id not in NO_BODY_ON_ERROR:
            self.assertEqual(decode(frame), pdu)
        self.assertSameDecode(struct.pack(">I", len(frame) + len(tail)) + frame[4:] + tail)

    @settings(max_examples=1500, deadline=None)
    @given(malformed_frame())
    def test_malformed_frames(self, frame: bytes) -> None:
        """A broken frame fails (or decodes) the same way on both paths."""
        self.assertSameDecode(frame)

    @settings(max_examples=800, deadline=None)
    @given(st.sampled_from(_HOT), _STATUS, st.integers(0, 0xFFFFFFFF), st.binary(max_size=90))
    def test_any_body(self, command_id: int, status: int, sequence: int, body: bytes) -> None:
        """Any octets after a valid header: the same PDU or the same error on both paths."""
        self.assertSameDecode(struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body)

    def test_error_table_rows(self) -> None:
        """Each row of the error table gives its status on both paths: strings, sm_length 255 and overrun, TLVs."""
        body = encode(make_pdu(C.submit_sm, 42, short_message=b"hi"))[16:]
        sm_length_at = len(body) - 3
        cases = [
            (b"", S.ESME_RINVMSGLEN),  # ends before service_type
            (b"CMTxyz\x00" + body[1:], S.ESME_RINVSERTYP),  # too long
            (body[:1] + b"\x01\x01" + b"4" * 21, S.ESME_RINVSRCADR),  # no NUL within 21
            (body[:1] + b"\x01\x01" + b"4477", S.ESME_RINVMSGLEN),  # ends inside source_addr
            (body[:5], S.ESME_RINVMSGLEN),  # ends among integers
            (body[:sm_length_at] + b"\xff" + body[sm_length_at + 1 :] + b"x" * 253, S.ESME_RINVMSGLEN),
            (body[:sm_length_at] + b"\x09" + body[sm_length_at + 1 :], S.ESME_RINVMSGLEN),
            (body + bytes.fromhex("0204"), S.ESME_RINVOPTPARSTREAM),
            (body + bytes.fromhex("0424 0010 414243"), S.ESME_RINVPARLEN),
            (body + bytes.fromhex("020c 0001 01"), S.ESME_RINVPARLEN),
        ]
        for command_id in (C.submit_sm, C.deliver_sm):
            for case, status in cases:
                frame = struct.pack(">IIII", 16 + len(case), command_id, 0, 42) + case
                for decoder in (decode, decode_table):
                    error = self.assertRaises(PDUDecodeError, decoder, frame)
                    self.assertEqual((error.status, error.command_id, error.sequence_number, error.nack),
                                     (status, command_id, 42, False), (decoder.__name__, case.hex()))  # fmt: skip
        for command_id in (C.submit_sm_resp, C.deliver_sm_resp):
            frame = struct.pack(">IIII", 16 + 66, command_id, 0, 42) + b"9" * 65 + b"\x00"
            for decoder in (decode, decode_table):
                self.assertEqual(self.assertRaises(PDUDecodeError, decoder, frame).status, S.ESME_RINVMSGID)


class FastEncodeTests(SynchronousTestCase):
    """The fast path's encode against the table path's."""

    @settings(max_examples=500, deadline=None)
    @given(hot_pdu())
    def test_values_that_fit(self, pdu: PDU) -> None:
        """Every PDU whose values fit gives the same octets on both paths."""
        self.assertEqual(_encoded(encode, pdu), _encoded(encode_table, pdu))
        self.assertEqual(_encoded(encode, pdu)[0], "octets")

    @settings(max_examples=800, deadline=None)
    @given(st.sampled_from(_HOT), _ANY_SM_PARAMS, st.integers(0, 2**32), _STATUS, st.sampled_from([{}, {0x1E: b"1\x00"}]))
    def test_any_values(self, command_id: int, params: dict[str, Any], sequence: int, status: int,
                        tlvs: dict[int, bytes]) -> None:  # fmt: skip
        """Values too long, with a NUL, beyond Latin-1, out of range or of the wrong type: same octets or same error."""
        if command_id in (C.submit_sm_resp, C.deliver_sm_resp):
            params = {"message_id": params["source_addr"]} if "source_addr" in params else {}
        pdu = PDU(command_id, sequence, status, params, tlvs)
        self.assertEqual(_encoded(encode, pdu), _encoded(encode_table, pdu))

    @settings(max_examples=300, deadline=None)
    @given(valid_hot_pdu())
    def test_smpp_pdu3_reads_what_is_written(self, pdu: PDU) -> None:
        """Every hot-path PDU encoded here is read back by stock smpp.pdu3 as the same fields and TLVs."""
        self.assertEqual(decode_with_pdu3(encode(pdu)), pdu)


class MessageIdResponseTests(SynchronousTestCase):
    """The direct submit_sm_resp and deliver_sm_resp writer."""

    @settings(max_examples=300, deadline=None)
    @given(st.integers(1, 0x7FFFFFFF), _string(65))
    def test_submit_sm_resp_as_smpp_pdu3_writes_it(self, sequence: int, message_id: str) -> None:
        """submit_sm_resp with any message id is the octets smpp.pdu3 writes."""
        expected = PDUEncoder().encode(
            pdu3_operations.SubmitSMResp(seqNum=sequence, message_id=message_id.encode("latin-1") or None)
        )
        self.assertEqual(encode(PDU(C.submit_sm_resp, sequence, 0, {"message_id": message_id}, {})), expected)

    @settings(max_examples=100, deadline=None)
    @given(st.integers(1, 0x7FFFFFFF))
    def test_deliver_sm_resp_as_smpp_pdu3_writes_it(self, sequence: int) -> None:
        """deliver_sm_resp (message_id NULL, all smpp.pdu3 can write, C.2 #11) is the octets smpp.pdu3 writes."""
        expected = PDUEncoder().encode(pdu3_operations.DeliverSMResp(seqNum=sequence))
        self.assertEqual(encode(make_pdu(C.deliver_sm_resp, sequence)), expected)

    @settings(max_examples=100, deadline=None)
    @given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), _string(65))
    def test_header_message_id_nul(self, sequence: int, status: int, message_id: str) -> None:
        """A deliver_sm_resp, any status and sequence, is the header, the message id and a NUL."""
        raw = message_id.encode("latin-1")
        expected = struct.pack(">IIII", 17 + len(raw), C.deliver_sm_resp, status, sequence) + raw + b"\x00"
        self.assertEqual(encode(PDU(C.deliver_sm_resp, sequence, status, {"message_id": message_id}, {})), expected)

    def test_error_status_and_tlvs(self) -> None:
        """An error submit_sm_resp is a bare header; a deliver_sm_resp keeps its body; TLVs take the general path."""
        self.assertEqual(
            encode(PDU(C.submit_sm_resp, 5, 0x45, {"message_id": "X"}, {})),
            struct.pack(">IIII", 16, C.submit_sm_resp, 0x45, 5),
        )
        self.assertEqual(
            encode(PDU(C.deliver_sm_resp, 5, 0x45, {"message_id": "X"}, {})),
            struct.pack(">IIII", 18, C.deliver_sm_resp, 0x45, 5) + b"X\x00",
        )
        self.assertEqual(
            encode(PDU(C.deliver_sm_resp, 5, 0, {}, {0x1500: b"ab"})),
            struct.pack(">IIII", 23, C.deliver_sm_resp, 0, 5) + b"\x00" + bytes.fromhex("1500 0002 6162"),
        )

    def test_values_that_do_not_fit_raise_as_before(self) -> None:
        """A message id too long, with a NUL, beyond Latin-1 or not text, or a sequence beyond 32 bits, is refused."""
        for params, sequence, error in (
            ({"message_id": "1" * 65}, 1, ValueError),
            ({"message_id": "a\x00"}, 1, ValueError),
            ({"message_id": "\u20ac"}, 1, ValueError),
            ({"message_id": None}, 1, AttributeError),
            ({"message_id": "1"}, 2**32, ValueError),
        ):
            self.assertRaises(error, encode, PDU(C.submit_sm_resp, sequence, 0, params, {}))


class PackTLVsTests(SynchronousTestCase):
    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=5))
    def test_tag_length_value_in_dict_order(self, tlvs: dict[int, bytes]) -> None:
        """Each TLV is its tag, its length and its value, in dict order."""
        expected = b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs.items())
        self.assertEqual(pack_tlvs(tlvs), expected)

    def test_what_does_not_fit(self) -> None:
        """A tag beyond 16 bits or a value beyond 65535 octets is a ValueError; a value not bytes a TypeError."""
        self.assertRaises(ValueError, pack_tlvs, {0x10000: b"x"})
        self.assertRaises(ValueError, pack_tlvs, {-1: b"x"})
        self.assertRaises(ValueError, pack_tlvs, {0x1400: b"x" * 65536})
        self.assertRaises(TypeError, pack_tlvs, {0x1400: "text"})
        value: Any = bytearray(b"ab")
        self.assertEqual(pack_tlvs({0x1400: value}), bytes.fromhex("1400 0002 6162"))


class BuildPDUTests(SynchronousTestCase):
    def test_same_value_as_the_dataclass(self) -> None:
        """build_pdu gives a PDU equal to PDU(...), as frozen, with the same fields."""
        params, tlvs = {"message_id": "A"}, {0x1E: b"A\x00"}
        built = build_pdu(C.deliver_sm_resp, 7, 3, params, tlvs)
        self.assertIsInstance(built, PDU)
        self.assertEqual(built, PDU(C.deliver_sm_resp, 7, 3, params, tlvs))
        self.assertEqual(repr(built), repr(PDU(C.deliver_sm_resp, 7, 3, params, tlvs)))
        self.assertIs(built.params, params)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            built.sequence_number = 8  # type: ignore[misc]

    def test_reply_builder_builds_the_class_value(self) -> None:
        """The submit path's Reply builder gives what Reply(...) gives, still frozen."""
        from smsc_sim.contracts import AfterReply, Reply
        from smsc_sim.core.submit import _reply

        def sent() -> None:
            pass

        for values in ((PDU(C.submit_sm_resp, 1), 0.5, AfterReply.close, sent), (None, 0.0, AfterReply.nothing, None)):
            built = _reply(*values)
            self.assertEqual(built, Reply(*values))
        with self.assertRaises(dataclasses.FrozenInstanceError):
            built.delay = 1.0  # type: ignore[misc]
