"""
Price, balance and network: the provider's vendor TLVs (smpp-facts.md A.11).

A submit_sm that carries 0x1421 asks for the price of the message: its
submit_sm_resp carries 0x1422 (the price per part, text as configured, such
as ``0.03330000 EUR``) and 0x1423 (the balance left, in the same form).
0x1402 (the destination network's MCC and MNC, from ``core.networks``, a
table of number prefixes) goes in submit_sm_resp and in the receipt.

Each account with a ``price`` or a ``balance`` is billed: every accepted
part is debited by the price; a submit the balance cannot pay is refused
with ``core.balance_status`` (ESME_RSUBMITFAIL by default) and a ``balance``
log line.  Balances belong to the account, not to a cluster: one
:class:`Balances` serves every core of a process.

Accounts with neither, and a table without prefixes, cost the submit path
one dictionary lookup and one truth test.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from collections.abc import Iterable, Mapping

from twisted.logger import Logger

from smsc_sim.config import AccountSettings

#: vendor TLV tags (smpp-facts.md A.11)
TAG_PRICE_REQUEST = 0x1421
TAG_PRICE = 0x1422
TAG_BALANCE = 0x1423
TAG_NETWORK = 0x1402

#: longest money text accepted (config and API)
MONEY_MAX = 40
_MONEY = re.compile(r"^\s*(-?\d{1,15}(?:\.\d{1,12})?)(?:\s+([A-Z]{3}))?\s*$")


def parse_money(text: str) -> tuple[Decimal, str, int]:
    """
    Read ``0.0333 EUR`` (an amount, a space and an ISO 4217 code; the code may be left out).

    :returns: the amount, the currency (``""`` when none) and the decimal places written.
    :raises ValueError: for anything else, with a message fit for the user.
    """
    match = _MONEY.match(text) if len(text) <= MONEY_MAX else None
    if match is None:
        raise ValueError(f"not an amount such as '0.03330000 EUR': {text[:MONEY_MAX]!r}")
    number, currency = match.group(1), match.group(2) or ""
    try:
        amount = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise ValueError(f"not an amount: {number!r}") from None
    places = len(number.partition(".")[2])
    return amount, currency, places


class _Account:
    """The billing state of one account."""

    __slots__ = ("balance", "configured", "currency", "places", "price", "price_text")

    def __init__(self, account: AccountSettings) -> None:
        price, price_currency, price_places = parse_money(account.price) if account.price else (Decimal(0), "", 0)
        self.price = price
        self.price_text = account.price.strip()
        self.configured: Decimal | None = None
        currency, places = price_currency, price_places
        if account.balance:
            balance, balance_currency, balance_places = parse_money(account.balance)
            self.configured = balance
            currency = currency or balance_currency
            places = max(places, balance_places)
        self.currency = currency
        self.places = places
        #: None: unlimited (a price without a balance)
        self.balance: Decimal | None = self.configured

    def text(self, amount: Decimal) -> str:
        """An amount in the account's form: its decimal places and currency."""
        number = f"{amount:.{self.places}f}"
        return f"{number} {self.currency}" if self.currency else number


class Balances:
    """
    The billed accounts of a process: prices, balances, debits.

    :param accounts: every configured account; those with a ``price`` or a
        ``balance`` are billed.
    :param status: the command_status of a submit the balance cannot pay.
    :raises ValueError: for a price or balance that is no amount.
    """

    log = Logger()

    def __init__(self, accounts: Iterable[AccountSettings], status: int = 0x45) -> None:
        self.status = status
        self._settings = {account.system_id: account for account in accounts}
        #: billed accounts by system_id (the submit path tests membership only)
        self.billed: dict[str, _Account] = {}
        self.reset()

    def reset(self) -> None:
        """Every balance back to its configured value; balances set through the API are forgotten."""
        self.billed.clear()
        for system_id, account in self._settings.items():
            if account.price or account.balance:
                self.billed[system_id] = _Account(account)

    def can_pay(self, system_id: str, parts: int) -> bool:
        """
        Whether the account can pay ``parts`` parts now.

        A balance at or below zero pays nothing, and a balance below the
        cost of the whole message pays nothing either: the provider's
        balance is prepaid credit, so it is never overdrawn.
        """
        state = self.billed.get(system_id)
        if state is None or state.balance is None:
            return True
        if state.balance <= 0 or state.balance < state.price * parts:
            self.log.info(
                "balance: submit of {parts} part(s) from {system_id} refused: balance {balance}, price {price}",
                parts=parts,
                system_id=system_id,
                balance=state.text(state.balance),
                price=state.price_text,
            )
            return False
        return True

    def debit(self, system_id: str, parts: int) -> None:
        """Take the price of ``parts`` accepted parts off the balance."""
        state = self.billed.get(system_id)
        if state is not None and state.balance is not None and state.price:
            state.balance -= state.price * parts

    def vendor_tlvs(self, system_id: str, tlvs: dict[int, bytes], encode: bool) -> None:
        """
        Add 0x1422 (price) and 0x1423 (balance) to a response's ``tlvs``.

        :param encode: True: C-Octet Strings (text and NUL); False: the text alone.
        """
        state = self.billed.get(system_id)
        if state is None:
            return
        suffix = b"\x00" if encode else b""
        if state.price_text:
            tlvs[TAG_PRICE] = state.price_text.encode("ascii") + suffix
        if state.balance is not None:
            tlvs[TAG_BALANCE] = state.text(state.balance).encode("ascii") + suffix

    def set_balance(self, system_id: str, text: str) -> None:
        """
        Set an account's balance (from the API); an account without billing becomes billed at price 0.

        :raises KeyError: for an unknown account.
        :raises ValueError: for a bad amount or a currency other than the account's.
        """
        account = self._settings[system_id]
        amount, currency, places = parse_money(text)
        state = self.billed.get(system_id)
        if state is None:
            state = self.billed[system_id] = _Account(account)
        if currency and state.currency and currency != state.currency:
            raise ValueError(f"currency {currency} is not the account's ({state.currency})")
        state.currency = state.currency or currency
        state.places = max(state.places, places)
        state.balance = amount

    def describe(self, system_id: str) -> dict[str, str | None]:
        """``price`` and ``balance`` as the wire would carry them (``None``: not billed / unlimited)."""
        state = self.billed.get(system_id)
        if state is None:
            return {"price": None, "balance": None}
        return {
            "price": state.price_text or None,
            "balance": state.text(state.balance) if state.balance is not None else None,
        }


class Networks:
    """
    The destination network of a number, by longest prefix (``core.networks``).

    A leading ``+`` is ignored; numbers matching no prefix have no network.

    :param table: number prefix (digits) -> MCC and MNC (``23410``).
    """

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = dict(table)
        self._lengths = sorted({len(prefix) for prefix in table}, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._table)

    def lookup(self, number: str) -> str | None:
        """The MCC and MNC of ``number``, or ``None``."""
        number = number.removeprefix("+")
        table = self._table
        for length in self._lengths:
            network = table.get(number[:length])
            if network is not None:
                return network
        return None
