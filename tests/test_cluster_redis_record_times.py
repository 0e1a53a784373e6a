"""
The times in a message's summary in Redis (``smsc-sim:NA:msg:{id}``), which
the journal writes to the millisecond as a JSON number of seconds: against a
real redis-server, two cores standing for two processes (``tests/redis_cores.py``).  redis-server must be installed
(``scripts/install-redis.sh``); when it is not, these tests fail saying so.
"""

from __future__ import annotations

import json

import pytest_twisted

from smsc_sim.cluster.redis.records import decode_record
from smsc_sim.smpp.constants import CommandId, MessageState
from tests.redis_async import until as _until
from tests.redis_cores import Process
from tests.redis_cores import answer as _answer
from tests.redis_harness import RedisServer
from tests.test_cluster_redis_messages import _redis


@pytest_twisted.ensureDeferred
async def test_record_times_are_the_messages_to_the_millisecond(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    A message's summary holds its submit, validity and (once final) final
    times as JSON numbers of seconds, each within a millisecond of the
    owner's own record; query_sm through the other process answers the
    same final_date as through the owner.
    """
    smpp1, smpp2 = processes
    session = smpp1.bound()
    message_id = await smpp1.submit(session)
    owner_record = smpp1.core.store.get(message_id)
    assert owner_record is not None
    redis = await _redis(redis_server)
    try:
        key = f"smsc-sim:NA:msg:{message_id}"
        await _until(lambda: smpp1.messages.journal.written >= 1)
        raw = await redis.get(key)
        assert isinstance(json.loads(raw), list)  # one JSON value, numbers and all
        record = decode_record(raw)
        assert isinstance(record["submit_time"], float) and isinstance(record["validity_time"], float)
        assert abs(record["submit_time"] - owner_record.submit_time) < 0.001
        assert abs(record["validity_time"] - owner_record.validity_time) < 0.001
        assert record["final_time"] == "" and record["schedule_time"] == "" and record["replaced_time"] == ""
        smpp1.core.force_receipt(message_id, "DELIVRD")
        await _until(lambda: smpp1.messages.journal.written >= 2)
        record = decode_record(await redis.get(key))
        assert owner_record.final_time is not None
        assert record["state"] == "DELIVERED"
        assert abs(record["final_time"] - owner_record.final_time) < 0.001
        assert abs(record["submit_time"] - owner_record.submit_time) < 0.001  # the rest of the value kept
    finally:
        await redis.disconnect()
    answers = []
    for process in (smpp1, smpp2):
        reply = await _answer(process.request(process.bound(), CommandId.query_sm, message_id=message_id))
        assert reply.pdu is not None and reply.pdu.command_status == 0
        assert reply.pdu.params["message_state"] == MessageState.DELIVERED
        answers.append(reply.pdu.params["final_date"])
    assert answers[0] == answers[1] and len(answers[0]) == 16


@pytest_twisted.ensureDeferred
async def test_a_replaced_messages_times_read_back(
    redis_server: RedisServer, processes: tuple[Process, Process]
) -> None:
    """
    replace_sm through the other process with a schedule and a validity
    (relative times) rewrites those times in the summary as numbers the
    owner's record agrees with, and marks when it was replaced.
    """
    smpp1, smpp2 = processes
    message_id = await smpp1.submit(smpp1.bound())
    await _until(lambda: smpp1.messages.journal.written >= 1)
    reply = await _answer(
        smpp2.request(
            smpp2.bound(), CommandId.replace_sm, message_id=message_id, short_message=b"later",
            schedule_delivery_time="000000000100000R", validity_period="000001000000000R", registered_delivery=1,
        )
    )  # fmt: skip
    assert reply.pdu is not None and reply.pdu.command_status == 0
    owner_record = smpp1.core.store.get(message_id)
    assert owner_record is not None
    await _until(lambda: owner_record.short_message == b"later")
    # the submit's line was the first; the replaced record is the second (counting from the moment the
    # replace is seen here would miss a write that ended within the same wait)
    await _until(lambda: smpp1.messages.journal.written >= 2)
    redis = await _redis(redis_server)
    try:
        record = decode_record(await redis.get(f"smsc-sim:NA:msg:{message_id}"))
    finally:
        await redis.disconnect()
    assert owner_record.schedule_time is not None and owner_record.replaced_time is not None
    assert record["short_message"] == b"later".hex()
    assert abs(record["schedule_time"] - owner_record.schedule_time) < 0.001
    assert abs(record["validity_time"] - owner_record.validity_time) < 0.001
    assert abs(record["replaced_time"] - owner_record.replaced_time) < 0.001
