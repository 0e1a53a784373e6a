"""
What the core tells a durable store: the journal protocol, and the no-op
journal of a simulator that keeps everything in memory (the default).

The core only reports; it never reads a journal back.  The store, the
lifecycle and the router each receive the journal of their cluster in their
constructors and report what they change; the assembly
(:mod:`smsc_sim.simulator`) picks the implementation (the SQLite one lives
in :mod:`smsc_sim.durable`) and puts journaled messages back before any
listener opens.
"""

from __future__ import annotations

from typing import Callable, Protocol

from smsc_sim.contracts import Reply
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.record import MessageRecord
from smsc_sim.smpp.pdu import PDU

__all__ = ["BothJournals", "Handler", "IMessageJournal", "NO_JOURNAL", "NoJournal", "kept"]

#: what decides on one request of a bound session
Handler = Callable[[BindEntry, PDU], Reply]


class IMessageJournal(Protocol):
    """The journal of one cluster: told of every message, state change and owed delivery."""

    def answering(self, handler: Handler) -> Handler:
        """
        The request handler the core calls in place of ``handler``: it may
        hold a reply that acknowledges a new message (its ``delay``) until
        the message is durable.
        """

    def accepted(self, record: MessageRecord) -> None:
        """A new record is in the store."""

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        """
        A record's plan started.

        :param expected: the record's ``base_time`` before the start (what the journal expected, or 0).
        """

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        """
        A record changed: its state or deliveries, or with ``whole`` its content or plan too.
        """

    def delivery_sent(self, delivery: Delivery, record: MessageRecord | None) -> None:
        """
        A delivery was handed to the router (a retry of one already reported too).

        :param record: the record it belongs to, when the sender knows it.
        """

    def cleared(self) -> None:
        """The store forgot every record."""


class NoJournal:
    """The journal of a simulator without a durable store: it keeps nothing."""

    __slots__ = ()

    def answering(self, handler: Handler) -> Handler:
        """The handler itself: nothing waits for a commit, and the hot path pays nothing."""
        return handler

    def accepted(self, record: MessageRecord) -> None:
        """Nothing to write."""

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        """Nothing to write."""

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        """Nothing to write."""

    def delivery_sent(self, delivery: Delivery, record: MessageRecord | None) -> None:
        """Nothing to write."""

    def cleared(self) -> None:
        """Nothing to forget."""


class BothJournals:
    """
    Two journals told the same things, ``first`` first: a durable store and
    the cluster store (``--store sqlite:PATH`` with ``cluster_store``).
    """

    __slots__ = ("first", "second")

    def __init__(self, first: IMessageJournal, second: IMessageJournal) -> None:
        self.first = first
        self.second = second

    def answering(self, handler: Handler) -> Handler:
        """``first`` may hold what ``second`` lets through."""
        return self.first.answering(self.second.answering(handler))

    def accepted(self, record: MessageRecord) -> None:
        """Tell both."""
        self.first.accepted(record)
        self.second.accepted(record)

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        """Tell both."""
        self.first.plan_started(record, expected)
        self.second.plan_started(record, expected)

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        """Tell both."""
        self.first.changed(record, whole)
        self.second.changed(record, whole)

    def delivery_sent(self, delivery: Delivery, record: MessageRecord | None) -> None:
        """Tell both."""
        self.first.delivery_sent(delivery, record)
        self.second.delivery_sent(delivery, record)

    def cleared(self) -> None:
        """Tell both."""
        self.first.cleared()
        self.second.cleared()


#: the journal of every core built without one
NO_JOURNAL: IMessageJournal = NoJournal()


def kept(journal: IMessageJournal) -> IMessageJournal | None:
    """
    The journal to report to, or ``None`` for one that keeps nothing: the
    submit and receipt paths then skip the calls (a few per message) altogether.
    """
    return None if isinstance(journal, NoJournal) else journal
