"""
A tiny ESME, the code under test: it sends one SMS and says what the SMSC answered.

Two transports of the same behaviour, as a real project might have:
:func:`send_sms` blocks (smpplib), :class:`TwistedESME` is a Twisted protocol.
"""

from __future__ import annotations

import struct

import smpplib.client
import smpplib.consts
import smpplib.exceptions
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol


class Refused(Exception):
    """The SMSC refused the submit; ``status`` is its command_status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"submit refused with command_status 0x{status:08X}")
        self.status = status


def send_sms(host: str, port: int, system_id: str, password: str, destination: str, text: str) -> str:
    """Bind, submit one message, unbind; the SMSC's message id, or :class:`Refused`."""
    client = smpplib.client.Client(host, port, timeout=10, allow_unknown_opt_params=True)
    answers: list[object] = []
    client.set_message_sent_handler(lambda pdu: answers.append(pdu))
    client.connect()
    try:
        client.bind_transmitter(system_id=system_id, password=password)
        try:
            client.send_message(source_addr="447700900001", destination_addr=destination,
                                short_message=text.encode("latin-1"))
            client.read_once()
        except smpplib.exceptions.PDUError as error:
            raise Refused(error.args[1]) from None
        client.unbind()
    finally:
        client.disconnect()
    return answers[0].message_id.decode()  # type: ignore[attr-defined]


def _cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def _pdu(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


class TwistedESME(Protocol):
    """The same ESME on Twisted: ``bind()``, then ``submit()``; each returns a Deferred."""

    def __init__(self, system_id: str, password: str) -> None:
        self.system_id = system_id
        self.password = password
        self._buffer = b""
        self._sequence = 0
        self._waiting: dict[int, Deferred[tuple[int, bytes]]] = {}

    def _request(self, command_id: int, body: bytes) -> Deferred[tuple[int, bytes]]:
        self._sequence += 1
        answer: Deferred[tuple[int, bytes]] = Deferred()
        self._waiting[self._sequence] = answer
        self.transport.write(_pdu(command_id, self._sequence, body))  # type: ignore[union-attr]
        return answer

    def bind(self) -> Deferred[None]:
        """bind_transmitter; fails with :class:`Refused` when the SMSC says no."""
        body = _cstr(self.system_id) + _cstr(self.password) + _cstr("") + bytes([0x34, 0, 0]) + _cstr("")

        def bound(answer: tuple[int, bytes]) -> None:
            if answer[0]:
                raise Refused(answer[0])

        return self._request(0x02, body).addCallback(bound)

    def submit(self, destination: str, text: str) -> Deferred[str]:
        """submit_sm; fires with the message id, or fails with :class:`Refused`."""
        data = text.encode("latin-1")
        body = (
            _cstr("") + bytes([1, 1]) + _cstr("447700900001") + bytes([1, 1]) + _cstr(destination)
            + bytes([0, 0, 0]) + _cstr("") + _cstr("") + bytes([0, 0, 0, 0, len(data)]) + data
        )

        def answered(answer: tuple[int, bytes]) -> str:
            if answer[0]:
                raise Refused(answer[0])
            return answer[1].rstrip(b"\0").decode()

        return self._request(0x04, body).addCallback(answered)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 16:
            length, command_id, status, sequence = struct.unpack(">IIII", self._buffer[:16])
            if len(self._buffer) < length:
                return
            body, self._buffer = self._buffer[16:length], self._buffer[length:]
            if command_id & 0x80000000 and sequence in self._waiting:
                self._waiting.pop(sequence).callback((status, body))
            elif command_id in (0x05, 0x15):  # deliver_sm, enquire_link: acknowledge
                reply = b"\0" if command_id == 0x05 else b""
                self.transport.write(_pdu(command_id | 0x80000000, sequence, reply))  # type: ignore[union-attr]
