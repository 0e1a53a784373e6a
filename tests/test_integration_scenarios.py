"""
Scenarios acting on real traffic: the shipped ``error-codes`` scenario and
a throttle, observed on a loopback socket as an ESME would see them.

A blocking raw-socket ESME (bytes built by ``tests.wire``, independent of
the codec) runs in a thread while the reactor serves.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Any, Callable, TypeVar

import pytest
import pytest_twisted
from twisted.internet import threads

from smsc_sim.service import build_service
from smsc_sim.smpp.receipt import parse_receipt
from smsc_sim.testing.harness import ephemeral_config
from tests import wire

T = TypeVar("T")


class RawESME:
    """A minimal blocking ESME on a raw socket, bounded by a socket timeout."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.stream = wire.PDUStream()
        self.sequence = 1

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> tuple[wire.Header, bytes]:
        while True:
            pdu = self.stream.take()
            if pdu is not None:
                return pdu
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the SMSC")
            self.stream.add(chunk)

    def bind(self) -> None:
        self.send(wire.bind(0x09, 1))
        header, _ = self.read()
        assert (header.command_id, header.command_status) == (0x80000009, 0)

    def submit(self, destination: str, registered_delivery: int = 1) -> tuple[wire.Header, bytes]:
        self.sequence += 1
        self.send(wire.submit_sm(sequence=self.sequence, destination=destination, registered_delivery=registered_delivery))
        return self.read()

    def next_receipt(self) -> dict[str, Any]:
        """Read until a deliver_sm arrives, answer it, return its fields."""
        while True:
            header, body = self.read()
            if header.command_id == 0x05:
                self.send(wire.frame(0x80000005, header.sequence_number, b"\x00"))
                return wire.deliver_sm_fields(body)

    def close(self) -> None:
        self.sock.close()


async def running(scenario: str, **account: Any) -> Any:
    from twisted.internet import reactor

    config = ephemeral_config()
    accounts = tuple(dataclasses.replace(a, **account) for a in config.accounts)
    config = dataclasses.replace(config, api_endpoint="", scenario=scenario, accounts=accounts)
    simulator = build_service(config, reactor)
    simulator.startService()
    await simulator.when_listening()
    return simulator


async def with_esme(scenario: str, script: Callable[[RawESME], T], **account: Any) -> T:
    simulator = await running(scenario, **account)
    try:
        port = simulator.endpoints()["SMPP1"][0][1]

        def run() -> T:
            esme = RawESME(port)
            try:
                esme.bind()
                return script(esme)
            finally:
                esme.close()

        return await threads.deferToThread(run)
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_error_codes_statuses_on_the_wire() -> None:
    """
    With ``--scenario error-codes``, destination 9990SSSS answers with status
    SSSS: spec statuses and vendor-specific ones (0x400-0x4FF) alike, and an
    error submit_sm_resp carries no body.
    """

    def script(esme: RawESME) -> list[tuple[int, int, int]]:
        seen = []
        for destination in ("99900088", "99900069", "99901024", "99901279", "447700900123"):
            header, body = esme.submit(destination, registered_delivery=0)
            seen.append((header.command_id, header.command_status, len(body)))
        return seen

    seen = await with_esme("error-codes", script)
    assert seen[:4] == [(0x80000004, 0x58, 0), (0x80000004, 0x45, 0), (0x80000004, 0x400, 0), (0x80000004, 0x4FF, 0)]
    assert seen[4][:2] == (0x80000004, 0) and seen[4][2] == 17  # 16 hex digits and the NUL


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_error_codes_receipts_and_responses() -> None:
    """
    9991EEE gives an UNDELIV receipt with err EEE; 999302 a generic_nack
    ESME_RINVCMDID with the request's sequence number; 999306 a submit_sm_resp
    then a connection reset.
    """

    def script(esme: RawESME) -> dict[str, Any]:
        result: dict[str, Any] = {}
        header, _ = esme.submit("9991008")
        result["accepted"] = header.command_status
        result["receipt"] = parse_receipt(esme.next_receipt()["short_message"].decode())
        header, _ = esme.submit("999302")
        result["nack"] = (header.command_id, header.command_status, header.sequence_number == esme.sequence)
        header, _ = esme.submit("999306")
        result["before_reset"] = (header.command_id, header.command_status)
        try:
            esme.read()
            result["after"] = "data"
        except ConnectionResetError:
            result["after"] = "reset"
        except ConnectionError:
            result["after"] = "closed"
        return result

    result = await with_esme("error-codes", script)
    assert result["accepted"] == 0
    assert (result["receipt"]["stat"], result["receipt"]["err"], result["receipt"]["dlvrd"]) == ("UNDELIV", "008", "000")
    assert result["nack"] == (0x80000000, 0x03, True)
    assert result["before_reset"] == (0x80000004, 0)
    assert result["after"] == "reset"


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_account_throughput_throttles_a_burst() -> None:
    """
    With the default scenario and an account limited to 5 messages a second,
    a burst of 8 submits gets 5 accepted and 3 ESME_RTHROTTLED (0x58).
    """

    def script(esme: RawESME) -> list[int]:
        statuses = []
        start = time.monotonic()
        for _ in range(8):
            header, _ = esme.submit("447700900123", registered_delivery=0)
            statuses.append(header.command_status)
        # the assertion below depends on the burst fitting in well under 1/5 s
        assert time.monotonic() - start < 0.2
        return statuses

    statuses = await with_esme("default", script, throughput=5.0)
    assert statuses == [0] * 5 + [0x58] * 3


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_bench_scenario_keeps_fifty_receipts_in_flight() -> None:
    """
    The shipped ``bench`` scenario sets ``window.outbound: 50``: an ESME that
    submits 60 messages and answers no deliver_sm gets exactly 50 receipts
    (the configuration's own outbound window is 10), the rest wait.
    """

    def script(esme: RawESME) -> tuple[list[int], int]:
        statuses = []
        for n in range(60):
            header, _ = esme.submit(f"4477009{n:05d}")
            statuses.append(header.command_status)
        deliveries = 0
        esme.sock.settimeout(1.5)  # receipts come 0.5 s after each submit_sm_resp; past that, nothing more
        try:
            while deliveries < 60:
                header, _ = esme.read()
                deliveries += header.command_id == 0x05
        except TimeoutError:
            pass
        return statuses, deliveries

    statuses, deliveries = await with_esme("bench", script)
    assert statuses == [0] * 60
    assert deliveries == 50
