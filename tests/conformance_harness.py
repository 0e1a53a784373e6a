"""
Helpers for the judge's tests (no tests here): a raw ESME speaking wire
bytes to the in-memory simulator (real sessions, real core, fake clock),
and a test case with a :class:`~smsc_sim.conformance.Judge` subscribed to
the simulator's event bus.

Most tests bind on SMPP0, the standalone instance, so that a test about
one check is not also about binding to both instances of a cluster.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import Config, default_config
from smsc_sim.conformance import Judge, Landscape, Thresholds
from smsc_sim.testing.memory import MemoryConnection, MemorySMSC
from tests import wire

DELIVER_SM = 0x05
DATA_SM = 0x103
ENQUIRE_LINK = 0x15
UNBIND = 0x06
#: the default configuration's ports, by instance
_PORTS = {2775: "SMPP1", 2776: "SMPP2", 2777: "SMPP0"}


class RawESME(Protocol):
    """
    An ESME written with raw SMPP bytes, whose manners the test chooses.

    :param clock: to answer deliver_sm late.
    :param answer_deliver: answer deliver_sm/data_sm at all.
    :param deliver_status: the status of those answers.
    :param deliver_delay: seconds to wait before answering them.
    :param answer_enquire_link: answer the SMSC's enquire_link.
    """

    connection: MemoryConnection

    def __init__(
        self,
        clock: IReactorTime,
        answer_deliver: bool = True,
        deliver_status: int = 0,
        deliver_delay: float = 0.0,
        answer_enquire_link: bool = True,
    ) -> None:
        self.clock = clock
        self.answer_deliver = answer_deliver
        self.deliver_status = deliver_status
        self.deliver_delay = deliver_delay
        self.answer_enquire_link = answer_enquire_link
        self.stream = wire.PDUStream()
        self.received: list[tuple[wire.Header, bytes]] = []
        self.sequence = 0
        self.closed = False

    def dataReceived(self, data: bytes) -> None:
        for header, body in self.stream.feed(data):
            self.received.append((header, body))
            self._answer(header)

    def _answer(self, header: wire.Header) -> None:
        command, sequence = header.command_id, header.sequence_number
        if command in (DELIVER_SM, DATA_SM) and self.answer_deliver:
            response = wire.frame(command | 0x80000000, sequence, b"\x00", self.deliver_status)
            if self.deliver_delay > 0:
                self.clock.callLater(self.deliver_delay, self.send, response)
            else:
                self.send(response)
        elif command == ENQUIRE_LINK and self.answer_enquire_link:
            self.send(wire.frame(0x80000015, sequence))
        elif command == UNBIND:
            self.send(wire.frame(0x80000006, sequence))

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True

    def send(self, raw: bytes) -> None:
        """Write bytes, unless the connection is gone."""
        if not self.closed and self.transport is not None:
            self.transport.write(raw)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def submit(self, sequence: int | None = None, **fields: Any) -> int:
        """Send a submit_sm (``tests.wire.submit_sm`` fields; no receipt asked by default)."""
        fields.setdefault("registered_delivery", 0)
        sequence = self.next_sequence() if sequence is None else sequence
        self.send(wire.submit_sm(sequence, **fields))
        return sequence

    def enquire_link(self) -> None:
        self.send(wire.frame(ENQUIRE_LINK, self.next_sequence()))

    def unbind(self) -> None:
        self.send(wire.frame(UNBIND, self.next_sequence()))

    def responses(self, command_id: int) -> dict[int, int]:
        """sequence_number -> command_status of every response with this command_id."""
        return {h.sequence_number: h.command_status for h, _ in self.received if h.command_id == command_id}


class MemoryTCP:
    """
    The in-memory simulator's clock with a ``connectTCP`` that connects to
    its instances by port (2775 SMPP1, 2776 SMPP2, 2777 SMPP0): enough of a
    reactor for ESME code that connects with ``connectTCP``, such as the
    project's load generator.
    """

    def __init__(self, smsc: MemorySMSC) -> None:
        self.smsc = smsc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.smsc.reactor, name)

    def connectTCP(self, host: str, port: int, factory: Any, timeout: float = 30.0) -> None:
        address = self.smsc._next_peer()
        protocol = factory.buildProtocol(address)
        try:
            self.smsc.connect(protocol, _PORTS[port], address)
        except ConnectionRefusedError as refused:
            from twisted.python.failure import Failure

            factory.clientConnectionFailed(None, Failure(refused))


class JudgeCase(SynchronousTestCase):
    """The in-memory simulator with a judge listening; ``thresholds`` and :meth:`config` may be overridden."""

    thresholds: Thresholds | None = None

    def config(self) -> Config:
        return default_config()

    def setUp(self) -> None:
        self.smsc = MemorySMSC(self.config())
        self.addCleanup(self.smsc.stop)
        self.judge = Judge(self.smsc.clock, Landscape.from_config(self.smsc.config), self.thresholds)
        self.addCleanup(self.judge.subscribe(self.smsc.simulator.events))

    def esme(
        self, instance: str = "SMPP0", bind_command: int = 0x09, system_id: str = "smppclient1", **manners: Any
    ) -> RawESME:
        """Connect an ESME and bind it (transceiver by default), waiting for the bind_resp (latency included)."""
        esme = RawESME(self.smsc.clock, **manners)
        esme.connection = self.smsc.connect(esme, instance)
        esme.send(wire.bind(bind_command, esme.next_sequence(), system_id=system_id))
        self.smsc.flush()
        for _ in range(20):
            if esme.responses(bind_command | 0x80000000):
                break
            self.smsc.advance(0.5)
        return esme

    def leave(self, esme: RawESME) -> None:
        """Unbind, wait for the answer and close: a polite goodbye."""
        esme.unbind()
        self.smsc.flush()
        esme.connection.disconnect()
        self.smsc.flush()

    def live(self, seconds: float, *esmes: RawESME, every: float = 30.0) -> None:
        """Let time pass while the ESMEs send enquire_link every ``every`` seconds."""
        left = seconds
        while left > 0:
            step = min(every, left)
            self.smsc.advance(step)
            left -= step
            if step == every:
                for esme in esmes:
                    esme.enquire_link()
                self.smsc.flush()

    def codes(self, **filters: Any) -> list[str]:
        """The codes of the findings as of now, sorted, each once."""
        return sorted({finding.code for finding in self.judge.findings(**filters)})

    def finding(self, code: str) -> Any:
        """The one finding with this code."""
        [found] = [f for f in self.judge.findings() if f.code == code]
        return found
