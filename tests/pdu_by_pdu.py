"""
The simulator's event bus as a listener heard it before a submit and its
answer were fused into one tap call: every PDU one by one.  A tally or a
judge subscribed through :class:`SplitBus` is the reference the fused path
must equal (the same counts, latencies and findings).
"""

from __future__ import annotations

from typing import Any

from smsc_sim.smpp.pdu import PDU


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

    def tap(self, tap: Any) -> Any:
        return self.bus.tap(Split(tap))

    def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        return self.bus.subscribe(*args, **kwargs)
