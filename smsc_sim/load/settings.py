"""
What a load run does (:class:`LoadSettings`, the command line's options), and
the submit_sm every message of it is patched from.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsc_sim.smpp.codec import encode
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import make_pdu

__all__ = ["LoadSettings", "UNIQUE_DIGITS", "submit_template", "unique_offsets"]

@dataclass(frozen=True)
class LoadSettings:
    """What to run; the command line's options, validated by :func:`parse_args`."""

    targets: tuple[tuple[str, int], ...]
    system_id: str = "smppclient1"
    password: str = "password"
    #: ``trx`` (one transceiver per session) or ``tx+rx`` (a transmitter and a receiver)
    bind: str = "trx"
    sessions: int = 1
    #: most submit_sm outstanding per session
    window: int = 10
    #: messages per second over all sessions; 0 = flat out
    rate: float = 0.0
    #: stop after this many submits (0 = no limit)
    count: int = 0
    #: stop submitting after this many seconds (0 = no limit)
    duration: float = 0.0
    receipts: bool = False
    #: bind and answer (receipts, MO, enquire_link) but never submit: the receiver of an MO flood
    listen_only: bool = False
    text: str = "Hello from smsc-sim-load"
    source: str = "447700900001"
    destination: str = "447700900002"
    #: after the last submit_sm_resp, how long to wait for missing receipts
    receipt_timeout: float = 30.0
    #: how long the binds and the last submit_sm_resp may take
    response_timeout: float = 10.0
    #: seconds between progress lines on stderr; 0 = none
    progress: float = 1.0
    #: seconds between enquire_link on each bound session; 0 = none
    enquire_link: float = 0.0
    #: most connections being opened and bound at once
    connect_concurrency: int = 200
    #: every message its own destination (the last 8 digits count up) and text (8 digits in front)
    unique: bool = False


#: digits of the counter --unique writes into each message's destination and text
UNIQUE_DIGITS = 8


def message_of(settings: LoadSettings) -> tuple[str, str, str]:
    """The destination and text of the template, and the text's codec (with room for the counter of --unique)."""
    destination, text = settings.destination, settings.text
    if settings.unique:
        destination = destination[: max(0, len(destination) - UNIQUE_DIGITS)] + "0" * UNIQUE_DIGITS
        text = "0" * UNIQUE_DIGITS + " " + text
    try:
        text.encode("latin-1")
        return destination, text, "latin-1"
    except UnicodeEncodeError:
        return destination, text, "utf-16-be"


def submit_template(settings: LoadSettings) -> bytearray:
    """The submit_sm of every message, encoded once; bytes 12..16 take the sequence number."""
    destination, text, codec = message_of(settings)
    pdu = make_pdu(
        CommandId.submit_sm, 1,
        source_addr_ton=1, source_addr_npi=1, source_addr=settings.source,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
        registered_delivery=1 if settings.receipts else 0, data_coding=0 if codec == "latin-1" else 8,
        short_message=text.encode(codec),
    )  # fmt: skip
    return bytearray(encode(pdu))


def unique_offsets(settings: LoadSettings) -> tuple[int, int, int]:
    """
    Where --unique writes its counter in the template: the end of
    destination_addr, the start of short_message, and the octets per digit there.
    """
    destination, _, codec = message_of(settings)
    # header, service_type "" (its NUL), source TON and NPI, source_addr and NUL, dest TON and NPI
    destination_end = 16 + 1 + 2 + len(settings.source) + 1 + 2 + len(destination)
    # the NUL, esm_class, protocol_id, priority_flag, two empty times, registered_delivery,
    # replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
    text_start = destination_end + 1 + 10
    return destination_end, text_start, 1 if codec == "latin-1" else 2

