"""
Reassembly of concatenated messages, per cluster.

Parts are grouped per (account, instance, source, destination, kind,
reference, total) and must all arrive within ``reassembly_window`` seconds
of the first one.  The instance is part of the key on purpose: the provider
documents that parts of one message sent through different servers of a
cluster (SMPP1 and SMPP2) reach different gateways, each of which waits for
the missing parts, and the message is never delivered.  Here each instance's
share stays incomplete, and at window close its parts end UNDELIVERABLE.

Each part keeps its own message id and record; the group adds the
reassembled text to every part's record once complete.
"""

from __future__ import annotations

from typing import Callable

from smsc_sim.core.timeline import Timeline
from smsc_sim.smpp.concat import ConcatInfo
from smsc_sim.smpp.text import decode_text

from smsc_sim.core.record import BaseKey, ConcatGroup, MessageRecord

class Reassembler:
    """
    Open concatenation groups and their windows.

    :param timeline: where window closes are scheduled.
    :param window: seconds from the first part for the others to arrive.
    :param now: the clock reading function.
    :param on_complete: called with a group once all its parts are there.
    :param on_incomplete: called with a group whose window closed with parts
        missing; its ``reason`` says whether parts went to other instances.
    """

    def __init__(
        self,
        timeline: Timeline,
        window: float,
        now: Callable[[], float],
        on_complete: Callable[[ConcatGroup], None],
        on_incomplete: Callable[[ConcatGroup, str], None],
    ) -> None:
        self._timeline = timeline
        self.window = window
        self._now = now
        self._on_complete = on_complete
        self._on_incomplete = on_incomplete
        self._open: dict[tuple[BaseKey, str], ConcatGroup] = {}
        # the instances seen for a logical message, and how many of its groups are open
        self._instances: dict[BaseKey, set[str]] = {}
        self._open_count: dict[BaseKey, int] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._open)

    def add(self, record: MessageRecord, info: ConcatInfo, payload: bytes, default_alphabet: str) -> ConcatGroup:
        """
        File a part; completes its group when it is the last one missing.

        :param record: the part's record (its ``group`` is set here).
        :param info: where the part sits.
        :param payload: the part's octets without UDH.
        :param default_alphabet: how DCS 0 is read, for the joined text.
        """
        base: BaseKey = (
            record.account,
            record.source_addr,
            record.destination_addr,
            info.kind,
            info.reference,
            info.total,
        )
        key = (base, record.instance)
        group = self._open.get(key)
        if group is None:
            group = ConcatGroup(base, record.instance, info.total, self._now())
            self._open[key] = group
            seen = self._instances.setdefault(base, set())
            seen.add(record.instance)
            group.instances = seen
            self._open_count[base] = self._open_count.get(base, 0) + 1
            self._timeline.at(group.opened + self.window, self._close, group, self._epoch)
        group.records.append(record)
        group.payloads[info.seqnum] = payload
        record.group = group
        if len(group.payloads) == group.total:
            group.complete = True
            self._forget(key, group)
            joined = b"".join(group.payloads[n] for n in range(1, group.total + 1))
            group.text = decode_text(record.data_coding, joined, default_alphabet).text
            self._on_complete(group)
        return group

    def _forget(self, key: tuple[BaseKey, str], group: ConcatGroup) -> None:
        if self._open.pop(key, None) is None:
            return
        left = self._open_count.get(group.base, 1) - 1
        if left > 0:
            self._open_count[group.base] = left
        else:
            self._open_count.pop(group.base, None)
            self._instances.pop(group.base, None)

    def _close(self, group: ConcatGroup, epoch: int) -> None:
        if epoch != self._epoch or group.complete or group.closed:
            return
        group.closed = True
        others = sorted(group.instances - {group.instance})
        self._forget((group.base, group.instance), group)
        if others:
            reason = f"parts of this message went to other instances ({', '.join(others)}); never reassembled"
        else:
            missing = sorted(set(range(1, group.total + 1)) - set(group.payloads))
            reason = f"parts {missing} of {group.total} missing when the reassembly window closed"
        self._on_incomplete(group, reason)

    def clear(self) -> None:
        """Forget every open group (their window closes do nothing)."""
        self._open.clear()
        self._instances.clear()
        self._open_count.clear()
        self._epoch += 1
