"""
Handsets the scenario made unavailable, and alert_notification (SMPP 3.4 section 4.12).

A scenario rule with ``absent: {hold: ...}`` holds the messages it matches:
the handset is unavailable for ``hold`` seconds after the submit, and the
scenario engine has already pushed the message's receipts that much later.
This module keeps the held messages and, when a handset becomes available
(its hold runs out, or ``POST /api/v1/handsets/{address}/available``), sends
alert_notification to the ESME for every message whose submit asked for it
with ``set_dpf`` = 1 (section 5.3.2.29):

- ``source_addr`` (with TON/NPI): the handset, the destination of the submit;
- ``esme_addr`` (with TON/NPI): the ESME address, the source of the submit;
- TLV ``ms_availability_status`` (0x0422) = 0, available.

It goes to a session of the account that can receive, in the message's
cluster (the submitting session first, if it still can); alert_notification
has no response, so nothing waits for one.  With no such session bound, the
alert is not sent and that is logged and published (``alert`` event,
``outcome: no-receiver``): SMPP 3.4 keeps no queue of alerts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import ReceiptPlan
from smsc_sim.events import EventBus
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu

if TYPE_CHECKING:
    from smsc_sim.core.smsc import SMSCCore

__all__ = ["HandsetAvailability", "HeldMessage", "MAX_HELD", "alert_notification"]

#: most messages held at once; beyond it the oldest hold is dropped (its receipts still come)
MAX_HELD = 100_000
#: ms_availability_status 0x0422
_MS_AVAILABILITY_STATUS = 0x0422


@dataclass
class HeldMessage:
    """A message waiting for its handset."""

    core: SMSCCore
    message_id: str
    account: str
    origin_session: int | None
    handset: tuple[int, int, str]
    esme: tuple[int, int, str]
    dpf_requested: bool
    plan: ReceiptPlan
    until: float
    timer: IDelayedCall | None = None


def alert_notification(handset: tuple[int, int, str], esme: tuple[int, int, str]) -> PDU:
    """The alert_notification for a handset that became available (sequence number set when sent)."""
    return make_pdu(
        CommandId.alert_notification,
        0,
        tlvs={_MS_AVAILABILITY_STATUS: b"\x00"},
        source_addr_ton=handset[0],
        source_addr_npi=handset[1],
        source_addr=handset[2],
        esme_addr_ton=esme[0],
        esme_addr_npi=esme[1],
        esme_addr=esme[2],
    )


class HandsetAvailability:
    """
    The held messages of every cluster.

    :param clock: runs the holds.
    :param events: where ``alert`` events go.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, events: EventBus) -> None:
        self.clock = clock
        self.events = events
        self._held: OrderedDict[tuple[str, str], HeldMessage] = OrderedDict()
        self.alerts_sent = 0

    def hold(self, core: SMSCCore, message_id: str, hold: float, plan: ReceiptPlan, dpf_requested: bool) -> None:
        """Hold a message just accepted for ``hold`` seconds (its record must be in ``core``)."""
        record = core.message(message_id)
        if record is None:
            return
        if len(self._held) >= MAX_HELD:
            _, oldest = self._held.popitem(last=False)
            self._cancel(oldest)
            self.log.warn(
                "handsets: more than {limit} messages held; {message_id} no longer is",
                limit=MAX_HELD,
                message_id=oldest.message_id,
            )
        held = HeldMessage(
            core,
            message_id,
            record.account,
            record.session_id,
            (record.dest_ton, record.dest_npi, record.destination_addr),
            (record.source_ton, record.source_npi, record.source_addr),
            dpf_requested,
            plan,
            self.clock.seconds() + hold,
        )
        held.timer = self.clock.callLater(hold, self._hold_ended, core.name, message_id)
        self._held[(core.name, message_id)] = held

    def _hold_ended(self, cluster: str, message_id: str) -> None:
        held = self._held.pop((cluster, message_id), None)
        if held is not None:
            held.timer = None
            self._available(held)

    def make_available(self, address: str) -> list[str]:
        """
        The handset ``address`` is back now: its held messages get the rest of
        their plan from now (as if their hold had just ended) and their alerts.

        :returns: the ids of the messages that were held for it.
        """
        found = [key for key, held in self._held.items() if held.handset[2] == address]
        ids = []
        for key in found:
            held = self._held.pop(key)
            self._cancel(held)
            record = held.core.message(held.message_id)
            if record is not None and not record.final:
                # the plan as the rule gave it, before the hold pushed it back, from now on
                record.plan = held.plan
                held.core.lifecycle.restart(record)
            self._available(held)
            ids.append(held.message_id)
        return ids

    def _available(self, held: HeldMessage) -> None:
        """Send the alert of a message whose handset is back, if its submit asked for one."""
        if not held.dpf_requested:
            return
        entries = [entry for entry in held.core.binds.of_account(held.account) if entry.bind_type.can_receive]
        entries.sort(key=lambda entry: entry.session.session_id != held.origin_session)  # the submitter first
        sent_on = None
        for entry in entries:
            if entry.session.send_unanswered(alert_notification(held.handset, held.esme)):
                sent_on = entry.session.session_id
                break
        if sent_on is None:
            self.log.info(
                "alert_notification for {message_id} ({handset}) not sent: no receiver of {account} bound",
                message_id=held.message_id,
                handset=held.handset[2],
                account=held.account,
            )
        else:
            self.alerts_sent += 1
        self.events.publish(
            "alert",
            message_id=held.message_id,
            account=held.account,
            handset=held.handset[2],
            session_id=sent_on,
            outcome="sent" if sent_on is not None else "no-receiver",
        )

    def held(self) -> list[dict[str, Any]]:
        """The held messages, for the API."""
        return [
            {
                "message_id": held.message_id,
                "account": held.account,
                "cluster": held.core.name,
                "handset": held.handset[2],
                "until": held.until,
                "alert": held.dpf_requested,
            }
            for held in self._held.values()
        ]

    def _cancel(self, held: HeldMessage) -> None:
        if held.timer is not None and held.timer.active():
            held.timer.cancel()
        held.timer = None

    def clear(self) -> None:
        """Forget every hold (reset, shutdown); the receipts already planned still come."""
        for held in self._held.values():
            self._cancel(held)
        self._held.clear()
