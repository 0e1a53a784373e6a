"""
The judge's thresholds: the numbers behind each check, with the defaults
the provider's guide and SMPP 3.4 suggest.

They come from the ``conformance:`` section of the configuration, and a
scenario may override some of them; both give a plain mapping to
:meth:`Thresholds.from_mapping`, which names the key in every error.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping


class ThresholdError(ValueError):
    """A ``conformance:`` value is unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class Thresholds:
    """
    Every threshold of the judge (seconds unless said otherwise).

    The config keys are the field names, under ``conformance:``.
    """

    #: throttle-ignored: a submit rate above this many times the account's throughput ...
    throttle_factor: float = 2.0
    #: ... for longer than this after the first ESME_RTHROTTLED of an episode
    throttle_grace: float = 1.0
    #: throttled-not-resubmitted: a message refused with 0x58 or 0x14 must be submitted again within this
    resubmit_window: float = 60.0
    #: enquire-link-unanswered and deliver-sm-unanswered: a request of the SMSC unanswered this long
    response_timeout: float = 10.0
    #: deliver-sm-slow: a deliver_sm answered later than this
    deliver_sm_slow: float = 5.0
    #: no-failover: after an outage drops the account's binds, it must be bound in the cluster again within this
    failover_window: float = 30.0
    #: rebind-storm: more than this many binds of one account ...
    rebind_max: int = 5
    #: ... within this many seconds
    rebind_period: float = 10.0
    #: no-keepalive: a bound ESME that sends no request (enquire_link or other) for longer than this
    keepalive_idle: float = 60.0
    #: keepalive-too-frequent: two enquire_link from one session closer together than this
    keepalive_min_interval: float = 1.0
    #: concat-inconsistent: parts of one message are compared within this window
    concat_window: float = 60.0
    #: evidence kept per finding (the count goes on)
    max_evidence: int = 10
    #: distinct findings kept (more are counted as dropped)
    max_findings: int = 1000

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, base: Thresholds | None = None) -> Thresholds:
        """
        Thresholds from a plain mapping (the ``conformance:`` section, or a scenario's override).

        :param values: key -> number; keys not given keep ``base``'s value.
        :param base: what the mapping overrides (the defaults when ``None``).
        :raises ThresholdError: for an unknown key, a value that is not a
            number, or one out of range, naming the key.
        """
        base = base if base is not None else cls()
        if values is None:
            return base
        if not isinstance(values, Mapping):
            raise ThresholdError(f"conformance: expected a mapping of thresholds, got {type(values).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in fields:
                known = ", ".join(sorted(fields))
                raise ThresholdError(f"conformance.{key}: unknown threshold; expected one of {known}")
            changes[key] = _coerce(str(key), value, fields[key].type in ("int", int))
        return dataclasses.replace(base, **changes)


#: keys whose value must be above zero (the others may be zero: the check is then off or immediate)
_POSITIVE = frozenset({"throttle_factor", "rebind_max", "rebind_period", "max_evidence", "max_findings"})


def _coerce(key: str, value: Any, integral: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ThresholdError(f"conformance.{key}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ThresholdError(f"conformance.{key}: expected a finite number, got {value!r}")
    if integral:
        if value != int(value):
            raise ThresholdError(f"conformance.{key}: expected a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if value < 0 or (key in _POSITIVE and value == 0):
        bound = "above 0" if key in _POSITIVE else "0 or more"
        raise ThresholdError(f"conformance.{key}: must be {bound}, got {value!r}")
    return value
