"""
The SQLite journal's snapshots (:class:`~smsc_sim.durable.sqlite.SQLiteJournal`):
when the log has grown enough to write every message again, and the chunks
of such a pass (a chunk per write-behind commit, the owed deliveries with
the last), so that restore reads a snapshot and a short log.

:class:`JournalSnapshots` is a part of :class:`~smsc_sim.durable.sqlite.SQLiteJournal`.
"""

from __future__ import annotations

from typing import Any

from smsc_sim.core.delivery import Delivery
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.durable import rows

__all__ = ["JournalSnapshots"]


class JournalSnapshots:
    """Start and write snapshot passes."""

    # the journal's state these methods share (set by SQLiteJournal.__init__)
    chunk: int
    compact_after: int
    compact_ratio: float
    final_ttl: float
    _stores: dict[str, MessageStore]
    _tracked: dict[Delivery, tuple[int, str, str, int]]
    _owed: dict[int, tuple[Delivery, MessageRecord | None]]
    _generation: int
    _pass: list[tuple[str, MessageRecord]] | None
    _pass_generation: int
    _pass_since: int
    _pass_parts: int
    _pass_chunked: float
    _entries: int
    _last_seq: int

    def _compaction_due(self) -> bool:
        held = sum(len(store) for store in self._stores.values())
        return self._pass is None and self._entries > max(self.compact_after, self.compact_ratio * held)

    def _start_pass(self) -> None:
        """Begin writing every record again as the next generation; the log from now on is kept."""
        self._pass = [(cluster, record) for cluster, store in self._stores.items() for record in store.values()]
        self._pass_generation = self._generation + 1
        self._pass_since = self._last_seq + 1
        self._pass_parts = 0
        self._pass_chunked = float("-inf")

    def _next_parts(self, now: float) -> tuple[list[str], bool]:
        """The next chunk of the pass (and, with its last chunk, the owed deliveries); whether it ends the pass."""
        assert self._pass is not None
        oldest_final = now - self.final_ttl
        entries: list[list[Any]] = []
        for cluster, record in self._pass[: self.chunk]:
            if record.final and (record.final_time or 0.0) <= oldest_final:
                continue
            entries.append(rows.whole(cluster, record))
        parts = [rows.dumps(entries)] if entries else []
        if len(self._pass) > self.chunk:
            return parts, False
        owed = [rows.delivery(row, self._tracked[d], d) for row, (d, _) in self._owed.items() if not d.done]
        if owed:
            parts.append(rows.dumps(owed))
        return parts, True
