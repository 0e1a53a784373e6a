"""The ESME against a simulator in a reactor thread, from the factory, with an account of its own."""

from esme import send_sms


def test_second_provider_with_other_accounts(smsc_sim_factory):
    other = smsc_sim_factory(mode="thread", accounts=[("other", "pw")], scenario="default")
    message_id = send_sms(*other.address("SMPP2"), "other", "pw", "447700900003", "hello")
    assert other.message(message_id)["account"] == "other"
