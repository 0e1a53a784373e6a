"""
The control API's handset resources: the messages held for unavailable
handsets (scenario ``absent``), and bringing a handset back now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsc_sim.api.http import JSONAPI, APIError, Call, check_keys

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

#: longest address accepted in the path (source_addr of alert_notification is at most 64 characters)
MAX_ADDRESS = 64


class HandsetRoutes:
    """``GET /handsets`` and ``POST /handsets/{address}/available``."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/handsets", "GET", self.held)
        api.add(prefix + "/handsets/{address}/available", "POST", self.available)

    def held(self, call: Call) -> dict[str, Any]:
        """The held messages: id, account, cluster, handset, until (clock seconds), alert (set_dpf asked)."""
        check_keys(call.query, (), "query")
        return {"held": self.simulator.handsets.held()}

    def available(self, call: Call) -> dict[str, Any]:
        """The handset is back now: its held messages go on and their alerts are sent."""
        check_keys(call.query, (), "query")
        check_keys(call.object_body(), (), "body")
        address = call.params["address"]
        if not 1 <= len(address) <= MAX_ADDRESS:
            raise APIError(400, f"an address is 1 to {MAX_ADDRESS} characters")
        return {"address": address, "message_ids": self.simulator.handsets.make_available(address)}
