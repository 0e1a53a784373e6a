"""
The provider topology on real sockets: failover between SMPP1 and SMPP2,
store-and-forward on SMPP0, the bind quota across instances, and what each
outage mode looks like on the wire.

The simulator runs in-process on the real reactor, on ephemeral loopback
ports.  Clients are blocking (smpplib, or raw sockets where smpplib would
hide the difference between a reset and a clean close), so they run in a
thread while the reactor serves; outages are started through the Python API
(:meth:`Simulator.start_outage`) from the reactor thread.  Every wait is
bounded: socket timeouts, or a Deferred on the simulator's events with a
deadline.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import pytest_twisted
import smpplib.client
import smpplib.exceptions
import smpplib.smpp
from twisted.internet import threads
from twisted.internet.defer import Deferred

from smsc_sim.config import Config, default_config
from smsc_sim.service import build_service
from smsc_sim.simulator import Simulator
from smsc_sim.testing.harness import ephemeral_config
from tests import wire

T = TypeVar("T")

#: receipts 1 s after the submit_sm_resp: long enough to start an outage before they are due
RECEIPT_DELAY = 1.0
SCENARIO = f"""\
name: topology-failover
receipt:
  stat: DELIVRD
  delay: {RECEIPT_DELAY}s
"""


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    path = tmp_path / "topology.yaml"
    path.write_text(SCENARIO)
    return str(path)


async def running(scenario: str, **core: Any) -> Simulator:
    from twisted.internet import reactor

    config: Config = dataclasses.replace(ephemeral_config(), api_endpoint="", scenario=scenario)
    if core:
        config = dataclasses.replace(config, core=dataclasses.replace(default_config().core, **core))
    simulator = build_service(config, reactor)
    simulator.startService()
    await simulator.when_listening()
    return simulator


def ports(simulator: Simulator) -> dict[str, int]:
    return {name: addresses[0][1] for name, addresses in simulator.endpoints().items()}


async def in_thread(fn: Callable[[], T]) -> T:
    return await threads.deferToThread(fn)


async def until(simulator: Simulator, check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait, on the simulator's events, until ``check()`` holds; fail after ``timeout`` seconds."""
    from twisted.internet import reactor

    done: Deferred[None] = Deferred()

    def poke(_: object = None) -> None:
        if not done.called and check():
            done.callback(None)

    def expire() -> None:
        if not done.called:
            done.errback(AssertionError(f"condition not reached within {timeout} s"))

    unsubscribe = simulator.events.subscribe(poke)
    timer = reactor.callLater(timeout, expire)
    try:
        poke()
        await done
    finally:
        unsubscribe()
        if timer.active():
            timer.cancel()


# -- smpplib ------------------------------------------------------------------------


def smpplib_client(port: int) -> smpplib.client.Client:
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    return client


def submit(client: smpplib.client.Client, n: int) -> str:
    """Submit one message asking for a receipt; returns the message id of its submit_sm_resp."""
    client.send_message(
        source_addr_ton=1,
        source_addr="447700900001",
        dest_addr_ton=1,
        destination_addr=f"4477009{n:05d}",
        short_message=f"message {n}".encode(),
        registered_delivery=1,
    )
    response = client.read_pdu()
    assert response.command == "submit_sm_resp" and response.status == 0, response.command
    return str(response.message_id.decode())


def read_receipts(client: smpplib.client.Client, count: int, seconds: float = 8.0) -> list[str]:
    """Read (and answer) deliver_sm until ``count`` receipts came; their receipted_message_id."""
    ids: list[str] = []
    client.set_message_received_handler(lambda pdu: ids.append(pdu.receipted_message_id.decode()))
    deadline = time.monotonic() + seconds
    while len(ids) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"got {len(ids)} of {count} receipts")
        client.read_once(auto_send_enquire_link=False)
    return ids


# -- raw sockets ---------------------------------------------------------------------


def raw_connect(port: int, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def read_header(sock: socket.socket) -> wire.Header:
    head = recv_exact(sock, 16)
    header = wire.Header(*struct.unpack(">IIII", head))
    recv_exact(sock, header.command_length - 16)
    return header


def raw_bind(port: int, system_id: str = "smppclient1") -> tuple[socket.socket, int]:
    """Connect and bind_transceiver; the socket and the bind_resp status."""
    sock = raw_connect(port)
    sock.sendall(wire.bind(0x09, 1, system_id=system_id))
    header = read_header(sock)
    assert header.command_id == 0x80000009
    return sock, header.command_status


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0): an abrupt disconnect, no unbind."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# -- tests ---------------------------------------------------------------------------


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_crash_of_smpp1_receipts_arrive_through_smpp2(scenario: str) -> None:
    """
    An ESME bound (transceiver) to SMPP1 and SMPP2 submits through both;
    SMPP1 crashes after the submit_sm_resps and before the receipts are due:
    the SMPP1 connection is reset, every receipt (those of SMPP1's messages
    too) arrives through SMPP2 exactly once, and after the recovery the ESME
    binds to SMPP1 again.
    """
    simulator = await running(scenario)
    core = simulator.cores["NA"]
    port = ports(simulator)
    try:

        def bind_and_submit() -> tuple[Any, Any, list[str], list[str]]:
            one, two = smpplib_client(port["SMPP1"]), smpplib_client(port["SMPP2"])
            one.bind_transceiver(system_id="smppclient1", password="password")
            two.bind_transceiver(system_id="smppclient1", password="password")
            return one, two, [submit(one, n) for n in range(5)], [submit(two, n) for n in range(5, 10)]

        one, two, via_one, via_two = await in_thread(bind_and_submit)
        assert all(core.message(i).state.name == "ENROUTE" for i in via_one + via_two)  # type: ignore[union-attr]
        await simulator.start_outage("SMPP1", "crash")
        assert simulator.instance("SMPP1").describe()["state"] == "crash"

        def after_crash() -> tuple[type[BaseException] | None, list[str], bool]:
            try:
                one._socket.recv(16)
                error: type[BaseException] | None = None
            except OSError as e:
                error = type(e)
            one.disconnect()
            return error, read_receipts(two, 10), refused(port["SMPP1"])

        error, receipts, was_refused = await in_thread(after_crash)
        assert error is ConnectionResetError
        assert was_refused
        assert Counter(receipts) == Counter(via_one + via_two)  # every one, once
        stats = core.stats()
        assert (stats["receipts"]["sent"], stats["deliveries"]["attempts"], stats["retries"]) == (10, 10, 0)

        await simulator.end_outage("SMPP1")
        assert simulator.endpoints()["SMPP1"][0][1] == port["SMPP1"]  # back on the same (ephemeral) port

        def rebind() -> Any:
            again = smpplib_client(port["SMPP1"])
            response = again.bind_transceiver(system_id="smppclient1", password="password")
            for client in (again, two):
                assert client.unbind().status == 0
                client.disconnect()
            return response

        response = await in_thread(rebind)
        assert (response.status, response.system_id) == (0, b"SMPP1")
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_graceful_outage_of_smpp0_queues_receipts_until_rebind(scenario: str) -> None:
    """
    A client of the standalone SMPP0 receives an unbind when SMPP0 shuts
    down gracefully, answers it and sees the connection closed cleanly; new
    connections are refused; the receipts due meanwhile wait, and arrive in
    order once it rebinds after the recovery.
    """
    simulator = await running(scenario)
    core = simulator.cores["SMPP0"]
    port = ports(simulator)["SMPP0"]
    try:

        def bind_and_submit() -> tuple[Any, list[str]]:
            client = smpplib_client(port)
            client.bind_transceiver(system_id="smppclient1", password="password")
            return client, [submit(client, n) for n in range(3)]

        client, ids = await in_thread(bind_and_submit)
        outage = simulator.start_outage("SMPP0", "graceful")

        def observe_unbind() -> tuple[str, bytes]:
            pdu = client.read_pdu()
            answer = smpplib.smpp.make_pdu("unbind_resp", client=client)
            answer.sequence = pdu.sequence
            client.send_pdu(answer)
            closed = client._socket.recv(16)
            client.disconnect()
            return pdu.command, closed

        command, closed = await in_thread(observe_unbind)
        await outage
        assert (command, closed) == ("unbind", b"")
        assert await in_thread(lambda: refused(port))
        await until(simulator, lambda: core.router.pending_depth() == 3)

        await simulator.end_outage("SMPP0")

        def rebind() -> list[str]:
            again = smpplib_client(port)
            again.bind_transceiver(system_id="smppclient1", password="password")
            received = read_receipts(again, 3)
            again.unbind()
            again.disconnect()
            return received

        assert await in_thread(rebind) == ids
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_bind_quota_across_instances(scenario: str) -> None:
    """
    The account's quota of 2 binds spans SMPP1 and SMPP2: after one bind on
    each, a third gets ESME_RALYBND whichever instance it goes to; SMPP0,
    standalone, takes a bind of its own.
    """
    simulator = await running(scenario)
    port = ports(simulator)
    try:

        def binds() -> list[int]:
            statuses, sockets = [], []
            for instance in ("SMPP1", "SMPP2", "SMPP1", "SMPP2", "SMPP0"):
                sock, status = raw_bind(port[instance])
                sockets.append(sock)
                statuses.append(status)
            for sock in sockets:
                sock.close()
            return statuses

        assert await in_thread(binds) == [0, 0, 0x05, 0x05, 0]
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_crash_resets_graceful_unbinds_then_closes(scenario: str) -> None:
    """
    On the wire a crash is a TCP reset (recv raises ConnectionResetError, no
    unbind), a graceful outage is an unbind PDU and, once answered, a clean
    close (recv returns b""); both refuse new connections.
    """
    simulator = await running(scenario)
    port = ports(simulator)
    try:
        (one, _), (two, _) = await in_thread(lambda: (raw_bind(port["SMPP1"]), raw_bind(port["SMPP2"])))
        await simulator.start_outage("SMPP1", "crash")

        def crashed() -> tuple[type[BaseException] | None, bool]:
            try:
                data = one.recv(16)
                return (None if data == b"" else EOFError), refused(port["SMPP1"])
            except OSError as e:
                return type(e), refused(port["SMPP1"])
            finally:
                one.close()

        assert await in_thread(crashed) == (ConnectionResetError, True)

        outage = simulator.start_outage("SMPP2", "graceful")

        def graceful() -> tuple[tuple[int, int], bytes, bool]:
            header = read_header(two)
            two.sendall(wire.frame(0x80000006, header.sequence_number))
            closed = two.recv(16)
            two.close()
            return (header.command_id, header.command_status), closed, refused(port["SMPP2"])

        assert await in_thread(graceful) == ((0x06, 0), b"", True)
        await outage
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_blackhole_is_silence(scenario: str) -> None:
    """
    A blackholed SMPP0 leaves the connection open and answers nothing: an
    enquire_link times out, a new connection is accepted and its bind is
    never answered; after the recovery enquire_link is answered again.
    """
    simulator = await running(scenario)
    port = ports(simulator)["SMPP0"]
    try:
        sock, _ = await in_thread(lambda: raw_bind(port))
        await simulator.start_outage("SMPP0", "blackhole")

        def silence() -> tuple[bool, bool]:
            sock.settimeout(0.3)
            sock.sendall(wire.frame(0x15, 2))
            try:
                sock.recv(16)
                quiet = False
            except socket.timeout:
                quiet = True
            late = raw_connect(port, timeout=0.3)  # accepted...
            late.sendall(wire.bind(0x09, 1))
            try:
                late.recv(16)
                ignored = False
            except socket.timeout:  # ...and ignored
                ignored = True
            late.close()
            return quiet, ignored

        assert await in_thread(silence) == (True, True)
        await simulator.end_outage("SMPP0")

        def answered() -> tuple[int, int, int]:
            sock.settimeout(2)
            sock.sendall(wire.frame(0x15, 3))
            header = read_header(sock)
            sock.close()
            return header.command_id, header.command_status, header.sequence_number

        assert await in_thread(answered) == (0x80000015, 0, 3)
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_bind_hang_reject_binds_and_slow(scenario: str) -> None:
    """
    During bind-hang a new bind gets no answer while a bound session is
    still answered; during reject-binds a bind gets the given status
    (ESME_RBINDFAIL here); during slow every answer comes at least the
    latency late.
    """
    simulator = await running(scenario)
    port = ports(simulator)["SMPP1"]
    try:
        bound, _ = await in_thread(lambda: raw_bind(port))
        await simulator.start_outage("SMPP1", "bind-hang")

        def hang() -> tuple[bool, tuple[int, int]]:
            waiting = raw_connect(port, timeout=0.3)
            waiting.sendall(wire.bind(0x09, 1))
            try:
                waiting.recv(16)
                hung = False
            except socket.timeout:
                hung = True
            waiting.close()
            bound.sendall(wire.frame(0x15, 2))
            header = read_header(bound)
            return hung, (header.command_id, header.sequence_number)

        assert await in_thread(hang) == (True, (0x80000015, 2))

        await simulator.start_outage("SMPP1", "reject-binds", status=0x0D)
        assert await in_thread(lambda: raw_bind(port)[1]) == 0x0D

        await simulator.start_outage("SMPP1", "slow", latency=0.3)

        def slow() -> float:
            started = time.monotonic()
            bound.sendall(wire.frame(0x15, 3))
            read_header(bound)
            return time.monotonic() - started

        assert await in_thread(slow) >= 0.3
        await simulator.end_outage("SMPP1")
        assert await in_thread(slow) < 0.3
        await in_thread(bound.close)
    finally:
        await simulator.stopService()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_ghost_bind_refuses_fast_rebind(scenario: str) -> None:
    """
    With ghost_bind_hold 0.5 s, after a bound ESME's connection is reset the
    slot stays taken: a fast rebind gets ESME_RALYBND, and once the hold has
    passed the same rebind succeeds.
    """
    hold = 0.5
    simulator = await running(scenario, ghost_bind_hold=hold)
    core = simulator.cores["NA"]
    port = ports(simulator)
    try:
        (one, _), (two, _) = await in_thread(lambda: (raw_bind(port["SMPP1"]), raw_bind(port["SMPP2"])))
        await in_thread(lambda: reset(one))
        await until(simulator, lambda: core.stats()["ghost_binds"] == 1)
        dropped = time.monotonic()

        def rebind() -> int:
            sock, status = raw_bind(port["SMPP1"])
            sock.close()
            return status

        assert await in_thread(rebind) == 0x05
        await core.binds.when_released("smppclient1")
        assert time.monotonic() - dropped >= hold * 0.9
        assert await in_thread(rebind) == 0
        await in_thread(two.close)
    finally:
        await simulator.stopService()
