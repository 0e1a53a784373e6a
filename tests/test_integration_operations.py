"""
The SMPP 3.4 operation set end to end, over loopback sockets, plus the
clock-driven details the core tests leave out (``OperationClockTests``).

The simulator runs in-process on the real reactor (ephemeral ports); each
ESME runs in a thread: smpplib where it has the command (submit_sm,
query_sm, data_sm, deliver_sm), and a small blocking client on the
project's codec where it has not (submit_multi, cancel_sm, replace_sm,
receiving data_sm).  The store is read on the reactor thread through
``blockingCallFromThread``.  Every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import struct
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import pytest_twisted
import smpplib.client
import smpplib.consts
import smpplib.gsm
import smpplib.smpp
from twisted.internet import threads
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.contracts import ReceiptPlan, ReceiptStep
from smsc_sim.service import build_service
from smsc_sim.smpp.codec import decode, encode
from smsc_sim.smpp.concat import concat_info, payload_of
from smsc_sim.smpp.constants import CommandId, CommandStatus, MessageState, Tag, response_id
from smsc_sim.smpp.pdu import FIELDS, PDU, DestAddress, UnsuccessSME, make_pdu
from smsc_sim.smpp.receipt import parse_receipt
from smsc_sim.testing.harness import ephemeral_config
from tests.test_core_fakes import T0, Harness, ScriptedScenario

T = TypeVar("T")

SRC = "447700900001"
FAST = "447700900002"  # DELIVRD 50 ms after the response
PENDING = "5550001"  # DELIVRD only after 60 s: pending for the whole test
INTERMEDIATE = "5560001"  # ENROUTE intermediate at 10 ms, DELIVRD at 50 ms

SCENARIO = """\
name: operations
description: fast receipts; 555... stays pending; 556... gets an intermediate step
throttle: off
receipt: {stat: DELIVRD, delay: 50ms}
rules:
  - {name: pending, match: {destination: "555"}, receipt: {delay: 60s}}
  - name: intermediate
    match: {destination: "556"}
    receipt: {intermediate: [{stat: ENROUTE, delay: 10ms}]}
"""

CONFIG = """\
accounts:
  - system_id: smppclient1
    password: password
    max_binds: 4
    throughput: 0
    distribution_lists:
      friends: ["447700900021", "447700900022"]
  - {system_id: dataesme, password: password, throughput: 0, receipts_as: data_sm}
  - {system_id: gsmesme, password: password, throughput: 0, default_alphabet: gsm0338}
"""


def integration(test: Callable[..., Any]) -> Any:
    """A socket test: marked ``integration``, run as a coroutine on the reactor."""
    return pytest.mark.integration(pytest_twisted.ensureDeferred(test))


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A configuration file (three accounts) pointing at the test scenario."""
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + f"scenario: {tmp_path / 'scenario.yaml'}\n")
    return path


class Running:
    """A started simulator, and ways to reach it from an ESME thread."""

    def __init__(self, simulator: Any) -> None:
        self.simulator = simulator
        self.port = simulator.endpoints()["SMPP1"][0][1]

    def on_reactor(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the reactor thread and return its result (from an ESME thread)."""
        from twisted.internet import reactor

        result: T = threads.blockingCallFromThread(reactor, fn)  # type: ignore[arg-type]
        return result

    def record(self, message_id: str) -> dict[str, Any]:
        """The store record of a message id (or submit_multi key), as the inspection API shows it."""
        found = self.on_reactor(lambda: self.simulator.cores["NA"].message(message_id))
        assert found is not None, f"no record {message_id}"
        return dict(self.on_reactor(found.to_dict))


async def run(config_path: Path, esme: Callable[[Running], T], **core: Any) -> T:
    """Start a simulator from the config file (with ``core`` overrides), run ``esme`` in a thread, stop."""
    from twisted.internet import reactor

    config = load_config(str(config_path), {}, {})
    config = dataclasses.replace(config, core=dataclasses.replace(config.core, **core))
    simulator = build_service(dataclasses.replace(ephemeral_config(config), api_endpoint=""), reactor)
    simulator.startService()
    try:
        await simulator.when_listening()
        return await threads.deferToThread(esme, Running(simulator))
    finally:
        await simulator.stopService()


class SmpplibESME:
    """An smpplib transceiver that records every response (error ones too) and every deliver_sm received."""

    def __init__(self, port: int, system_id: str = "smppclient1") -> None:
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
        self.responses: list[Any] = []
        self.received: list[Any] = []
        for setter in ("message_sent", "query_resp", "error_pdu"):
            getattr(self.client, f"set_{setter}_handler")(lambda pdu: self.responses.append(pdu))
        self.client.set_message_received_handler(lambda pdu: self.received.append(pdu))
        self.client.connect()
        self.client.bind_transceiver(system_id=system_id, password="password")

    def read_until(self, done: Callable[[], bool], seconds: float = 5.0) -> None:
        """Read PDUs until ``done()``; fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, "timed out waiting for PDUs from the simulator"
            self.client.read_once(auto_send_enquire_link=False)

    def response(self, send: Callable[[], object]) -> Any:
        """Send a request with ``send()`` and return its response (smpplib's PDU, ``.status`` set)."""
        before = len(self.responses)
        send()
        self.read_until(lambda: len(self.responses) > before)
        return self.responses[-1]

    def submit(self, destination: str = FAST, **fields: Any) -> Any:
        """submit_sm from SRC; returns its response."""
        fields = {"short_message": b"hello", "source_addr": SRC, "destination_addr": destination, **fields}
        addressing = {"source_addr_ton": 1, "source_addr_npi": 1, "dest_addr_ton": 1, "dest_addr_npi": 1}
        return self.response(lambda: self.client.send_message(**addressing, **fields))

    def query(self, message_id: str, source: str = SRC) -> Any:
        """query_sm; returns its response."""
        query = functools.partial(self.client.query_message, source_addr_ton=1, source_addr_npi=1)
        return self.response(lambda: query(message_id=message_id, source_addr=source))

    def sync(self) -> None:
        """An enquire_link round trip: then the simulator has read all sent before (deliver_sm_resp too)."""
        self.client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=self.client))
        deadline = time.monotonic() + 5
        while self.client.read_pdu().command != "enquire_link_resp":
            assert time.monotonic() < deadline, "no enquire_link_resp"

    def __enter__(self) -> SmpplibESME:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.disconnect()


class RawESME:
    """A blocking ESME on the project's codec, for the commands smpplib lacks; answers what the SMSC sends."""

    def __init__(self, port: int, system_id: str = "smppclient1") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sequence = 0
        #: every PDU read, in order (requests from the SMSC and responses)
        self.log: list[PDU] = []
        bind = make_pdu(CommandId.bind_transceiver, 0, system_id=system_id, password="password", interface_version=0x34)
        assert self.call(bind).command_status == 0

    @property
    def inbox(self) -> list[PDU]:
        """The deliver_sm and data_sm received so far."""
        return [pdu for pdu in self.log if pdu.command_id in (CommandId.deliver_sm, CommandId.data_sm)]

    def _read_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "the simulator closed the connection"
            data += chunk
        return data

    def read(self) -> PDU:
        """Read one PDU; requests from the SMSC are answered at once."""
        head = self._read_exact(4)
        pdu = decode(head + self._read_exact(struct.unpack(">I", head)[0] - 4))
        self.log.append(pdu)
        if pdu.command_id in (CommandId.deliver_sm, CommandId.data_sm, CommandId.enquire_link):
            self.sock.sendall(encode(make_pdu(response_id(pdu.command_id), pdu.sequence_number)))
        return pdu

    def call(self, request: PDU) -> PDU:
        """Send a request and read until its response."""
        self.sequence += 1
        self.sock.sendall(encode(dataclasses.replace(request, sequence_number=self.sequence)))
        answers = (response_id(request.command_id), CommandId.generic_nack)
        while True:
            pdu = self.read()
            if pdu.sequence_number == self.sequence and pdu.command_id in answers:
                return pdu

    def request(self, command: int, tlvs: dict[int, bytes] | None = None, **params: Any) -> PDU:
        """Send ``command`` with these fields (source SRC and TON/NPI 1 unless given); return its response."""
        names = {name for name, _, _ in FIELDS[command]}
        defaults = dict(source_addr=SRC, source_addr_ton=1, source_addr_npi=1, dest_addr_ton=1, dest_addr_npi=1)
        params = {**{key: value for key, value in defaults.items() if key in names}, **params}
        return self.call(make_pdu(command, 0, tlvs=tlvs, **params))

    def submit_id(self, destination: str = FAST, **params: Any) -> str:
        """submit_sm (SRC to ``destination``) that must succeed; its message id."""
        response = self.request(CommandId.submit_sm, destination_addr=destination, **params)
        assert response.command_status == 0, response
        message_id: str = response.params["message_id"]
        return message_id

    def wait(self, done: Callable[[list[PDU]], bool], seconds: float = 5.0) -> list[PDU]:
        """Read until ``done(inbox)``; fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        while not done(self.inbox):
            assert time.monotonic() < deadline, f"timed out; received {[p.name for p in self.inbox]}"
            self.read()
        return self.inbox

    def __enter__(self) -> RawESME:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()


def sme(address: str) -> DestAddress:
    """A submit_multi destination that is an SME address (dest_flag 1), international E.164."""
    return DestAddress(1, 1, 1, address)


def receipt_fields(pdu: PDU) -> dict[str, str]:
    """The fields of a receipt's text (deliver_sm short_message or data_sm message_payload)."""
    text = pdu.params.get("short_message") or pdu.tlvs[Tag.message_payload]
    return parse_receipt(text.decode("ascii"))


@integration
async def test_long_ucs2_message_in_udh_parts(config_path: Path) -> None:
    """
    A long UCS-2 text with emoji, split by smpplib into UDH parts (one emoji
    cut in two between parts 1 and 2), submitted part by part: each part
    gets its own message id and its own DELIVRD receipt, and every part's
    store record shows the whole reassembled text.
    """
    text = "A" * 66 + "\U0001F600" + " naïve café ✓ " * 8 + "\U0001F44D end"
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    assert (coding, esm_class, len(parts)) == (8, 0x40, 3)

    def esme(sim: Running) -> tuple[list[str], list[Any], list[dict[str, Any]]]:
        with SmpplibESME(sim.port) as client:
            ids = []
            for part in parts:
                resp = client.submit(short_message=part, esm_class=esm_class, data_coding=coding, registered_delivery=1)
                assert resp.status == 0
                ids.append(resp.message_id.decode())
            client.read_until(lambda: len(client.received) == len(parts))
            return ids, client.received, [sim.record(message_id) for message_id in ids]

    ids, receipts, records = await run(config_path, esme)
    assert len(set(ids)) == 3
    assert sorted(r.receipted_message_id.decode() for r in receipts) == sorted(ids)
    assert {parse_receipt(r.short_message.decode())["stat"] for r in receipts} == {"DELIVRD"}
    for seqnum, record in enumerate(records, start=1):
        concat = record["concat"]
        assert (concat["kind"], concat["total"], concat["seqnum"], concat["complete"]) == ("udh8", 3, seqnum, True)
        assert (concat["parts"], concat["text"], record["state"]) == (ids, text, "DELIVERED")
    # part 1 ends in half an emoji: alone it cannot be read, the whole message can
    assert (records[0]["text"], records[0]["undecodable"]) == (None, True)


@integration
async def test_query_sm(config_path: Path) -> None:
    """
    query_sm (smpplib) of a pending message answers ENROUTE with an empty
    final_date; of a delivered one DELIVERED with final_date, the time it
    became final in UTC (``YYMMDDhhmmss000+``); an unknown id or another
    source address gets ESME_RQUERYFAIL.
    """

    def esme(sim: Running) -> tuple[list[Any], float]:
        with SmpplibESME(sim.port) as client:
            pending = client.submit(PENDING).message_id.decode()
            done = client.submit(FAST, registered_delivery=1).message_id.decode()
            client.read_until(lambda: len(client.received) == 1)
            answers = [client.query(pending), client.query(done), client.query("0B00000000000000")]
            return answers + [client.query(done, source="1")], sim.record(done)["final_time"]

    (first, second, unknown, other_source), final_time = await run(config_path, esme)
    assert (first.status, first.message_state, first.final_date, first.error_code) == (0, 1, b"", 0)
    assert (second.status, second.message_state) == (0, smpplib.consts.SMPP_MESSAGE_STATE_DELIVERED)
    assert second.final_date.decode() == time.strftime("%y%m%d%H%M%S000+", time.gmtime(final_time))
    assert (unknown.status, other_source.status) == (CommandStatus.ESME_RQUERYFAIL,) * 2


@integration
async def test_cancel_sm(config_path: Path) -> None:
    """
    A message scheduled a minute ahead (relative schedule_delivery_time) is
    pending; cancel_sm ends it DELETED: cancel_sm_resp first, then a DELETED
    receipt (message_state 4).  Cancelling it again, or cancelling a
    delivered message, gets ESME_RCANCELFAIL.
    """

    def esme(sim: Running) -> dict[str, Any]:
        with RawESME(sim.port) as client:
            scheduled = client.submit_id(registered_delivery=1, schedule_delivery_time="000000000100000R")
            delivered = client.submit_id(registered_delivery=1)
            client.wait(lambda inbox: len(inbox) == 1)
            before = sim.record(scheduled)
            mark = len(client.log)
            cancel = client.request(CommandId.cancel_sm, message_id=scheduled)
            client.wait(lambda inbox: len(inbox) == 2)
            order = [pdu.name for pdu in client.log[mark:]]
            again = client.request(CommandId.cancel_sm, message_id=scheduled)
            final = client.request(CommandId.cancel_sm, message_id=delivered)
            after = sim.record(scheduled)
            receipt = client.inbox[1]
            return dict(scheduled=scheduled, before=before, after=after, cancel=cancel, order=order, receipt=receipt,
                        again=again, final=final)  # fmt: skip

    result = await run(config_path, esme)
    before, after, receipt = result["before"], result["after"], result["receipt"]
    assert before["state"] == "ENROUTE"
    assert before["schedule_time"] == pytest.approx(before["submit_time"] + 60, abs=1)
    assert (result["cancel"].command_id, result["cancel"].command_status) == (CommandId.cancel_sm_resp, 0)
    assert result["order"] == ["cancel_sm_resp", "deliver_sm"]
    assert (after["state"], after["reason"]) == ("DELETED", "cancelled by cancel_sm")
    assert receipt_fields(receipt)["stat"] == "DELETED"
    assert receipt.tlvs[Tag.message_state] == bytes([MessageState.DELETED])
    assert receipt.tlv_cstring(Tag.receipted_message_id) == result["scheduled"]
    assert [(r["stat"], r["err"], r["outcome"]) for r in after["receipts"]] == [("DELETED", 99, "acked")]
    assert result["again"].command_status == CommandStatus.ESME_RCANCELFAIL
    assert result["final"].command_status == CommandStatus.ESME_RCANCELFAIL


@integration
async def test_replace_sm_and_replace_if_present(config_path: Path) -> None:
    """
    replace_sm of a pending message changes its text in place (same id);
    replace_sm of a delivered message gets ESME_RREPLACEFAIL; a submit_sm
    with replace_if_present_flag 1 to the same source, destination and
    service_type is answered with the pending message's id and replaces its
    text, so the store still holds one message to that destination.
    """

    def esme(sim: Running) -> dict[str, Any]:
        with RawESME(sim.port) as client:
            pending = client.submit_id(PENDING, short_message=b"first")
            request = client.request
            replaced = request(CommandId.replace_sm, message_id=pending, short_message=b"2nd", registered_delivery=1)
            after_replace = sim.record(pending)
            present = request(CommandId.submit_sm, destination_addr=PENDING, short_message=b"3rd",
                              replace_if_present_flag=1)  # fmt: skip
            after_present = sim.record(pending)
            delivered = client.submit_id(registered_delivery=1)
            client.wait(lambda inbox: len(inbox) == 1)
            late = client.request(CommandId.replace_sm, message_id=delivered, short_message=b"too late")
            count = sim.on_reactor(lambda: len(sim.simulator.cores["NA"].messages(destination=PENDING)))
            return dict(pending=pending, replaced=replaced, after_replace=after_replace, present=present,
                        after_present=after_present, late=late, count=count)  # fmt: skip

    result = await run(config_path, esme)
    assert (result["replaced"].command_id, result["replaced"].command_status) == (CommandId.replace_sm_resp, 0)
    after = result["after_replace"]
    expected = (result["pending"], "2nd", 1, "ENROUTE")
    assert (after["message_id"], after["text"], after["registered_delivery"], after["state"]) == expected
    assert after["replaced_time"] is not None and [h["state"] for h in after["history"]] == ["ENROUTE", "REPLACED"]
    assert (result["present"].command_status, result["present"].params["message_id"]) == (0, result["pending"])
    assert (result["after_present"]["text"], result["count"]) == ("3rd", 1)
    assert result["late"].command_status == CommandStatus.ESME_RREPLACEFAIL


@integration
async def test_submit_multi(config_path: Path) -> None:
    """
    submit_multi to two addresses and an unknown distribution list: one
    message id, the list in unsuccess_sme with ESME_RINVDLNAME, and a DELIVRD
    receipt from each good destination carrying that id.  The account's
    configured list ``friends`` expands to its two members, each with a
    record and a receipt.
    """

    def esme(sim: Running) -> dict[str, Any]:
        with RawESME(sim.port) as client:
            multi = functools.partial(client.request, CommandId.submit_multi, registered_delivery=1)
            first = multi(dest_address=(sme("447700900011"), DestAddress(2, 0, 0, "nobody"), sme("447700900012")))
            client.wait(lambda inbox: len(inbox) == 2)
            listed = multi(dest_address=(DestAddress(2, 0, 0, "friends"),))
            client.wait(lambda inbox: len(inbox) == 4)
            message_id = listed.params["message_id"]
            records = [sim.record(message_id), sim.record(f"{message_id}/2")]
            return {"first": first, "listed": listed, "inbox": client.inbox, "records": records}

    result = await run(config_path, esme)
    first, listed, receipts = result["first"], result["listed"], result["inbox"]
    assert (first.command_id, first.command_status) == (CommandId.submit_multi_resp, 0)
    assert first.params["unsuccess_sme"] == (UnsuccessSME(0, 0, "nobody", CommandStatus.ESME_RINVDLNAME),)
    assert [(r.params["source_addr"], r.tlv_cstring(Tag.receipted_message_id)) for r in receipts[:2]] == [
        ("447700900011", first.params["message_id"]),
        ("447700900012", first.params["message_id"]),
    ]
    assert {receipt_fields(r)["stat"] for r in receipts} == {"DELIVRD"}
    assert listed.params["unsuccess_sme"] == ()
    assert sorted(r.params["source_addr"] for r in receipts[2:]) == ["447700900021", "447700900022"]
    assert {r.tlv_cstring(Tag.receipted_message_id) for r in receipts[2:]} == {listed.params["message_id"]}
    addresses = [(r["destination_addr"], r["dest_addr_ton"], r["dest_addr_npi"]) for r in result["records"]]
    assert addresses == [("447700900021", 1, 1), ("447700900022", 1, 1)]


@integration
async def test_data_sm(config_path: Path) -> None:
    """
    data_sm (smpplib) with its text in message_payload gets a data_sm_resp
    with a 16-hex-digit message id, a record holding the text, and a DELIVRD
    deliver_sm receipt whose text has the id in decimal.
    """
    text = "data_sm payload " * 20  # 320 octets: more than short_message can hold

    def esme(sim: Running) -> tuple[Any, dict[str, Any], Any]:
        with SmpplibESME(sim.port) as client:
            addressing = {"source_addr_ton": 1, "source_addr_npi": 1, "dest_addr_ton": 1, "dest_addr_npi": 1}
            pdu = smpplib.smpp.make_pdu(
                "data_sm", client=client.client, source_addr=SRC, destination_addr=FAST, registered_delivery=1,
                message_payload=text.encode("ascii"), **addressing,
            )  # fmt: skip
            client.client.send_pdu(pdu)
            resp = client.client.read_pdu()
            client.read_until(lambda: len(client.received) == 1)
            return resp, sim.record(resp.message_id.decode()), client.received[0]

    resp, record, receipt = await run(config_path, esme)
    assert (resp.command, resp.status) == ("data_sm_resp", 0)
    message_id = resp.message_id.decode()
    assert len(message_id) == 16 and message_id.startswith("0B") and int(message_id, 16) > 0
    assert (record["command"], record["text"], record["state"]) == ("data_sm", text, "DELIVERED")
    assert Tag.message_payload in record["tlv_tags"]
    fields = parse_receipt(receipt.short_message.decode())
    assert (fields["id"], fields["stat"]) == (str(int(message_id, 16)), "DELIVRD")
    assert receipt.receipted_message_id.decode() == message_id


@integration
async def test_receipts_as_data_sm(config_path: Path) -> None:
    """
    An account configured with ``receipts_as: data_sm`` gets its receipt as a
    data_sm: esm_class 0x04, the receipt text in message_payload, addresses
    swapped, receipted_message_id and message_state TLVs.
    """

    def esme(sim: Running) -> tuple[str, list[PDU]]:
        with RawESME(sim.port, system_id="dataesme") as client:
            return client.submit_id(registered_delivery=1), client.wait(lambda inbox: len(inbox) == 1)

    message_id, (receipt,) = await run(config_path, esme)
    assert (receipt.command_id, receipt.params["esm_class"]) == (CommandId.data_sm, 0x04)
    assert (receipt.params["source_addr"], receipt.params["destination_addr"]) == (FAST, SRC)
    fields = receipt_fields(receipt)
    assert (fields["id"], fields["stat"]) == (str(int(message_id, 16)), "DELIVRD")
    assert receipt.tlv_cstring(Tag.receipted_message_id) == message_id
    assert receipt.tlvs[Tag.message_state] == bytes([MessageState.DELIVERED])


@integration
async def test_schedule_and_validity(config_path: Path) -> None:
    """
    A malformed schedule_delivery_time gets ESME_RINVSCHED; a validity_period
    already past, or before the scheduled time, gets ESME_RINVEXPIRY; a
    relative validity of 1 s on a message not delivered by then ends it
    EXPIRED with an EXPIRED receipt (err 002) about a second later.
    """

    def esme(sim: Running) -> tuple[list[int], Any, float, dict[str, Any]]:
        with SmpplibESME(sim.port) as client:
            statuses = [
                client.submit(schedule_delivery_time="241301000000000+").status,  # month 13
                client.submit(schedule_delivery_time="0000000001000").status,  # 13 characters
                client.submit(validity_period="000101000000000+").status,  # 1 January 2000
                client.submit(schedule_delivery_time="000000000200000R", validity_period="000000000100000R").status,
            ]
            started = time.monotonic()
            expiring = client.submit(PENDING, validity_period="000000000001000R", registered_delivery=1)
            client.read_until(lambda: len(client.received) == 1)
            waited = time.monotonic() - started
            return statuses, client.received[0], waited, sim.record(expiring.message_id.decode())

    statuses, receipt, waited, record = await run(config_path, esme)
    assert statuses == [CommandStatus.ESME_RINVSCHED] * 2 + [CommandStatus.ESME_RINVEXPIRY] * 2
    fields = parse_receipt(receipt.short_message.decode())
    assert (fields["stat"], fields["err"], receipt.message_state) == ("EXPIRED", "002", MessageState.EXPIRED)
    assert 0.5 < waited < 3
    assert (record["state"], record["reason"]) == ("EXPIRED", "validity period reached")


@integration
async def test_registered_delivery_forms(config_path: Path) -> None:
    """
    registered_delivery 0 asks for no receipt and 2 for failures only (a
    DELIVRD message sends none, yet both end DELIVERED in the store); 1 gets
    the final receipt; 0x11 also gets the intermediate ENROUTE notification
    (esm_class 0x20) before the final one (esm_class 0x04).
    """

    def esme(sim: Running) -> list[Any]:
        with SmpplibESME(sim.port) as client:
            silent = [client.submit(FAST, registered_delivery=rd).message_id.decode() for rd in (0, 2)]
            client.submit(INTERMEDIATE, registered_delivery=0x11)
            client.submit(FAST, registered_delivery=1)
            client.read_until(lambda: len(client.received) == 3)
            assert [sim.record(message_id)["state"] for message_id in silent] == ["DELIVERED"] * 2
            return client.received

    received = await run(config_path, esme)
    seen = [(r.source_addr.decode(), r.esm_class, parse_receipt(r.short_message.decode())["stat"]) for r in received]
    # the two messages' receipts may interleave; each message's own come in order
    assert [s[1:] for s in seen if s[0] == INTERMEDIATE] == [(0x20, "ENROUTE"), (0x04, "DELIVRD")]
    assert [s for s in seen if s[0] == FAST] == [(FAST, 0x04, "DELIVRD")]


@integration
async def test_data_coding_zero_per_account(config_path: Path) -> None:
    """
    data_coding 0 is read with the account's default alphabet: octet 0xE9 is
    ``é`` for a Latin-1 account; octet 0x05 is ``é`` for a ``gsm0338`` one.
    data_coding 8 is UCS-2 for both.
    """

    def esme(sim: Running) -> list[str | None]:
        texts: list[str | None] = []
        for system_id, octets in (("smppclient1", b"caf\xe9"), ("gsmesme", b"caf\x05")):
            with RawESME(sim.port, system_id=system_id) as client:
                for coding, data in ((0, octets), (8, "café".encode("utf-16-be"))):
                    message_id = client.submit_id(PENDING, data_coding=coding, short_message=data)
                    texts.append(sim.record(message_id)["text"])
        return texts

    assert await run(config_path, esme) == ["café"] * 4


def mo_text(pdus: list[Any]) -> str:
    """Put smpplib deliver_sm parts (UDH, SAR or message_payload) back together and decode them."""
    parts = []
    for pdu in pdus:
        tlvs: dict[int, bytes] = {Tag.message_payload: pdu.message_payload} if pdu.message_payload else {}
        if pdu.sar_msg_ref_num is not None:
            tlvs[Tag.sar_msg_ref_num] = pdu.sar_msg_ref_num.to_bytes(2, "big")
            tlvs[Tag.sar_total_segments] = bytes([pdu.sar_total_segments])
            tlvs[Tag.sar_segment_seqnum] = bytes([pdu.sar_segment_seqnum])
        short_message = pdu.short_message or b""
        info = concat_info(pdu.esm_class, short_message, tlvs)
        parts.append((info.seqnum if info else 1, payload_of(pdu.esm_class, short_message, tlvs)))
    data = b"".join(payload for _, payload in sorted(parts))
    return data.decode("utf-16-be" if pdus[0].data_coding == 8 else "latin-1")


@integration
async def test_mo_injection(config_path: Path) -> None:
    """
    simulator.inject_mo reaches an smpplib transceiver as deliver_sm: plain
    text in one part (data_coding 0), UCS-2 text with an emoji (data_coding
    8), and a long text cut with an 8-bit UDH (esm_class 0x40), a 16-bit
    UDH, SAR TLVs, or sent whole in message_payload; each reads back as the
    injected text, and each MO record ends DELIVERED once answered.
    """
    long_text = "Long MO message, part of a test of concatenation. " * 7  # 357 characters: 3 parts
    cases = {
        "plain": ("Hello from a handset", "udh8"),
        "ucs2": ("Grüße \U0001F600", "udh8"),
        "udh8": (long_text, "udh8"),
        "udh16": (long_text, "udh16"),
        "sar": (long_text, "sar"),
        "payload": (long_text, "payload"),
    }

    def esme(sim: Running) -> tuple[dict[str, list[Any]], list[str]]:
        with SmpplibESME(sim.port) as client:
            injected: dict[str, list[str]] = {}
            for name, (text, split) in cases.items():
                inject = functools.partial(sim.simulator.inject_mo, "smppclient1", "447700900099", SRC, text)
                injected[name] = sim.on_reactor(functools.partial(inject, split=split))
            client.read_until(lambda: len(client.received) == sum(len(ids) for ids in injected.values()))
            received: dict[str, list[Any]] = {}
            for name, ids in injected.items():
                received[name], client.received = client.received[: len(ids)], client.received[len(ids) :]
            client.sync()
            return received, [sim.record(ids[0])["state"] for ids in injected.values()]

    received, states = await run(config_path, esme)
    counts = {name: len(parts) for name, parts in received.items()}
    assert counts == {"plain": 1, "ucs2": 1, "udh8": 3, "udh16": 3, "sar": 3, "payload": 1}
    for name, (text, _) in cases.items():
        assert mo_text(received[name]) == text, name
    assert [p.data_coding for p in received["plain"] + received["ucs2"]] == [0, 8]
    assert {p.esm_class for p in received["udh8"] + received["udh16"]} == {0x40}
    assert received["udh16"][0].short_message[:3] == b"\x06\x08\x04"
    assert [p.sar_segment_seqnum for p in received["sar"]] == [1, 2, 3]
    assert (received["payload"][0].short_message or b"") == b""
    assert {p.source_addr.decode() for parts in received.values() for p in parts} == {"447700900099"}
    assert states == ["DELIVERED"] * 6


@integration
async def test_store_bound(config_path: Path) -> None:
    """
    With store_max_messages 3 and three pending messages, a fourth submit
    gets ESME_RMSGQFUL; once one is cancelled (final, so evictable) the next
    submit is accepted.  A submit_multi then is answered ESME_ROK with each
    destination in unsuccess_sme as ESME_RMSGQFUL.
    """

    def esme(sim: Running) -> list[int]:
        with RawESME(sim.port) as client:
            ids = [client.submit_id(PENDING) for _ in range(3)]
            statuses = [client.request(CommandId.submit_sm, destination_addr=PENDING).command_status]
            statuses.append(client.request(CommandId.cancel_sm, message_id=ids[0]).command_status)
            for _ in range(2):
                statuses.append(client.request(CommandId.submit_sm, destination_addr=PENDING).command_status)
            multi = client.request(CommandId.submit_multi, dest_address=(sme(PENDING), sme("5550002")))
            return statuses + [multi.command_status] + [u.error_status_code for u in multi.params["unsuccess_sme"]]

    full = CommandStatus.ESME_RMSGQFUL
    assert await run(config_path, esme, store_max_messages=3) == [full, 0, 0, full, 0, full, full]


def pending_harness(**core: Any) -> Harness:
    """A core whose messages are delivered only after 100 s (pending during a test)."""
    return Harness(ScriptedScenario(plan=ReceiptPlan(steps=(ReceiptStep(100, "DELIVRD"),))), **core)


class OperationClockTests(SynchronousTestCase):
    """Operation details checked on a task.Clock (no sockets)."""

    def test_cancel_receipt_waits_for_response(self) -> None:
        """cancel_sm ends the message DELETED at once; its DELETED receipt goes only once cancel_sm_resp is written."""
        h = pending_harness()
        s = h.bound()
        message_id = h.submit_id(s, registered_delivery=1)
        reply = h.request(s, CommandId.cancel_sm, sent=False, message_id=message_id, source_addr=SRC)
        self.assertEqual(h.core.message(message_id).state, MessageState.DELETED)  # type: ignore[union-attr]
        self.assertEqual(s.pdus, [])
        assert reply.on_sent is not None
        reply.on_sent()
        [receipt] = s.pdus
        self.assertIn(b"stat:DELETED err:099", receipt.params["short_message"])

    def test_cancel_and_query_submit_multi(self) -> None:
        """
        query_sm of a submit_multi id reports its first destination only
        (``<id>/<n>`` reaches the n-th); cancel_sm of the id cancels every
        destination still pending.
        """
        h = pending_harness()
        s = h.bound()
        dests = (sme("111"), sme("222"), sme("333"))
        reply = h.request(s, CommandId.submit_multi, source_addr=SRC, dest_address=dests, registered_delivery=1)
        message_id = reply.pdu.params["message_id"]  # type: ignore[union-attr]
        keys = (message_id, f"{message_id}/2", f"{message_id}/3")
        # one verdict, on the first destination
        self.assertEqual([facts.destination_addr for facts in h.scenario.facts], ["111"])
        h.core.force_receipt(keys[1], "UNDELIV")
        first, second = (h.request(s, CommandId.query_sm, message_id=key, source_addr=SRC).pdu for key in keys[:2])
        self.assertEqual(first.params["message_state"], MessageState.ENROUTE)  # type: ignore[union-attr]
        p = second.params  # type: ignore[union-attr]
        self.assertEqual((p["message_state"], p["error_code"], p["final_date"]), (5, 1, "231114221320000+"))
        cancel = h.request(s, CommandId.cancel_sm, message_id=message_id, source_addr=SRC).pdu
        self.assertEqual(cancel.command_status, 0)  # type: ignore[union-attr]
        states = [h.core.message(key).state.name for key in keys]  # type: ignore[union-attr]
        self.assertEqual(states, ["DELETED", "UNDELIVERABLE", "DELETED"])
        stats = [p.params["short_message"].split(b"stat:")[1][:7] for p in s.pdus]
        self.assertEqual(stats, [b"UNDELIV", b"DELETED", b"DELETED"])

    def test_replace_sm_times(self) -> None:
        """
        replace_sm with NULL schedule and validity keeps the message's own; a
        relative validity given replaces it; registered_delivery 3 gets
        ESME_RINVREGDLVFLG, bad times ESME_RINVSCHED / ESME_RINVEXPIRY.
        """
        h = pending_harness()
        s = h.bound()
        message_id = h.submit_id(s, schedule_delivery_time="000000000100000R", validity_period="000000001000000R")
        ok = h.request(s, CommandId.replace_sm, message_id=message_id, source_addr=SRC, short_message=b"b").pdu
        self.assertEqual(ok.command_status, 0)  # type: ignore[union-attr]
        record = h.core.message(message_id)
        assert record is not None
        self.assertEqual((record.schedule_time, record.validity_time), (T0 + 60, T0 + 600))
        h.request(s, CommandId.replace_sm, message_id=message_id, source_addr=SRC, validity_period="000000000200000R")
        self.assertEqual((record.schedule_time, record.validity_time), (T0 + 60, T0 + 120))
        replace = functools.partial(h.request, s, CommandId.replace_sm, message_id=message_id, source_addr=SRC)
        bad = [replace(registered_delivery=3), replace(schedule_delivery_time="x")]
        bad.append(replace(validity_period="000101000000000+"))  # 1 January 2000
        expected = [CommandStatus.ESME_RINVREGDLVFLG, CommandStatus.ESME_RINVSCHED, CommandStatus.ESME_RINVEXPIRY]
        self.assertEqual([reply.pdu.command_status for reply in bad], expected)  # type: ignore[union-attr]

    def test_replace_restarts_plan_and_receipt_dates(self) -> None:
        """
        After replace_sm the plan starts over from the replace_sm_resp: the
        old step never fires, and the receipt's submit date is the time of
        the replace.
        """
        h = pending_harness()
        s = h.bound()
        message_id = h.submit_id(s, registered_delivery=1)
        h.clock.advance(60)
        h.request(s, CommandId.replace_sm, message_id=message_id, source_addr=SRC, registered_delivery=1)
        h.clock.advance(40)
        self.assertEqual(s.pdus, [])
        h.clock.advance(60)
        [receipt] = s.pdus
        fields = parse_receipt(receipt.params["short_message"].decode())
        self.assertEqual((fields["submit date"], fields["done date"]), ("2311142214", "2311142216"))

    def test_schedule_cap_and_default_validity(self) -> None:
        """
        A relative schedule_delivery_time beyond max_schedule is cut to it;
        one already past is accepted and means now; without a validity_period
        the default validity counts from the scheduled time (or from the submit).
        """
        h = pending_harness(max_schedule=3600.0, default_validity=100.0)
        s = h.bound()
        capped = h.core.message(h.submit_id(s, schedule_delivery_time="000001000000000R"))  # one day
        plain = h.core.message(h.submit_id(s))
        past = h.core.message(h.submit_id(s, schedule_delivery_time="231114000000000+"))  # that morning
        assert capped is not None and plain is not None and past is not None
        self.assertEqual((capped.schedule_time, capped.validity_time), (T0 + 3600, T0 + 3700))
        self.assertEqual((plain.schedule_time, plain.validity_time), (None, T0 + 100))
        self.assertEqual(past.validity_time, T0 + 100)  # a time already past means now

    def test_data_sm_qos_time_to_live(self) -> None:
        """data_sm's qos_time_to_live (seconds) is its validity, capped at max_validity; without it, the default."""
        h = pending_harness(max_validity=60.0, default_validity=100.0)
        s = h.bound()
        ttls = []
        for seconds in (30, 3600, None):
            tlvs = {Tag.message_payload: b"x"}
            if seconds is not None:
                tlvs[Tag.qos_time_to_live] = seconds.to_bytes(4, "big")
            response = h.request(s, CommandId.data_sm, tlvs=tlvs).pdu
            record = h.core.message(response.params["message_id"])  # type: ignore[union-attr]
            assert record is not None
            ttls.append(record.validity_time - T0)
        self.assertEqual(ttls, [30, 60, 100])

    def test_account_distribution_list(self) -> None:
        """An account's distribution list expands to its members: digits as TON 1 NPI 1, others as TON 5 NPI 0."""
        account = AccountSettings("esme", "secret", throughput=0, distribution_lists={"team": ("447700900031", "Acme")})
        h = Harness(accounts=(account,))
        team = (DestAddress(2, 0, 0, "team"),)
        reply = h.request(h.bound(), CommandId.submit_multi, source_addr=SRC, dest_address=team)
        self.assertEqual(reply.pdu.params["unsuccess_sme"], ())  # type: ignore[union-attr]
        members = [(r.dest_ton, r.dest_npi, r.destination_addr) for r in h.core.messages()]
        self.assertEqual(members, [(1, 1, "447700900031"), (5, 0, "Acme")])

    def test_mo_state_follows_deliver_sm_resp(self) -> None:
        """An MO answered with a permanent error status ends UNDELIVERABLE, with the status in its reason."""
        h = pending_harness()
        s = h.bound()
        [mo_id] = h.core.inject_mo("esme", "447700900009", SRC, text="refused")
        s.answer(status=CommandStatus.ESME_RINVDSTADR)
        record = h.core.message(mo_id)
        assert record is not None
        self.assertEqual(record.state, MessageState.UNDELIVERABLE)
        self.assertEqual(record.reason, "deliver_sm failed with status 0x0000000B")

    def test_mo_sent_when_store_full(self) -> None:
        """An MO is delivered even when the store is full of pending messages (it is then not recorded)."""
        h = pending_harness(store_max_messages=1)
        s = h.bound()
        h.submit_id(s)
        [mo_id] = h.core.inject_mo("esme", "447700900009", SRC, text="still delivered")
        self.assertEqual([p.params["short_message"] for p in s.pdus], [b"still delivered"])
        self.assertIsNone(h.core.message(mo_id))
        self.assertEqual(h.core.counters["mo_not_stored"], 1)


class DistributionListConfigTests(SynchronousTestCase):
    """The ``distribution_lists`` key of an account in the configuration file."""

    def test_lists_load_and_unquoted_numbers_are_refused(self) -> None:
        """Lists of quoted addresses load as given; an unquoted number is refused, naming the file, line and key."""
        path = Path(self.mktemp())
        path.write_text('accounts:\n  - {system_id: a, password: b, distribution_lists: {team: ["+4477", "0044"]}}\n')
        self.assertEqual(load_config(str(path), {}, {}).accounts[0].distribution_lists, {"team": ("+4477", "0044")})
        path.write_text("accounts:\n  - system_id: a\n    password: b\n    distribution_lists: {team: [4477]}\n")
        with self.assertRaises(ConfigError) as caught:
            load_config(str(path), {}, {})
        self.assertIn(":4: accounts[0].distribution_lists.team[0]: not an address: 4477", str(caught.exception))
