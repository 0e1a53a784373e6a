"""
Latency and delay distributions, and how a scenario file writes them.

A duration is a number of seconds or a string with a unit: ``250ms``,
``1.5s``, ``2m``, ``1h``.  A distribution is one of::

    latency: 10ms                                  # fixed
    latency: {fixed: 10ms}
    latency: {uniform: [1s, 5s]}                   # or {uniform: {min: 1s, max: 5s}}
    latency: {normal: {mean: 100ms, stddev: 20ms, min: 0, max: 1s}}
    latency: {exponential: {mean: 2s, max: 60s}}   # or {exponential: 2s}
    latency:
      mix:                                         # weights add up to 1
        - {weight: 0.80, value: 10ms}
        - {weight: 0.15, value: 100ms}
        - {weight: 0.05, value: {uniform: [1s, 2s]}}

Samples are never negative: normal samples are clamped to ``[min, max]``
(``min`` defaults to 0) and exponential ones to ``max``.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from smsc_sim.scenario.source import Cursor, excerpt

_DURATION = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}

#: tolerance when checking that weights add up to 1
WEIGHT_TOLERANCE = 1e-6


class Distribution(Protocol):
    """A source of non-negative durations in seconds."""

    @property
    def fixed(self) -> float | None:
        """The value when every sample is the same, else ``None``."""

    def sample(self, rng: random.Random) -> float:
        """One duration, drawing from ``rng`` only when random."""

    def describe(self) -> Any:
        """A JSON-able summary."""


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same duration."""

    value: float

    @property
    def fixed(self) -> float | None:
        """The value."""
        return self.value

    def sample(self, rng: random.Random) -> float:
        """The value; draws nothing."""
        return self.value

    def describe(self) -> Any:
        """The value in seconds."""
        return self.value


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniformly between ``low`` and ``high``."""

    low: float
    high: float

    @property
    def fixed(self) -> float | None:
        """The value when low equals high."""
        return self.low if self.low == self.high else None

    def sample(self, rng: random.Random) -> float:
        """One uniform draw."""
        return rng.uniform(self.low, self.high)

    def describe(self) -> Any:
        """``{"uniform": [low, high]}``."""
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True, slots=True)
class Normal:
    """Normal (Gaussian), clamped to ``[low, high]``."""

    mean: float
    stddev: float
    low: float = 0.0
    high: float = math.inf

    @property
    def fixed(self) -> float | None:
        """The mean when the deviation is 0."""
        return min(max(self.mean, self.low), self.high) if self.stddev == 0 else None

    def sample(self, rng: random.Random) -> float:
        """One normal draw, clamped."""
        return min(max(rng.normalvariate(self.mean, self.stddev), self.low), self.high)

    def describe(self) -> Any:
        """``{"normal": {...}}``."""
        summary: dict[str, float] = {"mean": self.mean, "stddev": self.stddev, "min": self.low}
        if self.high != math.inf:
            summary["max"] = self.high
        return {"normal": summary}


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with the given mean, capped at ``high``."""

    mean: float
    high: float = math.inf

    @property
    def fixed(self) -> float | None:
        """0 when the mean is 0."""
        return 0.0 if self.mean == 0 else None

    def sample(self, rng: random.Random) -> float:
        """One exponential draw, capped."""
        if self.mean == 0:
            return 0.0
        return min(rng.expovariate(1.0 / self.mean), self.high)

    def describe(self) -> Any:
        """``{"exponential": {...}}``."""
        summary: dict[str, float] = {"mean": self.mean}
        if self.high != math.inf:
            summary["max"] = self.high
        return {"exponential": summary}


@dataclass(frozen=True, slots=True)
class Mix:
    """A weighted choice between distributions."""

    weights: tuple[float, ...]
    choices: tuple[Distribution, ...]
    totals: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "totals", cumulative(self.weights))

    @property
    def fixed(self) -> float | None:
        """The value when every choice is the same fixed value."""
        values = {choice.fixed for choice in self.choices}
        if len(values) == 1:
            return values.pop()
        return None

    def sample(self, rng: random.Random) -> float:
        """Pick a choice by weight, then sample it."""
        return self.choices[pick_weighted(self.totals, rng)].sample(rng)

    def describe(self) -> Any:
        """``{"mix": [...]}``."""
        return {"mix": [{"weight": w, "value": c.describe()} for w, c in zip(self.weights, self.choices)]}


def cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Running totals of ``weights``, for :func:`pick_weighted`."""
    total = 0.0
    result = []
    for weight in weights:
        total += weight
        result.append(total)
    return tuple(result)


def pick_weighted(totals: Sequence[float], rng: random.Random) -> int:
    """
    The index chosen by one draw against running totals of weights.

    :param totals: from :func:`cumulative`; the last is (about) 1.
    """
    if len(totals) == 1:
        # one choice: draw nothing, so adding a sure thing keeps other draws unchanged
        return 0
    index = bisect.bisect_right(totals, rng.random() * totals[-1])
    return min(index, len(totals) - 1)


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------


def parse_duration(cursor: Cursor, what: str = "delay") -> float:
    """
    A duration in seconds: a number, or text with a unit (ms, s, m, h).

    :param what: the word used in messages (``delay``, ``latency``, ...).
    :raises ScenarioError: for anything else, or a negative duration.
    """
    value = cursor.value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise cursor.error(f"expected a {what} such as 250ms, 1.5s, 2m or a number of seconds, got {excerpt(value)}")
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise cursor.error(f"expected a {what} such as 250ms, 1.5s, 2m or a number of seconds, got {excerpt(value)}")
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
        shown = value.strip()
    else:
        seconds = float(value)
        shown = str(value)
    if seconds < 0:
        raise cursor.error(f"negative {what} {shown}")
    if not math.isfinite(seconds):
        raise cursor.error(f"{what} {shown} is not a finite number")
    return seconds


def parse_weight(cursor: Cursor) -> float:
    """A weight: a number in ``[0, 1]``."""
    return cursor.as_float(0.0, 1.0)


def check_weights(cursor: Cursor, weights: Sequence[float]) -> None:
    """Refuse weights that do not add up to 1."""
    total = sum(weights)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise cursor.error(f"weights add up to {round(total, 6):g}, must be 1")


_KINDS = ("fixed", "uniform", "normal", "exponential", "mix")


def parse_distribution(cursor: Cursor, what: str = "delay") -> Distribution:
    """
    A distribution as written in a scenario file (see the module docstring).

    :param what: the word used in messages (``delay``, ``latency``, ...).
    """
    if not cursor.is_mapping():
        return Fixed(parse_duration(cursor, what))
    keys = cursor.mapping(_KINDS)
    if len(keys) != 1:
        raise cursor.error(f"give exactly one of {', '.join(_KINDS)}, got {', '.join(keys) or 'none'}")
    kind, arg = next(iter(keys.items()))
    if kind == "fixed":
        return Fixed(parse_duration(arg, what))
    if kind == "uniform":
        if arg.is_list():
            bounds = arg.as_list()
            if len(bounds) != 2:
                raise arg.error("expected [min, max]")
            low, high = (parse_duration(b, what) for b in bounds)
        else:
            fields = arg.mapping(("min", "max"), required=("min", "max"))
            low, high = parse_duration(fields["min"], what), parse_duration(fields["max"], what)
        if high < low:
            raise arg.error(f"max {high:g} is below min {low:g}")
        return Uniform(low, high)
    if kind == "normal":
        fields = arg.mapping(("mean", "stddev", "min", "max"), required=("mean", "stddev"))
        low = parse_duration(fields["min"], what) if "min" in fields else 0.0
        high = parse_duration(fields["max"], what) if "max" in fields else math.inf
        if high < low:
            raise arg.error(f"max {high:g} is below min {low:g}")
        return Normal(parse_duration(fields["mean"], what), parse_duration(fields["stddev"], "stddev"), low, high)
    if kind == "exponential":
        if arg.is_mapping():
            fields = arg.mapping(("mean", "max"), required=("mean",))
            mean = parse_duration(fields["mean"], what)
            high = parse_duration(fields["max"], what) if "max" in fields else math.inf
        else:
            mean, high = parse_duration(arg, what), math.inf
        return Exponential(mean, high)
    return _parse_mix(arg, what)


def _parse_mix(cursor: Cursor, what: str) -> Mix:
    entries = cursor.as_list()
    if not entries:
        raise cursor.error("a mix needs at least one entry")
    weights: list[float] = []
    choices: list[Distribution] = []
    for entry in entries:
        fields = entry.mapping(("weight", "value"), required=("weight", "value"))
        weights.append(parse_weight(fields["weight"]))
        choices.append(parse_distribution(fields["value"], what))
    check_weights(cursor, weights)
    return Mix(tuple(weights), tuple(choices))
