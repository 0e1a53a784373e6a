"""
The provider's happy path, so that a core works with no scenario engine.

Every message is accepted (status 0), delivered one second after its
submit_sm_resp (DELIVRD, err 0), deliver_sm_resp statuses are temporary as
the provider documents (smpp-facts.md A.10), and each account's configured
throughput applies.
"""

from __future__ import annotations

from smsc_sim.contracts import (
    MessageFacts,
    ReceiptPlan,
    ReceiptStep,
    RetryPolicy,
    ScenarioLimits,
    ThrottleSettings,
    Verdict,
)
from smsc_sim.smpp.constants import PROVIDER_TEMPORARY_DELIVER_STATUSES

_ACCEPT = Verdict()
_PLAN = ReceiptPlan(steps=(ReceiptStep(1.0, "DELIVRD", 0),))


class DefaultScenario:
    """An :class:`~smsc_sim.contracts.IScenario` with the provider's happy path."""

    #: no overrides: each account's quota and throughput, the core's retry settings
    limits: ScenarioLimits | None = None
    retry: RetryPolicy | None = None

    def throttle(self) -> ThrottleSettings | None:
        """None: each account's configured throughput applies."""
        return None

    def verdict(self, facts: MessageFacts) -> Verdict:
        """Accept every message, with the default plan."""
        return _ACCEPT

    def default_receipt(self) -> ReceiptPlan:
        """DELIVRD, err 0, one second after the response."""
        return _PLAN

    def deliver_resp_is_temporary(self, status: int) -> bool:
        """The provider's temporary deliver_sm_resp statuses trigger a retry."""
        return status in PROVIDER_TEMPORARY_DELIVER_STATUSES

    def on_submit(self, facts: MessageFacts, message_id: str) -> None:
        """Nothing answers a submit."""
