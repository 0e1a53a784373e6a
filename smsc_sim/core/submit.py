"""
The hot path: submit_sm, data_sm and submit_multi.

Each request is checked field by field (:mod:`smsc_sim.core.validate`),
then throttled, then put to the scenario; an accepted message gets a record
and its receipt plan starts once the response is written.

Choices where SMPP leaves room (documented for users in the README):

- A verdict of ``generic_nack`` answers with the verdict's status, or
  ESME_RUNKNOWNERR when the verdict says 0; ``none`` never answers.  Neither
  makes a record: the ESME never learns an id.
- submit_sm with replace_if_present_flag=1 that matches a pending message of
  the same account, source, destination and service_type replaces it **in
  place and answers with the existing message id** (as replace_sm does), so
  one message, one id and one final receipt remain.  No match: a new message.
- submit_multi asks the scenario once, with the first destination; each
  successful destination gets its own record sharing the message id of the
  submit_multi_resp; failed destinations are listed in unsuccess_sme.  When
  every destination fails the answer is still ESME_ROK with the full list.
  A distribution list name (dest_flag 2) is looked up in the account's
  ``distribution_lists``, then in the core's; unknown: ESME_RINVDLNAME.
- Throttling counts message parts: a submit_sm or data_sm is one, a
  submit_multi one per destination.  Scenario throttle scope ``instance``
  means per account per instance.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import CoreSettings
from smsc_sim.contracts import AfterReply, IScenario, Reply, Respond, Verdict
from smsc_sim.core.admission import Admission
from smsc_sim.core.billing import TAG_NETWORK, TAG_PRICE_REQUEST, Balances, Networks
from smsc_sim.core.binds import BindEntry
from smsc_sim.core.contracts import IThrottle
from smsc_sim.core.ids import IMessageNumbers, NoIdAvailable, digits_number, format_message_id
from smsc_sim.core.lifecycle import Lifecycle
from smsc_sim.core.mo import address_kind
from smsc_sim.core.operations import Operations
from smsc_sim.core.reassembly import Reassembler
from smsc_sim.core.store import MessageRecord
from smsc_sim.core.submit_records import concat_parts, fill_record, message_facts, new_record
from smsc_sim.core.validate import (
    Invalid,
    dest_status,
    message_status,
    source_status,
    times,
    validity_deadline,
)
from smsc_sim.smpp.codec import build_pdu
from smsc_sim.smpp.constants import (
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
    Tag,
    response_id,
)
from smsc_sim.smpp.pdu import PDU, UnsuccessSME, make_pdu
from smsc_sim.smpp.text import decode_text

_PAYLOAD = int(Tag.message_payload)
_QOS_TTL = int(Tag.qos_time_to_live)

#: (ton, npi, address)
Target = tuple[int, int, str]


_new = object.__new__
_set_reply_pdu = Reply.__dict__["pdu"].__set__
_set_reply_delay = Reply.__dict__["delay"].__set__
_set_reply_then = Reply.__dict__["then"].__set__
_set_reply_on_sent = Reply.__dict__["on_sent"].__set__


def _reply(pdu: PDU | None, delay: float, then: AfterReply, on_sent: Callable[[], None] | None) -> Reply:
    """
    ``Reply(pdu, delay, then, on_sent)``, every field given, faster: the frozen
    dataclass's ``__init__`` sets each field with ``object.__setattr__``, the
    slots' own setters take about half the time, and every submit builds one.
    """
    reply = _new(Reply)
    _set_reply_pdu(reply, pdu)
    _set_reply_delay(reply, delay)
    _set_reply_then(reply, then)
    _set_reply_on_sent(reply, on_sent)
    return reply


class Submissions:
    """
    The submit handlers of one core.

    :param clock: the clock.
    :param settings: validity, schedule and message id settings.
    :param scenario: the scenario deciding (until :meth:`use_scenario`).
    :param ids: where message numbers come from.
    :param admission: takes new records in.
    :param lifecycle: starts (or restarts) plans once a response is written.
    :param reassembler: collects the parts of concatenated messages.
    :param operations: finds and replaces messages for replace_if_present_flag.
    :param throttles: the limiters that throttle submits (it decides; this counts ``throttled``).
    :param balances: prices and balances of the billed accounts.
    :param networks: destination networks for TLV 0x1402.
    :param distribution_lists: the core's lists, by name: (ton, npi, address) members.
    :param counters: the core's counters (``throttled``, ``not_answered``, ``generic_nack``).
    :param statuses: submits answered, by command_status.
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        settings: CoreSettings,
        scenario: IScenario,
        ids: IMessageNumbers,
        admission: Admission,
        lifecycle: Lifecycle,
        reassembler: Reassembler,
        operations: Operations,
        throttles: IThrottle,
        distribution_lists: dict[str, tuple[Target, ...]],
        counters: Counter[str],
        statuses: Counter[int],
        balances: Balances | None = None,
        networks: Networks | None = None,
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._scenario = scenario
        self._ids = ids
        self._admission = admission
        self._lifecycle = lifecycle
        self._reassembler = reassembler
        self._operations = operations
        self._throttles = throttles
        self._distribution_lists = distribution_lists
        self._counters = counters
        self._statuses = statuses
        self._balances = balances if balances is not None else Balances(())
        #: the billed accounts by system_id: empty (falsy) when nobody is billed, so the
        #: submit path pays one truth test for billing
        self._billed = self._balances.billed
        # 0x1402 in responses: None unless a table is configured and responses carry it
        self._networks = networks if networks and settings.network_in_response else None
        self._vendor_suffix = b"\x00" if settings.vendor_tlv_strings == "cstring" else b""

    # ------------------------------------------------------------------
    # the three commands
    # ------------------------------------------------------------------

    @staticmethod
    def _field_status(pdu: PDU, command: str) -> int:
        """The status for the first bad address or message field of a submit_sm or data_sm, or 0."""
        p = pdu.params
        return (
            source_status(p["source_addr_ton"], p["source_addr_npi"])
            or dest_status(p["dest_addr_ton"], p["dest_addr_npi"], p["destination_addr"])
            or message_status(p, pdu.tlvs, command)
        )

    def submit_sm(self, entry: BindEntry, pdu: PDU) -> Reply:
        """Decide on a submit_sm."""
        p = pdu.params
        status = self._field_status(pdu, "submit_sm")
        if status:
            return self.refuse(pdu, status)
        now = self._clock.seconds()
        schedule, validity = p["schedule_delivery_time"], p["validity_period"]
        if schedule or validity:  # most submits give neither: NULL and NULL, nothing to read
            try:
                scheduled, expires = times(schedule, validity, now, self._settings)
            except Invalid as e:
                return self.refuse(pdu, e.status)
        else:
            scheduled = expires = None
        return self._single(entry, pdu, "submit_sm", p["short_message"], scheduled, expires, now)

    def data_sm(self, entry: BindEntry, pdu: PDU) -> Reply:
        """Decide on a data_sm (the message is in message_payload)."""
        status = self._field_status(pdu, "data_sm")
        if status:
            return self.refuse(pdu, status)
        now = self._clock.seconds()
        expires = None
        ttl = pdu.tlvs.get(_QOS_TTL)
        if ttl:
            expires = now + min(int.from_bytes(ttl, "big"), self._settings.max_validity)
        return self._single(entry, pdu, "data_sm", b"", None, expires, now)

    def submit_multi(self, entry: BindEntry, pdu: PDU) -> Reply:
        """Decide on a submit_multi."""
        settings = self._settings
        p = pdu.params
        status = source_status(p["source_addr_ton"], p["source_addr_npi"])
        if status:
            return self.refuse(pdu, status)
        dests = p["dest_address"]
        if not 0 < len(dests) <= 254:
            return self.refuse(pdu, CommandStatus.ESME_RINVNUMDESTS)
        status = message_status(p, pdu.tlvs, "submit_multi")
        if status:
            return self.refuse(pdu, status)
        now = self._clock.seconds()
        try:
            scheduled, expires = times(p["schedule_delivery_time"], p["validity_period"], now, settings)
            info, payload = concat_parts(p["esm_class"], p["short_message"], pdu.tlvs)
        except Invalid as e:
            return self.refuse(pdu, e.status)
        targets: list[Target] = []
        unsuccess: list[UnsuccessSME] = []
        for dest in dests:
            if dest.dest_flag == 1:
                bad = dest_status(dest.dest_addr_ton, dest.dest_addr_npi, dest.destination_addr)
                if bad:
                    unsuccess.append(UnsuccessSME(dest.dest_addr_ton, dest.dest_addr_npi, dest.destination_addr, bad))
                else:
                    targets.append((dest.dest_addr_ton, dest.dest_addr_npi, dest.destination_addr))
            elif dest.dest_flag == 2:
                members = self.distribution_list(entry, dest.destination_addr)
                if members is None:
                    unsuccess.append(UnsuccessSME(0, 0, dest.destination_addr, CommandStatus.ESME_RINVDLNAME))
                else:
                    targets.extend(members)
            else:
                unsuccess.append(
                    UnsuccessSME(dest.dest_addr_ton, dest.dest_addr_npi, dest.destination_addr, CommandStatus.ESME_RINVDESTFLAG)
                )
        scenario = self._scenario
        status = self._throttles.take(entry, max(1, len(targets)), scenario)
        if status:
            self._counters["throttled"] += 1
            return self.refuse(pdu, status)
        system_id = entry.account.system_id
        billed = system_id in self._billed if self._billed else False
        if billed and not self._balances.can_pay(system_id, max(1, len(targets))):
            return self.refuse(pdu, self._balances.status)
        first = targets[0][2] if targets else ""
        decoded = decode_text(p["data_coding"], payload, entry.account.default_alphabet)
        facts = message_facts("submit_multi", entry, p, destination=first, text=decoded.text, info=info, tlvs=pdu.tlvs)
        verdict = scenario.verdict(facts)
        early = self.unaccepted(pdu, verdict)
        if early is not None:
            return early
        plan = verdict.receipt or scenario.default_receipt()
        try:
            number = self._ids.next(now)
        except NoIdAvailable:
            # the cluster's shared counter is out of reach (its source logs it once)
            return self.refuse(pdu, CommandStatus.ESME_RSYSERR)
        if entry.account.message_id_digits:
            number = digits_number(number)
        message_id = format_message_id(number, settings.message_id_format)
        validity = validity_deadline(expires, scheduled, now, settings)
        admission = self._admission
        records: list[MessageRecord] = []
        for index, (ton, npi, address) in enumerate(targets, start=1):
            key = message_id if index == 1 else f"{message_id}/{index}"
            record = new_record(key, message_id, number, entry, pdu, "submit_multi", now, plan, verdict)
            record.dest_ton, record.dest_npi, record.destination_addr = ton, npi, address
            fill_record(record, p, decoded, p["short_message"], scheduled, validity, info)
            if not admission.hold(record):
                unsuccess.append(UnsuccessSME(ton, npi, address, CommandStatus.ESME_RMSGQFUL))
                continue
            records.append(record)
        siblings = tuple(records)
        for record in records:
            record.siblings = siblings
            if info is not None:
                self._reassembler.add(record, info, payload, entry.account.default_alphabet)
            admission.accepted(record)
        self._statuses[0] += 1
        tlvs: dict[int, bytes] = {}
        if billed or self._networks is not None:
            if billed:
                self._balances.debit(system_id, len(records))
            if entry.interface_version >= 0x34:
                self._vendor_tlvs(system_id, billed, pdu.tlvs, first, tlvs)
        response = PDU(
            CommandId.submit_multi_resp,
            pdu.sequence_number,
            0,
            {"message_id": message_id, "unsuccess_sme": tuple(unsuccess)},
            tlvs,
        )
        start = self._lifecycle.start

        def on_sent() -> None:
            for record in records:
                start(record)

        return Reply(response, verdict.latency, verdict.then, on_sent)

    def use_scenario(self, scenario: IScenario) -> None:
        """Decide with another scenario from now on."""
        self._scenario = scenario

    def distribution_list(self, entry: BindEntry, name: str) -> tuple[Target, ...] | None:
        """
        The members of a distribution list: the account's own list of that
        name (``distribution_lists`` in its settings; digits are TON 1 NPI 1,
        anything else alphanumeric, TON 5 NPI 0), else the core's.

        :returns: ``None`` for an unknown list (ESME_RINVDLNAME).
        """
        listed = entry.account.distribution_lists.get(name)
        if listed is not None:
            return tuple((*address_kind(address), address) for address in listed)
        return self._distribution_lists.get(name)

    # ------------------------------------------------------------------
    # shared steps
    # ------------------------------------------------------------------

    def _single(
        self,
        entry: BindEntry,
        pdu: PDU,
        command: str,
        short_message: bytes,
        scheduled: float | None,
        expires: float | None,
        now: float,
    ) -> Reply:
        p = pdu.params
        try:
            info, payload = concat_parts(p["esm_class"], short_message, pdu.tlvs)
        except Invalid as e:
            return self.refuse(pdu, e.status)
        scenario = self._scenario
        status = self._throttles.take(entry, 1, scenario)
        if status:
            self._counters["throttled"] += 1
            return self.refuse(pdu, status)
        account = entry.account
        billed = account.system_id in self._billed if self._billed else False
        if billed and not self._balances.can_pay(account.system_id, 1):
            return self.refuse(pdu, self._balances.status)
        decoded = decode_text(p["data_coding"], payload, account.default_alphabet)
        facts = message_facts(
            command, entry, p, destination=p["destination_addr"], text=decoded.text, info=info, tlvs=pdu.tlvs
        )
        verdict = scenario.verdict(facts)
        early = self.unaccepted(pdu, verdict)
        if early is not None:
            return early
        plan = verdict.receipt or scenario.default_receipt()
        settings = self._settings
        validity = validity_deadline(expires, scheduled, now, settings)
        record: MessageRecord | None = None
        if command == "submit_sm" and p["replace_if_present_flag"] == 1 and info is None:
            record = self._operations.find_replaceable(
                account.system_id, p["source_addr"], p["destination_addr"], p["service_type"]
            )
        if record is not None:
            self._operations.replace_content(record, p, short_message, scheduled, validity, now)
            record.plan = plan
            record.rule = verdict.rule
            on_sent = _bound(self._lifecycle.restart, record)
        else:
            try:
                number = self._ids.next(now)
            except NoIdAvailable:
                return self.refuse(pdu, CommandStatus.ESME_RSYSERR)
            if account.message_id_digits:
                number = digits_number(number)
            message_id = format_message_id(number, settings.message_id_format)
            record = new_record(message_id, message_id, number, entry, pdu, command, now, plan, verdict)
            record.dest_ton, record.dest_npi = p["dest_addr_ton"], p["dest_addr_npi"]
            record.destination_addr = p["destination_addr"]
            fill_record(record, p, decoded, short_message or pdu.tlvs.get(_PAYLOAD, b""), scheduled, validity, info)
            admission = self._admission
            if not admission.hold(record):
                return self.refuse(pdu, CommandStatus.ESME_RMSGQFUL)
            if info is not None:
                self._reassembler.add(record, info, payload, account.default_alphabet)
            admission.accepted(record)
            on_sent = _bound(self._lifecycle.start, record)
        scenario.on_submit(facts, record.message_id)
        self._statuses[0] += 1
        tlvs: dict[int, bytes] = {}
        if billed or self._networks is not None:
            if billed:
                self._balances.debit(account.system_id, 1)
            if entry.interface_version >= 0x34:  # no TLVs to an SMPP 3.3 ESME
                self._vendor_tlvs(account.system_id, billed, pdu.tlvs, p["destination_addr"], tlvs)
        response = build_pdu(pdu.command_id | RESPONSE_BIT, pdu.sequence_number, 0, {"message_id": record.message_id}, tlvs)
        return _reply(response, verdict.latency, verdict.then, on_sent)

    def _vendor_tlvs(
        self, system_id: str, billed: bool, request: dict[int, bytes], destination: str, tlvs: dict[int, bytes]
    ) -> None:
        """
        The provider's TLVs of a response: price and balance when the submit
        asked (0x1421) and the account is billed, the network when known.
        """
        if billed and TAG_PRICE_REQUEST in request:
            self._balances.vendor_tlvs(system_id, tlvs, bool(self._vendor_suffix))
        if self._networks is not None:
            network = self._networks.lookup(destination)
            if network is not None:
                tlvs[TAG_NETWORK] = network.encode("ascii") + self._vendor_suffix


    def refuse(self, pdu: PDU, status: int) -> Reply:
        """Answer with the response PDU carrying an error status (no body: the codec drops it)."""
        self._statuses[status] += 1
        return Reply(make_pdu(response_id(pdu.command_id), pdu.sequence_number, status))

    def unaccepted(self, pdu: PDU, verdict: Verdict) -> Reply | None:
        """The reply for a verdict that does not accept the message, or ``None`` when it does."""
        respond = verdict.respond
        if respond is Respond.normal:
            if verdict.status == 0:
                return None
            self._statuses[verdict.status] += 1
            return Reply(
                make_pdu(response_id(pdu.command_id), pdu.sequence_number, verdict.status), verdict.latency, verdict.then
            )
        if respond is Respond.none:
            self._counters["not_answered"] += 1
            return Reply(None, verdict.latency, verdict.then)
        self._counters["generic_nack"] += 1
        sequence = pdu.sequence_number if respond is Respond.generic_nack else 0
        status = verdict.status or CommandStatus.ESME_RUNKNOWNERR
        return Reply(PDU(CommandId.generic_nack, sequence, status, {}), verdict.latency, verdict.then)


def _bound(function: Callable[[MessageRecord], None], record: MessageRecord) -> Callable[[], None]:
    """``function(record)`` as a no-argument callable, for a Reply's ``on_sent``."""

    def call() -> None:
        function(record)

    return call
