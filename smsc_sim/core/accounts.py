"""
Accounts: who may bind, with which password, from where.

A bind is checked in the order a real SMSC reports problems: unknown
system_id (ESME_RINVSYSID), wrong password (ESME_RINVPASWD), then a peer
address outside the account's allowed CIDR ranges (ESME_RBINDFAIL).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Iterator

from smsc_sim.config import AccountSettings
from smsc_sim.smpp.constants import CommandStatus

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_host(peer: str) -> str:
    """
    The host part of a ``host:port`` peer string.

    :param peer: ``127.0.0.1:5555``, ``[::1]:5555``, ``::1:5555`` or a bare host.
    """
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    if peer.count(":") == 1:
        return peer.split(":", 1)[0]
    if peer.count(":") > 1:
        head, _, tail = peer.rpartition(":")
        # an IPv6 address followed by :port (as the session writes it)
        return head if tail.isdigit() and _is_ip(head) else peer
    return peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Accounts:
    """
    The configured accounts of a core.

    :param accounts: the accounts, from the configuration.
    :raises ValueError: for an allowed_addresses entry that is no CIDR range.
    """

    def __init__(self, accounts: Iterable[AccountSettings]) -> None:
        self._accounts: dict[str, AccountSettings] = {}
        self._networks: dict[str, tuple[Network, ...]] = {}
        for account in accounts:
            self._accounts[account.system_id] = account
            self._networks[account.system_id] = tuple(
                ipaddress.ip_network(cidr, strict=False) for cidr in account.allowed_addresses
            )

    def get(self, system_id: str) -> AccountSettings | None:
        """The account of that system_id, if configured."""
        return self._accounts.get(system_id)

    def __iter__(self) -> Iterator[AccountSettings]:
        """The accounts, in configuration order."""
        return iter(self._accounts.values())

    def check(self, system_id: str, password: str, peer: str) -> tuple[AccountSettings | None, int]:
        """
        Check a bind's credentials and origin.

        :param system_id: as in the bind.
        :param password: as in the bind.
        :param peer: the session's ``host:port``.
        :returns: the account and ``ESME_ROK``, or ``None`` and the refusal status.
        """
        account = self._accounts.get(system_id)
        if account is None:
            return None, CommandStatus.ESME_RINVSYSID
        if account.password != password:
            return None, CommandStatus.ESME_RINVPASWD
        networks = self._networks[system_id]
        if networks:
            try:
                address = ipaddress.ip_address(peer_host(peer))
            except ValueError:
                return None, CommandStatus.ESME_RBINDFAIL
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            if not any(address.version == net.version and address in net for net in networks):
                return None, CommandStatus.ESME_RBINDFAIL
        return account, CommandStatus.ESME_ROK
