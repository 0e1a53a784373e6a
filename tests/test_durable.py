"""
The durable store (``--store sqlite:PATH``): the journal, the restore path,
and a ``kill -9`` of ``twistd -n smsc-sim`` between a submit_sm_resp and its
receipt.

Unit tests drive one core per simulated process on a ``task.Clock``: a
"kill" closes the journal without committing what waits, as a real kill
would, and a "restart" builds a new core on the same file.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, Config, CoreSettings, default_config
from smsc_sim.contracts import ReceiptPlan, ReceiptStep, Reply
from smsc_sim.core.journal import NO_JOURNAL
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.durable.cluster import ClusterJournal
from smsc_sim.durable.restore import restore
from smsc_sim.durable.sqlite import SQLiteJournal, StoreError, open_journal
from smsc_sim.events import EventBus
from smsc_sim.simulator import Simulator, SMPPServerFactory
from smsc_sim.smpp.constants import CommandId, CommandStatus, Tag
from smsc_sim.smpp.pdu import DestAddress, make_pdu
from smsc_sim.smpp.receipt import parse_receipt
from tests import wire
from tests.process_harness import EPHEMERAL, SmscProcess
from tests.test_core_fakes import T0, FakeSession, ScriptedScenario, instances

REPO = Path(__file__).resolve().parent.parent
RECEIPTED = int(Tag.receipted_message_id)
DELIVRD_AFTER_3S = ReceiptPlan(steps=(ReceiptStep(3.0, "DELIVRD", 0),))


class Process:
    """One life of a simulated process: a core of cluster NA with the durable store at ``path``."""

    def __init__(
        self,
        path: str,
        now: float = T0,
        plan: ReceiptPlan = DELIVRD_AFTER_3S,
        compact_after: int = 100_000,
        **core_settings: Any,
    ) -> None:
        self.clock = Clock()
        self.clock.rightNow = now
        self.scenario = ScriptedScenario(plan=plan)
        self.config = Config(
            instances=instances(),
            accounts=(AccountSettings("esme", "secret", throughput=0, max_binds=10),),
            core=dataclasses.replace(CoreSettings(), **core_settings),
        )
        self.journal = SQLiteJournal(
            path, self.clock, final_ttl=self.config.core.store_final_ttl, compact_after=compact_after
        )
        members = self.config.clusters()["NA"]
        # wired as the simulator wires it
        cluster = ClusterJournal(self.journal, "NA", {member.name: member.latency for member in members})
        core = SMSCCore("NA", self.clock, self.config, members, self.scenario, EventBus(self.clock), journal=cluster)
        cluster.attach_store(core.store)
        self.core = core
        self.restored = restore(
            cluster,
            clock=self.clock,
            final_ttl=self.config.core.store_final_ttl,
            ids=core.ids,
            store=core.store,
            account=core.accounts.get,
            reassembler=core.reassembler,
            lifecycle=core.lifecycle,
            router=core.router,
        )
        self.journal.loaded()
        self._ids = 0

    def bound(self, command: int = CommandId.bind_transceiver) -> FakeSession:
        """A session bound to SMPP1 (its bind_resp written)."""
        self._ids += 1
        session = FakeSession(self._ids)
        reply = self.core.bind(session, make_pdu(command, 1, system_id="esme", password="secret", interface_version=0x34))
        # the in-memory quota answers at once
        assert isinstance(reply, Reply), reply
        assert reply.pdu is not None and reply.pdu.command_status == 0
        if reply.on_sent is not None:
            reply.on_sent()
        return session

    def write(self, reply: Reply) -> Reply:
        """Do what the session does with a reply: wait its delay on the clock, write, call on_sent."""
        self.clock.advance(reply.delay)
        if reply.pdu is not None and reply.on_sent is not None:
            reply.on_sent()
        return reply

    def request(self, session: FakeSession, command: int = CommandId.submit_sm, **params: Any) -> Reply:
        """A request as the session hands it to the core (the reply not written yet)."""
        if command in (CommandId.submit_sm, CommandId.data_sm, CommandId.submit_multi, CommandId.replace_sm):
            params.setdefault("source_addr", "447700900001")
            params.setdefault("source_addr_ton", 1)
            params.setdefault("source_addr_npi", 1)
        if command in (CommandId.submit_sm, CommandId.data_sm):
            params.setdefault("destination_addr", "447700900002")
            params.setdefault("dest_addr_ton", 1)
            params.setdefault("dest_addr_npi", 1)
        if command in (CommandId.submit_sm, CommandId.data_sm, CommandId.submit_multi):
            params.setdefault("registered_delivery", 1)
        tlvs = params.pop("tlvs", None)
        reply = self.core.request(session, make_pdu(command, 7, tlvs=tlvs, **params))
        # nothing here is shared with another process, so the core answers at once
        assert isinstance(reply, Reply), reply
        return reply

    def submit(self, session: FakeSession, **params: Any) -> str:
        """Submit, let the reply be written; the message id."""
        reply = self.write(self.request(session, short_message=params.pop("short_message", b"hello"), **params))
        assert reply.pdu is not None and reply.pdu.command_status == 0, reply.pdu
        message_id: str = reply.pdu.params["message_id"]
        return message_id

    def advance(self, seconds: float) -> None:
        """Let time pass in 10 ms steps (task.Clock runs everything due in one advance at its end time)."""
        steps = int(round(seconds / 0.01))
        self.clock.pump([0.01] * steps)
        self.clock.advance(seconds - 0.01 * steps)

    def kill(self) -> None:
        """What kill -9 does: nothing more is committed; the file is left as it is."""
        self.journal.close(flush=False)
        self.core.stop()

    def messages(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in self.core.store.values()]


def receipt_ids(session: FakeSession) -> list[str]:
    """receipted_message_id of every receipt delivered to the session."""
    return [pdu.tlvs[RECEIPTED].rstrip(b"\x00").decode() for pdu in session.pdus if pdu.params["esm_class"] & 0x04]


class JournalTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()

    def test_new_file_gets_the_schema_in_wal_mode(self) -> None:
        """A new store file is created with its tables, marked as an smsc-sim store, in WAL mode."""
        Process(self.path).kill()
        db = sqlite3.connect(self.path)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.assertEqual(tables, {"meta", "log", "snapshot", "sqlite_sequence"})
        self.assertEqual(db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone(), ("2",))
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone(), ("wal",))
        db.close()

    def test_memory_store_has_no_journal(self) -> None:
        """The default store is memory only: no journal, and the cores are given the one that keeps nothing."""
        self.assertIsNone(open_journal("memory", Clock()))
        simulator = Simulator(dataclasses.replace(default_config(), api_endpoint=""), MemoryReactorClock())
        self.assertIsNone(simulator.journal)
        self.assertIs(simulator.cores["NA"].journal, NO_JOURNAL)

    def test_unusable_paths_give_a_clear_message(self) -> None:
        """A store that cannot be used is refused at start with a message naming it and saying why."""
        os.makedirs(self.path)
        garbage = os.path.join(self.path, "garbage.db")
        with open(garbage, "wb") as stream:
            stream.write(b"this is not a database" * 100)
        foreign = os.path.join(self.path, "foreign.db")
        db = sqlite3.connect(foreign)
        db.execute("CREATE TABLE accounts (name TEXT)")
        db.close()
        cases = {
            os.path.join(self.path, "no", "such", "dir.db"): "cannot open",
            self.path: "cannot",
            garbage: "file is not a database",
            foreign: "not an smsc-sim store (tables accounts)",
        }
        for path, why in cases.items():
            error = self.assertRaises(StoreError, SQLiteJournal, path, Clock())
            self.assertIn(f"store sqlite:{path}: ", str(error))
            self.assertIn(why, str(error))
        self.assertIn("unknown", str(self.assertRaises(StoreError, open_journal, "redis:x", Clock())))

    def test_damaged_store_is_refused(self) -> None:
        """
        A store whose journal was damaged, or altered to hold anything but
        plain JSON values (a pickled function), is refused at start: the
        simulator never runs code from a store file.  (tests/test_durable_rows.py
        tries every kind of damage.)
        """
        process = Process(self.path)
        process.submit(process.bound())
        process.kill()
        for body, why in (
            ("[garbage", "not JSON (Expecting value at character 1)"),
            (pickle.dumps([["W", os.system]]), "a pickle: the format of an older smsc-sim, which this one does not read"),
        ):
            db = sqlite3.connect(self.path)
            db.execute("UPDATE log SET body = ?", (body,))
            db.commit()
            db.close()
            error = self.assertRaises(StoreError, SQLiteJournal, self.path, Clock())
            self.assertEqual(str(error), f"store sqlite:{self.path}: damaged (log row 1: {why})")

    def test_store_in_use_is_refused(self) -> None:
        """A second simulator on a store in use is refused; once the first is gone the store opens."""
        first = SQLiteJournal(self.path, Clock())
        error = self.assertRaises(StoreError, SQLiteJournal, self.path, Clock())
        self.assertIn("in use by another process", str(error))
        first.close()
        SQLiteJournal(self.path, Clock()).close()

    def test_simulator_refuses_an_unusable_store(self) -> None:
        """The simulator does not start on a store it cannot use; the error says which and why."""
        config = dataclasses.replace(default_config(), api_endpoint="", store=f"sqlite:{self.path}/x/y.db")
        error = self.assertRaises(StoreError, Simulator, config, MemoryReactorClock())
        self.assertIn(f"store sqlite:{self.path}/x/y.db: cannot open", str(error))

    def test_submits_of_one_turn_share_one_commit_before_their_replies(self) -> None:
        """
        Twenty submits read in one clock turn are acknowledged after one
        commit that holds all twenty, and not before it.
        """
        process = Process(self.path)
        session = process.bound()
        replies = [process.request(session, short_message=b"hi") for _ in range(20)]
        self.assertEqual(process.journal.stored("NA"), 0)
        self.assertTrue(all(reply.delay > 0 for reply in replies))
        commit = process.clock.getDelayedCalls()[0]
        self.assertTrue(all(process.clock.seconds() + reply.delay > commit.getTime() for reply in replies))
        process.clock.advance(0)
        self.assertEqual((process.journal.stored("NA"), process.journal.commits), (20, 1))

    def test_query_is_not_held(self) -> None:
        """A request that accepts no message (query_sm) is answered at once."""
        process = Process(self.path)
        session = process.bound()
        message_id = process.submit(session)
        reply = process.request(session, CommandId.query_sm, message_id=message_id)
        self.assertEqual(reply.delay, 0.0)

    def test_submit_sm_resp_leaves_only_after_the_commit(self) -> None:
        """Through a real session: the submit_sm_resp bytes are written once the message is on disk."""
        reactor = MemoryReactorClock()
        reactor.advance(T0)
        config = dataclasses.replace(default_config(), api_endpoint="", store=f"sqlite:{self.path}")
        simulator = Simulator(config, reactor, scenario_loader=lambda name, clock, seed: ScriptedScenario())
        simulator.startService()
        journal = simulator.journal
        assert journal is not None
        stored = journal.stored
        writes: list[tuple[int, int]] = []

        class Watched(StringTransport):
            def write(self, data: bytes) -> None:
                writes.append((int.from_bytes(data[4:8], "big"), stored("NA")))
                super().write(data)

        session = SMPPServerFactory(simulator, simulator.instances["SMPP1"]).buildProtocol(None)
        session.makeConnection(Watched(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000)))
        session.dataReceived(wire.bind() + wire.submit_sm())
        self.assertEqual(writes, [(0x80000009, 0)])
        reactor.advance(0.001)
        self.assertEqual(writes, [(0x80000009, 0), (0x80000004, 1)])
        stopped = simulator.stopService()
        session.connectionLost()
        self.successResultOf(stopped)
        self.assertTrue(journal.closed)

    def test_failed_commit_resets_waiting_sessions_and_refuses_submits(self) -> None:
        """
        When a commit fails, the sessions whose replies waited for it are
        reset (no submit_sm_resp leaves), further submits get ESME_RSYSERR,
        and once commits work again the waiting messages are written and
        submits are accepted.
        """
        process = Process(self.path)
        session = process.bound()
        broken = [True]
        commit = process.journal._commit

        def failing_commit(*args: Any) -> None:
            if broken[0]:
                raise sqlite3.OperationalError("disk I/O error")
            commit(*args)

        process.journal._commit = failing_commit  # type: ignore[method-assign,assignment]
        process.request(session, short_message=b"lost?")
        process.advance(0)
        self.assertTrue(session.aborted)
        refused = process.request(session, short_message=b"later")
        assert refused.pdu is not None
        self.assertEqual(refused.pdu.command_status, CommandStatus.ESME_RSYSERR)
        broken[0] = False
        process.advance(1.05)
        self.assertEqual(process.journal.stored("NA"), 1)
        process.submit(session)
        self.assertEqual(process.journal.stored("NA"), 2)

    def test_reset_empties_the_store(self) -> None:
        """After a reset (the API's DELETE of messages), a restart finds no message."""
        process = Process(self.path)
        process.submit(process.bound())
        process.core.reset()
        process.advance(0)
        process.kill()
        self.assertEqual(Process(self.path).restored, (0, 0))

    def test_final_messages_older_than_the_ttl_are_pruned(self) -> None:
        """Final messages leave the file once older than store_final_ttl, as they leave the store."""
        process = Process(self.path, store_final_ttl=30.0, compact_after=10)
        process.journal.compact_ratio = 1.0
        session = process.bound()
        process.submit(session)
        process.advance(3.2)
        session.answer_all()
        process.advance(70)
        for _ in range(12):
            process.submit(session)
        process.advance(3.2)
        session.answer_all()
        process.advance(0.2)
        self.assertGreaterEqual(process.journal.snapshots, 1)
        self.assertEqual(process.journal.stored("NA"), 12)

    def test_snapshots_keep_the_log_short_and_lose_nothing(self) -> None:
        """
        With snapshots taken every few hundred entries (a chunk at a time),
        the file stays small and a restart still finds every message, in its
        latest state, and every receipt still owed.
        """
        before = Process(self.path, compact_after=200)
        before.journal.chunk, before.journal.compact_ratio = 50, 2.0
        session = before.bound()
        ids = [before.submit(session, short_message=b"m%d" % n) for n in range(300)]
        before.advance(3.2)
        session.answer(0)
        before.advance(1.5)
        self.assertGreaterEqual(before.journal.snapshots, 1)
        (logged,) = before.journal._db.execute("SELECT COUNT(*) FROM log").fetchone()
        self.assertLess(logged, 100)
        def states(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return sorted((m["key"], m["text"], m["state"], m["history"], len(m["receipts"])) for m in messages)

        seen = states(before.messages())
        before.kill()
        after = Process(self.path, now=T0 + 4.8)
        self.assertEqual(after.restored, (300, 299))
        self.assertEqual(states(after.messages()), seen)
        again = after.bound()
        self.assertEqual(sorted(receipt_ids(again)), sorted(ids[1:]))


class RestoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = self.mktemp()

    def test_receipt_after_restart_keeps_its_time(self) -> None:
        """
        A message acknowledged before a kill gets its receipt after the
        restart and rebind, at the time it was due (3 s after the
        submit_sm_resp), with receipted_message_id as submitted.
        """
        before = Process(self.path)
        message_id = before.submit(before.bound())
        before.kill()
        after = Process(self.path, now=T0 + 1)
        self.assertEqual(after.restored, (1, 0))
        session = after.bound()
        after.advance(1.9)
        self.assertEqual(session.pdus, [])
        after.advance(0.3)
        self.assertEqual(receipt_ids(session), [message_id])
        text = parse_receipt(session.pdus[0].params["short_message"].decode())
        self.assertEqual((text["stat"], text["id"]), ("DELIVRD", str(int(message_id, 16))))

    def test_overdue_receipt_comes_at_once(self) -> None:
        """A receipt that fell due while the simulator was down comes at once after the rebind."""
        before = Process(self.path)
        message_id = before.submit(before.bound())
        before.kill()
        after = Process(self.path, now=T0 + 60)
        session = after.bound()
        after.advance(0.1)
        self.assertEqual(receipt_ids(session), [message_id])

    def test_queued_receipt_survives(self) -> None:
        """
        A receipt created while no receiver was bound is still owed after a
        restart: it is delivered on the rebind and, once answered, forgotten.
        """
        before = Process(self.path)
        message_id = before.submit(before.bound(CommandId.bind_transmitter))
        before.advance(4.2)
        before.kill()
        after = Process(self.path, now=T0 + 10)
        self.assertEqual(after.restored, (1, 1))
        session = after.bound(CommandId.bind_receiver)
        self.assertEqual(receipt_ids(session), [message_id])
        session.answer_all()
        after.advance(1.1)
        self.assertEqual(after.journal.load_deliveries("NA"), [])
        (restored,) = after.messages()
        self.assertEqual(restored["state"], "DELIVERED")
        self.assertEqual(restored["receipts"][0]["outcome"], "acked")

    def test_final_messages_come_back_as_they_were(self) -> None:
        """Delivered and acknowledged messages come back unchanged, and no receipt is sent again."""
        before = Process(self.path)
        session = before.bound()
        for text in (b"one", b"two"):
            before.submit(session, short_message=text)
        before.advance(3.2)
        session.answer_all()
        before.advance(0.1)
        seen = before.messages()
        before.kill()
        after = Process(self.path, now=T0 + 20)
        self.assertEqual(after.messages(), seen)
        again = after.bound()
        after.advance(5)
        self.assertEqual(again.pdus, [])

    def test_a_kill_before_the_write_behind_commit_repeats_the_receipt(self) -> None:
        """
        A receipt sent less than 50 ms before the kill is sent again after
        the restart (at least once, never lost).
        """
        before = Process(self.path)
        session = before.bound()
        message_id = before.submit(session)
        before.advance(3.1)
        self.assertEqual(receipt_ids(session), [message_id])
        before.kill()
        after = Process(self.path, now=T0 + 4)
        again = after.bound()
        after.advance(0.1)
        self.assertEqual(receipt_ids(again), [message_id])

    def test_every_kind_of_message_comes_back(self) -> None:
        """
        Pending and final messages of every kind come back with every field
        the inspection API shows: UCS-2 text, TLVs, data_sm, both
        destinations of a submit_multi, and the two parts of a concatenated
        message (reassembled again).
        """
        before = Process(self.path)
        session = before.bound()
        before.submit(session, data_coding=8, short_message="héllo ☃".encode("utf-16-be"))
        before.submit(session, tlvs={int(Tag.user_message_reference): b"\x00\x07"})
        before.write(before.request(session, CommandId.data_sm, tlvs={int(Tag.message_payload): b"data"}))
        dests = (DestAddress(1, 1, 1, "447700900003"), DestAddress(1, 1, 1, "447700900004"))
        before.write(before.request(session, CommandId.submit_multi, dest_address=dests, short_message=b"multi"))
        for seq in (1, 2):
            udh = bytes([5, 0, 3, 0x42, 2, seq])
            before.submit(session, esm_class=0x40, short_message=udh + b"part%d " % seq)
        before.advance(3.2)
        session.answer_all()
        before.submit(session, short_message=b"still pending")
        before.advance(0.1)
        seen = sorted(before.messages(), key=lambda m: m["key"])
        before.kill()
        after = Process(self.path, now=T0 + 3.35)
        restored = sorted(after.messages(), key=lambda m: m["key"])
        self.assertEqual(restored, seen)
        (multi, second) = (after.core.store.get(k) for k in sorted(m["key"] for m in seen if m["command"] == "submit_multi"))
        assert multi is not None and second is not None
        self.assertEqual(multi.siblings, (multi, second))
        parts = [m for m in restored if m["concat"]]
        self.assertEqual([m["concat"]["text"] for m in parts], ["part1 part2 "] * 2)

    def test_new_ids_never_repeat_restored_ones(self) -> None:
        """A restart within the same second hands out ids after the restored ones."""
        before = Process(self.path)
        old = before.submit(before.bound())
        before.kill()
        after = Process(self.path)
        new = after.submit(after.bound())
        self.assertGreater(int(new, 16), int(old, 16))

    def test_intermediate_notification_is_not_repeated(self) -> None:
        """Plan steps that ran before the kill do not run again: only the final receipt follows."""
        plan = ReceiptPlan(steps=(ReceiptStep(1.0, "ENROUTE", intermediate=True), ReceiptStep(3.0, "DELIVRD", 0)))
        before = Process(self.path, plan=plan)
        session = before.bound()
        before.submit(session, registered_delivery=0x11)
        before.advance(1.2)
        self.assertEqual([pdu.params["esm_class"] for pdu in session.pdus], [0x20])
        session.answer_all()
        before.advance(0.5)
        before.kill()
        after = Process(self.path, now=T0 + 2, plan=plan)
        again = after.bound()
        after.advance(1.2)
        self.assertEqual([pdu.params["esm_class"] for pdu in again.pdus], [0x04])

    def test_replaced_content_survives(self) -> None:
        """A message replaced with replace_sm comes back with its new text."""
        before = Process(self.path)
        session = before.bound()
        message_id = before.submit(session, short_message=b"old text")
        before.write(before.request(session, CommandId.replace_sm, message_id=message_id, short_message=b"new text"))
        before.advance(0.1)
        before.kill()
        (restored,) = Process(self.path, now=T0 + 1).messages()
        self.assertEqual(restored["text"], "new text")

    def test_mo_deliver_sm_survives(self) -> None:
        """An MO message waiting for a receiver is delivered after a restart, byte for byte, SAR TLVs included."""
        before = Process(self.path)
        ids = before.core.inject_mo("esme", "447700900009", "447700900001", text="x" * 200, split="sar")
        before.advance(1.1)
        (owed_before, _) = before.journal.load_deliveries("NA"), None
        before.kill()
        after = Process(self.path, now=T0 + 5)
        session = after.bound(CommandId.bind_receiver)
        self.assertEqual(session.pdus, [saved.pdu for saved in owed_before])
        self.assertEqual(len(ids), 2)
        self.assertIn(int(Tag.sar_msg_ref_num), session.pdus[0].tlvs)
        session.answer_all()
        states = []
        for message_id in ids:
            record = after.core.message(message_id)
            assert record is not None, message_id
            states.append(record.state.name)
        self.assertEqual(states, ["DELIVERED", "DELIVERED"])


# ----------------------------------------------------------------------
# kill -9 of twistd -n smsc-sim
# ----------------------------------------------------------------------

SLOW_RECEIPTS = """\
name: slow-receipts
description: every message DELIVRD 3 s after its submit_sm_resp
receipt:
  stat: DELIVRD
  delay: 3s
"""


def twistd(store: str, scenario: str, log: Path) -> tuple[SmscProcess, int]:
    """
    ``twistd -n smsc-sim`` on ``store``, its output in ``log``: the process and SMPP1's port once it listens.

    Every endpoint is ``tcp:0`` and the port is read from the process's own announce (it needs the API): a
    port picked free here and handed on could be taken by another process before twistd binds it.
    """
    process = SmscProcess("smsc-sim", ["--api", EPHEMERAL, "--store", store, "--scenario", scenario,
                                       "--smpp1", EPHEMERAL, "--smpp2", EPHEMERAL, "--smpp0", EPHEMERAL], log)  # fmt: skip
    try:
        port, _ = process.wait_listening("SMPP1", api=True)
    except BaseException:
        process.kill()
        raise
    return process, port


def connected(port: int) -> smpplib.client.Client:
    """An smpplib client connected to ``port`` (the process said it listens there)."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    return client


def read_until(client: smpplib.client.Client, done: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for PDUs from the simulator")
        client.read_once(auto_send_enquire_link=False)


def submit(client: smpplib.client.Client, sent: list[Any], text: bytes) -> str:
    count = len(sent)
    client.send_message(
        source_addr_ton=1, source_addr="1000", dest_addr_ton=1, destination_addr="2000", short_message=text,
        registered_delivery=1,
    )  # fmt: skip
    read_until(client, lambda: len(sent) > count)
    assert sent[-1].status == 0
    return str(sent[-1].message_id.decode())


@pytest.mark.integration
def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    """
    ``twistd -n smsc-sim --store sqlite:DB``: message A gets its receipt
    while only a transmitter is bound (so it waits), message B is
    acknowledged, and the process is killed with SIGKILL at once.  Started
    again on the same store, the ESME binds as a receiver and gets both
    receipts, A's at once and B's when due, with the right
    receipted_message_id.
    """
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(SLOW_RECEIPTS)
    store = f"sqlite:{tmp_path / 'store.db'}"
    process, port = twistd(store, str(scenario), tmp_path / "twistd-1.log")
    outputs = []
    try:
        client = connected(port)
        sent: list[Any] = []
        client.set_message_sent_handler(lambda pdu: sent.append(pdu))
        client.bind_transmitter(system_id="smppclient1", password="password")
        first = submit(client, sent, b"A")
        time.sleep(4.6)  # A's receipt is created at 3 s (nobody to take it), written once a second old
        second = submit(client, sent, b"B")
        acknowledged = time.monotonic()
        process.popen.send_signal(signal.SIGKILL)
        assert process.popen.wait(timeout=10) == -signal.SIGKILL
        outputs.append(process.output())
        client.disconnect()

        process, port = twistd(store, str(scenario), tmp_path / "twistd-2.log")
        client = connected(port)
        received: list[Any] = []
        client.set_message_received_handler(lambda pdu: received.append(pdu))
        client.bind_receiver(system_id="smppclient1", password="password")
        bound = time.monotonic()
        read_until(client, lambda: len(received) >= 1)
        # A was owed: it comes at once on the bind (timed from the bind, not from the kill, so that a restart
        # slowed by a busy machine does not fail the test)
        assert time.monotonic() - bound < 1.5
        read_until(client, lambda: len(received) >= 2)
        assert time.monotonic() - acknowledged > 2.5  # B comes when due (3 s after its submit_sm_resp), not before
        client.unbind()
        client.disconnect()
    finally:
        if process.alive():
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    outputs.append(process.output())
    assert [pdu.receipted_message_id.decode() for pdu in received] == [first, second]
    assert [parse_receipt(pdu.short_message.decode())["stat"] for pdu in received] == ["DELIVRD", "DELIVRD"]
    assert "2 messages restored, 1 deliveries owed" in outputs[1]
    assert "Traceback" not in "".join(outputs)

