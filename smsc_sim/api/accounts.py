"""
The control API's account resources: the configured accounts with their
switches, price and balance, and setting a balance.

Passwords are never shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsc_sim.api.http import JSONAPI, APIError, Call, check_keys, excerpt
from smsc_sim.config import AccountSettings

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator


class AccountRoutes:
    """``GET /accounts``, ``GET /accounts/{system_id}`` and ``PUT /accounts/{system_id}/balance``."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/accounts", "GET", self.accounts)
        api.add(prefix + "/accounts/{system_id}", "GET", self.account)
        api.add(prefix + "/accounts/{system_id}/balance", "PUT", self.set_balance)

    def _settings(self, call: Call) -> AccountSettings:
        wanted = call.params["system_id"]
        for account in self.simulator.config.accounts:
            if account.system_id == wanted:
                return account
        raise APIError(404, f"no account {excerpt(wanted)}")

    def _view(self, account: AccountSettings) -> dict[str, Any]:
        binds = sum(len(core.binds.of_account(account.system_id)) for core in self.simulator.cores.values())
        return {
            "system_id": account.system_id,
            "smpp_enabled": account.smpp_enabled,
            "max_binds": account.max_binds,
            "binds": binds,
            "throughput": account.throughput,
            "throttle_model": account.throttle_model,
            "receipts_as": account.receipts_as,
            "receipt_id_format": account.receipt_id_format,
            "message_id_digits": account.message_id_digits,
            **self.simulator.balances.describe(account.system_id),
        }

    def accounts(self, call: Call) -> dict[str, Any]:
        """Every configured account, in configuration order."""
        check_keys(call.query, (), "query")
        return {"accounts": [self._view(account) for account in self.simulator.config.accounts]}

    def account(self, call: Call) -> dict[str, Any]:
        """One account."""
        return self._view(self._settings(call))

    def set_balance(self, call: Call) -> dict[str, Any]:
        """
        Set the balance: ``{"balance": "12.50 EUR"}`` (the currency may be left
        out; another currency than the account's is refused).  An account
        without billing becomes billed, at its price (0 without one).
        """
        account = self._settings(call)
        body = call.object_body()
        check_keys(body, ("balance",))
        value = body.get("balance")
        if not isinstance(value, str):
            raise APIError(400, 'balance must be a string such as "12.50000000 EUR"')
        try:
            self.simulator.balances.set_balance(account.system_id, value)
        except ValueError as e:
            raise APIError(400, f"balance: {e}") from None
        return self._view(account)
