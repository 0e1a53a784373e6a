"""
The control API's pcap resources: one session's trace, and every
connection's since a time, from the simulator's trace ring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.task import Cooperator

from smsc_sim.api.http import JSONAPI, APIError, Call, TextResponse, check_keys, number

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator
    from smsc_sim.trace.ring import Connection, TraceRing

#: the media type of a pcap file (RFC 8551's registration: application/vnd.tcpdump.pcap)
PCAP_TYPE = "application/vnd.tcpdump.pcap"


class TraceRoutes:
    """``GET /sessions/{session_id}/trace.pcap`` and ``GET /trace.pcap?since=``."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        clock = simulator.clock
        # a capture is built a slice per reactor turn, on the simulator's clock (see PcapBuild)
        self._cooperator = Cooperator(scheduler=lambda work: clock.callLater(0, work), started=True)

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/sessions/{session_id}/trace.pcap", "GET", self.session)
        api.add(prefix + "/trace.pcap", "GET", self.everything)

    def _ring(self) -> TraceRing:
        trace = self.simulator.trace
        if trace is None or not trace.ring.max_bytes:
            raise APIError(404, "the trace ring is off: start with --pcap FILE or --pcap-ring BYTES (docs/trace.md)")
        ring: TraceRing = trace.ring
        return ring

    def session(self, call: Call) -> Deferred[TextResponse]:
        """The pcap of one session (open or closed) while the ring holds it."""
        check_keys(call.query, (), "query")
        ring = self._ring()
        wanted = call.params["session_id"]
        connection = ring.get(int(wanted)) if wanted.isdigit() and len(wanted) <= 12 else None
        if connection is None:
            raise APIError(404, f"no session {wanted} in the trace ring")
        return self._pcap([connection], None)

    def everything(self, call: Call) -> Deferred[TextResponse]:
        """The pcap of every connection the ring holds; ``since`` (seconds since the epoch) keeps later packets."""
        check_keys(call.query, ("since",), "query")
        since = call.query.get("since")
        moment = number(since, "since", minimum=0) if since is not None else None
        ring = self._ring()
        return self._pcap(ring.connections(moment), moment)

    def _pcap(self, connections: Iterable[Connection], since: float | None) -> Deferred[TextResponse]:
        """The capture, built between other work (each slice of packets is one reactor turn)."""
        from smsc_sim.trace.pcap import PcapBuild

        build = PcapBuild(connections, since)
        done: Deferred[TextResponse] = self._cooperator.coiterate(build.steps()).addCallback(
            lambda _: TextResponse(build.result(), PCAP_TYPE)
        )
        return done
