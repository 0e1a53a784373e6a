"""Tests for smsc_sim.smpp.smpp_time: the SMPP time format and receipt dates."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp.smpp_time import (
    SMPPTimeError,
    format_final_date,
    format_receipt_date,
    format_smpp_time,
    parse_smpp_time,
)

#: 2023-11-14 22:13:20 UTC
NOW = 1_700_000_000.0


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """The POSIX time of a UTC date and time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


class AbsoluteTimeTests(SynchronousTestCase):
    """Absolute SMPP times (``+`` and ``-``)."""

    def test_null(self) -> None:
        """The empty string is NULL: no time."""
        self.assertIsNone(parse_smpp_time("", NOW))

    def test_utc(self) -> None:
        """An absolute time with offset 00 is UTC."""
        self.assertEqual(parse_smpp_time("231114221320000+", 0.0), NOW)

    def test_tenths(self) -> None:
        """The tenths digit adds tenths of a second."""
        parsed = parse_smpp_time("231114221320300+", 0.0)
        assert parsed is not None
        self.assertAlmostEqual(parsed, NOW + 0.3)

    def test_offsets(self) -> None:
        """'+nn' is local time nn quarter hours ahead of UTC, '-nn' behind."""
        self.assertEqual(parse_smpp_time("231115001320008+", 0.0), NOW)
        self.assertEqual(parse_smpp_time("231114201320008-", 0.0), NOW)
        self.assertEqual(parse_smpp_time("231114224320002+", 0.0), NOW)
        self.assertEqual(parse_smpp_time("231115101320048+", 0.0), NOW)

    def test_y2k_rule(self) -> None:
        """Years 00-37 are 2000-2037 and 38-99 are 1938-1999."""
        self.assertEqual(parse_smpp_time("000101000000000+", 0.0), utc(2000, 1, 1))
        self.assertEqual(parse_smpp_time("371231235959000+", 0.0), utc(2037, 12, 31, 23, 59, 59))
        self.assertEqual(parse_smpp_time("380101000000000+", 0.0), utc(1938, 1, 1))
        self.assertEqual(parse_smpp_time("991231000000000+", 0.0), utc(1999, 12, 31))

    def test_leap_day(self) -> None:
        """29 February exists in leap years only."""
        self.assertEqual(parse_smpp_time("240229120000000+", 0.0), utc(2024, 2, 29, 12))
        self.assertRaises(SMPPTimeError, parse_smpp_time, "230229120000000+", 0.0)

    def test_malformed(self) -> None:
        """Wrong length, non-digits, impossible dates, offsets over 48 and a bad last character raise SMPPTimeError."""
        for value in (
            "23111422132000+",
            "2311142213200000+",
            "231114221320000+\x00",
            "2311142213a0000+",
            "23111422132000²+",
            "231314221320000+",
            "231100221320000+",
            "231131221320000+",
            "231114241320000+",
            "231114226020000+",
            "231114221360000+",
            "231114221320049+",
            "231114221320000X",
            "231114221320000 ",
        ):
            with self.assertRaises(SMPPTimeError, msg=value):
                parse_smpp_time(value, NOW)

    def test_error_is_value_error(self) -> None:
        """SMPPTimeError is a ValueError, with a message quoting the bad value."""
        with self.assertRaises(ValueError) as caught:
            parse_smpp_time("991399000000000+", NOW)
        self.assertIn("991399000000000+", str(caught.exception))


class RelativeTimeTests(SynchronousTestCase):
    """Relative SMPP times (``R``)."""

    def test_simple_durations(self) -> None:
        """Days, hours, minutes and seconds are added to now."""
        self.assertEqual(parse_smpp_time("000001000000000R", NOW), NOW + 86_400)
        self.assertEqual(parse_smpp_time("000000010203000R", NOW), NOW + 3723)

    def test_spec_example(self) -> None:
        """020610233429000R is 2 years, 6 months, 10 days, 23:34:29 later."""
        start = utc(2020, 1, 1)
        self.assertEqual(parse_smpp_time("020610233429000R", start), utc(2022, 7, 11, 23, 34, 29))

    def test_months_across_year_end(self) -> None:
        """Adding months across a year end moves to the right month of the next year."""
        self.assertEqual(parse_smpp_time("000100000000000R", utc(2023, 12, 15, 8)), utc(2024, 1, 15, 8))
        self.assertEqual(parse_smpp_time("001400000000000R", utc(2023, 11, 1)), utc(2025, 1, 1))

    def test_month_end_clamped(self) -> None:
        """31 January plus one month is the last day of February; 29 February plus a year is 28 February."""
        self.assertEqual(parse_smpp_time("000100000000000R", utc(2024, 1, 31, 10)), utc(2024, 2, 29, 10))
        self.assertEqual(parse_smpp_time("000100000000000R", utc(2023, 1, 31, 10)), utc(2023, 2, 28, 10))
        self.assertEqual(parse_smpp_time("010000000000000R", utc(2024, 2, 29)), utc(2025, 2, 28))

    def test_tenths_and_offset_ignored(self) -> None:
        """In a relative time, tenths and the offset are ignored, as the spec says."""
        self.assertEqual(parse_smpp_time("000000000010999R", NOW), NOW + 10)

    def test_large_counts(self) -> None:
        """A count beyond the calendar unit (72 hours) is a duration and accepted as written."""
        self.assertEqual(parse_smpp_time("000000720000000R", NOW), NOW + 3 * 86_400)

    def test_fraction_of_now_kept(self) -> None:
        """The fraction of a second of now is carried over."""
        self.assertEqual(parse_smpp_time("000000000001000R", NOW + 0.25), NOW + 1.25)

    def test_bad_relative(self) -> None:
        """A relative time with non-digits is malformed."""
        self.assertRaises(SMPPTimeError, parse_smpp_time, "00000100000000aR", NOW)


class FormatTests(SynchronousTestCase):
    """Writing SMPP times and receipt dates."""

    def test_absolute(self) -> None:
        """An absolute time is written in UTC with offset 00+."""
        self.assertEqual(format_smpp_time(NOW), "231114221320000+")
        self.assertEqual(format_smpp_time(NOW + 0.3), "231114221320300+")
        self.assertEqual(format_smpp_time(utc(1999, 12, 31, 23, 59, 59)), "991231235959000+")

    def test_absolute_range(self) -> None:
        """Times two-digit years cannot say (before 1938, after 2037) are refused."""
        self.assertRaises(ValueError, format_smpp_time, utc(2038, 1, 1))
        self.assertRaises(ValueError, format_smpp_time, utc(1937, 12, 31))

    def test_relative(self) -> None:
        """A duration is written as a relative time in days, hours, minutes and seconds."""
        self.assertEqual(format_smpp_time(2 * 86_400, relative=True), "000002000000000R")
        self.assertEqual(format_smpp_time(90_061, relative=True), "000001010101000R")
        self.assertEqual(parse_smpp_time(format_smpp_time(90_061, relative=True), NOW), NOW + 90_061)
        self.assertRaises(ValueError, format_smpp_time, -1, relative=True)
        self.assertRaises(ValueError, format_smpp_time, 100 * 86_400, relative=True)

    def test_receipt_date(self) -> None:
        """A receipt date is YYMMDDhhmm in UTC, seconds dropped."""
        self.assertEqual(format_receipt_date(NOW), "2311142213")
        self.assertEqual(format_receipt_date(utc(2016, 1, 1, 1, 0, 59)), "1601010100")

    def test_final_date(self) -> None:
        """query_sm_resp's final_date is the 16-character absolute form in whole seconds."""
        self.assertEqual(format_final_date(NOW + 0.9), "231114221320000+")

    @given(st.floats(min_value=utc(1938, 1, 1), max_value=utc(2037, 12, 31, 23, 59, 59)))
    @settings(deadline=None)
    def test_round_trip(self, ts: float) -> None:
        """Any time of 1938..2037 written and read back is the same to the tenth of a second."""
        back = parse_smpp_time(format_smpp_time(ts), 0.0)
        assert back is not None
        self.assertLess(abs(back - ts), 0.1 + 1e-6)
