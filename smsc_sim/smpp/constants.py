"""
SMPP 3.4 wire constants: command ids, command statuses, TLV tags and field values.

These are plain ``IntEnum`` classes whose values are the numbers on the wire, so
``int(CommandStatus.ESME_RTHROTTLED) == 0x58``.  smpp.pdu3's own enums number
their members 1, 2, 3... (smpp-facts.md C.2 #9), so nothing outside the codec
should use them.
"""

from __future__ import annotations

import enum


class CommandId(enum.IntEnum):
    """SMPP 3.4 command ids (section 5.1.2.1)."""

    generic_nack = 0x80000000
    bind_receiver = 0x00000001
    bind_receiver_resp = 0x80000001
    bind_transmitter = 0x00000002
    bind_transmitter_resp = 0x80000002
    query_sm = 0x00000003
    query_sm_resp = 0x80000003
    submit_sm = 0x00000004
    submit_sm_resp = 0x80000004
    deliver_sm = 0x00000005
    deliver_sm_resp = 0x80000005
    unbind = 0x00000006
    unbind_resp = 0x80000006
    replace_sm = 0x00000007
    replace_sm_resp = 0x80000007
    cancel_sm = 0x00000008
    cancel_sm_resp = 0x80000008
    bind_transceiver = 0x00000009
    bind_transceiver_resp = 0x80000009
    outbind = 0x0000000B
    enquire_link = 0x00000015
    enquire_link_resp = 0x80000015
    submit_multi = 0x00000021
    submit_multi_resp = 0x80000021
    alert_notification = 0x00000102
    data_sm = 0x00000103
    data_sm_resp = 0x80000103


#: Bit 31 marks a response command id.
RESPONSE_BIT = 0x80000000


def response_id(command_id: int) -> int:
    """
    The command id of the response to a request.

    :param command_id: a request command id.
    :returns: the same id with the response bit set.
    """
    return command_id | RESPONSE_BIT


def is_response(command_id: int) -> bool:
    """
    Whether ``command_id`` names a response PDU (generic_nack included).

    :param command_id: any command id.
    """
    return bool(command_id & RESPONSE_BIT)


class CommandStatus(enum.IntEnum):
    """SMPP 3.4 command_status values (section 5.1.3)."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


def status_name(status: int) -> str:
    """
    A readable name for any command_status, including vendor-specific ones.

    :param status: a command_status value.
    :returns: ``ESME_RTHROTTLED`` for a known status, ``0x00000401`` otherwise.
    """
    known = _STATUS_NAMES.get(status)
    return known if known is not None else f"0x{status:08X}"


#: command_status -> name, for :func:`status_name` (asked of every PDU by the metrics: a dict beats an enum call)
_STATUS_NAMES: dict[int, str] = {int(status): status.name for status in CommandStatus}


def parse_status(value: str | int) -> int:
    """
    Read a command_status written by a person: a name or a number.

    :param value: ``"ESME_RTHROTTLED"``, ``"RTHROTTLED"``, ``"0x58"``, ``"88"`` or ``88``.
    :returns: the wire value.
    :raises ValueError: when the value names no status or is out of range.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a command_status")
    if isinstance(value, int):
        number = value
    else:
        text = value.strip()
        upper = text.upper()
        for candidate in (upper, "ESME_" + upper):
            if candidate in CommandStatus.__members__:
                return int(CommandStatus[candidate])
        try:
            number = int(text, 0)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a command_status name (such as ESME_RTHROTTLED) "
                "nor a number (such as 0x58)"
            ) from None
    if not 0 <= number <= 0xFFFFFFFF:
        raise ValueError(f"command_status {number} is outside 0..0xFFFFFFFF")
    return number


#: Vendor-specific command_status range (section 5.1.3).
VENDOR_STATUS_MIN = 0x00000400
VENDOR_STATUS_MAX = 0x000004FF


class Tag(enum.IntEnum):
    """Optional parameter (TLV) tags of SMPP 3.4 (section 5.3.2)."""

    dest_addr_subunit = 0x0005
    dest_network_type = 0x0006
    dest_bearer_type = 0x0007
    dest_telematics_id = 0x0008
    source_addr_subunit = 0x000D
    source_network_type = 0x000E
    source_bearer_type = 0x000F
    source_telematics_id = 0x0010
    qos_time_to_live = 0x0017
    payload_type = 0x0019
    additional_status_info_text = 0x001D
    receipted_message_id = 0x001E
    ms_msg_wait_facilities = 0x0030
    privacy_indicator = 0x0201
    source_subaddress = 0x0202
    dest_subaddress = 0x0203
    user_message_reference = 0x0204
    user_response_code = 0x0205
    source_port = 0x020A
    destination_port = 0x020B
    sar_msg_ref_num = 0x020C
    language_indicator = 0x020D
    sar_total_segments = 0x020E
    sar_segment_seqnum = 0x020F
    sc_interface_version = 0x0210
    callback_num_pres_ind = 0x0302
    callback_num_atag = 0x0303
    number_of_messages = 0x0304
    callback_num = 0x0381
    dpf_result = 0x0420
    set_dpf = 0x0421
    ms_availability_status = 0x0422
    network_error_code = 0x0423
    message_payload = 0x0424
    delivery_failure_reason = 0x0425
    more_messages_to_send = 0x0426
    message_state = 0x0427
    ussd_service_op = 0x0501
    display_time = 0x1201
    sms_signal = 0x1203
    ms_validity = 0x1204
    alert_on_message_delivery = 0x130C
    its_reply_type = 0x1380
    its_session_info = 0x1383


class MessageState(enum.IntEnum):
    """message_state values (section 5.2.28), used in query_sm_resp and receipts."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


#: The ``stat:`` word of a receipt for each message state (Appendix B).
RECEIPT_STAT = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}

#: The message state for each receipt ``stat:`` word.
STAT_STATE = {stat: state for state, stat in RECEIPT_STAT.items()}

#: Final message states: a message in one of these never changes again
#: (ACCEPTED too: SMPP 3.4 section 5.2.28 lists it as a final state).
FINAL_STATES = frozenset(
    {
        MessageState.ACCEPTED,
        MessageState.DELIVERED,
        MessageState.EXPIRED,
        MessageState.DELETED,
        MessageState.UNDELIVERABLE,
        MessageState.UNKNOWN,
        MessageState.REJECTED,
    }
)


class BindType(enum.Enum):
    """The three kinds of bind an ESME can ask for."""

    transmitter = "transmitter"
    receiver = "receiver"
    transceiver = "transceiver"

    @property
    def can_submit(self) -> bool:
        """Whether this bind may send submit_sm and friends."""
        return self is not BindType.receiver

    @property
    def can_receive(self) -> bool:
        """Whether this bind may be sent deliver_sm."""
        return self is not BindType.transmitter


#: bind command id -> bind type
BIND_TYPES = {
    CommandId.bind_transmitter: BindType.transmitter,
    CommandId.bind_receiver: BindType.receiver,
    CommandId.bind_transceiver: BindType.transceiver,
}

# esm_class bits (section 5.2.12)
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_DELIVERY_RECEIPT = 0x04
ESM_CLASS_INTERMEDIATE_NOTIFICATION = 0x20
ESM_CLASS_UDHI = 0x40
ESM_CLASS_REPLY_PATH = 0x80

# registered_delivery bits (section 5.2.17)
REGISTERED_DELIVERY_RECEIPT_MASK = 0x03
RECEIPT_NONE = 0x00
RECEIPT_ALWAYS = 0x01
RECEIPT_ON_FAILURE = 0x02
REGISTERED_DELIVERY_INTERMEDIATE = 0x10

#: interface_version of SMPP 3.4 (bind PDUs and sc_interface_version)
INTERFACE_VERSION_34 = 0x34

#: Statuses of deliver_sm_resp that the provider treats as temporary (retry).
PROVIDER_TEMPORARY_DELIVER_STATUSES = frozenset({0x58, 0x08, 0x14, 0x45, 0x67, 0xFE, 0xFF})
