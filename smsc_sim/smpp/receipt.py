"""
Delivery receipt text: building it in the provider's form and reading it back.

The provider's form (smpp-facts.md A.9), every field always present::

    id:<id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:none

``id`` is the message id in the account's receipt id format (decimal by
default, while submit_sm_resp carries it in hex, smpp-facts.md A.8); the
dates are UTC minutes from the injected clock.
"""

from __future__ import annotations

import re

from smsc_sim.smpp.constants import RECEIPT_STAT
from smsc_sim.smpp.smpp_time import format_receipt_date

#: Every ``stat:`` word a receipt may carry.
STATS = frozenset(RECEIPT_STAT.values())

#: The provider's ``err:`` codes and their meaning (smpp-facts.md A.9).
ERR_CODES: dict[int, str] = {
    0: "Delivered",
    1: "Unknown",
    2: "Absent Subscriber - Temporary",
    3: "Absent Subscriber - Permanent",
    4: "Call Barred by User",
    5: "Portability Error",
    6: "Anti-Spam Rejection",
    7: "Handset Busy",
    8: "Network Error",
    9: "Illegal Number",
    10: "Illegal Message",
    11: "Unroutable",
    12: "Destination Unreachable",
    13: "Subscriber Age Restriction",
    14: "Number Blocked by Carrier",
    15: "Prepaid Insufficient Funds",
    50: "Entity Filter",
    51: "Header Filter",
    52: "Content Filter",
    53: "Consent Filter",
    54: "Regulation Error",
    99: "General Error",
}

#: The ``err:`` a receipt carries when a scenario names only the ``stat:``.
#: The provider gives err only for states other than DELIVRD and ACCEPTD, so
#: those (and ENROUTE) have 0.  A message expires when the handset stays out
#: of reach, hence 2 (absent subscriber, temporary); a message lost for no
#: given cause is 1 (unknown); rejection and deletion are the SMSC's own
#: doing, hence 99 (general error).
STAT_DEFAULT_ERR: dict[str, int] = {
    "DELIVRD": 0,
    "ACCEPTD": 0,
    "ENROUTE": 0,
    "EXPIRED": 2,
    "UNDELIV": 1,
    "UNKNOWN": 1,
    "REJECTD": 6,
    "DELETED": 99,
}

#: The ways :func:`format_receipt_id` writes an id.
RECEIPT_ID_FORMATS = ("decimal", "padded-decimal", "hex", "hex-lower", "wrong")

# 2**64: added to make the "wrong" id, which then exceeds every 16-hex-digit id
_WRONG_OFFSET = 1 << 64

# receipt dates by UTC minute: the text changes once a minute, formatting it costs 7 µs
_DATES: dict[int, str] = {}
_DATES_KEPT = 256


def receipt_date(ts: float) -> str:
    """
    ``YYMMDDhhmm`` of a POSIX time (:func:`~smsc_sim.smpp.smpp_time.format_receipt_date`),
    from a small cache by minute: every receipt writes two of these.
    """
    minute = int(ts // 60)
    text = _DATES.get(minute)
    if text is None:
        if len(_DATES) >= _DATES_KEPT:
            _DATES.clear()  # submit dates of old messages come and go; the current minutes come back at once
        text = _DATES[minute] = format_receipt_date(ts)
    return text


def format_receipt_id(message_id_hex: str, fmt: str) -> str:
    """
    Write a message id (hexadecimal, as in submit_sm_resp) the way a receipt's ``id:`` carries it.

    - ``decimal``: the same number in decimal, no padding (the provider's default);
    - ``padded-decimal``: decimal, zero-padded to 20 digits;
    - ``hex``: the hex id in upper case; ``hex-lower``: in lower case;
    - ``wrong``: decimal of the id plus 2**64, for negative tests.  It is
      stable for a given id, and matches no message: as a number it exceeds
      every 64-bit id, so it equals no id in any of the other forms (while
      ``decimal + 1`` could be the next message's id).

    :param message_id_hex: the id as in submit_sm_resp.
    :param fmt: one of :data:`RECEIPT_ID_FORMATS`.
    :raises ValueError: for an unknown format or an id that is not hexadecimal.
    """
    if fmt not in RECEIPT_ID_FORMATS:
        raise ValueError(f"receipt id format {fmt!r} is not one of {', '.join(RECEIPT_ID_FORMATS)}")
    if not re.fullmatch(r"[0-9A-Fa-f]+", message_id_hex):
        raise ValueError(f"message id {message_id_hex!r} is not hexadecimal")
    if fmt == "hex":
        return message_id_hex.upper()
    if fmt == "hex-lower":
        return message_id_hex.lower()
    number = int(message_id_hex, 16)
    if fmt == "decimal":
        return str(number)
    if fmt == "padded-decimal":
        return f"{number:020d}"
    return str(number + _WRONG_OFFSET)


def receipt_text(
    message_id: str,
    stat: str,
    err: int,
    submit_ts: float,
    done_ts: float,
    *,
    sub: int = 1,
    dlvrd: int | None = None,
    text: str = "none",
) -> str:
    """
    The short_message text of a delivery receipt, in the provider's form.

    :param message_id: the id as the receipt carries it (see :func:`format_receipt_id`).
    :param stat: the final state word, one of :data:`STATS`.
    :param err: the ``err:`` code, 0..999, written with 3 digits.
    :param submit_ts: POSIX time the message was submitted.
    :param done_ts: POSIX time it reached this state.
    :param sub: ``sub:``, 0..999.
    :param dlvrd: ``dlvrd:``, 0..999; ``None``: 1 for DELIVRD, else 0.
    :param text: the ``text:`` field, cut to its first 20 characters (the
        spec's field size); the provider always writes ``none``.
    :raises ValueError: for an unknown stat or a number out of range.
    """
    if stat not in STATS:
        raise ValueError(f"stat {stat!r} is not one of {', '.join(sorted(STATS))}")
    if dlvrd is None:
        dlvrd = 1 if stat == "DELIVRD" else 0
    for name, number in (("err", err), ("sub", sub), ("dlvrd", dlvrd)):
        if not 0 <= number <= 999:
            raise ValueError(f"{name} {number} is outside 0..999")
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{dlvrd:03d}"
        f" submit date:{receipt_date(submit_ts)} done date:{receipt_date(done_ts)}"
        f" stat:{stat} err:{err:03d} text:{text[:20]}"
    )


# A field name: "submit date", "done date", or one word, at the start or after whitespace.
_KEY = re.compile(r"(?:^|(?<=\s))(submit date|done date|[A-Za-z_]+):", re.IGNORECASE)
_TEXT_KEY = re.compile(r"(?:^|(?<=\s))text:", re.IGNORECASE)


def parse_receipt(text: str) -> dict[str, str]:
    """
    Read the fields of receipt text, leniently.

    Field names are matched in any case (the spec writes ``Text:``) and
    returned in lower case (``id``, ``sub``, ``dlvrd``, ``submit date``,
    ``done date``, ``stat``, ``err``, ``text``, and any other ``name:``).
    Missing fields are simply absent.  Everything after ``text:`` is the
    text, whatever it holds.  Values are stripped of surrounding spaces.

    :param text: the short_message of a receipt, decoded.
    :returns: field name -> value.
    """
    fields: dict[str, str] = {}
    text_match = _TEXT_KEY.search(text)
    head = text if text_match is None else text[: text_match.start()]
    keys = list(_KEY.finditer(head))
    for key, following in zip(keys, keys[1:] + [None]):
        end = len(head) if following is None else following.start()
        fields[key.group(1).lower()] = head[key.end() : end].strip()
    if text_match is not None:
        fields["text"] = text[text_match.end() :].strip()
    return fields
