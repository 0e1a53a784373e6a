"""
What the judge remembers of each session and each account, and the
context its checks share.  Plain data; every collection here has a bound
(stated where it is declared) so a long run or a hostile ESME cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from smsc_sim.conformance.findings import Evidence, FindingBook
from smsc_sim.conformance.landscape import Landscape
from smsc_sim.conformance.thresholds import Thresholds
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU

#: requests of one direction of one session remembered while unanswered; older ones are forgotten
MAX_OUTSTANDING = 4096
#: refused messages remembered per account while waiting for their resubmission
MAX_REFUSED = 10_000
#: concatenated messages remembered per account while their parts arrive
MAX_CONCAT_GROUPS = 1000
#: accounts the judge keeps state for (system_ids of refused binds can be anything)
MAX_ACCOUNTS = 10_000
#: sessions the judge keeps state for at once (closed sessions are forgotten)
MAX_SESSIONS = 100_000


#: command_id -> SMPP name
_COMMAND_NAMES: dict[int, str] = {int(command): command.name for command in CommandId}


def command_name(command_id: int) -> str:
    """The SMPP name of a command, or its hex id when unknown (as :attr:`PDU.name` says it)."""
    known = _COMMAND_NAMES.get(command_id)
    return known if known is not None else f"0x{command_id:08X}"


def evidence_of(pdu: PDU, time: float) -> Evidence:
    """The evidence entry of one PDU."""
    return Evidence(pdu.name, pdu.sequence_number, pdu.command_status, time)


@dataclass
class Context:
    """What every check reads: the findings, the thresholds and the landscape (both replaceable)."""

    clock: IReactorTime
    book: FindingBook
    thresholds: Thresholds
    landscape: Landscape


class Inbound(NamedTuple):
    """A request from the ESME not yet answered."""

    #: its command_id (the name is looked up only for a finding: one is stored per request)
    command_id: int
    time: float
    #: it arrived while the window was full
    over_window: bool
    #: what identifies its message for a resubmission (submit-like requests), else None
    message_key: int | None

    @property
    def command(self) -> str:
        """The SMPP name of its command."""
        return command_name(self.command_id)


class Outbound(NamedTuple):
    """A request of the SMSC (deliver_sm, data_sm, enquire_link, unbind) not yet answered."""

    command: str
    command_id: int
    sequence_number: int
    time: float


def remember(table: OrderedDict[int, Inbound] | OrderedDict[int, Outbound], key: int, value: object) -> None:
    """Add to an outstanding table, forgetting the oldest entry beyond :data:`MAX_OUTSTANDING`."""
    table[key] = value  # type: ignore[assignment]
    while len(table) > MAX_OUTSTANDING:
        table.popitem(last=False)


@dataclass
class SessionTrack:
    """One connection, from ``connection`` to ``session_closed``."""

    session_id: int
    instance: str
    cluster: str | None
    account: str | None = None
    bind_type: str | None = None
    bound: bool = False
    #: the ESME ended the bind with unbind (or answered ours)
    unbound: bool = False
    #: the SMSC ended it (unbind sent, connection reset on a bad PDU, a request of ours expired)
    smsc_closing: bool = False
    inbound: OrderedDict[int, Inbound] = field(default_factory=OrderedDict)
    outbound: OrderedDict[int, Outbound] = field(default_factory=OrderedDict)
    #: when the ESME last sent a request while bound (the bind counts)
    last_request: float = 0.0
    #: the current idle period was already reported (no-keepalive once per period)
    idle_reported: bool = False
    #: when the ESME last sent enquire_link
    last_enquire_link: float | None = None


class Refused(NamedTuple):
    """A message refused with a status that asks for resubmission."""

    evidence: Evidence
    session_id: int
    instance: str


@dataclass
class ConcatGroup:
    """The parts of one concatenated message seen so far."""

    total: int
    instance: str
    first_time: float
    seqnums: set[int] = field(default_factory=set)
    reported: bool = False


@dataclass
class FailoverWatch:
    """An outage dropped an account's binds on ``instance``; did it come back within the window?"""

    instance: str
    cluster: str
    start: float
    evidence: Evidence
    session_id: int | None
    timer: IDelayedCall | None = None


@dataclass
class AccountTrack:
    """One account (system_id), across its sessions and instances."""

    account: str
    #: bound sessions: session_id -> (instance, bind_type)
    sessions: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: every instance it was bound on since the last reset (bounded by the instances configured)
    instances: set[str] = field(default_factory=set)
    #: per instance: the first binds' evidence (at most ``max_evidence``), the first and last bind time
    bind_evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    bind_count: dict[str, int] = field(default_factory=dict)
    first_bind: dict[str, float] = field(default_factory=dict)
    last_bind: dict[str, float] = field(default_factory=dict)
    #: bind attempts of the last ``rebind_period``, newest last (at most ``rebind_max + 1`` kept)
    recent_binds: deque[Evidence] = field(default_factory=deque)
    #: submits of the last second (at most the rate limit + 1 kept)
    submit_times: deque[float] = field(default_factory=deque)
    #: the first and the last ESME_RTHROTTLED of the current throttle episode
    throttle_start: float | None = None
    throttle_last: float | None = None
    #: messages refused with 0x58/0x14, oldest first: message key -> what refused it
    refused: OrderedDict[int, Refused] = field(default_factory=OrderedDict)
    #: concatenated messages: (destination, kind, reference) -> parts seen
    concat: OrderedDict[tuple[str, str, int], ConcatGroup] = field(default_factory=OrderedDict)
    #: outages still waiting for the account to bind again: instance -> watch
    failovers: dict[str, FailoverWatch] = field(default_factory=dict)
