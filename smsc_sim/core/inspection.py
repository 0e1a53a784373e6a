"""
What a cluster shows: its bound sessions, its messages and its counters,
as read-only views for the API, the tests and the metrics.

:class:`CoreInspection` is a part of :class:`smsc_sim.core.smsc.SMSCCore`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

from smsc_sim.contracts import ISession
from smsc_sim.core.binds import BindRegistry
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.reassembly import Reassembler
from smsc_sim.core.router import Router
from smsc_sim.core.store import MessageQuery, MessageRecord, MessageStore, matching, select
from smsc_sim.core.timeline import Timeline
from smsc_sim.smpp.constants import MessageState, status_name

__all__ = ["CoreInspection"]


class CoreInspection:
    """Read-only views of the cluster: sessions, binds, messages, stats."""

    # the core's state these methods read (set by SMSCCore.__init__)
    name: str
    binds: BindRegistry
    store: MessageStore
    router: Router
    lifecycle: Lifecycle
    reassembler: Reassembler
    timeline: Timeline
    counters: Counter[str]
    submit_statuses: Counter[int]
    bind_refusals: Counter[int]

    def sessions(self) -> list[ISession]:
        """The bound sessions of the cluster, in bind order."""
        return [entry.session for entry in self.binds.entries()]

    def binds_info(self) -> list[dict[str, Any]]:
        """The bound sessions as JSON-ready data."""
        return [
            {
                "session_id": entry.session_id,
                "system_id": entry.account.system_id,
                "bind_type": entry.bind_type.value,
                "instance": entry.instance,
                "interface_version": entry.interface_version,
                "peer": entry.session.peer,
                "bound_at": entry.bound_at,
                "outbound_pending": entry.session.outbound_pending(),
            }
            for entry in self.binds.entries()
        ]

    def message(self, message_id: str) -> MessageRecord | None:
        """The record of a message id (or a submit_multi destination key ``<id>/<n>``)."""
        self.store.sweep()
        return self.store.get(message_id)

    def messages(
        self,
        *,
        account: str | None = None,
        instance: str | None = None,
        source: str | None = None,
        destination: str | None = None,
        state: str | MessageState | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        direction: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[MessageRecord]:
        """
        Records matching every filter given, oldest submit first.

        :param state: a state name (``DELIVERED``) or value; ``pending`` matches every non-final one.
        :param since: submitted at or after this time; ``until``: before it.
        :param text: contained in the text (or the reassembled text).
        :param limit: most records returned (``None``: all); ``offset``: skipped first.
        """
        query = MessageQuery(
            account=account,
            instance=instance,
            source=source,
            destination=destination,
            state=state,
            since=since,
            until=until,
            text=text,
            direction=direction,
            limit=limit,
            offset=offset,
        )
        return select(self.store, query)

    def matching(self, query: MessageQuery) -> Iterator[MessageRecord]:
        """Every record matching the query's filters (not its page), oldest submit first, one at a time."""
        return matching(self.store, query)

    def stats(self) -> dict[str, Any]:
        """Counters of the cluster, JSON-ready."""
        routed = self.router.counters
        receipts = self.lifecycle.counters
        return {
            "cluster": self.name,
            "binds": len(self.binds.entries()),
            "ghost_binds": self.binds.ghost_count(),
            "binds_accepted": self.counters["binds"],
            "binds_refused": {status_name(s): n for s, n in sorted(self.bind_refusals.items())},
            "submits": {status_name(s): n for s, n in sorted(self.submit_statuses.items())},
            "throttled": self.counters["throttled"],
            "not_answered": self.counters["not_answered"],
            "generic_nack": self.counters["generic_nack"],
            "operations_failed": {k: v for k, v in self.counters.items() if k.endswith("_failed")},
            "receipts": {
                "sent": receipts["receipts_sent"],
                "acked": receipts["receipts_acked"],
                "failed": receipts["receipts_failed"] + receipts["receipts_exhausted"],
                "expired": receipts["receipts_expired"],
                "dropped": receipts["receipts_dropped"],
            },
            "mo": {"sent": self.counters["mo"]},
            "deliveries": {
                "attempts": routed["sent"],
                "acked": routed["acked"],
                "failed": routed["failed"],
                "timeouts": routed["unanswered_timeout"],
                "closed": routed["unanswered_closed"],
            },
            "retries": routed["retries"],
            "pending": self.router.pending_depth(),
            "pending_dropped": routed["pending_dropped"],
            "pending_expired": routed["pending_expired"],
            "store_size": len(self.store),
            "store_pending": len(self.store.pending),
            "store_evicted": self.store.evicted,
            "reassembly_open": len(self.reassembler),
            "timeline": len(self.timeline),
        }
