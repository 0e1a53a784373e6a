"""
Connections of the trace ring as pcap: Ethernet, IPv4 or IPv6 and TCP headers
built by dpkt around the octets each side sent.

Each connection gets its three-way handshake at its connect, one TCP segment
per read or write (split where one would pass the 65,535-octet IP limit),
with the ports of both ends and sequence and acknowledgement numbers that
count the octets each side sent, and a FIN from each side at its close.
Wireshark reassembles the SMPP PDUs from them as from a real capture.

dpkt is the optional ``trace`` extra, imported only here and only when a
trace is asked for: :func:`require_dpkt` says so in one line.  (dpkt builds a
packet in tens of microseconds where scapy takes about a millisecond, which
a trace written on the reactor's thread as it happens cannot afford.)
"""

from __future__ import annotations

import heapq
import io
import socket
from typing import IO, Any, Iterable, Iterator

from twisted.logger import Logger

from smsc_sim.trace.ring import Connection, Segment

__all__ = ["TraceError", "TraceUnavailable", "require_dpkt", "PacketBuilder", "pcap_bytes", "PcapBuild", "PcapFile", "MAX_SEGMENT"]

#: octets of TCP payload in one packet at most: the IPv4 total length (65,535) less the IP and TCP headers
MAX_SEGMENT = 0xFFFF - 20 - 20
#: the pcap file header, and each record's header
_FILE_HEADER = 24
_RECORD_HEADER = 16
#: a snaplen above the largest packet (Ethernet + IPv6 + TCP + MAX_SEGMENT), so that none is cut
_SNAPLEN = 0x40000
#: the initial sequence numbers: the client's and the server's (any will do; fixed ones read easily)
_CLIENT_ISN = 1_000_000
_SERVER_ISN = 2_000_000
_CLIENT_MAC = bytes.fromhex("020000000001")
_SERVER_MAC = bytes.fromhex("020000000002")
#: a packet: its time and its octets, Ethernet header first
Packet = tuple[float, bytes]


class TraceError(Exception):
    """The trace cannot run as configured; the message is one line for a start error."""


class TraceUnavailable(TraceError):
    """The trace was asked for without dpkt installed: the message is one line that names the extra."""


def require_dpkt() -> None:
    """
    :raises TraceUnavailable: dpkt cannot be imported.
    """
    try:
        import dpkt  # noqa: F401
    except ImportError:
        raise TraceUnavailable(
            "the pcap trace needs dpkt, which is not installed: pip install 'smsc-sim[trace]'"
        ) from None


class PacketBuilder:
    """The packets of a connection's connect, segments and close."""

    def __init__(self) -> None:
        require_dpkt()
        import dpkt

        self._dpkt: Any = dpkt
        tcp = dpkt.tcp
        self._syn, self._ack, self._fin, self._push = tcp.TH_SYN, tcp.TH_ACK, tcp.TH_FIN, tcp.TH_PUSH

    def _packet(
        self, connection: Connection, from_client: bool, flags: int, seq: int, ack: int, time: float, load: bytes = b""
    ) -> Packet:
        dpkt = self._dpkt
        (src, sport), (dst, dport) = (
            (connection.client, connection.server) if from_client else (connection.server, connection.client)
        )
        tcp = dpkt.tcp.TCP(
            sport=sport,
            dport=dport,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF if flags & self._ack else 0,
            flags=flags,
            win=0xFFFF,
            data=load,
        )
        if connection.ipv6:
            family, kind = socket.AF_INET6, dpkt.ethernet.ETH_TYPE_IP6
            ip = dpkt.ip6.IP6(
                src=socket.inet_pton(family, src), dst=socket.inet_pton(family, dst), nxt=6, hlim=64, data=tcp
            )
            ip.plen = 20 + len(load)
        else:
            family, kind = socket.AF_INET, dpkt.ethernet.ETH_TYPE_IP
            ip = dpkt.ip.IP(
                src=socket.inet_pton(family, src), dst=socket.inet_pton(family, dst), p=6, ttl=64, data=tcp
            )
        ether = dpkt.ethernet.Ethernet(
            src=_CLIENT_MAC if from_client else _SERVER_MAC,
            dst=_SERVER_MAC if from_client else _CLIENT_MAC,
            type=kind,
            data=ip,
        )
        return time, bytes(ether)

    def opened(self, connection: Connection) -> list[Packet]:
        """SYN, SYN-ACK, ACK at the connect."""
        time = connection.opened or 0.0
        return [
            self._packet(connection, True, self._syn, _CLIENT_ISN, 0, time),
            self._packet(connection, False, self._syn | self._ack, _SERVER_ISN, _CLIENT_ISN + 1, time),
            self._packet(connection, True, self._ack, _CLIENT_ISN + 1, _SERVER_ISN + 1, time),
        ]

    def segment(self, connection: Connection, segment: Segment) -> list[Packet]:
        """The segment's octets, in packets of :data:`MAX_SEGMENT` octets at most."""
        isn, other = (_CLIENT_ISN, _SERVER_ISN) if segment.from_client else (_SERVER_ISN, _CLIENT_ISN)
        data = segment.data
        return [
            self._packet(
                connection,
                segment.from_client,
                self._push | self._ack,
                isn + 1 + segment.offset + start,
                other + 1 + segment.acked,
                segment.time,
                data[start : start + MAX_SEGMENT],
            )
            for start in range(0, len(data), MAX_SEGMENT)
        ]

    def closed(self, connection: Connection) -> list[Packet]:
        """The server's FIN, the client's FIN and the last ACK at the close."""
        time = connection.closed or connection.last
        client_next = _CLIENT_ISN + 1 + connection.sent[0]
        server_next = _SERVER_ISN + 1 + connection.sent[1]
        fin = self._fin | self._ack
        return [
            self._packet(connection, False, fin, server_next, client_next, time),
            self._packet(connection, True, fin, client_next, server_next + 1, time),
            self._packet(connection, False, self._ack, server_next + 1, client_next + 1, time),
        ]

    def connection(self, connection: Connection, since: float | None = None) -> list[Packet]:
        """Everything the ring holds of ``connection`` (from ``since`` on, when given)."""
        return [packet for packets in self.packets(connection, since) for packet in packets]

    def packets(self, connection: Connection, since: float | None = None) -> Iterator[list[Packet]]:
        """
        :meth:`connection`, lazily: the packets of one connect, segment or
        close at a time, in time order.  The segments are copied first, so
        the ring may go on recording meanwhile.
        """
        if connection.opened is not None and connection.dropped == 0 and (since is None or connection.opened >= since):
            yield self.opened(connection)
        for segment in list(connection.segments):
            if since is None or segment.time >= since:
                yield self.segment(connection, segment)
        if connection.closed is not None:
            yield self.closed(connection)


def _writer(target: IO[bytes]) -> Any:
    """A pcap writer on ``target``; it writes the file header at once."""
    import dpkt

    return dpkt.pcap.Writer(target, snaplen=_SNAPLEN, linktype=dpkt.pcap.DLT_EN10MB)


def pcap_bytes(connections: Iterable[Connection], since: float | None = None) -> bytes:
    """A whole pcap of ``connections``, in time order (from ``since`` on, when given), in one go."""
    work = PcapBuild(connections, since)
    for _ in work.steps():
        pass
    return work.result()


class PcapBuild:
    """
    A pcap of ``connections`` built a slice at a time, so that the reactor
    serves other work between slices: a full 16 MiB ring is some 170 000
    packets, about 8 s of building at once.

    Each connection's packets are already in time order, so they are merged
    lazily (:func:`heapq.merge`) rather than collected and sorted.
    """

    #: packets written per step
    STEP = 500

    def __init__(self, connections: Iterable[Connection], since: float | None = None) -> None:
        self._builder = PacketBuilder()
        self._connections = list(connections)
        self._since = since
        self._body = io.BytesIO()

    def steps(self) -> Iterator[None]:
        """Write the packets, yielding after every :attr:`STEP` of them."""
        writer = _writer(self._body)
        streams = [
            (packet for packets in self._builder.packets(connection, self._since) for packet in packets)
            for connection in self._connections
        ]
        written = 0
        for time, octets in heapq.merge(*streams, key=lambda packet: packet[0]):
            writer.writepkt(octets, time)
            written += 1
            if written % self.STEP == 0:
                yield None

    def result(self) -> bytes:
        """The pcap file, once :meth:`steps` is exhausted."""
        return self._body.getvalue()


class PcapFile:
    """
    The ``--pcap FILE`` sink: every connect, segment and close, written and
    flushed as it happens, up to ``max_bytes``.

    At the bound it stops: the packet that would pass it and every one
    after it are left out (the file stays a valid capture of whole packets),
    a warning is logged once, and :attr:`full` is set.

    :param path: the file, created or truncated.
    :param max_bytes: the file's bound, headers included; 0 = none.
    """

    log = Logger()

    def __init__(self, path: str, max_bytes: int = 0) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._builder = PacketBuilder()
        self._file = open(path, "wb")
        self._pcap = _writer(self._file)
        self._file.flush()
        #: octets written so far
        self.size = _FILE_HEADER
        #: packets left out at the bound
        self.left_out = 0
        self.full = False

    def opened(self, connection: Connection) -> None:
        """Write the handshake."""
        self._write(self._builder.opened(connection))

    def segment(self, connection: Connection, segment: Segment) -> None:
        """Write the segment."""
        self._write(self._builder.segment(connection, segment))

    def closed(self, connection: Connection) -> None:
        """Write the FINs."""
        self._write(self._builder.closed(connection))

    def close(self) -> None:
        """Flush and close the file."""
        if not self._file.closed:
            self._file.close()

    def _write(self, packets: list[Packet]) -> None:
        if self._file.closed:
            return
        for time, octets in packets:
            if self.full:
                self.left_out += 1
                continue
            size = _RECORD_HEADER + len(octets)
            if self.max_bytes and self.size + size > self.max_bytes:
                self.full = True
                self.left_out += 1
                self.log.warn(
                    "pcap trace {path} reached its bound of {max_bytes} octets: nothing more is written to it",
                    path=self.path,
                    max_bytes=self.max_bytes,
                )
                continue
            self._pcap.writepkt(octets, time)
            self.size += size
        self._file.flush()

