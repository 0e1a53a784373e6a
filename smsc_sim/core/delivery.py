"""
One PDU the SMSC owes an ESME (a receipt or an MO part), as the router,
the lifecycle and the journal see it.
"""

from __future__ import annotations

from typing import Callable, Protocol

from smsc_sim.smpp.pdu import PDU

__all__ = ["Delivery", "OutcomeCallback", "OwedReceipts", "SharedDeliveries"]

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
        "on_outcome", "done", "owed", "entry", "ticket",
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
        #: the final receipt of its message, recorded in the cluster store until it is answered
        self.owed = False
        #: the entry of the cluster's delivery stream it was read from (None: made in this process)
        self.entry: str | None = None
        #: the process of the cluster that made it and its number there, which wants its final outcome
        #: (None: made here, or its maker is not told)
        self.ticket: tuple[str, str] | None = None


class SharedDeliveries(Protocol):
    """
    Where a router hands what no session of its process can take, when the
    cluster spans processes (``cluster_store``): any process with a session
    of the account delivers it.
    """

    def publish(self, delivery: Delivery) -> None:
        """Hand the delivery to the cluster (no session here may take it now)."""

    def settle(
        self, delivery: Delivery, outcome: str = "", status: int | None = None, session_id: int | None = None
    ) -> None:
        """
        The delivery ended here (answered, failed or dropped): the cluster owes it no more.

        :param outcome: how it ended (``acked``, ``failed``, ``exhausted``, ``expired``, ``dropped``),
            with the deliver_sm_resp's status and the session, for the process that made it.
        """

    def reset(self) -> None:
        """The router forgot its deliveries (a reset): the cluster owes none of this process's any more."""


class OwedReceipts(Protocol):
    """
    Where the lifecycle records the final receipts it owes, so that another
    process sends them if this one dies before they are answered.
    """

    def owe(self, delivery: Delivery, due: float, state: str) -> None:
        """Record the final receipt (``state`` is its message_state name) due at ``due``."""

    def owed_state(self, message_id: str) -> str | None:
        """The state name of the receipt recorded for the message, if any."""

    def drop(self, message_id: str) -> None:
        """The message ended without a receipt: forget the one recorded."""
