"""
The words of the simulator's vocabulary that have a fixed set of values:
instance states and outage modes, the split modes of a long MO message, the
outcomes of a delivery.

Each is a ``str``-valued enum, defined here once: a member compares equal to
its text (``OutageMode.BLACKHOLE == "blackhole"``) and is written as it in
JSON, so the API, the scenario files and the events show the same words as
before.  The tuples of texts beside each enum are what validators list in
their error messages.

This module imports nothing of the project, so every layer may use it.
"""

from __future__ import annotations

import enum

__all__ = [
    "Word",
    "InstanceMode",
    "OutageMode",
    "OUTAGE_MODES",
    "DROPPING_MODES",
    "CLOSED_MODES",
    "SplitMode",
    "SPLIT_MODES",
    "DeliveryOutcome",
    "DELIVERY_OUTCOMES",
    "DeliveryFailure",
]


class Word(str, enum.Enum):
    """A ``str`` enum that prints, formats and serialises as its value (``format`` follows ``__str__``)."""

    __str__ = str.__str__


class InstanceMode(Word):
    """What an instance is doing: up, or one of the outages (see :mod:`smsc_sim.topology`)."""

    UP = "up"
    #: every session gets an unbind, listeners stop, new connections are refused
    GRACEFUL = "graceful"
    #: every connection is reset (RST), listeners stop
    CRASH = "crash"
    #: connections stay open and nothing is answered; new ones are accepted and ignored
    BLACKHOLE = "blackhole"
    #: existing sessions go on; binds on new connections are never answered
    BIND_HANG = "bind-hang"
    #: binds are answered with a configured status
    REJECT_BINDS = "reject-binds"
    #: every response is delayed by a configured latency
    SLOW = "slow"


#: An outage mode is an instance mode other than ``up``; one enum serves both.
OutageMode = InstanceMode

#: Every outage mode an instance can be put in, as the API and scenarios spell them.
OUTAGE_MODES: tuple[str, ...] = tuple(mode.value for mode in InstanceMode if mode is not InstanceMode.UP)

#: Outages in which the instance's core takes no deliveries through it.
DROPPING_MODES = frozenset({InstanceMode.GRACEFUL, InstanceMode.CRASH, InstanceMode.BLACKHOLE})

#: Outages that close the listeners: a connection attempt is refused.
CLOSED_MODES = frozenset({InstanceMode.GRACEFUL, InstanceMode.CRASH})


class SplitMode(Word):
    """How a long MO message is cut into parts."""

    #: user data header, IEI 0x00, 8-bit reference
    UDH8 = "udh8"
    #: user data header, IEI 0x08, 16-bit reference
    UDH16 = "udh16"
    #: the sar_* TLVs
    SAR = "sar"
    #: one deliver_sm carrying the whole text in message_payload
    PAYLOAD = "payload"


SPLIT_MODES: tuple[str, ...] = tuple(mode.value for mode in SplitMode)


class DeliveryOutcome(Word):
    """How a receipt's (or an MO's) delivery ended, as a message's ``receipts`` list shows it."""

    #: the ESME answered deliver_sm with ESME_ROK
    ACKED = "acked"
    #: the ESME answered with a permanent error
    FAILED = "failed"
    #: every retry was spent on temporary errors
    EXHAUSTED = "exhausted"
    #: it waited in the pending queue past its validity
    EXPIRED = "expired"
    #: the pending queue was full, or the delivery was discarded
    DROPPED = "dropped"


DELIVERY_OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in DeliveryOutcome)


class DeliveryFailure(Word):
    """Why one deliver_sm written to a session got no response (``DeliveryFailed.reason``)."""

    #: no response within the response timer
    TIMEOUT = "timeout"
    #: the session closed, or was not bound to receive
    CLOSED = "closed"
    #: the session's outbound queue was full
    QUEUE_FULL = "queue_full"
