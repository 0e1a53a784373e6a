"""
The provider's price, balance and network TLVs, on the wire: a raw ESME
speaks bytes to the in-memory simulator (real sessions, real core, fake
clock) and reads submit_sm_resp and receipt TLVs octet by octet.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, cast

from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, Config, CoreSettings, default_config
from smsc_sim.core.billing import Balances, Networks, parse_money
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.conformance_harness import DELIVER_SM, RawESME

SUBMIT_SM_RESP = 0x80000004
PRICE_REQUEST = wire.tlv(0x1421, b"1")


def resp_fields(body: bytes) -> tuple[str, dict[int, bytes]]:
    """The message_id and the TLVs of a submit_sm_resp body, read by hand."""
    message_id, offset = wire.read_cstr(body)
    tlvs: dict[int, bytes] = {}
    while offset < len(body):
        tag, size = struct.unpack_from(">HH", body, offset)
        tlvs[tag] = body[offset + 4 : offset + 4 + size]
        offset += 4 + size
    return message_id, tlvs


def config(*accounts: AccountSettings, **core: Any) -> Config:
    base = default_config()
    return dataclasses.replace(base, accounts=accounts, api_endpoint="", core=dataclasses.replace(CoreSettings(), **core))


class BillingCase(SynchronousTestCase):
    def start(self, cfg: Config) -> None:
        self.smsc = MemorySMSC(cfg)
        self.addCleanup(self.smsc.stop)

    def esme(self, system_id: str = "payg", interface_version: int = 0x34) -> RawESME:
        esme = RawESME(self.smsc.clock)
        esme.connection = self.smsc.connect(esme, "SMPP0")
        esme.send(wire.bind(0x09, esme.next_sequence(), system_id=system_id, interface_version=interface_version))
        self.smsc.flush()
        return esme

    def submit(self, esme: RawESME, **fields: Any) -> tuple[int, bytes]:
        """One submit_sm; the status and body of its response."""
        sequence = esme.submit(**fields)
        self.smsc.flush()
        [(header, body)] = [(h, b) for h, b in esme.received if h.command_id == SUBMIT_SM_RESP and h.sequence_number == sequence]
        return header.command_status, body


class PriceBalanceWireTests(BillingCase):
    def setUp(self) -> None:
        account = AccountSettings("payg", "password", throughput=0, price="0.03330000 EUR", balance="0.10000000 EUR")
        self.start(config(account, AccountSettings("free", "password", throughput=0), networks={"44": "23410", "4477": "23415"}))

    def test_price_request_gets_price_balance_and_network(self) -> None:
        """A submit_sm with 0x1421 gets 0x1402, 0x1422 and 0x1423 in submit_sm_resp, as C-Octet Strings; the balance is already debited."""
        status, body = self.submit(self.esme(), destination="447700900002", tlvs=PRICE_REQUEST)
        _, tlvs = resp_fields(body)
        self.assertEqual(status, 0)
        self.assertEqual(
            tlvs, {0x1402: b"23415\x00", 0x1422: b"0.03330000 EUR\x00", 0x1423: b"0.06670000 EUR\x00"}
        )

    def test_without_request_only_the_network(self) -> None:
        """Without 0x1421 the response carries no price or balance, only the network (longest prefix: 44 -> 23410)."""
        _, body = self.submit(self.esme(), destination="441632960961")
        self.assertEqual(resp_fields(body)[1], {0x1402: b"23410\x00"})

    def test_balance_runs_out_then_submits_are_refused_with_a_log_line(self) -> None:
        """0.10 EUR at 0.0333 a part pays three submits; the fourth gets ESME_RSUBMITFAIL (0x45, no body) and a 'balance' log line."""
        logged: list[dict[str, Any]] = []
        observer = cast(ILogObserver, logged.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        esme = self.esme()
        results = [self.submit(esme, tlvs=PRICE_REQUEST) for _ in range(4)]
        self.assertEqual([status for status, _ in results], [0, 0, 0, 0x45])
        self.assertEqual(resp_fields(results[2][1])[1][0x1423], b"0.00010000 EUR\x00")
        self.assertEqual(results[3][1], b"")
        self.assertTrue(any(e.get("log_format", "").startswith("balance:") for e in logged))

    def test_receipt_carries_the_network(self) -> None:
        """The receipt of a message to a known network carries 0x1402 too."""
        esme = self.esme()
        self.submit(esme, destination="447700900002", registered_delivery=1)
        self.smsc.advance(10)
        [receipt] = [wire.deliver_sm_fields(b) for h, b in esme.received if h.command_id == DELIVER_SM]
        self.assertEqual(receipt["tlvs"][0x1402], b"23415\x00")  # type: ignore[index]

    def test_unbilled_account_gets_no_price_tlvs(self) -> None:
        """An account with neither price nor balance ignores 0x1421: only the network comes back, and it is never refused for money."""
        esme = self.esme("free")
        results = [self.submit(esme, destination="33612345678", tlvs=PRICE_REQUEST) for _ in range(5)]
        self.assertEqual([status for status, _ in results], [0] * 5)
        self.assertEqual([resp_fields(body)[1] for _, body in results], [{}] * 5)

    def test_smpp33_bind_gets_no_tlvs(self) -> None:
        """An ESME bound with interface_version 0x33 gets a submit_sm_resp without TLVs, but is still debited."""
        esme = self.esme(interface_version=0x33)
        _, body = self.submit(esme, tlvs=PRICE_REQUEST)
        self.assertEqual(resp_fields(body)[1], {})
        self.assertEqual(self.smsc.simulator.balances.describe("payg")["balance"], "0.06670000 EUR")


class PlainTextTlvTests(BillingCase):
    def test_text_encoding_has_no_nul(self) -> None:
        """core.vendor_tlv_strings: text sends the vendor TLVs without the NUL; core.balance_status changes the refusal."""
        account = AccountSettings("payg", "password", throughput=0, price="1 GBP", balance="1 GBP")
        self.start(config(account, networks={"44": "23410"}, vendor_tlv_strings="text", balance_status=0x58))
        esme = self.esme()
        status, body = self.submit(esme, tlvs=PRICE_REQUEST)
        self.assertEqual((status, resp_fields(body)[1]), (0, {0x1402: b"23410", 0x1422: b"1 GBP", 0x1423: b"0 GBP"}))
        self.assertEqual(self.submit(esme)[0], 0x58)


class UnitTests(SynchronousTestCase):
    def test_money_forms(self) -> None:
        """Amounts read with their currency and decimal places; junk is refused with a message."""
        self.assertEqual(parse_money("0.03330000 EUR")[1:], ("EUR", 8))
        self.assertEqual(parse_money("12")[1:], ("", 0))
        for bad in ("", "EUR", "1,5 EUR", "1.5 euro", "1" * 50):
            with self.assertRaises(ValueError):
                parse_money(bad)

    def test_set_balance_and_reset(self) -> None:
        """A balance set through set_balance replaces the count; reset() puts back the configured value; another currency is refused."""
        balances = Balances([AccountSettings("a", "b", price="0.05 EUR", balance="1.00 EUR")])
        balances.set_balance("a", "0.05")
        self.assertTrue(balances.can_pay("a", 1))
        balances.debit("a", 1)
        self.assertFalse(balances.can_pay("a", 1))
        self.assertEqual(balances.describe("a"), {"price": "0.05 EUR", "balance": "0.00 EUR"})
        with self.assertRaises(ValueError):
            balances.set_balance("a", "3 USD")
        balances.reset()
        self.assertEqual(balances.describe("a")["balance"], "1.00 EUR")

    def test_network_longest_prefix(self) -> None:
        """The longest matching prefix wins; a leading + is ignored; unknown numbers have no network."""
        networks = Networks({"44": "23410", "447": "23415"})
        self.assertEqual([networks.lookup(n) for n in ("+447700", "441632", "331234")], ["23415", "23410", None])


class ConfigTests(SynchronousTestCase):
    def load(self, text: str) -> Config:
        import os
        import tempfile

        from smsc_sim.config_loader import load_config

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(text)
            return load_config(path, {}, {})

    def refused(self, text: str) -> str:
        from smsc_sim.config_loader import ConfigError

        with self.assertRaises(ConfigError) as caught:
            self.load(text)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        return message

    def test_reads_price_balance_and_networks(self) -> None:
        """price, balance and core.networks are read from the file."""
        cfg = self.load(
            "accounts:\n  - {system_id: a, password: b, price: 0.0333 EUR, balance: 10 EUR}\n"
            'core:\n  networks: {"44": "23410"}\n  vendor_tlv_strings: text\n'
        )
        self.assertEqual((cfg.accounts[0].price, cfg.accounts[0].balance), ("0.0333 EUR", "10 EUR"))
        self.assertEqual((cfg.core.networks, cfg.core.vendor_tlv_strings), ({"44": "23410"}, "text"))

    def test_bad_values_stop_the_start_in_one_line(self) -> None:
        """A bad price, a balance in another currency, a bad prefix or MCC+MNC each stop the start naming the field."""
        self.assertIn("accounts[0].price: not an amount", self.refused("accounts:\n  - {system_id: a, password: b, price: cheap}\n"))
        self.assertIn("accounts[0].price: negative", self.refused("accounts:\n  - {system_id: a, password: b, price: '-1'}\n"))
        self.assertIn(
            "accounts[0].balance: currency USD is not the price's (EUR)",
            self.refused("accounts:\n  - {system_id: a, password: b, price: 1 EUR, balance: 5 USD}\n"),
        )
        self.assertIn("core.networks.4x: not a number prefix", self.refused('core:\n  networks: {"4x": "23410"}\n'))
        self.assertIn("core.networks.44: not an MCC+MNC", self.refused('core:\n  networks: {"44": 23410}\n'))
        self.assertIn("core.vendor_tlv_strings: unknown value", self.refused("core:\n  vendor_tlv_strings: utf16\n"))


class BalanceAPITests(BillingCase):
    """The balance through the HTTP API, with submits on the wire in between."""

    def setUp(self) -> None:
        from tests.test_api import APITestCase

        account = AccountSettings("payg", "password", throughput=0, price="0.05 EUR", balance="0.10 EUR")
        cfg = dataclasses.replace(config(account, AccountSettings("free", "password")), api_endpoint="tcp:0")
        self.start(cfg)
        self.api = APITestCase()
        self.api.smsc = self.smsc
        self.api.successResultOf = self.successResultOf  # type: ignore[method-assign]

    def test_show_debit_set_and_reset(self) -> None:
        """GET shows the balance falling with each part; PUT sets it (submits pass again); another currency is 400; reset restores it."""
        code, body = self.api.call("GET", "/api/v1/accounts")
        views = {view["system_id"]: view for view in body["accounts"]}
        self.assertEqual((views["payg"]["price"], views["payg"]["balance"]), ("0.05 EUR", "0.10 EUR"))
        self.assertEqual((views["free"]["price"], views["free"]["balance"]), (None, None))
        self.assertNotIn("password", views["payg"])
        esme = self.esme()
        self.assertEqual([self.submit(esme)[0] for _ in range(3)], [0, 0, 0x45])
        self.assertEqual(self.api.call("GET", "/api/v1/accounts/payg")[1]["balance"], "0.00 EUR")
        code, body = self.api.call("PUT", "/api/v1/accounts/payg/balance", {"balance": "1.5"})
        self.assertEqual((code, body["balance"]), (200, "1.50 EUR"))
        self.assertEqual(self.submit(esme)[0], 0)
        code, body = self.api.call("PUT", "/api/v1/accounts/payg/balance", {"balance": "1 USD"})
        self.assertEqual(code, 400)
        self.assertIn("currency USD is not the account's (EUR)", body["error"]["message"])
        self.assertEqual(self.api.call("POST", "/api/v1/reset", {})[0], 200)
        self.assertEqual(self.api.call("GET", "/api/v1/accounts/payg")[1]["balance"], "0.10 EUR")
