"""
The control API's pcap resources: one session's trace, and every
connection's since a time, from the simulator's trace ring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smsc_sim.api.http import JSONAPI, APIError, Call, TextResponse, check_keys, number

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator
    from smsc_sim.trace.ring import TraceRing

#: the media type of a pcap file (RFC 8551's registration: application/vnd.tcpdump.pcap)
PCAP_TYPE = "application/vnd.tcpdump.pcap"


class TraceRoutes:
    """``GET /sessions/{session_id}/trace.pcap`` and ``GET /trace.pcap?since=``."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/sessions/{session_id}/trace.pcap", "GET", self.session)
        api.add(prefix + "/trace.pcap", "GET", self.everything)

    def _ring(self) -> TraceRing:
        trace = getattr(self.simulator, "trace", None)
        if trace is None or not trace.ring.max_bytes:
            raise APIError(404, "the trace ring is off: start with --pcap FILE or --pcap-ring BYTES (docs/trace.md)")
        ring: TraceRing = trace.ring
        return ring

    def session(self, call: Call) -> TextResponse:
        """The pcap of one session (open or closed) while the ring holds it."""
        check_keys(call.query, (), "query")
        ring = self._ring()
        wanted = call.params["session_id"]
        connection = ring.get(int(wanted)) if wanted.isdigit() and len(wanted) <= 12 else None
        if connection is None:
            raise APIError(404, f"no session {wanted} in the trace ring")
        from smsc_sim.trace.pcap import pcap_bytes

        return TextResponse(pcap_bytes([connection]), PCAP_TYPE)

    def everything(self, call: Call) -> TextResponse:
        """The pcap of every connection the ring holds; ``since`` (seconds since the epoch) keeps later packets."""
        check_keys(call.query, ("since",), "query")
        since = call.query.get("since")
        moment = number(since, "since", minimum=0) if since is not None else None
        ring = self._ring()
        from smsc_sim.trace.pcap import pcap_bytes

        return TextResponse(pcap_bytes(ring.connections(moment), moment), PCAP_TYPE)
