"""
Field checks of ESME requests, each failure with the status SMPP 3.4 names.

Checks run in the order of the fields in the PDU, so a request with several
faults gets the status of the first one, as most SMSCs answer.
"""

from __future__ import annotations

from typing import Any, Mapping

from smsc_sim.config import CoreSettings
from smsc_sim.smpp.constants import ESM_CLASS_TYPE_MASK, REGISTERED_DELIVERY_RECEIPT_MASK, CommandStatus, Tag
from smsc_sim.smpp.smpp_time import SMPPTimeError, parse_smpp_time

#: TON values of SMPP 3.4 section 5.2.5
VALID_TON = frozenset(range(0, 7))
#: NPI values of SMPP 3.4 section 5.2.6
VALID_NPI = frozenset({0, 1, 3, 4, 6, 8, 9, 10, 14, 18})
#: esm_class message types an ESME may submit (bits 5-2): normal, delivery ack, manual/user ack
ESME_ESM_TYPES = frozenset({0x00, 0x08, 0x10})

_PAYLOAD = int(Tag.message_payload)


class Invalid(Exception):
    """A request field is invalid; ``status`` is the answer."""

    def __init__(self, status: int, why: str = "") -> None:
        super().__init__(why or hex(status))
        self.status = status


def source_status(ton: int, npi: int) -> int:
    """ESME_RINVSRCTON / ESME_RINVSRCNPI for a bad source TON/NPI, else 0."""
    if ton not in VALID_TON:
        return CommandStatus.ESME_RINVSRCTON
    if npi not in VALID_NPI:
        return CommandStatus.ESME_RINVSRCNPI
    return 0


def dest_status(ton: int, npi: int, address: str) -> int:
    """ESME_RINVDSTTON / ESME_RINVDSTNPI / ESME_RINVDSTADR for a bad destination, else 0."""
    if ton not in VALID_TON:
        return CommandStatus.ESME_RINVDSTTON
    if npi not in VALID_NPI:
        return CommandStatus.ESME_RINVDSTNPI
    if not address:
        return CommandStatus.ESME_RINVDSTADR
    return 0


def message_status(params: Mapping[str, Any], tlvs: Mapping[int, bytes], command: str) -> int:
    """
    The checks of submit_sm, submit_multi and data_sm after the addresses.

    :param params: the PDU's mandatory fields.
    :param tlvs: its TLVs.
    :param command: ``submit_sm``, ``submit_multi`` or ``data_sm`` (which has
        no priority, replace flag or short_message).
    :returns: 0 or the first failing status.
    """
    if params["esm_class"] & ESM_CLASS_TYPE_MASK not in ESME_ESM_TYPES:
        return CommandStatus.ESME_RINVESMCLASS
    if command != "data_sm":
        if params["priority_flag"] > 3:
            return CommandStatus.ESME_RINVPRTFLG
    if params["registered_delivery"] & REGISTERED_DELIVERY_RECEIPT_MASK == 3:
        return CommandStatus.ESME_RINVREGDLVFLG
    if command != "data_sm":
        if params["replace_if_present_flag"] > 1:
            return CommandStatus.ESME_RINVREPFLAG
        if params["short_message"] and _PAYLOAD in tlvs:
            # section 4.4.1: short_message and message_payload must not both be used
            return CommandStatus.ESME_RINVMSGLEN
    return 0


def times(
    schedule: str, validity: str, now: float, settings: CoreSettings
) -> tuple[float | None, float | None]:
    """
    Read schedule_delivery_time and validity_period.

    Relative values are capped at ``max_schedule`` / ``max_validity``; a
    validity already past, or before the scheduled time, is invalid.

    :returns: ``(schedule time or None, validity time or None)`` (``None``: NULL).
    :raises Invalid: ESME_RINVSCHED or ESME_RINVEXPIRY.
    """
    try:
        scheduled = parse_smpp_time(schedule, now)
    except SMPPTimeError as e:
        raise Invalid(CommandStatus.ESME_RINVSCHED, str(e)) from None
    if scheduled is not None and schedule.endswith("R"):
        scheduled = min(scheduled, now + settings.max_schedule)
    try:
        expires = parse_smpp_time(validity, now)
    except SMPPTimeError as e:
        raise Invalid(CommandStatus.ESME_RINVEXPIRY, str(e)) from None
    if expires is not None:
        if validity.endswith("R"):
            expires = min(expires, now + settings.max_validity)
        if expires < now or (scheduled is not None and expires < scheduled):
            raise Invalid(CommandStatus.ESME_RINVEXPIRY, "validity period ends before delivery could start")
    return scheduled, expires


def validity_deadline(expires: float | None, scheduled: float | None, now: float, settings: CoreSettings) -> float:
    """The validity deadline of a message: as given, else the default counted from its (scheduled) start."""
    if expires is not None:
        return expires
    start = scheduled if scheduled is not None and scheduled > now else now
    return start + settings.default_validity
