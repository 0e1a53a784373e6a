"""
The checks on an account's submit rate under throttling: does it back off
after ESME_RTHROTTLED, and does it resubmit what was refused?
"""

from __future__ import annotations

from smsc_sim.conformance.findings import Check
from smsc_sim.conformance.tracks import (
    MAX_REFUSED,
    AccountTrack,
    Context,
    Inbound,
    Refused,
    SessionTrack,
    evidence_of,
)
from smsc_sim.smpp.constants import CommandId, CommandStatus, Tag
from smsc_sim.smpp.pdu import PDU

_RTHROTTLED = int(CommandStatus.ESME_RTHROTTLED)
_RMSGQFUL = int(CommandStatus.ESME_RMSGQFUL)
#: statuses with which the provider asks the ESME to submit again later (KB 204015703)
RESUBMIT_STATUSES = frozenset({_RTHROTTLED, _RMSGQFUL})
#: requests that submit a message
SUBMITS = frozenset({int(CommandId.submit_sm), int(CommandId.submit_multi), int(CommandId.data_sm)})
_PAYLOAD = int(Tag.message_payload)


def message_key(pdu: PDU) -> int:
    """What identifies a message across a resubmission: its destination(s) and its octets."""
    params = pdu.params
    destination = params.get("destination_addr")
    if destination is None:
        destination = repr(params.get("dest_address", ()))
    tlvs = pdu.tlvs
    return hash((destination, params.get("short_message", b""), tlvs.get(_PAYLOAD, b"") if tlvs else b""))


class TrafficChecks:
    """Account-level checks on submits and ESME_RTHROTTLED."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def submitted(self, account: AccountTrack, track: SessionTrack, pdu: PDU, key: int, time: float) -> None:
        """A submit from the account: its rate against a throttle episode; a resubmission of a refused message."""
        if account.refused:
            account.refused.pop(key, None)
        throughput = self._context.landscape.throughput.get(account.account, 0.0)
        if throughput <= 0:
            return
        thresholds = self._context.thresholds
        limit = thresholds.throttle_factor * throughput
        times = account.submit_times
        times.append(time)
        while times and times[0] <= time - 1.0:
            times.popleft()
        while len(times) > int(limit) + 1:
            times.popleft()  # knowing that the limit is passed is enough
        start, last = account.throttle_start, account.throttle_last
        if start is None or last is None:
            return
        if time - last > max(thresholds.throttle_grace, 1.0):
            account.throttle_start = account.throttle_last = None  # it backed off: the episode is over
            return
        if time - start > thresholds.throttle_grace and len(times) > limit:
            self._context.book.record(
                Check.throttle_ignored,
                account.account,
                None,
                None,
                time,
                (evidence_of(pdu, time),),
                f"more than {limit:g} submits in one second ({thresholds.throttle_factor:g} x the account's "
                f"{throughput:g}/s) {time - start:.3g} s after the first ESME_RTHROTTLED",
            )

    def answered(self, account: AccountTrack, track: SessionTrack, request: Inbound, pdu: PDU, time: float) -> None:
        """
        The SMSC answered a submit: ESME_RTHROTTLED starts or continues an
        episode; a message refused with 0x58 or 0x14 awaits its resubmission.
        """
        status = pdu.command_status
        if status == _RTHROTTLED:
            if account.throttle_start is None:
                account.throttle_start = time
            account.throttle_last = time
        if status in RESUBMIT_STATUSES and request.message_key is not None:
            if self._context.thresholds.resubmit_window <= 0:
                return
            refused = account.refused
            refused.pop(request.message_key, None)
            refused[request.message_key] = Refused(evidence_of(pdu, time), track.session_id, track.instance)
            while len(refused) > MAX_REFUSED:
                refused.popitem(last=False)

    def sweep(self, account: AccountTrack, now: float) -> None:
        """Refused messages not submitted again within the window become findings."""
        window = self._context.thresholds.resubmit_window
        refused = account.refused
        while refused:
            key, item = next(iter(refused.items()))
            if window > 0 and now - item.evidence.time < window:
                break
            del refused[key]
            if window <= 0:
                continue
            self._context.book.record(
                Check.throttled_not_resubmitted,
                account.account,
                None,
                None,
                item.evidence.time + window,
                (item.evidence,),
                f"a message refused with 0x{item.evidence.status or 0:08X} was not submitted again within "
                f"{window:g} s (the provider asks ESMEs to resubmit)",
            )
