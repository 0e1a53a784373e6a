"""
Building delivery receipts (deliver_sm or data_sm) from a message record.

A receipt goes from the original destination to the original source (TON
and NPI swapped likewise), with esm_class 0x04 (0x20 for an intermediate
notification), the provider's text, and the TLVs receipted_message_id
(exactly the submit_sm_resp id unless the plan says otherwise),
message_state and, when the plan gives one, network_error_code.  The router
strips every TLV for an ESME bound with interface_version below 0x34.
"""

from __future__ import annotations

from typing import Any

from smsc_sim.contracts import ReceiptPlan
from smsc_sim.core.ids import hex_id
from smsc_sim.core.store import MessageRecord
from smsc_sim.smpp.constants import (
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_INTERMEDIATE_NOTIFICATION,
    CommandId,
    MessageState,
    Tag,
)
from smsc_sim.smpp.pdu import PDU, make_pdu, tlv_cstring
from smsc_sim.smpp.receipt import format_receipt_id, receipt_text

_RECEIPTED_MESSAGE_ID = int(Tag.receipted_message_id)
_MESSAGE_STATE = int(Tag.message_state)
_NETWORK_ERROR_CODE = int(Tag.network_error_code)
_MESSAGE_PAYLOAD = int(Tag.message_payload)
#: the provider's MCC+MNC TLV (smpp-facts.md A.11)
_VENDOR_NETWORK = 0x1402

#: The plan used for receipts of records that have none (forced receipts, say).
DEFAULT_PLAN = ReceiptPlan()


def receipt_ids(record: MessageRecord, plan: ReceiptPlan, account_format: str = "decimal") -> tuple[str, str | None]:
    """
    The ids a receipt carries: in its text, and in receipted_message_id.

    :param account_format: the account's ``receipt_id_format`` (``decimal`` or ``hex``), used
        when the plan's ``id_format`` is the default ``decimal``.
    :returns: ``(text id, TLV id or None when the plan omits the TLV)``.
    """
    hex_form = hex_id(record.number)
    id_format = plan.id_format
    if id_format == "decimal":
        id_format = account_format
    # the provider's decimal form is the number itself: skip the general formatter on the hot path
    text_id = str(record.number) if id_format == "decimal" else format_receipt_id(hex_form, id_format)
    if plan.tlv_id_format == "omit":
        return text_id, None
    if plan.tlv_id_format == "as-submitted":
        return text_id, record.message_id
    return text_id, format_receipt_id(hex_form, plan.tlv_id_format)


def build_receipt(
    record: MessageRecord,
    stat: str,
    err: int,
    state: MessageState,
    done_ts: float,
    plan: ReceiptPlan | None,
    as_data_sm: bool = False,
    intermediate: bool = False,
    account_id_format: str = "decimal",
    network: bytes | None = None,
) -> PDU:
    """
    The receipt PDU for a record reaching ``stat``.

    :param record: the message receipted.
    :param stat: the ``stat:`` word.
    :param err: the ``err:`` code (clamped to 0..999 for the text).
    :param state: the message_state TLV value.
    :param done_ts: the ``done date``.
    :param plan: id formats, network_error_code; ``None``: the defaults.
    :param as_data_sm: send as data_sm (text in message_payload) instead of deliver_sm.
    :param intermediate: an intermediate notification (esm_class 0x20).
    :param account_id_format: the account's ``receipt_id_format`` (see :func:`receipt_ids`).
    :param network: the value of the vendor TLV 0x1402 (MCC and MNC of the destination), if any.
    """
    plan = plan or DEFAULT_PLAN
    text_id, tlv_id = receipt_ids(record, plan, account_id_format)
    submitted = record.replaced_time if record.replaced_time is not None else record.submit_time
    text = receipt_text(text_id, stat, min(max(err, 0), 999), submitted, done_ts).encode("ascii")
    tlvs: dict[int, bytes] = {}
    if tlv_id is not None:
        tlvs[_RECEIPTED_MESSAGE_ID] = tlv_cstring(tlv_id)
    tlvs[_MESSAGE_STATE] = bytes([int(state)])
    if plan.network_error_code is not None:
        tlvs[_NETWORK_ERROR_CODE] = plan.network_error_code
    if network is not None:
        tlvs[_VENDOR_NETWORK] = network
    esm_class = ESM_CLASS_INTERMEDIATE_NOTIFICATION if intermediate else ESM_CLASS_DELIVERY_RECEIPT
    if as_data_sm:
        tlvs[_MESSAGE_PAYLOAD] = text
        return make_pdu(
            CommandId.data_sm,
            0,
            tlvs=tlvs,
            esm_class=esm_class,
            source_addr_ton=record.dest_ton,
            source_addr_npi=record.dest_npi,
            source_addr=record.destination_addr,
            dest_addr_ton=record.source_ton,
            dest_addr_npi=record.source_npi,
            destination_addr=record.source_addr,
        )
    # every deliver_sm field spelled out (cheaper than make_pdu's defaults on the receipt path)
    params: dict[str, Any] = {
        "service_type": "",
        "source_addr_ton": record.dest_ton,
        "source_addr_npi": record.dest_npi,
        "source_addr": record.destination_addr,
        "dest_addr_ton": record.source_ton,
        "dest_addr_npi": record.source_npi,
        "destination_addr": record.source_addr,
        "esm_class": esm_class,
        "protocol_id": 0,
        "priority_flag": 0,
        "schedule_delivery_time": "",
        "validity_period": "",
        "registered_delivery": 0,
        "replace_if_present_flag": 0,
        "data_coding": 0,
        "sm_default_msg_id": 0,
        "short_message": text,
    }
    return PDU(CommandId.deliver_sm, 0, 0, params, tlvs)
