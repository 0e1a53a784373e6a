"""
Mobile-originated messages: the SMSC sends a deliver_sm to an ESME.

An MO message is cut into parts (:func:`smsc_sim.smpp.concat.split_for_mo`:
UDH with 8- or 16-bit reference, SAR TLVs, or one message_payload), each a
deliver_sm with esm_class 0 (0x40 when it carries a UDH), routed like a
receipt, and each with a record (direction ``mo``) whose state follows its
deliver_sm_resp: DELIVERED, UNDELIVERABLE, or EXPIRED when no receiver bound
in time.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Callable, Collection

from twisted.internet.interfaces import IReactorTime

from smsc_sim.config import AccountSettings, CoreSettings
from smsc_sim.core.delivery import Delivery
from smsc_sim.core.ids import IMessageNumbers, format_message_id
from smsc_sim.core.store import MessageRecord, MessageStore, MOEntry, StoreFull
from smsc_sim.modes import SplitMode
from smsc_sim.smpp.concat import (
    MO_MODES,
    Segment,
    concatenated,
    payload_of,
    split_for_mo,
)
from smsc_sim.smpp.constants import CommandId, Tag
from smsc_sim.smpp.gsm0338 import _BASIC as _GSM_TABLE
from smsc_sim.smpp.pdu import make_pdu
from smsc_sim.smpp.text import choose_coding, decode_text, length_class

if TYPE_CHECKING:
    from smsc_sim.core.admission import Admission
    from smsc_sim.core.lifecycle import Lifecycle
    from smsc_sim.core.router import Router

_PAYLOAD = int(Tag.message_payload)

#: octets of one short_message (the 140-octet SMS), and of a part's data after a 6-octet UDH
SINGLE_OCTETS = 140
PART_OCTETS = 134

#: data_coding of binary MO data when none is given (8-bit binary)
BINARY_CODING = 0x04


def address_kind(address: str, short_code_digits: int = 0) -> tuple[int, int]:
    """
    TON and NPI for an address the simulator makes up: international E.164
    for digits (with an optional ``+``), alphanumeric otherwise.

    :param short_code_digits: digits without ``+`` up to this length are a
        short code: TON 3 (network specific), as networks send them, NPI 1;
        0: no short codes (every number is international).
    """
    if address.isdigit():
        return (3, 1) if len(address) <= short_code_digits else (1, 1)
    digits = address[1:] if address.startswith("+") else address
    if digits.isdigit():
        return 1, 1
    return 5, 0


def split_data_for_mo(data: bytes, data_coding: int, mode: str, reference: int) -> list[Segment]:
    """
    Cut raw MO octets into PDUs the way :func:`~smsc_sim.smpp.concat.split_for_mo` cuts text.

    Up to :data:`SINGLE_OCTETS` octets: one segment, no UDH, no TLV, whatever
    the mode.  Longer: ``udh8`` and ``sar`` parts of :data:`PART_OCTETS`
    octets (``udh16`` one fewer, its UDH is an octet longer), even-sized for
    a UCS-2 coding so that no character is cut in two; ``payload`` puts the
    whole in message_payload with an empty short_message.

    :raises ValueError: for an unknown mode or more than 255 parts.
    """
    if mode not in MO_MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MO_MODES)}")
    if len(data) <= SINGLE_OCTETS:
        return [Segment(0, data)]
    if mode == SplitMode.PAYLOAD:
        return [Segment(0, b"", {_PAYLOAD: data})]
    size = PART_OCTETS - (1 if mode == SplitMode.UDH16 else 0)
    if length_class(data_coding) == "ucs2":
        size -= size % 2
    return concatenated([data[i : i + size] for i in range(0, len(data), size)], mode, reference)


#: ways of treating control characters in MO text (``core.mo_control_characters``)
CONTROL_MODES = ("gsm", "space", "keep")
#: every C0 control but LF and CR, and DEL: what the provider's DCS 0 alphabet has no room for
_CONTROL = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
#: the character the provider's single-octet alphabet has at each control position (the GSM 03.38
#: layout: "replaced by characters from the LATIN-1 upper table"), '?' where that is no Latin-1 character
_GSM_FOR_CONTROL = {
    code: (_GSM_TABLE[code] if ord(_GSM_TABLE[code]) < 0x100 and _GSM_TABLE[code] != chr(code) else "?")
    for code in [*range(0x20), 0x7F]
    if code not in (0x0A, 0x0D)
}
_SPACE_FOR_CONTROL = {code: " " for code in _GSM_FOR_CONTROL}
#: the codings whose text the provider cleans: DCS 0 (either reading), IA5 and Latin-1
_CLEANED_CODINGS = frozenset({0x00, 0x01, 0x03})


def replace_controls(text: str, mode: str) -> str:
    """
    ``text`` with its control characters replaced: ``gsm`` by the character
    at the same position of the provider's alphabet (``\x01`` -> ``£``,
    ``\x09`` -> ``Ç``, DEL -> ``à``; ``?`` for the positions of Greek letters
    and ESC), ``space`` by a space, ``keep`` not at all.  LF and CR stay.
    """
    if mode == "keep" or not _CONTROL.search(text):
        return text
    return text.translate(_GSM_FOR_CONTROL if mode == "gsm" else _SPACE_FOR_CONTROL)


def mo_segments(
    text: str | None,
    data: bytes | None,
    data_coding: int | None,
    split: str,
    reference: int,
    alphabet: str,
    controls: str = "keep",
) -> tuple[int, list[Segment]]:
    """
    The data_coding and the deliver_sm segments of one MO message, sending nothing.

    The API calls it to count a request's parts before it originates any.

    :param text: the text, or None when ``data`` is given.
    :param data: raw octets, or None.
    :param data_coding: the coding; ``None``: the narrowest that carries the
        text (8-bit binary for data).
    :param split: ``udh8``, ``udh16``, ``sar`` or ``payload``.
    :param reference: the concatenation reference.
    :param alphabet: how the account reads data_coding 0.
    :param controls: what becomes of control characters in GSM, IA5 and
        Latin-1 text (:func:`replace_controls`); UCS-2 and data keep them.
    :raises ValueError: text the coding cannot carry, or more than 255 parts.
    """
    if data is not None:
        coding = BINARY_CODING if data_coding is None else data_coding
        return coding, split_data_for_mo(data, coding, split, reference)
    body = text or ""
    cleaned = replace_controls(body, controls)
    if cleaned is not body:
        coding = choose_coding(cleaned, alphabet) if data_coding is None else data_coding
        if coding in _CLEANED_CODINGS:
            return coding, split_for_mo(cleaned, coding, split, reference, alphabet)
    coding = choose_coding(body, alphabet) if data_coding is None else data_coding
    return coding, split_for_mo(body, coding, split, reference, alphabet)


class Originator:
    """
    MO messages of one cluster.

    :param cluster: the cluster's name (for error messages).
    :param instances: the names of the cluster's instances.
    :param clock: the clock.
    :param settings: message id format and pending expiry.
    :param ids: where message numbers come from.
    :param account: the settings of an account by system_id, or ``None``.
    :param store: where MO records are held.
    :param admission: reports new records.
    :param lifecycle: moves MO records along with their deliver_sm.
    :param router: delivers the deliver_sm parts.
    :param counters: the core's counters (``mo``, ``mo_not_stored``).
    """

    def __init__(
        self,
        *,
        cluster: str,
        instances: Collection[str],
        clock: IReactorTime,
        settings: CoreSettings,
        ids: IMessageNumbers,
        account: Callable[[str], AccountSettings | None],
        store: MessageStore,
        admission: Admission,
        lifecycle: Lifecycle,
        router: Router,
        counters: Counter[str],
    ) -> None:
        self._cluster = cluster
        self._instances = instances
        self._clock = clock
        self._settings = settings
        self._ids = ids
        self._account = account
        self._store = store
        self._admission = admission
        self._lifecycle = lifecycle
        self._router = router
        self._counters = counters
        #: the concatenation reference of the last MO message
        self.reference = 0

    def originate(
        self,
        account: str,
        source: str,
        destination: str,
        *,
        text: str | None = None,
        data: bytes | None = None,
        data_coding: int | None = None,
        split: str = "udh8",
        instance: str | None = None,
    ) -> list[str]:
        """
        Send an MO message to a receiver of ``account`` in this cluster.

        :param source: the handset (deliver_sm source_addr).
        :param destination: the ESME's number (destination_addr).
        :param text: the text; or ``data``, raw octets, split past 140 octets
            as ``split`` says (:func:`split_data_for_mo`).
        :param data_coding: the coding; ``None``: the narrowest that carries the
            text (8-bit binary for data).
        :param split: ``udh8``, ``udh16``, ``sar`` or ``payload``, for text or
            data too long for one message.
        :param instance: prefer receivers on this instance (origin routing).
        :returns: the message ids of the parts, in order.
        :raises ValueError: unknown account or instance, or text the coding cannot carry.
        """
        settings = self._account(account)
        cluster = self._cluster
        if settings is None:
            raise ValueError(f"no account {account!r} in cluster {cluster}")
        if instance is not None and instance not in self._instances:
            raise ValueError(f"instance {instance!r} is not in cluster {cluster} ({', '.join(self._instances)})")
        alphabet = settings.default_alphabet
        self.reference = (self.reference + 1) % 0x10000
        coding, segments = mo_segments(
            text, data, data_coding, split, self.reference, alphabet, self._settings.mo_control_characters
        )
        short = self._settings.short_code_digits
        source_ton, source_npi = address_kind(source, short)
        dest_ton, dest_npi = address_kind(destination, short)
        now = self._clock.seconds()
        core_settings = self._settings
        ids: list[str] = []
        for segment in segments:
            number = self._ids.next(now)
            message_id = format_message_id(number, core_settings.message_id_format)
            record = MessageRecord(
                message_id, message_id, number, account, instance or "", None, now, "mo", "deliver_sm"
            )
            record.source_ton, record.source_npi, record.source_addr = source_ton, source_npi, source
            record.dest_ton, record.dest_npi, record.destination_addr = dest_ton, dest_npi, destination
            record.esm_class = segment.esm_class
            record.data_coding = coding
            record.short_message = segment.short_message or segment.tlvs.get(_PAYLOAD, b"")
            decoded = decode_text(coding, payload_of(segment.esm_class, segment.short_message, segment.tlvs), alphabet)
            record.text = decoded.text
            record.encoding = decoded.encoding
            record.binary = decoded.binary
            record.validity_time = now + core_settings.pending_expiry
            if segment.tlvs:
                record.tlv_tags = tuple(segment.tlvs)
            stored: MessageRecord | None = record
            try:
                self._store.add(record)
            except StoreFull:
                self._counters["mo_not_stored"] += 1
                stored = None
            self._admission.accepted(record)
            record.log_delivery(MOEntry.created(now))
            pdu = make_pdu(
                CommandId.deliver_sm,
                0,
                tlvs=dict(segment.tlvs),
                source_addr_ton=source_ton,
                source_addr_npi=source_npi,
                source_addr=source,
                dest_addr_ton=dest_ton,
                dest_addr_npi=dest_npi,
                destination_addr=destination,
                esm_class=segment.esm_class,
                data_coding=coding,
                short_message=segment.short_message,
            )
            self._counters["mo"] += 1
            outcome = self._lifecycle.mo_outcome(record)
            # a record the store could not hold is not journaled with its delivery either
            self._router.send(Delivery(pdu, account, "mo", message_id, None, instance, now, outcome), stored)
            ids.append(message_id)
        return ids
