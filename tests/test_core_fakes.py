"""
Fakes and helpers shared by the core tests (no tests here).

``FakeSession`` stands in for :class:`smsc_sim.session.SMPPSession`: it
records every PDU the core delivers and hands back a Deferred the test fires
by hand.  ``Harness`` builds a core of two instances (SMPP1, SMPP2) on a
``task.Clock`` pinned at 1_700_000_000 (2023-11-14 22:13:20 UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from smsc_sim.config import AccountSettings, Config, CoreSettings, InstanceSettings, SessionSettings
from smsc_sim.contracts import (
    DeliveryWaiter,
    Event,
    MessageFacts,
    ReceiptPlan,
    ReceiptStep,
    Reply,
    RetryPolicy,
    ScenarioLimits,
    ThrottleSettings,
    Verdict,
    WindowOverride,
)
from smsc_sim.core.default_scenario import DefaultScenario
from smsc_sim.core.smsc import SMSCCore
from smsc_sim.events import EventBus
from smsc_sim.smpp.constants import PROVIDER_TEMPORARY_DELIVER_STATUSES, BindType, CommandId
from smsc_sim.smpp.pdu import PDU, make_pdu

T0 = 1_700_000_000.0


class FakeSession:
    """An ISession that records deliveries and lets the test answer them."""

    def __init__(
        self, session_id: int, instance_name: str = "SMPP1", peer: str = "127.0.0.1:40000", interface_version: int = 0x34
    ) -> None:
        self.session_id = session_id
        self.instance_name = instance_name
        self.peer = peer
        self.system_id: str | None = None
        self.bind_type: BindType | None = None
        self.interface_version = interface_version
        # the core hands accepted submits to the bus, never to the session: the fake counts none
        self.accepted_at_once = 0
        self.delivered: list[tuple[PDU, Deferred[PDU]]] = []
        self.aborted = False
        self._unanswered = 0
        self.unanswered_requests: list[PDU] = []

    def send_delivery(self, pdu: PDU, waiter: DeliveryWaiter) -> None:
        """Record the delivery; the test answers it through :meth:`answer` or :meth:`fail`."""
        d: Deferred[PDU] = Deferred()
        self.delivered.append((pdu, d))
        self._unanswered += 1

        def answered(response: PDU) -> None:
            self._unanswered -= 1
            waiter.callback(response)

        def failed(failure: Any) -> None:
            self._unanswered -= 1
            waiter.errback(failure.value)

        d.addCallbacks(answered, failed)

    def send_unanswered(self, pdu: PDU) -> int:
        """Record a request that has no response (outbind, alert_notification) and give it the next sequence."""
        self.unanswered_requests.append(pdu)
        return len(self.unanswered_requests)

    def unbind(self) -> Deferred[None]:
        return succeed(None)

    def abort(self) -> None:
        self.aborted = True

    def outbound_pending(self) -> int:
        return self._unanswered

    @property
    def pdus(self) -> list[PDU]:
        """Every PDU delivered so far."""
        return [pdu for pdu, _ in self.delivered]

    def answer(self, index: int = -1, status: int = 0) -> None:
        """Answer one delivery with a deliver_sm_resp of ``status``."""
        pdu, d = self.delivered[index]
        d.callback(make_pdu(CommandId.deliver_sm_resp, 1, status))

    def answer_all(self, status: int = 0) -> None:
        """Answer every unanswered delivery."""
        for pdu, d in self.delivered:
            if not d.called:
                d.callback(make_pdu(CommandId.deliver_sm_resp, 1, status))

    def fail(self, index: int = -1, reason: str = "timeout") -> None:
        """Fail one delivery as the session would on a timeout or close."""
        from smsc_sim.contracts import DeliveryFailed

        self.delivered[index][1].errback(DeliveryFailed(reason))


@dataclass
class ScriptedScenario:
    """An IScenarioRuntime whose answers the test sets; it records every MessageFacts and accepted message id."""

    answer: Verdict = field(default_factory=Verdict)
    plan: ReceiptPlan = field(default_factory=lambda: ReceiptPlan(steps=(ReceiptStep(1.0, "DELIVRD", 0),)))
    throttle_settings: ThrottleSettings | None = None
    temporary: frozenset[int] = PROVIDER_TEMPORARY_DELIVER_STATUSES
    facts: list[MessageFacts] = field(default_factory=list)
    limits: ScenarioLimits | None = None
    retry: RetryPolicy | None = None
    seed: int | None = None
    window: WindowOverride | None = None
    submitted: list[str] = field(default_factory=list)
    started: int = 0
    stopped: int = 0

    def throttle(self) -> ThrottleSettings | None:
        return self.throttle_settings

    def verdict(self, facts: MessageFacts) -> Verdict:
        self.facts.append(facts)
        return self.answer

    def default_receipt(self) -> ReceiptPlan:
        return self.plan

    def deliver_resp_is_temporary(self, status: int) -> bool:
        return status in self.temporary

    def on_submit(self, facts: MessageFacts, message_id: str) -> None:
        self.submitted.append(message_id)

    def start(self, host: Any) -> None:
        self.started += 1

    def describe(self) -> dict[str, Any]:
        return {"name": "scripted"}

    def stop(self) -> None:
        self.stopped += 1


def instances() -> tuple[InstanceSettings, ...]:
    return (
        InstanceSettings("SMPP1", ("tcp:0",), cluster="NA", system_id="SMPP1"),
        InstanceSettings("SMPP2", ("tcp:0",), cluster="NA", system_id="SMPP2"),
        InstanceSettings("SMPP0", ("tcp:0",), cluster="SMPP0", system_id="SMPP0"),
    )


class Harness:
    """A core of cluster NA (SMPP1 + SMPP2) with one account ``esme``/``secret``: unthrottled, 10 binds."""

    def __init__(
        self,
        scenario: Any = None,
        accounts: tuple[AccountSettings, ...] | None = None,
        cluster: str = "NA",
        **core: Any,
    ) -> None:
        self.clock = Clock()
        self.clock.rightNow = T0
        self.events_seen: list[Event] = []
        self.events = EventBus(self.clock)
        self.events.subscribe(self.events_seen.append)
        self.scenario = scenario if scenario is not None else ScriptedScenario()
        self.config = Config(
            instances=instances(),
            accounts=accounts or (AccountSettings("esme", "secret", throughput=0, max_binds=10),),
            session=SessionSettings(),
            core=replace(CoreSettings(), **core),
        )
        members = self.config.clusters()[cluster]
        self.core = SMSCCore(cluster, self.clock, self.config, members, self.scenario, self.events)
        self._ids = 0

    def session(self, instance: str = "SMPP1", **kw: Any) -> FakeSession:
        self._ids += 1
        return FakeSession(self._ids, instance, **kw)

    def bind(
        self,
        session: FakeSession,
        system_id: str = "esme",
        password: str = "secret",
        command: int = CommandId.bind_transceiver,
        interface_version: int = 0x34,
        sent: bool = True,
    ) -> Reply:
        pdu = make_pdu(command, 1, system_id=system_id, password=password, interface_version=interface_version)
        reply = self.core.bind(session, pdu)
        # the in-memory quota answers at once; a Deferred here would be a test of the shared slots
        assert isinstance(reply, Reply), reply
        if sent and reply.on_sent is not None:
            reply.on_sent()
        return reply

    def bound(self, instance: str = "SMPP1", command: int = CommandId.bind_transceiver, **kw: Any) -> FakeSession:
        """A new session bound as a transceiver (or ``command``)."""
        session = self.session(instance, **{k: v for k, v in kw.items() if k in ("peer",)})
        reply = self.bind(session, command=command, **{k: v for k, v in kw.items() if k not in ("peer",)})
        assert reply.pdu is not None and reply.pdu.command_status == 0, reply
        return session

    def request(self, session: FakeSession, command: int, sent: bool = True, seq: int = 7, **params: Any) -> Reply:
        tlvs = params.pop("tlvs", None)
        if command in (CommandId.submit_sm, CommandId.data_sm):
            params.setdefault("source_addr", "447700900001")
            params.setdefault("destination_addr", "447700900002")
            params.setdefault("source_addr_ton", 1)
            params.setdefault("source_addr_npi", 1)
            params.setdefault("dest_addr_ton", 1)
            params.setdefault("dest_addr_npi", 1)
        if command == CommandId.submit_sm:
            params.setdefault("short_message", b"hello")
        reply = self.core.request(session, make_pdu(command, seq, tlvs=tlvs, **params))
        assert isinstance(reply, Reply), reply
        if sent and reply.pdu is not None and reply.on_sent is not None:
            reply.on_sent()
        return reply

    def submit(self, session: FakeSession, sent: bool = True, **params: Any) -> Reply:
        return self.request(session, CommandId.submit_sm, sent=sent, **params)

    def submit_id(self, session: FakeSession, **params: Any) -> str:
        reply = self.submit(session, **params)
        assert reply.pdu is not None and reply.pdu.command_status == 0, reply.pdu
        message_id: str = reply.pdu.params["message_id"]
        return message_id

    def kinds(self, kind: str) -> list[Event]:
        return [event for event in self.events_seen if event.kind == kind]


__all__ = ["FakeSession", "Harness", "ScriptedScenario", "T0", "DefaultScenario"]
