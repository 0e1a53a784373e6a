"""
Message ids, unique in the process.

The provider answers submit_sm with 16 upper-case hex digits
(``0B00000127FDBC63``) and writes the same number in decimal in receipts
(smpp-facts.md A.8).  Every id here is a number drawn from one process-wide
counter, so ids never repeat across cores; its base mixes in the start time
(from the first core's injected clock) so that a restarted simulator does
not hand out the ids of the previous run.
"""

from __future__ import annotations

import itertools
from typing import Iterator

#: The top octet of every id, as in the provider's ids.
_PREFIX = 0x0B << 56

_counter: Iterator[int] | None = None

#: The forms :func:`format_message_id` knows.
MESSAGE_ID_FORMATS = ("hex16", "decimal")


def _start(now: float) -> Iterator[int]:
    # 32 bits of start time above a 24-bit counter: 16 million ids per
    # second of uptime before the ranges of two runs could meet
    base = _PREFIX | ((int(now) & 0xFFFFFFFF) << 24)
    return itertools.count(base + 1)


def next_message_number(now: float) -> int:
    """
    The next message number of the process.

    :param now: the caller's clock reading; only the first call uses it.
    """
    global _counter
    if _counter is None:
        _counter = _start(now)
    return next(_counter)


def format_message_id(number: int, fmt: str) -> str:
    """
    Write a message number as a message_id.

    :param number: from :func:`next_message_number`.
    :param fmt: ``hex16`` (16 upper-case hex digits) or ``decimal``.
    :raises ValueError: for an unknown format.
    """
    if fmt == "hex16":
        return f"{number:016X}"
    if fmt == "decimal":
        return str(number)
    raise ValueError(f"message_id_format {fmt!r} is not one of {', '.join(MESSAGE_ID_FORMATS)}")


def hex_id(number: int) -> str:
    """The number as 16 upper-case hex digits (the form receipt formatting starts from)."""
    return f"{number:016X}"
