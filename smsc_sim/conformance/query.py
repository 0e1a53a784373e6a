"""
What the API and the test fixtures share about reading the judge: the
filters (checked the same way everywhere), and the assertion that fails a
test with each finding listed readably.

The assertion works on the summary as the API answers it (plain JSON), so
the subprocess form, the in-process form and the in-memory form fail with
the same message.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from smsc_sim.conformance.findings import CODES, Check, Evidence, Finding, Severity
from smsc_sim.conformance.report import describe

__all__ = ["FILTERS", "assertion_failure", "check_allow", "check_fail_on", "findings_of", "parse_filters"]

#: the filters of ``GET /api/v1/conformance`` and ``smsc.conformance()``
FILTERS = ("account", "session_id", "severity", "since")
#: longest account filter accepted (a system_id is at most 15 characters)
MAX_ACCOUNT = 15
_SEVERITIES = tuple(s.value for s in Severity)


def parse_filters(values: Mapping[str, Any]) -> dict[str, Any]:
    """
    The judge's filters from a query string or keyword arguments, checked.

    ``None`` values are left out.  ``account``: a system_id (1 to 15
    characters); ``session_id``: an integer of 1 or more; ``severity``:
    ``error``, ``warning`` or ``info``; ``since``: a time (seconds since the
    epoch, the simulator's clock), finite.

    :raises ValueError: for an unknown filter or a bad value, naming it.
    """
    unknown = sorted(set(values) - set(FILTERS))
    if unknown:
        shown = ", ".join(str(name)[:40] for name in unknown[:5])
        raise ValueError(f"unknown filter(s) {shown}; expected: {', '.join(FILTERS)}")
    result: dict[str, Any] = {}
    account = values.get("account")
    if account is not None:
        if not isinstance(account, str) or not 1 <= len(account) <= MAX_ACCOUNT:
            raise ValueError(f"account must be a system_id of 1 to {MAX_ACCOUNT} characters, got {_show(account)}")
        result["account"] = account
    session_id = values.get("session_id")
    if session_id is not None:
        number = _integer(session_id)
        if number is None or number < 1:
            raise ValueError(f"session_id must be an integer of 1 or more, got {_show(session_id)}")
        result["session_id"] = number
    severity = values.get("severity")
    if severity is not None:
        if isinstance(severity, Severity):
            severity = severity.value
        if severity not in _SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(_SEVERITIES)}, got {_show(severity)}")
        result["severity"] = severity
    since = values.get("since")
    if since is not None:
        moment = _number(since)
        if moment is None:
            raise ValueError(f"since must be a number (seconds since the epoch), got {_show(since)}")
        result["since"] = moment
    return result


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value) <= 19:
        return int(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > 40:
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def findings_of(summary: Mapping[str, Any]) -> list[Finding]:
    """The findings of a summary (as the API answers it) as :class:`Finding` values again."""
    found: list[Finding] = []
    for item in summary.get("findings", ()):
        finding = Finding(
            Check(item["code"]),
            item.get("account"),
            item.get("session_id"),
            item.get("instance"),
            float(item.get("first_time", 0.0)),
            float(item.get("last_time", 0.0)),
            str(item.get("detail", "")),
            int(item.get("count", 1)),
        )
        finding.evidence = [
            Evidence(e["command"], e.get("sequence_number"), e.get("status"), float(e.get("time", 0.0)))
            for e in item.get("evidence", ())
        ]
        found.append(finding)
    return found


def check_allow(allow: Iterable[str]) -> frozenset[str]:
    """The allowed codes, refusing a misspelt one (an allowance that never matches would hide nothing)."""
    if isinstance(allow, str):
        allow = (allow,)
    codes = frozenset(allow)
    unknown = sorted(codes - set(CODES))
    if unknown:
        raise ValueError(f"unknown finding code(s) {', '.join(unknown)}; codes are {', '.join(CODES)}")
    return codes


def check_fail_on(fail_on: str) -> Severity:
    """The least severity that fails ``assert_conformant``: ``warning`` or ``error``."""
    if fail_on not in ("error", "warning"):
        raise ValueError(f"fail_on must be 'error' or 'warning', got {_show(fail_on)}")
    return Severity(fail_on)


def assertion_failure(summary: Mapping[str, Any], allow: Iterable[str] = (), fail_on: str = "warning") -> str | None:
    """
    The message of a failed ``assert_conformant``, or ``None`` when it passes.

    :param summary: the judge's summary (``GET /api/v1/conformance``).
    :param allow: codes that never fail (``single-instance`` for an ESME bound to one instance on purpose).
    :param fail_on: the least severity that fails: ``warning`` (errors and
        warnings fail, info never does) or ``error``.
    :raises ValueError: for an unknown code in ``allow`` or a bad ``fail_on``.
    """
    allowed = check_allow(allow)
    worst = check_fail_on(fail_on).rank
    failing = [f for f in findings_of(summary) if f.severity.rank <= worst and f.code not in allowed]
    if not failing:
        return None
    occurrences = sum(f.count for f in failing)
    also = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
    head = f"the ESME is not conformant: {len(failing)} finding(s), {occurrences} occurrence(s){also}"
    return head + "\n" + describe(failing)
