"""
The SMPP 3.4 session states and which requests each state takes (section
2.3, Table 2-1), as data: the session (:mod:`smsc_sim.session`) applies it,
``tests/test_session.py`` checks every (state, command) pair against it.
"""

from __future__ import annotations

import enum

from smsc_sim.smpp.constants import BindType, CommandId

__all__ = ["SessionState", "BOUND_STATE", "BOUND_STATES", "CORE_REQUESTS", "SMSC_ONLY_NO_RESPONSE"]


class SessionState(enum.Enum):
    """SMPP 3.4 session states, plus UNBINDING (the SMSC sent unbind and waits for unbind_resp)."""

    OPEN = "OPEN"
    BOUND_TX = "BOUND_TX"
    BOUND_RX = "BOUND_RX"
    BOUND_TRX = "BOUND_TRX"
    UNBINDING = "UNBINDING"
    CLOSED = "CLOSED"


BOUND_STATE = {
    BindType.transmitter: SessionState.BOUND_TX,
    BindType.receiver: SessionState.BOUND_RX,
    BindType.transceiver: SessionState.BOUND_TRX,
}
BOUND_STATES = frozenset(BOUND_STATE.values())

#: Requests an ESME may send in each state and that the core decides (Table 2-1).
#: replace_sm is listed for BOUND_TX only in the table; every SMSC in the field
#: also takes it on a transceiver bind, which is the TX capability plus RX.
_TRANSMIT_REQUESTS = frozenset(
    {
        CommandId.submit_sm,
        CommandId.submit_multi,
        CommandId.query_sm,
        CommandId.cancel_sm,
        CommandId.replace_sm,
        CommandId.data_sm,
    }
)
CORE_REQUESTS: dict[SessionState, frozenset[int]] = {
    SessionState.BOUND_TX: _TRANSMIT_REQUESTS,
    SessionState.BOUND_TRX: _TRANSMIT_REQUESTS,
    SessionState.BOUND_RX: frozenset({CommandId.data_sm}),
}

#: Requests that only an SMSC sends and that have no response PDU: an ESME
#: sending one gets generic_nack ESME_RINVCMDID (not a command this SMSC takes).
SMSC_ONLY_NO_RESPONSE = frozenset({CommandId.outbind, CommandId.alert_notification})
