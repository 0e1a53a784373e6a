"""
Messages across SMPP1 and SMPP2 run as two twistd processes sharing one
redis-server (``--cluster-store redis://...``, ``--instances``), driven with
raw PDUs as an ESME bound to both: message ids never collide, and
query_sm, cancel_sm and replace_sm through SMPP2 reach a message submitted
through SMPP1.  redis-server must be installed (``scripts/install-redis.sh``);
when it is not, these tests fail saying so.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import wire
from tests.process_harness import eventually, run_cluster

#: seconds from submit_sm_resp to the DELIVRD receipt in the scenario of these tests
RECEIPT_DELAY = 3.0

pytestmark = pytest.mark.integration

SCENARIO = f"""
name: cross-process
description: every submit accepted, DELIVRD {RECEIPT_DELAY:g} s later, no throttle
throttle: off
receipt:
  stat: DELIVRD
  delay: {RECEIPT_DELAY:g}s
"""


class Esme:
    """One bound transceiver connection, raw PDUs; deliver_sm are answered and kept."""

    def __init__(self, port: int) -> None:
        self.connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.stream = wire.PDUStream()
        self.sequence = 1
        #: the short_message of every deliver_sm received
        self.receipts: list[bytes] = []
        self.connection.sendall(wire.bind(0x09, 1))
        command_id, status, _seq, _body = self.read()
        assert (command_id, status) == (0x80000009, 0)

    def read(self, within: float = 10.0) -> tuple[int, int, int, bytes]:
        """The next PDU other than a deliver_sm (those are answered and kept)."""
        deadline = time.monotonic() + within
        while True:
            pdu = self.poll(max(0.0, deadline - time.monotonic()))
            assert pdu is not None, "no PDU within the time allowed"
            if pdu[0] != 0x00000005:
                return pdu

    def poll(self, within: float) -> tuple[int, int, int, bytes] | None:
        """The next PDU within ``within`` seconds, or ``None``; a deliver_sm is answered and kept."""
        deadline = time.monotonic() + within
        while True:
            pdu = self.stream.take()
            if pdu is not None:
                (_length, command_id, status, sequence), body = pdu
                if command_id == 0x00000005:
                    short_message = wire.deliver_sm_fields(body)["short_message"]
                    assert isinstance(short_message, bytes)
                    self.receipts.append(short_message)
                    self.connection.sendall(wire.frame(0x80000005, sequence, wire.cstr("")))
                return command_id, status, sequence, body
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                chunk = self.connection.recv(65536)
                assert chunk, "the connection closed"
                self.stream.add(chunk)

    def call(self, command_id: int, body: bytes) -> tuple[int, bytes]:
        """Send a request and read its response: its status and body."""
        self.sequence += 1
        self.connection.sendall(wire.frame(command_id, self.sequence, body))
        response_id, status, sequence, response = self.read()
        assert (response_id, sequence) == (command_id | 0x80000000, self.sequence)
        return status, response

    def submits(self, count: int, registered_delivery: int = 0, batch: int = 10) -> list[str]:
        """``count`` submit_sm, ``batch`` at a time; their message_ids."""
        ids: list[str] = []
        while len(ids) < count:
            n = min(batch, count - len(ids))
            first = self.sequence + 1
            self.sequence += n
            self.connection.sendall(
                b"".join(wire.submit_sm(sequence=first + i, registered_delivery=registered_delivery) for i in range(n))
            )
            for _ in range(n):
                command_id, status, _seq, body = self.read()
                assert (command_id, status) == (0x80000004, 0)
                ids.append(wire.read_cstr(body)[0])
        return ids

    def close(self) -> None:
        self.connection.close()


def _query(message_id: str) -> bytes:
    return wire.cstr(message_id) + b"\x01\x01" + wire.cstr("447700900001")


def _query_state(esme: Esme, message_id: str) -> tuple[int, int, str]:
    """query_sm: its status, message_state and final_date."""
    status, body = esme.call(0x00000003, _query(message_id))
    if status:
        return status, 0, ""
    _id, o = wire.read_cstr(body)
    final_date, o = wire.read_cstr(body, o)
    return status, body[o], final_date


def _known_state(esme: Esme, message_id: str) -> tuple[int, int, str]:
    """
    :func:`_query_state` once the message is known: its record reaches Redis at
    the end of the submitting process's turn, so until then query_sm may get
    ESME_RQUERYFAIL (0x67); asked again, bounded.
    """
    return eventually(lambda: (answer := _query_state(esme, message_id))[0] != 0x67 and answer,
                      f"query_sm of {message_id} answered", within=10)  # fmt: skip


def _read_receipts(esmes: tuple[Esme, Esme], done: Callable[[list[bytes]], bool], at_least: float) -> list[bytes]:
    """
    Read both ESMEs' PDUs (answering receipts) for at least ``at_least``
    seconds and until ``done(receipts)`` holds (at most 30 s more, for a
    loaded machine), then half a second more, for any receipt that should not
    come; every receipt received.
    """
    started = time.monotonic()
    while time.monotonic() - started < at_least + 30:
        for esme in esmes:
            esme.poll(0.1)
        if time.monotonic() - started >= at_least and done(esmes[0].receipts + esmes[1].receipts):
            break
    for _ in range(3):
        for esme in esmes:
            esme.poll(0.1)
    return esmes[0].receipts + esmes[1].receipts


def _cancel(message_id: str) -> bytes:
    source = b"\x01\x01" + wire.cstr("447700900001")
    return wire.cstr("") + wire.cstr(message_id) + source + b"\x01\x01" + wire.cstr("447700900002")


def _replace(message_id: str, text: bytes, registered_delivery: int) -> bytes:
    return (
        wire.cstr(message_id) + b"\x01\x01" + wire.cstr("447700900001") + wire.cstr("") + wire.cstr("")
        + bytes([registered_delivery, 0, len(text)]) + text
    )  # fmt: skip


def _receipt_of(receipts: list[bytes], message_id: str) -> list[bytes]:
    """The receipts whose ``id:`` is the message's (decimal in the receipt, hex in submit_sm_resp)."""
    tag = f"id:{int(message_id, 16)} ".encode()
    return [receipt for receipt in receipts if receipt.startswith(tag)]


@pytest.fixture
def esmes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Esme, Esme]]:
    """An ESME bound to the SMPP1 process and to the SMPP2 process of one cluster."""
    scenario = tmp_path / "cross-process.yaml"
    scenario.write_text(SCENARIO)
    opened: list[Esme] = []
    with run_cluster(request, tmp_path, scenario=scenario) as cluster:
        try:
            opened.append(Esme(cluster.ports["SMPP1"]))
            opened.append(Esme(cluster.ports["SMPP2"]))
            yield opened[0], opened[1]
        finally:
            for esme in opened:
                esme.close()


def test_message_ids_never_collide_across_processes(esmes: tuple[Esme, Esme]) -> None:
    """
    300 submit_sm through SMPP1 and 300 through SMPP2, interleaved: the 600
    message_ids are distinct, each 16 upper-case hex digits.
    """
    smpp1, smpp2 = esmes
    ids: list[str] = []
    for _round in range(3):
        ids += smpp1.submits(100)
        ids += smpp2.submits(100)
    assert len(ids) == 600
    assert len(set(ids)) == 600
    assert all(len(i) == 16 and int(i, 16) >> 56 == 0x0B and i == i.upper() for i in ids)


def test_query_cancel_and_replace_through_the_other_process(esmes: tuple[Esme, Esme]) -> None:
    """
    Three messages submitted through SMPP1 with a DELIVRD receipt due 3 s
    later.  Through SMPP2: query_sm of the first answers ENROUTE, cancel_sm of
    it is accepted, and replace_sm of the second (no receipt asked any more)
    is accepted.  Then the first gets only its DELETED receipt (never
    DELIVRD), the second none, the third (untouched) its DELIVRD; query_sm
    through SMPP2 answers DELETED for the first, DELIVERED for the second.
    """
    smpp1, smpp2 = esmes
    cancelled, replaced, untouched = smpp1.submits(3, registered_delivery=1)
    assert _known_state(smpp2, cancelled) == (0, 1, "")  # ENROUTE
    assert smpp2.call(0x00000008, _cancel(cancelled))[0] == 0
    assert smpp2.call(0x00000008, _cancel(cancelled))[0] == 0x11  # ESME_RCANCELFAIL: already final
    assert smpp2.call(0x00000007, _replace(replaced, b"replaced text", 0))[0] == 0
    receipts = _read_receipts(
        esmes, lambda got: bool(_receipt_of(got, cancelled) and _receipt_of(got, untouched)), RECEIPT_DELAY + 3
    )
    first = _receipt_of(receipts, cancelled)
    assert len(first) == 1 and b"stat:DELETED" in first[0], receipts
    assert _receipt_of(receipts, replaced) == [], receipts
    third = _receipt_of(receipts, untouched)
    assert len(third) == 1 and b"stat:DELIVRD" in third[0], receipts
    status, state, final_date = _query_state(smpp2, cancelled)
    assert (status, state) == (0, 4) and len(final_date) == 16  # DELETED
    assert _query_state(smpp2, replaced)[:2] == (0, 2)  # DELIVERED
    # a message nobody submitted: ESME_RQUERYFAIL from either process
    assert _query_state(smpp2, "0B00000000000001")[0] == 0x67
    assert _query_state(smpp1, "0B00000000000001")[0] == 0x67


def test_cancel_by_address_through_the_other_process(esmes: tuple[Esme, Esme]) -> None:
    """
    Three messages submitted through SMPP1 and one through SMPP2, all from
    447700900001 to 447700900002 with a DELIVRD receipt due 3 s later.
    cancel_sm with an empty message_id through SMPP2 is accepted and ends all
    four DELETED: each gets only its DELETED receipt, never DELIVRD, and
    query_sm through SMPP1 answers DELETED for each.  Sent again it gets
    ESME_RCANCELFAIL (0x11): nothing is pending anywhere.
    """
    smpp1, smpp2 = esmes
    ids = smpp1.submits(3, registered_delivery=1) + smpp2.submits(1, registered_delivery=1)
    assert smpp2.call(0x00000008, _cancel(""))[0] == 0
    assert smpp2.call(0x00000008, _cancel(""))[0] == 0x11
    receipts = _read_receipts(
        esmes, lambda got: all(_receipt_of(got, message_id) for message_id in ids), RECEIPT_DELAY + 2
    )
    for message_id in ids:
        got = _receipt_of(receipts, message_id)
        assert len(got) == 1 and b"stat:DELETED" in got[0], (message_id, receipts)
        assert _query_state(smpp1, message_id)[:2] == (0, 4)  # DELETED
