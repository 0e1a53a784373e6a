"""
The token bucket behind submit throttling lives in the core
(:mod:`smsc_sim.core.throttle`), which holds one per scope; it is re-exported
here for scenario code and its tests.
"""

from __future__ import annotations

from smsc_sim.core.throttle import TokenBucket

__all__ = ["TokenBucket"]
