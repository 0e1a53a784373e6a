"""Binds: credentials, allowed addresses, the cluster-wide quota, ghost binds, bind_resp contents."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings
from smsc_sim.smpp.constants import BindType, CommandId, CommandStatus, Tag
from tests.test_core_fakes import Harness


class BindTests(SynchronousTestCase):
    def test_success_reply_names_instance_and_version(self) -> None:
        """A 3.4 bind_transceiver gets bind_transceiver_resp with the instance's system_id and sc_interface_version 0x34."""
        h = Harness()
        reply = h.bind(h.session("SMPP2"))
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_id, CommandId.bind_transceiver_resp)
        self.assertEqual(reply.pdu.command_status, 0)
        self.assertEqual(reply.pdu.sequence_number, 1)
        self.assertEqual(reply.pdu.params["system_id"], "SMPP2")
        self.assertEqual(reply.pdu.tlvs, {Tag.sc_interface_version: b"\x34"})

    def test_old_interface_version_gets_no_tlv(self) -> None:
        """An ESME binding as SMPP 3.3 (interface_version 0x33) gets no TLV in bind_resp."""
        h = Harness()
        reply = h.bind(h.session(), interface_version=0x33, command=CommandId.bind_receiver)
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_id, CommandId.bind_receiver_resp)
        self.assertEqual(reply.pdu.tlvs, {})

    def test_unknown_system_id(self) -> None:
        """An unknown system_id gets ESME_RINVSYSID and a bind_refused event."""
        h = Harness()
        reply = h.bind(h.session(), system_id="nobody")
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RINVSYSID)
        self.assertEqual([e.data["status"] for e in h.kinds("bind_refused")], [CommandStatus.ESME_RINVSYSID])
        self.assertEqual(h.core.sessions(), [])

    def test_wrong_password(self) -> None:
        """A wrong password gets ESME_RINVPASWD."""
        h = Harness()
        reply = h.bind(h.session(), password="nope")
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RINVPASWD)

    def test_allowed_addresses(self) -> None:
        """A peer outside the account's CIDR ranges gets ESME_RBINDFAIL; one inside binds."""
        h = Harness(accounts=(AccountSettings("esme", "secret", allowed_addresses=("10.0.0.0/8", "::1/128")),))
        refused = h.bind(h.session(peer="192.168.1.5:4000"))
        allowed = h.bind(h.session(peer="10.1.2.3:4000"))
        allowed_v6 = h.bind(h.session(peer="[::1]:4000"))
        assert refused.pdu and allowed.pdu and allowed_v6.pdu
        self.assertEqual(refused.pdu.command_status, CommandStatus.ESME_RBINDFAIL)
        self.assertEqual(allowed.pdu.command_status, 0)
        self.assertEqual(allowed_v6.pdu.command_status, 0)

    def test_quota_across_instances(self) -> None:
        """With the default two binds, a third bind on either instance of the cluster gets ESME_RALYBND."""
        h = Harness(accounts=(AccountSettings("esme", "secret"),))
        first = h.bind(h.session("SMPP1"))
        second = h.bind(h.session("SMPP2"))
        third = h.bind(h.session("SMPP1"))
        assert first.pdu and second.pdu and third.pdu
        self.assertEqual((first.pdu.command_status, second.pdu.command_status), (0, 0))
        self.assertEqual(third.pdu.command_status, CommandStatus.ESME_RALYBND)
        self.assertEqual(len(h.core.sessions()), 2)

    def test_smpp0_core_is_separate(self) -> None:
        """Binds on the SMPP1/SMPP2 cluster do not count against SMPP0's own core."""
        na = Harness(accounts=(AccountSettings("esme", "secret"),))
        solo = Harness(accounts=(AccountSettings("esme", "secret"),), cluster="SMPP0")
        na.bind(na.session("SMPP1"))
        na.bind(na.session("SMPP2"))
        reply = solo.bind(solo.session("SMPP0"))
        assert reply.pdu is not None
        self.assertEqual(reply.pdu.command_status, 0)
        self.assertEqual(reply.pdu.params["system_id"], "SMPP0")

    def test_unbind_frees_slot(self) -> None:
        """After a clean unbind the slot is free at once."""
        h = Harness(accounts=(AccountSettings("esme", "secret", max_binds=1),))
        session = h.bound()
        h.core.unbound(session)
        h.core.connection_lost(session, clean=True)
        self.assertEqual(h.bind(h.session()).pdu.command_status, 0)  # type: ignore[union-attr]

    def test_ghost_bind_holds_slot(self) -> None:
        """A connection dropped while bound keeps its slot for ghost_bind_hold seconds, then frees it."""
        h = Harness(accounts=(AccountSettings("esme", "secret", max_binds=1),), ghost_bind_hold=30.0)
        session = h.bound()
        h.core.connection_lost(session, clean=False)
        self.assertEqual(h.core.stats()["ghost_binds"], 1)
        self.assertEqual(h.bind(h.session()).pdu.command_status, CommandStatus.ESME_RALYBND)  # type: ignore[union-attr]
        h.clock.advance(30)
        self.assertEqual(h.bind(h.session()).pdu.command_status, 0)  # type: ignore[union-attr]

    def test_ghost_hold_zero_frees_at_once(self) -> None:
        """With ghost_bind_hold 0 an abrupt disconnect frees the slot at once."""
        h = Harness(accounts=(AccountSettings("esme", "secret", max_binds=1),))
        h.core.connection_lost(h.bound(), clean=False)
        self.assertEqual(h.bind(h.session()).pdu.command_status, 0)  # type: ignore[union-attr]

    def test_stop_cancels_ghost_timers(self) -> None:
        """stop() leaves no delayed call on the clock."""
        h = Harness(ghost_bind_hold=30.0)
        h.core.connection_lost(h.bound(), clean=False)
        h.submit(h.bound())
        h.core.stop()
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_bind_event_and_sessions(self) -> None:
        """A bind is published and listed with its type and instance."""
        h = Harness()
        h.bound("SMPP2", command=CommandId.bind_receiver)
        [event] = h.kinds("bind")
        self.assertEqual(event.data["bind_type"], "receiver")
        self.assertEqual(event.data["instance"], "SMPP2")
        [info] = h.core.binds_info()
        self.assertEqual((info["bind_type"], info["instance"]), (BindType.receiver.value, "SMPP2"))

    def test_request_from_unbound_session(self) -> None:
        """A request from a session the core has no bind for gets ESME_RINVBNDSTS."""
        h = Harness()
        reply = h.submit(h.session())
        self.assertEqual(reply.pdu.command_status, CommandStatus.ESME_RINVBNDSTS)  # type: ignore[union-attr]
