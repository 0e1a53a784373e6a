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
  once the cancel_sm_resp is written.  When the cluster spans processes, a
  cancel with an empty message_id also asks the other processes to cancel
  their matching messages, and is answered once they did (or the wait ran out).
- replace_sm: a pending message with the same source gets the new text,
  registered_delivery, and schedule/validity (NULL keeps the old ones);
  its receipt plan starts over once replace_sm_resp is written.  Anything
  else: ESME_RREPLACEFAIL.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.config import AccountSettings, CoreSettings
from smsc_sim.contracts import Reply
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.remote import IClusterMessages, Replacement, SharedMessage
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
    :param remote: the messages of the cluster's other processes (``cluster_store``);
        ``None``: this process holds every message of the cluster.
    :param remote_timeout: seconds an operation waits for ``remote`` before ESME_RSYSERR.
    """

    log = Logger()

    def __init__(
        self,
        *,
        clock: IReactorTime,
        settings: CoreSettings,
        store: MessageStore,
        lifecycle: Lifecycle,
        account: Callable[[str], AccountSettings | None],
        counters: Counter[str],
        remote: IClusterMessages | None = None,
        remote_timeout: float = 2.0,
    ) -> None:
        self._remote = remote
        self._remote_timeout = remote_timeout
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

    def query_sm(self, entry: BindEntry, pdu: PDU) -> Reply | Deferred[Reply]:
        """Answer a query_sm (later for a message of another process of the cluster)."""
        p = pdu.params
        record = self._own(entry, p["message_id"], p["source_addr"])
        if record is None:
            if self._remote is not None and p["message_id"] and self._store.get(p["message_id"]) is None:
                return self._remote_query(entry, pdu)
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

    def cancel_sm(self, entry: BindEntry, pdu: PDU) -> Reply | Deferred[Reply]:
        """Answer a cancel_sm, ending the matching pending messages DELETED."""
        p = pdu.params
        targets: list[MessageRecord]
        if p["message_id"]:
            record = self._own(entry, p["message_id"], p["source_addr"])
            if record is None:
                if self._remote is not None and self._store.get(p["message_id"]) is None:
                    return self._remote_cancel(entry, pdu)
                return self._fail(pdu, CommandStatus.ESME_RCANCELFAIL)
            targets = [r for r in record.siblings or (record,) if r.state not in FINAL_STATES]
        else:
            account = entry.account.system_id
            source, destination, service_type = p["source_addr"], p["destination_addr"], p["service_type"]
            targets = self._matching(account, source, destination, service_type)
            if self._remote is not None:
                return self._cancel_everywhere(pdu, targets, account, source, destination, service_type)
        if not targets:
            return self._fail(pdu, CommandStatus.ESME_RCANCELFAIL)
        self._delete(targets)
        return Reply(make_pdu(CommandId.cancel_sm_resp, pdu.sequence_number), on_sent=self._deleted_receipts(targets))

    def _matching(self, account: str, source: str, destination: str, service_type: str) -> list[MessageRecord]:
        """The pending messages a cancel_sm with an empty message_id ends."""
        return [
            r
            for r in self._store.pending.values()
            if r.account == account
            and r.direction == "mt"
            and r.source_addr == source
            and r.destination_addr == destination
            and (not service_type or r.service_type == service_type)
        ]

    def _delete(self, targets: list[MessageRecord]) -> None:
        lifecycle = self._lifecycle
        for record in targets:
            lifecycle.finish(
                record, MessageState.DELETED, STAT_DEFAULT_ERR["DELETED"], reason="cancelled by cancel_sm", receipt=False
            )

    def _deleted_receipts(self, targets: list[MessageRecord]) -> Callable[[], None]:
        final_receipt = self._lifecycle.final_receipt

        def on_sent() -> None:
            # the DELETED receipts follow the cancel_sm_resp, never overtake it
            for record in targets:
                final_receipt(record)

        return on_sent

    def replace_sm(self, entry: BindEntry, pdu: PDU) -> Reply | Deferred[Reply]:
        """Answer a replace_sm."""
        p = pdu.params
        record = self._own(entry, p["message_id"], p["source_addr"])
        if record is None and self._remote is not None and p["message_id"] and self._store.get(p["message_id"]) is None:
            return self._remote_replace(entry, pdu)
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
    # messages of the cluster's other processes (cluster_store)
    # ------------------------------------------------------------------

    def _asked(self, pdu: PDU, d: Deferred[Any], answer: Callable[[Any], Reply]) -> Deferred[Reply]:
        """Bound the shared store's answer; unreachable: ESME_RSYSERR and one log line."""
        d.addTimeout(self._remote_timeout, self._clock)

        def unreachable(failure: Failure) -> Reply:
            self.log.warn(
                "{command} {message_id} refused: the cluster store did not answer ({error})",
                command=pdu.name,
                message_id=pdu.params["message_id"],
                error=failure.getErrorMessage() or failure.type.__name__,
            )
            return self._fail(pdu, CommandStatus.ESME_RSYSERR)

        return d.addCallbacks(answer, unreachable)

    def _remote_query(self, entry: BindEntry, pdu: PDU) -> Deferred[Reply]:
        assert self._remote is not None
        p = pdu.params

        def answer(shared: SharedMessage | None) -> Reply:
            if shared is None:
                return self._fail(pdu, CommandStatus.ESME_RQUERYFAIL)
            final_date = ""
            if shared.state in FINAL_STATES and shared.final_time is not None:
                final_date = format_final_date(shared.final_time)
            response = make_pdu(
                CommandId.query_sm_resp,
                pdu.sequence_number,
                message_id=p["message_id"],
                final_date=final_date,
                message_state=shared.state,
                error_code=min(shared.err, 255),
            )
            return Reply(response)

        asked = self._remote.query(p["message_id"], entry.account.system_id, p["source_addr"])
        return self._asked(pdu, asked, answer)

    def _remote_cancel(self, entry: BindEntry, pdu: PDU) -> Deferred[Reply]:
        assert self._remote is not None
        p = pdu.params

        def answer(cancelled: bool) -> Reply:
            if not cancelled:
                return self._fail(pdu, CommandStatus.ESME_RCANCELFAIL)
            # the owning process ends it DELETED and sends its DELETED receipt, if asked for
            return Reply(make_pdu(CommandId.cancel_sm_resp, pdu.sequence_number))

        asked = self._remote.cancel(p["message_id"], entry.account.system_id, p["source_addr"], self._clock.seconds())
        return self._asked(pdu, asked, answer)

    def _cancel_everywhere(
        self,
        pdu: PDU,
        targets: list[MessageRecord],
        account: str,
        source: str,
        destination: str,
        service_type: str,
    ) -> Deferred[Reply]:
        """
        cancel_sm with an empty message_id when the cluster spans processes: this process's
        matching messages end DELETED at once, the other processes are asked to end theirs,
        and the answer waits for them: 0 when any was cancelled anywhere, ESME_RCANCELFAIL when
        every process answered that none was, ESME_RSYSERR when nothing was cancelled here and
        the store (or a process) did not answer in time.
        """
        assert self._remote is not None
        self._delete(targets)
        on_sent = self._deleted_receipts(targets)
        # the processes' answers come within most of the bound, so that a late one is counted missing
        # rather than the whole request timing out
        asked = self._remote.cancel_matching(account, source, destination, service_type, self._remote_timeout * 0.75)
        asked.addTimeout(self._remote_timeout, self._clock)

        def answer(result: tuple[int, bool]) -> Reply:
            cancelled, complete = result
            if targets or cancelled:
                if not complete:
                    self.log.warn(
                        "cancel_sm of {source} to {destination}: a process of the cluster did not answer in time;"
                        " its matching messages may still be pending",
                        source=source,
                        destination=destination,
                    )
                return Reply(make_pdu(CommandId.cancel_sm_resp, pdu.sequence_number), on_sent=on_sent)
            if not complete:
                self.log.warn(
                    "cancel_sm of {source} to {destination} refused: a process of the cluster did not answer in time",
                    source=source,
                    destination=destination,
                )
                return self._fail(pdu, CommandStatus.ESME_RSYSERR)
            return self._fail(pdu, CommandStatus.ESME_RCANCELFAIL)

        def unreachable(failure: Failure) -> Reply:
            error = failure.getErrorMessage() or failure.type.__name__
            if targets:
                # cancelled here: answered as cancelled, the others could not be asked
                self.log.warn(
                    "cancel_sm of {source} to {destination}: only this process's messages cancelled, the cluster"
                    " store did not answer ({error})",
                    source=source,
                    destination=destination,
                    error=error,
                )
                return Reply(make_pdu(CommandId.cancel_sm_resp, pdu.sequence_number), on_sent=on_sent)
            self.log.warn(
                "cancel_sm of {source} to {destination} refused: the cluster store did not answer ({error})",
                source=source,
                destination=destination,
                error=error,
            )
            return self._fail(pdu, CommandStatus.ESME_RSYSERR)

        return asked.addCallbacks(answer, unreachable)

    def cancelled_matching_elsewhere(self, account: str, source: str, destination: str, service_type: str) -> int:
        """
        Another process of the cluster got a cancel_sm with an empty message_id: end this
        process's matching pending messages DELETED (with their DELETED receipts, when asked
        for); how many.
        """
        targets = self._matching(account, source, destination, service_type)
        self._delete(targets)
        self._deleted_receipts(targets)()
        return len(targets)

    def _remote_replace(self, entry: BindEntry, pdu: PDU) -> Deferred[Reply]:
        assert self._remote is not None
        p = pdu.params
        now = self._clock.seconds()
        # checked as for a message of this process, but answered only once the message is found
        invalid = 0
        scheduled: float | None = None
        expires: float | None = None
        if p["registered_delivery"] & REGISTERED_DELIVERY_RECEIPT_MASK == 3:
            invalid = CommandStatus.ESME_RINVREGDLVFLG
        else:
            try:
                scheduled, expires = times(p["schedule_delivery_time"], p["validity_period"], now, self._settings)
            except Invalid as e:
                invalid = e.status
        replacement = Replacement(p["short_message"], p["registered_delivery"], scheduled, expires, now)

        def answer(status: int) -> Reply:
            if status:
                return self._fail(pdu, status)
            return Reply(make_pdu(CommandId.replace_sm_resp, pdu.sequence_number))

        asked = self._remote.replace(p["message_id"], entry.account.system_id, p["source_addr"], replacement, invalid)
        return self._asked(pdu, asked, answer)

    def cancelled_elsewhere(self, key: str) -> bool:
        """
        Another process of the cluster cancelled a message of this one (the
        shared store decided): end it DELETED, with its DELETED receipt if
        registered_delivery asks for failures.  Whether it was pending here.
        """
        record = self._store.get(key)
        if record is None or record.direction != "mt":
            return False
        targets = [r for r in record.siblings or (record,) if r.state not in FINAL_STATES]
        lifecycle = self._lifecycle
        for target in targets:
            lifecycle.finish(
                target, MessageState.DELETED, STAT_DEFAULT_ERR["DELETED"], reason="cancelled by cancel_sm",
                receipt=False,
            )  # fmt: skip
        for target in targets:
            lifecycle.final_receipt(target)
        return bool(targets)

    def replaced_elsewhere(self, key: str, replacement: Replacement) -> bool:
        """
        Another process of the cluster replaced a message of this one: new
        content, and its receipt plan starts over.  Whether it was pending here.
        """
        record = self._store.get(key)
        if record is None or record.direction != "mt" or record.state in FINAL_STATES:
            return False
        scheduled = replacement.schedule_time if replacement.schedule_time is not None else record.schedule_time
        validity = replacement.validity_time if replacement.validity_time is not None else record.validity_time
        params = {"registered_delivery": replacement.registered_delivery}
        self.replace_content(
            record, params, replacement.short_message, scheduled, validity, replacement.time, keep_coding=True
        )
        self._lifecycle.restart(record)
        return True

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
