"""
The SMPP time format (SMPP 3.4 section 7.1) and the dates of receipts.

An SMPP time is ``YYMMDDhhmmsstnnp``: 16 characters (17 octets with the NUL
on the wire; the empty string is NULL).  ``t`` is tenths of a second, ``nn``
the offset from UTC in quarter hours (00..48) and ``p`` is ``+`` (local time
ahead of UTC), ``-`` (behind) or ``R``: then the fields are a duration in
years, months, days, hours, minutes and seconds added to the SMSC's current
time, and ``t`` and ``nn`` are ignored as the spec says.

Two-digit years follow Appendix C: 00-37 are 2000-2037, 38-99 are 1938-1999.

Everything here is computed from the timestamps it is given (POSIX seconds,
from the injected clock), in UTC; nothing asks the system for the time.
"""

from __future__ import annotations

import calendar
import math
from datetime import datetime, timedelta, timezone

#: Length of a non-NULL SMPP time string, NUL excluded.
SMPP_TIME_LENGTH = 16

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DIGITS = frozenset("0123456789")
_FIRST_YEAR = 1938  # Appendix C: the two-digit years cover 1938..2037
_LAST_YEAR = 2037


class SMPPTimeError(ValueError):
    """An SMPP time string is malformed or names no real instant."""


def _year(yy: int) -> int:
    return 2000 + yy if yy <= 37 else 1900 + yy


def _utc(seconds: int) -> datetime:
    # timedelta arithmetic rather than fromtimestamp: exact, and fine before 1970
    return _EPOCH + timedelta(seconds=seconds)


def _posix(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


def add_relative(
    now: float, *, years: int = 0, months: int = 0, days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0
) -> float:
    """
    Add a calendar duration to a timestamp, in UTC.

    Years and months move the calendar date, keeping the day of the month
    when it exists and taking the month's last day when it does not
    (31 January + 1 month = 28 or 29 February); days, hours, minutes and
    seconds are then added as elapsed time.

    :param now: the POSIX timestamp to start from.
    :returns: the POSIX timestamp reached (fractions of ``now`` kept).
    """
    whole = math.floor(now)
    fraction = now - whole
    base = _utc(whole)
    month_index = base.month - 1 + months + 12 * years
    year = base.year + month_index // 12
    month = month_index % 12 + 1
    day = min(base.day, calendar.monthrange(year, month)[1])
    moved = base.replace(year=year, month=month, day=day)
    moved += timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return _posix(moved) + fraction


def parse_smpp_time(value: str, now: float) -> float | None:
    """
    Read an SMPP time (schedule_delivery_time, validity_period...).

    :param value: the time string without its NUL; ``""`` is NULL.
    :param now: the SMSC's current POSIX time, the origin of relative times.
    :returns: the POSIX timestamp meant, or ``None`` for NULL.
    :raises SMPPTimeError: for a wrong length, a non-digit, a ``p`` other
        than ``+``, ``-`` or ``R``, an offset over 48 quarter hours, or an
        absolute date or time of day that does not exist (month 13,
        30 February, hour 24...).
    """
    if value == "":
        return None
    if len(value) != SMPP_TIME_LENGTH:
        raise SMPPTimeError(f"SMPP time {value!r} has {len(value)} characters; YYMMDDhhmmsstnnp has 16")
    digits, sign = value[:15], value[15]
    if not set(digits) <= _DIGITS:
        raise SMPPTimeError(f"SMPP time {value!r}: the first 15 characters must be digits")
    if sign not in "+-R":
        raise SMPPTimeError(f"SMPP time {value!r} ends in {sign!r}; it must be '+', '-' or 'R'")
    yy, mo, dd, hh, mi, ss = (int(digits[i : i + 2]) for i in range(0, 12, 2))
    tenths = int(digits[12])
    quarters = int(digits[13:15])
    if sign == "R":
        # relative fields are a duration, so a count such as 72 hours is accepted as written
        return add_relative(now, years=yy, months=mo, days=dd, hours=hh, minutes=mi, seconds=ss)
    if quarters > 48:
        raise SMPPTimeError(f"SMPP time {value!r}: UTC offset {quarters} is over 48 quarter hours")
    offset = timedelta(minutes=15 * quarters)
    zone = timezone(offset if sign == "+" else -offset)
    try:
        moment = datetime(_year(yy), mo, dd, hh, mi, ss, tzinfo=zone)
    except ValueError as e:
        raise SMPPTimeError(f"SMPP time {value!r} names no real date and time ({e})") from None
    return _posix(moment) + tenths / 10


def _split_tenths(ts: float) -> tuple[int, int]:
    # round first, so 1700000000.3 (stored as ...2999999) keeps its 3 tenths
    total = math.floor(round(ts * 10, 3))
    return total // 10, total % 10


def format_smpp_time(ts: float, relative: bool = False) -> str:
    """
    Write an SMPP time.

    :param ts: a POSIX timestamp, or with ``relative`` a duration in seconds.
    :param relative: write ``ts`` as a relative time (days, hours, minutes,
        seconds; years and months 00, tenths and offset zero), e.g. 2 days is
        ``000002000000000R``.
    :returns: 16 characters: ``YYMMDDhhmmsst00+`` in UTC, or the relative form.
    :raises ValueError: for an absolute time outside 1938..2037 (what two-digit
        years can say), or a negative duration or one of 100 days or more.
    """
    seconds, tenths = _split_tenths(ts)
    if relative:
        if seconds < 0:
            raise ValueError(f"a relative SMPP time cannot be negative ({ts})")
        days, rest = divmod(seconds, 86_400)
        if days > 99:
            raise ValueError(f"{ts} seconds is more than 99 days, too long for a relative SMPP time")
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"
    moment = _utc(seconds)
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
        raise ValueError(f"{moment.isoformat()} is outside 1938..2037, which SMPP's two-digit years cover")
    return f"{moment:%y%m%d%H%M%S}{tenths}00+"


def format_final_date(ts: float) -> str:
    """
    The final_date of a query_sm_resp: absolute, UTC, whole seconds.

    :param ts: the POSIX time the message reached its final state.
    :returns: 16 characters ``YYMMDDhhmmss000+`` (the codec adds the NUL).
    :raises ValueError: outside 1938..2037.
    """
    return format_smpp_time(math.floor(ts))


def format_receipt_date(ts: float) -> str:
    """
    A receipt's ``submit date`` or ``done date``: ``YYMMDDhhmm`` in UTC.

    :param ts: a POSIX timestamp.
    """
    return f"{_utc(math.floor(ts)):%y%m%d%H%M}"
