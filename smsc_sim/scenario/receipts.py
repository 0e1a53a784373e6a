"""
Receipt plans as a scenario writes them, and how one message's plan is drawn.

A :class:`ReceiptSpec` is the validated ``receipt:`` section of a scenario or
a rule; :meth:`ReceiptSpec.sample` turns it into the
:class:`~smsc_sim.contracts.ReceiptPlan` the core carries out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.scenario.distributions import Distribution, Fixed, cumulative, pick_weighted

#: receipt ``stat:`` words a final outcome may name
FINAL_STATS = ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN", "ACCEPTD")
#: receipt ``stat:`` words an intermediate receipt may name
INTERMEDIATE_STATS = ("ENROUTE", "ACCEPTD")
#: the ``err:`` written when an outcome gives none; failures use the provider's
#: closest err code (1 unknown, 2 absent subscriber - temporary, 6 anti-spam, 99 general)
DEFAULT_ERR = {
    "DELIVRD": 0,
    "ACCEPTD": 0,
    "ENROUTE": 0,
    "UNDELIV": 1,
    "UNKNOWN": 1,
    "EXPIRED": 2,
    "REJECTD": 6,
    "DELETED": 99,
}
ID_FORMATS = ("decimal", "hex", "hex-lower", "padded-decimal", "wrong")
TLV_ID_FORMATS = ("as-submitted", "decimal", "hex", "hex-lower", "padded-decimal", "omit", "wrong")
PER_PART = ("all", "last")

@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """One possible final receipt, chosen by weight."""

    weight: float
    stat: str
    err: int
    network_error_code: bytes | None = None


@dataclass(frozen=True, slots=True)
class IntermediateReceipt:
    """An intermediate receipt (ENROUTE/ACCEPTD), after a delay from submit_sm_resp."""

    stat: str
    delay: Distribution


@dataclass(frozen=True, slots=True)
class ReceiptSpec:
    """
    How to make a :class:`~smsc_sim.contracts.ReceiptPlan` for a message.

    :ivar none: send no receipt at all (the message stays ENROUTE).
    :ivar duplicate: probability of sending the final receipt twice.
    """

    outcomes: tuple[ReceiptOutcome, ...] = (ReceiptOutcome(1.0, "DELIVRD", 0),)
    delay: Distribution = Fixed(0.0)
    intermediate: tuple[IntermediateReceipt, ...] = ()
    none: bool = False
    duplicate: float = 0.0
    id_format: str = "decimal"
    tlv_id_format: str = "as-submitted"
    network_error_code: bytes | None = None
    per_part: str = "all"
    totals: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "totals", cumulative([o.weight for o in self.outcomes]))

    @property
    def is_random(self) -> bool:
        """Whether two messages could get different plans."""
        if self.none:
            return False
        return (
            len(self.outcomes) > 1
            or 0.0 < self.duplicate < 1.0
            or self.delay.fixed is None
            or any(step.delay.fixed is None for step in self.intermediate)
        )

    def sample(self, rng: random.Random) -> ReceiptPlan:
        """
        One plan.  Draws, in order: intermediate delays, the outcome, the
        final delay, the duplicate; a final receipt never precedes an
        intermediate one.
        """
        if self.none:
            return ReceiptPlan((), self.id_format, self.tlv_id_format, False, None, self.per_part)
        steps = []
        latest = 0.0
        for step in self.intermediate:
            delay = step.delay.sample(rng)
            latest = max(latest, delay)
            steps.append(ReceiptStep(delay, step.stat, 0, True))
        steps.sort(key=lambda s: s.delay)
        outcome = self.outcomes[pick_weighted(self.totals, rng)]
        steps.append(ReceiptStep(max(self.delay.sample(rng), latest), outcome.stat, outcome.err))
        duplicate = self.duplicate >= 1.0 or (self.duplicate > 0.0 and rng.random() < self.duplicate)
        return ReceiptPlan(
            tuple(steps),
            self.id_format,
            self.tlv_id_format,
            duplicate,
            outcome.network_error_code or self.network_error_code,
            self.per_part,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary."""
        if self.none:
            return {"none": True}
        summary: dict[str, Any] = {
            "outcomes": [{"weight": o.weight, "stat": o.stat, "err": o.err} for o in self.outcomes],
            "delay": self.delay.describe(),
            "id_format": self.id_format,
            "tlv_id_format": self.tlv_id_format,
            "per_part": self.per_part,
        }
        if self.intermediate:
            summary["intermediate"] = [{"stat": s.stat, "delay": s.delay.describe()} for s in self.intermediate]
        if self.duplicate:
            summary["duplicate"] = self.duplicate
        if self.network_error_code is not None:
            summary["network_error_code"] = self.network_error_code.hex(" ").upper()
        return summary
