"""
One process of a cluster whose shared state is in a real redis-server, for
the tests: a core of cluster NA with its own :class:`RedisClusterStore` (its
own connections and owner).  Two of them stand for SMPP1 and SMPP2 (the
``processes`` fixture of tests/conftest.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred

from smsc_sim.cluster.redis.connect import RedisClusterStore
from smsc_sim.config import AccountSettings, Config, CoreSettings, SessionSettings
from smsc_sim.contracts import ReceiptPlan, ReceiptStep, Reply
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.events import EventBus
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import make_pdu
from tests.redis_async import reactor as _reactor
from tests.redis_async import until as _until
from tests.test_core_fakes import FakeSession, ScriptedScenario, instances

__all__ = ["LATER", "Process", "answer"]


async def answer(reply: Reply | Deferred[Reply]) -> Reply:
    """The reply, once the core has it; and, as the session does once it is written, run its on_sent."""
    if isinstance(reply, Deferred):
        reply = await reply
    assert isinstance(reply, Reply)
    if reply.on_sent is not None:
        reply.on_sent()
    return reply


class Process:
    """One process of cluster NA: a core whose shared state is in Redis."""

    def __init__(self, url: str, *, plan: ReceiptPlan, timeout: float = 2.0, deliveries: bool = False) -> None:
        reactor = _reactor()
        self.store = RedisClusterStore(url, reactor)
        self.store.records_check = 0.5
        self.scenario = ScriptedScenario(plan=plan)
        config = Config(
            instances=instances(),
            accounts=(
                AccountSettings("esme", "secret", throughput=0, max_binds=10),
                AccountSettings("other", "secret", throughput=0, max_binds=10),
            ),
            session=SessionSettings(),
            core=replace(CoreSettings(), store_final_ttl=600.0),
        )
        self.messages = self.store.messages_for("NA", config.core.store_final_ttl)
        self.core = SMSCCore(
            "NA",
            reactor,
            config,
            config.clusters()["NA"],
            self.scenario,
            EventBus(reactor),
            journal=self.messages.journal,
            ids=self.messages.ids,
            cluster_messages=self.messages.remote,
            slot_timeout=timeout,
        )
        self.messages.serve(self.core.operations, self.core.store.values)
        if deliveries:
            # the shared receipts, and with them this process's liveness lease, which other processes read
            self.store.deliveries_for("NA").attach(self.core.router, self.core.lifecycle)
        self.store.start()
        self._sessions = 0

    def bound(self, system_id: str = "esme") -> FakeSession:
        """A transceiver bound to this process (the quota stays local: no bind slots given)."""
        self._sessions += 1
        session = FakeSession(self._sessions)
        pdu = make_pdu(CommandId.bind_transceiver, 1, system_id=system_id, password="secret", interface_version=0x34)
        reply = self.core.bind(session, pdu)
        assert isinstance(reply, Reply) and reply.pdu is not None and reply.pdu.command_status == 0
        return session

    def request(self, session: FakeSession, command: int, **params: Any) -> Reply | Deferred[Reply]:
        params.setdefault("source_addr", "447700900001")
        if command == CommandId.submit_sm:
            params.setdefault("destination_addr", "447700900002")
            params.setdefault("short_message", b"hello")
            params.setdefault("registered_delivery", 1)
        return self.core.request(session, make_pdu(command, 7, **params))

    async def submit(self, session: FakeSession, **params: Any) -> str:
        """A submit_sm accepted; its message_id."""
        await _until(lambda: self.messages.ids.blocks > 0)
        reply = await answer(self.request(session, CommandId.submit_sm, **params))
        assert reply.pdu is not None and reply.pdu.command_status == 0, reply.pdu
        message_id: str = reply.pdu.params["message_id"]
        return message_id

    def stop(self) -> None:
        self.core.stop()
        self.store.stop()


#: a DELIVRD receipt a minute after the submit_sm_resp: the messages stay ENROUTE for the test
LATER = ReceiptPlan(steps=(ReceiptStep(60.0, "DELIVRD", 0),))
