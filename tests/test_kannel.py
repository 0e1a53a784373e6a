"""
End to end with a real Kannel 1.4.x: bearerbox and smsbox bound to the
simulator's SMPP1 and SMPP2 with ``examples/kannel/kannel.conf.template``.

What Kannel reports is asserted (its dlr-url and sms-service calls, its
status page, its log), and what reached the simulator (the core's message
records).  Kannel must be installed (``scripts/install-kannel.sh``); if it
is not, these tests fail saying so.  Each test starts its own simulator and
Kannel on ephemeral ports of 127.0.0.1 and stops them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import deferLater

from smsc_sim.config import AccountSettings, default_config
from tests.kannel_harness import Rig, poll

pytestmark = pytest.mark.kannel

# dlr-url types Kannel reports (gw/dlr.h)
DELIVERED, UNDELIVERED, BUFFERED, SMSC_ACK, SMSC_REJECT = "1", "2", "4", "8", "16"


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


async def _send_and_await_receipt(rig: Rig, to: str, text: str, dlr_mask: str) -> Any:
    """Send with the provider guide's sendsms URL and wait for Kannel's DELIVERED dlr-url call."""
    # the guide's URL: ...&to=%2B33...&text=Hello%20World&from=test&charset=ISO-8859-1&dlr-mask=17
    code, body = await rig.kannel.sendsms(
        to=to, text=text.encode("latin-1"), charset="ISO-8859-1", **{"from": "test", "dlr-mask": dlr_mask}
    )
    assert (code, body.strip()) == (202, "0: Accepted for delivery")
    [dlr] = await rig.sink.wait_for(rig.dlrs(to, DELIVERED), what=f"DELIVERED dlr-url call for {to}")
    return dlr


@pytest_twisted.ensureDeferred
async def test_guide_sendsms_url_dlr_mask_17(tmp_path: Path) -> None:
    """
    The provider guide's test URL (charset ISO-8859-1, dlr-mask 17) puts a
    submit_sm with the right text on the simulator, and Kannel calls its
    dlr-url with "delivered" for that message, matched to the simulator's id.
    """
    async with Rig(_reactor(), tmp_path) as rig:
        dlr = await _send_and_await_receipt(rig, "+447700900001", "Hello World café", "17")

        [record] = rig.records("447700900001")
        assert record.text == "Hello World café"
        # source-addr-autodetect: alphanumeric sender, international destination
        assert (record.source_addr, record.source_ton, record.dest_ton) == ("test", 5, 1)
        assert record.registered_delivery == 1
        assert dlr["smsc_msg_id"] == record.message_id
        assert "stat:DELIVRD" in dlr["answer"]
        assert dlr["smsc"] == "vonage"
        # mask 17 asks for no SMSC ack (8)
        assert rig.sink.matching(rig.dlrs("+447700900001", SMSC_ACK)) == []
        status = await rig.kannel.status()
        assert status.sms_sent == 1
        assert status.dlr_received == 1
        assert rig.kannel.unmatched_receipts() == []


@pytest_twisted.ensureDeferred
async def test_dlr_mask_31_reports_smsc_ack_then_delivery(tmp_path: Path) -> None:
    """
    With dlr-mask 31 Kannel asks for receipts and intermediate notifications
    (registered_delivery 0x11), reports the SMSC's acknowledgement (type 8)
    and then the delivery (type 1), both under the simulator's message id.
    """
    async with Rig(_reactor(), tmp_path) as rig:
        dlr = await _send_and_await_receipt(rig, "+447700900002", "Mask 31", "31")

        [record] = rig.records("447700900002")
        assert record.text == "Mask 31"
        assert record.registered_delivery == 0x11
        [ack] = rig.sink.matching(rig.dlrs("+447700900002", SMSC_ACK))
        assert ack["smsc_msg_id"] == dlr["smsc_msg_id"] == record.message_id
        assert rig.sink.requests.index(ack) < rig.sink.requests.index(dlr)
        assert rig.kannel.unmatched_receipts() == []


@pytest_twisted.ensureDeferred
async def test_mo_reaches_sms_service(tmp_path: Path) -> None:
    """
    An MO injected at the simulator reaches Kannel's sms-service with its
    text and sender, and Kannel's deliver_sm_resp marks it delivered.
    """
    async with Rig(_reactor(), tmp_path) as rig:
        [message_id] = rig.simulator.inject_mo("smppclient1", "447700900123", "447700900999", text="Hi there, café")

        [mo] = await rig.sink.wait_for(
            lambda r: r.path == "/mo" and r.get("from") == "+447700900123", what="sms-service call for the MO"
        )
        assert mo["text"] == "Hi there, café"
        assert mo["to"] == "+447700900999"
        assert mo["smsc"] == "vonage"
        core = rig.core()
        await poll(
            rig.reactor,
            lambda: _value(True if core.message(message_id).state.name == "DELIVERED" else None),
            10,
            "the MO's deliver_sm_resp",
        )
        status = await rig.kannel.status()
        assert status.sms_received == 1


@pytest_twisted.ensureDeferred
async def test_long_ucs2_message_is_concatenated(tmp_path: Path) -> None:
    """
    A 150-character Cyrillic text sent through Kannel as UCS-2 arrives in
    three UDH parts of one concatenated message that the simulator
    reassembles to the original text; Kannel reports it delivered.
    """
    text = ("Привет, мир! Это длинное сообщение. " * 5)[:150]
    async with Rig(_reactor(), tmp_path) as rig:
        await rig.kannel.send_text("+447700900003", text, charset="UTF-8", coding="2")
        await rig.sink.wait_for(rig.dlrs("+447700900003", DELIVERED), what="DELIVERED dlr-url call")

        parts = rig.records("447700900003")
        assert len(parts) == 3
        assert {part.data_coding for part in parts} == {8}
        assert sorted(part.concat.seqnum for part in parts) == [1, 2, 3]
        assert {(part.concat.total, part.concat.reference) for part in parts} == {(3, parts[0].concat.reference)}
        assert parts[0].group is not None and parts[0].group.complete
        assert parts[0].group.text == text
        # bearerbox splits in its SMSC connection, so every part goes through one
        # bind, as the provider requires (parts split across SMPP1 and SMPP2 are lost)
        assert len({part.instance for part in parts}) == 1
        # only the first part asks for a receipt
        assert [part.registered_delivery for part in sorted(parts, key=lambda p: p.concat.seqnum)] == [1, 0, 0]
        status = await rig.kannel.status()
        assert status.sms_sent == 1  # Kannel counts the message, not its parts
        assert rig.kannel.unmatched_receipts() == []


#: receipts a fixed 3 s after the submit: long enough for SMPP1 to crash first
OUTAGE_SCENARIO = """\
name: kannel-outage
description: every message delivered, its receipt 3 s after the submit
receipt:
  stat: DELIVRD
  delay: 3s
"""


@pytest_twisted.ensureDeferred
async def test_smpp1_crash_traffic_continues_on_smpp2(tmp_path: Path) -> None:
    """
    When SMPP1 crashes, Kannel shows it down and keeps sending through
    SMPP2; every receipt reaches the dlr-url, those of messages submitted on
    SMPP1 before the crash too (they come back over SMPP2, where Kannel
    matches them because both binds share one smsc-id); when SMPP1 returns,
    Kannel binds to it again.
    """
    scenario = tmp_path / "kannel-outage.yaml"
    scenario.write_text(OUTAGE_SCENARIO)
    config = dataclasses.replace(default_config(), scenario=str(scenario))
    async with Rig(_reactor(), tmp_path, config=config) as rig:
        kannel = rig.kannel
        # Kannel picks a bind per message at random: send until one went through SMPP1
        before: list[str] = []
        for n in range(12):
            to = f"+4477009002{n:02d}"
            before.append(to)
            await kannel.send_text(to, "before the crash")
            # Kannel counts a message sent once its submit_sm_resp is in
            await poll(rig.reactor, lambda: _at_least(kannel, "sms_sent", len(before)), 10, "Kannel's submit_sm_resp")
            if rig.records(to.lstrip("+"))[0].instance == "SMPP1":
                break
        assert rig.records(before[-1].lstrip("+"))[0].instance == "SMPP1"

        await rig.simulator.start_outage("SMPP1", "crash")
        await poll(rig.reactor, lambda: _smsc_state(kannel, "SMPP1", online=False), 15, "Kannel to see SMPP1 down")
        after = [f"+4477009003{n:02d}" for n in range(4)]
        for to in after:
            await kannel.send_text(to, "after the crash")

        for to in before + after:
            await rig.sink.wait_for(rig.dlrs(to, DELIVERED), what=f"DELIVERED dlr-url call for {to}")
        for to in after:
            [record] = rig.records(to.lstrip("+"))
            assert record.instance == "SMPP2"
        status = await kannel.status()
        assert not status.smscs["SMPP1"].online
        assert status.smscs["SMPP2"].online
        # every receipt came in on SMPP2, those of SMPP1's messages included
        assert status.smscs["SMPP2"].dlr_received == len(before) + len(after)
        assert status.smscs["SMPP1"].dlr_received == 0
        assert kannel.unmatched_receipts() == []

        await rig.simulator.end_outage("SMPP1")
        await poll(rig.reactor, lambda: _smsc_state(kannel, "SMPP1", online=True), 20, "Kannel to bind SMPP1 again")


async def _value(value: Any) -> Any:
    return value


async def _at_least(kannel: Any, counter: str, count: int) -> bool | None:
    status = await kannel.status()
    return True if getattr(status, counter) >= count else None


async def _smsc_state(kannel: Any, admin_id: str, online: bool) -> bool | None:
    status = await kannel.status()
    return True if status.smscs[admin_id].online is online else None


# msg-id-type (bit 0: submit_sm_resp id is hex, bit 1: receipt id is hex; an
# id with a letter is hex anyway; unset: ids compared as strings) -> whether
# Kannel matches a receipt that lacks receipted_message_id, whose id: is the
# decimal form of the hex id.  With the TLV (the simulator's default) every
# setting matches the simulator's ids (they always contain a letter).
MSG_ID_TYPES = {None: False, "0x00": True, "0x01": True, "0x02": False, "0x03": False}


@pytest.mark.parametrize("msg_id_type", list(MSG_ID_TYPES))
@pytest_twisted.ensureDeferred
async def test_receipts_matched_with_msg_id_type(tmp_path: Path, msg_id_type: str | None) -> None:
    """
    Whatever msg-id-type Kannel uses, it matches the provider's receipt
    (hex id in submit_sm_resp, decimal in the text, the exact id in
    receipted_message_id); without that TLV only 0x00 and 0x01 match, and
    otherwise Kannel logs "got DLR but could not find message".
    """
    config = dataclasses.replace(default_config(), scenario="error-codes")
    extra = f"msg-id-type = {msg_id_type}" if msg_id_type is not None else ""
    async with Rig(_reactor(), tmp_path, config=config, smsc_extra=extra) as rig:
        kannel = rig.kannel
        with_tlv, without_tlv = "+447700900401", "+999210401"  # error-codes: 999210 omits the TLV
        for to in (with_tlv, without_tlv):
            await kannel.send_text(to, "ids")

        [dlr] = await rig.sink.wait_for(rig.dlrs(with_tlv, DELIVERED), what="DELIVERED dlr-url call (with TLV)")
        [record] = rig.records(with_tlv.lstrip("+"))
        # Kannel keeps the id as sent (unset) or as a decimal number (any msg-id-type)
        expected = record.message_id if msg_id_type is None else str(int(record.message_id, 16))
        assert dlr["smsc_msg_id"] == expected

        if MSG_ID_TYPES[msg_id_type]:
            await rig.sink.wait_for(rig.dlrs(without_tlv, DELIVERED), what="DELIVERED dlr-url call (no TLV)")
            assert kannel.unmatched_receipts() == []
        else:
            [record] = rig.records(without_tlv.lstrip("+"))
            lost = await poll(
                rig.reactor, lambda: _value(kannel.unmatched_receipts() or None), 15, "Kannel to refuse the receipt"
            )
            assert f"dst<{record.destination_addr}>" in lost[0]
            if msg_id_type is None:  # compared as strings: the decimal id of the text against the hex one
                assert f"id<{int(record.message_id, 16)}>" in lost[0]
            assert rig.sink.matching(rig.dlrs(without_tlv, DELIVERED)) == []


# with all-digit hex ids (message_id_digits) the letter no longer saves the reading:
# msg-id-type -> whether Kannel matches the receipt (receipted_message_id present)
DIGIT_ID_TYPES = {"0x01": False, "0x03": True}


@pytest.mark.parametrize("msg_id_type", list(DIGIT_ID_TYPES))
@pytest_twisted.ensureDeferred
async def test_digit_only_ids_trap_msg_id_type(tmp_path: Path, msg_id_type: str) -> None:
    """
    With an account set to message_id_digits, msg-id-type 0x01 (hex
    responses, decimal receipts) reads the submit_sm_resp id as hex and the
    same digits in receipted_message_id as decimal: the receipt is lost
    ("could not find message"); 0x03 reads both as hex and matches.
    """
    account = AccountSettings("smppclient1", "password", message_id_digits=True)
    config = dataclasses.replace(default_config(), accounts=(account,))
    async with Rig(_reactor(), tmp_path, config=config, smsc_extra=f"msg-id-type = {msg_id_type}") as rig:
        kannel = rig.kannel
        to = "+447700900402"
        await kannel.send_text(to, "digits")
        [record] = await poll(rig.reactor, lambda: _value(rig.records(to.lstrip("+")) or None), 15, "the submit")
        assert record.message_id.isdigit() and len(record.message_id) == 16
        if DIGIT_ID_TYPES[msg_id_type]:
            [dlr] = await rig.sink.wait_for(rig.dlrs(to, DELIVERED), what="DELIVERED dlr-url call")
            assert dlr["smsc_msg_id"] == str(int(record.message_id, 16))
            assert kannel.unmatched_receipts() == []
        else:
            lost = await poll(
                rig.reactor, lambda: _value(kannel.unmatched_receipts() or None), 15, "Kannel to refuse the receipt"
            )
            assert f"id<{record.message_id}>" in lost[0]
            assert rig.sink.matching(rig.dlrs(to, DELIVERED)) == []


@pytest_twisted.ensureDeferred
async def test_failures_reported_to_dlr_url(tmp_path: Path) -> None:
    """
    Kannel reports a submit the simulator rejects (ESME_RINVDSTADR) as an
    SMSC reject (type 16) and an UNDELIV receipt as undelivered (type 2).
    """
    config = dataclasses.replace(default_config(), scenario="error-codes")
    async with Rig(_reactor(), tmp_path, config=config) as rig:
        kannel = rig.kannel
        rejected, undelivered = "+99900011501", "+9991001501"  # 0x0B ESME_RINVDSTADR; UNDELIV err 1
        for to in (rejected, undelivered):
            await kannel.send_text(to, "fail", dlr_mask="31")

        [reject] = await rig.sink.wait_for(rig.dlrs(rejected, SMSC_REJECT), what="SMSC reject dlr-url call")
        assert "0x0000000b" in reject["answer"].lower()
        [undeliv] = await rig.sink.wait_for(rig.dlrs(undelivered, UNDELIVERED), what="undelivered dlr-url call")
        assert "stat:UNDELIV" in undeliv["answer"]
        assert rig.records(rejected.lstrip("+")) == []


#: drill-failover (scenarios/drill-failover.yaml) with the same steps in 1/4 to 1/6 of the time.  The
#: times follow from Kannel's reconnect-delay (5 s in examples/kannel/kannel.sh): SMPP1 is back at 17 s
#: and Kannel binds it again within one reconnect-delay (by about 22 s), well before SMPP2 goes down at
#: 27 s, so Kannel always has one bind to send through; SMPP2 is back at 37 s and rebound by about 42 s.
#: Every outage is shorter than the judge's failover_window (30 s, unchanged): the drill judges
#: Kannel with the thresholds the real drill uses.
DRILL_SCENARIO = """\
name: kannel-drill-failover
description: drill-failover compressed; SMPP1 crashes at 2 s for 15 s, SMPP2 graceful at 27 s for 10 s
seed: 7
receipt:
  stat: DELIVRD
  delay: {uniform: [1s, 5s]}
timeline:
  steps:
    - at: 2s
      note: SMPP1 crashes
      outage: {instance: SMPP1, mode: crash, duration: 15s}
    - at: 27s
      note: SMPP2 planned maintenance
      outage: {instance: SMPP2, mode: graceful, duration: 10s}
"""
#: Kannel's reconnect-delay as examples/kannel/kannel.sh writes it
GUIDE_RECONNECT_DELAY = 5
#: when the compressed drill's last outage ends, and how long after it messages keep going
DRILL_END, DRILL_TAIL = 37.0, 8.0


@pytest_twisted.ensureDeferred
async def test_failover_drill_judged(tmp_path: Path) -> None:
    """
    Kannel configured as the example (SMPP1 + SMPP2, reconnect-delay 5 s)
    goes through drill-failover, compressed, with a message every half
    second through sendsms: every message gets its DELIVERED dlr-url call
    (nothing is lost across the crash and the graceful shutdown), messages
    keep going out during each outage through the instance that is up,
    Kannel is bound to both instances again at the end, and the judge's
    report has no finding at all (verdict pass).
    """
    scenario = tmp_path / "kannel-drill-failover.yaml"
    scenario.write_text(DRILL_SCENARIO)
    async with Rig(_reactor(), tmp_path, reconnect_delay=GUIDE_RECONNECT_DELAY) as rig:
        kannel, clock = rig.kannel, rig.reactor
        # the drill starts once Kannel is bound to both (loading a scenario starts its timeline)
        rig.simulator.load_scenario(str(scenario))
        start = clock.seconds()
        sent: list[str] = []
        while clock.seconds() - start < DRILL_END + DRILL_TAIL:
            to = f"+4477009{len(sent):05d}"
            await kannel.send_text(to, f"drill {len(sent)}")
            sent.append(to)
            await deferLater(clock, 0.5, lambda: None)
        for to in sent:
            await rig.sink.wait_for(rig.dlrs(to, DELIVERED), what=f"DELIVERED dlr-url call for {to}", timeout=30)
        await poll(rig.reactor, lambda: _both_online(kannel), 20, "Kannel bound to SMPP1 and SMPP2 again")

        records = [record for to in sent for record in rig.records(to.lstrip("+"))]
        print(rig.simulator.judge.markdown())  # pytest shows it when an assertion below fails

        def carried(begin: float, end: float) -> set[str]:
            return {r.instance for r in records if start + begin <= r.submit_time < start + end}

        # during SMPP1's crash everything goes through SMPP2, during SMPP2's maintenance through SMPP1
        # (from 1 s after each outage starts: a submit already on its way when it starts may still land)
        assert carried(3, 17) == {"SMPP2"}
        assert carried(28, 37) == {"SMPP1"}
        # a submit whose submit_sm_resp the crash swallowed is sent again (at least once): the receipt
        # of the first copy is one Kannel cannot match; any other unmatched receipt would be a loss
        copies = Counter(r.destination_addr for r in records)
        for line in kannel.unmatched_receipts():
            assert any(f"dst<{to}>" in line for to, count in copies.items() if count > 1), line
        findings = rig.simulator.judge.findings()
        assert {f.code for f in findings if f.severity.value == "error"} == set()
        assert {(f.code, f.severity.value) for f in findings} == set()
        assert rig.simulator.judge.summary()["verdict"] == "pass"


async def _both_online(kannel: Any) -> bool | None:
    status = await kannel.status()
    return True if status.smscs["SMPP1"].online and status.smscs["SMPP2"].online else None
