"""
The live event stream over a real loopback socket: a client that stops
reading fills the kernel's and twisted's buffers, and is then dropped once
its stream's queue is full, while a client that reads gets every event.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from smsc_sim.testing.harness import InProcessSimulator

pytestmark = pytest.mark.integration

#: events published per reactor turn, and their padding: about 200 kB a turn
BATCH = 100
PADDING = "x" * 2000
#: turns at most (some 40 MB): far more than loopback's buffers and the stream's queue hold
MAX_TURNS = 200


class StreamClient(Protocol):
    """A raw HTTP client of GET /api/v1/events that can stop reading."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.lost: Deferred[None] = Deferred()
        self.closed = False

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        self.lost.callback(None)


async def open_stream(smsc: InProcessSimulator) -> StreamClient:
    from twisted.internet import reactor

    host, port = smsc.api_url.removeprefix("http://").split(":")
    client = await TCP4ClientEndpoint(reactor, host, int(port)).connect(Factory.forProtocol(StreamClient))
    assert isinstance(client, StreamClient), client
    streams = smsc.simulator.getServiceNamed("api").control.streams
    for _ in range(100):
        if streams.streams:
            break
        await deferLater(reactor, 0.01, lambda: None)
    assert streams.streams, "the stream did not open"
    return client


async def publish_until(smsc: InProcessSimulator, stop: Any, turns: int = MAX_TURNS, pause: float = 0.0) -> int:
    """Publish BATCH padded events, then wait ``pause`` s (at least a reactor turn), until ``stop()`` or ``turns``; returns how many."""
    from twisted.internet import reactor

    sent = 0
    for _ in range(turns):
        if stop():
            break
        for _ in range(BATCH):
            sent += 1
            smsc.simulator.events.publish("message", message_id=f"M{sent}", state="ENROUTE", pad=PADDING)
        await deferLater(reactor, pause, lambda: None)
    return sent


@pytest_twisted.ensureDeferred
async def test_client_that_stops_reading_is_dropped() -> None:
    """A stream client that stops reading is disconnected by the server after its bounded queue fills; the server keeps no stream."""
    from twisted.internet import reactor

    smsc = await InProcessSimulator().start()
    client = None
    try:
        client = await open_stream(smsc)
        streams = smsc.simulator.getServiceNamed("api").control.streams
        [stream] = streams.streams
        IPushProducer(client.transport).pauseProducing()  # stop reading: the kernel buffers fill, then twisted's
        sent = await publish_until(smsc, lambda: stream.closed)
        assert stream.dropped, f"not dropped after {sent} events"
        assert streams.streams == []
        IPushProducer(client.transport).resumeProducing()
        lost = client.lost
        timeout = reactor.callLater(5, lost.cancel)
        await lost
        if timeout.active():
            timeout.cancel()
        assert len(client.received) < sent * len(PADDING), "the server did not hold everything for it"
    finally:
        if client is not None and not client.closed:
            ITCPTransport(client.transport).abortConnection()
        await smsc.stop()


@pytest_twisted.ensureDeferred
async def test_client_that_reads_gets_every_event() -> None:
    """A stream client that keeps reading gets every one of 5000 events (20 MB/s for 0.5 s), in order, and stays connected."""
    from twisted.internet import reactor

    smsc = await InProcessSimulator().start()
    client = None
    try:
        client = await open_stream(smsc)
        [stream] = smsc.simulator.getServiceNamed("api").control.streams.streams
        sent = await publish_until(smsc, lambda: False, turns=50, pause=0.01)
        for _ in range(500):
            if f'"message_id":"M{sent}"'.encode() in client.received:
                break
            await deferLater(reactor, 0.01, lambda: None)
        ids = [int(part.split(b'"', 1)[0]) for part in bytes(client.received).split(b'"message_id":"M')[1:]]
        assert ids == list(range(1, sent + 1))
        assert not stream.closed
    finally:
        if client is not None:
            ITCPTransport(client.transport).abortConnection()
        await smsc.stop()
