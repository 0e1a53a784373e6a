"""The Twisted ESME against a simulator on the test's own reactor (pytest-twisted): the API answers Deferreds."""

import pytest_twisted
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from esme import TwistedESME


@pytest_twisted.ensureDeferred
async def test_twisted_esme_over_tcp(smsc_sim_inprocess):
    from twisted.internet import reactor

    host, port = smsc_sim_inprocess.address("SMPP1")
    esme = TwistedESME(smsc_sim_inprocess.system_id, smsc_sim_inprocess.password)
    await connectProtocol(TCP4ClientEndpoint(reactor, host, port), esme)
    await esme.bind()
    message_id = await esme.submit("447700900004", "hi")
    [message] = await smsc_sim_inprocess.wait_for_messages(count=1, destination="447700900004", timeout=5)
    assert message["message_id"] == message_id
    esme.transport.loseConnection()
