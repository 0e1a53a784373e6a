"""
The pcap trace read by tshark (Debian's package; scripts/install-tshark.sh
installs it, and without it these tests fail with that instruction, never
skip): a real smpplib ESME binds, submits, gets its receipt, sends one
malformed PDU and unbinds on loopback, and tshark, told to decode the
ephemeral port as SMPP, lists every PDU's command and sequence number in
both directions exactly as they crossed the socket: from the ``--pcap``
file, and from the API's ``trace.pcap`` resources.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import smpplib.client
import treq
from twisted.internet import threads

from smsc_sim.config import default_config
from smsc_sim.testing.harness import InProcessSimulator
from tests import wire
from tests.test_integration_smpplib import FAST_RECEIPTS, read_until

#: a submit_sm cut short after two octets of its body: the simulator must answer it, and the trace show it as sent
MALFORMED = wire.frame(0x00000004, 1000, b"\x00\x01")

Pdus = list[tuple[int, int]]


def tshark() -> str:
    """The tshark to run; fails the test with the instruction when there is none."""
    path = shutil.which("tshark")
    if path is None:
        pytest.fail(
            "tshark is not installed: run `bash scripts/install-tshark.sh` as root "
            "(or `apt-get install tshark`); scripts/test.sh does it before the tests"
        )
    return path


def decode(pcap: Path, port: int) -> tuple[Pdus, Pdus]:
    """(command_id, sequence_number) of every SMPP PDU tshark finds: (from the ESME, from the SMSC)."""
    result = subprocess.run(
        [
            tshark(),
            "-r",
            str(pcap),
            "-d",
            f"tcp.port=={port},smpp",
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "smpp.command_id",
            "-e",
            "smpp.sequence_number",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    esme: Pdus = []
    smsc: Pdus = []
    for line in result.stdout.splitlines():
        source, commands, sequences = (line.split("\t") + ["", ""])[:3]
        if not commands:
            continue  # a handshake, an ACK or a FIN
        pairs = list(zip((int(c, 16) for c in commands.split(",")), (int(s) for s in sequences.split(","))))
        (smsc if int(source) == port else esme).extend(pairs)
    return esme, smsc


class RecordingSocket:
    """A socket that keeps a copy of every octet sent and received."""

    def __init__(self, inner: socket.socket) -> None:
        self.inner = inner
        self.sent = bytearray()
        self.received = bytearray()

    def sendall(self, data: bytes) -> None:
        self.inner.sendall(data)
        self.sent += data

    def recv(self, size: int) -> bytes:
        data = self.inner.recv(size)
        self.received += data
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RecordingClient(smpplib.client.Client):
    """smpplib's client on a :class:`RecordingSocket`."""

    recording: RecordingSocket

    def _create_socket(self) -> RecordingSocket:
        self.recording = RecordingSocket(super()._create_socket())
        return self.recording


def headers(data: bytes) -> Pdus:
    return [(header.command_id, header.sequence_number) for header, _ in wire.split_pdus(data)]


def esme_session(port: int) -> tuple[Pdus, Pdus]:
    """Bind, submit, take the receipt, send the malformed PDU, unbind: (PDUs sent, PDUs received)."""
    client = RecordingClient("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    sent: list[Any] = []
    received: list[Any] = []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="smppclient1", password="password")
        client.send_message(
            source_addr_ton=1,
            source_addr="447700900001",
            dest_addr_ton=1,
            destination_addr="447700900002",
            short_message=b"Hello, Wireshark",
            registered_delivery=1,
        )
        read_until(client, lambda: bool(sent) and bool(received))
        client.recording.sendall(MALFORMED)
        answer = client.read_pdu()
        assert answer.sequence == 1000 and answer.status != 0, "the malformed PDU is refused"
        client.unbind()
    finally:
        client.disconnect()
    return headers(bytes(client.recording.sent)), headers(bytes(client.recording.received))


def check(esme_sent: Pdus, esme_received: Pdus, decoded: tuple[Pdus, Pdus]) -> None:
    """tshark's PDUs are the ESME's, in both directions, malformed one included."""
    assert (0x00000004, 1000) in esme_sent
    assert [c for c, _ in esme_sent][:2] == [0x09, 0x04] and esme_sent[-1][0] == 0x06
    assert 0x00000005 in [c for c, _ in esme_received], "the receipt came"
    assert decoded == (esme_sent, esme_received)


def fast_scenario(tmp_path: Path) -> str:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST_RECEIPTS)
    return str(path)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_pcap_file_decodes_as_smpp(tmp_path: Path) -> None:
    """
    With ``--pcap FILE``, tshark decodes the file as SMPP and lists every
    PDU the ESME sent and received, with its command and sequence number, in
    order: the malformed one as sent, and the unbind after the receipt.
    """
    tshark()
    pcap = tmp_path / "trace.pcap"
    config = dataclasses.replace(default_config(), pcap=str(pcap), api_endpoint="")
    smsc = InProcessSimulator(config, scenario=fast_scenario(tmp_path))
    await smsc.start()
    try:
        port = smsc.endpoints["SMPP1"][0][1]
        sent, received = await threads.deferToThread(esme_session, port)
    finally:
        await smsc.stop()
    check(sent, received, decode(pcap, port))


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_api_trace_decodes_as_smpp(tmp_path: Path) -> None:
    """
    With a trace ring, ``GET /api/v1/sessions/{id}/trace.pcap`` and
    ``GET /api/v1/trace.pcap?since=`` answer pcaps (with the API's token)
    that tshark decodes into the session's PDUs; without the token, 401.
    """
    tshark()
    config = dataclasses.replace(default_config(), pcap_ring=1 << 20)
    smsc = InProcessSimulator(config, scenario=fast_scenario(tmp_path), token="secret")
    await smsc.start()
    try:
        port = smsc.endpoints["SMPP1"][0][1]
        started = smsc.simulator.clock.seconds()
        sent, received = await threads.deferToThread(esme_session, port)
        (connection,) = smsc.simulator.trace.ring.connections()
        token: dict[bytes | str, bytes | str] = {"Authorization": "Bearer secret"}
        bodies = {}
        for path in (f"/sessions/{connection.session_id}/trace.pcap", f"/trace.pcap?since={started - 1}"):
            response = await treq.get(smsc.base_url + path, headers=token)
            assert response.code == 200
            assert response.headers.getRawHeaders("content-type") == ["application/vnd.tcpdump.pcap"]
            bodies[path] = await treq.content(response)
        refused = await treq.get(smsc.base_url + "/trace.pcap")
        assert refused.code == 401
        await treq.content(refused)
    finally:
        await smsc.stop()
    for name, body in bodies.items():
        pcap = tmp_path / (str(abs(hash(name))) + ".pcap")
        pcap.write_bytes(body)
        check(sent, received, decode(pcap, port))
