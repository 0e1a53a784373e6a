"""
What the judge records: the fixed check codes and their severities, and
:class:`Finding`, one flaw of one ESME (an account, a session) with its
evidence.

Users grep for the codes, so they are defined here once and never change;
a new check gets a new code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from smsc_sim.smpp.constants import status_name


class Severity(enum.Enum):
    """How bad a finding is; ``error`` fails a run, ``warning`` makes it ``warn``, ``info`` only informs."""

    error = "error"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        """0 for the worst (error), 2 for info: sorts findings worst first."""
        return _RANK[self]


_RANK = {Severity.error: 0, Severity.warning: 1, Severity.info: 2}


class Check(enum.Enum):
    """Every check the judge makes, by its stable code."""

    throttle_ignored = "throttle-ignored"
    throttled_not_resubmitted = "throttled-not-resubmitted"
    enquire_link_unanswered = "enquire-link-unanswered"
    deliver_sm_unanswered = "deliver-sm-unanswered"
    deliver_sm_slow = "deliver-sm-slow"
    deliver_sm_refused = "deliver-sm-refused"
    tx_without_rx = "tx-without-rx"
    single_instance = "single-instance"
    no_failover = "no-failover"
    rebind_storm = "rebind-storm"
    bind_quota_exceeded = "bind-quota-exceeded"
    window_overrun = "window-overrun"
    sequence_reuse = "sequence-reuse"
    no_unbind = "no-unbind"
    no_keepalive = "no-keepalive"
    keepalive_too_frequent = "keepalive-too-frequent"
    concat_inconsistent = "concat-inconsistent"
    encoding_suspect = "encoding-suspect"
    address_format = "address-format"

    @property
    def code(self) -> str:
        """The code users grep for, e.g. ``throttle-ignored``."""
        return self.value

    @property
    def severity(self) -> Severity:
        """The check's fixed severity."""
        return SEVERITIES[self]


#: the severity of each check (docs/conformance.md's table; fixed, like the codes)
SEVERITIES: dict[Check, Severity] = {
    Check.throttle_ignored: Severity.error,
    Check.throttled_not_resubmitted: Severity.warning,
    Check.enquire_link_unanswered: Severity.error,
    Check.deliver_sm_unanswered: Severity.error,
    Check.deliver_sm_slow: Severity.warning,
    Check.deliver_sm_refused: Severity.warning,
    Check.tx_without_rx: Severity.error,
    Check.single_instance: Severity.warning,
    Check.no_failover: Severity.error,
    Check.rebind_storm: Severity.error,
    Check.bind_quota_exceeded: Severity.warning,
    Check.window_overrun: Severity.warning,
    Check.sequence_reuse: Severity.error,
    Check.no_unbind: Severity.warning,
    Check.no_keepalive: Severity.info,
    Check.keepalive_too_frequent: Severity.warning,
    Check.concat_inconsistent: Severity.error,
    Check.encoding_suspect: Severity.warning,
    Check.address_format: Severity.warning,
}

#: every code, in the order of the table
CODES: tuple[str, ...] = tuple(check.code for check in Check)


class Evidence(NamedTuple):
    """
    One PDU (or state change) behind a finding.

    :ivar command: the PDU's command name (``submit_sm``, ``deliver_sm_resp``), or
        an event name (``outage``, ``session_closed``) when no PDU is involved.
    :ivar sequence_number: the PDU's sequence number, ``None`` without a PDU.
    :ivar status: the PDU's command_status, ``None`` without a PDU.
    :ivar time: when it was seen (the simulator's clock, seconds since the epoch).
    """

    command: str
    sequence_number: int | None
    status: int | None
    time: float

    def to_dict(self) -> dict[str, Any]:
        """The evidence as JSON-ready data (the status also by name)."""
        return {
            "command": self.command,
            "sequence_number": self.sequence_number,
            "status": self.status,
            "status_name": status_name(self.status) if self.status is not None else None,
            "time": self.time,
        }


#: the identity of a finding: (code, account, session_id, instance)
FindingKey = tuple[str, "str | None", "int | None", "str | None"]


@dataclass
class Finding:
    """
    One flaw, counted each time it recurs.

    :ivar check: which check (its code and severity).
    :ivar account: the ESME's system_id, ``None`` before a bind.
    :ivar session_id: the session, ``None`` for account-wide findings.
    :ivar instance: the instance involved, ``None`` when several are.
    :ivar first_time: when it was first seen.
    :ivar last_time: when it was last seen.
    :ivar count: how often it was seen.
    :ivar detail: one sentence for a human: what exactly was wrong the first time.
    :ivar evidence: the PDUs of the first occurrences, at most the bound given to :meth:`seen`.
    """

    check: Check
    account: str | None
    session_id: int | None
    instance: str | None
    first_time: float
    last_time: float
    detail: str = ""
    count: int = 0
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def code(self) -> str:
        """The check's code."""
        return self.check.code

    @property
    def severity(self) -> Severity:
        """The check's severity."""
        return self.check.severity

    @property
    def key(self) -> FindingKey:
        """What makes two occurrences the same finding."""
        return (self.check.code, self.account, self.session_id, self.instance)

    def seen(self, time: float, evidence: tuple[Evidence, ...], max_evidence: int) -> None:
        """Count one more occurrence at ``time``, keeping evidence up to ``max_evidence`` entries."""
        self.count += 1
        self.first_time = min(self.first_time, time)
        self.last_time = max(self.last_time, time)
        room = max_evidence - len(self.evidence)
        if room > 0:
            self.evidence.extend(evidence[:room])

    def to_dict(self) -> dict[str, Any]:
        """The finding as the API and the reports show it."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "account": self.account,
            "session_id": self.session_id,
            "instance": self.instance,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "count": self.count,
            "detail": self.detail,
            "evidence": [item.to_dict() for item in self.evidence],
        }


class FindingBook:
    """
    The findings so far, bounded: at most ``max_findings`` distinct findings
    (later new ones are counted in :attr:`dropped`, never stored), at most
    ``max_evidence`` evidence entries each.
    """

    def __init__(self, max_findings: int, max_evidence: int) -> None:
        self.max_findings = max_findings
        self.max_evidence = max_evidence
        self._findings: dict[FindingKey, Finding] = {}
        #: occurrences of new findings refused because the book was full
        self.dropped = 0

    def record(
        self,
        check: Check,
        account: str | None,
        session_id: int | None,
        instance: str | None,
        time: float,
        evidence: tuple[Evidence, ...] = (),
        detail: str = "",
    ) -> Finding | None:
        """
        Count one occurrence of ``check``; the first occurrence's ``detail`` is kept.

        :returns: the finding, or ``None`` when it is new and the book is full.
        """
        key: FindingKey = (check.code, account, session_id, instance)
        finding = self._findings.get(key)
        if finding is None:
            if len(self._findings) >= self.max_findings:
                self.dropped += 1
                return None
            finding = self._findings[key] = Finding(check, account, session_id, instance, time, time, detail)
        finding.seen(time, evidence, self.max_evidence)
        return finding

    def all(self) -> list[Finding]:
        """Every finding, worst first, then by first time."""
        return sorted(self._findings.values(), key=lambda f: (f.severity.rank, f.first_time, f.code))

    def clear(self) -> None:
        """Forget every finding."""
        self._findings.clear()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._findings)
