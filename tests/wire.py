"""
Raw SMPP bytes for tests, built with ``struct`` straight from the spec's
field tables, independent of the project's codec, so that a test of the
session checks real wire bytes and not the codec against itself.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple


def cstr(value: str | bytes) -> bytes:
    """A C-Octet String: the text and its NUL."""
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return raw + b"\x00"


def frame(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    """A whole PDU: the header (length included) and the body."""
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def bind(
    command_id: int = 0x09,
    sequence: int = 1,
    system_id: str = "smppclient1",
    password: str = "password",
    system_type: str = "",
    interface_version: int = 0x34,
) -> bytes:
    """bind_transmitter (0x02), bind_receiver (0x01) or bind_transceiver (0x09)."""
    body = cstr(system_id) + cstr(password) + cstr(system_type) + bytes([interface_version, 0, 0]) + cstr("")
    return frame(command_id, sequence, body)


def submit_sm(
    sequence: int = 2,
    source: str = "447700900001",
    destination: str = "447700900002",
    text: bytes = b"Hello",
    esm_class: int = 0,
    registered_delivery: int = 1,
    data_coding: int = 0,
    tlvs: bytes = b"",
    source_ton: int = 1,
    source_npi: int = 1,
    dest_ton: int = 1,
    dest_npi: int = 1,
    schedule: str = "",
    validity: str = "",
    service_type: str = "",
    replace_if_present: int = 0,
) -> bytes:
    """A submit_sm (0x04) with the usual defaults."""
    body = (
        cstr(service_type)
        + bytes([source_ton, source_npi])
        + cstr(source)
        + bytes([dest_ton, dest_npi])
        + cstr(destination)
        + bytes([esm_class, 0, 0])
        + cstr(schedule)
        + cstr(validity)
        + bytes([registered_delivery, replace_if_present, data_coding, 0, len(text)])
        + text
        + tlvs
    )
    return frame(0x04, sequence, body)


def tlv(tag: int, value: bytes) -> bytes:
    """One optional parameter."""
    return struct.pack(">HH", tag, len(value)) + value


class Header(NamedTuple):
    """The four header fields of a PDU read back from the wire."""

    command_length: int
    command_id: int
    command_status: int
    sequence_number: int


def split_pdus(data: bytes) -> list[tuple[Header, bytes]]:
    """Cut a byte stream into (header, body) pairs."""
    result = []
    offset = 0
    while offset < len(data):
        header = Header(*struct.unpack_from(">IIII", data, offset))
        body = data[offset + 16 : offset + header.command_length]
        result.append((header, body))
        offset += header.command_length
    return result


class PDUStream:
    """The bytes received on one connection, taken out a whole PDU at a time."""

    def __init__(self) -> None:
        self.buffer = b""

    def add(self, data: bytes) -> None:
        """Bytes just received."""
        self.buffer += data

    def take(self) -> tuple[Header, bytes] | None:
        """The first whole PDU received, as ``(header, body)``, out of the buffer; ``None`` while it is incomplete."""
        if len(self.buffer) < 16:
            return None
        (length,) = struct.unpack_from(">I", self.buffer)
        if len(self.buffer) < length:
            return None
        [pdu] = split_pdus(self.buffer[:length])
        self.buffer = self.buffer[length:]
        return pdu

    def feed(self, data: bytes) -> Iterator[tuple[Header, bytes]]:
        """
        Add ``data``; each whole PDU received, in order.  Each is taken out of
        the buffer before it is given, so one that is handled while others
        wait is handled in order even when handling it brings more bytes.
        """
        self.add(data)
        while (pdu := self.take()) is not None:
            yield pdu


def headers(data: bytes) -> list[tuple[int, int, int]]:
    """``(command_id, command_status, sequence_number)`` of every PDU in ``data``."""
    return [(h.command_id, h.command_status, h.sequence_number) for h, _ in split_pdus(data)]


def read_cstr(body: bytes, offset: int = 0) -> tuple[str, int]:
    """A C-Octet String at ``offset`` and the offset after it."""
    end = body.index(b"\x00", offset)
    return body[offset:end].decode("latin-1"), end + 1


def deliver_sm_fields(body: bytes) -> dict[str, object]:
    """The mandatory fields and TLVs of a deliver_sm body, read by hand."""
    fields: dict[str, object] = {}
    fields["service_type"], o = read_cstr(body)
    fields["source_addr_ton"], fields["source_addr_npi"] = body[o], body[o + 1]
    fields["source_addr"], o = read_cstr(body, o + 2)
    fields["dest_addr_ton"], fields["dest_addr_npi"] = body[o], body[o + 1]
    fields["destination_addr"], o = read_cstr(body, o + 2)
    fields["esm_class"], fields["protocol_id"], fields["priority_flag"] = body[o], body[o + 1], body[o + 2]
    fields["schedule_delivery_time"], o = read_cstr(body, o + 3)
    fields["validity_period"], o = read_cstr(body, o)
    (
        fields["registered_delivery"],
        fields["replace_if_present_flag"],
        fields["data_coding"],
        fields["sm_default_msg_id"],
        length,
    ) = body[o : o + 5]
    fields["short_message"] = body[o + 5 : o + 5 + length]
    o += 5 + length
    tlvs: dict[int, bytes] = {}
    while o < len(body):
        tag, size = struct.unpack_from(">HH", body, o)
        tlvs[tag] = body[o + 4 : o + 4 + size]
        o += 4 + size
    fields["tlvs"] = tlvs
    return fields
