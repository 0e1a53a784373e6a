"""Tests for :mod:`smsc_sim.smpp.codec`: golden vectors, smpp.pdu3 workarounds, properties, errors."""

from __future__ import annotations

import contextlib
import io
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.smpp import codec
from smsc_sim.smpp.codec import PDUDecodeError, decode, decode_table, encode, encode_table
from smsc_sim.smpp.constants import CommandId as C
from smsc_sim.smpp.constants import CommandStatus as S
from smsc_sim.smpp.constants import Tag
from smsc_sim.smpp.pdu import FIELDS, PDU, DestAddress, UnsuccessSME, make_pdu
from smsc_sim.smpp.pdu3_reference import decode_with_pdu3


def _hex(*parts: str) -> bytes:
    """Bytes from hex fragments (spaces ignored)."""
    return bytes.fromhex("".join(parts))


# C-Octet Strings used below, NUL included
ESME1 = "65736d6531 00"  # "esme1"
SECRET = "736563726574 00"  # "secret"
SMPP = "736d7070 00"  # "smpp"
SMPP1 = "534d505031 00"  # "SMPP1"
M1 = "6d31 00"  # "m1"
MSISDN1 = "343437373030393030303031 00"  # "447700900001"
MSISDN2 = "343437373030393030303032 00"  # "447700900002"
ADDR_11_1 = "0101" + MSISDN1  # ton 1, npi 1, "447700900001"
ADDR_11_2 = "0101" + MSISDN2  # ton 1, npi 1, "447700900002"
BIND: dict[str, Any] = dict(system_id="esme1", password="secret", system_type="smpp", interface_version=0x34, addr_ton=1, addr_npi=1)

#: (PDU, its bytes) for every PDU type, built by hand from SMPP 3.4 section 4.
GOLDEN: list[tuple[PDU, bytes]] = [
    (
        make_pdu(C.bind_transmitter, 1, **BIND),
        # length 38, bind_transmitter, status 0, seq 1
        _hex("00000026 00000002 00000000 00000001", ESME1, SECRET, SMPP, "34", "01 01", "00"),
        # interface_version 0x34, addr_ton 1, addr_npi 1, address_range NULL
    ),
    (
        make_pdu(C.bind_receiver, 2, address_range="^44", **BIND),
        _hex("00000029 00000001 00000000 00000002", ESME1, SECRET, SMPP, "34 01 01", "5e3434 00"),
    ),
    (
        make_pdu(C.bind_transceiver, 3, **BIND),
        _hex("00000026 00000009 00000000 00000003", ESME1, SECRET, SMPP, "34 01 01 00"),
    ),
    (
        make_pdu(C.bind_transmitter_resp, 1, system_id="SMPP1", tlvs={Tag.sc_interface_version: b"\x34"}),
        # length 27; system_id; TLV sc_interface_version (0x0210, length 1, 0x34)
        _hex("0000001b 80000002 00000000 00000001", SMPP1, "0210 0001 34"),
    ),
    (
        make_pdu(C.bind_receiver_resp, 2, S.ESME_RINVPASWD),
        # a failed bind_resp has no body (section 4.1.4)
        _hex("00000010 80000001 0000000e 00000002"),
    ),
    (
        make_pdu(C.bind_transceiver_resp, 3, system_id="SMPP1"),
        _hex("00000016 80000009 00000000 00000003", SMPP1),
    ),
    (
        make_pdu(C.outbind, 4, system_id="SMPP1", password="pw"),
        _hex("00000019 0000000b 00000000 00000004", SMPP1, "7077 00"),
    ),
    (make_pdu(C.unbind, 5), _hex("00000010 00000006 00000000 00000005")),
    (make_pdu(C.unbind_resp, 5), _hex("00000010 80000006 00000000 00000005")),
    (make_pdu(C.enquire_link, 6), _hex("00000010 00000015 00000000 00000006")),
    (make_pdu(C.enquire_link_resp, 6), _hex("00000010 80000015 00000000 00000006")),
    (
        make_pdu(
            C.submit_sm,
            7,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="447700900001",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900002",
            validity_period="000001000000000R",
            registered_delivery=1,
            short_message=b"Hello",
            tlvs={Tag.user_message_reference: b"\x00\x2a"},
        ),
        _hex(
            "00000054 00000004 00000000 00000007",  # length 84
            "00",  # service_type NULL
            ADDR_11_1,  # source ton, npi, addr
            ADDR_11_2,  # dest ton, npi, addr
            "00 00 00",  # esm_class, protocol_id, priority_flag
            "00",  # schedule_delivery_time NULL
            "303030303031303030303030303030 52 00",  # validity_period "000001000000000R"
            "01 00 00 00",  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
            "05 48656c6c6f",  # sm_length 5, "Hello"
            "0204 0002 002a",  # user_message_reference 42
        ),
    ),
    (
        make_pdu(C.submit_sm_resp, 7, message_id="0B00000127FDBC63"),
        _hex("00000021 80000004 00000000 00000007", "30423030303030313237464442433633 00"),
    ),
    (
        make_pdu(C.submit_sm_resp, 8, S.ESME_RTHROTTLED),
        # throttled: header only (section 4.4.2)
        _hex("00000010 80000004 00000058 00000008"),
    ),
    (
        make_pdu(
            C.deliver_sm,
            9,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="447700900002",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900001",
            esm_class=0x04,
            short_message=b"id:m1 stat:DELIVRD",
            tlvs={Tag.receipted_message_id: b"m1\x00", Tag.message_state: b"\x02"},
        ),
        _hex(
            "00000057 00000005 00000000 00000009",  # length 87
            "00",  # service_type
            ADDR_11_2,
            ADDR_11_1,
            "04 00 00",  # esm_class: delivery receipt
            "00 00",  # schedule_delivery_time, validity_period NULL
            "00 00 00 00",  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
            "12 69643a6d312073746174 3a44454c49565244",  # sm_length 18, "id:m1 stat:DELIVRD"
            "001e 0003 6d3100",  # receipted_message_id "m1"
            "0427 0001 02",  # message_state DELIVERED
        ),
    ),
    (make_pdu(C.deliver_sm_resp, 9), _hex("00000011 80000005 00000000 00000009", "00")),
    (
        make_pdu(
            C.submit_multi,
            10,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="447700900001",
            dest_address=(DestAddress(1, 1, 1, "447700900002"), DestAddress(2, 0, 0, "friends")),
            registered_delivery=1,
            short_message=b"Hi",
        ),
        _hex(
            "00000046 00000021 00000000 0000000a",  # length 70
            "00",  # service_type
            ADDR_11_1,  # source
            "02",  # number_of_dests
            "01",
            ADDR_11_2,  # dest_flag 1 (SME address), ton, npi, destination_addr
            "02 667269656e6473 00",  # dest_flag 2 (distribution list), dl_name "friends"
            "00 00 00",  # esm_class, protocol_id, priority_flag
            "00 00",  # schedule_delivery_time, validity_period
            "01 00 00 00",  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
            "02 4869",  # sm_length 2, "Hi"
        ),
    ),
    (
        make_pdu(C.submit_multi_resp, 10, message_id="m1", unsuccess_sme=(UnsuccessSME(1, 1, "447700900003", 0x0B),)),
        _hex(
            "00000027 80000021 00000000 0000000a",  # length 39
            M1,  # message_id
            "01",  # no_unsuccess
            "0101 343437373030393030303033 00",  # ton, npi, "447700900003"
            "0000000b",  # error_status_code ESME_RINVDSTADR
        ),
    ),
    (
        make_pdu(
            C.data_sm,
            11,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="12345",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900001",
            registered_delivery=1,
            data_coding=8,
            tlvs={Tag.message_payload: b"\x00H\x00i"},
        ),
        _hex(
            "00000033 00000103 00000000 0000000b",  # length 51
            "00",  # service_type
            "0101 3132333435 00",  # source ton, npi, "12345"
            ADDR_11_1,  # dest
            "00 01 08",  # esm_class, registered_delivery, data_coding UCS2
            "0424 0004 00480069",  # message_payload "Hi" in UCS2
        ),
    ),
    (make_pdu(C.data_sm_resp, 11, message_id="m1"), _hex("00000013 80000103 00000000 0000000b", M1)),
    (
        make_pdu(C.query_sm, 12, message_id="m1", source_addr_ton=1, source_addr_npi=1, source_addr="447700900001"),
        _hex("00000022 00000003 00000000 0000000c", M1, ADDR_11_1),
    ),
    (
        make_pdu(C.query_sm_resp, 12, message_id="m1", final_date="240131120000000+", message_state=2),
        _hex(
            "00000026 80000003 00000000 0000000c",
            M1,
            "323430313331313230303030303030 2b 00",  # final_date "240131120000000+"
            "02 00",  # message_state DELIVERED, error_code 0
        ),
    ),
    (
        make_pdu(
            C.cancel_sm,
            13,
            message_id="m1",
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="447700900001",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900002",
        ),
        _hex("00000032 00000008 00000000 0000000d", "00", M1, ADDR_11_1, ADDR_11_2),
    ),
    (make_pdu(C.cancel_sm_resp, 13), _hex("00000010 80000008 00000000 0000000d")),
    (
        make_pdu(
            C.replace_sm,
            14,
            message_id="m1",
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="447700900001",
            validity_period="000002000000000R",
            registered_delivery=1,
            short_message=b"New",
        ),
        _hex(
            "0000003a 00000007 00000000 0000000e",  # length 58
            M1,  # message_id
            ADDR_11_1,  # source
            "00",  # schedule_delivery_time
            "303030303032303030303030303030 52 00",  # validity_period "000002000000000R"
            "01 00",  # registered_delivery, sm_default_msg_id
            "03 4e6577",  # sm_length 3, "New"
        ),
    ),
    (make_pdu(C.replace_sm_resp, 14), _hex("00000010 80000007 00000000 0000000e")),
    (
        make_pdu(
            C.alert_notification,
            15,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="447700900001",
            esme_addr_ton=1,
            esme_addr_npi=1,
            esme_addr="447700900002",
            tlvs={Tag.ms_availability_status: b"\x00"},
        ),
        _hex("00000033 00000102 00000000 0000000f", ADDR_11_1, ADDR_11_2, "0422 0001 00"),
    ),
    (make_pdu(C.generic_nack, 16, S.ESME_RINVCMDID), _hex("00000010 80000000 00000003 00000010")),
]


def _submit_sm(**params: Any) -> PDU:
    """A plain submit_sm with some fields given."""
    return make_pdu(C.submit_sm, 1, **params)


def _with_length(frame: bytes) -> bytes:
    """Fix the command_length of a hand-edited frame."""
    return struct.pack(">I", len(frame)) + frame[4:]


class GoldenVectorTests(SynchronousTestCase):
    """Every PDU type encodes to, and decodes from, bytes built by hand from the spec."""

    def test_all_pdu_types_covered(self) -> None:
        """The golden vectors cover every command of SMPP 3.4."""
        self.assertEqual({pdu.command_id for pdu, _ in GOLDEN}, set(FIELDS))

    def test_encode(self) -> None:
        """Encoding each PDU gives exactly the spec's bytes."""
        for pdu, wire in GOLDEN:
            self.assertEqual(encode(pdu).hex(), wire.hex(), pdu.name)

    def test_decode(self) -> None:
        """Decoding the spec's bytes gives back each PDU, fields and TLVs."""
        for pdu, wire in GOLDEN:
            self.assertEqual(decode(wire), pdu, pdu.name)

    def test_table_path(self) -> None:
        """The table-driven path alone writes and reads the same bytes and PDUs for every PDU type."""
        for pdu, wire in GOLDEN:
            self.assertEqual(encode_table(pdu).hex(), wire.hex(), pdu.name)
            self.assertEqual(decode_table(wire), pdu, pdu.name)

    def test_stock_pdu3_agrees(self) -> None:
        """Stock smpp.pdu3 reads the same PDU from each vector it can handle (all but submit_multi, replace_sm)."""
        for pdu, wire in GOLDEN:
            if pdu.command_id not in (C.submit_multi, C.submit_multi_resp, C.replace_sm):
                self.assertEqual(decode_with_pdu3(wire), pdu, pdu.name)


class PDU3WorkaroundTests(SynchronousTestCase):
    """One test per smpp.pdu3 bug (smpp-facts.md C.2) that the codec works around."""

    def test_pdu3_bug01_stale_tlv_length(self) -> None:
        """After decoding a data_sm with a 300-octet message_payload, a 3-octet network_error_code still encodes."""
        big = make_pdu(C.data_sm, 1, tlvs={Tag.message_payload: b"x" * 300})
        self.assertEqual(decode(encode(big)), big)
        resp = make_pdu(C.data_sm_resp, 1, message_id="m1", tlvs={Tag.network_error_code: b"\x03\x00\x01"})
        self.assertEqual(encode(resp)[-7:], _hex("0423 0003 030001"))

    def test_pdu3_bug02_no_debug_print(self) -> None:
        """Decoding PDUs with time fields prints nothing, even through the reference decoder."""
        out = io.StringIO()
        wire = encode(_submit_sm(schedule_delivery_time="240131120000000+"))
        with contextlib.redirect_stdout(out):
            decode(wire)
            decode(GOLDEN[21][1])  # query_sm_resp, with a time field
            decode_with_pdu3(wire)
        self.assertEqual(out.getvalue(), "")

    def test_pdu3_bug03_tlvs_without_encoder_are_kept(self) -> None:
        """submit_sm with ussd_service_op, its_session_info, set_dpf or message_state decodes and keeps them."""
        tlvs = {Tag.ussd_service_op: b"\x01", Tag.its_session_info: b"\x00\x01", Tag.set_dpf: b"\x01"}
        tlvs[Tag.message_state] = b"\x02"  # known, but not a submit_sm TLV in smpp.pdu3's list
        pdu = _submit_sm(tlvs=tlvs)
        self.assertEqual(decode(encode(pdu)).tlvs, tlvs)

    def test_pdu3_bug04_alert_on_message_delivery(self) -> None:
        """submit_sm and data_sm carrying alert_on_message_delivery (0x130C, empty) decode."""
        for command_id in (C.submit_sm, C.data_sm):
            pdu = make_pdu(command_id, 1, tlvs={Tag.alert_on_message_delivery: b""})
            self.assertEqual(decode(encode(pdu)).tlvs, {0x130C: b""})

    def test_pdu3_bug05_submit_multi(self) -> None:
        """submit_multi and its response, which smpp.pdu3 cannot handle, encode and decode."""
        for pdu, wire in GOLDEN:
            if pdu.command_id in (C.submit_multi, C.submit_multi_resp):
                self.assertEqual((encode(pdu), decode(wire)), (wire, pdu))
                self.assertRaises(PDUDecodeError, decode_with_pdu3, wire)

    def test_pdu3_bug06_replace_sm(self) -> None:
        """replace_sm, which smpp.pdu3 cannot handle, encodes and decodes."""
        pdu, wire = GOLDEN[24]
        self.assertEqual(pdu.command_id, C.replace_sm)
        self.assertEqual((encode(pdu), decode(wire)), (wire, pdu))
        self.assertRaises(PDUDecodeError, decode_with_pdu3, wire)

    def test_pdu3_bug07_vendor_tlvs_written_raw(self) -> None:
        """Vendor TLVs (the provider's price 0x1422) are written verbatim, with their own length."""
        pdu = make_pdu(C.submit_sm_resp, 1, message_id="m1", tlvs={0x1422: b"0.0333", 0x1423: b"12.5"})
        self.assertEqual(encode(pdu)[19:], _hex("1422 0006 302e30333333", "1423 0004 31322e35"))
        self.assertEqual(decode(encode(pdu)), pdu)

    def test_pdu3_bug08_vendor_status(self) -> None:
        """Vendor-specific and unassigned statuses (0x400..0x4FF, 0x09) are encoded and decoded as is."""
        for status in (0x0400, 0x0401, 0x04FF, 0x09, 0x10, 0xFFFFFFFF):
            wire = encode(make_pdu(C.submit_sm_resp, 3, status, message_id="x"))
            self.assertEqual(wire, struct.pack(">IIII", 16, C.submit_sm_resp, status, 3))
            self.assertEqual(decode(wire).command_status, status)

    def test_pdu3_bug09_wire_values_not_enum_indexes(self) -> None:
        """Values are wire integers: TON alphanumeric is 5 (smpp.pdu3's enum says 6), also via decode_with_pdu3."""
        wire = encode(make_pdu(C.bind_transmitter, 1, addr_ton=5, addr_npi=9, interface_version=0x34))
        self.assertEqual(decode(wire).params["addr_ton"], 5)
        self.assertEqual(decode_with_pdu3(wire).params["addr_ton"], 5)
        self.assertEqual(decode_with_pdu3(wire).params["addr_npi"], 9)

    def test_pdu3_bug10_padding_after_body(self) -> None:
        """Zero padding after the body of a PDU without a TLV section (query_sm, deliver_sm_resp) is ignored."""
        for pdu, wire in GOLDEN:
            if pdu.command_id in (C.query_sm, C.deliver_sm_resp, C.cancel_sm):
                self.assertEqual(decode(_with_length(wire + b"\x00\x00")), pdu)

    def test_pdu3_bug11_deliver_sm_resp_with_message_id(self) -> None:
        """A deliver_sm_resp carrying a message_id (some clients send one) decodes with it."""
        wire = _hex("00000014 80000005 00000000 00000009", "616263 00")
        self.assertEqual(decode(wire), make_pdu(C.deliver_sm_resp, 9, message_id="abc"))

    def test_pdu3_bug12_short_message_raw_for_any_data_coding(self) -> None:
        """short_message stays raw octets whatever the data_coding (text decoding is not the codec's job)."""
        for data_coding in (0x00, 0x05, 0xF0, 0xF5):
            pdu = _submit_sm(data_coding=data_coding, short_message=b"\x00\x1b\xff")
            self.assertEqual(decode(encode(pdu)), pdu)

    def test_pdu3_bug13_relative_time_with_tenths_kept_raw(self) -> None:
        """A relative validity_period with tenths set is returned raw; judging it is the core's job."""
        pdu = _submit_sm(validity_period="000000001000010R")
        self.assertEqual(decode(encode(pdu)).params["validity_period"], "000000001000010R")

    def test_pdu3_bug14_sequence_zero(self) -> None:
        """A sequence_number of 0 decodes as 0, not None, also via decode_with_pdu3."""
        wire = _hex("00000010 80000000 00000002 00000000")
        self.assertEqual(decode(wire).sequence_number, 0)
        self.assertEqual(decode_with_pdu3(wire).sequence_number, 0)

    def test_pdu3_bug15_data_coding_reserved_bit_kept(self) -> None:
        """data_coding 0xF8..0xFB keeps bit 3 (smpp.pdu3 drops it)."""
        for data_coding in range(0xF8, 0xFC):
            self.assertEqual(decode(encode(_submit_sm(data_coding=data_coding))).params["data_coding"], data_coding)

    def test_pdu3_vendor_tlvs_kept_on_decode(self) -> None:
        """Vendor TLVs in a data_sm (whose smpp.pdu3 decoder drops them) are kept, not silently dropped."""
        pdu = make_pdu(C.data_sm, 1, tlvs={0x1402: b"23410", 0x4000: b"", Tag.message_payload: b"x"})
        self.assertEqual(decode(encode(pdu)).tlvs, pdu.tlvs)

    def test_unexpected_exception_becomes_decode_error(self) -> None:
        """An unexpected exception while decoding becomes ESME_RSYSERR with the header's command and sequence."""

        def boom(command_id: int, sequence: int, status: int, frame: bytes) -> PDU:
            raise KeyError("number_of_dests")

        original = codec._READERS[C.query_sm]
        codec._READERS[C.query_sm] = boom
        self.addCleanup(codec._READERS.__setitem__, C.query_sm, original)
        error = self.assertRaises(PDUDecodeError, decode, GOLDEN[20][1])
        self.assertEqual((error.status, error.command_id, error.sequence_number, error.nack), (8, C.query_sm, 12, False))


def _submit_body(*fields: bytes) -> bytes:
    """A submit_sm frame whose body is the given raw octets."""
    body = b"".join(fields)
    return struct.pack(">IIII", 16 + len(body), C.submit_sm, 0, 42) + body


class MalformedInputTests(SynchronousTestCase):
    """Structural errors map to the exact command_status the spec names (decoded as on the wire)."""

    #: the decoder under test: the codec as the session uses it
    decode = staticmethod(decode)

    def assertStatus(self, frame: bytes, status: int, nack: bool = False, sequence: int = 42) -> PDUDecodeError:
        """Decoding ``frame`` fails with ``status``."""
        error = self.assertRaises(PDUDecodeError, self.decode, frame)
        self.assertEqual(
            (status_hex(error.status), error.nack, error.sequence_number), (status_hex(status), nack, sequence)
        )
        return error

    def test_shorter_than_header(self) -> None:
        """Fewer than 16 octets is ESME_RINVCMDLEN, generic_nack, sequence 0."""
        error = self.assertStatus(_hex("0000000c 00000015 00000000"), S.ESME_RINVCMDLEN, True, 0)
        self.assertEqual(error.command_id, C.enquire_link)
        self.assertIsNone(self.assertStatus(b"\x00\x00", S.ESME_RINVCMDLEN, True, 0).command_id)

    def test_command_length_mismatch(self) -> None:
        """A command_length different from the frame size is ESME_RINVCMDLEN, with the sequence number."""
        self.assertStatus(_hex("00000011 00000015 00000000 0000002a"), S.ESME_RINVCMDLEN, True)

    def test_unknown_command_id(self) -> None:
        """An unknown command_id is ESME_RINVCMDID answered with generic_nack echoing the sequence."""
        error = self.assertStatus(_hex("00000010 00000099 00000000 0000002a"), S.ESME_RINVCMDID, True)
        self.assertEqual(error.command_id, 0x99)

    def test_empty_request_body(self) -> None:
        """A submit_sm or bind with no body at all is ESME_RINVMSGLEN, answered with the response PDU."""
        error = self.assertStatus(_submit_body(), S.ESME_RINVMSGLEN)
        self.assertEqual(error.command_id, C.submit_sm)
        self.assertStatus(_hex("00000010 00000002 00000000 0000002a"), S.ESME_RINVMSGLEN)

    def test_c_string_too_long(self) -> None:
        """Each C-Octet String longer than its maximum gets that field's status."""
        ok = b"\x00"
        cases = [
            (_submit_body(b"CMTxyz\x00"), S.ESME_RINVSERTYP),
            (_submit_body(ok, b"\x01\x01", b"1" * 21 + ok), S.ESME_RINVSRCADR),
            (_submit_body(ok, b"\x01\x01", ok, b"\x01\x01", b"1" * 21 + ok), S.ESME_RINVDSTADR),
            (_submit_body(ok, b"\x01\x01", ok, b"\x01\x01", ok, b"\x00\x00\x00", b"1" * 17 + ok), S.ESME_RINVSCHED),
            (_submit_body(ok, b"\x01\x01", ok, b"\x01\x01", ok, b"\x00\x00\x00", ok, b"1" * 17 + ok), S.ESME_RINVEXPIRY),
        ]
        for frame, status in cases:
            self.assertStatus(frame, status)

    def test_c_string_without_nul(self) -> None:
        """A body ending inside a C-Octet String is ESME_RINVMSGLEN; no NUL within its maximum, the field's status."""
        self.assertStatus(_submit_body(b"\x00\x01\x01", b"4477"), S.ESME_RINVMSGLEN)
        self.assertStatus(_submit_body(b"\x00\x01\x01", b"4" * 21), S.ESME_RINVSRCADR)

    def test_bind_fields(self) -> None:
        """Over-long system_id, password, system_type in a bind give RINVSYSID, RINVPASWD, RINVSYSTYP."""
        header = struct.pack(">IIII", 0, C.bind_transceiver, 0, 42)
        cases = [
            (b"s" * 16 + b"\x00pw\x00\x00\x34\x00\x00\x00", S.ESME_RINVSYSID),
            (b"sys\x00" + b"p" * 9 + b"\x00\x00\x34\x00\x00\x00", S.ESME_RINVPASWD),
            (b"sys\x00pw\x00" + b"t" * 13 + b"\x00\x34\x00\x00\x00", S.ESME_RINVSYSTYP),
            (b"sys\x00pw\x00\x00", S.ESME_RINVMSGLEN),  # ends before interface_version
        ]
        for body, status in cases:
            self.assertStatus(_with_length(header + body), status)

    def test_message_id_too_long(self) -> None:
        """A query_sm or submit_sm_resp message_id of 65 characters is ESME_RINVMSGID."""
        self.assertStatus(_with_length(_hex("00000000 00000003 00000000 0000002a") + b"9" * 65 + b"\x00\x01\x01\x00"),
                          S.ESME_RINVMSGID)
        self.assertStatus(_with_length(_hex("00000000 80000004 00000000 0000002a") + b"9" * 65 + b"\x00"),
                          S.ESME_RINVMSGID)

    def test_sm_length_over_254(self) -> None:
        """sm_length 255 (SMPP 3.4 allows 0 to 254) is ESME_RINVMSGLEN for submit_sm, deliver_sm and replace_sm."""
        for command_id in (C.submit_sm, C.deliver_sm):
            frame = bytearray(encode(make_pdu(command_id, 42, short_message=b"x" * 254)))
            self.assertEqual(len(self.decode(bytes(frame)).params["short_message"]), 254)
            sm_length_at = len(frame) - 255
            frame[sm_length_at] = 255
            frame += b"x"
            frame[0:4] = struct.pack(">I", len(frame))
            self.assertStatus(bytes(frame), S.ESME_RINVMSGLEN)
        replace = bytearray(encode(make_pdu(C.replace_sm, 42, message_id="m1", short_message=b"x" * 254)))
        replace[len(replace) - 255] = 255
        replace += b"x"
        replace[0:4] = struct.pack(">I", len(replace))
        self.assertStatus(bytes(replace), S.ESME_RINVMSGLEN)

    def test_truncated_integers(self) -> None:
        """A submit_sm body that ends among its integer fields is ESME_RINVMSGLEN."""
        full = encode(_submit_sm(short_message=b"hi"))[16:]
        for cut in (2, 5, 7, 9, len(full) - 3):
            self.assertStatus(_submit_body(full[:cut]), S.ESME_RINVMSGLEN)

    def test_sm_length_overrun(self) -> None:
        """An sm_length larger than the rest of the body is ESME_RINVMSGLEN."""
        body = encode(_submit_sm(short_message=b"hello"))[16:]
        self.assertStatus(_submit_body(body[:-6], b"\x06hello"), S.ESME_RINVMSGLEN)

    def test_tlv_errors(self) -> None:
        """A TLV overrunning the PDU or with a wrong fixed size is RINVPARLEN; stray octets RINVOPTPARSTREAM."""
        body = encode(_submit_sm())[16:]
        self.assertStatus(_submit_body(body, _hex("0424 0010 414243")), S.ESME_RINVPARLEN)
        self.assertStatus(_submit_body(body, _hex("020c 0001 01")), S.ESME_RINVPARLEN)
        self.assertStatus(_submit_body(body, _hex("0427 0002 0102")), S.ESME_RINVPARLEN)
        self.assertStatus(_submit_body(body, _hex("001e 0042"), b"1" * 66), S.ESME_RINVPARLEN)
        self.assertStatus(_submit_body(body, _hex("0204")), S.ESME_RINVOPTPARSTREAM)

    def test_submit_multi_errors(self) -> None:
        """submit_multi: bad dest_flag is RINVDESTFLAG, long dl_name RINVDLNAME, short list RINVMSGLEN."""
        head = struct.pack(">IIII", 0, C.submit_multi, 0, 42) + b"\x00\x01\x01\x00"
        self.assertStatus(_with_length(head + b"\x01\x03\x01\x01123\x00"), S.ESME_RINVDESTFLAG)
        self.assertStatus(_with_length(head + b"\x01\x02" + b"d" * 21 + b"\x00"), S.ESME_RINVDLNAME)
        self.assertStatus(_with_length(head + b"\x02\x01\x01\x01123\x00"), S.ESME_RINVMSGLEN)

    def test_values_not_validated(self) -> None:
        """Out-of-range values (TON 7, NPI 99, priority 9, registered_delivery 3, esm_class 0x0C) decode as is."""
        values: dict[str, Any] = dict(source_addr_ton=7, dest_addr_npi=99, priority_flag=9, registered_delivery=3, esm_class=0x0C)
        values.update(replace_if_present_flag=5, sm_default_msg_id=255, schedule_delivery_time="soon")
        pdu = _submit_sm(**values)
        self.assertEqual(self.decode(encode(pdu)), pdu)
        bind = make_pdu(C.bind_receiver, 1, addr_ton=0xFF, addr_npi=0x77, interface_version=0x99)
        self.assertEqual(self.decode(encode(bind)), bind)

    def test_header_only_pdu_with_body(self) -> None:
        """An enquire_link or unbind with a body decodes normally, the body ignored."""
        for command_id in (C.enquire_link, C.unbind, C.generic_nack):
            frame = struct.pack(">IIII", 20, command_id, 0, 3) + b"junk"
            self.assertEqual(self.decode(frame), PDU(command_id, 3))

    def test_error_response_with_body(self) -> None:
        """An error submit_sm_resp or bind_resp carrying a (broken) body decodes with NULL fields."""
        frame = struct.pack(">IIII", 19, C.submit_sm_resp, 0x58, 3) + b"abc"
        self.assertEqual(self.decode(frame), make_pdu(C.submit_sm_resp, 3, 0x58))
        frame = struct.pack(">IIII", 22, C.bind_transceiver_resp, 0x0D, 3) + b"SMPP1\x00"
        self.assertEqual(self.decode(frame), make_pdu(C.bind_transceiver_resp, 3, 0x0D, system_id="SMPP1"))

    def test_response_with_empty_body(self) -> None:
        """A deliver_sm_resp or bind_resp of only a header (status 0) decodes with NULL fields."""
        for command_id in (C.deliver_sm_resp, C.submit_sm_resp, C.bind_transmitter_resp, C.query_sm_resp):
            self.assertEqual(self.decode(struct.pack(">IIII", 16, command_id, 0, 4)), make_pdu(command_id, 4))


class TableMalformedInputTests(MalformedInputTests):
    """The same error table holds for the table-driven path alone, with every fast path bypassed."""

    decode = staticmethod(decode_table)


def status_hex(status: int) -> str:
    """A status as hex, for readable failures."""
    return f"0x{status:08X}"


class EncodeTests(SynchronousTestCase):
    """What encode writes, and what it refuses."""

    def test_error_responses_have_no_body(self) -> None:
        """Error bind_resp, submit_sm_resp, submit_multi_resp, data_sm_resp, query_sm_resp are header only."""
        for command_id in codec.NO_BODY_ON_ERROR:
            pdu = PDU(command_id, 5, 0x45, {"message_id": "x", "system_id": "x"}, {Tag.sc_interface_version: b"4"})
            self.assertEqual(encode(pdu), struct.pack(">IIII", 16, command_id, 0x45, 5))

    def test_generic_nack_header_only(self) -> None:
        """generic_nack is written as a header even when given TLVs."""
        pdu = PDU(C.generic_nack, 0, S.ESME_RINVCMDLEN, {}, {Tag.message_state: b"\x01"})
        self.assertEqual(encode(pdu), _hex("00000010 80000000 00000002 00000000"))

    def test_tlvs_in_dict_order(self) -> None:
        """TLVs are written in the order of the dict, not sorted by tag."""
        pdu = make_pdu(C.deliver_sm_resp, 1, tlvs={0x1500: b"b", 0x0005: b"\x01"})
        self.assertEqual(encode(pdu)[17:], _hex("1500 0001 62", "0005 0001 01"))

    def test_unrepresentable_values(self) -> None:
        """Values that do not fit the wire raise ValueError, on the fast path and the table path alike."""
        bad = [
            _submit_sm(source_addr="1" * 21),
            _submit_sm(short_message=b"x" * 255),
            _submit_sm(destination_addr="\u20ac"),
            _submit_sm(service_type="a\x00b"),
            _submit_sm(esm_class=256),
            PDU(C.enquire_link, 2**32),
            make_pdu(C.bind_transmitter, 1, system_id="s" * 16),
            make_pdu(C.data_sm, 1, tlvs={Tag.message_payload: b"x" * 65536}),
            make_pdu(C.submit_multi, 1, dest_address=(DestAddress(3, 0, 0, "x"),)),
        ]
        for pdu in bad:
            self.assertRaises(ValueError, encode, pdu)
            self.assertRaises(ValueError, encode_table, pdu)

    def test_unknown_command_id_written_as_header(self) -> None:
        """A command_id outside SMPP 3.4 is written as a bare header (for fault injection)."""
        self.assertEqual(encode(PDU(0x99, 1)), _hex("00000010 00000099 00000000 00000001"))

    def test_missing_params_are_null(self) -> None:
        """Fields missing from params are written as NULL."""
        self.assertEqual(encode(PDU(C.submit_sm, 1)), encode(make_pdu(C.submit_sm, 1)))
        self.assertEqual(encode(PDU(C.bind_transceiver, 1)), encode(make_pdu(C.bind_transceiver, 1)))


# --- hypothesis strategies --------------------------------------------------------------

_TEXT = st.characters(min_codepoint=1, max_codepoint=255)


def _cstring(size: int) -> st.SearchStrategy[str]:
    return st.text(_TEXT, max_size=size - 1)


_BYTE = st.integers(0, 255)
_KIND: dict[str, Any] = {
    "i1": lambda size: _BYTE,
    "i4": lambda size: st.integers(0, 2**32 - 1),
    "c": _cstring,
    "time": _cstring,
    "sm": lambda size: st.binary(max_size=254),
    "dests": lambda size: st.lists(
        st.one_of(
            st.builds(DestAddress, st.just(1), _BYTE, _BYTE, _cstring(21)),
            st.builds(DestAddress, st.just(2), st.just(0), st.just(0), _cstring(21)),
        ),
        max_size=4,
    ).map(tuple),
    "unsuccess": lambda size: st.lists(
        st.builds(UnsuccessSME, _BYTE, _BYTE, _cstring(21), st.integers(0, 2**32 - 1)), max_size=4
    ).map(tuple),
}
_VENDOR_TLVS = st.dictionaries(st.integers(0x1400, 0x3FFF), st.binary(max_size=30), max_size=3)


@st.composite
def any_pdu(draw: Any, command_ids: list[int] = sorted(FIELDS)) -> PDU:
    """Any well-formed PDU of the given commands, status 0."""
    command_id = draw(st.sampled_from(command_ids))
    params = {name: draw(_KIND[kind](size)) for name, kind, size in FIELDS[command_id]}
    tlvs = draw(_VENDOR_TLVS) if FIELDS[command_id] and command_id != C.generic_nack else {}
    return PDU(command_id, draw(st.integers(0, 2**32 - 1)), 0, params, tlvs)


def _smpp_time() -> st.SearchStrategy[str]:
    """Times smpp.pdu3 accepts and writes back the same way."""
    two = st.integers(0, 99).map("{:02d}".format)
    absolute = st.tuples(
        two, st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59),
        st.integers(0, 9), st.integers(0, 48), st.sampled_from("+-"),
    ).map(lambda t: "{}{:02d}{:02d}{:02d}{:02d}{:02d}{}{:02d}{}".format(*t[:8], "+" if t[7] == 0 else t[8]))
    relative = st.tuples(*[two] * 6).map(lambda t: "".join(t) + "000R")
    return st.one_of(st.just(""), absolute, relative)


_DATA_CODING = st.sampled_from([*range(0x0F), *range(0x0F, 0xF0, 7), *range(0xF0, 0xF8)])
_ESM_CLASS = st.tuples(st.integers(0, 3), st.sampled_from([0, 4, 8, 0x10, 0x18, 0x20]), st.sampled_from([0, 0x40, 0x80, 0xC0]))
_SM_TLVS = st.fixed_dictionaries(
    {},
    optional={
        Tag.user_message_reference: st.binary(min_size=2, max_size=2),
        Tag.sar_msg_ref_num: st.binary(min_size=2, max_size=2),
        Tag.sar_total_segments: st.binary(min_size=1, max_size=1),
        Tag.message_payload: st.binary(max_size=300),
        Tag.source_port: st.binary(min_size=2, max_size=2),
    },
)


@st.composite
def valid_hot_pdu(draw: Any) -> PDU:
    """A hot-path PDU whose values smpp.pdu3 also accepts."""
    command_id = draw(st.sampled_from([C.submit_sm, C.deliver_sm, C.submit_sm_resp, C.deliver_sm_resp,
                                       C.enquire_link, C.enquire_link_resp, C.unbind, C.unbind_resp, C.generic_nack]))
    sequence = draw(st.integers(1, 0x7FFFFFFF))
    if command_id == C.submit_sm_resp:
        return make_pdu(command_id, sequence, message_id=draw(_cstring(65)))
    if command_id not in (C.submit_sm, C.deliver_sm):
        return make_pdu(command_id, sequence)
    ton = st.sampled_from([0, 1, 2, 3, 4, 5, 6])
    npi = st.sampled_from([0, 1, 3, 4, 6, 8, 9, 10, 14, 18])
    params = dict(
        service_type=draw(_cstring(6)), source_addr_ton=draw(ton), source_addr_npi=draw(npi),
        source_addr=draw(_cstring(21)), dest_addr_ton=draw(ton), dest_addr_npi=draw(npi),
        destination_addr=draw(_cstring(21)), esm_class=sum(draw(_ESM_CLASS)), protocol_id=draw(_BYTE),
        priority_flag=draw(st.integers(0, 3)), validity_period=draw(_smpp_time()),
        registered_delivery=draw(st.sampled_from([0, 1, 2])) | draw(st.sampled_from([0, 4, 8, 12, 0x10])),
        replace_if_present_flag=draw(st.integers(0, 1)), data_coding=draw(_DATA_CODING),
        sm_default_msg_id=draw(st.integers(0, 254)), short_message=draw(st.binary(max_size=254)),
    )
    if command_id == C.submit_sm:
        params["schedule_delivery_time"] = draw(_smpp_time())
    return make_pdu(command_id, sequence, tlvs=draw(_SM_TLVS), **params)


class PropertyTests(SynchronousTestCase):
    """Properties over generated PDUs."""

    @settings(max_examples=300, deadline=None)
    @given(any_pdu())
    def test_round_trip(self, pdu: PDU) -> None:
        """Any well-formed PDU of any type decodes back to itself after encoding."""
        self.assertEqual(decode(encode(pdu)), pdu)

    @settings(max_examples=300, deadline=None)
    @given(valid_hot_pdu())
    def test_fast_path_agrees_with_pdu3(self, pdu: PDU) -> None:
        """On valid hot-path PDUs, the fast decoder and stock smpp.pdu3 give the same fields and TLVs."""
        wire = encode(pdu)
        self.assertEqual(decode(wire), decode_with_pdu3(wire))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=80), st.sampled_from(sorted(FIELDS)))
    def test_garbage_only_raises_decode_error(self, body: bytes, command_id: int) -> None:
        """Random bodies either decode or raise PDUDecodeError, never anything else."""
        try:
            decode(struct.pack(">IIII", 16 + len(body), command_id, 0, 1) + body)
        except PDUDecodeError as error:
            self.assertNotEqual(error.status, S.ESME_RSYSERR)
