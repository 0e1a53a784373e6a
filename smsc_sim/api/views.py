"""
How the API shows the simulator's objects, shared by its route modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsc_sim.session import SMPPSession

__all__ = ["session_view"]


def session_view(session: SMPPSession) -> dict[str, Any]:
    """A session as the API shows it."""
    return {
        "session_id": session.session_id,
        "instance": session.instance_name,
        "peer": session.peer,
        "account": session.system_id,
        "bind_type": session.bind_type.value if session.bind_type is not None else None,
        "state": session.state.value,
        "connected_at": session.connected_at,
        "bound_at": session.bound_at,
        "counters": dict(session.counters),
        "outbound_pending": session.outbound_pending(),
    }
