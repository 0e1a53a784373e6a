"""
An instance whose port another process took during an outage takes it back
when that process lets it go: the listener tries again every second for a
minute, and says so in the log, instead of staying down for good after the
outage's end.  Real sockets on 127.0.0.1 (the port really taken and freed);
a :class:`~twisted.internet.task.Clock` drives the tries.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import provider

from smsc_sim.topology import RELISTEN_ATTEMPTS, RELISTEN_INTERVAL, Listener


def taken(port: int) -> bool:
    """Whether something listens on ``port`` (a bind to it is refused)."""
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as error:
        assert error.errno == errno.EADDRINUSE
        return True
    finally:
        probe.close()
    return False


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """The text of every event logged meanwhile."""
    texts: list[str] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if "log_format" in event and event.get("log_namespace", "").startswith("smsc_sim.topology"):
            texts.append(event["log_format"].format(**event))

    globalLogPublisher.addObserver(observe)
    yield texts
    globalLogPublisher.removeObserver(observe)


async def down_listener() -> tuple[Listener, Clock, int, socket.socket]:
    """
    A listener on an ephemeral port, closed as an outage closes it, and a
    plain socket of another "process" listening on that port meanwhile.
    """
    clock = Clock()
    listener = Listener(reactor, "tcp:0:interface=127.0.0.1", Factory.forProtocol(Protocol), clock=clock)
    listener.startService()
    address = listener.address()
    assert address is not None
    port = address[1]
    await listener.unlisten()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    return listener, clock, port, squatter


@pytest_twisted.ensureDeferred
async def test_an_outage_end_takes_the_port_back_once_it_is_free(logged: list[str]) -> None:
    """
    The outage ends while another socket holds the port: the end is not held
    up (the listen fires None at once), the log says the listener will try
    again, and one interval after the other socket closes the instance
    listens on its port again.
    """
    listener, clock, port, squatter = await down_listener()
    try:
        await _takes_back(listener, clock, port, squatter, logged)
    finally:
        squatter.close()
        await listener.stopService()


async def _takes_back(listener: Listener, clock: Clock, port: int, squatter: socket.socket, logged: list[str]) -> None:
    outcome: list[object] = []
    listener.listen().addCallback(outcome.append)
    assert outcome == [None]
    assert listener.address() is None
    assert any(f"trying again every {RELISTEN_INTERVAL:g} s" in text for text in logged), logged
    clock.advance(RELISTEN_INTERVAL)  # still taken: one more failed try, logged no more
    assert listener.address() is None
    squatter.close()
    clock.advance(RELISTEN_INTERVAL)
    assert listener.address() == ("127.0.0.1", port)
    assert taken(port)
    assert any("listening again on" in text and "after 2 failed tries" in text for text in logged), logged
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_the_tries_stop_after_a_bound_and_the_log_says_so(logged: list[str]) -> None:
    """
    A port that stays taken is tried :data:`RELISTEN_ATTEMPTS` times after
    the first failure, then the listener gives up and logs that it did:
    no timer is left behind.
    """
    listener, clock, _, squatter = await down_listener()
    try:
        listener.listen()
        for _ in range(RELISTEN_ATTEMPTS):
            assert len(clock.getDelayedCalls()) == 1
            clock.advance(RELISTEN_INTERVAL)
        assert clock.getDelayedCalls() == []
        assert listener.address() is None
        assert any(f"gave up after {RELISTEN_ATTEMPTS + 1} tries" in text for text in logged), logged
    finally:
        squatter.close()
        await listener.stopService()


@pytest_twisted.ensureDeferred
async def test_stopping_cancels_the_tries() -> None:
    """A listener stopped (the simulator shutting down) while it tries again leaves no timer."""
    listener, clock, _, squatter = await down_listener()
    try:
        listener.listen()
        assert len(clock.getDelayedCalls()) == 1
        await listener.stopService()
        assert clock.getDelayedCalls() == []
    finally:
        squatter.close()


def test_a_port_taken_at_start_is_not_tried_again(logged: list[str]) -> None:
    """
    A listener that cannot listen at start is a configuration error, said at
    once: it logs the failure and does not try again.
    """
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    port = squatter.getsockname()[1]
    clock = Clock()
    listener = Listener(reactor, f"tcp:{port}:interface=127.0.0.1", Factory.forProtocol(Protocol), clock=clock)
    try:
        listener.startService()
        assert listener.address() is None
        assert clock.getDelayedCalls() == []
        assert any(f"cannot listen on tcp:{port}" in text for text in logged), logged
        assert not any("trying again" in text for text in logged), logged
    finally:
        listener.stopService()
        squatter.close()
