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

import select
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import wire
from tests.process_harness import Cluster, api_get, eventually, inject_mo, run_cluster

LEASE = 2.0
RECEIPTED_MESSAGE_ID = 0x001E
#: seconds to wait for receipts or MO due at once (a loaded machine is slow; the tests return as soon as they came)
ARRIVAL = 20.0

pytestmark = pytest.mark.integration


def _scenario(tmp_path: Path, delay: str) -> Path:
    """Every submit accepted, no throttle, a DELIVRD receipt after ``delay``, binds enough for the tests."""
    path = tmp_path / "receipts.yaml"
    path.write_text(
        "name: receipts\ndescription: cross-process receipts\nthrottle: off\nlatency: 0\n"
        f"receipt:\n  stat: DELIVRD\n  delay: {delay}\n"
        "limits:\n  max_binds: 10\n  throughput: 0\n"
    )
    return path


def _cluster(request: pytest.FixtureRequest, tmp_path: Path, delay: str) -> Iterator[Cluster]:
    """SMPP1 and SMPP2 in a process each with their APIs, a 2 s lease, receipts after ``delay``."""
    scenario = _scenario(tmp_path, delay)
    lease = {"SMSC_SIM_CLUSTER_LEASE": str(LEASE)}
    with run_cluster(request, tmp_path, api=True, scenario=scenario, env=lease) as cluster:
        yield cluster


@pytest.fixture
def quick(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Receipts 200 ms after the submit_sm_resp."""
    yield from _cluster(request, tmp_path, "200ms")


@pytest.fixture
def slow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Receipts 0.3 to 4 s after the submit_sm_resp."""
    yield from _cluster(request, tmp_path, "{uniform: [300ms, 4s]}")


class Esme:
    """One ESME's raw connections: reads whole PDUs and answers every deliver_sm (unless told not to)."""

    def __init__(self) -> None:
        self.streams: dict[socket.socket, wire.PDUStream] = {}
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
        self.streams[connection] = wire.PDUStream()
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
                for header, body in self.streams[connection].feed(data):
                    if header.command_id == 0x00000005:
                        self._deliver_sm(connection, header, body)
                    elif keep:
                        others.append((header, body))
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
        for connection in self.streams:
            connection.close()


def test_receipts_of_smpp1_messages_reach_an_esme_bound_only_to_smpp2(quick: Cluster) -> None:
    """
    An ESME submits 30 messages through SMPP1 (bound as a transmitter there)
    and is bound as a receiver only to SMPP2: every receipt arrives on its
    SMPP2 session, each once.
    """
    ports = quick.ports
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        transmitter = esme.bind(ports["SMPP1"], 0x02)
        ids = esme.submit(transmitter, 30)
        deadline = time.monotonic() + ARRIVAL
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
    esme = Esme()
    try:
        receiver = esme.bind(quick.ports["SMPP2"], 0x01)
        for process, text in (("SMPP1", "through SMPP1"), ("SMPP2", "through SMPP2")):
            assert inject_mo(quick.apis[process], text)[0] in (200, 201, 202)
        deadline = time.monotonic() + ARRIVAL
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
    ports, processes = slow.ports, slow.processes
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
    output = processes["SMPP2"].terminate()
    assert "owed receipts taken over from a process that stopped" in output
    assert "Traceback" not in output


def test_receipts_cross_processes_again_after_a_redis_restart(quick: Cluster) -> None:
    """
    Redis restarted empty while an ESME is bound as a transmitter to SMPP1
    and as a receiver to SMPP2: once Redis is back, the receipts of messages
    submitted through SMPP1 reach the SMPP2 session again, each once, and
    neither process ended.
    """
    ports = quick.ports
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        transmitter = esme.bind(ports["SMPP1"], 0x02)
        quick.redis.restart()
        ids = esme.submit(transmitter, 10)
        deadline = time.monotonic() + 15
        while len(esme.receipts[receiver]) < 10 and time.monotonic() < deadline:
            esme.pump([receiver], 0.2)
        esme.pump([receiver], 1.0)
        assert sorted(esme.receipts[receiver]) == sorted(ids)
        assert quick.alive()
    finally:
        esme.close()


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
    ports, api1 = quick.ports, quick.apis["SMPP1"]
    esme = Esme()
    try:
        receiver = esme.bind(ports["SMPP2"], 0x01)
        transmitter = esme.bind(ports["SMPP1"], 0x02)
        ids = esme.submit(transmitter, 5)
        eventually(lambda: not esme.pump([receiver], 0.1) and len(esme.receipts[receiver]) >= 5, within=ARRIVAL)

        def receipts_acked() -> bool:
            esme.pump([receiver], 0.05)
            receipts = [api_get(api1, f"/api/v1/messages/{mid}")["receipts"] for mid in ids]
            return all(r and r[-1]["outcome"] == "acked" for r in receipts)

        eventually(receipts_acked, within=ARRIVAL)
        for mid in ids:
            message = api_get(api1, f"/api/v1/messages/{mid}")
            [receipt] = message["receipts"]
            assert (receipt["outcome"], receipt["status"], receipt["attempts"]) == ("acked", 0, 1)
            assert message["state"] == "DELIVERED"

        def inject(text: str) -> str:
            status, body = inject_mo(api1, text)
            assert status in (200, 201, 202), body
            [mid] = body["message_ids"]
            return str(mid)

        delivered = inject("answered")
        eventually(lambda: not esme.pump([receiver], 0.1) and esme.mo[receiver] == [b"answered"], within=ARRIVAL)
        eventually(lambda: api_get(api1, f"/api/v1/messages/{delivered}")["state"] == "DELIVERED", within=ARRIVAL)

        esme.answering[receiver] = False
        refused = inject("refused")
        eventually(lambda: not esme.pump([receiver], 0.1) and len(esme.mo[receiver]) == 2, within=ARRIVAL)
        receiver.sendall(wire.frame(0x80000005, esme.sequences[receiver][-1], wire.cstr(""), status=0x64))
        eventually(lambda: api_get(api1, f"/api/v1/messages/{refused}")["state"] == "UNDELIVERABLE", within=ARRIVAL)
        [entry] = api_get(api1, f"/api/v1/messages/{refused}")["receipts"]
        assert (entry["outcome"], entry["status"]) == ("failed", 0x64)
    finally:
        esme.close()
