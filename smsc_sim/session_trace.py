"""
The ``trace`` option of a session: every PDU in and out, decoded, in the log
(passwords masked); and the raw octets of every read and write, published
for the pcap trace (:mod:`smsc_sim.trace`) when it listens.

:class:`SessionTracing` is a part of :class:`smsc_sim.session.SMPPSession`.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from smsc_sim.events import EventBus
from smsc_sim.smpp.pdu import PDU

__all__ = ["SessionTracing"]


class SessionTracing:
    """Log one PDU, decoded; publish the octets of one read or write."""

    log: Logger
    instance_name: str
    session_id: int
    events: EventBus
    peer: str
    local: str

    def _publish_octets(self, kind: str, data: bytes) -> None:
        """``bytes_in`` or ``bytes_out``: the octets exactly as read or written, with both addresses."""
        self.events.publish(
            kind, session_id=self.session_id, instance=self.instance_name, peer=self.peer, local=self.local, data=data
        )

    def _trace(self, direction: str, pdu: PDU) -> None:
        params: dict[str, Any] = dict(pdu.params)
        if "password" in params:
            params["password"] = "***"
        self.log.info(
            "{direction} {instance}#{session_id} {name} seq={seq} status=0x{status:08X} {params} tlvs={tlvs}",
            direction="<<" if direction == "in" else ">>",
            instance=self.instance_name,
            session_id=self.session_id,
            name=pdu.name,
            seq=pdu.sequence_number,
            status=pdu.command_status,
            params=params,
            tlvs={f"0x{tag:04X}": value.hex() for tag, value in pdu.tlvs.items()},
        )
