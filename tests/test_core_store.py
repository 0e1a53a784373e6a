"""
The message store and its records (``smsc_sim.core.store``): the compact
shapes a retained record keeps (delivery log entries, the history) read as
the dicts and lists the API shows, and eviction by final time.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.core.store import (
    DeliveryEntry,
    MessageRecord,
    MessageStore,
    MOEntry,
    ReceiptEntry,
)
from smsc_sim.smpp.constants import MessageState
from tests.test_core_fakes import T0, Harness, ScriptedScenario


def record(key: str, submit_time: float = T0) -> MessageRecord:
    return MessageRecord(key, key, 1, "esme", "SMPP1", 1, submit_time)


class DeliveryEntryTests(SynchronousTestCase):
    def test_receipt_entry_reads_as_its_dict(self) -> None:
        """A receipt entry has the keys of the old dict, in order; ``done`` only once set."""
        entry = ReceiptEntry.created(T0, "DELIVRD", 0, False, "deliver_sm")
        keys = ["time", "stat", "err", "intermediate", "command", "outcome", "status", "attempts", "session_id"]
        self.assertEqual(list(entry.to_dict()), keys)
        self.assertEqual(entry.keys(), keys)
        self.assertEqual((entry["outcome"], entry["status"], entry.get("done")), ("created", None, None))
        self.assertRaises(KeyError, lambda: entry["done"])
        self.assertRaises(KeyError, lambda: entry["kind"])
        entry.done = T0 + 1
        self.assertEqual(list(entry.to_dict())[-1], "done")
        self.assertEqual(dict(entry), entry.to_dict())

    def test_mo_entry(self) -> None:
        """An MO entry has time, kind, outcome, status, attempts, session_id; an empty one has no keys."""
        entry = MOEntry.created(T0)
        self.assertEqual(
            entry.to_dict(),
            {"time": T0, "kind": "mo", "outcome": "created", "status": None, "attempts": 0, "session_id": None},
        )
        empty = MOEntry()
        self.assertEqual(empty.to_dict(), {})
        empty.outcome, empty.status, empty.attempts = "acked", 0, 1
        self.assertEqual(list(empty.to_dict()), ["outcome", "status", "attempts"])

    def test_from_dict_round_trip(self) -> None:
        """Entries come back from their dicts (as the durable store keeps them) as the same kind, equal."""
        receipt = ReceiptEntry.created(T0, "UNDELIV", 1, True, "data_sm")
        receipt.done = T0 + 2
        for entry in (receipt, MOEntry.created(T0)):
            back = DeliveryEntry.from_dict(entry.to_dict())
            self.assertIs(type(back), type(entry))
            self.assertEqual(back, entry)
            self.assertEqual(back.to_dict(), entry.to_dict())
        self.assertEqual(DeliveryEntry.from_dict({"outcome": "x", "unknown": 1}).to_dict(), {"outcome": "x"})


class RecordTests(SynchronousTestCase):
    def test_delivery_log(self) -> None:
        """The log is None, then one entry, then a tuple; receipts reads as a tuple either way."""
        r = record("A")
        self.assertIsNone(r.receipts)
        self.assertIsNone(r.last_delivery())
        first, second = MOEntry.created(T0), MOEntry.created(T0 + 1)
        self.assertIs(r.log_delivery(first), first)
        self.assertEqual((r.receipts, r.last_delivery()), ((first,), first))
        r.log_delivery(second)
        self.assertEqual((r.receipts, r.last_delivery()), ((first, second), second))
        r.receipts = [first.to_dict()]
        self.assertEqual(r.receipts, (first,))
        r.receipts = None
        self.assertIsNone(r.deliveries)

    def test_plain_history_needs_no_object(self) -> None:
        """Straight from ENROUTE to a final state, the history is derived from submit and final time."""
        r = record("A")
        self.assertIsNone(r.changes)
        self.assertEqual(r.history, [(T0, "ENROUTE")])
        r.state, r.final_time = MessageState.DELIVERED, T0 + 1
        self.assertEqual(r.history, [(T0, "ENROUTE"), (T0 + 1, "DELIVERED")])
        r.note_change(T0 + 2, "UNDELIVERABLE")
        r.state = MessageState.UNDELIVERABLE
        self.assertEqual(r.changes, (T0, "ENROUTE", T0 + 1, "DELIVERED", T0 + 2, "UNDELIVERABLE"))

    def test_history_setter(self) -> None:
        """Setting the history (a restore) keeps the plain one as None, anything else as it is."""
        r = record("A")
        r.state, r.final_time = MessageState.DELIVERED, T0 + 1
        r.history = [(T0, "ENROUTE"), (T0 + 1, "DELIVERED")]
        self.assertIsNone(r.changes)
        r.history = [(T0, "ENROUTE"), (T0 + 0.5, "ENROUTE"), (T0 + 1, "DELIVERED")]
        self.assertEqual(len(r.history), 3)
        r.history = [(T0, "ENROUTE")]  # not what a DELIVERED record at T0 + 1 would have
        self.assertEqual(r.changes, (T0, "ENROUTE"))
        self.assertEqual(r.history, [(T0, "ENROUTE")])

    def test_lifecycle_histories(self) -> None:
        """Through the lifecycle: a plain delivery keeps no history object; a state on the way or a forced
        receipt after the final one make one, with the same entries as before."""
        h = Harness(ScriptedScenario(plan=ReceiptPlan(steps=(ReceiptStep(1, "ENROUTE"), ReceiptStep(2, "DELIVRD")))))
        s = h.bound()
        plain = h.core.message(h.submit_id(s, registered_delivery=1))
        h.clock.advance(1)
        assert plain is not None
        self.assertEqual([name for _, name in plain.history], ["ENROUTE", "ENROUTE"])
        h.clock.advance(1)
        self.assertEqual(plain.history, [(T0, "ENROUTE"), (T0 + 1, "ENROUTE"), (T0 + 2, "DELIVERED")])
        h2 = Harness()
        s2 = h2.bound()
        message_id = h2.submit_id(s2, registered_delivery=1)
        h2.clock.advance(1)
        delivered = h2.core.message(message_id)
        assert delivered is not None and delivered.changes is None
        self.assertEqual(delivered.history, [(T0, "ENROUTE"), (T0 + 1, "DELIVERED")])
        receipt = delivered.last_delivery()
        assert isinstance(receipt, ReceiptEntry)
        self.assertIs(receipt.time, delivered.final_time)  # the receipt is built at the state change
        h2.clock.advance(1)
        h2.core.force_receipt(message_id, "UNDELIV")
        self.assertEqual([name for _, name in delivered.history], ["ENROUTE", "DELIVERED", "UNDELIVERABLE"])
        self.assertEqual(delivered.final_time, T0 + 2)


class StoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.now = T0
        self.store = MessageStore(10, 60.0, lambda: self.now)

    def final(self, key: str, at: float) -> MessageRecord:
        r = record(key)
        self.store.add(r)
        r.state, r.final_time = MessageState.DELIVERED, at
        self.store.finalized(r)
        return r

    def test_ttl_counts_from_the_first_final_time(self) -> None:
        """A final record made final again (a forced receipt) is still evicted as of its first final time."""
        a = self.final("A", T0)
        b = self.final("B", T0 + 10)
        a.final_time = T0 + 30
        self.store.finalized(a, T0)
        self.now = T0 + 60
        self.store.sweep()
        self.assertEqual((self.store.get("A"), self.store.get("B")), (None, b))
        self.now = T0 + 70
        self.store.sweep()
        self.assertEqual((len(self.store), self.store.evicted, self.store._final_at), (0, 2, {}))

    def test_final_without_final_time(self) -> None:
        """A record held final without a final time is evicted as of when it came."""
        r = record("A")
        r.state = MessageState.DELIVERED
        self.store.add(r)
        self.now = T0 + 59
        self.store.sweep()
        self.assertIs(self.store.get("A"), r)
        self.now = T0 + 60
        self.store.sweep()
        self.assertIsNone(self.store.get("A"))

    def test_oldest_final_evicted_first_when_full(self) -> None:
        """Full, the store drops the record that became final first, whatever its final time says now."""
        store = MessageStore(2, 60.0, lambda: self.now)
        first, second = record("A"), record("B")
        for r in (first, second):
            store.add(r)
        for r in (first, second):
            r.state, r.final_time = MessageState.DELIVERED, T0
            store.finalized(r)
        store.add(record("C"))
        self.assertEqual([r.key for r in store], ["B", "C"])

    def test_repeated_values_are_shared(self) -> None:
        """A record equal to the one added before in source, destination, octets or text takes its objects."""
        one, two = record("A"), record("B")
        for r in (one, two):
            # equal values in distinct objects, as two decoded PDUs bring them
            r.source_addr = "".join(["4477", "00900001"])
            r.destination_addr = "".join(["4477", "00900002"])
            r.short_message = b"hello " + b"there"
            r.text = "".join(["hello ", "there"])
        two.destination_addr = "other"
        self.store.add(one)
        self.store.add(two)
        self.assertIs(two.source_addr, one.source_addr)
        self.assertIs(two.short_message, one.short_message)
        self.assertIs(two.text, one.text)
        self.assertEqual(two.destination_addr, "other")
        self.store.clear()
        self.assertIsNone(self.store._last)
