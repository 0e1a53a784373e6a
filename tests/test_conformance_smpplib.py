"""
The judge watching smpplib, an SMPP client nobody on this project wrote,
on loopback sockets against the real reactor: used as its documentation
shows, it gets no finding.

smpplib is blocking, so its calls run in a thread while the reactor serves.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
import smpplib.client

from smsc_sim.conformance import Judge, Landscape
from tests.test_integration_smpplib import (
    client_for,
    fast_scenario,
    in_thread,
    read_until,
    running,
)

__all__ = ["fast_scenario"]  # the fixture, imported so pytest finds it here


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_smpplib_on_both_instances_gets_no_finding(fast_scenario: str) -> None:
    """
    smpplib binds a transceiver to SMPP1 and one to SMPP2, submits three
    messages on each asking for receipts, answers the receipts, unbinds:
    the judge's verdict is pass with no finding at all.
    """
    from twisted.internet import reactor

    simulator = await running(fast_scenario)
    judge = Judge(reactor, Landscape.from_config(simulator.config))
    unsubscribe = judge.subscribe(simulator.events)
    try:
        ports = [simulator.endpoints()[name][0][1] for name in ("SMPP1", "SMPP2")]

        def esme() -> list[int]:
            clients: list[smpplib.client.Client] = []
            receipts: list[list[Any]] = [[] for _ in ports]
            try:
                for port, got in zip(ports, receipts):
                    client = client_for(port)
                    client.set_message_received_handler(lambda pdu, got=got: got.append(pdu))
                    client.connect()
                    clients.append(client)
                    client.bind_transceiver(system_id="smppclient1", password="password")
                for n in range(3):
                    for client in clients:
                        client.send_message(
                            source_addr_ton=1,
                            source_addr="447700900001",
                            dest_addr_ton=1,
                            destination_addr=f"44770090001{n}",
                            short_message=b"Hello from smpplib",
                            registered_delivery=1,
                        )
                for client, got in zip(clients, receipts):
                    # read_until calls it before the loop moves on: the closure sees this client's list
                    read_until(client, lambda: len(got) >= 3)
                for client in clients:
                    client.unbind()
                return [len(got) for got in receipts]
            finally:
                for client in clients:
                    client.disconnect()

        counts = await in_thread(esme)
    finally:
        await simulator.stopService()
        unsubscribe()
    assert counts == [3, 3]
    assert judge.findings() == [], [finding.to_dict() for finding in judge.findings()]
    assert judge.summary()["verdict"] == "pass"
