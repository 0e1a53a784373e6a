"""
The control API over real TCP on 127.0.0.1 (ephemeral ports), with treq and
the real reactor (pytest-twisted): an in-process simulator, an ESME over
TCP, and the waits that let a test follow it without sleeping.
"""

from __future__ import annotations

import pytest
import pytest_twisted
import treq
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.protocol import Factory

from smsc_sim.testing.client import APIRequestError, WaitTimeout
from smsc_sim.testing.harness import InProcessSimulator
from tests import wire
from tests.test_api import RecordingESME

pytestmark = pytest.mark.integration

FAST_RECEIPTS = "name: fast\nreceipt:\n  stat: DELIVRD\n  delay: 0s\n"


async def connect_esme(
    smsc: InProcessSimulator, instance: str = "SMPP1", address: tuple[str, int] | None = None
) -> RecordingESME:
    """A raw ESME connected over TCP to an instance (or to an address it had)."""
    from twisted.internet import reactor

    host, port = address if address is not None else smsc.address(instance)
    endpoint = TCP4ClientEndpoint(reactor, host, port)
    esme = await endpoint.connect(Factory.forProtocol(RecordingESME))
    assert isinstance(esme, RecordingESME), esme
    return esme


@pytest_twisted.ensureDeferred
async def test_health_and_instances_over_tcp() -> None:
    """Liveness, readiness and the instances answer over TCP, with the listening ports."""
    smsc = await InProcessSimulator().start()
    try:
        response = await treq.get(smsc.api_url + "/api/v1/health/live")
        assert response.code == 200
        assert await response.json() == {"status": "live"}
        assert await smsc.ready() is True
        instances = {i["name"]: i for i in await smsc.instances()}
        assert instances["SMPP1"]["listening"] == [f"127.0.0.1:{smsc.port('SMPP1')}"]
    finally:
        await smsc.stop()


@pytest_twisted.ensureDeferred
async def test_bind_submit_and_receipt_over_tcp() -> None:
    """An ESME binds and submits over TCP; the API's waits see the bind, the message and the acknowledged receipt."""
    smsc = await InProcessSimulator().start()
    esme = None
    try:
        await smsc.load_scenario(yaml=FAST_RECEIPTS)
        esme = await connect_esme(smsc)
        esme.send(wire.bind())
        [session] = await smsc.wait_for_bind(account="smppclient1", timeout=5)
        assert session["bind_type"] == "transceiver"
        esme.send(wire.submit_sm(2, destination="447700900042", text=b"over tcp"))
        [message] = await smsc.wait_for_messages(count=1, destination="447700900042", timeout=5)
        assert message["text"] == "over tcp"
        done = await smsc.wait_for_receipt(message["message_id"], timeout=5)
        assert done["receipt"]["stat"] == "DELIVRD"
        assert 0x05 in esme.commands()
    finally:
        if esme is not None:
            ITCPTransport(esme.transport).abortConnection()
        await smsc.stop()


@pytest_twisted.ensureDeferred
async def test_wait_timeout_and_errors_over_tcp() -> None:
    """A wait that runs out raises WaitTimeout; an unknown instance raises a 404 APIRequestError."""
    smsc = await InProcessSimulator().start()
    try:
        with pytest.raises(WaitTimeout) as timeout:
            await smsc.wait_for_messages(count=1, timeout=0.05)
        assert timeout.value.status == 408
        with pytest.raises(APIRequestError) as missing:
            await smsc.start_outage("SMPP9", "crash")
        assert missing.value.status == 404
    finally:
        await smsc.stop()


@pytest_twisted.ensureDeferred
async def test_token_over_tcp() -> None:
    """With a token, a call without it is 401, liveness still answers, and the client with the token gets through."""
    smsc = await InProcessSimulator(token="letmein").start()
    try:
        response = await treq.get(smsc.api_url + "/api/v1/instances")
        assert response.code == 401
        assert (await response.json())["error"]["status"] == 401
        assert (await treq.get(smsc.api_url + "/api/v1/health/live")).code == 200
        assert len(await smsc.instances()) == 3
    finally:
        await smsc.stop()


@pytest_twisted.ensureDeferred
async def test_outage_over_tcp_refuses_connections() -> None:
    """A graceful outage unbinds the ESME and closes the port; ending it opens the port again."""
    smsc = await InProcessSimulator().start()
    try:
        address = smsc.address("SMPP2")
        esme = await connect_esme(smsc, "SMPP2")
        esme.send(wire.bind())
        await smsc.wait_for_bind(instance="SMPP2", timeout=5)
        instance = await smsc.start_outage("SMPP2", "graceful")
        assert instance["listening"] == []
        assert 0x06 in esme.commands()
        with pytest.raises(ConnectionRefusedError):
            await connect_esme(smsc, address=address)
        instance = await smsc.end_outage("SMPP2")
        assert len(instance["listening"]) == 1
        again = await connect_esme(smsc, "SMPP2")
        assert again.transport is not None
        again.transport.loseConnection()
    finally:
        await smsc.stop()


@pytest_twisted.ensureDeferred
async def test_submits_log_and_metrics_over_tcp() -> None:
    """
    Over TCP, a refused submit and three accepted ones (the accepted ones
    reach the API without a call of its own) are all in GET /api/v1/submits,
    in order, with their sequence_number and status; /metrics counts them.
    """
    smsc = await InProcessSimulator(scenario="error-codes").start()
    esme = None
    try:
        esme = await connect_esme(smsc)
        esme.send(wire.bind())
        await smsc.wait_for_bind(account="smppclient1", timeout=5)
        esme.send(
            wire.submit_sm(2, destination="99900011", registered_delivery=0)  # ESME_RINVDSTADR by the scenario
            + b"".join(wire.submit_sm(n, destination=f"44770090000{n}", registered_delivery=0) for n in (3, 4, 5))
        )
        await smsc.wait_for_messages(count=3, timeout=5)  # the refused one came first: it is answered too
        entries = await smsc.submits()
        assert [(e["number"], e["sequence_number"], e["status_name"]) for e in entries] == [
            (1, 2, "ESME_RINVDSTADR"), (2, 3, "ESME_ROK"), (3, 4, "ESME_ROK"), (4, 5, "ESME_ROK")
        ]  # fmt: skip
        assert [e["destination_addr"] for e in entries[1:]] == [["447700900003"], ["447700900004"], ["447700900005"]]
        assert all(e["account"] == "smppclient1" and e["message_id"] for e in entries[1:])
        lines = (await smsc.metrics()).splitlines()
        answers = 'smsc_sim_pdus_total{command="submit_sm_resp",direction="out",instance="SMPP1",status="%s"} %s'
        assert answers % ("ESME_ROK", "3.0") in lines
        assert answers % ("ESME_RINVDSTADR", "1.0") in lines
        assert 'smsc_sim_response_latency_seconds_count{command="submit_sm"} 4.0' in lines
    finally:
        if esme is not None:
            ITCPTransport(esme.transport).abortConnection()
        await smsc.stop()
