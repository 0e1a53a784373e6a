"""
One PDU the SMSC owes an ESME (a receipt or an MO part), as the router,
the lifecycle and the journal see it.
"""

from __future__ import annotations

from typing import Callable

from smsc_sim.smpp.pdu import PDU

__all__ = ["Delivery", "OutcomeCallback"]

#: outcome callback: (delivery, outcome, status or None, session id or None)
OutcomeCallback = Callable[["Delivery", str, "int | None", "int | None"], None]


class Delivery:
    """
    One PDU the SMSC must get to an ESME (a receipt or an MO part).

    ``on_outcome`` is told of every step: ``queued``, ``retry``, and the
    final ``acked``, ``failed`` (a final status), ``exhausted`` (every
    attempt used), ``expired`` (waited too long) or ``dropped`` (queue full).
    """

    __slots__ = (
        "pdu", "account", "kind", "message_id", "origin_session", "origin_instance", "created", "attempt",
        "on_outcome", "done",
    )  # fmt: skip

    def __init__(
        self,
        pdu: PDU,
        account: str,
        kind: str,
        message_id: str,
        origin_session: int | None,
        origin_instance: str | None,
        created: float,
        on_outcome: OutcomeCallback | None = None,
    ) -> None:
        self.pdu = pdu
        self.account = account
        self.kind = kind
        self.message_id = message_id
        self.origin_session = origin_session
        self.origin_instance = origin_instance
        self.created = created
        self.attempt = 0
        self.on_outcome = on_outcome
        self.done = False
