"""
The durable store's entries as JSON (:mod:`smsc_sim.durable.rows`):
every kind of entry survives its encoding, and a store file whose entries
were altered, truncated, of the wrong shape or written by the pickle format
of schema 1 stops the start with one line naming the file, the row and what
is wrong (never a traceback, never more than a short escaped excerpt of the
bad value).
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
from typing import Any
from unittest import mock

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.core.router import Delivery
from smsc_sim.core.store import MessageRecord, ReceiptEntry
from smsc_sim.durable import rows
from smsc_sim.durable.sqlite import SQLiteJournal, StoreError
from smsc_sim.smpp.concat import ConcatInfo
from smsc_sim.smpp.constants import CommandId, CommandStatus, MessageState, Tag
from smsc_sim.smpp.pdu import PDU, make_pdu
from tests.test_core_fakes import T0
from tests.test_durable import REPO, Process


def full_record() -> MessageRecord:
    """A record with every field the file keeps set to something other than its default."""
    record = MessageRecord(
        "00000000000000ab/1", "00000000000000ab", 171, "esme", "SMPP1", 3, T0 + 0.125, "mt", "submit_multi"
    )
    record.service_type = "CMT"
    record.source_addr, record.source_ton, record.source_npi = "447700900001", 1, 1
    record.destination_addr, record.dest_ton, record.dest_npi = "447700900002", 2, 8
    record.esm_class, record.protocol_id, record.priority_flag, record.data_coding = 0x40, 0x7F, 3, 8
    record.short_message = bytes([5, 0, 3, 0x42, 2, 1]) + "héllo ☃\x00".encode("utf-16-be") + b"\xff"
    record.text = "héllo ☃\x00\"\\"
    record.encoding = "UCS2"
    record.undecodable = True
    record.binary = True
    record.concat = ConcatInfo(0x42, 2, 1, "udh8")
    record.registered_delivery = 0x11
    record.schedule_time = T0 + 60.5
    record.validity_time = T0 + 86_400.25
    record.rule = "slow ☃"
    record.replaced_time = T0 + 1.5
    record.tlv_tags = (int(Tag.user_message_reference), 0x1400)
    record.plan = ReceiptPlan(
        steps=(ReceiptStep(1.0, "ENROUTE", intermediate=True), ReceiptStep(3.25, "UNDELIV", 11)),
        id_format="hex",
        tlv_id_format="omit",
        duplicate=True,
        network_error_code=b"\x03\x00\x0b",
        per_part="last",
    )
    record.note_change(T0 + 1.5, "REPLACED")
    record.note_change(T0 + 3.25, "UNDELIVERABLE")
    record.state = MessageState.UNDELIVERABLE
    record.err = 11
    record.final_time = T0 + 3.25
    intermediate = ReceiptEntry.created(T0 + 1.0, "ENROUTE", 0, True, "deliver_sm")
    intermediate.outcome, intermediate.status, intermediate.attempts, intermediate.session_id = "acked", 0, 1, 4
    intermediate.done = T0 + 1.01
    final = ReceiptEntry.created(T0 + 3.25, "UNDELIV", 11, False, "data_sm")
    final.outcome, final.status, final.attempts = "failed", 0x45, 3
    record.receipts = (intermediate, final)
    record.reason = "rule 'slow'"
    record.started = True
    record.base_time = T0 + 0.25
    return record


def through(entries: list[list[Any]]) -> list[list[Any]]:
    """
    Entries as the file keeps them and as they are read back, through every
    encoder at hand (the stdlib's, and orjson's when installed): each must
    write the same plain JSON and read back the same.
    """
    texts = [encode(entries) for encode in rows.ENCODERS.values()]
    plain = [json.loads(text) for text in texts]  # plain JSON, nothing else
    assert all(value == plain[0] for value in plain), plain
    backs = [rows.loads(text) for text in texts]
    with mock.patch.object(rows, "_parse", json.loads):  # the stdlib's parser reads back the same too
        backs += [rows.loads(text) for text in texts]
    assert all(back == backs[0] for back in backs), backs
    return backs[0]


class EncodingTests(SynchronousTestCase):
    def test_whole_record_comes_back_as_it_was(self) -> None:
        """
        A ``W`` entry gives back the record with every field, its octets,
        TLV tags, concatenation, history, receipts and plan.
        """
        record = full_record()
        (entry,) = through([rows.whole("NA", record)])
        self.assertEqual(entry[:3], ["W", "NA", record.key])
        back = rows.record_from(record.key, entry[3:7])
        self.assertEqual(back.to_dict(), record.to_dict())
        self.assertEqual(back.short_message, record.short_message)
        self.assertEqual(back.concat, record.concat)
        self.assertEqual(back.plan, record.plan)
        self.assertEqual((back.started, back.base_time), (True, T0 + 0.25))
        self.assertEqual([e.to_dict() for e in back.receipts or ()], [e.to_dict() for e in record.receipts or ()])

    def test_progress_start_and_wipe_entries_come_back(self) -> None:
        """
        ``P``, ``S``, ``d`` and ``X`` entries read back as they were written
        (history pairs as pairs; an integer over 64 bits too).
        """
        record = full_record()
        progress = rows.progress(record)
        written: list[list[Any]] = [
            ["P", "NA", record.key, progress, T0 + 0.25], ["S", "EU", "k", None], ["d", 7], ["d", 2**70], ["X", "NA"],
        ]  # fmt: skip
        back = through(written)
        self.assertEqual(back, json.loads(json.dumps(written)))
        self.assertEqual([tuple(pair) for pair in back[0][3][3]], record.history)

    def test_owed_deliveries_come_back_byte_for_byte(self) -> None:
        """``D`` entries of a deliver_sm (octets that are not text, TLVs) and of a data_sm give back the same PDU."""
        deliver = make_pdu(
            CommandId.deliver_sm, 9, short_message=b"\x00\xff\x1b id:1", source_addr="1000", esm_class=4,
            tlvs={int(Tag.receipted_message_id): b"ab\x00", int(Tag.message_state): b"\x02", 0x1400: b""},
        )  # fmt: skip
        data = make_pdu(CommandId.data_sm, 3, destination_addr="2000", tlvs={int(Tag.message_payload): b"\x00" * 300})
        for pdu, instance in ((deliver, "SMPP1"), (data, None)):
            owed = Delivery(pdu, "esme", "receipt", "00ab", None, instance, T0 + 3.5)
            (entry,) = through([rows.delivery(12345678901, (0, "NA", "00ab", 1), owed)])
            head = ["D", 12345678901, "NA", "00ab", 1, "receipt", "00ab", "esme", instance, T0 + 3.5]
            self.assertEqual(entry[:10], head)
            self.assertEqual(PDU(entry[10], pdu.sequence_number, 0, entry[11], entry[12]), pdu)


class DamagedStoreTests(SynchronousTestCase):
    """A store whose log row was altered: the start stops with ``store sqlite:PATH: damaged (log row N: ...)``."""

    def setUp(self) -> None:
        self.path = self.mktemp()
        process = Process(self.path)
        process.submit(process.bound())
        process.kill()
        db = sqlite3.connect(self.path)
        ((self.seq, body),) = db.execute("SELECT seq, body FROM log").fetchall()
        db.close()
        self.entry: list[Any] = json.loads(body)[0]

    def refused(self, body: str | bytes) -> str:
        """Put ``body`` in the log row; the one-line error the next start gives."""
        db = sqlite3.connect(self.path)
        db.execute("UPDATE log SET body = ?", (body,))
        db.commit()
        db.close()
        error = str(self.assertRaises(StoreError, SQLiteJournal, self.path, Clock()))
        self.assertNotIn("\n", error)
        self.assertLess(len(error), len(self.path) + 160)
        return error

    def crafted(self, change: Any) -> str:
        """The error for the written ``W`` entry after ``change(entry)`` altered it."""
        entry = json.loads(json.dumps(self.entry))
        change(entry)
        return self.refused(json.dumps([entry]))

    def expect(self, error: str, what: str) -> None:
        self.assertEqual(error, f"store sqlite:{self.path}: damaged (log row {self.seq}: {what})")

    def test_the_written_row_is_plain_json_and_reads_back(self) -> None:
        """What the store writes is a JSON list of entries; put back as it was, the store opens and holds the message."""
        self.assertEqual(self.entry[0], "W")
        db = sqlite3.connect(self.path)
        db.execute("UPDATE log SET body = ?", (json.dumps([self.entry]),))
        db.commit()
        db.close()
        journal = SQLiteJournal(self.path, Clock())
        self.assertEqual(journal.stored("NA"), 1)
        journal.close()

    def test_unknown_state_or_status_value_is_refused(self) -> None:
        """A state that is no MessageState, a state or err given as a name, a receipt stat that is none: refused."""

        def state(value: Any) -> Any:
            return lambda entry: entry[4].__setitem__(0, value)

        self.expect(self.crafted(state(99)), "entry 0 (W) progress state is 99, not a known value")
        self.expect(self.crafted(state("DELIVERED")), "entry 0 (W) progress state is 'DELIVERED', not an integer")
        self.expect(self.crafted(state(True)), "entry 0 (W) progress state is True, not an integer")
        self.expect(
            self.crafted(lambda entry: entry[4].__setitem__(1, "ESME_ROK")),
            "entry 0 (W) progress err is 'ESME_ROK', not an integer",
        )
        self.expect(
            self.crafted(lambda entry: entry[4].__setitem__(3, [[T0, "HACKED"]])),
            "entry 0 (W) progress history 0 state is 'HACKED', not a known value",
        )
        self.expect(
            self.crafted(lambda entry: entry[5]["steps"][0].__setitem__("stat", "ESME_ROK")),
            "entry 0 (W) plan steps 0 stat is 'ESME_ROK', not a known value",
        )
        self.expect(
            self.crafted(lambda entry: entry[3][0].__setitem__(9, 1.5)),
            "entry 0 (W) content source_ton is 1.5, not an integer",
        )
        self.expect(
            self.crafted(lambda entry: entry[3].__setitem__(1, "zz")),
            "entry 0 (W) content short_message is 'zz', not hex octets",
        )

    def test_a_pickle_that_renames_esme_rok_is_refused_and_renames_nothing(self) -> None:
        """
        The row that renamed ESME_ROK in ``/stats`` through schema 1's
        pickles (an enum member rebuilt with another ``_name_``) stops the
        start, and ESME_ROK keeps its name.
        """
        self.addCleanup(setattr, CommandStatus.ESME_ROK, "_name_", "ESME_ROK")
        attack = (
            b"\x80\x04csmsc_sim.smpp.constants\nCommandStatus\nK\x00\x85R"
            b"}X\x06\x00\x00\x00_name_X\x06\x00\x00\x00HACKEDsb\x94"
            b"]\x94(]\x94(X\x01\x00\x00\x00W\x94h\x00ee."
        )
        older = "a pickle: the format of an older smsc-sim, which this one does not read"
        self.expect(self.refused(attack), older)
        self.assertEqual(CommandStatus.ESME_ROK.name, "ESME_ROK")
        self.expect(self.refused(pickle.dumps([["W", os.system]])), older)

    def test_entries_of_the_wrong_shape_are_refused(self) -> None:
        """Too few values, a dict for a list, an unknown kind, a row that is not a list: refused, not skipped."""
        self.expect(self.crafted(lambda entry: entry.__delitem__(slice(3, None))), "entry 0 (W) has 3 values, not 7")
        self.expect(self.refused(json.dumps([{"W": self.entry}])), "entry 0 is a dict of 1, not an entry")
        self.expect(
            self.crafted(lambda entry: entry.__setitem__(3, {"a": 1})), "entry 0 (W) content is a dict of 1, not a list"
        )
        self.expect(self.crafted(lambda entry: entry[4].pop()), "entry 0 (W) progress has 5 values, not 6")
        self.expect(self.refused(json.dumps([self.entry, ["Z", 1]])), "entry 1 is of an unknown kind 'Z'")
        self.expect(self.refused('{"W": 1}'), "a row is a list of entries, not a dict of 1")
        self.expect(self.refused(json.dumps([["d", "7"]])), "entry 0 (d) row is '7', not an integer")
        self.expect(
            self.refused(json.dumps([["D", 1, "NA", "k", 0, "mo", "k", "esme", None, T0, CommandId.submit_multi, [], []]])),
            "entry 0 (D) command is 33, not a known value",
        )
        self.expect(
            self.refused(json.dumps([["D", 1, "NA", "k", 0, "mo", "k", "esme", None, T0, CommandId.deliver_sm, [], []]])),
            "entry 0 (D) fields has 0 values, not 17",
        )
        self.expect(
            self.refused(json.dumps([["D", 1, "NA", "k", 0, "mo", "k", "esme", None, T0, 5, [""] * 17, [[70000, ""]]]])),
            "entry 0 (D) tlvs 0 tag is 70000, not a 16-bit tag",
        )

    def test_text_that_is_not_json_is_refused(self) -> None:
        """A truncated row, bytes that are not UTF-8: refused with where the JSON breaks, quoting none of it."""
        self.expect(self.refused('[["W", "NA"'), "not JSON (Expecting ',' delimiter at character 11)")
        self.expect(self.refused(b"\xfe\xfe\xfe"), "not JSON (UnicodeDecodeError)")

    def test_a_bad_value_is_quoted_short_and_escaped(self) -> None:
        """A long or control-character value shows as at most 40 escaped characters."""
        error = self.crafted(lambda entry: entry[4].__setitem__(0, "\x1b[2J" + "A" * 10_000))
        self.expect(error, "entry 0 (W) progress state is '\\x1b[2J" + "A" * 33 + "...', not an integer")

    def test_a_store_of_schema_1_is_refused_with_what_to_do(self) -> None:
        """A store written by the pickle format (schema 1) is not read: the error says so and to move the file away."""
        db = sqlite3.connect(self.path)
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema'")
        db.execute("UPDATE log SET body = ?", (pickle.dumps([self.entry]),))
        db.commit()
        db.close()
        error = self.assertRaises(StoreError, SQLiteJournal, self.path, Clock())
        self.assertEqual(
            str(error),
            f"store sqlite:{self.path}: schema version '1' (pickled entries, of an older smsc-sim),"
            " this smsc-sim reads 2; move the file away to start with an empty store",
        )

    def test_twistd_stops_on_a_damaged_store_with_one_line(self) -> None:
        """``twistd -n smsc-sim --store sqlite:PATH`` on a crafted store exits non-zero with one line, no traceback."""
        self.crafted(lambda entry: entry[4].__setitem__(0, 99))
        path = os.path.abspath(self.path)
        result = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "smsc-sim",
             "--api", "none", "--store", f"sqlite:{path}", "--smpp1", "tcp:0:interface=127.0.0.1",
             "--smpp2", "tcp:0:interface=127.0.0.1", "--smpp0", "tcp:0:interface=127.0.0.1"],  # fmt: skip
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0)
        why = "entry 0 (W) progress state is 99, not a known value"
        self.assertEqual(output.strip().splitlines(), [f"twistd: store sqlite:{path}: damaged (log row {self.seq}: {why})"])
