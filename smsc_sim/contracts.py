"""
The types that cross layers: what a session asks of the core, what the core
answers, and what the scenario engine decides.

Mechanics and decisions are kept apart (see the README's architecture
section): the session (``smsc_sim.session``) knows SMPP framing, states,
windows and timers, and asks an :class:`ICore` what to answer; the core
(``smsc_sim.core``) knows accounts, binds, messages and deliveries, and asks
an :class:`IScenario` for a verdict on each message.  Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from twisted.internet.defer import Deferred

from smsc_sim.smpp.constants import BindType
from smsc_sim.smpp.pdu import PDU


class AfterReply(enum.Enum):
    """What the session does once a reply has been written (or would have been)."""

    nothing = "nothing"
    unbind = "unbind"  # send unbind, wait for unbind_resp, close
    close = "close"  # close the TCP connection cleanly (FIN)
    reset = "reset"  # abort the TCP connection (RST)


@dataclass(frozen=True, slots=True)
class Reply:
    """
    The core's answer to one request from an ESME.

    :ivar pdu: the response to write; ``None`` means never answer.  It may be
        a generic_nack, and its status may be any 32-bit value, vendor ones
        included.
    :ivar delay: seconds to wait on the session's clock before writing.
    :ivar then: what the session does after writing.
    :ivar on_sent: called right after the response is written to the
        transport.  The core uses this to start receipt timers, so a receipt
        can never overtake its submit_sm_resp, and to release pending
        deliveries after a bind_resp.  When a delayed response cannot be
        written because the connection ended first, it is called all the
        same: the core's decision stands (an accepted message must still
        reach a final state).
    """

    pdu: PDU | None
    delay: float = 0.0
    then: AfterReply = AfterReply.nothing
    on_sent: Callable[[], None] | None = None


class DeliveryFailed(Exception):
    """
    A request the SMSC sent (deliver_sm, data_sm) got no usable answer.

    :ivar reason: ``"timeout"`` (no response within the response timer) or
        ``"closed"`` (the session ended first).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeliveryWaiter(Protocol):
    """
    What waits for the answer to a request the SMSC sent: a ``Deferred``, or
    any object with the same two methods (the router's, which costs less
    than a Deferred per receipt).
    """

    def callback(self, result: PDU) -> Any:
        """The ESME's response arrived."""

    def errback(self, fail: Exception) -> Any:
        """No usable answer: a :class:`DeliveryFailed` (``timeout``, ``closed``, ``queue_full``)."""


class ISession(Protocol):
    """What the core sees of one ESME connection."""

    #: unique within the process, increasing
    session_id: int
    #: name of the instance (listener) the connection came in on, e.g. ``SMPP1``
    instance_name: str
    #: ``host:port`` of the ESME
    peer: str
    #: set once bound
    system_id: str | None
    bind_type: BindType | None
    #: the interface_version the ESME bound with (0x34 for SMPP 3.4)
    interface_version: int
    #: submit_sm accepted at once and told to the bus's accepted-submit sinks by message_id alone
    #: (:meth:`smsc_sim.events.EventBus.tap`): counted here, as their sinks do not count them
    accepted_at_once: int

    def send_delivery(self, pdu: PDU, waiter: DeliveryWaiter) -> None:
        """
        Send a request (deliver_sm or data_sm) to the ESME through the
        session's outbound window; the only way the core sends one.  The
        sequence number in ``pdu`` is replaced by the session's own.

        ``waiter.callback`` gets the ESME's response PDU (whatever its
        status); ``waiter.errback`` a :class:`DeliveryFailed` when there is
        none (at once when the session cannot deliver now).
        """

    def unbind(self) -> Deferred[None]:
        """Send unbind, wait for unbind_resp (bounded by the response timer), then close."""

    def abort(self) -> None:
        """Reset the connection at once (TCP RST), with no unbind."""

    def outbound_pending(self) -> int:
        """Deliveries written and not yet answered, plus those queued behind the window."""

    def send_unanswered(self, pdu: PDU) -> int:
        """
        Write a request that has no response (outbind, alert_notification)
        with the session's next sequence number; 0 when the session cannot write.
        """


class ICore(Protocol):
    """What a session asks of the core of its cluster."""

    def bind(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """
        Decide on a bind_transmitter/receiver/transceiver in OPEN state.

        On success the core has registered the bind (quota counted) and the
        session must move to the bound state of the reply's command before
        handling the next PDU.  The answer is a Deferred only when the quota
        is shared with other processes (``cluster_store``); until it fires
        the session stays open and refuses a second bind.
        """

    def request(self, session: ISession, pdu: PDU) -> Reply | Deferred[Reply]:
        """
        Decide on submit_sm, submit_multi, data_sm, query_sm, cancel_sm or
        replace_sm from a bound session whose state allows it.

        The answer is a Deferred only when the message asked about lives in
        another process of the cluster (``cluster_store``); the session then
        holds its place among the replies until it fires.
        """

    def unbound(self, session: ISession) -> None:
        """The ESME or the SMSC ended the bind cleanly (unbind/unbind_resp)."""

    def connection_lost(self, session: ISession, clean: bool) -> None:
        """
        The connection closed.  ``clean`` is false when it dropped while
        bound with no unbind (the core may then keep a ghost bind).
        Called for every session that the core ever saw, exactly once.
        """


# --------------------------------------------------------------------------
# Scenario verdicts
# --------------------------------------------------------------------------


class Respond(enum.Enum):
    """How a request is answered."""

    normal = "normal"  # the response PDU with the verdict's status
    none = "none"  # never answered
    generic_nack = "generic_nack"  # generic_nack carrying the request's sequence number
    generic_nack_no_seq = "generic_nack_no_seq"  # generic_nack with sequence number 0


@dataclass(frozen=True, slots=True)
class ReceiptStep:
    """
    One receipt of a message's receipt plan.

    :ivar delay: seconds after the submit_sm_resp was written.
    :ivar stat: the receipt's ``stat:`` word (DELIVRD, UNDELIV, EXPIRED,
        REJECTD, DELETED, UNKNOWN, ACCEPTD, ENROUTE).
    :ivar err: the provider's ``err:`` code.
    :ivar intermediate: an intermediate notification (esm_class 0x20),
        sent only when registered_delivery asks for them.
    """

    delay: float
    stat: str
    err: int = 0
    intermediate: bool = False


@dataclass(frozen=True, slots=True)
class ReceiptPlan:
    """
    What happens to an accepted message and which receipts are sent.

    :ivar steps: in time order; the last non-intermediate step sets the
        final state.  Empty: the message stays ENROUTE, no receipt
        (until validity expiry).
    :ivar id_format: how ``id:`` is written in the receipt text:
        ``decimal`` (the provider's), ``hex``, ``hex-lower``, ``padded-decimal``
        or ``wrong`` (an id that matches nothing, for negative tests).
    :ivar tlv_id_format: the same for receipted_message_id; ``as-submitted``
        writes it exactly as in submit_sm_resp; ``omit`` leaves the TLV out.
    :ivar duplicate: send the final receipt twice.
    :ivar network_error_code: 3 raw octets for the network_error_code TLV.
    :ivar per_part: for concatenated messages, ``all`` parts get a receipt,
        or only the ``last`` part.
    """

    steps: tuple[ReceiptStep, ...] = ()
    id_format: str = "decimal"
    tlv_id_format: str = "as-submitted"
    duplicate: bool = False
    network_error_code: bytes | None = None
    per_part: str = "all"


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the scenario engine may match on for one request."""

    command: str  # submit_sm, submit_multi, data_sm
    instance: str
    system_id: str
    bind_type: BindType
    source_addr: str
    destination_addr: str
    text: str | None  # decoded text, None when undecodable or binary
    data_coding: int
    esm_class: int
    registered_delivery: int
    parts_total: int  # 1 for a single message, else the concatenation's total
    tlv_tags: frozenset[int] = frozenset()
    dpf_requested: bool = False  # set_dpf (0x0421) = 1: alert_notification wanted when the handset is back


@dataclass(frozen=True, slots=True)
class Verdict:
    """
    The scenario engine's decision on one request.

    ``status`` other than 0 rejects the request (no record, no receipt).
    ``receipt`` ``None`` means: the scenario's default plan.
    """

    status: int = 0
    respond: Respond = Respond.normal
    latency: float = 0.0
    then: AfterReply = AfterReply.nothing
    receipt: ReceiptPlan | None = None
    rule: str | None = None  # name of the rule that matched, for the inspection API


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """
    A token bucket: ``rate`` messages per second, up to ``burst`` at once.

    :ivar scope: ``account`` (shared by every bind of the account across the
        cluster), ``bind`` (per session) or ``instance``.
    :ivar status: the command_status of a throttled submit (ESME_RTHROTTLED).
    :ivar penalty: after a violation, refuse everything for this many seconds.
    :ivar model: ``bucket`` (a token bucket of ``burst``), ``window`` (at
        most ``rate`` in any one-second window; ``burst`` unused) or
        ``account`` (each account's ``throttle_model``).
    """

    rate: float
    burst: float
    scope: str = "account"
    status: int = 0x58
    penalty: float = 0.0
    model: str = "bucket"


class ScenarioLimits(Protocol):
    """A scenario's overrides of every account's bind quota and throughput (``None``: the config's)."""

    @property
    def max_binds(self) -> int | None:
        """Binds per account."""

    @property
    def throughput(self) -> float | None:
        """Messages per second per account."""


class RetryPolicy(Protocol):
    """A scenario's deliver_sm retries (``None`` fields: the core settings')."""

    @property
    def max_attempts(self) -> int | None:
        """Attempts in all, the first one included."""

    def delay(self, retry: int, default_backoff: float) -> float:
        """Seconds before the ``retry``-th retry (1-based); ``default_backoff`` is the core setting."""


class WindowOverride(Protocol):
    """A scenario's windows of every session (``None`` fields: the session settings')."""

    @property
    def size(self) -> int | None:
        """Requests being answered at once (the inbound window)."""

    @property
    def status(self) -> int | None:
        """The command_status of a request past the inbound window."""

    @property
    def outbound(self) -> int | None:
        """deliver_sm and data_sm the SMSC keeps unanswered per session."""


class IScenario(Protocol):
    """The scenario engine as the core sees it."""

    @property
    def limits(self) -> ScenarioLimits | None:
        """Overrides of every account's quota and throughput; ``None``: none."""

    @property
    def retry(self) -> RetryPolicy | None:
        """How deliver_sm retries go; ``None``: as the core settings say."""

    def throttle(self) -> ThrottleSettings | None:
        """The scenario's throttle, or None to use each account's configured throughput."""

    def verdict(self, facts: MessageFacts) -> Verdict:
        """Decide on one submit_sm / submit_multi / data_sm (counters advance)."""

    def default_receipt(self) -> ReceiptPlan:
        """The plan for a message no rule gave a plan for."""

    def deliver_resp_is_temporary(self, status: int) -> bool:
        """Whether a deliver_sm_resp status asks for a retry (the provider's rule by default)."""

    def on_submit(self, facts: MessageFacts, message_id: str) -> None:
        """An accepted message (what auto-replies answer); after its verdict, before its response."""


class IScenarioRuntime(IScenario, Protocol):
    """The scenario engine as the simulator runs it: :class:`IScenario` plus its seed, windows and timeline."""

    @property
    def seed(self) -> int | None:
        """The seed of its random choices; ``None``: it makes none."""

    @property
    def window(self) -> WindowOverride | None:
        """Overrides of the session windows; ``None``: none."""

    def start(self, host: Any) -> None:
        """Start its timeline and MO traffic, driving ``host`` (the simulator)."""

    def stop(self) -> None:
        """Stop its timeline and MO traffic."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able view for the API and logs: at least its ``name``."""


class Event:
    """
    One thing that happened, published on the :class:`smsc_sim.events.EventBus`.

    kinds: ``connection``, ``bind``, ``bind_refused``, ``unbind``,
    ``session_closed``, ``pdu_in``, ``pdu_out``, ``message`` (a message
    record changed state), ``delivery`` (a deliver_sm was answered), ``outage``.

    A value: subscribers read it and never change it.  A plain class with
    slots rather than a frozen dataclass, because the bus builds one per PDU
    in and out, and a frozen dataclass's ``__init__`` (``object.__setattr__``
    per field) costs more than twice as much.
    """

    __slots__ = ("data", "kind", "time")

    kind: str
    time: float
    data: Mapping[str, Any]

    def __init__(self, kind: str, time: float, data: Mapping[str, Any] | None = None) -> None:
        self.kind = kind
        self.time = time
        self.data = data if data is not None else {}

    def __repr__(self) -> str:
        return f"Event(kind={self.kind!r}, time={self.time!r}, data={self.data!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Event)
        return (self.kind, self.time, self.data) == (other.kind, other.time, other.data)

    def __hash__(self) -> int:
        return hash((self.kind, self.time, self.data))


# ----------------------------------------------------------------------
# Cluster state behind contracts (docs/cluster.md; the bind registry's and the
# throttle's are in smsc_sim.core.contracts, beside the types they name)
# ----------------------------------------------------------------------


class IBindSlots(Protocol):
    """
    The bind quota shared by every process of a cluster: asynchronous,
    because it lives in another process (Redis).

    It is consulted only when a bind is decided and when it ends, never on a
    submit, so the hot path keeps its synchronous :class:`smsc_sim.core.contracts.IBindRegistry`.
    Every slot is a lease: a process refreshes the leases of its live binds,
    and a slot of a process that died is free once its lease runs out, as a
    ghost bind is.  Slots are named by ``holder`` (process and session).
    """

    def acquire(self, system_id: str, holder: str, limit: int) -> Deferred[bool]:
        """Take one slot of the account unless ``limit`` (> 0) are taken; whether it was taken."""

    def release(self, system_id: str, holder: str) -> Deferred[None]:
        """Free the holder's slot at once (a clean unbind)."""

    def hold_ghost(self, system_id: str, holder: str, hold: float) -> Deferred[None]:
        """Turn the holder's slot into a ghost bind: kept ``hold`` seconds, then free."""

    def count(self, system_id: str) -> Deferred[int]:
        """Slots of the account taken now, across the cluster."""
