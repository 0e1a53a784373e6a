"""The Twisted ESME against the simulator in memory: no sockets, a fake clock."""

from esme import TwistedESME


def test_twisted_esme_in_memory(smsc_sim_memory):
    esme = TwistedESME(smsc_sim_memory.system_id, smsc_sim_memory.password)
    smsc_sim_memory.connect(esme, "SMPP1")
    bound = esme.bind()
    smsc_sim_memory.flush()
    assert bound.called
    submitted = esme.submit("447700900005", "hi")
    smsc_sim_memory.flush()
    message_id = submitted.result
    smsc_sim_memory.advance(5)  # the default scenario's receipt comes within seconds
    message = smsc_sim_memory.message(message_id)
    assert (message["account"], message["state"]) == ("esme1", "DELIVERED")
