"""
The checks on one session's PDUs: sequence numbers, the inbound window,
answers to the SMSC's requests (enquire_link, deliver_sm), keepalives and
the way the session ends.
"""

from __future__ import annotations

from smsc_sim.conformance.findings import Check, Evidence
from smsc_sim.conformance.tracks import (
    MAX_OUTSTANDING,
    Context,
    Inbound,
    Outbound,
    SessionTrack,
    evidence_of,
    remember,
)
from smsc_sim.modes import DROPPING_MODES, InstanceMode
from smsc_sim.smpp.constants import CommandId, CommandStatus
from smsc_sim.smpp.pdu import PDU

_new_tuple = tuple.__new__
_ENQUIRE_LINK = int(CommandId.enquire_link)
_UNBIND = int(CommandId.unbind)
_DELIVERIES = frozenset({int(CommandId.deliver_sm), int(CommandId.data_sm)})
_GENERIC_NACK = int(CommandId.generic_nack)
_RINVCMDLEN = int(CommandStatus.ESME_RINVCMDLEN)
#: SMPP 3.4 section 3.2: sequence numbers run from 1 to 0x7FFFFFFF
_MAX_SEQUENCE = 0x7FFFFFFF
#: outage modes in which an instance neither answers nor lets an ESME behave normally
DOWN_MODES = DROPPING_MODES | {InstanceMode.REJECT_BINDS}


class SessionChecks:
    """Session-level checks; the judge calls one method per PDU and one at the end."""

    def __init__(self, context: Context, modes: dict[str, str]) -> None:
        self._context = context
        #: instance -> outage mode ("up" when absent)
        self._modes = modes

    def _record(
        self, check: Check, track: SessionTrack, time: float, evidence: tuple[Evidence, ...], detail: str
    ) -> None:
        self._context.book.record(check, track.account, track.session_id, track.instance, time, evidence, detail)

    def _in_outage(self, track: SessionTrack) -> bool:
        return self._modes.get(track.instance, "up") in DOWN_MODES

    # -- from the ESME -------------------------------------------------------------

    def due(self, track: SessionTrack, now: float) -> bool:
        """
        Whether :meth:`sweep` would find anything at ``now``: the oldest
        request of the SMSC still unanswered is past the response timeout,
        or the idle period is over.  The judge sweeps only then, so a busy
        session skips the sweep, also while receipts are outstanding (the
        usual state of a session that asks for them).
        """
        outbound = track.outbound
        if outbound:
            timeout = self._context.thresholds.response_timeout
            if 0 < timeout <= now - next(iter(outbound.values())).time:
                return True
        if not track.bound or track.idle_reported:
            return False
        return 0 < self._context.thresholds.keepalive_idle < now - track.last_request

    def request_in(self, track: SessionTrack, pdu: PDU, time: float, message_key: int | None = None) -> Inbound:
        """
        A request from the ESME: sequence number, window, keepalive; it is remembered until answered.

        The caller has swept the session's deadlines due by ``time`` first
        (see :meth:`due`), the idle period among them.

        :param message_key: what identifies the message of a submit (for resubmission), else None.
        """
        sequence = pdu.sequence_number
        outstanding = track.inbound
        earlier = outstanding.get(sequence)
        if not 1 <= sequence <= _MAX_SEQUENCE:
            self._record(
                Check.sequence_reuse,
                track,
                time,
                (evidence_of(pdu, time),),
                f"{pdu.name} with sequence_number {sequence}, outside 1..0x7FFFFFFF (SMPP 3.4 section 3.2)",
            )
        elif earlier is not None:
            self._record(
                Check.sequence_reuse,
                track,
                time,
                (Evidence(earlier.command, sequence, 0, earlier.time), evidence_of(pdu, time)),
                f"{pdu.name} reuses sequence_number {sequence} of a {earlier.command} still unanswered",
            )
        command_id = pdu.command_id
        if track.bound:
            track.last_request = time
            track.idle_reported = False
            if command_id == _ENQUIRE_LINK:
                self._enquire_link(track, pdu, time)
        window = self._context.landscape.inbound_window
        over = 0 < window <= len(outstanding)  # 0: the session has no window
        # tuple.__new__ builds the named tuple without its Python-level __new__: half the cost, once per request
        inbound = _new_tuple(Inbound, (command_id, time, over, message_key))
        if earlier is None:
            outstanding[sequence] = inbound
            if len(outstanding) > MAX_OUTSTANDING:
                remember(outstanding, sequence, inbound)  # forgets the oldest
        return inbound

    def _enquire_link(self, track: SessionTrack, pdu: PDU, time: float) -> None:
        interval = self._context.thresholds.keepalive_min_interval
        last = track.last_enquire_link
        track.last_enquire_link = time
        if last is not None and interval > 0 and time - last < interval:
            self._record(
                Check.keepalive_too_frequent,
                track,
                time,
                (Evidence("enquire_link", None, 0, last), evidence_of(pdu, time)),
                f"enquire_link {time - last:.3g} s after the previous one (at most one per {interval:g} s)",
            )

    def response_in(self, track: SessionTrack, pdu: PDU, time: float) -> None:
        """The ESME answered a request of the SMSC: how fast, and with which status."""
        request = track.outbound.pop(pdu.sequence_number, None)
        if request is None:
            return  # unknown, or already judged unanswered
        if request.command_id in _DELIVERIES:
            self._delivery_answered(track, request, pdu, time)

    def _delivery_answered(self, track: SessionTrack, request: Outbound, pdu: PDU, time: float) -> None:
        thresholds = self._context.thresholds
        waited = time - request.time
        if 0 < thresholds.response_timeout <= waited:
            self._unanswered(track, request, request.time + thresholds.response_timeout)
            return
        if 0 < thresholds.deliver_sm_slow < waited:
            self._record(
                Check.deliver_sm_slow,
                track,
                time,
                (_sent(request), evidence_of(pdu, time)),
                f"{request.command} answered after {waited:.3g} s (threshold {thresholds.deliver_sm_slow:g} s)",
            )
        if pdu.command_status != 0:
            self._record(
                Check.deliver_sm_refused,
                track,
                time,
                (_sent(request), evidence_of(pdu, time)),
                f"{request.command} answered with {pdu.name} status 0x{pdu.command_status:08X}; the provider retries",
            )

    # -- from the SMSC -------------------------------------------------------------

    def request_out(self, track: SessionTrack, pdu: PDU, time: float) -> None:
        """The SMSC sent a request; it must be answered within the response timeout."""
        command_id = pdu.command_id
        if command_id == _UNBIND:
            track.smsc_closing = True
        sequence = pdu.sequence_number
        # built as in request_in (tuple.__new__: half the cost), once per receipt sent
        outbound = _new_tuple(Outbound, (pdu.name, command_id, sequence, time))
        table = track.outbound
        table[sequence] = outbound
        if len(table) > MAX_OUTSTANDING:
            remember(table, sequence, outbound)  # forgets the oldest

    def response_out(self, track: SessionTrack, pdu: PDU, time: float) -> Inbound | None:
        """
        The SMSC answered a request of the ESME.

        :returns: what the judge remembered of the request, ``None`` when unknown.
        """
        if pdu.command_id == _GENERIC_NACK and pdu.command_status == _RINVCMDLEN:
            track.smsc_closing = True  # a bad command_length: the SMSC closes the connection
        request = track.inbound.pop(pdu.sequence_number, None)
        if request is None:
            return None
        landscape = self._context.landscape
        if request.over_window and pdu.command_status == landscape.window_status:
            self._record(
                Check.window_overrun,
                track,
                time,
                (Evidence(request.command, pdu.sequence_number, 0, request.time), evidence_of(pdu, time)),
                f"{request.command} sent with {landscape.inbound_window} requests already unanswered "
                f"(the window), refused with 0x{pdu.command_status:08X}",
            )
        return request

    # -- deadlines -------------------------------------------------------------------

    def sweep(self, track: SessionTrack, now: float) -> None:
        """Judge what is overdue at ``now``: unanswered requests of the SMSC, an idle ESME."""
        timeout = self._context.thresholds.response_timeout
        if timeout > 0:
            while track.outbound:
                sequence, request = next(iter(track.outbound.items()))
                if now - request.time < timeout:
                    break
                del track.outbound[sequence]
                # dated at its deadline, so a finding does not depend on when the findings are read
                self._unanswered(track, request, request.time + timeout)
        if track.bound:
            self._idle_check(track, now)

    def _unanswered(self, track: SessionTrack, request: Outbound, deadline: float) -> None:
        track.smsc_closing = track.smsc_closing or request.command_id == _ENQUIRE_LINK
        sent = Evidence(request.command, request.sequence_number, 0, request.time)
        timeout = self._context.thresholds.response_timeout
        if request.command_id == _ENQUIRE_LINK:
            check = Check.enquire_link_unanswered
        elif request.command_id in _DELIVERIES:
            check = Check.deliver_sm_unanswered
        else:
            return  # an unbind left unanswered: the SMSC closes anyway
        self._record(check, track, deadline, (sent,), f"{request.command} not answered within {timeout:g} s")

    def _idle_check(self, track: SessionTrack, now: float) -> None:
        idle = self._context.thresholds.keepalive_idle
        if idle <= 0 or track.idle_reported or self._in_outage(track):
            return
        if now - track.last_request > idle:
            track.idle_reported = True
            self._record(
                Check.no_keepalive,
                track,
                track.last_request + idle,
                (Evidence("idle", None, None, track.last_request),),
                f"no request from the ESME, not even enquire_link, for more than {idle:g} s",
            )

    def closed(self, track: SessionTrack, time: float, clean: bool) -> None:
        """The connection ended: overdue answers, and whether the ESME left without unbind."""
        self.sweep(track, time)
        if not track.bound or clean or track.unbound or track.smsc_closing or self._in_outage(track):
            return
        self._record(
            Check.no_unbind,
            track,
            time,
            (Evidence("session_closed", None, None, time),),
            "the ESME closed the connection while bound, without unbind (SMPP 3.4 section 2.3)",
        )


def _sent(request: Outbound) -> Evidence:
    """The evidence of a request the SMSC sent (made only for a finding: most deliveries have none)."""
    return Evidence(request.command, request.sequence_number, 0, request.time)
