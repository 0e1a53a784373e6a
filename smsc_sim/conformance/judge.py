"""
The judge: an event-bus subscriber that watches what the ESME under test
does and records :class:`~smsc_sim.conformance.findings.Finding` values.

It only listens: it never changes what the simulator answers.  It keeps
per-session state (forgotten when the session closes) and per-account
state, every part of it bounded (see :mod:`smsc_sim.conformance.tracks`).
Deadlines (an unanswered deliver_sm, an idle session, a message never
resubmitted) are judged on the next event of their session or account and
whenever the findings are read; the failover deadline runs on a timer of
the injected clock, cancelled by :meth:`Judge.reset`.

>>> judge = Judge(clock, Landscape.from_config(config))
>>> unsubscribe = judge.subscribe(simulator.events)
>>> judge.summary()["verdict"]
'pass'
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from twisted.internet.interfaces import IReactorTime

from smsc_sim.conformance import report
from smsc_sim.conformance.binds import BindChecks
from smsc_sim.conformance.content import ContentChecks
from smsc_sim.conformance.findings import Evidence, Finding, FindingBook, Severity
from smsc_sim.conformance.landscape import Landscape
from smsc_sim.conformance.sessions import SessionChecks
from smsc_sim.conformance.thresholds import Thresholds
from smsc_sim.conformance.tracks import (
    MAX_ACCOUNTS,
    MAX_OUTSTANDING,
    MAX_SESSIONS,
    AccountTrack,
    Context,
    Inbound,
    SessionTrack,
)
from smsc_sim.conformance.traffic import SUBMITS, TrafficChecks, message_key
from smsc_sim.contracts import Event, ISession
from smsc_sim.events import PDU_KINDS, EventBus
from smsc_sim.smpp.constants import REGISTERED_DELIVERY_RECEIPT_MASK, RESPONSE_BIT, CommandId, CommandStatus
from smsc_sim.smpp.pdu import PDU


_GENERIC_NACK = int(CommandId.generic_nack)
_RINVCMDLEN = int(CommandStatus.ESME_RINVCMDLEN)
#: SMPP 3.4 section 3.2: sequence numbers run from 1 to 0x7FFFFFFF
_MAX_SEQUENCE = 0x7FFFFFFF


class Judge:
    """
    The conformance judge of one simulator.

    :param clock: the simulator's clock (failover deadlines, "now" for reports).
    :param landscape: the topology and limits no event carries.
    :param thresholds: the checks' thresholds (the defaults when omitted).
    """

    def __init__(self, clock: IReactorTime, landscape: Landscape, thresholds: Thresholds | None = None) -> None:
        thresholds = thresholds if thresholds is not None else Thresholds()
        self._seconds = clock.seconds
        self._context = Context(
            clock, FindingBook(thresholds.max_findings, thresholds.max_evidence), thresholds, landscape
        )
        #: instance -> outage mode, for the instances not "up"
        self._modes: dict[str, str] = {}
        self._sessions: dict[int, SessionTrack] = {}
        self._accounts: dict[str, AccountTrack] = {}
        self._session_checks = SessionChecks(self._context, self._modes)
        self._bind_checks = BindChecks(self._context, self._modes)
        self._traffic = TrafficChecks(self._context)
        self._content = ContentChecks(self._context)
        self._handlers: dict[str, Callable[[Mapping[str, Any], float], None]] = {
            "connection": self._connection,
            "bind": self._bind,
            "bind_refused": self._bind_refused,
            "unbind": self._unbind,
            "session_closed": self._session_closed,
            "pdu_in": self._pdu_in,
            "pdu_out": self._pdu_out,
            "outage": self._outage,
        }

    # -- wiring --------------------------------------------------------------------

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """
        Listen to the simulator's event bus; returns the function that stops listening.

        The judge hears PDUs as a tap (the sessions call it straight, no
        event built) and the other kinds it judges as events: an event
        per PDU, built and dispatched, cost more than the checks.
        """
        untap = bus.tap(self)
        # a bound method: calling an instance through __call__ costs more
        unsubscribe = bus.subscribe(self._take, kinds=tuple(kind for kind in self._handlers if kind not in PDU_KINDS))

        def stop() -> None:
            untap()
            unsubscribe()

        return stop

    # -- the tap: once per PDU (see smsc_sim.events.IPduTap), the time as an event would have had it ----

    def pdu_in(self, session: ISession, pdu: PDU, now: float) -> None:
        """A session read ``pdu``."""
        track = self._sessions.get(session.session_id)
        if track is not None:
            self._read(track, pdu, self._seconds())

    def pdu_out(self, session: ISession, pdu: PDU) -> None:
        """A session writes ``pdu``."""
        track = self._sessions.get(session.session_id)
        if track is not None:
            self._written(track, pdu, self._seconds())

    def submit_answered(self, session: ISession, request: PDU, answer: PDU, read_at: float) -> None:
        """
        A session read a submit and writes its answer now: what :meth:`pdu_in`
        then :meth:`pdu_out` would judge, without remembering the request in
        between, and the message's key made only when a check needs it.
        """
        track = self._sessions.get(session.session_id)
        if track is None:
            return
        time = self._seconds()
        inbound = track.inbound
        sequence = request.sequence_number
        window = self._context.landscape.inbound_window
        if (
            sequence in inbound
            or not 1 <= sequence <= _MAX_SEQUENCE
            or 0 < window <= len(inbound)
            or len(inbound) >= MAX_OUTSTANDING
            or request.command_id not in SUBMITS
            or answer.sequence_number != sequence
            or not answer.command_id & RESPONSE_BIT
        ):
            # a check of the request may find something, or the answer is not its own: PDU by PDU
            self._read(track, request, time)
            self._written(track, answer, time)
            return
        checks = self._session_checks
        if checks.due(track, time):
            checks.sweep(track, time)
        if track.bound:  # SessionChecks.request_in, for a request it finds nothing in
            track.last_request = time
            track.idle_reported = False
        status = answer.command_status
        account = self._accounts.get(track.account) if track.account is not None else None
        key = 0
        if account is not None:
            if account.refused:
                self._traffic.sweep(account, time)
            if account.refused or status:
                key = message_key(request)
            self._traffic.submitted(account, track, request, key, time)
            if request.params.get("registered_delivery", 0) & REGISTERED_DELIVERY_RECEIPT_MASK:
                self._bind_checks.submitted(account, track, request, time)
            self._content.submitted(account, track, request, time)
        if answer.command_id == _GENERIC_NACK and status == _RINVCMDLEN:
            track.smsc_closing = True  # SessionChecks.response_out: a bad command_length closes the connection
        if status and account is not None:
            self._traffic.answered(account, track, Inbound(request.command_id, time, False, key), answer, time)

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds in force."""
        return self._context.thresholds

    def set_thresholds(self, thresholds: Thresholds) -> None:
        """Judge with other thresholds from now on (a scenario's override); findings so far stay."""
        self._context.thresholds = thresholds
        self._context.book.max_findings = thresholds.max_findings
        self._context.book.max_evidence = thresholds.max_evidence

    @property
    def landscape(self) -> Landscape:
        """The landscape judged against now."""
        return self._context.landscape

    def set_landscape(self, landscape: Landscape) -> None:
        """Judge against another landscape from now on (a scenario changed the throughput or window)."""
        self._context.landscape = landscape

    def reset(self) -> None:
        """Forget every finding and all account state; open sessions are kept, their outstanding requests dropped."""
        for account in self._accounts.values():
            self._bind_checks.cancel(account)
        self._accounts.clear()
        self._context.book.clear()
        for track in self._sessions.values():
            track.inbound.clear()
            track.outbound.clear()
            track.idle_reported = False
            track.last_request = self._context.clock.seconds()
            track.last_enquire_link = None
            if track.bound and track.account is not None:
                # still bound: the account's binds are facts of now, not history
                again = self._account(track.account)
                if again is not None and track.bind_type is not None:
                    again.sessions[track.session_id] = (track.instance, track.bind_type)

    # -- reading -------------------------------------------------------------------

    def finish(self) -> None:
        """Judge every deadline due by now (called before any report)."""
        now = self._context.clock.seconds()
        for track in self._sessions.values():
            self._session_checks.sweep(track, now)
        for account in self._accounts.values():
            self._traffic.sweep(account, now)

    def findings(
        self,
        account: str | None = None,
        session_id: int | None = None,
        severity: Severity | str | None = None,
        since: float | None = None,
    ) -> list[Finding]:
        """The findings as of now, worst first, filtered (see :func:`smsc_sim.conformance.report.select`)."""
        self.finish()
        found = self._context.book.all()
        for track in self._accounts.values():
            found.extend(self._bind_checks.single_instance(track))
        found.sort(key=lambda f: (f.severity.rank, f.first_time, f.code))
        return report.select(found, account, session_id, severity, since)

    @property
    def dropped(self) -> int:
        """Occurrences of new findings not stored because ``max_findings`` was reached."""
        return self._context.book.dropped

    def sizes(self) -> dict[str, int]:
        """How much the judge holds: open sessions, accounts and distinct findings (all bounded)."""
        return {"sessions": len(self._sessions), "accounts": len(self._accounts), "findings": len(self._context.book)}

    def accounts(self) -> list[str]:
        """Every account the judge has seen since the last reset, and those of the landscape."""
        return sorted(set(self._accounts) | set(self._context.landscape.throughput))

    def summary(self, **filters: Any) -> dict[str, Any]:
        """The verdict and counts by code of the (filtered) findings."""
        return report.summary(self.findings(**filters), self.dropped)

    def junit(self, **filters: Any) -> str:
        """JUnit XML: one testcase per check per account, a failure per error finding."""
        return report.junit(self.findings(**filters), self.accounts())

    def markdown(self, **filters: Any) -> str:
        """A Markdown summary for humans (a CI job's summary page)."""
        return report.markdown(self.findings(**filters), self.dropped)

    # -- the subscriber -----------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Take one event from the bus."""
        self._take(event)

    def _take(self, event: Event) -> None:
        handler = self._handlers.get(event.kind)
        if handler is not None:
            handler(event.data, event.time)

    def _account(self, name: str) -> AccountTrack | None:
        account = self._accounts.get(name)
        if account is None:
            if len(self._accounts) >= MAX_ACCOUNTS:
                return None
            account = self._accounts[name] = AccountTrack(name)
        return account

    def _connection(self, data: Mapping[str, Any], time: float) -> None:
        if len(self._sessions) >= MAX_SESSIONS:
            return
        instance = str(data.get("instance", ""))
        session_id = int(data["session_id"])
        cluster = self._context.landscape.cluster_of(instance)
        self._sessions[session_id] = SessionTrack(session_id, instance, cluster, last_request=time)

    def _bind(self, data: Mapping[str, Any], time: float) -> None:
        track = self._sessions.get(int(data["session_id"]))
        account = self._account(str(data.get("system_id", "")))
        if track is None or account is None:
            return
        track.account = account.account
        track.bind_type = str(data.get("bind_type", ""))
        track.bound = True
        track.last_request = time
        command, sequence = _bind_request(track)
        evidence = Evidence(command or f"bind_{track.bind_type}", sequence, 0, time)
        self._bind_checks.attempt(account, time, evidence)
        self._bind_checks.bound(account, track, time, evidence)

    def _bind_refused(self, data: Mapping[str, Any], time: float) -> None:
        account = self._account(str(data.get("system_id", "")))
        if account is None:
            return
        status = int(data.get("status", 0))
        track = self._sessions.get(int(data.get("session_id", 0)))
        command, sequence = _bind_request(track) if track is not None else (None, None)
        evidence = Evidence(f"{command or 'bind'}_resp", sequence, status, time)
        self._bind_checks.attempt(account, time, evidence)
        self._bind_checks.refused(account, status, time, evidence)

    def _unbind(self, data: Mapping[str, Any], time: float) -> None:
        track = self._sessions.get(int(data["session_id"]))
        if track is None:
            return
        track.unbound = True
        self._session_checks.sweep(track, time)
        track.bound = False
        self._forget_bind(track)

    def _session_closed(self, data: Mapping[str, Any], time: float) -> None:
        track = self._sessions.pop(int(data["session_id"]), None)
        if track is None:
            return
        self._session_checks.closed(track, time, bool(data.get("clean", False)))
        self._forget_bind(track)

    def _forget_bind(self, track: SessionTrack) -> None:
        account = self._accounts.get(track.account) if track.account is not None else None
        if account is not None:
            self._bind_checks.ended(account, track)

    def _pdu_in(self, data: Mapping[str, Any], time: float) -> None:
        track = self._sessions.get(data["session_id"])
        if track is not None:
            self._read(track, data["pdu"], time)

    def _pdu_out(self, data: Mapping[str, Any], time: float) -> None:
        track = self._sessions.get(data["session_id"])
        if track is not None:
            self._written(track, data["pdu"], time)

    def _read(self, track: SessionTrack, pdu: PDU, time: float) -> None:
        # once per PDU of every session: the common case (a submit on a busy, well-behaved
        # session) is kept to lookups, and each check's work is skipped where it cannot find anything
        checks = self._session_checks
        if checks.due(track, time):
            checks.sweep(track, time)
        command_id = pdu.command_id
        if command_id & RESPONSE_BIT:
            checks.response_in(track, pdu, time)
            return
        submit = command_id in SUBMITS
        key = message_key(pdu) if submit else None
        checks.request_in(track, pdu, time, key)
        if not submit or track.account is None:
            return
        account = self._accounts.get(track.account)
        if account is None:
            return
        if account.refused:
            self._traffic.sweep(account, time)
        self._traffic.submitted(account, track, pdu, key or 0, time)
        if pdu.params.get("registered_delivery", 0) & REGISTERED_DELIVERY_RECEIPT_MASK:
            self._bind_checks.submitted(account, track, pdu, time)  # only a receipt needs a receiving bind
        self._content.submitted(account, track, pdu, time)

    def _written(self, track: SessionTrack, pdu: PDU, time: float) -> None:
        if not pdu.command_id & RESPONSE_BIT:
            self._session_checks.request_out(track, pdu, time)
            return
        request = self._session_checks.response_out(track, pdu, time)
        if request is None or request.message_key is None or track.account is None or not pdu.command_status:
            return  # the traffic checks act on a refused submit only
        account = self._accounts.get(track.account)
        if account is not None:
            self._traffic.answered(account, track, request, pdu, time)

    def _outage(self, data: Mapping[str, Any], time: float) -> None:
        instance = str(data.get("instance", ""))
        mode = str(data.get("mode", "up"))
        if mode == "up":
            self._modes.pop(instance, None)
        else:
            self._modes[instance] = mode
        for account in self._accounts.values():
            self._bind_checks.outage(account, instance, mode, time)


def _bind_request(track: SessionTrack) -> tuple[str | None, int | None]:
    """The command and sequence_number of the bind being answered (the core publishes before the bind_resp)."""
    for sequence, request in reversed(track.inbound.items()):
        if request.command.startswith("bind_"):
            return request.command, sequence
    return None, None
