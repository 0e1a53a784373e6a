"""
The codec's fast paths, each against its reference: the one-match submit_sm
and deliver_sm reader against the field-by-field one, the one-format writer
against the piece-by-piece one, the direct submit_sm_resp and
deliver_sm_resp against smpp.pdu3, the TLV writer, and ``build_pdu``.
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

from smsc_sim.smpp._fields import FieldError, decode_sm, encode_sm, pack_tlvs, read_sm, write_sm
from smsc_sim.smpp.codec import build_pdu, decode, decode_with_pdu3, encode, frozen_builder
from smsc_sim.smpp.constants import CommandId as C
from smsc_sim.smpp.pdu import FIELDS, PDU, make_pdu
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


def _outcome(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """What a call gives: its result, or the type (and FieldError status) of what it raised."""
    try:
        return "ok", function(*args)
    except FieldError as error:
        return "FieldError", (error.status, str(error))
    except Exception as error:
        return type(error).__name__, None


class DecodeSMTests(SynchronousTestCase):
    """decode_sm (one regular-expression match) against read_sm (field by field)."""

    @settings(max_examples=400, deadline=None)
    @given(_SM_PARAMS, st.sampled_from([C.submit_sm, C.deliver_sm]), st.binary(max_size=12))
    def test_well_formed_bodies_read_the_same(self, params: dict[str, Any], command_id: int, tail: bytes) -> None:
        """Every well-formed body, whatever follows it, gives the same fields and TLV position both ways."""
        frame = encode(PDU(command_id, 1, 0, params, {}))
        frame = struct.pack(">I", len(frame) + len(tail)) + frame[4:] + tail
        self.assertEqual(decode_sm(frame), read_sm(frame))
        self.assertEqual(decode_sm(frame)[0], params)

    @settings(max_examples=600, deadline=None)
    @given(st.binary(max_size=90))
    def test_any_body_gives_the_same_result_or_error(self, body: bytes) -> None:
        """Any octets after the header: the same fields, or the same FieldError status and message."""
        frame = struct.pack(">IIII", 16 + len(body), C.submit_sm, 0, 1) + body
        self.assertEqual(_outcome(decode_sm, frame), _outcome(read_sm, frame))

    @settings(max_examples=300, deadline=None)
    @given(_SM_PARAMS, st.data())
    def test_cut_bodies_give_the_same_error(self, params: dict[str, Any], data: st.DataObject) -> None:
        """A well-formed body cut short anywhere fails with the same status and message both ways."""
        frame = encode(PDU(C.submit_sm, 1, 0, params, {}))
        cut = frame[: data.draw(st.integers(16, len(frame) - 1))]
        self.assertEqual(_outcome(decode_sm, cut), _outcome(read_sm, cut))

    def test_strings_at_their_limits(self) -> None:
        """Strings of exactly their maximum length are read; one octet more is the field's error."""
        longest: dict[str, Any] = dict(service_type="S" * 5, source_addr="1" * 20, destination_addr="2" * 20,
                       schedule_delivery_time="0" * 16, validity_period="9" * 16, short_message=b"x" * 254)  # fmt: skip
        frame = encode(make_pdu(C.submit_sm, 1, **longest))
        self.assertEqual(decode(frame), make_pdu(C.submit_sm, 1, **longest))
        too_long = frame[:16] + b"S" * 6 + frame[16 + 5 :]
        too_long = struct.pack(">I", len(too_long)) + too_long[4:]
        self.assertEqual(_outcome(decode_sm, too_long), _outcome(read_sm, too_long))
        self.assertEqual(_outcome(decode_sm, too_long)[0], "FieldError")


class EncodeSMTests(SynchronousTestCase):
    """encode_sm (one formatting operation) against write_sm (piece by piece)."""

    @settings(max_examples=400, deadline=None)
    @given(_SM_PARAMS)
    def test_values_that_fit_write_the_same(self, params: dict[str, Any]) -> None:
        """Every value that fits gives the same octets both ways."""
        self.assertEqual(encode_sm(params), write_sm(params))

    @settings(max_examples=600, deadline=None)
    @given(_ANY_SM_PARAMS)
    def test_any_values_write_or_fail_the_same(self, params: dict[str, Any]) -> None:
        """Any values: the same octets, or the same exception type."""
        self.assertEqual(_outcome(encode_sm, params), _outcome(write_sm, params))

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

    def test_frozen_builder_of_other_values(self) -> None:
        """frozen_builder builds the same value as the class for any frozen slotted dataclass, and refuses others."""
        from smsc_sim.contracts import MessageFacts, Reply
        from smsc_sim.smpp.constants import BindType

        facts = ("submit_sm", "SMPP1", "acct", BindType.transceiver, "1", "2", "hi", 0, 0x40, 1, 3, frozenset({5}))
        self.assertEqual(frozen_builder(MessageFacts)(*facts), MessageFacts(*facts))
        reply = (PDU(C.submit_sm_resp, 1), 0.5, Reply(None).then, None)
        self.assertEqual(frozen_builder(Reply)(*reply), Reply(*reply))
        with self.assertRaises(TypeError):
            frozen_builder(MessageFacts)(*facts[:-1])  # every field must be given

        @dataclasses.dataclass(frozen=True)
        class NotSlotted:
            value: int

        self.assertRaises(TypeError, frozen_builder, NotSlotted)
