"""
The control API's outbind resource: ask the SMSC to open a session to an
account's ESME now (``POST``), or see where its outbind link stands (``GET``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsc_sim.api.http import JSONAPI, APIError, Call, JSONResponse, check_keys
from smsc_sim.outbind import OutbindError

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator


class OutbindRoutes:
    """``POST`` and ``GET /accounts/{system_id}/outbind``."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/accounts/{system_id}/outbind", "POST", self.start)
        api.add(prefix + "/accounts/{system_id}/outbind", "GET", self.show)

    def _system_id(self, call: Call) -> str:
        system_id = call.params["system_id"]
        if not any(account.system_id == system_id for account in self.simulator.config.accounts):
            raise APIError(404, f"no account {system_id[:40]!r}")
        return system_id

    def start(self, call: Call) -> JSONResponse:
        """Connect to the ESME and send outbind unless a link is already connecting or bound (202)."""
        check_keys(call.query, (), "query")
        check_keys(call.object_body(), (), "body")  # nothing to say yet: an empty body or {}
        system_id = self._system_id(call)
        try:
            view = self.simulator.outbinder.trigger(system_id)
        except OutbindError as e:
            raise APIError(e.code, str(e)) from None
        return JSONResponse(202, view)

    def show(self, call: Call) -> dict[str, Any]:
        """The account's outbind link: endpoint, state, attempts, last error."""
        check_keys(call.query, (), "query")
        system_id = self._system_id(call)
        try:
            return self.simulator.outbinder.link(system_id).describe()
        except OutbindError as e:
            raise APIError(e.code, str(e)) from None
