"""
Messages shared through a real redis-server (``smsc_sim.cluster.redis``):
two cores of cluster NA, each with its own :class:`RedisClusterStore` (its
own connections and owner), stand for the SMPP1 and SMPP2 processes.
Message ids come from one counter, and query_sm, cancel_sm and replace_sm
sent to one core reach a message the other accepted.  redis-server must be
installed (``scripts/install-redis.sh``); when it is not, these tests fail
saying so.  Redis answers on the real reactor, so the tests wait real
(short, bounded) time for it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from smsc_sim.cluster.redis.ids import RedisIds
from smsc_sim.cluster.redis.records import decode_record
from smsc_sim.contracts import Reply
from smsc_sim.core.ids import NoIdAvailable, counted
from smsc_sim.smpp.constants import CommandId, CommandStatus, MessageState
from tests.redis_async import connect
from tests.redis_async import reactor as _reactor
from tests.redis_async import sleep as _sleep
from tests.redis_async import until as _until
from tests.redis_cores import LATER, Process, answer
from tests.ports import refusing_port
from tests.redis_harness import RedisServer


async def _redis(redis_server: RedisServer) -> Any:
    return await connect(redis_server)


@pytest_twisted.ensureDeferred
async def test_ids_from_two_processes_never_collide(redis_server: RedisServer) -> None:
    """
    Two processes drawing message numbers from the cluster's counter in
    blocks get distinct numbers, hundreds each, in the provider's form (0B in
    the top octet), refilled in the background before they run out.
    """
    connections = [await _redis(redis_server) for _ in range(2)]
    try:
        sources = [RedisIds(connection, _reactor(), "NA", block=50, low=20) for connection in connections]
        for source in sources:
            source.start(time.time())
        seen: list[int] = []
        for _round in range(20):
            await _until(lambda: all(source.blocks > 0 for source in sources))
            for source in sources:
                for _ in range(25):
                    seen.append(source.next(time.time()))
            await _sleep(0.01)  # the refills at the low-water mark come back
        assert len(seen) == 1000
        assert len(set(seen)) == 1000
        assert all(counted(number) for number in seen)
        assert all(source.blocks >= 10 for source in sources)
    finally:
        for connection in connections:
            await connection.disconnect()


@pytest_twisted.ensureDeferred
async def test_submit_refused_with_syserr_while_no_id_is_available(redis_server: RedisServer) -> None:
    """
    While the cluster store does not answer and no id is left, a submit_sm
    gets ESME_RSYSERR (0x08), never a crash, with one log line; once Redis
    answers, submits are accepted again.
    """
    # held while the process tries it: a port merely picked free could meanwhile get another run's redis-server
    with refusing_port() as port:
        process = Process(f"redis://127.0.0.1:{port}/0", plan=LATER, timeout=0.3)
        try:
            session = process.bound()
            with pytest.raises(NoIdAvailable):
                process.messages.ids.next(time.time())
            reply = await answer(process.request(session, CommandId.submit_sm))
            assert reply.pdu is not None and reply.pdu.command_status == CommandStatus.ESME_RSYSERR
        finally:
            process.stop()
    # the same process against a live Redis takes its ids from there
    process = Process(redis_server.url, plan=LATER)
    try:
        message_id = await process.submit(process.bound())
        assert len(message_id) == 16 and message_id.startswith("0B")
    finally:
        process.stop()


@pytest_twisted.ensureDeferred
async def test_the_record_of_an_accepted_message_is_in_redis(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    A message accepted through one process is summarised in
    ``smsc-sim:NA:msg:{id}`` (one JSON value: state, owner, account,
    addresses, times, what replace_sm may change), with a TTL; its final
    state follows and the rest of the summary stays.
    """
    smpp1, _smpp2 = processes
    session = smpp1.bound()
    message_id = await smpp1.submit(session, source_addr_ton=5, source_addr_npi=0, source_addr="Brand")
    redis = await _redis(redis_server)
    try:
        key = f"smsc-sim:NA:msg:{message_id}"
        await _until(lambda: smpp1.messages.journal.written >= 1)
        record = decode_record(await redis.get(key))
        assert record["state"] == "ENROUTE"
        assert record["owner"] == smpp1.store.owner
        assert record["account"] == "esme"
        assert record["message_id"] == message_id
        assert (record["source_addr_ton"], record["source_addr_npi"], record["source_addr"]) == (5, 0, "Brand")
        assert record["destination_addr"] == "447700900002"
        assert record["final_time"] == "" and record["err"] == 0
        assert record["short_message"] == b"hello".hex()
        assert record["registered_delivery"] == 1
        assert 600_000 < await redis.execute_command("PTTL", key) <= (48 * 3600 + 600) * 1000
        smpp1.core.force_receipt(message_id, "UNDELIV", 11)
        await _until(lambda: smpp1.messages.journal.written >= 2)
        record = decode_record(await redis.get(key))
        assert (record["state"], record["err"]) == ("UNDELIVERABLE", 11)
        assert record["final_time"] != ""
        assert (record["account"], record["source_addr"], record["short_message"]) == ("esme", "Brand", b"hello".hex())
        assert 0 < await redis.execute_command("PTTL", key) <= 600_000
    finally:
        await redis.disconnect()


@pytest_twisted.ensureDeferred
async def test_query_sm_through_the_other_process(processes: tuple[Process, Process]) -> None:
    """
    query_sm sent to SMPP2 for a message accepted through SMPP1 answers its
    state (ENROUTE, then DELIVERED with its final_date); another source
    address, another account or an unknown id get ESME_RQUERYFAIL (0x67).
    """
    smpp1, smpp2 = processes
    message_id = await smpp1.submit(smpp1.bound())
    await _until(lambda: smpp1.messages.journal.written >= 1)
    esme2 = smpp2.bound()
    reply = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=message_id))
    assert reply.pdu is not None and reply.pdu.command_status == 0
    assert reply.pdu.params["message_state"] == MessageState.ENROUTE
    assert reply.pdu.params["final_date"] == ""
    smpp1.core.force_receipt(message_id, "DELIVRD")
    await _until(lambda: smpp1.messages.journal.written >= 2)
    reply = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=message_id))
    assert reply.pdu is not None and reply.pdu.params["message_state"] == MessageState.DELIVERED
    assert len(reply.pdu.params["final_date"]) == 16
    for session, params in (
        (esme2, {"message_id": message_id, "source_addr": "447700900009"}),
        (smpp2.bound("other"), {"message_id": message_id}),
        (esme2, {"message_id": "0B00000000000001"}),
    ):
        reply = await answer(smpp2.request(session, CommandId.query_sm, **params))
        assert reply.pdu is not None and reply.pdu.command_status == CommandStatus.ESME_RQUERYFAIL


@pytest_twisted.ensureDeferred
async def test_addresses_with_quotes_commas_and_tabs_survive_the_packed_record(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    A message whose source address and service_type hold a quote, a comma,
    a backslash, a tab and a non-ASCII letter is still found by query_sm and
    cancelled by cancel_sm through the other process (its record is one
    JSON value: those characters must not break it), and its record reads
    back as submitted.
    """
    smpp1, smpp2 = processes
    source = 'a"b,c\\d\te\u00e9'
    session = smpp1.bound()
    message_id = await smpp1.submit(session, source_addr=source, service_type='x",y')
    await _until(lambda: smpp1.messages.journal.written >= 1)
    redis = await _redis(redis_server)
    try:
        record = decode_record(await redis.get(f"smsc-sim:NA:msg:{message_id}"))
        assert (record["source_addr"], record["service_type"], record["state"]) == (source, 'x",y', "ENROUTE")
    finally:
        await redis.disconnect()
    esme2 = smpp2.bound()
    reply = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=message_id, source_addr=source))
    assert reply.pdu is not None and reply.pdu.command_status == 0
    assert reply.pdu.params["message_state"] == MessageState.ENROUTE
    reply = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id=message_id, source_addr=source))
    assert reply.pdu is not None and reply.pdu.command_status == 0
    reply = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=message_id, source_addr=source))
    assert reply.pdu is not None and reply.pdu.params["message_state"] == MessageState.DELETED


@pytest_twisted.ensureDeferred
async def test_cancel_sm_through_the_other_process(processes: tuple[Process, Process]) -> None:
    """
    cancel_sm sent to SMPP2 for a pending message of SMPP1 is accepted; SMPP1
    ends the message DELETED (its DELIVRD receipt never comes; the DELETED
    receipt registered_delivery asks for is sent instead) and a second
    cancel_sm, or one from another source address, gets ESME_RCANCELFAIL (0x11).
    """
    smpp1, smpp2 = processes
    esme1 = smpp1.bound()
    message_id = await smpp1.submit(esme1)
    await _until(lambda: smpp1.messages.journal.written >= 1)
    esme2 = smpp2.bound()
    wrong = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id=message_id, source_addr="1"))
    assert wrong.pdu is not None and wrong.pdu.command_status == CommandStatus.ESME_RCANCELFAIL
    reply = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id=message_id))
    assert reply.pdu is not None and (reply.pdu.command_id, reply.pdu.command_status) == (CommandId.cancel_sm_resp, 0)
    record = smpp1.core.message(message_id)
    assert record is not None
    await _until(lambda: record.state == MessageState.DELETED)
    await _until(lambda: len(esme1.pdus) == 1)
    assert b"stat:DELETED" in esme1.pdus[0].params["short_message"]
    again = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id=message_id))
    assert again.pdu is not None and again.pdu.command_status == CommandStatus.ESME_RCANCELFAIL
    query = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=message_id))
    assert query.pdu is not None and query.pdu.params["message_state"] == MessageState.DELETED
    # SMPP1's own query agrees
    local = await answer(smpp1.request(esme1, CommandId.query_sm, message_id=message_id))
    assert local.pdu is not None and local.pdu.params["message_state"] == MessageState.DELETED


@pytest_twisted.ensureDeferred
async def test_replace_sm_through_the_other_process(processes: tuple[Process, Process]) -> None:
    """
    replace_sm sent to SMPP2 for a pending message of SMPP1 is accepted and
    SMPP1's message gets the new text and registered_delivery; a bad
    registered_delivery gets ESME_RINVREGDLVFLG and changes nothing; a
    replace_sm of a final message gets ESME_RREPLACEFAIL (0x13).
    """
    smpp1, smpp2 = processes
    message_id = await smpp1.submit(smpp1.bound())
    await _until(lambda: smpp1.messages.journal.written >= 1)
    esme2 = smpp2.bound()
    bad = await answer(
        smpp2.request(esme2, CommandId.replace_sm, message_id=message_id, short_message=b"x", registered_delivery=3)
    )
    assert bad.pdu is not None and bad.pdu.command_status == CommandStatus.ESME_RINVREGDLVFLG
    reply = await answer(
        smpp2.request(
            esme2, CommandId.replace_sm, message_id=message_id, short_message=b"replaced", registered_delivery=0
        )
    )
    assert reply.pdu is not None and (reply.pdu.command_id, reply.pdu.command_status) == (CommandId.replace_sm_resp, 0)
    record = smpp1.core.message(message_id)
    assert record is not None
    await _until(lambda: record.short_message == b"replaced")
    assert record.registered_delivery == 0 and record.state == MessageState.ENROUTE
    assert record.replaced_time is not None
    # the replaced record is written before the receipt is forced: two changes within one reactor turn go
    # out as one line, and the count below would then stop at 2 (it did, once, on a loaded machine)
    await _until(lambda: smpp1.messages.journal.written >= 2)
    smpp1.core.force_receipt(message_id, "DELIVRD")
    await _until(lambda: smpp1.messages.journal.written >= 3)
    final = await answer(
        smpp2.request(esme2, CommandId.replace_sm, message_id=message_id, short_message=b"late", registered_delivery=0)
    )
    assert final.pdu is not None and final.pdu.command_status == CommandStatus.ESME_RREPLACEFAIL
    assert record.short_message == b"replaced"


@pytest_twisted.ensureDeferred
async def test_operations_while_redis_is_down_answer_syserr(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    With Redis gone, query_sm, cancel_sm and replace_sm of a message this
    process does not know get ESME_RSYSERR (0x08) within the bound (2 s),
    never a hang; messages this process holds are still answered locally.
    """
    smpp1, smpp2 = processes
    esme2 = smpp2.bound()
    local_id = await smpp2.submit(esme2)
    redis_server.stop()
    started = time.monotonic()
    for command, params in (
        (CommandId.query_sm, {}),
        (CommandId.cancel_sm, {}),
        (CommandId.replace_sm, {"short_message": b"x", "registered_delivery": 0}),
    ):
        reply = await answer(smpp2.request(esme2, command, message_id="0B00000000000001", **params))
        assert reply.pdu is not None and reply.pdu.command_status == CommandStatus.ESME_RSYSERR
    assert time.monotonic() - started < 3 * 2.5
    local = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=local_id))
    assert local.pdu is not None and local.pdu.params["message_state"] == MessageState.ENROUTE


@pytest_twisted.ensureDeferred
async def test_a_final_state_in_redis_is_never_overwritten(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    Once another process cancelled a message in Redis (DELETED), a state the
    owner writes afterwards (a DELIVERED decided in the same moment) leaves
    the record DELETED: the state other processes read, and the receipt
    failover skips, is the one decided first.
    """
    smpp1, smpp2 = processes
    message_id = await smpp1.submit(smpp1.bound())
    await _until(lambda: smpp1.messages.journal.written >= 1)
    assert await smpp2.messages.remote.cancel(message_id, "esme", "447700900001", time.time()) is True
    record = smpp1.core.message(message_id)
    assert record is not None
    # the owner's DELIVERED, as if decided before the cancel reached it
    record.state = MessageState.DELIVERED
    smpp1.messages.journal.changed(record)
    await _until(lambda: smpp1.messages.journal.written >= 2)
    redis = await _redis(redis_server)
    try:
        assert decode_record(await redis.get(f"smsc-sim:NA:msg:{message_id}"))["state"] == "DELETED"
    finally:
        await redis.disconnect()


def test_both_journals_are_told_everything() -> None:
    """With a durable store and a cluster store, each journal hears every report, the durable one first."""
    from smsc_sim.core.journal import BothJournals
    from smsc_sim.core.record import MessageRecord

    heard: list[tuple[str, str]] = []

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        def answering(self, handler: Any) -> Any:
            def answering(entry: Any, pdu: Any) -> Any:
                heard.append((self.name, "answering"))
                return handler(entry, pdu)

            return answering

        def accepted(self, record: Any) -> None:
            heard.append((self.name, "accepted"))

        def plan_started(self, record: Any, expected: float) -> None:
            heard.append((self.name, "plan_started"))

        def changed(self, record: Any, whole: bool = False) -> None:
            heard.append((self.name, "changed"))

        def delivery_sent(self, delivery: Any, record: Any) -> None:
            heard.append((self.name, "delivery_sent"))

        def cleared(self) -> None:
            heard.append((self.name, "cleared"))

    both = BothJournals(Recording("durable"), Recording("cluster"))
    record = MessageRecord("A", "A", 1, "esme", "SMPP1", 1, 0.0)

    def handler(entry: Any, pdu: Any) -> Any:
        return "reply"

    answering: Any = both.answering(handler)
    assert answering(None, None) == "reply"
    both.accepted(record)
    both.plan_started(record, 0.0)
    both.changed(record)
    both.delivery_sent(None, record)  # type: ignore[arg-type]
    both.cleared()
    kinds = ["answering", "accepted", "plan_started", "changed", "delivery_sent", "cleared"]
    assert heard == [(name, kind) for kind in kinds for name in ("durable", "cluster")]


@pytest_twisted.ensureDeferred
async def test_service_returns_after_a_redis_restart(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    After Redis restarts (empty), both processes reconnect by themselves: a
    message submitted through SMPP1 afterwards is cancelled through SMPP2,
    and SMPP1 ends it DELETED (its inbox pops again).  SMPP1 writes the
    records Redis lost again, so a message submitted before the restart is
    still found by query_sm through SMPP2.
    """
    smpp1, smpp2 = processes
    esme1, esme2 = smpp1.bound(), smpp2.bound()
    before = await smpp1.submit(esme1)
    await _until(lambda: smpp1.messages.journal.written >= 1)
    redis_server.restart()
    deadline = time.monotonic() + 15
    while True:
        message_id = await smpp1.submit(esme1)
        written = smpp1.messages.journal.written
        await _until(lambda: smpp1.messages.journal.written > written or smpp1.messages.journal.lost > 0, 6)
        reply = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id=message_id))
        assert reply.pdu is not None
        if reply.pdu.command_status == 0:
            break
        assert time.monotonic() < deadline, f"cancel_sm still answers {reply.pdu.command_status:#x}"
        await _sleep(0.5)
    record = smpp1.core.message(message_id)
    assert record is not None
    await _until(lambda: record.state == MessageState.DELETED, 10)
    deadline = time.monotonic() + 10
    while True:
        reply = await answer(smpp2.request(esme2, CommandId.query_sm, message_id=before))
        assert reply.pdu is not None
        if reply.pdu.command_status == 0:
            break
        assert time.monotonic() < deadline, f"query_sm still answers {reply.pdu.command_status:#x}"
        await _sleep(0.2)
    assert reply.pdu.params["message_state"] == MessageState.ENROUTE


@pytest_twisted.ensureDeferred
async def test_cancel_sm_by_address_reaches_every_process(redis_server: RedisServer) -> None:
    """
    cancel_sm with an empty message_id sent to SMPP2 ends DELETED every
    pending message of that source and destination, those accepted through
    SMPP1 as well as SMPP2's own (with their DELETED receipts), and no other;
    it is accepted when only SMPP1 had one; sent again, with nothing left to
    cancel anywhere, it gets ESME_RCANCELFAIL (0x11), as in one process.
    """
    smpp1 = Process(redis_server.url, plan=LATER, deliveries=True)
    smpp2 = Process(redis_server.url, plan=LATER, deliveries=True)
    try:
        await _until(lambda: all(p.store.deliveries["NA"]._healthy_since is not None for p in (smpp1, smpp2)))
        esme1, esme2 = smpp1.bound(), smpp2.bound()
        to_b = [await smpp1.submit(esme1, destination_addr="B"), await smpp1.submit(esme1, destination_addr="B")]
        to_c = await smpp1.submit(esme1, destination_addr="C")
        other_source = await smpp1.submit(esme1, destination_addr="B", source_addr="447700900009")
        own = await smpp2.submit(esme2, destination_addr="B")
        to_d = await smpp1.submit(esme1, destination_addr="D")

        def cancel(destination: str) -> Reply | Deferred[Reply]:
            return smpp2.request(esme2, CommandId.cancel_sm, message_id="", destination_addr=destination)

        reply = await answer(cancel("B"))
        assert reply.pdu is not None and (reply.pdu.command_id, reply.pdu.command_status) == (CommandId.cancel_sm_resp, 0)
        states = {mid: smpp1.core.message(mid).state for mid in [*to_b, to_c, other_source, to_d]}  # type: ignore[union-attr]
        assert states == {to_b[0]: MessageState.DELETED, to_b[1]: MessageState.DELETED, to_c: MessageState.ENROUTE,
                          other_source: MessageState.ENROUTE, to_d: MessageState.ENROUTE}  # fmt: skip
        assert smpp2.core.message(own).state == MessageState.DELETED  # type: ignore[union-attr]
        await _until(lambda: len(esme1.pdus) == 2)
        assert all(b"stat:DELETED" in pdu.params["short_message"] for pdu in esme1.pdus)
        only_there = await answer(cancel("D"))
        assert only_there.pdu is not None and only_there.pdu.command_status == 0
        assert smpp1.core.message(to_d).state == MessageState.DELETED  # type: ignore[union-attr]
        again = await answer(cancel("B"))
        assert again.pdu is not None and again.pdu.command_status == CommandStatus.ESME_RCANCELFAIL
    finally:
        smpp1.stop()
        smpp2.stop()
        await _sleep(0.05)


@pytest_twisted.ensureDeferred
async def test_cancel_sm_by_address_while_redis_is_down(redis_server: RedisServer) -> None:
    """
    With Redis gone, cancel_sm with an empty message_id matching nothing in
    this process gets ESME_RSYSERR (0x08) within 2 s, never a hang; one that
    cancels messages here is accepted (they end DELETED) even though the
    other processes could not be asked.
    """
    smpp2 = Process(redis_server.url, plan=LATER, deliveries=True)
    try:
        esme2 = smpp2.bound()
        here = await smpp2.submit(esme2, destination_addr="B")
        redis_server.stop()
        started = time.monotonic()
        reply = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id="", destination_addr="Z"))
        assert reply.pdu is not None and reply.pdu.command_status == CommandStatus.ESME_RSYSERR
        assert time.monotonic() - started < 2.5
        cancelled = await answer(smpp2.request(esme2, CommandId.cancel_sm, message_id="", destination_addr="B"))
        assert cancelled.pdu is not None and cancelled.pdu.command_status == 0
        assert smpp2.core.message(here).state == MessageState.DELETED  # type: ignore[union-attr]
    finally:
        smpp2.stop()
        await _sleep(0.05)
