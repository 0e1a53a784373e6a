"""
What a cluster shows: its bound sessions, its messages and its counters,
as read-only views for the API, the tests and the metrics.

:class:`Inspection` is a component :class:`smsc_sim.core.smsc.SMSCCore`
builds and delegates to; it holds the parts it reads, not the core.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator, Sized

from smsc_sim.contracts import ISession
from smsc_sim.core.binds import BindRegistry
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.router import Router
from smsc_sim.core.store import MessageQuery, MessageRecord, MessageStore, matching, select
from smsc_sim.smpp.constants import MessageState, status_name

__all__ = ["Inspection"]


class Inspection:
    """
    Read-only views of one cluster: sessions, binds, messages, stats.

    Every part is read when a view is asked for, so a view shows the state of
    that moment (a reset clears the counters in place).

    :param cluster: the cluster's name.
    :param binds: who is bound, and the ghost binds.
    :param store: the message records.
    :param router: its delivery counters and pending queue.
    :param lifecycle: its receipt counters.
    :param reassembler: the open groups of concatenated parts (only counted).
    :param timeline: the timed work of the cluster (only counted).
    :param counters: the cluster's counters (binds, throttled, not answered,
        generic_nack, MO, failed operations).
    :param submit_statuses: submits answered, by command_status.
    :param bind_refusals: binds refused, by command_status.
    """

    def __init__(
        self,
        *,
        cluster: str,
        binds: BindRegistry,
        store: MessageStore,
        router: Router,
        lifecycle: Lifecycle,
        reassembler: Sized,
        timeline: Sized,
        counters: Counter[str],
        submit_statuses: Counter[int],
        bind_refusals: Counter[int],
    ) -> None:
        self._cluster = cluster
        self._binds = binds
        self._store = store
        self._router = router
        self._lifecycle = lifecycle
        self._reassembler = reassembler
        self._timeline = timeline
        self._counters = counters
        self._submit_statuses = submit_statuses
        self._bind_refusals = bind_refusals

    def sessions(self) -> list[ISession]:
        """The bound sessions of the cluster, in bind order."""
        return [entry.session for entry in self._binds.entries()]

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
            for entry in self._binds.entries()
        ]

    def message(self, message_id: str) -> MessageRecord | None:
        """The record of a message id (or a submit_multi destination key ``<id>/<n>``)."""
        self._store.sweep()
        return self._store.get(message_id)

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
        return select(self._store, query)

    def matching(self, query: MessageQuery) -> Iterator[MessageRecord]:
        """Every record matching the query's filters (not its page), oldest submit first, one at a time."""
        return matching(self._store, query)

    def stats(self) -> dict[str, Any]:
        """Counters of the cluster, JSON-ready."""
        routed = self._router.counters
        receipts = self._lifecycle.counters
        return {
            "cluster": self._cluster,
            "binds": len(self._binds.entries()),
            "ghost_binds": self._binds.ghost_count(),
            "binds_accepted": self._counters["binds"],
            "binds_refused": {status_name(s): n for s, n in sorted(self._bind_refusals.items())},
            "submits": {status_name(s): n for s, n in sorted(self._submit_statuses.items())},
            "throttled": self._counters["throttled"],
            "not_answered": self._counters["not_answered"],
            "generic_nack": self._counters["generic_nack"],
            "operations_failed": {k: v for k, v in self._counters.items() if k.endswith("_failed")},
            "receipts": {
                "sent": receipts["receipts_sent"],
                "acked": receipts["receipts_acked"],
                "failed": receipts["receipts_failed"] + receipts["receipts_exhausted"],
                "expired": receipts["receipts_expired"],
                "dropped": receipts["receipts_dropped"],
            },
            "mo": {"sent": self._counters["mo"]},
            "deliveries": {
                "attempts": routed["sent"],
                "acked": routed["acked"],
                "failed": routed["failed"],
                "timeouts": routed["unanswered_timeout"],
                "closed": routed["unanswered_closed"],
            },
            "retries": routed["retries"],
            "pending": self._router.pending_depth(),
            "pending_dropped": routed["pending_dropped"],
            "pending_expired": routed["pending_expired"],
            "store_size": len(self._store),
            "store_pending": len(self._store.pending),
            "store_evicted": self._store.evicted,
            "reassembly_open": len(self._reassembler),
            "timeline": len(self._timeline),
        }
