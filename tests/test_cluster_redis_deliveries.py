"""
Receipts and MO shared through a real redis-server
(``smsc_sim.cluster.redis.deliveries``): two RedisDeliveries on two
connections stand for two processes of one cluster, each with a stand-in
for its router (which sessions are bound there, what reached them).
Leases are short (1 s) and the waits real but bounded, as the leases and
stream idle times are Redis's own.  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import provider

from smsc_sim.cluster.redis.deliveries import RedisDeliveries, pack, unpack
from smsc_sim.config import CoreSettings
from smsc_sim.core.delivery import Delivery
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import make_pdu
from tests.redis_async import connected
from tests.redis_async import reactor as _reactor
from tests.redis_async import sleep as _sleep
from tests.redis_async import until as _until
from tests.redis_harness import RedisServer

LEASE = 1.0


class FakeRouter:
    """A process's router: the accounts bound there, and what reached its sessions (unanswered until told)."""

    def __init__(self, *accounts: str) -> None:
        self.settings = CoreSettings()
        self.shared: Any = None
        self.accounts = set(accounts)
        self.taken: list[Delivery] = []
        #: outcomes other processes reported of deliveries handed over from here
        self.ended: list[tuple[str, str, int | None, int | None, int, dict[str, Any]]] = []

    def ended_elsewhere(
        self, delivery: Delivery, outcome: str, status: int | None, session_id: int | None, where: dict[str, Any]
    ) -> None:
        self.ended.append((delivery.message_id, outcome, status, session_id, delivery.attempt, where))

    def instance_of(self, session_id: int | None) -> str | None:
        return "SMPP2" if session_id is not None else None

    def receiving_accounts(self) -> set[str]:
        return set(self.accounts)

    def take(self, delivery: Delivery) -> None:
        self.taken.append(delivery)

    def answer(self) -> None:
        """Every delivery taken gets its deliver_sm_resp."""
        for delivery in self.taken:
            self.shared.settle(delivery)


class FakeLifecycle:
    owed: Any = None


def _receipt(message_id: str, account: str = "acct", created: float = 0.0) -> Delivery:
    pdu = make_pdu(CommandId.deliver_sm, 0, short_message=f"id:{message_id} stat:DELIVRD".encode())
    return Delivery(pdu, account, "receipt", message_id, None, "SMPP1", created or time.time())



@pytest_twisted.async_yield_fixture
async def connections(redis_server: RedisServer) -> AsyncIterator[list[Any]]:
    async with connected(redis_server, 3, reconnect=True) as opened:
        yield opened


def _process(connection: Any, name: str, *accounts: str) -> tuple[RedisDeliveries, FakeRouter]:
    deliveries = RedisDeliveries(connection, _reactor(), "NA", name, lease=LEASE, poll=0.02)
    router = FakeRouter(*accounts)
    deliveries.attach(router, FakeLifecycle())  # type: ignore[arg-type]
    deliveries.start()
    return deliveries, router


def test_a_delivery_packs_and_unpacks() -> None:
    """A delivery keeps its PDU, account, kind, id, instance, time and attempts through the store."""
    delivery = _receipt("42", created=12.5)
    delivery.attempt = 2
    back, state = unpack(pack(delivery, "DELIVERED"))
    assert (back.pdu.command_id, back.pdu.params["short_message"]) == (CommandId.deliver_sm, b"id:42 stat:DELIVRD")
    assert (back.account, back.kind, back.message_id, back.origin_instance, back.created, back.attempt) == (
        "acct", "receipt", "42", "SMPP1", 12.5, 2,
    )
    assert back.origin_session is None and state == "DELIVERED"
    assert back.ticket is None


def test_a_delivery_keeps_the_process_to_tell_through_the_store() -> None:
    """
    A delivery made by one process carries that process and its number
    there through the stream, so the process that delivers it knows whom to
    tell; one written in the earlier format (no such fields) reads as before.
    """
    delivery = _receipt("43", created=1.5)
    delivery.ticket = ("host:1:aa", "17")
    assert unpack(pack(delivery))[0].ticket == ("host:1:aa", "17")
    older = "\x1f".join(pack(delivery).split("\x1f")[:9]).replace("2", "1", 1)
    back, _state = unpack(older)
    assert (back.message_id, back.ticket) == ("43", None)


@pytest_twisted.ensureDeferred
async def test_what_one_process_cannot_deliver_reaches_the_other(connections: list[Any]) -> None:
    """
    A receipt SMPP1 has no session for goes to the account's stream and
    reaches SMPP2's session once; answered, it leaves the stream, and SMPP1
    (bound later) never sees it.
    """
    smpp1, router1 = _process(connections[0], "p1")
    smpp2, router2 = _process(connections[1], "p2", "acct")
    try:
        for n in range(50):
            smpp1.publish(_receipt(str(n)))
        await _until(lambda: len(router2.taken) == 50)
        assert [d.message_id for d in router2.taken] == [str(n) for n in range(50)]
        router2.answer()
        await _until(lambda: not smpp2._held)
        await _sleep(0.2)
        assert await connections[2].execute_command("XLEN", "smsc-sim:NA:deliveries:acct") == 0
        router1.accounts.add("acct")
        await _sleep(0.3)
        assert router1.taken == [] and len(router2.taken) == 50
    finally:
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_owed_receipts_of_a_dead_process_are_sent_by_a_live_one(connections: list[Any]) -> None:
    """
    SMPP1 owes three final receipts and dies (stops refreshing its lease):
    one was answered before (not sent again), one was cancelled meanwhile
    (its message's state is DELETED: not sent), and the third reaches
    SMPP2's session exactly once, after SMPP1's lease ran out.
    """
    smpp1, _router1 = _process(connections[0], "p1")
    smpp2, router2 = _process(connections[1], "p2", "acct")
    try:
        now = time.time()
        for message_id in ("answered", "cancelled", "owed"):
            smpp1.owe(_receipt(message_id, created=now + 0.3), now + 0.3, "DELIVERED")
        answered = _receipt("answered")
        answered.owed = True
        smpp1.settle(answered)
        # the message records as the journal writes them: a JSON array, the state first
        await connections[2].execute_command("SET", "smsc-sim:NA:msg:cancelled", '["DELETED",1.5,0,"p3"]')
        await connections[2].execute_command("SET", "smsc-sim:NA:msg:owed", '["DELIVERED",1.5,0,"p1"]')
        await _sleep(0.2)
        smpp1.stop()  # as kill -9: no more lease refreshes
        died = time.monotonic()
        await _until(lambda: len(router2.taken) >= 1, within=4 * LEASE + 2)
        # the lease ran out: it was last refreshed at most a third of a lease before the stop
        # (refreshes come every lease/3), so it ends at the earliest two thirds of a lease after it
        assert time.monotonic() - died >= LEASE * 2 / 3 - 0.05
        await _sleep(0.5)
        assert [d.message_id for d in router2.taken] == ["owed"]
        router2.answer()
        await _until(lambda: smpp2.owed() == 0 and not smpp2._held)
        await _sleep(0.2)
        # nothing is owed any more, by anyone
        assert await connections[2].execute_command("KEYS", "smsc-sim:NA:owed*") == []
    finally:
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_entries_read_by_a_dead_process_are_taken_over(connections: list[Any]) -> None:
    """
    SMPP1 read two deliveries and died before their deliver_sm_resp: SMPP2
    takes them over once they were idle for a lease, and delivers each once.
    Entries SMPP2 still holds unanswered for longer than a lease stay its
    own (not delivered again).
    """
    smpp1, router1 = _process(connections[0], "p1", "acct")
    smpp2, router2 = _process(connections[1], "p2")
    try:
        smpp2.publish(_receipt("a"))
        smpp2.publish(_receipt("b"))
        await _until(lambda: len(router1.taken) == 2)
        smpp1.stop()
        router2.accounts.add("acct")
        await _until(lambda: len(router2.taken) == 2, within=3 * LEASE + 2)
        await _sleep(3 * LEASE)  # held unanswered by a live process: not taken over again
        assert sorted(d.message_id for d in router2.taken) == ["a", "b"]
        router2.answer()
        await _until(lambda: not smpp2._held)
        await _sleep(0.2)
        assert await connections[2].execute_command("XLEN", "smsc-sim:NA:deliveries:acct") == 0
    finally:
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_redis_down_deliveries_wait_and_go_when_it_is_back(
    connections: list[Any], redis_server: RedisServer
) -> None:
    """
    With Redis gone, what SMPP1 hands over waits in SMPP1 (one log line says
    so, nothing crashes); once Redis is back it reaches SMPP2's session.
    """
    lines: list[str] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        from twisted.logger import formatEvent

        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    smpp1, _router1 = _process(connections[0], "p1")
    smpp2, router2 = _process(connections[1], "p2", "acct")
    try:
        await _sleep(0.2)
        redis_server.stop()
        for n in range(5):
            smpp1.publish(_receipt(str(n)))
        await _sleep(2.5)
        waiting = [line for line in lines if "does not answer" in line]
        assert waiting and len([line for line in waiting if "cluster NA" in line]) <= 2
        redis_server.restart()  # empty, on the same port
        await _until(lambda: len(router2.taken) == 5, within=15)
        assert sorted(d.message_id for d in router2.taken) == [str(n) for n in range(5)]
        assert any("answers again" in line for line in lines)
    finally:
        globalLogPublisher.removeObserver(observe)
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_reset_forgets_what_this_process_held_and_owed(connections: list[Any]) -> None:
    """
    A reset of SMPP2 while it holds an unanswered delivery and owes a receipt:
    the entry leaves the stream and the owed record is gone, so no other
    process sends either later.
    """
    smpp1, _router1 = _process(connections[0], "p1")
    smpp2, router2 = _process(connections[1], "p2", "acct")
    try:
        smpp1.publish(_receipt("held"))
        smpp2.owe(_receipt("owed"), time.time() + 60, "DELIVERED")
        await _until(lambda: len(router2.taken) == 1)
        await _sleep(0.1)
        assert await connections[2].execute_command("ZCARD", "smsc-sim:NA:owed:p2") == 1
        smpp2.reset()
        await _sleep(0.3)
        assert await connections[2].execute_command("XLEN", "smsc-sim:NA:deliveries:acct") == 0
        assert await connections[2].execute_command("ZCARD", "smsc-sim:NA:owed:p2") == 0
    finally:
        smpp1.stop()
        smpp2.stop()


def test_lease_variable() -> None:
    """SMSC_SIM_CLUSTER_LEASE sets the lease in seconds; a bad value is a one-line error naming the variable."""
    from smsc_sim.cluster.redis.connect import ClusterStoreError, lease_from_environ

    assert lease_from_environ({}) == 10.0
    assert lease_from_environ({"SMSC_SIM_CLUSTER_LEASE": "2.5"}) == 2.5
    for bad in ("0", "-1", "soon", "7200"):
        with pytest.raises(ClusterStoreError) as caught:
            lease_from_environ({"SMSC_SIM_CLUSTER_LEASE": bad})
        assert str(caught.value) == (
            f"SMSC_SIM_CLUSTER_LEASE={bad!r}: expected seconds, a number > 0 and <= 3600"
        )


@pytest_twisted.ensureDeferred
async def test_a_key_of_another_type_refuses_only_its_own_delivery(connections: list[Any]) -> None:
    """
    Someone wrote a string where one account's stream should be: that
    account's delivery is refused (one error line), and the deliveries handed
    over in the same turn for another account still arrive.
    """
    lines: list[str] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        from twisted.logger import formatEvent

        lines.append(formatEvent(event))

    await connections[2].execute_command("SET", "smsc-sim:NA:deliveries:broken", "not a stream")
    globalLogPublisher.addObserver(observe)
    smpp1, _router1 = _process(connections[0], "p1")
    smpp2, router2 = _process(connections[1], "p2", "acct")
    try:
        smpp1.publish(_receipt("1"))
        smpp1.publish(_receipt("lost", account="broken"))
        smpp1.publish(_receipt("2"))
        await _until(lambda: len(router2.taken) == 2)
        assert [d.message_id for d in router2.taken] == ["1", "2"]
        assert [line for line in lines if "refused by the cluster store" in line] == [
            "cluster NA: 1 delivery operations refused by the cluster store (a key of another type under smsc-sim:NA:?)"
        ]
    finally:
        globalLogPublisher.removeObserver(observe)
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_a_process_back_from_a_long_cut_takes_nothing_over_at_once(connections: list[Any]) -> None:
    """
    A process whose own lease ran out (cut off from Redis longer than a
    lease) does not take a silent process's receipts at its first refresh
    back, only at a later one, so that a process cut off as long gets a
    chance to refresh first.
    """
    smpp1, _router1 = _process(connections[0], "p1")
    smpp1.owe(_receipt("owed"), time.time(), "DELIVERED")
    await _sleep(0.2)
    smpp1.stop()
    smpp2 = RedisDeliveries(connections[1], _reactor(), "NA", "p2", lease=LEASE, poll=0.02)
    router2 = FakeRouter("acct")
    smpp2.attach(router2, FakeLifecycle())  # type: ignore[arg-type]
    try:
        await _sleep(LEASE + 0.2)  # p1's lease has run out
        smpp2._healthy_since = time.time() - 10 * LEASE  # healthy long enough, as far as it knows
        await connections[2].execute_command("DEL", "smsc-sim:NA:alive:p2")
        smpp2._keep_alive()
        await _sleep(0.3)
        assert len(smpp2._timeline) == 0
        assert await connections[2].execute_command("ZCARD", "smsc-sim:NA:owed:p1") == 1
        smpp2._keep_alive()
        await _sleep(0.3)
        assert await connections[2].execute_command("ZCARD", "smsc-sim:NA:owed:p1") == 0
        # taken over, and handed to the stream at once (it was due)
        assert await connections[2].execute_command("XLEN", "smsc-sim:NA:deliveries:acct") == 1
    finally:
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_the_outcome_goes_back_to_the_process_that_made_the_delivery(
    redis_server: RedisServer, connections: list[Any]
) -> None:
    """
    300 receipts SMPP1 made and handed to the cluster are delivered by
    SMPP2; their outcomes (acked with status 0, or failed with 0x64, the
    session, instance, process and attempts) come back to SMPP1 through its
    inbox, each once, in a few list elements rather than one per receipt.
    A process that died (its lease ran out) is told nothing: no inbox is
    left for it.
    """
    import txredisapi

    from smsc_sim.cluster.redis.operations import OwnerInbox, inbox_key

    smpp1, router1 = _process(connections[0], "p1")
    smpp2, router2 = _process(connections[1], "p2", "acct")
    dead, _router3 = _process(connections[2], "p3")
    inbox = OwnerInbox(
        lambda: txredisapi.lazyConnection("127.0.0.1", redis_server.port, dbid=0, reconnect=True), _reactor()
    )
    inbox.hear_outcomes(inbox_key("NA", "p1"), smpp1.reported)
    inbox.start()
    try:
        for n in range(300):
            made = _receipt(str(n))
            made.on_outcome = lambda *_: None  # made here: its record wants the outcome
            smpp1.publish(made)
        lost = _receipt("lost")
        lost.on_outcome = lambda *_: None
        dead.publish(lost)
        await _until(lambda: len(router2.taken) == 301)
        dead.stop()
        await _sleep(LEASE + 0.3)  # its lease ran out
        for delivery in router2.taken:
            delivery.attempt = 1
            failed = delivery.message_id == "7"
            smpp2.settle(delivery, "failed" if failed else "acked", 0x64 if failed else 0, 12)
        await _until(lambda: len(router1.ended) == 300)
        await _sleep(0.3)
        assert len(router1.ended) == 300
        where = {"process": "p2", "instance": "SMPP2"}
        by_id = {mid: (outcome, status, session, attempts, {k: w[k] for k in where})
                 for mid, outcome, status, session, attempts, w in router1.ended}  # fmt: skip
        assert by_id["7"] == ("failed", 0x64, 12, 1, where)
        assert by_id["8"] == ("acked", 0, 12, 1, where)
        assert sorted(by_id, key=int) == [str(n) for n in range(300)]
        assert inbox.applied <= 10, f"{inbox.applied} inbox elements for 300 outcomes"
        assert await connections[2].execute_command("EXISTS", "smsc-sim:NA:owner:p3:ops") == 0
    finally:
        inbox.stop()
        smpp1.stop()
        smpp2.stop()


@pytest_twisted.ensureDeferred
async def test_a_delivery_read_back_by_its_maker_moves_its_record_once(connections: list[Any]) -> None:
    """
    A receipt SMPP1 handed to the cluster and later read back by SMPP1
    itself (its ESME bound there meanwhile): answered, its record hears the
    outcome once, and no second event is made for it (the router made one).
    """
    smpp1, router1 = _process(connections[0], "p1")
    heard: list[tuple[str, int | None]] = []
    try:
        made = _receipt("back")
        made.on_outcome = lambda _d, outcome, status, _s: heard.append((outcome, status))
        smpp1.publish(made)
        router1.accounts.add("acct")
        await _until(lambda: len(router1.taken) == 1)
        smpp1.settle(router1.taken[0], "acked", 0, 4)
        assert heard == [("acked", 0)]
        assert router1.ended == []
    finally:
        smpp1.stop()
