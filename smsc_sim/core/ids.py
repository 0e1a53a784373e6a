"""
Message ids, unique in the process.

The provider answers submit_sm with 16 upper-case hex digits
(``0B00000127FDBC63``) and writes the same number in decimal in receipts
(smpp-facts.md A.8).  Every id here is a number drawn from one process-wide
allocator (:class:`IdAllocator`) that the cores of a process share, so ids
never repeat across cores; its base mixes in the start time (from the first
core's injected clock) so that a restarted simulator does
not hand out the ids of the previous run.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Protocol

#: The top octet of every id, as in the provider's ids.
_PREFIX = 0x0B << 56

#: The forms :func:`format_message_id` knows.
MESSAGE_ID_FORMATS = ("hex16", "decimal")


class NoIdAvailable(Exception):
    """No message number can be drawn now (the cluster's numbers come from a store that is not answering)."""


class IMessageNumbers(Protocol):
    """
    Where a core draws its message numbers: this process's
    :class:`IdAllocator`, or a cluster's shared counter (``cluster_store``).
    """

    def next(self, now: float) -> int:
        """
        The next message number.

        :raises NoIdAvailable: when none can be drawn now (the caller refuses with ESME_RSYSERR).
        """

    def advance_past(self, number: int, now: float) -> None:
        """Make every later number greater than ``number`` (a restored message's)."""


class IdAllocator:
    """
    Message numbers from one counter: every core of a process draws from the
    same allocator, so that ids never repeat across cores.

    The counter starts on the first draw, from that caller's clock reading.
    """

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        self._counter: Iterator[int] | None = None

    def next(self, now: float) -> int:
        """
        The next message number.

        :param now: the caller's clock reading; only the first draw uses it.
        """
        counter = self._counter
        if counter is None:
            counter = self._counter = _start(now)
        return next(counter)

    def advance_past(self, number: int, now: float) -> None:
        """
        Make every later number greater than ``number`` (a restored message's:
        a restart within the same second would otherwise repeat it).

        :param now: the caller's clock reading, should this be the first use.
        """
        if number >> 56 > _PREFIX >> 56:
            return  # an all-digit id (:func:`digits_number`) above the counter's range: not one of its numbers
        if self.next(now) <= number:
            self._counter = itertools.count(number + 1)


def counter_base(now: float) -> int:
    """
    Where a counter of message numbers starts at ``now``: the provider's top
    octet, then 32 bits of start time above a 24-bit counter, so 16 million
    ids per second of uptime before the ranges of two runs could meet.
    """
    return _PREFIX | ((int(now) & 0xFFFFFFFF) << 24)


def _start(now: float) -> Iterator[int]:
    return itertools.count(counter_base(now) + 1)


#: The allocator of the process: simulators in one process (as in tests) share it, as their cores do.
PROCESS_IDS = IdAllocator()


def format_message_id(number: int, fmt: str) -> str:
    """
    Write a message number as a message_id.

    :param number: from :meth:`IdAllocator.next`.
    :param fmt: ``hex16`` (16 upper-case hex digits) or ``decimal``.
    :raises ValueError: for an unknown format.
    """
    if fmt == "hex16":
        return f"{number:016X}"
    if fmt == "decimal":
        return str(number)
    raise ValueError(f"message_id_format {fmt!r} is not one of {', '.join(MESSAGE_ID_FORMATS)}")


_DIGITS_MODULUS = 10**16


def counted(number: int) -> bool:
    """Whether ``number`` is in the counter's range (not an all-digit id of :func:`digits_number`)."""
    return number >> 56 == _PREFIX >> 56


def digits_number(number: int) -> int:
    """
    A message number whose 16-digit hex form has only the digits 0-9.

    For accounts with ``message_id_digits``: the last 16 decimal digits of
    ``number`` read as hex, so ``1154801617207301`` in submit_sm_resp, an id
    a client cannot tell from a decimal one (Kannel's ``msg-id-type`` trap),
    while the receipt carries the same number in decimal
    (``1248763829054108417``), as for every id.  Distinct numbers of one run stay distinct (they
    differ by far less than 10**16).

    :param number: from :meth:`IdAllocator.next`.
    """
    return int(str(number % _DIGITS_MODULUS), 16)


def hex_id(number: int) -> str:
    """The number as 16 upper-case hex digits (the form receipt formatting starts from)."""
    return f"{number:016X}"
