"""Tests for smsc_sim.smpp.receipt: delivery receipt text and receipt ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp.receipt import (
    ERR_CODES,
    RECEIPT_ID_FORMATS,
    STAT_DEFAULT_ERR,
    STATS,
    format_receipt_id,
    parse_receipt,
    receipt_date,
    receipt_text,
)
from smsc_sim.smpp.smpp_time import format_receipt_date

#: 2023-11-14 22:13:20 UTC
NOW = 1_700_000_000.0
#: 2016-01-01 01:00:00 UTC, the date of the provider's example receipt
PROVIDER_SUBMIT = 1_451_610_000.0

PROVIDER_EXAMPLE = (
    "id:0000000012345678 sub:001 dlvrd:001 submit date:1601010100 done date:1601010101 stat:DELIVRD err:000 text:none"
)


class ReceiptTextTests(SynchronousTestCase):
    """Building receipt text in the provider's form."""

    def test_provider_example(self) -> None:
        """The provider's documented example receipt is reproduced exactly."""
        text = receipt_text("0000000012345678", "DELIVRD", 0, PROVIDER_SUBMIT, PROVIDER_SUBMIT + 60)
        self.assertEqual(text, PROVIDER_EXAMPLE)

    def test_delivered_with_pinned_clock(self) -> None:
        """A delivered message's receipt has dlvrd:001, err:000, UTC minute dates and text:none."""
        text = receipt_text("792633539383114851", "DELIVRD", 0, NOW, NOW + 65)
        self.assertEqual(
            text,
            "id:792633539383114851 sub:001 dlvrd:001 submit date:2311142213 done date:2311142214"
            " stat:DELIVRD err:000 text:none",
        )

    def test_undelivered(self) -> None:
        """A failed message's receipt has dlvrd:000 and its err zero-padded to 3 digits."""
        text = receipt_text("42", "UNDELIV", 1, NOW, NOW)
        self.assertEqual(
            text, "id:42 sub:001 dlvrd:000 submit date:2311142213 done date:2311142213 stat:UNDELIV err:001 text:none"
        )
        self.assertIn("stat:EXPIRED err:099 ", receipt_text("42", "EXPIRED", 99, NOW, NOW))

    def test_explicit_counts_and_text(self) -> None:
        """sub and dlvrd can be given; text is cut to its first 20 characters."""
        text = receipt_text("7", "DELIVRD", 0, NOW, NOW, sub=2, dlvrd=0, text="Hello world, how are you?")
        self.assertTrue(text.startswith("id:7 sub:002 dlvrd:000 "))
        self.assertTrue(text.endswith(" text:Hello world, how are"))

    def test_bad_values(self) -> None:
        """An unknown stat or a number that does not fit 3 digits is refused."""
        self.assertRaises(ValueError, receipt_text, "1", "DELIVERED", 0, NOW, NOW)
        self.assertRaises(ValueError, receipt_text, "1", "UNDELIV", 1000, NOW, NOW)
        self.assertRaises(ValueError, receipt_text, "1", "UNDELIV", -1, NOW, NOW)
        self.assertRaises(ValueError, receipt_text, "1", "DELIVRD", 0, NOW, NOW, sub=1000)


class ReceiptIdTests(SynchronousTestCase):
    """Writing the receipt's id: from the hex id of submit_sm_resp."""

    def test_formats(self) -> None:
        """The provider's hex id is written in decimal, padded decimal, upper or lower hex."""
        self.assertEqual(format_receipt_id("0B00000127FDBC63", "decimal"), "792633539383114851")
        self.assertEqual(format_receipt_id("0B00000127FDBC63", "padded-decimal"), "00792633539383114851")
        self.assertEqual(format_receipt_id("0b00000127fdbc63", "hex"), "0B00000127FDBC63")
        self.assertEqual(format_receipt_id("0B00000127FDBC63", "hex-lower"), "0b00000127fdbc63")
        self.assertEqual(format_receipt_id("0000000012345678", "decimal"), "305419896")

    def test_wrong_matches_nothing(self) -> None:
        """The 'wrong' id is stable and equals neither this id nor any other 64-bit id in any form."""
        wrong = format_receipt_id("0B00000127FDBC63", "wrong")
        self.assertEqual(wrong, format_receipt_id("0B00000127FDBC63", "wrong"))
        self.assertEqual(wrong, str(0x0B00000127FDBC63 + 2**64))
        self.assertGreater(int(wrong), 2**64 - 1)
        self.assertNotEqual(format_receipt_id("0B00000127FDBC64", "wrong"), wrong)

    def test_bad_input(self) -> None:
        """A non-hex id or an unknown format is refused."""
        self.assertRaises(ValueError, format_receipt_id, "12G4", "decimal")
        self.assertRaises(ValueError, format_receipt_id, "", "decimal")
        self.assertRaises(ValueError, format_receipt_id, "0x12", "hex")
        self.assertRaises(ValueError, format_receipt_id, "1234", "octal")

    @given(st.integers(0, 2**64 - 1))
    @settings(deadline=None)
    def test_decimal_forms_are_the_same_number(self, number: int) -> None:
        """Decimal and padded decimal name the same number as the hex id."""
        message_id = f"{number:016X}"
        self.assertEqual(int(format_receipt_id(message_id, "decimal")), number)
        self.assertEqual(len(format_receipt_id(message_id, "padded-decimal")), 20)
        self.assertEqual(int(format_receipt_id(message_id, "padded-decimal")), number)
        self.assertEqual(set(RECEIPT_ID_FORMATS), {"decimal", "padded-decimal", "hex", "hex-lower", "wrong"})


class ParseReceiptTests(SynchronousTestCase):
    """Reading receipt text back."""

    def test_provider_example(self) -> None:
        """Every field of the provider's example is read."""
        self.assertEqual(
            parse_receipt(PROVIDER_EXAMPLE),
            {
                "id": "0000000012345678",
                "sub": "001",
                "dlvrd": "001",
                "submit date": "1601010100",
                "done date": "1601010101",
                "stat": "DELIVRD",
                "err": "000",
                "text": "none",
            },
        )

    def test_spec_capitalisation(self) -> None:
        """The spec's 'Text:' is read like 'text:', and the text keeps its colons and spaces."""
        fields = parse_receipt("id:1 stat:DELIVRD err:0 Text:call me: at 5 id:2 ")
        self.assertEqual(fields, {"id": "1", "stat": "DELIVRD", "err": "0", "text": "call me: at 5 id:2"})

    def test_missing_fields(self) -> None:
        """Fields a receipt leaves out are absent; unknown ones are kept."""
        self.assertEqual(parse_receipt("id:abc stat:UNDELIV nid:23410"), {"id": "abc", "stat": "UNDELIV", "nid": "23410"})
        self.assertEqual(parse_receipt(""), {})

    @given(
        st.text("0123456789ABCDEF", min_size=1, max_size=20),
        st.sampled_from(sorted(STATS)),
        st.integers(0, 999),
        st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=20),
    )
    @settings(deadline=None)
    def test_round_trip(self, message_id: str, stat: str, err: int, text: str) -> None:
        """Receipt text parses back to the fields it was built from."""
        fields = parse_receipt(receipt_text(message_id, stat, err, NOW, NOW + 3600, text=text))
        self.assertEqual(fields["id"], message_id)
        self.assertEqual(fields["stat"], stat)
        self.assertEqual(int(fields["err"]), err)
        self.assertEqual(fields["submit date"], "2311142213")
        self.assertEqual(fields["done date"], "2311142313")
        self.assertEqual(fields["text"], text)


class TableTests(SynchronousTestCase):
    """The provider's err codes and the default err of each stat."""

    def test_err_codes(self) -> None:
        """The err table holds the provider's codes 0-15, 50-54 and 99."""
        self.assertEqual(set(ERR_CODES), set(range(16)) | set(range(50, 55)) | {99})
        self.assertEqual(ERR_CODES[0], "Delivered")
        self.assertEqual(ERR_CODES[99], "General Error")

    def test_default_err(self) -> None:
        """Every stat has a default err from the table; success states have 0, failures not."""
        self.assertEqual(set(STAT_DEFAULT_ERR), set(STATS))
        for stat, err in STAT_DEFAULT_ERR.items():
            self.assertIn(err, ERR_CODES)
            self.assertEqual(err == 0, stat in {"DELIVRD", "ACCEPTD", "ENROUTE"})


class ReceiptDateCacheTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.floats(0, 2**31 - 1, allow_nan=False), min_size=1, max_size=20))
    def test_cached_dates_are_the_formatted_ones(self, stamps: list[float]) -> None:
        """Every receipt date, cached or not, is the UTC minute format_receipt_date writes."""
        for ts in stamps + [ts + 0.5 for ts in stamps] + stamps:
            self.assertEqual(receipt_date(ts), format_receipt_date(ts))

    def test_minute_boundaries(self) -> None:
        """The date changes exactly when the UTC minute does, however many stamps fall in the cache."""
        base = 1_700_000_040.0  # 2023-11-14 22:14:00 UTC
        self.assertEqual(receipt_date(base - 0.001), "2311142213")
        self.assertEqual(receipt_date(base), "2311142214")
        self.assertEqual(receipt_date(base + 59.999), "2311142214")
        self.assertEqual(receipt_date(base + 60), "2311142215")
        for minute in range(600):  # more minutes than the cache keeps
            self.assertEqual(receipt_date(base + 60 * minute + 1), format_receipt_date(base + 60 * minute + 1))
