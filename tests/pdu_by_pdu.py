"""
The simulator's event bus as a listener heard it before a submit and its
answer were fused into one tap call: every PDU one by one.  A tally or a
judge subscribed through :class:`SplitBus` is the reference the fused path
must equal (the same counts, latencies and findings).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import default_config
from smsc_sim.simulator import Simulator, SMPPServerFactory
from smsc_sim.smpp.codec import encode
from smsc_sim.smpp.pdu import PDU, make_pdu


class Split:
    """A PDU tap that hears each submit and its answer as two PDUs, passing them to ``tap`` one by one."""

    def __init__(self, tap: Any) -> None:
        self.tap = tap

    def pdu_in(self, session: Any, pdu: PDU, now: float) -> None:
        self.tap.pdu_in(session, pdu, now)

    def pdu_out(self, session: Any, pdu: PDU) -> None:
        self.tap.pdu_out(session, pdu)

    def submit_answered(self, session: Any, request: PDU, answer: PDU, read_at: float) -> None:
        self.tap.pdu_in(session, request, read_at)
        self.tap.pdu_out(session, answer)


class SplitBus:
    """The simulator's bus, but a tap added to it hears every PDU one by one (through :class:`Split`)."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def tap(self, tap: Any, accepted: Any = None) -> Any:
        # no accepted-submit sink: the tap hears every submit, PDU by PDU
        return self.bus.tap(Split(tap))

    def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        return self.bus.subscribe(*args, **kwargs)


def judged_simulator(test: SynchronousTestCase) -> tuple[MemoryReactorClock, Simulator]:
    """A started simulator on a memory clock (at t=1000), judge on, no API; stopped when ``test`` ends."""
    clock = MemoryReactorClock()
    clock.advance(1000)
    config = dataclasses.replace(default_config(), api_endpoint="", seed=0, conformance_judge=True)
    simulator = Simulator(config, clock)
    simulator.startService()
    test.addCleanup(simulator.stopService)
    return clock, simulator


def bound_session(simulator: Simulator, bind_command: int) -> tuple[Any, StringTransport]:
    """An SMPP1 session of ``simulator`` on a string transport, bound as smppclient1 with ``bind_command``."""
    session = SMPPServerFactory(simulator, simulator.instances["SMPP1"]).buildProtocol(
        IPv4Address("TCP", "127.0.0.1", 40000)
    )
    assert session is not None
    transport = StringTransport()
    session.makeConnection(transport)
    session.dataReceived(encode(make_pdu(bind_command, 1, system_id="smppclient1", password="password")))
    return session, transport
