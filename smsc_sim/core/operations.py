"""
query_sm, cancel_sm and replace_sm: operations on messages already accepted.

An ESME reaches only its own account's messages, and only with the source
address it submitted them from (SMPP 3.4 sections 4.7-4.10); anything else
is answered as if the message did not exist.

- query_sm: ESME_RQUERYFAIL for an unknown id or a source mismatch;
  final_date is empty while the message is pending.
- cancel_sm: by message_id (every destination of a submit_multi), or with
  an empty message_id every pending message of that source and destination
  (and service_type, when given); nothing pending to cancel, or a final
  message: ESME_RCANCELFAIL.  Cancelled messages end DELETED at once; their
  DELETED receipts (when registered_delivery asks for failures) are sent
  once the cancel_sm_resp is written.
- replace_sm: a pending message with the same source gets the new text,
  registered_delivery, and schedule/validity (NULL keeps the old ones);
  its receipt plan starts over once replace_sm_resp is written.  Anything
  else: ESME_RREPLACEFAIL.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import AccountSettings, CoreSettings
from smsc_sim.contracts import Reply
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.store import MessageRecord, MessageStore
from smsc_sim.core.validate import Invalid, times
from smsc_sim.smpp.concat import ConcatError, payload_of
from smsc_sim.smpp.constants import (
    FINAL_STATES,
    REGISTERED_DELIVERY_RECEIPT_MASK,
    CommandId,
    CommandStatus,
    MessageState,
    response_id,
)
from smsc_sim.smpp.pdu import PDU, make_pdu
from smsc_sim.smpp.receipt import STAT_DEFAULT_ERR
from smsc_sim.smpp.smpp_time import format_final_date
from smsc_sim.smpp.text import decode_text


class Operations:
    """
    The query/cancel/replace handlers of one core.

    :param clock: the clock.
    :param settings: validity and schedule limits.
    :param store: the records.
    :param lifecycle: ends, restarts and sends the receipts of records.
    :param account: the settings of an account by system_id, or ``None``.
    :param counters: the core's counters (``<command>_failed``).
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        settings: CoreSettings,
        store: MessageStore,
        lifecycle: Lifecycle,
        account: Callable[[str], AccountSettings | None],
        counters: Counter[str],
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._store = store
        self._lifecycle = lifecycle
        self._account = account
        self._counters = counters

    def _own(self, entry: BindEntry, message_id: str, source_addr: str) -> MessageRecord | None:
        record = self._store.get(message_id) if message_id else None
        if (
            record is None
            or record.direction != "mt"
            or record.account != entry.account.system_id
            or record.source_addr != source_addr
        ):
            return None
        return record

    def _fail(self, pdu: PDU, status: int) -> Reply:
        self._counters[f"{pdu.name}_failed"] += 1
        return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, status))

    def query_sm(self, entry: BindEntry, pdu: PDU) -> Reply:
        """Answer a query_sm."""
        p = pdu.params
        record = self._own(entry, p["message_id"], p["source_addr"])
        if record is None:
            return self._fail(pdu, CommandStatus.ESME_RQUERYFAIL)
        final_date = ""
        if record.state in FINAL_STATES and record.final_time is not None:
            final_date = format_final_date(record.final_time)
        response = make_pdu(
            CommandId.query_sm_resp,
            pdu.sequence_number,
            message_id=p["message_id"],
            final_date=final_date,
            message_state=int(record.state),
            error_code=min(record.err, 255),
        )
        return Reply(response)

    def cancel_sm(self, entry: BindEntry, pdu: PDU) -> Reply:
        """Answer a cancel_sm, ending the matching pending messages DELETED."""
        p = pdu.params
        targets: list[MessageRecord]
        if p["message_id"]:
            record = self._own(entry, p["message_id"], p["source_addr"])
            if record is None:
                return self._fail(pdu, CommandStatus.ESME_RCANCELFAIL)
            targets = [r for r in record.siblings or (record,) if r.state not in FINAL_STATES]
        else:
            account = entry.account.system_id
            source, destination, service_type = p["source_addr"], p["destination_addr"], p["service_type"]
            targets = [
                r
                for r in self._store.pending.values()
                if r.account == account
                and r.direction == "mt"
                and r.source_addr == source
                and r.destination_addr == destination
                and (not service_type or r.service_type == service_type)
            ]
        if not targets:
            return self._fail(pdu, CommandStatus.ESME_RCANCELFAIL)
        lifecycle = self._lifecycle
        for record in targets:
            lifecycle.finish(
                record, MessageState.DELETED, STAT_DEFAULT_ERR["DELETED"], reason="cancelled by cancel_sm", receipt=False
            )

        def on_sent() -> None:
            # the DELETED receipts follow the cancel_sm_resp, never overtake it
            for record in targets:
                lifecycle.final_receipt(record)

        return Reply(make_pdu(CommandId.cancel_sm_resp, pdu.sequence_number), on_sent=on_sent)

    def replace_sm(self, entry: BindEntry, pdu: PDU) -> Reply:
        """Answer a replace_sm."""
        p = pdu.params
        record = self._own(entry, p["message_id"], p["source_addr"])
        if record is None or record.state in FINAL_STATES:
            return self._fail(pdu, CommandStatus.ESME_RREPLACEFAIL)
        if p["registered_delivery"] & REGISTERED_DELIVERY_RECEIPT_MASK == 3:
            return self._fail(pdu, CommandStatus.ESME_RINVREGDLVFLG)
        now = self._clock.seconds()
        try:
            scheduled, expires = times(p["schedule_delivery_time"], p["validity_period"], now, self._settings)
        except Invalid as e:
            return self._fail(pdu, e.status)
        if scheduled is None:
            scheduled = record.schedule_time
        validity = expires if expires is not None else record.validity_time
        self.replace_content(record, p, p["short_message"], scheduled, validity, now, keep_coding=True)
        restart = self._lifecycle.restart

        def on_sent() -> None:
            restart(record)

        return Reply(make_pdu(CommandId.replace_sm_resp, pdu.sequence_number), on_sent=on_sent)

    # ------------------------------------------------------------------
    # shared with submit_sm's replace_if_present_flag
    # ------------------------------------------------------------------

    def find_replaceable(self, account: str, source: str, destination: str, service_type: str) -> MessageRecord | None:
        """The oldest pending message a replace_if_present submit_sm would replace."""
        for record in self._store.pending.values():
            if (
                record.account == account
                and record.direction == "mt"
                and record.concat is None
                and record.source_addr == source
                and record.destination_addr == destination
                and record.service_type == service_type
            ):
                return record
        return None

    def replace_content(
        self,
        record: MessageRecord,
        p: dict[str, Any],
        short_message: bytes,
        scheduled: float | None,
        validity: float,
        now: float,
        keep_coding: bool = False,
    ) -> None:
        """
        Put new content into a pending record; its plan stops until restarted.

        :param keep_coding: replace_sm carries no data_coding or esm_class;
            the record's own are kept.  A submit_sm brings its own.
        """
        record.generation += 1  # the old plan's steps no longer apply
        if not keep_coding:
            record.esm_class = p["esm_class"]
            record.data_coding = p["data_coding"]
            record.protocol_id = p.get("protocol_id", 0)
            record.priority_flag = p.get("priority_flag", 0)
        account = self._account(record.account)
        alphabet = account.default_alphabet if account is not None else "latin-1"
        try:
            payload = payload_of(record.esm_class, short_message, {})
        except ConcatError:
            payload = short_message
        decoded = decode_text(record.data_coding, payload, alphabet)
        record.short_message = short_message
        record.text = decoded.text
        record.encoding = decoded.encoding
        record.undecodable = decoded.undecodable
        record.binary = decoded.binary
        record.registered_delivery = p["registered_delivery"]
        record.schedule_time = scheduled
        record.validity_time = validity
        record.replaced_time = now
        record.note_change(now, "REPLACED")
        record.state = MessageState.ENROUTE
