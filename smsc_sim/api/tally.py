"""
What the control API counts of every PDU, kept as plainly as it can be.

:class:`PduTally` is a PDU tap (:meth:`smsc_sim.events.EventBus.tap`): every
session calls it with each PDU it reads or writes, no event built.  It
keeps counts by instance, command and status; the time of each open
request, to put the answer's latency in a histogram (the SMSC's answers
and the ESME's); and one compact record (a tuple) per submit, replaced by
a longer one when it is answered, that the submits log turns into JSON
only when asked.  Tuples of plain values: the garbage collector stops
tracking them, and there is no dict per submit.

A submit_sm accepted at once, the usual submit, costs the tally no call at
all: the session puts its message_id in the tally's log with ``list.append``
(the bus's accepted-submit sink, :meth:`smsc_sim.events.EventBus.tap`) and
counts it itself (``ISession.accepted_at_once``).  Its count is read from
the session, its latency is the first bucket's (answered within the read),
and its log entry is made from the message's record in the store when the
log is read.  The metrics and the submits log read it all at scrape or
query time.

Everything is bounded: the open requests (:data:`MAX_OPEN_REQUESTS`,
the oldest forgotten first, and those of a session when it closes) and the
submit log (the newest ``submits_bound``, trimmed every
:data:`TRIM_INTERVAL` seconds, and when the tally's own records take it an
eighth over: at most one interval's accepted submits more in between, a
pointer each).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from smsc_sim.api.histogram import LATENCY_BUCKETS, Histogram
from smsc_sim.contracts import Event, ISession
from smsc_sim.smpp.constants import BIND_TYPES, RESPONSE_BIT, CommandStatus

if TYPE_CHECKING:
    from smsc_sim.core.record import MessageRecord
    from smsc_sim.events import EventBus
    from smsc_sim.simulator import Simulator
    from smsc_sim.smpp.pdu import PDU

#: most unanswered requests remembered per session and direction (bounded: a silent peer cannot grow it)
MAX_OPEN_REQUESTS = 10_000
#: most submits remembered (the store's own bound, ``core.store_max_messages``, when smaller)
MAX_SUBMITS = 100_000
#: seconds between two trims of the submit log to its bound (the sessions append to it without a check)
TRIM_INTERVAL = 1.0
#: command_id -> name of the requests the submits log keeps
SUBMIT_COMMANDS = {0x00000004: "submit_sm", 0x00000103: "data_sm", 0x00000021: "submit_multi"}
_SUBMIT_MULTI = 0x00000021
_SUBMIT_SM = 0x00000004
_SUBMIT_SM_RESP = 0x80000004
_DELIVER_SM = 0x00000005
_DELIVER_SM_RESP = 0x80000005
# the count keys of a submit_sm, a deliver_sm and their answers with status 0, made once (a shifted int
# is a new object)
_SUBMIT_SM_KEY = _SUBMIT_SM << 32
_SUBMIT_SM_RESP_KEY = _SUBMIT_SM_RESP << 32
_DELIVER_SM_KEY = _DELIVER_SM << 32
_DELIVER_SM_RESP_KEY = _DELIVER_SM_RESP << 32
_FIRST_BUCKET = LATENCY_BUCKETS[0]
GENERIC_NACK = 0x80000000
_THROTTLED = int(CommandStatus.ESME_RTHROTTLED)
#: what answers a submit: a submit's response, or generic_nack
_SUBMIT_ANSWERS = frozenset({command | RESPONSE_BIT for command in SUBMIT_COMMANDS} | {GENERIC_NACK})

# the fields of a submit record: the first nine from the request, four more once it is answered
TIME, COMMAND, NUMBER, INSTANCE, SESSION, SEQUENCE, ACCOUNT, SOURCE, DESTINATION = range(9)
STATUS, MESSAGE_ID, ANSWERED_AT, NACKED = range(9, 13)
#: a submit record: see the field indexes above (raw values; text is made when the log is read)
SubmitRecord = Tuple[Any, ...]
#: the store's record of a message id, or None (the store let it go): where an accepted submit's record comes from
MessageFinder = Callable[[str], Optional["MessageRecord"]]


def _destinations(params: dict[str, Any]) -> list[str]:
    """The destination addresses of a submit_multi's parameters, as text."""
    listed = params.get("dest_address") or ()
    addresses = []
    for item in listed if isinstance(listed, (list, tuple)) else ():
        value = item.get("destination_addr") if isinstance(item, dict) else getattr(item, "destination_addr", None)
        if value is None and isinstance(item, dict):
            value = item.get("dl_name")
        if value is not None:
            addresses.append(text_of(value))
    return addresses


def text_of(value: Any) -> str:
    """An address or id as text (the codec gives bytes or text)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class _SessionTally:
    """What the tally holds for one open session (dropped when it closes, its counts kept)."""

    __slots__ = ("session", "counts_in", "counts_out", "accepted_before", "delivered", "acked", "inbound",
                 "outbound", "binding")  # fmt: skip

    def __init__(self, session: ISession, sunk: bool) -> None:
        self.session = session
        # command_id << 32 | command_status -> PDUs (an int key: a tuple per PDU cost more)
        self.counts_in: dict[int, int] = {}
        self.counts_out: dict[int, int] = {}
        # with the tally's accepted-submit sink (``sunk``), the session's accepted_at_once when the tally first
        # heard of it: the submit_sm accepted at once since (status 0, answered at once by submit_sm_resp with
        # status 0) are one more in each of counts_in and counts_out, added in when the counts are read (see
        # accepted_of).  None without the sink: the tally hears of those submits itself
        self.accepted_before = session.accepted_at_once if sunk else None
        # deliver_sm written with status 0, and deliver_sm_resp read with status 0 (a receipt and its
        # usual answer): one more in counts_out and counts_in, as ``accepted``
        self.delivered = 0
        self.acked = 0
        # sequence_number -> the open request read from the ESME (a submit record, or (time, command_id))
        # and written to it: (time, command_id), or for a deliver_sm its time alone (a float: no tuple per
        # receipt for the collector to track)
        self.inbound: dict[int, tuple[Any, ...]] = {}
        self.outbound: dict[int, tuple[float, int] | float] = {}
        # sequence_number -> system_id of a bind awaiting its response
        self.binding: dict[int, str] = {}


class PduTally:
    """
    The PDU counts, latencies and submit records of one simulator's sessions.

    :param events: the bus whose sessions call it (it taps the bus, and
        follows ``session_closed`` to fold a closed session's counts in).
    :param clock: what "now" is when a PDU is written.
    :param submits_bound: most submit records kept.
    :param messages: the store's record of a message id; when given, a submit_sm accepted at once reaches the
        tally as its message_id alone (from the sessions, see :meth:`smsc_sim.events.EventBus.tap`), its
        record made from the store's when the log is read.  Without it, every submit is told to the tally.
    """

    def __init__(
        self, events: EventBus, clock: IReactorTime, submits_bound: int, messages: MessageFinder | None = None
    ) -> None:
        self._seconds: Callable[[], float] = clock.seconds
        # command_id of the request -> latency of the SMSC's answers (but those of the submits accepted at once:
        # see the latency property)
        self._latency: dict[int, Histogram] = {}
        #: command_id of the request -> latency of the ESME's answers
        self.esme_latency: dict[int, Histogram] = {}
        # latency[submit_sm] and esme_latency[deliver_sm], once there is one (found without a lookup each)
        self._submit_latency: Histogram | None = None
        self._deliver_latency: Histogram | None = None
        #: (instance, system_id of the bind, bind command_id, status) -> bind responses written
        self.bind_answers: dict[tuple[str, str, int, int], int] = {}
        #: (instance, account) -> submits answered ESME_RTHROTTLED
        self.throttled: dict[tuple[str, str], int] = {}
        #: most submit records kept
        self.submits_bound = max(1, submits_bound)
        # the newest submits, oldest first: a record, or for a submit_sm accepted at once its message_id (which
        # the sessions append).  The one numbered n is at n - _dropped - 1: the list is only ever appended to,
        # cleared, or cut at its front
        self._log: list[SubmitRecord | str | bytes] = []
        # submits cut from the log's front so far (or cleared)
        self._dropped = 0
        # a record kept by the tally itself beyond this trims the log at once (the sessions' appends wait for
        # the timer): an eighth over the bound, so that a flood of refused submits holds little more than the
        # bound, and each trim (a move of the whole list) comes once per eighth of the bound
        self._trim_at = self.submits_bound + max(1024, self.submits_bound // 8)
        self._messages = messages
        # whether the sessions hand the tally an accepted submit as its message_id alone (the store then holds
        # the rest), counting it themselves
        self._sunk = messages is not None
        # session_id -> what is held for each open session
        self._sessions: dict[int, _SessionTally] = {}
        # the session of the last PDU: one read brings many PDUs of one session, so one lookup serves them
        self._last: _SessionTally | None = None
        # (direction, instance, command_id << 32 | status) -> PDUs of the sessions closed so far
        self._closed_counts: dict[tuple[str, str, int], int] = {}
        # submit_sm accepted at once by the sessions closed so far (their latencies: the first bucket)
        self._closed_accepted = 0
        self._untap = events.tap(self, accepted=self._log.append if self._sunk else None)
        self._unsubscribe = events.subscribe(self._closed, kinds=("session_closed",))
        self._trimmer = LoopingCall(self._trim)
        self._trimmer.clock = clock
        self._trimmer.start(TRIM_INTERVAL, now=False)

    def close(self) -> None:
        """Stop counting (what was counted stays readable)."""
        self._untap()
        self._unsubscribe()
        if self._trimmer.running:
            self._trimmer.stop()

    @property
    def latency(self) -> dict[int, Histogram]:
        """command_id of the request -> latency of the SMSC's answers (copies where the tally adds in)."""
        accepted = self._closed_accepted + sum(accepted_of(state) for state in list(self._sessions.values()))
        merged = dict(self._latency)
        if accepted:  # answered within the read that brought them: the first bucket
            merged[_SUBMIT_SM] = merged.get(_SUBMIT_SM, Histogram()).with_first(accepted)
        return merged

    def counts(self) -> dict[tuple[str, str, int, int], int]:
        """``(direction, instance, command_id, command_status) -> PDUs`` read (``in``) and written (``out``)."""
        totals: dict[tuple[str, str, int], int] = dict(self._closed_counts)
        for state in list(self._sessions.values()):
            instance = state.session.instance_name
            for direction, counts in _directions(state):
                for packed, n in counts.items():
                    key = (direction, instance, packed)
                    totals[key] = totals.get(key, 0) + n
        return {(d, i, packed >> 32, packed & 0xFFFFFFFF): n for (d, i, packed), n in totals.items()}

    @property
    def held(self) -> int:
        """Submit log entries held now: at most ``submits_bound``, plus what came since the last trim."""
        return len(self._log)

    def submits(self) -> list[SubmitRecord]:
        """The submit records kept, oldest first."""
        self._trim()
        first = self._dropped + 1
        return [
            entry if isinstance(entry, tuple) else self._accepted_record(entry, first + i)
            for i, entry in enumerate(self._log)
        ]

    def _accepted_record(self, message_id: str | bytes, number: int) -> SubmitRecord:
        """
        The record of a submit_sm accepted at once, made from the store's record of its message: answered
        when it was accepted. Once the store has let the message go (its final TTL passed), the record keeps
        what the tally has: its number, status and message_id.
        """
        message_id = text_of(message_id)
        found = self._messages(message_id) if self._messages is not None else None
        if found is None:
            return (None, _SUBMIT_SM, number, None, None, None, None, "", [], 0, message_id, None, False)
        return (found.submit_time, _SUBMIT_SM, number, found.instance, found.session_id, found.sequence_number,
                found.account, found.source_addr, found.destination_addr, 0, message_id, found.submit_time,
                False)  # fmt: skip

    def clear_submits(self) -> None:
        """Forget every submit record (an answer still due is not recorded)."""
        self._dropped += len(self._log)
        self._log.clear()  # in place: the sessions append to this list

    def _trim(self) -> None:
        """Cut the log to its newest ``submits_bound`` entries."""
        log = self._log
        excess = len(log) - self.submits_bound
        if excess > 0:
            del log[:excess]
            self._dropped += excess

    def _esme_histogram(self, request: int) -> Histogram:
        """The histogram of the ESME's answers to ``request`` (made at its first latency)."""
        histogram = self.esme_latency.get(request)
        if histogram is None:
            histogram = self.esme_latency[request] = Histogram()
        return histogram

    def _state(self, session: ISession) -> _SessionTally:
        state = self._sessions.get(session.session_id)
        if state is None or state.session is not session:
            state = self._sessions[session.session_id] = _SessionTally(session, self._sunk)
        self._last = state
        return state

    # -- the tap: once per PDU, kept to lookups ---------------------------------------

    def pdu_in(self, session: ISession, pdu: PDU, now: float) -> None:
        """Count a PDU read; open a request, or close one of ours with its latency."""
        state = self._last
        if state is None or state.session is not session:
            state = self._state(session)
        command_id = pdu.command_id
        if command_id == _DELIVER_SM_RESP and not pdu.command_status:
            # a receipt's usual answer: an int for its count, and its deliver_sm's time for the latency
            state.acked += 1
            started = state.outbound.pop(pdu.sequence_number, None)
            if started.__class__ is float:
                histogram = self._deliver_latency
                if histogram is None:
                    histogram = self._deliver_latency = self._esme_histogram(_DELIVER_SM)
                # Histogram.observe, inline; an ESME answering within the first bucket (the usual case)
                # needs no search
                elapsed = now - started if now > started else 0.0
                if elapsed <= _FIRST_BUCKET:
                    histogram.counts[0] += 1
                else:
                    histogram.counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
                histogram.total += elapsed
                return
        else:
            packed = command_id << 32 | pdu.command_status
            counts = state.counts_in
            counts[packed] = counts.get(packed, 0) + 1
            started = state.outbound.pop(pdu.sequence_number, None) if command_id & RESPONSE_BIT else None
        sequence = pdu.sequence_number
        if command_id & RESPONSE_BIT:
            if started is not None:
                if started.__class__ is tuple:
                    at, request = started
                else:  # a deliver_sm's time alone
                    at, request = started, _DELIVER_SM  # type: ignore[assignment]
                self._esme_histogram(request).observe(now - at if now > at else 0.0)
            return
        inbound = state.inbound
        if len(inbound) >= MAX_OPEN_REQUESTS:
            del inbound[next(iter(inbound))]  # never answered: forget the oldest
        if command_id in SUBMIT_COMMANDS:
            params = pdu.params
            destination = params.get("destination_addr")
            record = (now, command_id, self._dropped + len(self._log) + 1, session.instance_name,
                      session.session_id, sequence, session.system_id, params.get("source_addr", ""),
                      _destinations(params) if command_id == _SUBMIT_MULTI or destination is None else destination)
            self._keep(record)
            inbound[sequence] = record
            return
        inbound[sequence] = (now, command_id)
        if command_id in BIND_TYPES:
            state.binding[sequence] = text_of(pdu.params.get("system_id", ""))

    def pdu_out(self, session: ISession, pdu: PDU) -> None:
        """Count a PDU written; answer an open request (its latency, a submit's status), or open one of ours."""
        state = self._last
        if state is None or state.session is not session:
            state = self._state(session)
        command_id = pdu.command_id
        status = pdu.command_status
        if command_id == _DELIVER_SM and not status:
            # a receipt (or MO message), what the SMSC writes most after submit answers: an int for its
            # count and its time alone for its answer's latency
            state.delivered += 1
            outbound = state.outbound
            if len(outbound) >= MAX_OPEN_REQUESTS:
                del outbound[next(iter(outbound))]
            outbound[pdu.sequence_number] = self._seconds()
            return
        packed = command_id << 32 | status
        counts = state.counts_out
        counts[packed] = counts.get(packed, 0) + 1
        if not command_id & RESPONSE_BIT:
            outbound = state.outbound
            if len(outbound) >= MAX_OPEN_REQUESTS:
                del outbound[next(iter(outbound))]
            outbound[pdu.sequence_number] = (self._seconds(), command_id)
            return
        started = state.inbound.pop(pdu.sequence_number, None)
        if started is None:
            return
        now = self._seconds()
        request = started[COMMAND]
        histogram = self._latency.get(request)
        if histogram is None:
            histogram = self._latency[request] = Histogram()
        elapsed = now - started[TIME]
        if elapsed < 0.0:
            elapsed = 0.0
        # Histogram.observe, inline: this runs for every answer
        histogram.counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        histogram.total += elapsed
        if request in SUBMIT_COMMANDS:
            if command_id not in _SUBMIT_ANSWERS:
                return  # an odd answer to a submit: not the submit's status
            log = self._log
            slot = started[NUMBER] - self._dropped - 1
            if 0 <= slot < len(log) and log[slot] is started:  # else forgotten already (trimmed, or cleared)
                log[slot] = started + (status, pdu.params.get("message_id"), now, command_id == GENERIC_NACK)
            if status == _THROTTLED:
                account = (session.instance_name, session.system_id or "")
                self.throttled[account] = self.throttled.get(account, 0) + 1
        elif request in BIND_TYPES and command_id == request | RESPONSE_BIT:
            bind = (session.instance_name, state.binding.pop(pdu.sequence_number, ""), request, status)
            self.bind_answers[bind] = self.bind_answers.get(bind, 0) + 1

    def submit_answered(self, session: ISession, request: PDU, answer: PDU, read_at: float) -> None:
        """
        :meth:`pdu_in` of a submit_sm, then :meth:`pdu_out` of its answer, in one call.  A submit refused
        at once (throttled, an error scenario: what a flood of refusals brings) costs one record and no open
        request.  One accepted at once comes here only from a bus without the tally's sink (the sessions
        otherwise hand over its message_id alone).
        """
        sequence = request.sequence_number
        status = answer.command_status
        if (
            not status
            or request.command_status
            or answer.command_id != _SUBMIT_SM_RESP
            or answer.sequence_number != sequence
        ):
            self.pdu_in(session, request, read_at)  # the other shapes: the general path
            self.pdu_out(session, answer)
            return
        state = self._last
        if state is None or state.session is not session:
            state = self._state(session)
        counts = state.counts_in
        counts[_SUBMIT_SM_KEY] = counts.get(_SUBMIT_SM_KEY, 0) + 1
        counts = state.counts_out
        packed = _SUBMIT_SM_RESP_KEY | status
        counts[packed] = counts.get(packed, 0) + 1
        now = self._seconds()
        histogram = self._submit_latency
        if histogram is None:
            histogram = self._latency.get(_SUBMIT_SM)
            if histogram is None:
                histogram = self._latency[_SUBMIT_SM] = Histogram()
            self._submit_latency = histogram
        elapsed = now - read_at
        if elapsed <= _FIRST_BUCKET:  # answered at once: the first bucket, no search
            histogram.counts[0] += 1
            if elapsed < 0.0:
                elapsed = 0.0
        else:
            histogram.counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        histogram.total += elapsed
        params = request.params
        destination = params.get("destination_addr")
        record = (read_at, _SUBMIT_SM, self._dropped + len(self._log) + 1, session.instance_name,
                  session.session_id, sequence, session.system_id, params.get("source_addr", ""),
                  _destinations(params) if destination is None else destination,
                  status, answer.params.get("message_id"), now, False)  # fmt: skip
        self._keep(record)
        if status == _THROTTLED:
            account = (session.instance_name, session.system_id or "")
            self.throttled[account] = self.throttled.get(account, 0) + 1

    def _keep(self, record: SubmitRecord) -> None:
        """Append a record to the log (numbered ``_dropped + len(_log) + 1`` by its maker), trimming it if due."""
        log = self._log
        log.append(record)
        if len(log) > self._trim_at:
            self._trim()

    # -- sessions ---------------------------------------------------------------------

    def _closed(self, event: Event) -> None:
        """A closed session's open requests will never be answered: keep its counts, forget the rest."""
        state = self._sessions.pop(event.data.get("session_id"), None)  # type: ignore[arg-type]
        if state is None:
            return
        if self._last is state:
            self._last = None
        instance = state.session.instance_name
        self._closed_accepted += accepted_of(state)
        closed = self._closed_counts
        for direction, counts in _directions(state):
            for packed, n in counts.items():
                key = (direction, instance, packed)
                closed[key] = closed.get(key, 0) + n


def accepted_of(state: _SessionTally) -> int:
    """The submit_sm a session accepted at once since the tally first heard of it (told to its sink alone)."""
    before = state.accepted_before
    return 0 if before is None else state.session.accepted_at_once - before


def _directions(state: _SessionTally) -> tuple[tuple[str, dict[int, int]], tuple[str, dict[int, int]]]:
    """A session's counts read and written (copies, its accepted submits and its receipts added in)."""
    counts_in, counts_out = dict(state.counts_in), dict(state.counts_out)
    accepted = accepted_of(state)
    if accepted:
        counts_in[_SUBMIT_SM_KEY] = counts_in.get(_SUBMIT_SM_KEY, 0) + accepted
        counts_out[_SUBMIT_SM_RESP_KEY] = counts_out.get(_SUBMIT_SM_RESP_KEY, 0) + accepted
    if state.delivered:
        counts_out[_DELIVER_SM_KEY] = counts_out.get(_DELIVER_SM_KEY, 0) + state.delivered
    if state.acked:
        counts_in[_DELIVER_SM_RESP_KEY] = counts_in.get(_DELIVER_SM_RESP_KEY, 0) + state.acked
    return ("in", counts_in), ("out", counts_out)


def message_finder(simulator: Simulator) -> MessageFinder:
    """The store's record of a message the simulator accepted, by its id (ids are unique in the process)."""
    cores = simulator.cores

    def find(message_id: str) -> MessageRecord | None:
        for core in cores.values():
            found = core.message(message_id)
            if found is not None:
                return found
        return None

    return find


def tally_of(simulator: Simulator, bound: int | None = None) -> PduTally:
    """
    A new PDU tally of the simulator's sessions, keeping ``bound`` submits, or by default as many as the store
    keeps messages at most.
    """
    if bound is None:
        bound = min(MAX_SUBMITS, max(1, int(simulator.config.core.store_max_messages)))
    return PduTally(simulator.events, simulator.clock, bound, message_finder(simulator))
