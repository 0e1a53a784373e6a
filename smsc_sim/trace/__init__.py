"""
The pcap trace: every SMPP connection's octets, both ways, with its connect
and close, as a capture Wireshark and tshark read.

:class:`~smsc_sim.trace.ring.TraceRing` subscribes to the event bus and keeps
what it heard in a bounded ring; :mod:`smsc_sim.trace.pcap` turns connections
into pcap files (``--pcap FILE``, streamed) and bodies (the API's
``trace.pcap``) with dpkt, the optional ``trace`` extra.  See docs/trace.md.
"""

from __future__ import annotations

from smsc_sim.trace.ring import TRACE_KINDS, Connection, Segment, TraceRing

__all__ = ["TRACE_KINDS", "Connection", "Segment", "TraceRing"]
