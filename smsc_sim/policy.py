"""
What a session asks the instance it arrived on.

An instance is up or in an outage (:mod:`smsc_sim.topology`); the outage
decides some of what a session does on the wire: a black hole swallows
everything, a bind-hang leaves binds unanswered, a reject-binds outage refuses
them, a slow one delays every response.  The session does not know the modes:
it asks the questions below, and :class:`smsc_sim.topology.InstanceRuntime`
answers them.  A new outage mode changes the topology, not the session.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from smsc_sim.contracts import ISession, Reply
from smsc_sim.smpp.pdu import PDU

__all__ = ["IInstancePolicy"]

S_contra = TypeVar("S_contra", bound=ISession, contravariant=True)


class IInstancePolicy(Protocol[S_contra]):
    """
    The instance as its sessions see it; ``S_contra`` is the session type the
    instance keeps a list of.

    The attributes are read on every PDU, so they are plain attributes, not
    methods.

    :ivar name: the instance's name (SMPP1, ...), in logs, events and the API.
    :ivar strict: refuse what the provider refuses, where SMPP leaves it open
        (an enquire_link before bind).
    :ivar latency: seconds added to every response (configured, plus a slow outage's).
    :ivar window: the inbound window, ``(size, status)``: requests kept
        unanswered at most (0: no limit) and the status of a refused one.
    :ivar outbound_window: deliveries a session keeps unanswered when the
        scenario sets it; ``None``: the session's own settings.
    """

    name: str
    strict: bool
    latency: float
    window: tuple[int, int]
    outbound_window: int | None

    def swallows_input(self) -> bool:
        """Whether what the ESME sends is dropped unread (no answer, not even to enquire_link)."""

    def keeps_silent(self) -> bool:
        """Whether the session's own timers stay silent: no enquire_link, no unbind, no close."""

    def bind_verdict(self, pdu: PDU) -> Reply | None:
        """
        The instance's own answer to a bind, before the core is asked.

        :returns: ``None`` when the core decides; else the reply to carry out
            instead (a reply without a PDU: the bind is never answered).
        """

    def session_started(self, session: S_contra) -> None:
        """A connection arrived on the instance."""

    def session_ended(self, session: S_contra) -> None:
        """A connection on the instance closed."""
