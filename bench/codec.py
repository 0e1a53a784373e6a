"""
Time the codec alone: encode and decode of the four PDUs of the hot path.

    python bench/codec.py                 # 7 runs, each the best of 5 timeit repeats
    python bench/codec.py --runs 11 --number 20000
    PYTHONPATH=/path/to/other/checkout python bench/codec.py   # the same for another tree

Each shape is a PDU as the simulator sees it under load: the generator's
submit_sm (registered_delivery 1, 20 octets of text), the simulator's
submit_sm_resp (a 16-hex-digit message_id), a DELIVRD receipt deliver_sm
(receipt text, receipted_message_id and message_state TLVs) and the
generator's empty deliver_sm_resp.  A run times ``number`` calls of
``encode`` and of ``decode`` and keeps the best of ``repeat`` repeats (the
least disturbed); the table gives, per call, the median over runs and the
min-max spread.  The module that is timed is whichever ``smsc_sim`` is first
on ``sys.path``, so two trees can be compared by running this twice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit
from typing import Callable

if not os.environ.get("PYTHONPATH"):  # run as a script from a checkout: time that checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from smsc_sim.smpp.codec import decode, encode  # noqa: E402
from smsc_sim.smpp.constants import CommandId, Tag  # noqa: E402
from smsc_sim.smpp.pdu import PDU, make_pdu, tlv_cstring, tlv_uint  # noqa: E402


def shapes() -> dict[str, PDU]:
    """The four PDUs timed, by name."""
    message_id = "0123456789abcdef"
    receipt = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2612062300 done date:2612062300 stat:DELIVRD err:000 text:"
    ).encode("latin-1")
    return {
        "submit_sm": make_pdu(
            CommandId.submit_sm, 7,
            source_addr_ton=1, source_addr_npi=1, source_addr="12345",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="447700900123",
            registered_delivery=1, short_message=b"Hello from the bench",
        ),
        "submit_sm_resp": make_pdu(CommandId.submit_sm_resp, 7, message_id=message_id),
        "deliver_sm": make_pdu(
            CommandId.deliver_sm, 9,
            source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="12345",
            esm_class=0x04, short_message=receipt,
            tlvs={Tag.receipted_message_id: tlv_cstring(message_id), Tag.message_state: tlv_uint(2, 1)},
        ),
        "deliver_sm_resp": make_pdu(CommandId.deliver_sm_resp, 9),
    }  # fmt: skip


def time_call(call: Callable[[], object], number: int, repeat: int) -> float:
    """Microseconds per call, the best of ``repeat`` repeats of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print the table: shape, operation, median µs per call, min-max."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (median and spread over these)")
    parser.add_argument("--number", type=int, default=20000, help="calls per timeit repeat")
    parser.add_argument("--repeat", type=int, default=5, help="timeit repeats per run (the best is kept)")
    args = parser.parse_args(argv)
    import smsc_sim

    print(f"# codec of {os.path.dirname(os.path.dirname(os.path.abspath(smsc_sim.__file__)))}")
    print(f"{'PDU':<16} {'op':<7} {'median µs':>9}  {'min-max':>13}")
    for name, pdu in shapes().items():
        wire = encode(pdu)
        if decode(wire) != pdu:
            raise SystemExit(f"{name} does not round-trip")
        for op, call in (("encode", lambda pdu=pdu: encode(pdu)), ("decode", lambda wire=wire: decode(wire))):
            figures = [time_call(call, args.number, args.repeat) for _ in range(args.runs)]
            print(f"{name:<16} {op:<7} {statistics.median(figures):9.3f}  {min(figures):6.3f}-{max(figures):6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
