"""
The provider topology end to end on a fake clock: clusters from config,
the bind quota across a cluster, where receipts go (origin, round-robin,
never across clusters), the pending queue, retries, concatenation split
across instances, every outage mode, ghost binds, instance state, and the
shipped ``outage-failover`` timeline.

Every ESME here is a small protocol speaking raw SMPP bytes (built with
:mod:`tests.wire`, independent of the project's codec) over an in-memory
connection to a real :class:`~smsc_sim.session.SMPPSession`
(:class:`~smsc_sim.testing.memory.MemorySMSC`), so what is asserted is what
an ESME would see on the wire, and no test waits for real time.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, Config, default_config
from smsc_sim.config_loader import load_config
from smsc_sim.service import build_service
from smsc_sim.smpp.receipt import parse_receipt
from smsc_sim.testing.memory import MemorySMSC
from tests import wire

REPO = Path(__file__).resolve().parent.parent

#: every message DELIVRD 1 s after its submit_sm_resp
FAST = """\
name: topology-fast
receipt:
  stat: DELIVRD
  delay: 1s
"""

BIND_TX, BIND_RX, BIND_TRX = 0x02, 0x01, 0x09
RECEIPTED_MESSAGE_ID = 0x001E


def temporary_file(case: SynchronousTestCase, text: str, name: str = "file.yaml") -> str:
    """Write ``text`` to a file removed after the test (outside the source tree); its path."""
    directory = tempfile.TemporaryDirectory(prefix="smsc-sim-topology-")
    case.addCleanup(directory.cleanup)
    path = Path(directory.name) / name
    path.write_text(text)
    return str(path)


class ESME(Protocol):
    """
    An ESME speaking raw bytes: it records every PDU it receives and answers
    deliver_sm (with ``deliver_status``, or not at all when ``None``),
    unbind and enquire_link as a well-behaved client does.
    """

    def __init__(self, deliver_status: int | None = 0, answer_unbind: bool = True) -> None:
        self.deliver_status = deliver_status
        self.answer_unbind = answer_unbind
        self.pdus: list[tuple[wire.Header, bytes]] = []
        self.lost: Failure | None = None
        self._stream = wire.PDUStream()
        self._sequence = 1

    def dataReceived(self, data: bytes) -> None:
        for header, body in self._stream.feed(data):
            self.pdus.append((header, body))
            if header.command_id == 0x05 and self.deliver_status is not None:
                self.send(wire.frame(0x80000005, header.sequence_number, b"\x00", self.deliver_status))
            elif header.command_id == 0x06 and self.answer_unbind:
                self.send(wire.frame(0x80000006, header.sequence_number))
            elif header.command_id == 0x15:
                self.send(wire.frame(0x80000015, header.sequence_number))

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:
        self.lost = reason

    def send(self, data: bytes) -> int:
        """Write one PDU; returns its sequence number (read from the bytes)."""
        assert self.transport is not None
        self.transport.write(data)
        return int(struct.unpack_from(">I", data, 12)[0])

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def responses(self, command_id: int) -> list[tuple[wire.Header, bytes]]:
        return [(h, b) for h, b in self.pdus if h.command_id == command_id]

    def bind_status(self) -> int | None:
        """The status of the last bind response, or None when none came."""
        found = [h for h, _ in self.pdus if h.command_id in (0x80000001, 0x80000002, 0x80000009)]
        return found[-1].command_status if found else None

    def message_ids(self) -> list[str]:
        return [wire.read_cstr(body)[0] for _, body in self.responses(0x80000004)]

    def receipts(self) -> list[dict[str, Any]]:
        """Every deliver_sm received, parsed, with ``id`` (receipted_message_id) and ``stat``."""
        found = []
        for _, body in self.responses(0x05):
            fields = wire.deliver_sm_fields(body)
            tlvs: dict[int, bytes] = fields["tlvs"]  # type: ignore[assignment]
            short_message: bytes = fields["short_message"]  # type: ignore[assignment]
            text = parse_receipt(short_message.decode("latin-1"))
            fields["id"] = tlvs.get(RECEIPTED_MESSAGE_ID, b"").rstrip(b"\x00").decode()
            fields["stat"] = text.get("stat")
            found.append(fields)
        return found

    def receipt_ids(self) -> list[str]:
        return [str(r["id"]) for r in self.receipts()]

    @property
    def names(self) -> list[int]:
        return [h.command_id for h, _ in self.pdus]


class TopologyCase(SynchronousTestCase):
    """Builds a MemorySMSC on the fast scenario and connects ESMEs to it."""

    def scenario(self, text: str = FAST) -> str:
        return temporary_file(self, text, "scenario.yaml")

    def start(self, config: Config | None = None, scenario: str | None = None, **core: Any) -> MemorySMSC:
        config = config if config is not None else default_config()
        if core:
            config = dataclasses.replace(config, core=dataclasses.replace(config.core, **core))
        smsc = MemorySMSC(config, scenario=scenario or self.scenario())
        self.addCleanup(smsc.stop)
        self.smsc = smsc
        return smsc

    def esme(self, instance: str, bind: int | None = BIND_TRX, **options: Any) -> ESME:
        """A connected ESME, bound (and the bind answered) unless ``bind`` is None."""
        client = ESME(**options)
        self.smsc.connect(client, instance)
        if bind is not None:
            client.send(wire.bind(bind, client.next_sequence()))
            self.smsc.flush()
        return client

    def submit(self, client: ESME, **fields: Any) -> str:
        """Submit one message asking for a receipt; returns its message id."""
        fields.setdefault("registered_delivery", 1)
        before = len(client.message_ids())
        client.send(wire.submit_sm(client.next_sequence(), **fields))
        self.smsc.flush()
        ids = client.message_ids()
        self.assertEqual(len(ids), before + 1, "no submit_sm_resp with a message id")
        return ids[-1]

    def state(self, message_id: str) -> str:
        found = self.smsc.message(message_id)
        assert found is not None
        return str(found["state"])


class ClusterConfigTests(TopologyCase):
    def test_default_topology(self) -> None:
        """With no configuration SMPP1 and SMPP2 share the core of cluster NA and SMPP0 has its own."""
        simulator = self.start().simulator
        self.assertEqual(sorted(simulator.cores), ["NA", "SMPP0"])
        self.assertIs(simulator.instance("SMPP1").core, simulator.instance("SMPP2").core)
        self.assertIsNot(simulator.instance("SMPP0").core, simulator.instance("SMPP1").core)
        self.assertEqual(
            {name: i.describe()["cluster"] for name, i in simulator.instances.items()},
            {"SMPP1": "NA", "SMPP2": "NA", "SMPP0": "SMPP0"},
        )

    def test_layout_from_a_config_file(self) -> None:
        """
        A configuration file with SMPP3/SMPP4 in cluster APAC and a lone LAB
        instance gives two cores, listeners on the given ports, and one bind
        quota across SMPP3 and SMPP4.
        """
        path = temporary_file(
            self,
            "instances:\n"
            "  - {name: SMPP3, cluster: APAC, endpoints: ['tcp:9003:interface=127.0.0.1']}\n"
            "  - {name: SMPP4, cluster: APAC, endpoints: ['tcp:9004:interface=127.0.0.1']}\n"
            "  - {name: LAB, endpoints: ['tcp:9000:interface=127.0.0.1']}\n"
            "accounts:\n"
            "  - {system_id: apac, password: secret}\n",
        )
        config = load_config(path, {}, {})
        reactor = MemoryReactorClock()
        simulator = build_service(dataclasses.replace(config, api_endpoint="", scenario=self.scenario()), reactor)
        simulator.startService()
        self.addCleanup(simulator.stopService)
        self.assertEqual(sorted(simulator.cores), ["APAC", "LAB"])
        self.assertEqual(sorted((port, host) for port, _, _, host in reactor.tcpServers), [
            (9000, "127.0.0.1"), (9003, "127.0.0.1"), (9004, "127.0.0.1"),
        ])  # fmt: skip

        self.start(config)
        statuses = []
        for instance in ("SMPP3", "SMPP4", "SMPP4", "SMPP3", "LAB"):
            client = ESME()
            self.smsc.connect(client, instance)
            client.send(wire.bind(BIND_TRX, 1, system_id="apac", password="secret"))
            self.smsc.flush()
            statuses.append(client.bind_status())
        self.assertEqual(statuses, [0, 0, 0x05, 0x05, 0])

    def test_single_instance(self) -> None:
        """A configuration of one instance is one cluster of one; its receipts come back through it."""
        config = dataclasses.replace(
            default_config(), instances=(dataclasses.replace(default_config().instances[0], name="ONLY", cluster="ONLY"),)
        )
        smsc = self.start(config)
        self.assertEqual(list(smsc.simulator.cores), ["ONLY"])
        client = self.esme("ONLY")
        message_id = self.submit(client)
        smsc.advance(1)
        self.assertEqual(client.receipt_ids(), [message_id])


class QuotaTests(TopologyCase):
    def test_quota_counts_binds_on_every_instance_of_the_cluster(self) -> None:
        """
        Two binds of one account, one on SMPP1 and one on SMPP2, fill the quota
        of 2: a third gets ESME_RALYBND on either; SMPP0 has its own quota; a
        clean unbind frees a slot at once.
        """
        self.start()
        first, second = self.esme("SMPP1"), self.esme("SMPP2")
        self.assertEqual((first.bind_status(), second.bind_status()), (0, 0))
        self.assertEqual(self.esme("SMPP1").bind_status(), 0x05)
        self.assertEqual(self.esme("SMPP2", bind=BIND_RX).bind_status(), 0x05)
        self.assertEqual(self.esme("SMPP0").bind_status(), 0)
        first.send(wire.frame(0x06, first.next_sequence()))
        self.smsc.flush()
        self.assertIn(0x80000006, first.names)
        self.assertEqual(self.esme("SMPP1").bind_status(), 0)


class RoutingTests(TopologyCase):
    def test_receipt_returns_to_the_submitting_session(self) -> None:
        """With routing origin, each transceiver gets the receipts of what it submitted, on its own instance."""
        smsc = self.start()
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        ids_one = [self.submit(one) for _ in range(2)]
        ids_two = [self.submit(two) for _ in range(2)]
        smsc.advance(1)
        self.assertEqual((one.receipt_ids(), two.receipt_ids()), (ids_one, ids_two))

    def test_origin_falls_back_to_same_instance_then_any(self) -> None:
        """
        A transmitter's receipts go to a receiver on its instance (SMPP1); once
        that receiver unbinds they go to the receiver on SMPP2.
        """
        config = dataclasses.replace(default_config(), accounts=(AccountSettings("smppclient1", "password", max_binds=3),))
        smsc = self.start(config)
        tx = self.esme("SMPP1", bind=BIND_TX)
        rx_other, rx_same = self.esme("SMPP2", bind=BIND_RX), self.esme("SMPP1", bind=BIND_RX)
        first = self.submit(tx)
        smsc.advance(1)
        self.assertEqual((rx_same.receipt_ids(), rx_other.receipt_ids()), ([first], []))
        rx_same.send(wire.frame(0x06, rx_same.next_sequence()))
        second = self.submit(tx)
        smsc.advance(1)
        self.assertEqual((rx_same.receipt_ids(), rx_other.receipt_ids()), ([first], [second]))

    def test_round_robin(self) -> None:
        """With routing round-robin, receipts of messages all submitted on SMPP1 alternate between SMPP1 and SMPP2."""
        smsc = self.start(routing="round-robin")
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        ids = [self.submit(one) for _ in range(4)]
        smsc.advance(1)
        self.assertEqual((len(one.receipt_ids()), len(two.receipt_ids())), (2, 2))
        self.assertEqual(sorted(one.receipt_ids() + two.receipt_ids()), sorted(ids))

    def test_smpp0_receipts_never_leave_smpp0(self) -> None:
        """
        A message submitted on SMPP0 is never receipted through SMPP1 or SMPP2,
        even when the account has a receiver there: the receipt waits for a
        receiver on SMPP0.
        """
        smsc = self.start()
        na = self.esme("SMPP1", bind=BIND_RX)
        tx = self.esme("SMPP0", bind=BIND_TX)
        message_id = self.submit(tx)
        smsc.advance(5)
        self.assertEqual(na.receipts(), [])
        self.assertEqual(smsc.simulator.cores["SMPP0"].stats()["pending"], 1)
        rx = self.esme("SMPP0", bind=BIND_RX)
        self.assertEqual((rx.receipt_ids(), na.receipts()), ([message_id], []))


class PendingAndRetryTests(TopologyCase):
    def test_receipts_wait_in_order_for_a_receiver_anywhere_in_the_cluster(self) -> None:
        """Receipts due while no receiver is bound wait, then arrive in submit order on a receiver bound to SMPP2."""
        smsc = self.start()
        tx = self.esme("SMPP1", bind=BIND_TX)
        ids = [self.submit(tx, destination=f"4477009000{n:02d}") for n in range(3)]
        smsc.advance(10)
        self.assertEqual(smsc.simulator.cores["NA"].stats()["pending"], 3)
        self.assertEqual([self.state(i) for i in ids], ["DELIVERED"] * 3)
        rx = self.esme("SMPP2", bind=BIND_RX)
        self.assertEqual(rx.receipt_ids(), ids)

    def test_pending_is_bounded_and_expires(self) -> None:
        """
        With pending_max 2 the oldest waiting receipt is dropped for a third;
        receipts waiting longer than pending_expiry are dropped as expired, and
        the message's delivery log says so.
        """
        smsc = self.start(pending_max=2, pending_expiry=30)
        tx = self.esme("SMPP1", bind=BIND_TX)
        ids = [self.submit(tx) for _ in range(3)]
        smsc.advance(1)
        stats = smsc.simulator.cores["NA"].stats()
        self.assertEqual((stats["pending"], stats["pending_dropped"]), (2, 1))
        self.assertEqual(smsc.message(ids[0])["receipts"][-1]["outcome"], "dropped")  # type: ignore[index]
        smsc.advance(31)
        rx = self.esme("SMPP2", bind=BIND_RX)
        self.assertEqual(rx.receipts(), [])
        self.assertEqual(smsc.simulator.cores["NA"].stats()["pending_expired"], 2)
        self.assertEqual([smsc.message(i)["receipts"][-1]["outcome"] for i in ids[1:]], ["expired"] * 2)  # type: ignore[index]

    def test_temporary_status_is_retried_on_another_bind(self) -> None:
        """With round-robin, a receipt answered ESME_RTHROTTLED on SMPP1 is retried after the backoff on SMPP2."""
        smsc = self.start(routing="round-robin")
        one, two = self.esme("SMPP1", deliver_status=0x58), self.esme("SMPP2")
        message_id = self.submit(one)
        smsc.advance(1)
        self.assertEqual((one.receipt_ids(), two.receipt_ids()), ([message_id], []))
        smsc.advance(5)
        self.assertEqual(two.receipt_ids(), [message_id])
        log = smsc.message(message_id)["receipts"]  # type: ignore[index]
        self.assertEqual((log[-1]["outcome"], log[-1]["attempts"]), ("acked", 2))

    def test_unanswered_receipt_is_retried_on_the_other_instance(self) -> None:
        """
        A receipt the SMPP1 session never answers fails when that connection
        drops, and the retry goes to the account's bind on SMPP2: delivered once.
        """
        smsc = self.start()
        silent, two = self.esme("SMPP1", deliver_status=None), self.esme("SMPP2")
        message_id = self.submit(silent)
        smsc.advance(1)
        self.assertEqual(silent.receipt_ids(), [message_id])
        smsc.connections[0].disconnect()
        smsc.advance(5)
        self.assertEqual(two.receipt_ids(), [message_id])
        self.assertEqual(smsc.message(message_id)["receipts"][-1]["outcome"], "acked")  # type: ignore[index]


class ConcatenationTests(TopologyCase):
    def parts(self, first: ESME, second: ESME) -> list[str]:
        texts = [b"\x05\x00\x03\x2a\x02\x01" + b"a" * 153, b"\x05\x00\x03\x2a\x02\x02" + b"b" * 20]
        return [self.submit(client, esm_class=0x40, text=text) for client, text in zip((first, second), texts)]

    def test_parts_split_across_smpp1_and_smpp2_end_undeliverable(self) -> None:
        """
        The two parts of one long message sent one through SMPP1 and one
        through SMPP2 are never reassembled: at the close of the reassembly
        window both end UNDELIVERABLE and each session gets an UNDELIV receipt.
        """
        smsc = self.start(reassembly_window=60)
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        ids = self.parts(one, two)
        smsc.advance(59)
        self.assertEqual(one.receipts() + two.receipts(), [])
        smsc.advance(1)
        self.assertEqual([r["stat"] for r in one.receipts() + two.receipts()], ["UNDELIV", "UNDELIV"])
        self.assertEqual((one.receipt_ids(), two.receipt_ids()), ([ids[0]], [ids[1]]))
        self.assertEqual([self.state(i) for i in ids], ["UNDELIVERABLE"] * 2)
        self.assertIn("other instances", str(smsc.message(ids[0])["reason"]))  # type: ignore[index]

    def test_parts_through_one_instance_are_delivered(self) -> None:
        """The same two parts both sent through SMPP1 are reassembled and DELIVRD."""
        smsc = self.start()
        one = self.esme("SMPP1")
        self.parts(one, one)
        smsc.advance(1)
        self.assertEqual([r["stat"] for r in one.receipts()], ["DELIVRD", "DELIVRD"])


class OutageTests(TopologyCase):
    def test_crash_reroutes_receipts_to_the_other_instance(self) -> None:
        """
        SMPP1 crashes after accepting messages and before their receipts are
        due: its connections drop with no unbind, and every receipt of a
        message submitted via SMPP1 arrives once through SMPP2.
        """
        smsc = self.start()
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        ids_one = [self.submit(one) for _ in range(3)]
        ids_two = [self.submit(two) for _ in range(2)]
        smsc.start_outage("SMPP1", "crash")
        smsc.flush()
        self.assertIsNotNone(one.lost)
        self.assertNotIn(0x06, one.names)
        smsc.advance(10)
        self.assertEqual(one.receipts(), [])
        self.assertEqual(sorted(two.receipt_ids()), sorted(ids_one + ids_two))
        self.assertEqual(smsc.simulator.instance("SMPP1").describe()["listening"], [])

    def test_graceful_outage_of_smpp0_queues_until_rebind(self) -> None:
        """
        A graceful outage of SMPP0 unbinds its client and stops listening; the
        receipts due meanwhile wait, and reach the client when it rebinds after
        the recovery.
        """
        smsc = self.start()
        client = self.esme("SMPP0")
        ids = [self.submit(client) for _ in range(2)]
        done = smsc.start_outage("SMPP0", "graceful", duration=30)
        smsc.flush()
        self.assertEqual(self.successResultOf(done), None)
        self.assertIn(0x06, client.names)
        self.assertIsNotNone(client.lost)
        smsc.advance(10)
        self.assertEqual(client.receipts(), [])
        self.assertEqual(smsc.simulator.cores["SMPP0"].stats()["pending"], 2)
        smsc.advance(20)
        self.assertEqual(smsc.simulator.instance("SMPP0").describe()["state"], "up")
        again = self.esme("SMPP0")
        self.assertEqual(again.receipt_ids(), ids)

    def test_blackhole_answers_nothing_and_deliveries_go_elsewhere(self) -> None:
        """
        A blackholed SMPP1 answers nothing (not even enquire_link), accepts new
        connections and ignores their binds; receipts go to SMPP2 meanwhile.
        After recovery the old session answers again.
        """
        smsc = self.start()
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        message_id = self.submit(one)
        smsc.start_outage("SMPP1", "blackhole")
        count = len(one.pdus)
        one.send(wire.frame(0x15, one.next_sequence()))
        late = self.esme("SMPP1")
        smsc.advance(40)
        self.assertEqual((len(one.pdus), late.pdus), (count, []))
        self.assertIsNone(one.lost)
        self.assertIsNone(late.lost)
        self.assertEqual(two.receipt_ids(), [message_id])
        smsc.end_outage("SMPP1")
        one.send(wire.frame(0x15, 77))
        smsc.flush()
        header, _ = one.pdus[-1]
        self.assertEqual((header.command_id, header.command_status, header.sequence_number), (0x80000015, 0, 77))

    def test_bind_hang_and_reject_binds(self) -> None:
        """
        During bind-hang new binds get no answer while bound sessions go on;
        during reject-binds new binds get the configured status.
        """
        smsc = self.start()
        bound = self.esme("SMPP2")
        smsc.start_outage("SMPP2", "bind-hang")
        hung = self.esme("SMPP2")
        smsc.advance(5)
        self.assertIsNone(hung.bind_status())
        self.submit(bound)
        smsc.start_outage("SMPP2", "reject-binds", status=0x0D)
        self.assertEqual(self.esme("SMPP2", bind=BIND_RX).bind_status(), 0x0D)
        smsc.end_outage("SMPP2")
        self.assertEqual(self.esme("SMPP2").bind_status(), 0)

    def test_slow_adds_latency(self) -> None:
        """A slow outage of 2 s delays the submit_sm_resp by 2 s; after it ends answers are immediate."""
        smsc = self.start()
        client = self.esme("SMPP1")
        smsc.start_outage("SMPP1", "slow", latency=2)
        client.send(wire.submit_sm(client.next_sequence()))
        smsc.advance(1.9)
        self.assertEqual(client.message_ids(), [])
        smsc.advance(0.1)
        self.assertEqual(len(client.message_ids()), 1)
        smsc.end_outage("SMPP1")
        self.submit(client)

    def test_ghost_bind_holds_the_slot_after_an_abrupt_disconnect(self) -> None:
        """
        With ghost_bind_hold 30 s, a bound ESME whose connection drops without
        unbind still holds its slot: a fast rebind gets ESME_RALYBND, one after
        the hold succeeds (when_released fires then). A clean unbind leaves
        no ghost.
        """
        smsc = self.start(ghost_bind_hold=30)
        self.esme("SMPP1")
        self.esme("SMPP2")
        smsc.connections[0].disconnect()
        released = smsc.simulator.cores["NA"].binds.when_released("smppclient1")
        self.assertEqual(self.esme("SMPP1").bind_status(), 0x05)
        smsc.advance(29)
        self.assertEqual(self.esme("SMPP1").bind_status(), 0x05)
        self.assertNoResult(released)
        smsc.advance(1)
        self.assertIsNone(self.successResultOf(released))
        fresh = self.esme("SMPP1")
        self.assertEqual(fresh.bind_status(), 0)
        fresh.send(wire.frame(0x06, fresh.next_sequence()))
        smsc.flush()
        self.assertEqual(self.esme("SMPP1").bind_status(), 0)

    def test_instance_state_over_time(self) -> None:
        """describe() shows the state, since when, the sessions and where the instance listens, through an outage."""
        smsc = self.start()
        smsc.reactor.advance(100)
        self.esme("SMPP1")
        instance = smsc.simulator.instance("SMPP1")
        up = instance.describe()
        self.assertEqual((up["state"], up["sessions"], up["cluster"]), ("up", 1, "NA"))
        smsc.start_outage("SMPP1", "crash", duration=60)
        smsc.flush()
        down = instance.describe()
        self.assertEqual((down["state"], down["since"], down["sessions"], down["listening"]), ("crash", 100.0, 0, []))
        smsc.advance(60)
        back = instance.describe()
        self.assertEqual((back["state"], back["since"]), ("up", 160.0))
        self.assertEqual(len(back["listening"]), 1)


class OutageFailoverScenarioTests(TopologyCase):
    #: (from, to, instance, mode) of each outage in the first 600 s cycle, and the first of the second
    OUTAGES = [
        (30, 90, "SMPP1", "crash"),
        (150, 210, "SMPP2", "graceful"),
        (270, 330, "SMPP1", "reject-binds"),
        (390, 450, "SMPP2", "bind-hang"),
        (510, 570, "SMPP0", "blackhole"),
        (630, 690, "SMPP1", "crash"),
    ]

    def expected(self, t: int) -> dict[str, str]:
        states = {"SMPP1": "up", "SMPP2": "up", "SMPP0": "up"}
        for start, end, instance, mode in self.OUTAGES:
            if start <= t < end:
                states[instance] = mode
        return states

    def test_timeline_on_a_fake_reactor(self) -> None:
        """
        The shipped outage-failover scenario, run by build_service on a
        MemoryReactorClock (HTTP API included), puts each instance in its
        outage at its time for 60 s, with the listeners of crashed and
        gracefully stopped instances closed, and starts over after 600 s;
        stopping leaves nothing on the clock.
        """
        reactor = MemoryReactorClock()
        config = dataclasses.replace(default_config(), scenario="outage-failover")
        simulator = build_service(config, reactor)
        simulator.startService()
        self.assertEqual(sorted(port for port, *_ in reactor.tcpServers), [2775, 2776, 2777, 8775])
        for t in range(0, 661, 30):
            if t:
                reactor.advance(30)
            states = {name: i.describe()["state"] for name, i in simulator.instances.items()}
            self.assertEqual(states, self.expected(t), f"at {t} s")
            for name, instance in simulator.instances.items():
                listening = bool(instance.describe()["listening"])
                self.assertEqual(listening, states[name] not in ("crash", "graceful"), f"{name} at {t} s")
                if states[name] != "up":
                    started = max(start for start, _, who, _ in self.OUTAGES if who == name and start <= t)
                    self.assertEqual(instance.describe()["since"], float(started))
        self.assertEqual(simulator.instance("SMPP1").reject_status, 0x0D)
        self.assertEqual(simulator.instance("SMPP1").describe()["since"], 630.0)
        done = simulator.stopService()
        self.assertEqual(self.successResultOf(done), None)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_rehearsal_with_a_client_bound_to_both_instances(self) -> None:
        """
        Rehearsing the provider's advice: an ESME bound to SMPP1 and SMPP2
        loses SMPP1 at 30 s (no unbind) and keeps getting every receipt through
        SMPP2; it rebinds to SMPP1 at 90 s; SMPP2's graceful shutdown at 150 s
        sends it an unbind; at 270 s SMPP1 refuses new binds with
        ESME_RBINDFAIL while the existing bind keeps working.
        """
        smsc = self.start(scenario="outage-failover")
        one, two = self.esme("SMPP1"), self.esme("SMPP2")
        smsc.advance(29)
        ids = [self.submit(one) for _ in range(3)]  # receipts due 1-5 s later, after the crash
        smsc.advance(1)
        self.assertIsNotNone(one.lost)
        self.assertNotIn(0x06, one.names)
        smsc.advance(10)
        self.assertEqual(sorted(two.receipt_ids()), sorted(ids))
        smsc.advance(50)
        one = self.esme("SMPP1")
        self.assertEqual(one.bind_status(), 0)
        smsc.advance(60)
        self.assertIn(0x06, two.names)
        self.assertIsNotNone(two.lost)
        message_id = self.submit(one)
        smsc.advance(5)
        self.assertEqual(one.receipt_ids()[-1:], [message_id])
        smsc.advance(115)
        self.assertEqual(self.esme("SMPP1", bind=BIND_RX).bind_status(), 0x0D)
        self.submit(one)


class DocTests(SynchronousTestCase):
    DOC = REPO / "docs" / "topology.md"

    def test_configuration_examples_load(self) -> None:
        """Every YAML example of docs/topology.md is a valid configuration file."""
        blocks = re.findall(r"```yaml\n(.*?)```", self.DOC.read_text(), re.S)
        self.assertGreaterEqual(len(blocks), 3)
        for number, block in enumerate(blocks):
            config = load_config(temporary_file(self, block), {}, {})
            self.assertTrue(config.instances, f"example {number + 1}")

    def test_python_examples_compile(self) -> None:
        """Every Python example of docs/topology.md is valid Python."""
        blocks = re.findall(r"```python\n(.*?)```", self.DOC.read_text(), re.S)
        self.assertGreaterEqual(len(blocks), 3)
        for number, block in enumerate(blocks):
            compile(block, f"docs/topology.md python example {number + 1}", "exec")
