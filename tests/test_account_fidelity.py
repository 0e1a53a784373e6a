"""
Per-account switches of the provider, on the wire: SMPP enabled or not, the
receipt id form, all-digit message ids.  A raw ESME speaks bytes to the
in-memory simulator (real sessions, real core, fake clock).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, Config, default_config
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.conformance_harness import DELIVER_SM, RawESME

SUBMIT_SM_RESP = 0x80000004
BIND_TRX_RESP = 0x80000009


def config_with(*accounts: AccountSettings) -> Config:
    return dataclasses.replace(default_config(), accounts=accounts, api_endpoint="")


class AccountCase(SynchronousTestCase):
    accounts: tuple[AccountSettings, ...] = ()

    def setUp(self) -> None:
        self.smsc = MemorySMSC(config_with(*self.accounts))
        self.addCleanup(self.smsc.stop)

    def esme(self, system_id: str, password: str = "password") -> RawESME:
        esme = RawESME(self.smsc.clock)
        esme.connection = self.smsc.connect(esme, "SMPP0")
        esme.send(wire.bind(0x09, esme.next_sequence(), system_id=system_id, password=password))
        self.smsc.flush()
        return esme

    def submit_and_receipt(self, esme: RawESME) -> tuple[str, dict[str, Any]]:
        """One submit_sm asking for a receipt; the submit_sm_resp id and the receipt's fields."""
        esme.submit(registered_delivery=1)
        self.smsc.flush()
        [body] = [b for h, b in esme.received if h.command_id == SUBMIT_SM_RESP and h.command_status == 0]
        message_id, _ = wire.read_cstr(body)
        self.smsc.advance(10)
        [receipt] = [wire.deliver_sm_fields(b) for h, b in esme.received if h.command_id == DELIVER_SM]
        return message_id, receipt


class SmppEnabledTests(AccountCase):
    accounts = (
        AccountSettings("restonly", "password", smpp_enabled=False),
        AccountSettings("smppclient1", "password"),
    )

    def test_disabled_account_bind_gets_rinvsysid_and_a_logged_reason(self) -> None:
        """An account with smpp_enabled false gets bind_resp ESME_RINVSYSID (0x0F, no body) even with the right password, and the log says SMPP is not enabled."""
        logged: list[dict[str, Any]] = []
        observer = cast(ILogObserver, logged.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        esme = self.esme("restonly")
        [(header, body)] = esme.received
        self.assertEqual((header.command_id, header.command_status, body), (BIND_TRX_RESP, 0x0F, b""))
        reasons = [e for e in logged if "SMPP is not enabled" in e.get("log_format", "")]
        self.assertEqual(len(reasons), 1)
        self.assertEqual(reasons[0]["system_id"], "restonly")

    def test_enabled_account_still_binds(self) -> None:
        """An account with the default smpp_enabled binds as before."""
        esme = self.esme("smppclient1")
        self.assertEqual([h.command_status for h, _ in esme.received], [0])


class ReceiptIdFormatTests(AccountCase):
    accounts = (
        AccountSettings("hexacct", "password", receipt_id_format="hex"),
        AccountSettings("decacct", "password"),
    )

    def test_hex_account_receipt_text_carries_the_submit_id(self) -> None:
        """receipt_id_format hex: the receipt's id: is the submit_sm_resp id itself; receipted_message_id is that id too."""
        message_id, receipt = self.submit_and_receipt(self.esme("hexacct"))
        self.assertRegex(message_id, r"^[0-9A-F]{16}$")
        self.assertTrue(receipt["short_message"].startswith(f"id:{message_id} sub:001".encode()))
        self.assertEqual(receipt["tlvs"][0x001E], message_id.encode() + b"\x00")

    def test_decimal_is_the_default(self) -> None:
        """By default the receipt's id: is the submit id in decimal; receipted_message_id stays the hex id."""
        message_id, receipt = self.submit_and_receipt(self.esme("decacct"))
        self.assertTrue(receipt["short_message"].startswith(f"id:{int(message_id, 16)} ".encode()))
        self.assertEqual(receipt["tlvs"][0x001E], message_id.encode() + b"\x00")


class DigitIdTests(AccountCase):
    accounts = (
        AccountSettings("kannel", "password", message_id_digits=True, throughput=0),
        AccountSettings("plain", "password"),
    )

    def test_digit_ids_are_hex_made_of_digits(self) -> None:
        """message_id_digits: the submit_sm_resp id is 16 hex digits that are all 0-9; the receipt gives the hex number in decimal, which differs from the id read as decimal (the msg-id-type trap)."""
        message_id, receipt = self.submit_and_receipt(self.esme("kannel"))
        self.assertRegex(message_id, r"^[0-9]{16}$")
        decimal = str(int(message_id, 16))
        self.assertNotEqual(decimal, message_id.lstrip("0"))
        self.assertTrue(receipt["short_message"].startswith(f"id:{decimal} ".encode()))

    def test_digit_ids_are_unique_and_other_accounts_keep_0b(self) -> None:
        """Many digit ids in one run are all distinct; an account without the switch still gets 0B... ids."""
        esme = self.esme("kannel")
        for _ in range(200):
            esme.submit()
        self.smsc.flush()
        ids = [wire.read_cstr(b)[0] for h, b in esme.received if h.command_id == SUBMIT_SM_RESP and h.command_status == 0]
        self.assertEqual(len(set(ids)), 200)
        plain = self.esme("plain")
        plain.submit()
        self.smsc.flush()
        [body] = [b for h, b in plain.received if h.command_id == SUBMIT_SM_RESP]
        self.assertTrue(wire.read_cstr(body)[0].startswith("0B"))


class ConfigTests(SynchronousTestCase):
    def test_bad_receipt_id_format_is_refused_in_one_line(self) -> None:
        """receipt_id_format: octal stops the start with one line naming the file, the field and the choices."""
        import os
        import tempfile

        from smsc_sim.config_loader import ConfigError, load_config

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write("accounts:\n  - {system_id: a, password: b, receipt_id_format: octal, smpp_enabled: false}\n")
            with self.assertRaises(ConfigError) as caught:
                load_config(path, {}, {})
        message = str(caught.exception)
        self.assertRegex(message, r"c\.yaml:2: accounts\[0\]\.receipt_id_format: unknown value .*decimal, hex")
        self.assertNotIn("\n", message)

    def test_switches_read_from_the_file(self) -> None:
        """smpp_enabled, receipt_id_format and message_id_digits are read from an account's mapping."""
        import os
        import tempfile

        from smsc_sim.config_loader import load_config

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(
                    "accounts:\n  - {system_id: a, password: b, receipt_id_format: hex, smpp_enabled: false,"
                    " message_id_digits: true}\n"
                )
            [account] = load_config(path, {}, {}).accounts
        self.assertEqual((account.smpp_enabled, account.receipt_id_format, account.message_id_digits), (False, "hex", True))


class ShortCodeMOTests(AccountCase):
    accounts = (AccountSettings("smppclient1", "password"),)

    def mo_addresses(self, source: str, destination: str) -> tuple[int, int, int, int]:
        esme = self.esme("smppclient1")
        self.smsc.simulator.inject_mo("smppclient1", source, destination, text="hi")
        self.smsc.flush()
        [fields] = [wire.deliver_sm_fields(b) for h, b in esme.received if h.command_id == DELIVER_SM]
        return (
            cast(int, fields["source_addr_ton"]),
            cast(int, fields["source_addr_npi"]),
            cast(int, fields["dest_addr_ton"]),
            cast(int, fields["dest_addr_npi"]),
        )

    def test_short_code_destination_gets_ton_3(self) -> None:
        """An MO from a handset to the short code 12345 goes as deliver_sm with dest TON 3 (network specific), the handset TON 1."""
        self.assertEqual(self.mo_addresses("447700900009", "12345"), (1, 1, 3, 1))

    def test_eight_digits_is_short_nine_is_not(self) -> None:
        """Up to 8 digits is a short code by default; 9 digits and +-numbers are international (TON 1)."""
        self.assertEqual(self.mo_addresses("12345678", "123456789"), (3, 1, 1, 1))
        self.assertEqual(self.mo_addresses("+1234", "Acme"), (1, 1, 5, 0))


class ShortCodeSettingTests(SynchronousTestCase):
    def test_limit_is_configurable_and_zero_switches_it_off(self) -> None:
        """core.short_code_digits 4 makes 12345 international; 0 treats no number as a short code."""
        from smsc_sim.core.mo import address_kind

        self.assertEqual([address_kind("12345", 4), address_kind("1234", 4), address_kind("1234", 0)], [(1, 1), (3, 1), (1, 1)])


class ControlCharacterMOTests(SynchronousTestCase):
    """Control characters in MO text, on the wire (deliver_sm short_message octets)."""

    def deliver(self, text: str, alphabet: str = "latin-1", **core: Any) -> tuple[int, bytes]:
        from smsc_sim.config import CoreSettings

        cfg = dataclasses.replace(
            config_with(AccountSettings("smppclient1", "password", default_alphabet=alphabet)),
            core=dataclasses.replace(CoreSettings(), **core),
        )
        smsc = MemorySMSC(cfg)
        self.addCleanup(smsc.stop)
        esme = RawESME(smsc.clock)
        esme.connection = smsc.connect(esme, "SMPP0")
        esme.send(wire.bind(0x09, esme.next_sequence()))
        smsc.flush()
        smsc.simulator.inject_mo("smppclient1", "447700900009", "447700900010", text=text)
        smsc.flush()
        [fields] = [wire.deliver_sm_fields(b) for h, b in esme.received if h.command_id == DELIVER_SM]
        return cast(int, fields["data_coding"]), cast(bytes, fields["short_message"])

    def test_controls_become_the_providers_characters(self) -> None:
        """By default \\x01, \\x07, TAB and DEL in Latin-1 MO text arrive as £, ì, Ç and à; LF and CR stay; ESC becomes ?."""
        self.assertEqual(self.deliver("a\x01\x07\tb\r\n\x1b\x7f"), (0, "a£ìÇb\r\n?à".encode("latin-1")))

    def test_gsm_alphabet_account_stays_gsm(self) -> None:
        """For a gsm0338 account the cleaned text still fits GSM (data_coding 0), where the raw one would have needed UCS-2."""
        coding, octets = self.deliver("x\x01y", alphabet="gsm0338")
        self.assertEqual((coding, octets), (0, b"x\x01y"))  # £ is GSM position 0x01, unpacked

    def test_space_and_keep_modes(self) -> None:
        """core.mo_control_characters: space puts spaces; keep sends the raw octets as before."""
        self.assertEqual(self.deliver("a\x01b", mo_control_characters="space")[1], b"a b")
        self.assertEqual(self.deliver("a\x01b", mo_control_characters="keep")[1], b"a\x01b")

    def test_ucs2_text_keeps_its_controls(self) -> None:
        """Text that needs UCS-2 is not cleaned: its control characters are sent as written."""
        self.assertEqual(self.deliver("\u20ac\x01"), (8, b"\x20\xac\x00\x01"))
