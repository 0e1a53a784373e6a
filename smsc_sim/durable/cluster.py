"""
One cluster's view of the process's SQLite journal: the
:class:`~smsc_sim.core.journal.IMessageJournal` that the assembly gives
the core of that cluster.
"""

from __future__ import annotations

from typing import Mapping

from smsc_sim.contracts import Reply
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.journal import Handler
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.durable.commits import PROGRESS, WHOLE
from smsc_sim.durable.sqlite import SQLiteJournal
from smsc_sim.smpp.pdu import PDU


class ClusterJournal:
    """
    The journal of one cluster.

    :param journal: the journal of the process.
    :param cluster: the cluster's name (every entry carries it).
    :param latencies: what each instance of the cluster adds to every reply,
        by name (for the expected start of the plans of new messages).
    """

    def __init__(self, journal: SQLiteJournal, cluster: str, latencies: Mapping[str, float]) -> None:
        self.journal = journal
        self.cluster = cluster
        self._latencies = dict(latencies)

    def attach_store(self, store: MessageStore) -> None:
        """The cluster's store: snapshots write every record it holds."""
        self.journal.attach_store(self.cluster, store)

    def answering(self, handler: Handler) -> Handler:
        """``handler``, with each reply acknowledging a new message held until its commit."""
        answer, latencies = self.journal.answer, self._latencies

        def answering(entry: BindEntry, pdu: PDU) -> Reply:
            return answer(handler, entry, pdu, latencies.get(entry.instance, 0.0))

        return answering

    def accepted(self, record: MessageRecord) -> None:
        """A new record: written in the commit of this clock turn."""
        self.journal.record_accepted(self.cluster, record)

    def plan_started(self, record: MessageRecord, expected: float) -> None:
        """A plan started (written behind unless it started when expected)."""
        self.journal.plan_started(self.cluster, record, expected)

    def changed(self, record: MessageRecord, whole: bool = False) -> None:
        """A record changed: written behind."""
        self.journal.state_changed(self.cluster, record, WHOLE if whole else PROGRESS)

    def delivery_sent(self, delivery: Delivery, record: MessageRecord | None) -> None:
        """A delivery handed to the router: owed until its final outcome."""
        self.journal.delivery_sent(self.cluster, delivery, record)

    def cleared(self) -> None:
        """The cluster forgot every message: so does the file."""
        self.journal.reset(self.cluster)
