"""
The judge's findings as reports: a filtered list, a summary with the
verdict, JUnit XML for CI and Markdown for humans.  Pure functions of a
list of findings.
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ElementTree
from collections import Counter
from typing import Any, Iterable

from smsc_sim.conformance.findings import CODES, Check, Finding, Severity

#: the verdicts, best first
VERDICTS = ("pass", "warn", "fail")


def _severity(value: Severity | str | None) -> Severity | None:
    if value is None or isinstance(value, Severity):
        return value
    try:
        return Severity(value)
    except ValueError:
        raise ValueError(
            f"severity {value!r} is not one of {', '.join(s.value for s in Severity)}"
        ) from None


def select(
    findings: Iterable[Finding],
    account: str | None = None,
    session_id: int | None = None,
    severity: Severity | str | None = None,
    since: float | None = None,
) -> list[Finding]:
    """
    The findings that match every filter given.

    :param account: only this account's.
    :param session_id: only this session's (account-wide findings have none, so they drop out).
    :param severity: only this severity (``error``, ``warning`` or ``info``).
    :param since: only findings seen at or after this time (their last occurrence).
    :raises ValueError: for an unknown severity, naming it.
    """
    wanted = _severity(severity)
    return [
        finding
        for finding in findings
        if (account is None or finding.account == account)
        and (session_id is None or finding.session_id == session_id)
        and (wanted is None or finding.severity is wanted)
        and (since is None or finding.last_time >= since)
    ]


def verdict(findings: Iterable[Finding]) -> str:
    """``fail`` with any error finding, else ``warn`` with any warning, else ``pass`` (info never counts)."""
    severities = {finding.severity for finding in findings}
    if Severity.error in severities:
        return "fail"
    if Severity.warning in severities:
        return "warn"
    return "pass"


def summary(findings: list[Finding], dropped: int = 0) -> dict[str, Any]:
    """
    The verdict, the occurrences by code and by severity, and the findings themselves.

    :param dropped: occurrences not stored because the judge's bound was reached.
    """
    by_code: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    for finding in findings:
        by_code[finding.code] += finding.count
        by_severity[finding.severity.value] += finding.count
    return {
        "verdict": verdict(findings),
        "counts": {code: by_code[code] for code in CODES if by_code[code]},
        "severities": {s.value: by_severity[s.value] for s in Severity},
        "dropped": dropped,
        "findings": [finding.to_dict() for finding in findings],
    }


def _describe(finding: Finding) -> str:
    where = []
    if finding.session_id is not None:
        where.append(f"session {finding.session_id}")
    if finding.instance is not None:
        where.append(f"on {finding.instance}")
    place = f" ({', '.join(where)})" if where else ""
    first, last = _utc(finding.first_time), _utc(finding.last_time)
    times = first if first == last else f"{first} to {last}"
    return f"{finding.code}{place}: {finding.detail} [{finding.count}x, {times}]"


def _utc(seconds: float) -> str:
    """A clock reading as ISO 8601 UTC to the millisecond: what a person reading a CI log can place."""
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def describe(findings: Iterable[Finding]) -> str:
    """One readable line per finding (for a test failure message or a log)."""
    return "\n".join(f"{f.severity.value} {f.account or '-'} {_describe(f)}" for f in findings)


def junit(findings: list[Finding], accounts: Iterable[str] = ()) -> str:
    """
    JUnit XML: one testcase per check per account (classname the account,
    name the code), with one ``<failure>`` per error finding; warnings and
    info go to the testcase's ``<system-out>``, so CI shows them without
    failing.  Accounts with no finding still get every testcase, passed.
    """
    names = sorted(set(accounts) | {f.account or "-" for f in findings})
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        grouped.setdefault((finding.account or "-", finding.code), []).append(finding)
    suite = ElementTree.Element("testsuite", name="smsc-sim conformance")
    tests = failures = 0
    for account in names:
        for check in Check:
            case = ElementTree.SubElement(suite, "testcase", classname=account, name=check.code)
            tests += 1
            found = grouped.get((account, check.code), [])
            errors = [f for f in found if f.severity is Severity.error]
            for finding in errors:
                failure = ElementTree.SubElement(
                    case, "failure", message=f"{check.code}: {finding.detail}", type=check.code
                )
                failure.text = _describe(finding) + "\n" + _evidence_text(finding)
                failures += 1
            others = [f for f in found if f.severity is not Severity.error]
            if others:
                out = ElementTree.SubElement(case, "system-out")
                out.text = "\n".join(f"{f.severity.value}: {_describe(f)}" for f in others)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _evidence_text(finding: Finding) -> str:
    return "\n".join(
        f"  {e.time:.3f} {e.command} seq={e.sequence_number} status={e.status}" for e in finding.evidence
    )


def markdown(findings: list[Finding], dropped: int = 0) -> str:
    """A Markdown summary: the verdict, a table by code, then one line per finding."""
    result = summary(findings, dropped)
    lines = [f"# ESME conformance: {result['verdict']}", ""]
    if not findings:
        lines.append("No findings.")
        return "\n".join(lines) + "\n"
    lines += ["| code | severity | count | accounts |", "|---|---|---|---|"]
    for check in Check:
        matching = [f for f in findings if f.check is check]
        if not matching:
            continue
        accounts = ", ".join(sorted({f.account or "-" for f in matching}))
        count = sum(f.count for f in matching)
        lines.append(f"| `{check.code}` | {check.severity.value} | {count} | {_cell(accounts)} |")
    lines += ["", "## Findings", ""]
    lines += [f"- **{f.severity.value}** `{f.account or '-'}` {_cell(_describe(f))}" for f in findings]
    if dropped:
        lines += ["", f"{dropped} further occurrences were not stored (the judge's bound on findings)."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item."""
    return text.replace("|", "\\|").replace("\n", " ")
