"""
The judge: a conformance report on the ESME under test.

It listens to the simulator's event bus and records what the ESME did wrong
against the provider's rules and SMPP 3.4 (docs/conformance.md lists every
check).  :class:`Judge` is the subscriber; :mod:`~smsc_sim.conformance.report`
turns its findings into a summary, JUnit XML or Markdown.
"""

from __future__ import annotations

from smsc_sim.conformance.findings import CODES, Check, Evidence, Finding, Severity
from smsc_sim.conformance.judge import Judge
from smsc_sim.conformance.landscape import Landscape
from smsc_sim.conformance.thresholds import ThresholdError, Thresholds

__all__ = ["CODES", "Check", "Evidence", "Finding", "Judge", "Landscape", "Severity", "ThresholdError", "Thresholds"]
