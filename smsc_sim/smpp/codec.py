"""
Decode one SMPP 3.4 frame into a :class:`~smsc_sim.smpp.pdu.PDU` and encode one back.

One codec, table-driven: every PDU's mandatory body is read and written over
:data:`~smsc_sim.smpp.pdu.FIELDS` (:mod:`smsc_sim.smpp._fields`), its TLV
section too, unknown and vendor tags kept.  submit_sm, deliver_sm,
submit_sm_resp and deliver_sm_resp, nearly all the traffic, take one
hand-tuned fast path (:mod:`smsc_sim.smpp._fast`) that gives what the table
gives; :func:`decode_table` and :func:`encode_table` are the table path alone,
which tests compare it with.  smpp.pdu3 serves only as a reference decoder
for tests (:mod:`smsc_sim.smpp.pdu3_reference`).

Only structure is checked (see the error table in :mod:`smsc_sim.smpp._fields`);
the core validates values so it can be strict or lenient.  Lenient rules of
the decoder: a header-only PDU's body is ignored; a response with an empty
body, or an error response (status != 0) whose body does not parse, decodes
with NULL fields; octets after the mandatory body of a PDU that has no TLV
section in SMPP 3.4 are kept as TLVs if they parse, else ignored.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, NoReturn

from smsc_sim.smpp._fast import decode_sm, encode_message_id_response, encode_sm, read_message_id, read_sm
from smsc_sim.smpp._fields import FieldError, decode_fields, defaults, encode_fields, pack_tlvs, parse_tlvs, trailing_tlvs
from smsc_sim.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus, status_name
from smsc_sim.smpp.pdu import FIELDS, HEADER, PDU, build_pdu

_C = CommandId
_S = CommandStatus


class PDUDecodeError(Exception):
    """
    A frame that cannot be decoded, with the status the SMSC should answer.

    :ivar status: the command_status for the answer.
    :ivar command_id: the header's command_id, ``None`` when the frame is
        shorter than 8 octets.
    :ivar sequence_number: the header's sequence_number, 0 when the header is unusable.
    :ivar nack: ``True`` for header errors, which are answered with generic_nack.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        command_id: int | None = None,
        sequence_number: int = 0,
        nack: bool = False,
    ) -> None:
        super().__init__(f"{status_name(status)}: {message}")
        self.status = int(status)
        self.command_id = command_id
        self.sequence_number = sequence_number
        self.nack = nack


#: Responses whose body the spec omits when command_status != 0.
NO_BODY_ON_ERROR = frozenset(
    {
        _C.bind_receiver_resp,
        _C.bind_transmitter_resp,
        _C.bind_transceiver_resp,
        _C.submit_sm_resp,
        _C.submit_multi_resp,
        _C.data_sm_resp,
        _C.query_sm_resp,
    }
)

# plain ints for the hot comparisons (an IntEnum member is a class attribute lookup each time)
_GENERIC_NACK = int(_C.generic_nack)
_SUBMIT_SM = int(_C.submit_sm)
_SUBMIT_SM_RESP = int(_C.submit_sm_resp)
_DELIVER_SM_RESP = int(_C.deliver_sm_resp)
_NO_BODY_ON_ERROR = frozenset(int(cid) for cid in NO_BODY_ON_ERROR)
_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from


_Reader = Callable[[int, int, int, bytes], PDU]
_Writer = Callable[[int, dict[str, Any]], bytes]


def decode(frame: bytes) -> PDU:
    """
    Decode exactly one PDU, header included.

    :param frame: one whole PDU, as cut by :class:`~smsc_sim.smpp.framing.SMPPFramer`.
    :raises PDUDecodeError: for any problem; nothing else escapes.
    """
    size = len(frame)
    if size < 16:
        _too_short(frame)
    length, command_id, status, sequence = _unpack_header(frame)
    if length != size:
        _length_mismatch(length, command_id, sequence, size)
    if command_id == _SUBMIT_SM:  # the PDU read most: its reader without the dict and the call
        try:
            params, pos = decode_sm(frame)
            return build_pdu(command_id, sequence, status, params, parse_tlvs(frame, pos) if pos < size else {})
        except Exception as error:
            return _body_error(error, command_id, status, sequence, size)
    reader = _READERS.get(command_id)
    if reader is None:
        _unknown_command(command_id, sequence)
    try:
        return reader(command_id, sequence, status, frame)
    except Exception as error:
        return _body_error(error, command_id, status, sequence, size)


def decode_table(frame: bytes) -> PDU:
    """
    :func:`decode` through the table-driven path alone, for every PDU.

    The reference the fast path is tested against; same result, same errors.

    :raises PDUDecodeError: for any problem; nothing else escapes.
    """
    size = len(frame)
    if size < 16:
        _too_short(frame)
    length, command_id, status, sequence = _unpack_header(frame)
    if length != size:
        _length_mismatch(length, command_id, sequence, size)
    if command_id not in FIELDS:
        _unknown_command(command_id, sequence)
    try:
        return _read_table(command_id, sequence, status, frame)
    except Exception as error:
        return _body_error(error, command_id, status, sequence, size)


def _too_short(frame: bytes) -> NoReturn:
    """A frame shorter than a header: generic_nack, sequence 0."""
    command_id = int.from_bytes(frame[4:8], "big") if len(frame) >= 8 else None
    raise PDUDecodeError(
        _S.ESME_RINVCMDLEN, f"{len(frame)} octets is shorter than a header", command_id=command_id, nack=True
    )


def _length_mismatch(length: int, command_id: int, sequence: int, size: int) -> NoReturn:
    """A command_length that is not the frame's size."""
    raise PDUDecodeError(
        _S.ESME_RINVCMDLEN,
        f"command_length {length} but {size} octets",
        command_id=command_id,
        sequence_number=sequence,
        nack=True,
    )


def _unknown_command(command_id: int, sequence: int) -> NoReturn:
    """A command_id that SMPP 3.4 does not define."""
    raise PDUDecodeError(
        _S.ESME_RINVCMDID,
        f"unknown command_id 0x{command_id:08X}",
        command_id=command_id,
        sequence_number=sequence,
        nack=True,
    )


def _body_error(error: Exception, command_id: int, status: int, sequence: int, size: int) -> PDU:
    """
    What a body that could not be read decodes to: NULL fields for a response
    the spec lets go without a body, else :class:`PDUDecodeError`.
    """
    if not isinstance(error, FieldError):  # a bug here must not kill the session
        raise PDUDecodeError(
            _S.ESME_RSYSERR,
            f"unexpected {type(error).__name__}: {error}",
            command_id=command_id,
            sequence_number=sequence,
        ) from error
    if command_id & RESPONSE_BIT and (size == 16 or (status and command_id in _NO_BODY_ON_ERROR)):
        return PDU(command_id, sequence, status, defaults(FIELDS[command_id]), {})
    raise PDUDecodeError(error.status, str(error), command_id=command_id, sequence_number=sequence) from None


def encode(pdu: PDU) -> bytes:
    """
    Encode a PDU.

    Any 32-bit command_status is written as is, vendor ones included.  The body
    (TLVs too) is left out for generic_nack and for the responses in
    :data:`NO_BODY_ON_ERROR` when command_status != 0.  A command_id unknown
    to SMPP 3.4 is written as a header plus TLVs, for fault injection.

    :raises ValueError: for a value that does not fit its field.
    """
    command_id = pdu.command_id
    status = pdu.command_status
    if (command_id == _SUBMIT_SM_RESP or command_id == _DELIVER_SM_RESP) and not pdu.tlvs:
        # the answer to every submit_sm (and the generator's to every receipt)
        fast = encode_message_id_response(command_id, status, pdu.sequence_number, pdu.params)
        if fast is not None:
            return fast
    if command_id == _GENERIC_NACK or (status and command_id in _NO_BODY_ON_ERROR):
        body = b""
    else:
        writer = _WRITERS.get(command_id)
        body = writer(command_id, pdu.params) if writer is not None else b""
        if pdu.tlvs:
            body += pack_tlvs(pdu.tlvs)
    try:
        return _pack_header(16 + len(body), command_id, status, pdu.sequence_number) + body
    except struct.error as error:
        raise ValueError(f"header of {pdu.name} does not fit: {error}") from None


def encode_table(pdu: PDU) -> bytes:
    """
    :func:`encode` through the table-driven path alone, for every PDU.

    The reference the fast path is tested against; same octets, same errors.

    :raises ValueError: for a value that does not fit its field.
    """
    command_id = pdu.command_id
    status = pdu.command_status
    if command_id == _GENERIC_NACK or (status and command_id in _NO_BODY_ON_ERROR):
        body = b""
    else:
        spec = FIELDS.get(command_id, ())
        body = encode_fields(spec, pdu.params) if spec else b""
        if pdu.tlvs:
            body += pack_tlvs(pdu.tlvs)
    try:
        return _pack_header(16 + len(body), command_id, status, pdu.sequence_number) + body
    except struct.error as error:
        raise ValueError(f"header of {pdu.name} does not fit: {error}") from None


def _read_table(command_id: int, sequence: int, status: int, frame: bytes) -> PDU:
    """Any PDU, field by field over FIELDS; a header-only PDU's body is ignored (the session decides strictness)."""
    spec = FIELDS[command_id]
    if not spec:
        return build_pdu(command_id, sequence, status, {}, {})
    params, pos = decode_fields(spec, frame, 16)
    return build_pdu(command_id, sequence, status, params, trailing_tlvs(command_id, frame, pos))


def _write_table(command_id: int, params: dict[str, Any]) -> bytes:
    """Any PDU's mandatory body, field by field over FIELDS."""
    return encode_fields(FIELDS[command_id], params)


def _write_sm(command_id: int, params: dict[str, Any]) -> bytes:
    """submit_sm and deliver_sm."""
    return encode_sm(params)


#: The reader of each command: the table, or the fast path for the four hot PDUs.
_READERS: dict[int, _Reader] = {int(cid): _read_table for cid in FIELDS}
_READERS.update(
    {
        _SUBMIT_SM: read_sm,
        int(_C.deliver_sm): read_sm,
        _SUBMIT_SM_RESP: read_message_id,
        _DELIVER_SM_RESP: read_message_id,
    }
)
#: The writer of each command's mandatory body (responses with a message_id
#: and no TLVs are written whole by :func:`encode` before this is asked).
_WRITERS: dict[int, _Writer] = {int(cid): _write_table for cid, spec in FIELDS.items() if spec}
_WRITERS.update({_SUBMIT_SM: _write_sm, int(_C.deliver_sm): _write_sm})

__all__ = [
    "PDUDecodeError",
    "NO_BODY_ON_ERROR",
    "build_pdu",
    "decode",
    "decode_table",
    "encode",
    "encode_table",
]
