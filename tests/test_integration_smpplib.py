"""
End to end with smpplib, an SMPP client nobody on this project wrote, on
loopback sockets: in-process against the real reactor, and against
``twistd -n smsc-sim`` started as a subprocess.

smpplib is blocking, so its calls run in a thread while the reactor serves.
"""

from __future__ import annotations

import dataclasses
import resource
import signal
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import pytest_twisted
import smpplib.client
import smpplib.consts
from twisted.internet import threads

from smsc_sim.service import build_service
from smsc_sim.smpp.receipt import parse_receipt
from smsc_sim.testing.harness import ephemeral_config
from tests.process_harness import EPHEMERAL, SmscProcess

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")

FAST_RECEIPTS = """\
name: fast-receipts
description: every message DELIVRD 50 ms after its submit_sm_resp
receipt:
  stat: DELIVRD
  delay: 50ms
"""


def client_for(port: int) -> smpplib.client.Client:
    return smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)


def read_until(client: smpplib.client.Client, done: Callable[[], bool], seconds: float = 8.0) -> None:
    """Read PDUs until ``done()`` or the time bound (then fail)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for PDUs from the simulator")
        client.read_once(auto_send_enquire_link=False)


@pytest.fixture
def fast_scenario(tmp_path: Path) -> str:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST_RECEIPTS)
    return str(path)


async def running(scenario: str) -> Any:
    from twisted.internet import reactor

    config = dataclasses.replace(ephemeral_config(), api_endpoint="", scenario=scenario)
    simulator = build_service(config, reactor)
    simulator.startService()
    await simulator.when_listening()
    return simulator


async def in_thread(fn: Callable[[], T]) -> T:
    return await threads.deferToThread(fn)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_bind_submit_receipt_unbind(fast_scenario: str) -> None:
    """
    smpplib binds as a transceiver to SMPP1, submits, gets a 16-hex-digit
    message id, receives the DELIVRD receipt in the provider's text form with
    the id in decimal and receipted_message_id exactly as submitted, answers
    it, and unbinds.
    """
    simulator = await running(fast_scenario)
    try:
        port = simulator.endpoints()["SMPP1"][0][1]

        def esme() -> dict[str, Any]:
            client = client_for(port)
            sent: list[Any] = []
            received: list[Any] = []
            client.set_message_sent_handler(lambda pdu: sent.append(pdu))
            client.set_message_received_handler(lambda pdu: received.append(pdu))
            client.connect()
            try:
                bind = client.bind_transceiver(system_id="smppclient1", password="password")
                client.send_message(
                    source_addr_ton=1,
                    source_addr="447700900001",
                    dest_addr_ton=1,
                    destination_addr="447700900002",
                    short_message=b"Hello from smpplib",
                    registered_delivery=1,
                )
                read_until(client, lambda: bool(sent) and bool(received))
                unbind = client.unbind()
                return {"bind": bind, "sent": sent, "received": received, "unbind": unbind}
            finally:
                client.disconnect()

        result = await in_thread(esme)
    finally:
        await simulator.stopService()

    assert result["bind"].status == 0
    assert result["bind"].system_id == b"SMPP1"
    (resp,) = result["sent"]
    assert resp.status == 0
    message_id = resp.message_id.decode()
    assert len(message_id) == 16 and message_id == message_id.upper()
    int(message_id, 16)
    (receipt,) = result["received"]
    assert receipt.esm_class == 0x04
    assert receipt.source_addr == b"447700900002" and receipt.destination_addr == b"447700900001"
    fields = parse_receipt(receipt.short_message.decode())
    assert fields["id"] == str(int(message_id, 16))
    assert (fields["sub"], fields["dlvrd"], fields["stat"], fields["err"], fields["text"]) == (
        "001",
        "001",
        "DELIVRD",
        "000",
        "none",
    )
    assert receipt.receipted_message_id == message_id.encode()
    assert receipt.message_state == smpplib.consts.SMPP_MESSAGE_STATE_DELIVERED
    assert result["unbind"].status == 0


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_wrong_password_and_quota(fast_scenario: str) -> None:
    """
    A wrong password gets ESME_RINVPASWD; two binds of the account (on SMPP1
    and SMPP2, one cluster) succeed and a third anywhere in the cluster gets
    ESME_RALYBND; SMPP0, standalone, has its own quota.
    """
    simulator = await running(fast_scenario)
    try:
        ports = {name: addresses[0][1] for name, addresses in simulator.endpoints().items()}

        def esmes() -> list[int]:
            statuses: list[int] = []
            clients = []
            for instance, password in (
                ("SMPP1", "wrong"),
                ("SMPP1", "password"),
                ("SMPP2", "password"),
                ("SMPP2", "password"),
                ("SMPP0", "password"),
            ):
                client = client_for(ports[instance])
                client.connect()
                clients.append(client)
                try:
                    client.bind_transceiver(system_id="smppclient1", password=password)
                    statuses.append(0)
                except smpplib.exceptions.PDUError as error:
                    statuses.append(error.args[1])
            for client in clients:
                client.disconnect()
            return statuses

        statuses = await in_thread(esmes)
    finally:
        await simulator.stopService()
    assert statuses == [0x0E, 0, 0, 0x05, 0]


@pytest.mark.integration
def test_twistd_serves_and_stops_on_sigterm(fast_scenario: str, tmp_path: Path) -> None:
    """
    ``twistd -n smsc-sim`` as a subprocess serves an smpplib client on the
    SMPP1 port it says it listens on; on SIGTERM the client receives an unbind from
    the SMSC and the process shuts down cleanly.  Started with a soft limit
    of 512 open files, it raises its own to limits.max_connections + 256.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 10_000 + 256 if hard == resource.RLIM_INFINITY else min(10_000 + 256, hard)
    low = 512 if hard == resource.RLIM_INFINITY else min(512, hard)
    # every endpoint tcp:0, SMPP1's port read back from the process's announce (which needs the API): a port
    # picked free here and handed on could be taken by another process before twistd binds it
    process = SmscProcess(
        "smsc-sim",
        ["--api", EPHEMERAL, "--scenario", fast_scenario, "--smpp1", EPHEMERAL, "--smpp2", EPHEMERAL,
         "--smpp0", EPHEMERAL],
        tmp_path / "twistd.log",
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    )  # fmt: skip
    try:
        port, _ = process.wait_listening("SMPP1", api=True)
        client = client_for(port)
        client.connect()
        client.bind_transceiver(system_id="smppclient1", password="password")
        with open(f"/proc/{process.popen.pid}/limits", encoding="ascii") as limits:
            [line] = [line for line in limits if line.startswith("Max open files")]
        assert int(line.split()[3]) == wanted
        received: list[Any] = []
        client.set_message_received_handler(lambda pdu: received.append(pdu))
        client.send_message(
            source_addr_ton=1,
            source_addr="1000",
            dest_addr_ton=1,
            destination_addr="2000",
            short_message=b"hi",
            registered_delivery=1,
        )
        read_until(client, lambda: bool(received))
        process.popen.send_signal(signal.SIGTERM)
        pdu = client.read_pdu()
        assert pdu.command == "unbind"
        client.disconnect()
        # twistd re-raises the signal after a clean shutdown, so the exit status says SIGTERM
        assert process.popen.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        process.kill()
    output = process.output()
    assert "Traceback" not in output
    assert "Server Shut Down." in output
    assert "bind transceiver from smppclient1 on SMPP1" in output
    assert "password" not in output.replace("--password", "")
