"""
Cut an SMPP byte stream into PDUs by their command_length (SPEC section 3.2.2).

The command_length counts its own four octets, so Twisted's
``Int32StringReceiver`` (prefix excluded) does not fit.  The framer is
strict and bounded: a command_length below 16 (a header) or above the
configured maximum makes the stream unusable, because nothing after it can
be trusted to start a PDU; the session answers generic_nack
(ESME_RINVCMDLEN) and closes.
"""

from __future__ import annotations

import struct

from smsc_sim.smpp.constants import CommandStatus

_U32 = struct.Struct(">I")
_HEADER_SIZE = 16


class FramingError(Exception):
    """
    A command_length that cannot be right; the stream cannot be framed any further.

    :ivar status: ESME_RINVCMDLEN, for the generic_nack.
    :ivar sequence_number: the bad frame's sequence_number when its first 16
        octets had arrived with the bad length, else 0 (SPEC section 4.3.1: NULL
        when the PDU cannot be decoded).
    :ivar command_length: the offending value.
    :ivar frames: the whole frames that arrived before the bad one, in the
        same read; they are sound and must still be answered.
    """

    def __init__(self, command_length: int, sequence_number: int, max_pdu_size: int) -> None:
        super().__init__(f"command_length {command_length} is outside 16..{max_pdu_size}")
        self.status = int(CommandStatus.ESME_RINVCMDLEN)
        self.sequence_number = sequence_number
        self.command_length = command_length
        self.frames: list[bytes] = []


class SMPPFramer:
    """
    Collect bytes and hand out whole PDUs, header included.

    Bytes are copied once per completed frame: a chunk holding many PDUs is
    sliced at offsets, and bytes that trickle in are appended to a
    ``bytearray`` that is only looked at once enough has arrived.

    :param max_pdu_size: the largest command_length accepted.
    """

    def __init__(self, max_pdu_size: int) -> None:
        if max_pdu_size < _HEADER_SIZE:
            raise ValueError(f"max_pdu_size {max_pdu_size} is smaller than a header")
        self.max_pdu_size = max_pdu_size
        self._pending = bytearray()
        # octets the pending frame needs before it is worth looking at again
        self._need = 4
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """How many octets are held, waiting for the rest of their frame."""
        return len(self._pending)

    @property
    def partial(self) -> bool:
        """Whether part of a frame is waiting (the session's PDU-read timer runs then)."""
        return bool(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """
        Add received bytes; return the frames now complete, in order.

        :raises FramingError: at the first bad command_length, and again on
            every later call.
        """
        if self._error is not None:
            raise self._error
        pending = self._pending
        if pending:
            pending += data
            if len(pending) < self._need:
                return []
            buf = bytes(pending)
            pending.clear()
        else:
            buf = bytes(data)
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        maximum = self.max_pdu_size
        while end - pos >= 4:
            length = _U32.unpack_from(buf, pos)[0]
            if length < _HEADER_SIZE or length > maximum:
                sequence = _U32.unpack_from(buf, pos + 12)[0] if end - pos >= _HEADER_SIZE else 0
                error = FramingError(length, sequence, maximum)
                error.frames = frames
                self._error = error
                raise error
            if end - pos < length:
                self._need = length
                break
            frames.append(buf[pos : pos + length] if pos or length != end else buf)
            pos += length
        else:
            self._need = 4
        if pos < end:
            pending += buf[pos:] if pos else buf
        return frames


__all__ = ["FramingError", "SMPPFramer"]
