"""
Receipts and MO across two twistd processes of one cluster sharing a real
redis-server (``--cluster-store``, ``--instances SMPP1`` / ``SMPP2``), seen
by an ESME speaking raw PDUs: they reach a session of the account in the
other process, and a ``kill -9`` of the process that accepted the messages
loses none of their receipts.  The processes run with a 2 s lease
(``SMSC_SIM_CLUSTER_LEASE``) so a dead process's receipts are taken over
quickly.  redis-server must be installed (``scripts/install-redis.sh``);
when it is not, these tests fail saying so.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import wire
from tests.redis_harness import RedisServer, free_port

REPO = Path(__file__).resolve().parent.parent
LEASE = 2.0
RECEIPTED_MESSAGE_ID = 0x001E

pytestmark = pytest.mark.integration

Cluster = tuple[RedisServer, dict[str, int], dict[str, subprocess.Popen[bytes]]]


def _scenario(tmp_path: Path, delay: str) -> Path:
    """Every submit accepted, no throttle, a DELIVRD receipt after ``delay``, binds enough for the tests."""
    path = tmp_path / "receipts.yaml"
    path.write_text(
        "name: receipts\ndescription: cross-process receipts\nthrottle: off\nlatency: 0\n"
        f"receipt:\n  stat: DELIVRD\n  delay: {delay}\n"
        "limits:\n  max_binds: 10\n  throughput: 0\n"
    )
    return path


def _twistd(instance: str, store: str, ports: dict[str, int], scenario: Path, api: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "smsc-sim",
         "--api", f"tcp:{api}:interface=127.0.0.1", "--no-conformance-judge", "--cluster-store", store,
         "--instances", instance, "--scenario", str(scenario),
         "--smpp1", f"tcp:{ports['SMPP1']}:interface=127.0.0.1",
         "--smpp2", f"tcp:{ports['SMPP2']}:interface=127.0.0.1",
         "--smpp0", f"tcp:{ports['SMPP0']}:interface=127.0.0.1"],  # fmt: skip
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), SMSC_SIM_CLUSTER_LEASE=str(LEASE)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"twistd ended (status {process.returncode}):\n{output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"twistd did not listen on {port} within 20 s")
            time.sleep(0.05)


def _cluster(tmp_path: Path, delay: str) -> Iterator[Cluster]:
    ports = {name: free_port() for name in ("SMPP1", "SMPP2", "SMPP0", "API1", "API2")}
    scenario = _scenario(tmp_path, delay)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with RedisServer(tmp_path) as redis:
        try:
            for name, api in (("SMPP1", "API1"), ("SMPP2", "API2")):
                processes[name] = _twistd(name, redis.url, ports, scenario, ports[api])
            for name, process in processes.items():
                _wait_listening(ports[name], process)
                _wait_listening(ports["API1" if name == "SMPP1" else "API2"], process)
            yield redis, ports, processes
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=10)
                if process.stdout is not None:
                    process.stdout.close()


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[Cluster]:
    """Receipts 200 ms after the submit_sm_resp."""
    yield from _cluster(tmp_path, "200ms")


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Cluster]:
    """Receipts 0.3 to 4 s after the submit_sm_resp."""
    yield from _cluster(tmp_path, "{uniform: [300ms, 4s]}")


class Esme:
    """One ESME's raw connections: reads whole PDUs and answers every deliver_sm (unless told not to)."""

    def __init__(self) -> None:
        self.buffers: dict[socket.socket, bytes] = {}
        #: receipted message ids, per connection, in the order their deliver_sm came
        self.receipts: dict[socket.socket, list[str]] = {}
        #: MO texts per connection
        self.mo: dict[socket.socket, list[bytes]] = {}
        self.answering: dict[socket.socket, bool] = {}
        #: the sequence numbers of the deliver_sm received, per connection
        self.sequences: dict[socket.socket, list[int]] = {}

    def bind(self, port: int, command_id: int) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(wire.bind(command_id, 1))
        self.buffers[connection] = b""
        self.receipts[connection] = []
        self.mo[connection] = []
        self.answering[connection] = True
        self.sequences[connection] = []
        [(header, _body)] = self.read(connection, 1)
        assert (header.command_id, header.command_status) == (0x80000000 | command_id, 0)
        return connection

    def read(self, connection: socket.socket, count: int, within: float = 10) -> list[tuple[wire.Header, bytes]]:
        """The next ``count`` PDUs other than deliver_sm (those are recorded and answered)."""
        found: list[tuple[wire.Header, bytes]] = []
        deadline = time.monotonic() + within
        while len(found) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} PDUs within {within} s"
            found.extend(self.pump([connection], 0.2, keep=True))
        return found

    def pump(self, connections: list[socket.socket], seconds: float, keep: bool = False) -> list[tuple[wire.Header, bytes]]:
        """Read for ``seconds``: record and answer deliver_sm; the other PDUs are returned when ``keep``."""
        others: list[tuple[wire.Header, bytes]] = []
        deadline = time.monotonic() + seconds
        live = [c for c in connections if c.fileno() >= 0]
        while live and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(live, [], [], left)
            for connection in ready:
                try:
                    data = connection.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    live.remove(connection)
                    continue
                buffer = self.buffers[connection] + data
                while len(buffer) >= 16 and len(buffer) >= struct.unpack_from(">I", buffer)[0]:
                    length = struct.unpack_from(">I", buffer)[0]
                    [(header, body)] = wire.split_pdus(buffer[:length])
                    buffer = buffer[length:]
                    if header.command_id == 0x00000005:
                        self._deliver_sm(connection, header, body)
                    elif keep:
                        others.append((header, body))
                self.buffers[connection] = buffer
        return others

    def _deliver_sm(self, connection: socket.socket, header: wire.Header, body: bytes) -> None:
        self.sequences[connection].append(header.sequence_number)
        fields = wire.deliver_sm_fields(body)
        tlvs = fields["tlvs"]
        assert isinstance(tlvs, dict)
        if int(str(fields["esm_class"])) & 0x04:
            self.receipts[connection].append(tlvs[RECEIPTED_MESSAGE_ID].rstrip(b"\x00").decode())
        else:
            short_message = fields["short_message"]
            assert isinstance(short_message, bytes)
            self.mo[connection].append(short_message)
        if self.answering[connection]:
            connection.sendall(wire.frame(0x80000005, header.sequence_number, wire.cstr("")))

    def submit(self, connection: socket.socket, count: int) -> list[str]:
        """Submit ``count`` messages asking for receipts; their message ids."""
        for n in range(count):
            connection.sendall(wire.submit_sm(sequence=100 + n, text=f"m{n}".encode()))
        ids: dict[int, str] = {}
        for header, body in self.read(connection, count):
            assert (header.command_id, header.command_status) == (0x80000004, 0)
            ids[header.sequence_number] = wire.read_cstr(body)[0]
        return [ids[100 + n] for n in range(count)]

    def close(self) -> None:
        for connection in self.buffers:
            connection.close()


def test_receipts_of_smpp1_messages_reach_an_esme_bound_only_to_smpp2(quick: Cluster) -> None:
    """
    An ESME submits 30 messages through SMPP1 (bound as a transmitter there)
    and is bound as a receiver only to SMPP2: every receipt arrives on its
    SMPP2 session, each once.
    """
    _redis, ports, _processes = quick
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        transmitter = esme.bind(ports["SMPP1"], 0x02)
        ids = esme.submit(transmitter, 30)
        deadline = time.monotonic() + 10
        while len(esme.receipts[receiver]) < 30 and time.monotonic() < deadline:
            esme.pump([receiver], 0.2)
        esme.pump([receiver], 1.0)  # nothing more comes
        assert sorted(esme.receipts[receiver]) == sorted(ids)
        assert len(set(ids)) == 30
    finally:
        esme.close()


def test_mo_injected_through_smpp1_api_reaches_smpp2_bind(quick: Cluster) -> None:
    """
    POST /api/v1/mo to the SMPP1 process, whose ESME is bound only to the
    SMPP2 process: the deliver_sm with the text arrives on the SMPP2 session;
    one injected through SMPP2's own API does too.
    """
    _redis, ports, _processes = quick
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        for api, text in (("API1", "through SMPP1"), ("API2", "through SMPP2")):
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports[api]}/api/v1/mo",
                data=json.dumps(
                    {"account": "smppclient1", "source": "447700900002", "destination": "447700900001", "text": text}
                ).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status in (200, 201, 202)
        deadline = time.monotonic() + 10
        while len(esme.mo[receiver]) < 2 and time.monotonic() < deadline:
            esme.pump([receiver], 0.2)
        assert sorted(esme.mo[receiver]) == [b"through SMPP1", b"through SMPP2"]
    finally:
        esme.close()


def test_kill_9_of_smpp1_loses_no_receipt_and_sends_none_twice(slow: Cluster) -> None:
    """
    An ESME bound to both processes submits 150 messages through SMPP1
    (receipts due 0.3 to 4 s later) and answers the receipts SMPP1 sends it
    for about a second, then reads without answering; then SMPP1 is killed
    with kill -9.  Every receipt not answered on SMPP1 arrives on the SMPP2
    session, exactly once; none answered on SMPP1 arrives again.  SMPP2 logs
    that it took the receipts over, and no traceback.
    """
    _redis, ports, processes = slow
    esme = Esme()
    try:
        one = esme.bind(ports["SMPP1"], 0x09)
        two = esme.bind(ports["SMPP2"], 0x09)
        ids = esme.submit(one, 150)
        assert len(set(ids)) == 150
        esme.pump([one, two], 1.0)
        answered = list(esme.receipts[one])
        esme.answering[one] = False  # from now on SMPP1's receipts stay unanswered: they are owed still
        esme.pump([one, two], 0.5)
        processes["SMPP1"].kill()
        processes["SMPP1"].wait(timeout=10)
        owed = set(ids) - set(answered)
        deadline = time.monotonic() + LEASE * 3 + 4 + 10
        while not owed <= set(esme.receipts[two]) and time.monotonic() < deadline:
            esme.pump([two], 0.2)
        esme.pump([two], LEASE + 1)  # nothing more comes
        got = Counter(esme.receipts[two])
        assert answered, "SMPP1 sent no receipt before the kill: the scenario's delays did not start at 0.3 s"
        assert owed, "every receipt was answered before the kill: nothing left to take over"
        assert set(got) == owed, f"missing {sorted(owed - set(got))[:5]}, unexpected {sorted(set(got) - owed)[:5]}"
        assert [mid for mid, n in got.items() if n > 1] == []
    finally:
        esme.close()
    processes["SMPP2"].terminate()
    output = processes["SMPP2"].communicate(timeout=20)[0].decode()
    assert "owed receipts taken over from a process that stopped" in output
    assert "Traceback" not in output


def test_receipts_cross_processes_again_after_a_redis_restart(quick: Cluster) -> None:
    """
    Redis restarted empty while an ESME is bound as a transmitter to SMPP1
    and as a receiver to SMPP2: once Redis is back, the receipts of messages
    submitted through SMPP1 reach the SMPP2 session again, each once, and
    neither process ended.
    """
    redis, ports, processes = quick
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        transmitter = esme.bind(ports["SMPP1"], 0x02)
        redis.restart()
        ids = esme.submit(transmitter, 10)
        deadline = time.monotonic() + 15
        while len(esme.receipts[receiver]) < 10 and time.monotonic() < deadline:
            esme.pump([receiver], 0.2)
        esme.pump([receiver], 1.0)
        assert sorted(esme.receipts[receiver]) == sorted(ids)
        assert all(process.poll() is None for process in processes.values())
    finally:
        esme.close()


def _get(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        answer = json.loads(response.read())
    assert isinstance(answer, dict)
    return answer


def _until(check: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {within} s"
        time.sleep(0.1)


def test_the_accepting_process_learns_how_the_other_delivered(quick: Cluster) -> None:
    """
    Messages submitted through SMPP1 whose receipts an ESME answers on its
    SMPP2 session (its only receiver): SMPP1's API shows each receipt
    ``acked`` with status 0 and one attempt, as in one process, not
    ``queued``.  An MO injected through SMPP1's API and delivered (answered)
    on SMPP2 ends DELIVERED in SMPP1's API; one that SMPP2's ESME refuses
    with a final status (ESME_RX_P_APPN, 0x64) ends UNDELIVERABLE there with
    that status.
    """
    _redis, ports, _processes = quick
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        transmitter = esme.bind(ports["SMPP1"], 0x02)
        ids = esme.submit(transmitter, 5)
        _until(lambda: not esme.pump([receiver], 0.1) and len(esme.receipts[receiver]) >= 5)

        def receipts_acked() -> bool:
            esme.pump([receiver], 0.05)
            receipts = [_get(ports["API1"], f"/api/v1/messages/{mid}")["receipts"] for mid in ids]
            return all(r and r[-1]["outcome"] == "acked" for r in receipts)  # type: ignore[index, union-attr]

        _until(receipts_acked)
        for mid in ids:
            message = _get(ports["API1"], f"/api/v1/messages/{mid}")
            [receipt] = message["receipts"]  # type: ignore[misc]
            assert (receipt["outcome"], receipt["status"], receipt["attempts"]) == ("acked", 0, 1)
            assert message["state"] == "DELIVERED"

        def inject(text: str) -> str:
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports['API1']}/api/v1/mo",
                data=json.dumps(
                    {"account": "smppclient1", "source": "447700900002", "destination": "447700900001", "text": text}
                ).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                [mid] = json.loads(response.read())["message_ids"]
            return str(mid)

        delivered = inject("answered")
        _until(lambda: not esme.pump([receiver], 0.1) and esme.mo[receiver] == [b"answered"])
        _until(lambda: _get(ports["API1"], f"/api/v1/messages/{delivered}")["state"] == "DELIVERED")

        esme.answering[receiver] = False
        refused = inject("refused")
        _until(lambda: not esme.pump([receiver], 0.1) and len(esme.mo[receiver]) == 2)
        receiver.sendall(wire.frame(0x80000005, esme.sequences[receiver][-1], wire.cstr(""), status=0x64))
        _until(lambda: _get(ports["API1"], f"/api/v1/messages/{refused}")["state"] == "UNDELIVERABLE")
        [entry] = _get(ports["API1"], f"/api/v1/messages/{refused}")["receipts"]  # type: ignore[misc]
        assert (entry["outcome"], entry["status"]) == ("failed", 0x64)
    finally:
        esme.close()
