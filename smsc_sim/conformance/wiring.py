"""
How the simulator assembly feeds its judge what no event says, and how
the judge's report leaves the process at shutdown.

:class:`~smsc_sim.simulator.Simulator` owns one
:class:`~smsc_sim.conformance.Judge`; these functions keep that assembly
to a few calls:

- :func:`thresholds_for`: the config's ``conformance:`` section, then the
  active scenario's ``conformance:`` override;
- :func:`landscape_for`: the configuration's topology with the throughput
  and window the scenario imposes *now* (its ``throttle:``, ``limits:``,
  ``window:``, and the timeline's throttle changes);
- :func:`shutdown_report`: the summary logged one line per code, and the
  JUnit XML and Markdown files of ``--conformance-report``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from twisted.logger import Logger

from smsc_sim.config import AccountSettings, Config
from smsc_sim.conformance.judge import Judge
from smsc_sim.conformance.landscape import Landscape
from smsc_sim.conformance.thresholds import Thresholds

__all__ = ["landscape_for", "markdown_path", "shutdown_report", "thresholds_for"]

_log = Logger(namespace="smsc_sim.conformance")


def thresholds_for(config: Config, scenario: Any) -> Thresholds:
    """
    The thresholds in force: the defaults, the config's ``conformance:``, then the scenario's.

    Both layers were checked when they were loaded (a config or scenario mistake stops
    before anything runs), so this never raises for them.
    """
    base = Thresholds.from_mapping(config.conformance or None)
    override = getattr(scenario, "conformance", None)
    return Thresholds.from_mapping(dict(override), base) if override else base


def _throughput(account: AccountSettings, throttle: Any, limits: Any) -> float:
    """
    The account's messages per second as the core throttles them now (0: not judged).

    A scenario throttle of scope ``bind`` or ``instance`` gives each session or
    instance its own bucket: the account as a whole may then rightly go faster
    than the rate, so the judge is told nothing (0) rather than something false.
    """
    if throttle is None:
        override = getattr(limits, "throughput", None)
        return float(override) if override is not None else account.throughput
    if throttle.rate <= 0 or getattr(throttle, "scope", "account") != "account":
        return 0.0
    return float(throttle.rate)


def landscape_for(config: Config, scenario: Any) -> Landscape:
    """
    The judge's landscape: the configuration's, with the scenario's throughput and window in force now.

    :param scenario: the active scenario engine; ``throttle()``, ``limits`` and
        ``window`` are read when it has them (the core reads the same).
    """
    base = Landscape.from_config(config)
    throttle_of = getattr(scenario, "throttle", None)
    throttle = throttle_of() if callable(throttle_of) else None
    limits = getattr(scenario, "limits", None)
    window = getattr(scenario, "window", None)
    size = getattr(window, "size", None)
    status = getattr(window, "status", None)
    return Landscape(
        clusters=base.clusters,
        throughput={account.system_id: _throughput(account, throttle, limits) for account in config.accounts},
        inbound_window=size if size is not None else base.inbound_window,
        window_status=status if status is not None else base.window_status,
    )


def markdown_path(report: str) -> str:
    """Where the Markdown summary goes beside a JUnit report: ``FILE.md`` (``report.xml`` -> ``report.md``)."""
    root, extension = os.path.splitext(report)
    return (root if extension.lower() == ".xml" else report) + ".md"


def _write(path: str, text: str) -> None:
    """Write a whole file or nothing (a temporary file renamed over it): CI never reads half a report."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".conformance-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def shutdown_report(judge: Judge, report: str | None, judging: bool = True, log: Logger = _log) -> None:
    """
    Log the judge's summary, one line per code, and write the report files when asked.

    :param report: the JUnit XML file (``conformance_report``); the Markdown
        summary goes to :func:`markdown_path` of it.  ``None``: log only.
        A file that cannot be written is logged, never raised: shutdown goes on.
    :param judging: ``False`` when the judge was switched off: that is logged,
        and no report file is written (an empty one would read as a pass).
    """
    if not judging:
        log.info("conformance: not judged (conformance_judge is off); no report")
        return
    findings = judge.findings()
    summary = judge.summary()
    log.info(
        "conformance: verdict {verdict}, {findings} findings ({errors} error, {warnings} warning, {infos} info)",
        verdict=summary["verdict"],
        findings=len(findings),
        errors=summary["severities"]["error"],
        warnings=summary["severities"]["warning"],
        infos=summary["severities"]["info"],
    )
    for code, count in summary["counts"].items():
        matching = [f for f in findings if f.code == code]
        log.info(
            "conformance: {code} ({severity}): {count}x, accounts {accounts}: {detail}",
            code=code,
            severity=matching[0].severity.value,
            count=count,
            accounts=", ".join(sorted({f.account or "-" for f in matching})),
            detail=matching[0].detail,
        )
    if summary["dropped"]:
        log.warn("conformance: {dropped} occurrences not stored (max_findings)", dropped=summary["dropped"])
    if report is None:
        return
    try:
        _write(report, judge.junit())
        _write(markdown_path(report), judge.markdown())
    except OSError as e:
        log.error("conformance: cannot write the report {path}: {error}", path=report, error=e)
        return
    log.info("conformance: report written to {path} and {markdown}", path=report, markdown=markdown_path(report))
