"""
A delivery (receipt or MO) as the shared streams and the owed receipts keep
it in Redis: fields separated by US (0x1F), the PDU in base64.
"""

from __future__ import annotations

import base64

from smsc_sim.core.delivery import Delivery
from smsc_sim.smpp.codec import decode, encode

__all__ = ["pack", "unpack"]

#: between the fields of a packed delivery (ASCII unit separator)
_SEP = "\x1f"


def pack(delivery: Delivery, state: str = "") -> str:
    """
    A delivery as the stream and the owed records keep it: a format tag, then kind, account,
    message id, origin instance, creation time, attempts, state, the PDU (base64), and the process
    that made it and its number there (its ticket, empty when none), separated by US (0x1F), which
    none of them holds (JSON costs several times more, on every message).
    """
    ticket = delivery.ticket or ("", "")
    return _SEP.join(
        (
            "2",
            delivery.kind,
            delivery.account,
            delivery.message_id,
            delivery.origin_instance or "",
            repr(delivery.created),
            str(delivery.attempt),
            state,
            base64.b64encode(encode(delivery.pdu)).decode("ascii"),
            ticket[0],
            ticket[1],
        )
    )


def unpack(data: str) -> tuple[Delivery, str]:
    """
    The delivery of :func:`pack`, and the state it was packed with (or "").

    :raises ValueError: for anything else.
    """
    fields = data.split(_SEP)
    tag = fields[0]
    if tag == "2" and len(fields) == 11:
        owner, number = fields[9], fields[10]
        ticket = (owner, number) if owner else None
        fields = fields[:9]
    elif tag == "1" and len(fields) == 9:
        ticket = None  # written before processes were told the outcomes of their deliveries
    else:
        raise ValueError(f"unknown delivery format {tag!r}")
    _tag, kind, account, message_id, instance, created, attempt, state, pdu = fields
    delivery = Delivery(
        decode(base64.b64decode(pdu, validate=True)),
        account,
        kind,
        message_id,
        None,  # session ids are per process: the origin session is not one of this process's
        instance or None,
        float(created),
    )
    delivery.attempt = int(attempt)
    delivery.ticket = ticket
    return delivery, state
