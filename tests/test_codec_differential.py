"""
Differential tests: the hot-path codec against stock smpp.pdu3, on valid and on malformed frames.

For submit_sm, submit_sm_resp, deliver_sm, deliver_sm_resp, enquire_link and
enquire_link_resp, :func:`~smsc_sim.smpp.codec.decode` and
:func:`~smsc_sim.smpp.pdu3_reference.decode_with_pdu3` must both decode a frame to the
same PDU, or both refuse it with the same status (the command_status the
SMSC answers).

Where smpp.pdu3 is wrong, the reference answer is corrected by one named
function below (``_pdu3_*``), each citing the fact and applying only when its
condition holds; where the codec is lenient on purpose (its module
docstring), likewise (``_lenient_*``).  Nothing else is mapped: any other
difference fails.  The conditions look at the frame through
:func:`_layout`, a spec-order walk written here, independent of the codec.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from typing import Any, Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from smpp.pdu import constants as pdu3_constants
from smpp.pdu import operations as pdu3_operations
from smpp.pdu import pdu_types as pdu3_types
from smpp.pdu.error import PDUParseError
from smpp.pdu.pdu_encoding import OptionEncoder
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp._fields import TLV_SIZES
from smsc_sim.smpp.codec import NO_BODY_ON_ERROR, PDUDecodeError, decode, encode
from smsc_sim.smpp.constants import RESPONSE_BIT
from smsc_sim.smpp.constants import CommandId as C
from smsc_sim.smpp.constants import CommandStatus as S
from smsc_sim.smpp.constants import status_name
from smsc_sim.smpp.pdu import FIELDS, PDU
from smsc_sim.smpp.pdu3_reference import decode_with_pdu3
from tests.test_codec import valid_hot_pdu

HOT = (C.submit_sm, C.submit_sm_resp, C.deliver_sm, C.deliver_sm_resp, C.enquire_link, C.enquire_link_resp)
_SM = (C.submit_sm, C.deliver_sm)
_MESSAGE_ID_RESPONSES = (C.submit_sm_resp, C.deliver_sm_resp)
_VENDOR_TAG = 0x1400

Outcome = tuple[str, Any]  # ("pdu", PDU) or ("status", "ESME_...")


def _with_length(frame: bytes) -> bytes:
    """The frame with its command_length set to its size."""
    return struct.pack(">I", len(frame)) + frame[4:]


def _outcome(decoder: Callable[[bytes], PDU], frame: bytes) -> Outcome:
    """The PDU a decoder reads, or the name of the status it refuses the frame with."""
    try:
        return "pdu", decoder(frame)
    except PDUDecodeError as error:
        return "status", status_name(error.status)


def _refused(status: int) -> Outcome:
    return "status", status_name(status)


# --- the frame as the spec lays it out -------------------------------------------------


@dataclasses.dataclass
class Layout:
    """
    Where the fields of a hot PDU lie, walked in spec order (SPEC 4.4, 4.5, 4.6; TLVs 3.2.4).

    :ivar spans: field name -> (start, end): a C-Octet String without its NUL,
        a one-octet integer, or the short_message octets.
    :ivar tlvs: (offset, tag, length) of each TLV whose 4-octet header fits.
    :ivar fault: (what, field) of the first field that does not fit: ``too_long``
        (no NUL within the maximum), ``ends_inside`` (body ends before the
        NUL), ``ends_before``, ``sm_overrun``, ``tlv_stray`` (1-3 octets),
        ``tlv_overrun``; ``None`` when the whole body fits.
    """

    command_id: int
    spans: dict[str, tuple[int, int]]
    tlvs: list[tuple[int, int, int]]
    fault: tuple[str, str] | None


def _layout(frame: bytes) -> Layout:
    """Walk a frame of a hot PDU (header assumed whole)."""
    command_id = struct.unpack_from(">I", frame, 4)[0]
    spans: dict[str, tuple[int, int]] = {}
    tlvs: list[tuple[int, int, int]] = []
    pos, end = 16, len(frame)
    for name, kind, size in FIELDS.get(command_id, ()):
        if pos >= end:
            return Layout(command_id, spans, tlvs, ("ends_before", name))
        if kind in ("c", "time"):
            nul = frame.find(0, pos, pos + size)
            if nul < 0:
                return Layout(command_id, spans, tlvs, ("too_long" if end - pos >= size else "ends_inside", name))
            spans[name] = (pos, nul)
            pos = nul + 1
        elif kind == "i1":
            spans[name] = (pos, pos + 1)
            pos += 1
        else:  # short_message, after its sm_length octet
            spans["sm_length"] = (pos, pos + 1)
            if pos + 1 + frame[pos] > end:
                return Layout(command_id, spans, tlvs, ("sm_overrun", name))
            spans[name] = (pos + 1, pos + 1 + frame[pos])
            pos += 1 + frame[pos]
    while command_id in _SM and pos < end:
        if end - pos < 4:
            return Layout(command_id, spans, tlvs, ("tlv_stray", "tlv"))
        tag, length = struct.unpack_from(">HH", frame, pos)
        tlvs.append((pos, tag, length))
        if pos + 4 + length > end:
            return Layout(command_id, spans, tlvs, ("tlv_overrun", "tlv"))
        pos += 4 + length
    return Layout(command_id, spans, tlvs, None)


def _replace_header(frame: bytes, command_id: int, status: int) -> bytes:
    return frame[:4] + struct.pack(">II", command_id, status) + frame[12:]


def _set_tag(frame: bytes, offset: int, tag: int) -> bytes:
    return frame[:offset] + struct.pack(">H", tag) + frame[offset + 2 :]


def _as(outcome: Outcome, command_id: int, status: int) -> Outcome:
    """An outcome read from a frame with another header, given back its own command_id and status."""
    if outcome[0] == "pdu":
        return "pdu", dataclasses.replace(outcome[1], command_id=command_id, command_status=status)
    return outcome


# --- what smpp.pdu3 gets wrong, and what the codec accepts on purpose -------------------------


def _pdu3_reads_a_stream(frame: bytes) -> Outcome:
    """
    A frame whose command_length is not its size is ESME_RINVCMDLEN (SPEC 4.3, smpp-facts B.5).

    smpp.pdu3 reads a stream, not a frame: it never compares command_length
    with the octets it has, so it answers ESME_RINVMSGLEN (or a TLV status)
    where the octets run out, and decodes a prefix when there are more.
    """
    return _refused(S.ESME_RINVCMDLEN)


def _pdu3_reads_c_string_past_its_maximum(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    A C-Octet String with no NUL within its maximum size (SPEC 3.1: "Var max N"
    includes the NUL) is that field's fault, whatever follows.

    smpp.pdu3 reads up to a NUL wherever it is and checks the size after
    (``COctetStringEncoder._read``), so with no NUL before the end of the body
    it answers ESME_RINVMSGLEN.  The right answer is its own once the string
    does end: the same frame with a NUL after it.
    """
    if layout.fault and layout.fault[0] == "too_long" and outcome == _refused(S.ESME_RINVMSGLEN):
        return _reference(_with_length(frame + b"\x00"))
    return outcome


def _pdu3_time_fields_share_one_status(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    An over-long schedule_delivery_time is ESME_RINVSCHED (SPEC 5.1.3).

    smpp.pdu3 answers ESME_RINVEXPIRY: its ``TimeEncoder`` instances share one
    class-level ``COctetStringEncoder(17)`` whose status each constructor
    overwrites, so the last one built (validity_period's) wins.  Not in
    smpp-facts C.2; found by these tests.
    """
    if layout.fault == ("too_long", "schedule_delivery_time") and outcome == _refused(S.ESME_RINVEXPIRY):
        return _refused(S.ESME_RINVSCHED)
    return outcome


def _pdu3_deliver_sm_resp_message_id_must_be_null(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    A deliver_sm_resp with a message_id (some clients send one) is read like a
    submit_sm_resp body (smpp-facts C.2 #11: smpp.pdu3 refuses any non-NULL
    one with ESME_RUNKNOWNERR, before checking its size).
    """
    if layout.command_id == C.deliver_sm_resp and outcome == _refused(S.ESME_RUNKNOWNERR):
        status = struct.unpack_from(">I", frame, 8)[0]
        return _as(_reference(_replace_header(frame, C.submit_sm_resp, 0)), C.deliver_sm_resp, status)
    return outcome


def _pdu3_holds_deliver_sm_to_null_schedule(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    deliver_sm's schedule_delivery_time must be NULL (SPEC 4.6.1), a value rule
    the codec leaves to its reader (the SMSC never receives deliver_sm).
    smpp.pdu3 refuses a non-NULL one with ESME_RUNKNOWNERR before checking its
    size; the structure is judged as in the same submit_sm body.
    """
    schedule = layout.spans.get("schedule_delivery_time")
    touched = (schedule is not None and schedule[0] < schedule[1]) or (
        layout.fault is not None and layout.fault[1] == "schedule_delivery_time"
    )
    if layout.command_id == C.deliver_sm and touched and outcome == _refused(S.ESME_RUNKNOWNERR):
        status = struct.unpack_from(">I", frame, 8)[0]
        return _as(_reference(_replace_header(frame, C.submit_sm, 0)), C.deliver_sm, status)
    return outcome


def _pdu3_reads_tlv_alone(frame: bytes, offset: int, length: int) -> bool:
    """Whether smpp.pdu3 refuses one TLV on its own (a value its encoder does not accept)."""
    try:
        OptionEncoder().decode(io.BytesIO(frame[offset : offset + 4 + length] + bytes(8)))
    except PDUParseError:
        return False
    return True


def _off_spec_size(tag: int, length: int) -> bool:
    """A known TLV whose length is outside the size SPEC 5.3.2 gives it (the table in smsc_sim.smpp._fields)."""
    bounds = TLV_SIZES.get(tag)
    return bounds is not None and not bounds[0] <= length <= bounds[1]


def _pdu3_relabels_a_cut_tlv_value(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    A TLV whose length runs past the PDU, or is not its spec size, is
    ESME_RINVPARLEN (SPEC 5.1.3 0xC2; smpp-facts C.1 "TLV length mismatch").
    smpp.pdu3's ``OptionEncoder`` reads a fixed-size value by its type's size,
    judges the value before the length, and relabels any error while reading
    a value, running out of octets included, ESME_RINVOPTPARAMVAL.
    """
    if outcome != _refused(S.ESME_RINVOPTPARAMVAL):
        return outcome
    if layout.fault == ("tlv_overrun", "tlv") or any(_off_spec_size(tag, n) for _, tag, n in layout.tlvs):
        return _refused(S.ESME_RINVPARLEN)
    return outcome


def _pdu3_reads_stray_octets_as_a_cut_tlv(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    1 to 3 octets after the last TLV are an error in the TLV part,
    ESME_RINVOPTPARSTREAM (SPEC 5.1.3 0xC0); smpp.pdu3 runs out of octets
    reading them and answers ESME_RINVMSGLEN (smpp-facts C.2 #10).
    """
    if layout.fault == ("tlv_stray", "tlv") and outcome == _refused(S.ESME_RINVMSGLEN):
        return _refused(S.ESME_RINVOPTPARSTREAM)
    return outcome


def _pdu3_takes(command_id: int) -> frozenset[int]:
    """The TLV tags smpp.pdu3 decodes in this PDU (its list, with an encoder)."""
    encoders = OptionEncoder().options
    names = pdu3_operations.getPDUClass(getattr(pdu3_types.CommandId, C(command_id).name)).optionalParams
    return frozenset(
        pdu3_constants.tag_name_map[name]
        for name in names
        if name in pdu3_constants.tag_name_map and getattr(pdu3_types.Tag, name) in encoders
    )


_PDU3_TAKES: dict[int, frozenset[int]] = {int(command_id): _pdu3_takes(command_id) for command_id in _SM}


def _pdu3_drops(tag: int) -> bool:
    """The reserved and vendor tag ranges smpp.pdu3 silently drops (smpp-facts C.1)."""
    return tag == 0 or 0x0100 <= tag <= 0x01FF or 0x0600 <= tag <= 0x11FF or tag >= 0x1400


def _as_vendor_tlv(frame: bytes, offset: int, tag: int, length: int) -> Outcome:
    """
    smpp.pdu3's answer for the frame with the TLV at ``offset`` given a vendor
    tag (which it skips), that TLV put back into the PDU it reads; a known
    tag of a size SPEC 5.3.2 does not allow is ESME_RINVPARLEN.  A later
    TLV of the same tag, which wins (SPEC 3.2.4 leaves it open; the codec
    keeps the last), stays.
    """
    if _off_spec_size(tag, length):  # the codec checks a known TLV's size wherever it appears
        return _refused(S.ESME_RINVPARLEN)
    result = _reference(_set_tag(frame, offset, _VENDOR_TAG))
    if result[0] == "pdu" and tag not in result[1].tlvs:
        value = frame[offset + 4 : offset + 4 + length]
        return "pdu", dataclasses.replace(result[1], tlvs={**result[1].tlvs, tag: value})
    return result


def _pdu3_refuses_tags_it_does_not_take(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    An unknown TLV, or one not defined for the PDU, is ignored (SPEC 3.3): the
    codec keeps it.  smpp.pdu3 refuses it with ESME_ROPTPARNOTALLWD, or
    ESME_RINVOPTPARSTREAM for a tag outside its table (smpp-facts C.2 #3).
    The answer is smpp.pdu3's for the same frame with that tag made a vendor
    one, which it drops (C.1) and the comparison leaves out.
    """
    if outcome not in (_refused(S.ESME_ROPTPARNOTALLWD), _refused(S.ESME_RINVOPTPARSTREAM)):
        return outcome
    for offset, tag, length in layout.tlvs:
        if tag not in _PDU3_TAKES[layout.command_id] and not _pdu3_drops(tag):
            return _as_vendor_tlv(frame, offset, tag, length)
    return outcome


def _lenient_header_only_response(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    A submit_sm_resp or deliver_sm_resp of only a header decodes with a NULL
    message_id (codec docstring: lenient on a response's empty body; a
    response is never answered, so no status would reach the peer anyway).
    smpp.pdu3 answers ESME_RINVMSGLEN, except for an error submit_sm_resp.
    """
    if layout.command_id in _MESSAGE_ID_RESPONSES and len(frame) == 16 and outcome == _refused(S.ESME_RINVMSGLEN):
        return _reference(_with_length(frame + b"\x00"))
    return outcome


_VALUE_FIELDS = (
    "source_addr_ton",
    "source_addr_npi",
    "dest_addr_ton",
    "dest_addr_npi",
    "esm_class",
    "priority_flag",
    "registered_delivery",
    "replace_if_present_flag",
    "data_coding",
    "sm_default_msg_id",
)
_TIME_FIELDS = ("schedule_delivery_time", "validity_period")
#: The statuses smpp.pdu3 gives a mandatory field's value (pdu_encoding.py), RUNKNOWNERR for replace_if_present_flag
_VALUE_STATUSES = frozenset(
    _refused(status)
    for status in (S.ESME_RINVSRCTON, S.ESME_RINVSRCNPI, S.ESME_RINVDSTTON, S.ESME_RINVDSTNPI, S.ESME_RINVESMCLASS,
                   S.ESME_RINVPRTFLG, S.ESME_RINVREGDLVFLG, S.ESME_RINVSCHED, S.ESME_RINVEXPIRY, S.ESME_RINVDFTMSGID,
                   S.ESME_RUNKNOWNERR)  # fmt: skip
)


def _pdu3_judges_values(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    Values are not the codec's to judge (codec docstring; the core answers
    them, smsc_sim.core.validate), but smpp.pdu3 checks TON, NPI, esm_class,
    priority, registered_delivery, replace_if_present_flag, sm_default_msg_id
    and times as it reads, before the structure after them.  The answer for
    the structure is smpp.pdu3's for the same frame with every one-octet value
    0 and every time NULL (its octets removed, the rest moved up: no NUL,
    length or boundary changes), the values given back to the PDU it reads.
    """
    if layout.command_id not in _SM or outcome[0] != "status" or outcome not in _VALUE_STATUSES:
        return outcome
    patched = bytearray(frame)
    values: dict[str, Any] = {}
    for name in _VALUE_FIELDS:
        if name in layout.spans:
            values[name] = frame[layout.spans[name][0]]
            patched[layout.spans[name][0]] = 0
    for name in reversed(_TIME_FIELDS):
        if name in layout.spans:
            start, end = layout.spans[name]
            values[name] = frame[start:end].decode("latin-1")
            del patched[start:end]
    neutral = _with_length(bytes(patched))
    if neutral == frame:
        return outcome
    result = _reference(neutral)
    if result[0] == "pdu":
        return "pdu", dataclasses.replace(result[1], params={**result[1].params, **values})
    return result


def _pdu3_judges_tlv_values(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """
    TLV values are the core's to judge, too (message_state 9,
    more_messages_to_send 2...).  smpp.pdu3 refuses a value its encoder does
    not accept with ESME_RINVOPTPARAMVAL; the answer for the structure is
    its own for the frame with that TLV's tag made a vendor one.
    """
    if layout.command_id not in _SM or outcome != _refused(S.ESME_RINVOPTPARAMVAL) or layout.fault:
        return outcome
    for offset, tag, length in layout.tlvs:
        if not _pdu3_reads_tlv_alone(frame, offset, length):
            return _as_vendor_tlv(frame, offset, tag, length)
    return outcome


def _pdu3_drops_data_coding_bit_3(frame: bytes, layout: Layout, outcome: Outcome) -> Outcome:
    """data_coding 0xF8-0xFB keeps its reserved bit 3, which smpp.pdu3 drops (smpp-facts C.2 #15)."""
    span = layout.spans.get("data_coding")
    if outcome[0] == "pdu" and span is not None and 0xF8 <= frame[span[0]] <= 0xFB:
        return "pdu", dataclasses.replace(outcome[1], params={**outcome[1].params, "data_coding": frame[span[0]]})
    return outcome


_CORRECTIONS = (
    _pdu3_reads_c_string_past_its_maximum,
    _pdu3_time_fields_share_one_status,
    _pdu3_deliver_sm_resp_message_id_must_be_null,
    _pdu3_holds_deliver_sm_to_null_schedule,
    _pdu3_judges_values,
    _pdu3_relabels_a_cut_tlv_value,
    _pdu3_reads_stray_octets_as_a_cut_tlv,
    _pdu3_refuses_tags_it_does_not_take,
    _pdu3_judges_tlv_values,
    _pdu3_drops_data_coding_bit_3,
    _lenient_header_only_response,
)


def _reference(frame: bytes) -> Outcome:
    """smpp.pdu3's answer for a frame, with the corrections above applied."""
    if len(frame) >= 16 and struct.unpack_from(">I", frame)[0] != len(frame):
        return _pdu3_reads_a_stream(frame)
    outcome = _outcome(decode_with_pdu3, frame)
    if len(frame) < 16:
        return outcome
    layout = _layout(frame)
    for correct in _CORRECTIONS:
        outcome = correct(frame, layout, outcome)
    return outcome


def _as_pdu3_sees_it(outcome: Outcome) -> Outcome:
    """
    The codec's outcome, less what smpp.pdu3 cannot show: TLVs in the tag
    ranges it drops (smpp-facts C.1); octets after the body of a PDU that has
    no TLV section, which it skips as padding (C.2 #10) and the codec keeps
    as TLVs when they parse (e.g. the provider's 0x1422 price, A.11); the body
    of an error submit_sm_resp, which it skips (SPEC 4.4.2 says none is
    sent) and the codec reads when it parses.
    """
    if outcome[0] != "pdu":
        return outcome
    pdu: PDU = outcome[1]
    tlvs = {tag: value for tag, value in pdu.tlvs.items() if pdu.command_id in _SM and not _pdu3_drops(tag)}
    params = pdu.params
    if pdu.command_id == C.submit_sm_resp and pdu.command_status:
        params = {"message_id": ""}
    return "pdu", dataclasses.replace(pdu, params=params, tlvs=tlvs)


# --- strategies ----------------------------------------------------------------------------------

_RESPONSE_STATUS = st.sampled_from(
    [0, 0, S.ESME_RTHROTTLED, S.ESME_RSYSERR, S.ESME_RSUBMITFAIL, S.ESME_RX_T_APPN, 0x0400]
)


@st.composite
def hot_pdu(draw: Any) -> PDU:
    """A valid hot PDU smpp.pdu3 accepts; responses with any status, error ones included."""
    pdu: PDU = draw(valid_hot_pdu().filter(lambda pdu: pdu.command_id in HOT))
    if pdu.command_id & RESPONSE_BIT:
        pdu = dataclasses.replace(pdu, command_status=draw(_RESPONSE_STATUS))
    return pdu


_hot_frame = hot_pdu().map(encode)
_GARBAGE = st.binary(min_size=1, max_size=12)
_sm_frame = hot_pdu().filter(lambda pdu: pdu.command_id in _SM).map(encode)


@st.composite
def c_string_broken(draw: Any) -> bytes:
    """A valid frame with one C-Octet String missing its NUL, or longer than its maximum."""
    frame: bytes = draw(_hot_frame.filter(lambda frame: len(frame) > 16))
    layout = _layout(frame)
    sizes = {name: size for name, kind, size in FIELDS[layout.command_id] if kind in ("c", "time")}
    name = draw(st.sampled_from(sorted(sizes)))
    start, nul = layout.spans[name]
    if draw(st.booleans()):  # the NUL becomes an octet of the string
        octet = bytes((draw(st.integers(1, 255)),))
        return _with_length(frame[:nul] + octet + frame[nul + 1 :])
    text = draw(st.binary(min_size=sizes[name], max_size=sizes[name] + 4).filter(lambda b: 0 not in b))
    return _with_length(frame[:start] + text + frame[nul:])


@st.composite
def sm_length_beyond(draw: Any) -> bytes:
    """A valid submit_sm or deliver_sm whose sm_length is larger than its short_message."""
    frame: bytes = draw(_sm_frame)
    start, _ = _layout(frame).spans["sm_length"]
    length = min(255, frame[start] + draw(st.integers(1, 20)))
    return frame[:start] + bytes((length,)) + frame[start + 1 :]


@st.composite
def tlv_broken(draw: Any) -> bytes:
    """A valid submit_sm or deliver_sm plus a TLV that is cut short, or of the wrong fixed size."""
    frame: bytes = draw(_sm_frame)
    tag = draw(st.sampled_from([0x0204, 0x020A, 0x020C, 0x020E, 0x020F, 0x0424, 0x0019, _VENDOR_TAG]))
    value = draw(st.binary(max_size=6))
    length = draw(st.integers(len(value) + 1, len(value) + 8)) if draw(st.booleans()) else len(value)
    return _with_length(frame + struct.pack(">HH", tag, length) + value)


@st.composite
def random_body(draw: Any) -> bytes:
    """A valid header of a hot PDU, command_length fixed, and random octets."""
    return _with_length(draw(_hot_frame)[:16] + draw(st.binary(max_size=80)))


class DifferentialTests(SynchronousTestCase):
    """The hot-path codec and stock smpp.pdu3 give the same PDU, or the same status."""

    def assertAgree(self, frame: bytes) -> None:
        """The codec's outcome for ``frame`` is smpp.pdu3's, as corrected above."""
        self.assertEqual(_as_pdu3_sees_it(_outcome(decode, frame)), _as_pdu3_sees_it(_reference(frame)), frame.hex())

    @settings(max_examples=200, deadline=None)
    @given(hot_pdu())
    def test_valid_hot_pdus(self, pdu: PDU) -> None:
        """
        Every valid submit_sm, deliver_sm, their responses (any status) and the
        enquire_link pair decode to the PDU sent, through both decoders.
        """
        wire = encode(pdu)
        sent = pdu
        if pdu.command_status and pdu.command_id in NO_BODY_ON_ERROR:
            sent = dataclasses.replace(pdu, params={"message_id": ""})  # SPEC 4.4.2: no body on error
        self.assertEqual((decode(wire), decode_with_pdu3(wire)), (sent, sent))

    @settings(max_examples=150, deadline=None)
    @given(_hot_frame, st.data())
    def test_cut_short_command_length_adjusted(self, frame: bytes, data: st.DataObject) -> None:
        """
        A valid frame cut anywhere in its body, command_length telling the cut
        size: ESME_RINVMSGLEN (or the field's status for a string cut at its
        maximum), as smpp.pdu3 answers; a bare-header response is read as NULL.
        """
        if len(frame) > 16:
            frame = _with_length(frame[: data.draw(st.integers(16, len(frame) - 1))])
        self.assertAgree(frame)

    @settings(max_examples=100, deadline=None)
    @given(_hot_frame, st.data())
    def test_cut_short_command_length_kept(self, frame: bytes, data: st.DataObject) -> None:
        """A valid frame cut anywhere, header included, command_length unchanged: generic_nack ESME_RINVCMDLEN."""
        self.assertAgree(frame[: data.draw(st.integers(0, len(frame) - 1))])

    @settings(max_examples=150, deadline=None)
    @given(c_string_broken())
    def test_c_string_missing_nul_or_too_long(self, frame: bytes) -> None:
        """
        A C-Octet String with no NUL within its maximum gets its field's status
        (ESME_RINVSERTYP, RINVSRCADR, RINVDSTADR, RINVSCHED, RINVEXPIRY,
        RINVMSGID); one that swallows the next field gets what that causes.
        """
        self.assertAgree(frame)

    @settings(max_examples=100, deadline=None)
    @given(sm_length_beyond())
    def test_sm_length_beyond_the_short_message(self, frame: bytes) -> None:
        """An sm_length beyond the body is ESME_RINVMSGLEN; one reaching into the TLVs, what misreading them gives."""
        self.assertAgree(frame)

    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from([C.enquire_link, C.enquire_link_resp]), st.integers(1, 0x7FFFFFFF), _GARBAGE)
    def test_body_on_enquire_link(self, command_id: int, sequence: int, body: bytes) -> None:
        """An enquire_link or enquire_link_resp with a body is read as the header alone (and answered)."""
        self.assertAgree(struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body)

    @settings(max_examples=150, deadline=None)
    @given(_hot_frame, _GARBAGE)
    def test_trailing_garbage(self, frame: bytes, garbage: bytes) -> None:
        """
        Octets after a valid frame: read as TLVs in submit_sm and deliver_sm
        (1-3 stray ones ESME_RINVOPTPARSTREAM, an overrun ESME_RINVPARLEN),
        ignored after a response or enquire_link.
        """
        self.assertAgree(_with_length(frame + garbage))

    @settings(max_examples=150, deadline=None)
    @given(tlv_broken())
    def test_tlv_cut_short_or_of_wrong_size(self, frame: bytes) -> None:
        """A TLV longer than what is left of the PDU, or a fixed-size one of another size: ESME_RINVPARLEN."""
        self.assertAgree(frame)

    @settings(max_examples=200, deadline=None)
    @given(random_body())
    def test_random_octets_after_a_valid_header(self, frame: bytes) -> None:
        """Random octets after a valid header: the same PDU, or the same status, whatever their structure."""
        self.assertAgree(frame)
