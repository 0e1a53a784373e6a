"""MO injection, inspection views, stats, reset and stop."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.core.accounts import peer_host
from smsc_sim.core.throttle import TokenBucket
from smsc_sim.core.timeline import Timeline
from smsc_sim.smpp.constants import CommandId, MessageState, Tag
from tests.test_core_fakes import T0, Harness


class MOTests(SynchronousTestCase):
    def test_short_mo(self) -> None:
        """A short MO is one deliver_sm, esm_class 0, from the handset to the ESME's number."""
        h = Harness()
        s = h.bound()
        [mo_id] = h.core.inject_mo("esme", "447700900009", "15550001", text="Hi there")
        [pdu] = s.pdus
        self.assertEqual(pdu.command_id, CommandId.deliver_sm)
        p = pdu.params
        self.assertEqual(
            (p["esm_class"], p["source_addr"], p["destination_addr"], p["short_message"], p["source_addr_ton"]),
            (0, "447700900009", "15550001", b"Hi there", 1),
        )
        record = h.core.message(mo_id)
        assert record is not None
        self.assertEqual((record.direction, record.text), ("mo", "Hi there"))

    def test_long_mo_udh(self) -> None:
        """A long MO is split in UDH parts with esm_class 0x40, each with its own id."""
        h = Harness()
        s = h.bound()
        ids = h.core.inject_mo("esme", "447700900009", "15550001", text="x" * 200)
        self.assertEqual(len(ids), 2)
        self.assertEqual([p.params["esm_class"] for p in s.pdus], [0x40, 0x40])
        self.assertEqual(s.pdus[0].params["short_message"][:3], b"\x05\x00\x03")

    def test_mo_waits_for_receiver(self) -> None:
        """An MO with no receiver bound waits and is delivered when one binds."""
        h = Harness()
        [mo_id] = h.core.inject_mo("esme", "1", "2", data=b"\x01\x02")
        rx = h.bound(command=CommandId.bind_receiver)
        self.assertEqual(rx.pdus[0].params["data_coding"], 4)
        rx.answer()
        self.assertEqual(h.core.message(mo_id).state, MessageState.DELIVERED)  # type: ignore[union-attr]

    def test_mo_payload_mode(self) -> None:
        """split payload sends one deliver_sm with the text in message_payload."""
        h = Harness()
        s = h.bound()
        h.core.inject_mo("esme", "1", "2", text="y" * 300, split="payload")
        [pdu] = s.pdus
        self.assertEqual(pdu.tlvs[Tag.message_payload], b"y" * 300)

    def test_unknown_account(self) -> None:
        """An MO for an account the cluster does not know raises ValueError."""
        with self.assertRaises(ValueError):
            Harness().core.inject_mo("ghost", "1", "2", text="x")


class InspectionTests(SynchronousTestCase):
    def test_messages_filters(self) -> None:
        """messages() filters by instance, destination, state, time and paginates."""
        h = Harness()
        one, two = h.bound("SMPP1"), h.bound("SMPP2")
        a = h.submit_id(one, destination_addr="100")
        h.clock.advance(1)
        b = h.submit_id(two, destination_addr="200")
        c = h.submit_id(two, destination_addr="200")
        ids = lambda records: [r.message_id for r in records]  # noqa: E731
        self.assertEqual(ids(h.core.messages(instance="SMPP2")), [b, c])
        self.assertEqual(ids(h.core.messages(destination="100")), [a])
        self.assertEqual(ids(h.core.messages(state="DELIVERED")), [a])
        self.assertEqual(ids(h.core.messages(state="pending")), [b, c])
        self.assertEqual(ids(h.core.messages(since=T0 + 0.5)), [b, c])
        self.assertEqual(ids(h.core.messages(limit=1, offset=1)), [b])

    def test_stats_and_reset(self) -> None:
        """stats() counts binds, submits by status, receipts; reset() clears messages and counters but keeps binds."""
        h = Harness()
        s = h.bound()
        h.submit(s, registered_delivery=1)
        h.submit(s, destination_addr="")
        h.clock.advance(1)
        s.answer()
        stats = h.core.stats()
        self.assertEqual(stats["binds"], 1)
        self.assertEqual(stats["submits"], {"ESME_ROK": 1, "ESME_RINVDSTADR": 1})
        self.assertEqual((stats["receipts"]["sent"], stats["receipts"]["acked"]), (1, 1))
        self.assertEqual(stats["store_size"], 1)
        h.core.reset()
        stats = h.core.stats()
        self.assertEqual((stats["store_size"], stats["submits"], stats["binds"]), (0, {}, 1))
        self.assertEqual(len(h.core.sessions()), 1)

    def test_reset_cancels_timers(self) -> None:
        """After reset no receipt of an old message goes out."""
        h = Harness()
        s = h.bound()
        h.submit(s, registered_delivery=1)
        h.core.reset()
        h.clock.advance(5)
        self.assertEqual(s.pdus, [])
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_set_scenario(self) -> None:
        """set_scenario switches the engine deciding on new messages."""
        from tests.test_core_fakes import ScriptedScenario

        h = Harness()
        s = h.bound()
        replacement = ScriptedScenario()
        h.core.set_scenario(replacement)
        h.submit(s)
        self.assertEqual(len(replacement.facts), 1)


class PieceTests(SynchronousTestCase):
    def test_token_bucket(self) -> None:
        """A bucket of 10/s with burst 5 passes 5 at once, then one per 0.1 s; rate 0 is unlimited."""
        from twisted.internet.task import Clock

        clock = Clock()
        bucket = TokenBucket(10, 5, clock)
        self.assertEqual([bucket.take() for _ in range(6)], [True] * 5 + [False])
        clock.advance(0.1)
        self.assertTrue(bucket.take())
        self.assertFalse(bucket.take())
        self.assertTrue(all(TokenBucket(0, 0, clock).take(1000) for _ in range(3)))

    def test_timeline_never_early(self) -> None:
        """A timeline action runs at or after its time (within the resolution), never before, and in order."""
        from twisted.internet.task import Clock

        clock = Clock()
        clock.rightNow = T0
        timeline = Timeline(clock)
        ran: list[int] = []
        timeline.at(T0 + 0.05, ran.append, 1)
        timeline.at(T0 + 0.02, ran.append, 2)
        timeline.at(T0 + 0.15, ran.append, 3)
        clock.advance(0.099)
        self.assertEqual(ran, [])
        clock.advance(0.001)
        self.assertEqual(ran, [1, 2])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        timeline.clear()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_peer_host(self) -> None:
        """Peer strings of IPv4 and IPv6 sessions give their host."""
        self.assertEqual(
            [peer_host(p) for p in ("127.0.0.1:99", "[::1]:99", "::1:99", "host")], ["127.0.0.1", "::1", "::1", "host"]
        )
