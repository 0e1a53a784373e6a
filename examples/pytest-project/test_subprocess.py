"""The ESME against the default form: a child process, shared by the session, reset before each test."""

import pytest

from esme import Refused, send_sms


def test_message_is_accepted(smsc_sim):
    message_id = send_sms(*smsc_sim.address("SMPP1"), smsc_sim.system_id, smsc_sim.password, "447700900002", "hi")
    [message] = smsc_sim.wait_for_messages(count=1, destination="447700900002", timeout=5)
    assert message["message_id"] == message_id
    assert smsc_sim.info()["seed"] == 7


def test_refusal_is_reported_and_visible(smsc_sim):
    smsc_sim.load_scenario("error-codes")
    with pytest.raises(Refused) as refused:
        send_sms(*smsc_sim.address("SMPP1"), smsc_sim.system_id, smsc_sim.password, "99900011", "hi")
    assert refused.value.status == 0x0B  # ESME_RINVDSTADR
    [submit] = smsc_sim.submits(status="ESME_RINVDSTADR")
    assert submit["destination_addr"] == ["99900011"] and submit["message_id"] is None
