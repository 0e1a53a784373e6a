"""
The messages of the other processes of a cluster, as query_sm, cancel_sm and
replace_sm reach them (``cluster_store``): the contract the core asks, and
what it answers with.

A process keeps its own messages in its :class:`~smsc_sim.core.store.MessageStore`;
a message accepted through another process of the cluster is known here
only through the shared store (Redis), which answers later.  So an
operation on such a message answers a ``Deferred``; the session waits for
it as it waits for a delayed reply.  See docs/cluster.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred

__all__ = ["IClusterMessages", "Replacement", "SharedMessage"]


@dataclass(frozen=True, slots=True)
class SharedMessage:
    """
    What query_sm answers of a message of another process.

    :ivar state: its message_state (a :class:`~smsc_sim.smpp.constants.MessageState` value).
    :ivar final_time: when it reached its final state (``None`` while pending).
    :ivar err: its error code.
    """

    state: int
    final_time: float | None
    err: int


@dataclass(frozen=True, slots=True)
class Replacement:
    """
    What a replace_sm changes in a pending message.

    :ivar short_message: the new octets (the message's data_coding and esm_class stay).
    :ivar registered_delivery: the new receipt request.
    :ivar schedule_time: the new scheduled time; ``None`` keeps the old one.
    :ivar validity_time: the new validity deadline; ``None`` keeps the old one.
    :ivar time: when the replace was decided.
    """

    short_message: bytes
    registered_delivery: int
    schedule_time: float | None
    validity_time: float | None
    time: float


class IClusterMessages(Protocol):
    """
    The messages of the cluster's other processes: each decision is atomic in
    the shared store, and a cancel or replace also reaches the process that
    accepted the message, which stops or changes its receipt plan.

    Only the account that submitted a message, with the source address it
    submitted it from, reaches it, as for a message of this process.
    """

    def query(self, message_id: str, account: str, source_addr: str) -> Deferred[SharedMessage | None]:
        """The message's state, or ``None`` when the account has no such message (ESME_RQUERYFAIL)."""

    def cancel(self, message_id: str, account: str, source_addr: str, time: float) -> Deferred[bool]:
        """End the message DELETED unless it is final or not the account's; whether it was cancelled."""

    def cancel_matching(
        self, account: str, source_addr: str, destination_addr: str, service_type: str, within: float
    ) -> Deferred[tuple[int, bool]]:
        """
        Ask every other live process of the cluster to end DELETED its pending
        messages of the account from ``source_addr`` to ``destination_addr``
        (and of ``service_type``, when not empty), as cancel_sm with an empty
        message_id does here.

        :param within: seconds to wait for the processes' answers.
        :returns: how many they cancelled, and whether every process asked answered in time.
            Fails when the shared store does not answer.
        """

    def replace(
        self, message_id: str, account: str, source_addr: str, replacement: Replacement, invalid: int
    ) -> Deferred[int]:
        """
        Replace a pending message of the account.

        :param invalid: the status to answer when the message exists and is
            pending but the request's fields are invalid (0: they are valid);
            nothing changes then.
        :returns: 0 when replaced; ESME_RREPLACEFAIL (0x13) when the message is
            unknown, final or not the account's; else ``invalid``.
        """
