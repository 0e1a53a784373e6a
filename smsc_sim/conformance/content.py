"""
The checks on what a submit carries: concatenation, encoding and the
destination address.
"""

from __future__ import annotations

from smsc_sim.conformance.findings import Check, Evidence
from smsc_sim.conformance.tracks import (
    MAX_CONCAT_GROUPS,
    AccountTrack,
    ConcatGroup,
    Context,
    SessionTrack,
    evidence_of,
)
from smsc_sim.smpp.concat import ConcatError, concat_info, payload_of
from smsc_sim.smpp.constants import ESM_CLASS_UDHI, Tag
from smsc_sim.smpp.pdu import PDU
from smsc_sim.smpp.text import length_class, max_chars

_PAYLOAD = int(Tag.message_payload)
#: data_coding values read as single-byte Latin text, where UTF-8 octets become mojibake
_SINGLE_BYTE = frozenset({0x00, 0x03})
_UCS2 = 0x08
_TON_INTERNATIONAL = 1


def _units(octets: bytes, data_coding: int) -> int:
    """The message length as the provider counts it: characters (one octet each unpacked) or UCS-2 units."""
    try:
        kind = length_class(data_coding)
    except (ValueError, KeyError):
        return len(octets)
    return len(octets) // 2 if kind == "ucs2" else len(octets)


def _limit(data_coding: int, concatenated: bool) -> int | None:
    try:
        return max_chars(data_coding, concatenated)
    except (ValueError, KeyError):
        return None


#: data_coding -> the most octets a single message holds (None: no limit known); at most 256 entries
_SINGLE_OCTETS: dict[int, int | None] = {}
_UNKNOWN = -1  # not in _SINGLE_OCTETS yet


def _single_octets(data_coding: int) -> int | None:
    """
    The most octets of one short_message within the single-message limit
    (:func:`_limit` in :func:`_units`), remembered in :data:`_SINGLE_OCTETS`, which every submit reads.
    """
    limit = _limit(data_coding, False)
    # units are octets, or octet pairs for UCS-2 (len // 2 > limit once len > 2 * limit + 1)
    most = None if limit is None else (2 * limit + 1 if _units(b"..", data_coding) == 1 else limit)
    if len(_SINGLE_OCTETS) < 256:
        _SINGLE_OCTETS[data_coding] = most
    return most


def _looks_like_utf8(octets: bytes) -> bool:
    """Octets above 0x7F that form valid multi-byte UTF-8: text encoded as UTF-8 and labelled Latin."""
    if octets.isascii():
        return False
    try:
        octets.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class ContentChecks:
    """Per-submit checks on the message's content."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def _record(
        self, check: Check, account: AccountTrack, track: SessionTrack, pdu: PDU, time: float, detail: str
    ) -> None:
        evidence = (evidence_of(pdu, time),)
        self._context.book.record(check, account.account, track.session_id, track.instance, time, evidence, detail)

    def submitted(self, account: AccountTrack, track: SessionTrack, pdu: PDU, time: float) -> None:
        """Check one submit_sm, submit_multi or data_sm."""
        params = pdu.params
        # the usual case first, without a call: one destination, digits only, TON 1, no "00"
        # (what _address_problem finds nothing in; anything else takes the full check)
        address = params.get("destination_addr")
        if (
            "dest_address" in params
            or address is None
            or params.get("dest_addr_ton", 0) != _TON_INTERNATIONAL
            or not (address.isdigit() and address.isascii())
            or address.startswith("00")
        ):
            self._addresses(account, track, pdu, time)
        esm_class: int = params.get("esm_class", 0)
        data_coding: int = params.get("data_coding", 0)
        short_message: bytes = params.get("short_message", b"")
        if not pdu.tlvs and not esm_class & ESM_CLASS_UDHI:
            # a plain message, the usual case: no concatenation data to read
            info, payload = None, short_message
        else:
            try:
                info = concat_info(esm_class, short_message, pdu.tlvs)
                payload = payload_of(esm_class, short_message, pdu.tlvs)
            except ConcatError as error:
                self._record(
                    Check.concat_inconsistent, account, track, pdu, time, f"malformed concatenation data: {error}"
                )
                return
        if data_coding == _UCS2 or not payload.isascii():
            self._encoding(account, track, pdu, data_coding, payload, time)  # ASCII is fine but in UCS-2
        if info is None:
            most = _SINGLE_OCTETS.get(data_coding, _UNKNOWN)
            if most == _UNKNOWN:
                most = _single_octets(data_coding)
            if short_message and most is not None and len(payload) > most:
                limit = _limit(data_coding, False)
                self._record(
                    Check.concat_inconsistent,
                    account,
                    track,
                    pdu,
                    time,
                    f"a long text sent as one short_message of {_units(payload, data_coding)} characters "
                    f"(a single message holds {limit}); split it with a UDH",
                )
            return
        limit = _limit(data_coding, True)
        if limit is not None and _units(payload, data_coding) > limit:
            self._record(
                Check.concat_inconsistent,
                account,
                track,
                pdu,
                time,
                f"part {info.seqnum} of {info.total} holds {_units(payload, data_coding)} characters; "
                f"a part holds at most {limit}",
            )
        destination = str(params.get("destination_addr", ""))
        self._part(account, track, pdu, time, (destination, info.kind, info.reference), info.total, info.seqnum)

    def _part(
        self,
        account: AccountTrack,
        track: SessionTrack,
        pdu: PDU,
        time: float,
        key: tuple[str, str, int],
        total: int,
        seqnum: int,
    ) -> None:
        window = self._context.thresholds.concat_window
        groups = account.concat
        while groups:
            oldest = next(iter(groups.values()))
            if time - oldest.first_time <= window and len(groups) < MAX_CONCAT_GROUPS:
                break
            groups.popitem(last=False)
        group = groups.get(key)
        if group is None or seqnum in group.seqnums:
            # a new message (or the same reference used again once every part was sent)
            groups.pop(key, None)
            groups[key] = ConcatGroup(total, track.instance, time, {seqnum})
            return
        group.seqnums.add(seqnum)
        problems = []
        if total != group.total:
            problems.append(f"says {total} parts where an earlier part said {group.total}")
        if track.instance != group.instance:
            problems.append(
                f"went to {track.instance} while an earlier part went to {group.instance}: "
                "the provider never delivers parts split across instances"
            )
        if problems:
            self._context.book.record(
                Check.concat_inconsistent,
                account.account,
                None,
                None,
                time,
                (Evidence("submit_sm", None, None, group.first_time), evidence_of(pdu, time)),
                f"part {seqnum} of reference {key[2]} to {key[0]} " + "; ".join(problems),
            )

    def _encoding(
        self, account: AccountTrack, track: SessionTrack, pdu: PDU, data_coding: int, payload: bytes, time: float
    ) -> None:
        if data_coding in _SINGLE_BYTE and _looks_like_utf8(payload):
            self._record(
                Check.encoding_suspect,
                account,
                track,
                pdu,
                time,
                f"data_coding {data_coding} with octets that are valid UTF-8 ({payload[:20].hex()}...): "
                "the handset will show mojibake; use data_coding 8 (UCS-2)",
            )
        elif data_coding == _UCS2 and len(payload) % 2:
            self._record(
                Check.encoding_suspect,
                account,
                track,
                pdu,
                time,
                f"data_coding 8 (UCS-2) with an odd number of octets ({len(payload)})",
            )

    def _addresses(self, account: AccountTrack, track: SessionTrack, pdu: PDU, time: float) -> None:
        params = pdu.params
        if "dest_address" in params:
            destinations = [(d.dest_addr_ton, d.destination_addr) for d in params["dest_address"] if d.dest_flag == 1]
        else:
            destinations = [(int(params.get("dest_addr_ton", 0)), str(params.get("destination_addr", "")))]
        for ton, address in destinations:
            problem = _address_problem(ton, address)
            if problem is not None:
                self._record(Check.address_format, account, track, pdu, time, f"destination {address!r}: {problem}")
                return


def _address_problem(ton: int, address: str) -> str | None:
    """Why a destination is not in the international format the provider expects, or None."""
    if address.startswith("+"):
        return "leading '+'; send the digits only, with TON 1"
    if address.startswith("00"):
        return "leading '00'; send the international number without it, with TON 1"
    if not (address.isascii() and address.isdigit()):
        return "not digits only"
    if ton != _TON_INTERNATIONAL:
        return f"dest_addr_ton {ton}; the provider expects 1 (international)"
    return None
