"""
Connections of the trace ring as pcap: Ethernet, IPv4 or IPv6 and TCP headers
built by scapy around the octets each side sent.

Each connection gets its three-way handshake at its connect, one TCP segment
per read or write (split where one would pass the 65,535-octet IP limit),
with the ports of both ends and sequence and acknowledgement numbers that
count the octets each side sent, and a FIN from each side at its close.
Wireshark reassembles the SMPP PDUs from them as from a real capture.

scapy is the optional ``trace`` extra (GPLv2, imported only here, and only
when a trace is asked for): :func:`require_scapy` says so in one line.
"""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any, Iterable

from twisted.logger import Logger

from smsc_sim.trace.ring import Connection, Segment

if TYPE_CHECKING:
    from scapy.packet import Packet

__all__ = ["TraceError", "TraceUnavailable", "require_scapy", "PacketBuilder", "pcap_bytes", "PcapFile", "MAX_SEGMENT"]

#: octets of TCP payload in one packet at most: the IPv4 total length (65,535) less the IP and TCP headers
MAX_SEGMENT = 0xFFFF - 20 - 20
#: the pcap link type of the files: Ethernet
_LINKTYPE_ETHERNET = 1
#: the pcap file header, and each record's header
_FILE_HEADER = 24
_RECORD_HEADER = 16
#: the initial sequence numbers: the client's and the server's (any will do; fixed ones read easily)
_CLIENT_ISN = 1_000_000
_SERVER_ISN = 2_000_000
# TCP flags
_SYN, _SYN_ACK, _ACK, _PSH_ACK, _FIN_ACK = "S", "SA", "A", "PA", "FA"
_CLIENT_MAC = "02:00:00:00:00:01"
_SERVER_MAC = "02:00:00:00:00:02"


class TraceError(Exception):
    """The trace cannot run as configured; the message is one line for a start error."""


class TraceUnavailable(TraceError):
    """The trace was asked for without scapy installed: the message is one line that names the extra."""


def require_scapy() -> None:
    """
    :raises TraceUnavailable: scapy cannot be imported.
    """
    try:
        import scapy.layers.inet  # noqa: F401
    except ImportError:
        raise TraceUnavailable(
            "the pcap trace needs scapy, which is not installed: pip install 'smsc-sim[trace]'"
        ) from None


class PacketBuilder:
    """The packets of a connection's connect, segments and close."""

    def __init__(self) -> None:
        require_scapy()
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        self._ether = Ether
        self._ip = IP
        self._ipv6 = IPv6
        self._tcp = TCP

    def _packet(
        self, connection: Connection, from_client: bool, flags: str, seq: int, ack: int, time: float, load: bytes = b""
    ) -> Packet:
        (src, sport), (dst, dport) = (
            (connection.client, connection.server) if from_client else (connection.server, connection.client)
        )
        ether = self._ether(
            src=_CLIENT_MAC if from_client else _SERVER_MAC, dst=_SERVER_MAC if from_client else _CLIENT_MAC
        )
        ip = self._ipv6(src=src, dst=dst) if connection.ipv6 else self._ip(src=src, dst=dst)
        tcp = self._tcp(
            sport=sport,
            dport=dport,
            flags=flags,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF if "A" in flags else 0,
            window=0xFFFF,
        )
        packet: Packet = ether / ip / tcp
        if load:
            packet = packet / load
        packet.time = time
        return packet

    def opened(self, connection: Connection) -> list[Packet]:
        """SYN, SYN-ACK, ACK at the connect."""
        time = connection.opened or 0.0
        return [
            self._packet(connection, True, _SYN, _CLIENT_ISN, 0, time),
            self._packet(connection, False, _SYN_ACK, _SERVER_ISN, _CLIENT_ISN + 1, time),
            self._packet(connection, True, _ACK, _CLIENT_ISN + 1, _SERVER_ISN + 1, time),
        ]

    def segment(self, connection: Connection, segment: Segment) -> list[Packet]:
        """The segment's octets, in packets of :data:`MAX_SEGMENT` octets at most."""
        isn, other = (_CLIENT_ISN, _SERVER_ISN) if segment.from_client else (_SERVER_ISN, _CLIENT_ISN)
        data = segment.data
        return [
            self._packet(
                connection,
                segment.from_client,
                _PSH_ACK,
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
        return [
            self._packet(connection, False, _FIN_ACK, server_next, client_next, time),
            self._packet(connection, True, _FIN_ACK, client_next, server_next + 1, time),
            self._packet(connection, False, _ACK, server_next + 1, client_next + 1, time),
        ]

    def connection(self, connection: Connection, since: float | None = None) -> list[Packet]:
        """Everything the ring holds of ``connection`` (from ``since`` on, when given)."""
        packets: list[Packet] = []
        if connection.opened is not None and connection.dropped == 0 and (since is None or connection.opened >= since):
            packets += self.opened(connection)
        for segment in list(connection.segments):
            if since is None or segment.time >= since:
                packets += self.segment(connection, segment)
        if connection.closed is not None:
            packets += self.closed(connection)
        return packets


def _writer(target: IO[bytes]) -> Any:
    from scapy.utils import PcapWriter

    # a snaplen above the largest packet, so that none is cut
    return PcapWriter(target, linktype=_LINKTYPE_ETHERNET, sync=True, snaplen=0x40000)


def pcap_bytes(connections: Iterable[Connection], since: float | None = None) -> bytes:
    """A whole pcap of ``connections``, in time order (from ``since`` on, when given)."""
    builder = PacketBuilder()
    packets = [packet for connection in connections for packet in builder.connection(connection, since)]
    packets.sort(key=lambda packet: float(packet.time))  # stable: a connection's own order stays
    body = io.BytesIO()
    writer = _writer(body)
    writer.write_header(None)
    for packet in packets:
        writer.write(packet)
    writer.flush()
    return body.getvalue()


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
        self._pcap.write_header(None)
        self._pcap.flush()
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
            self._pcap.flush()
            self._file.close()

    def _write(self, packets: list[Packet]) -> None:
        if self._file.closed:
            return
        for packet in packets:
            if self.full:
                self.left_out += 1
                continue
            size = _RECORD_HEADER + len(packet)
            if self.max_bytes and self.size + size > self.max_bytes:
                self.full = True
                self.left_out += 1
                self.log.warn(
                    "pcap trace {path} reached its bound of {max_bytes} octets: nothing more is written to it",
                    path=self.path,
                    max_bytes=self.max_bytes,
                )
                continue
            self._pcap.write(packet)
            self.size += size
        self._pcap.flush()

