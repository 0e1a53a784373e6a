"""
The event bus: every PDU in or out and every change of state is published
here, and the inspection API, metrics and logs subscribe.

Publishing costs one dictionary lookup when nobody listens, so the hot path
can publish unconditionally.

Some kinds are only for those who name them (:data:`OPT_IN_KINDS`: the raw
octets of every read and write, which the pcap trace records): a subscriber
of "everything" never gets them, and a publisher asks :meth:`EventBus.wants`
before it builds one, so the octets cost nothing while nobody traces.

Beside the events, the bus holds the *PDU taps* (:meth:`EventBus.tap`):
observers that every session calls straight with each PDU it reads or
writes, with no :class:`~smsc_sim.contracts.Event` built.  The control
API's counters (metrics, the submits log) are taps, so an API that nobody
calls costs a method call per PDU, not an event and a dispatch.

A tap may also give an *accepted-submit sink* (:data:`AcceptedSink`): the
usual submit, a submit_sm accepted and answered at once, then reaches it as
its message_id alone, through a builtin such as ``list.append``, with no
Python call at all; the session counts these submits itself
(:attr:`~smsc_sim.contracts.ISession.accepted_at_once`).  That is what lets
an idle control API cost almost nothing per submit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import Event

if TYPE_CHECKING:
    from smsc_sim.contracts import ISession
    from smsc_sim.smpp.pdu import PDU

Subscriber = Callable[[Event], None]

#: kinds delivered only to subscribers that ask for them by name (``subscribe(..., kinds=...)``)
OPT_IN_KINDS = frozenset({"bytes_in", "bytes_out"})
#: kinds whose subscriber list is kept ready (the simulator publishes about a dozen)
_MAX_CACHED_KINDS = 64
#: the kinds a session publishes for every PDU
PDU_KINDS = ("pdu_in", "pdu_out")
#: told the message_id of each submit_sm accepted at once (see :meth:`EventBus.tap`): best a builtin
AcceptedSink = Callable[[str], object]


class IPduTap(Protocol):
    """An observer of every PDU of every session, called straight by the session (:meth:`EventBus.tap`)."""

    def pdu_in(self, session: ISession, pdu: PDU, now: float) -> None:
        """``session`` read ``pdu`` at ``now`` (the time of the read)."""

    def pdu_out(self, session: ISession, pdu: PDU) -> None:
        """``session`` writes ``pdu`` now."""

    def submit_answered(self, session: ISession, request: PDU, answer: PDU, read_at: float) -> None:
        """
        ``session`` read the submit_sm ``request`` at ``read_at`` and writes
        its ``answer`` now, before any other PDU: what ``pdu_in`` then
        ``pdu_out`` would say, in one call (the usual submit, answered at once).
        """


class EventBus:
    """Fan-out of :class:`~smsc_sim.contracts.Event` values to subscribers."""

    log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._subscribers: list[Subscriber] = []
        # subscribers of some kinds only: kind -> subscribers (a kind is absent when it has none)
        self._by_kind: dict[str, list[Subscriber]] = {}
        # kind -> who gets it, in delivery order; rebuilt after any (un)subscribe, because
        # building the tuple on every publish cost as much as a cheap subscriber
        self._targets: dict[str, tuple[Subscriber, ...]] = {}
        #: whether anyone listens; callers may skip building costly event data when not
        #: (a plain attribute, kept by subscribe and unsubscribe: the hot path reads it per PDU)
        self.active = False
        #: whether a ``pdu_in`` or ``pdu_out`` event would reach anyone (read by the session per PDU)
        self.wants_pdus = False
        #: whether a ``message`` event would reach anyone (read per state change of a message)
        self.wants_messages = False
        #: whether a ``delivery`` event would reach anyone (read per receipt or MO delivered)
        self.wants_deliveries = False
        #: the PDU taps, called by every session with each PDU (see :meth:`tap`)
        self.pdu_taps: tuple[IPduTap, ...] = ()
        #: the taps told of a submit_sm accepted at once by ``submit_answered`` (those without a sink)
        self.submit_taps: tuple[IPduTap, ...] = ()
        #: the sinks told of a submit_sm accepted at once by its message_id (instead of ``submit_answered``)
        self.accepted_sinks: tuple[AcceptedSink, ...] = ()

    def _changed(self) -> None:
        self.active = bool(self._subscribers) or bool(self._by_kind)
        self.wants_pdus = any(self.wants(kind) for kind in PDU_KINDS)
        self.wants_messages = self.wants("message")
        self.wants_deliveries = self.wants("delivery")
        self._targets.clear()

    def tap(self, tap: IPduTap, accepted: AcceptedSink | None = None) -> Callable[[], None]:
        """
        Have every session call ``tap`` with each PDU from now on, instead
        of an event: for counters that see every PDU and must cost little.

        :param accepted: when given, a submit_sm accepted at once (its
            submit_sm_resp, status 0, written before any other PDU, and no
            ``replace_if_present_flag``) is not told to ``tap`` but to
            ``accepted``, with its message_id (text) alone; the session
            counts it in its ``accepted_at_once``.  Each such submit reaches
            ``accepted`` exactly once, in the order the sessions answer them.
        :returns: a function that removes it.
        """
        self.pdu_taps += (tap,)
        if accepted is None:
            self.submit_taps += (tap,)
        else:
            self.accepted_sinks += (accepted,)

        def untap() -> None:
            self.pdu_taps = tuple(t for t in self.pdu_taps if t is not tap)
            self.submit_taps = tuple(t for t in self.submit_taps if t is not tap)
            if accepted is not None:
                self.accepted_sinks = tuple(s for s in self.accepted_sinks if s is not accepted)

        return untap

    def _targets_of(self, kind: str) -> tuple[Subscriber, ...]:
        """Who gets an event of ``kind``: the subscribers of everything first, then those of the kind."""
        targets: tuple[Subscriber, ...] = () if kind in OPT_IN_KINDS else tuple(self._subscribers)
        named = self._by_kind.get(kind)
        if named is not None:
            targets += tuple(named)
        if len(self._targets) >= _MAX_CACHED_KINDS:
            self._targets.clear()  # publishers name a handful of kinds; a bound all the same
        self._targets[kind] = targets
        return targets

    def wants(self, kind: str) -> bool:
        """Whether an event of ``kind`` would reach anyone (publishers of costly kinds ask first)."""
        if kind in self._by_kind:
            return True
        return bool(self._subscribers) and kind not in OPT_IN_KINDS

    def subscribe(self, subscriber: Subscriber, kinds: Iterable[str] | None = None) -> Callable[[], None]:
        """
        Call ``subscriber`` with every event from now on, or with the events
        of ``kinds`` only (the only way to get the :data:`OPT_IN_KINDS`).

        :returns: a function that unsubscribes it.
        """
        if kinds is None:
            self._subscribers.append(subscriber)
            self._changed()

            def unsubscribe() -> None:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)
                    self._changed()

            return unsubscribe

        named = tuple(dict.fromkeys(kinds))
        for kind in named:
            self._by_kind.setdefault(kind, []).append(subscriber)
        self._changed()

        def unsubscribe_kinds() -> None:
            for kind in named:
                subscribers = self._by_kind.get(kind)
                if subscribers is not None and subscriber in subscribers:
                    subscribers.remove(subscriber)
                    if not subscribers:
                        del self._by_kind[kind]
            self._changed()

        return unsubscribe_kinds

    def publish(self, kind: str, **data: Any) -> None:
        """Publish one event; a failing subscriber is logged and never breaks the publisher."""
        targets = self._targets.get(kind)
        if targets is None:
            targets = self._targets_of(kind)
        if not targets:
            return
        event = Event(kind, self._clock.seconds(), data)
        for subscriber in targets:
            try:
                subscriber(event)
            except Exception:
                self.log.failure("event subscriber failed on {kind}", kind=kind)
