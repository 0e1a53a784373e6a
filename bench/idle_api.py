"""
What an idle control API costs, in CPU time, with no network and no load generator in the way.

    python bench/idle_api.py                      # 3 rounds of 200 000 submits, API on then off
    python bench/idle_api.py --submits 400000 --rounds 5 --receipts

Each run is a fresh Python process (so that one run's freed memory does not
serve the next one's allocations) that builds a simulator (the shipped ``bench`` scenario, the
judge on, the twistd form's GC policy), binds four transceivers on string
transports and feeds them reads of 50 submit_sm, 200 submits per 5 ms of fake
time, until ``--submits`` are answered; it prints the process CPU time per
submit with the control API on (built, never called) and with no API, and
their ratio, round by round.  Unlike ``bench/instructions.py`` (2 000 submits,
instructions counted), the runs are long enough for the submits log's ring to
fill and wrap and for the memory the records hold to count; unlike
``bench/run.py``, the generator and the sockets are not measured.  The machine's
drift still shows: compare the ratios of one round, not the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_per_submit(api: bool, submits: int, receipts: bool, tally: bool = True) -> float:
    """
    Microseconds of process CPU time per submit_sm, with the control API on or off (and with the API on,
    its PDU tally untapped when ``tally`` is false: what the API costs besides counting the PDUs).
    """
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import MemoryReactorClock, StringTransport

    from smsc_sim.api.app import ControlAPI
    from smsc_sim.api.tally import PduTally
    from smsc_sim.config import default_config
    from smsc_sim.simulator import Simulator, SMPPServerFactory
    from smsc_sim.smpp.codec import encode
    from smsc_sim.smpp.constants import CommandId
    from smsc_sim.smpp.pdu import make_pdu
    from smsc_sim.tap import process_gc_policy

    reactor = MemoryReactorClock()
    reactor.advance(1.8e9)
    config = dataclasses.replace(default_config(), api_endpoint="", seed=0, scenario="bench")
    simulator = Simulator(config, reactor)
    simulator.startService()
    if api:
        ControlAPI(simulator)
        if not tally:
            events = simulator.events
            events.pdu_taps = tuple(tap for tap in events.pdu_taps if not isinstance(tap, PduTally))
    process_gc_policy(simulator)
    factory = SMPPServerFactory(simulator, simulator.instances["SMPP1"])
    sessions = []
    for number in range(4):
        session = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000 + number))
        transport = StringTransport()
        session.makeConnection(transport)
        session.dataReceived(encode(make_pdu(CommandId.bind_transceiver, 1, system_id="smppclient1",
                                             password="password", interface_version=0x34)))  # fmt: skip
        transport.clear()
        sessions.append((session, transport))
    submit = encode(make_pdu(CommandId.submit_sm, 2, source_addr_ton=1, source_addr="447700900001", dest_addr_ton=1,
                             destination_addr="447700900002", short_message=b"Hello, world",
                             registered_delivery=1 if receipts else 0))  # fmt: skip
    size, sequence, done = len(submit), 2, 0
    answer = struct.Struct(">IIII")
    started = time.process_time()
    while done < submits:
        for session, transport in sessions:
            read = bytearray(submit * 50)
            for j in range(50):
                struct.pack_into(">I", read, j * size + 12, sequence)
                sequence += 1
            session.dataReceived(bytes(read))
            transport.clear()
        done += 200
        reactor.advance(0.005)
        if receipts:  # the receipts written meanwhile, answered at once (a receipt is a deliver_sm)
            for session, transport in sessions:
                written = transport.value()
                transport.clear()
                answers = []
                at = 0
                while at + 16 <= len(written):
                    length, command, _, number = answer.unpack_from(written, at)
                    if command == 0x00000005:
                        answers.append(answer.pack(17, 0x80000005, 0, number) + b"\0")
                    at += length
                if answers:
                    session.dataReceived(b"".join(answers))
    spent = time.process_time() - started
    simulator.stopService()
    return spent / done * 1e6


def run(api: bool, submits: int, receipts: bool, tally: bool) -> float:
    """:func:`cpu_per_submit` in a fresh process of this checkout."""
    argv = [sys.executable, os.path.abspath(__file__), "--child", "on" if api else "off", str(submits),
            "on" if receipts else "off", "on" if tally else "off"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def main() -> None:
    """Parse the options, run the rounds, print a line per round and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=200_000, help="submit_sm per run (default 200 000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one run API on and one off (default 3)")
    parser.add_argument("--receipts", action="store_true", help="ask for a receipt for every message, and answer it")
    parser.add_argument("--without-tally", action="store_true",
                        help="untap the API's PDU tally in the API-on runs (what the API costs besides it)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        api, submits, receipts, tally = options.child
        print(cpu_per_submit(api == "on", int(submits), receipts == "on", tally == "on"))
        return
    ratios, on_all, off_all = [], [], []
    for number in range(options.rounds):
        on = run(True, options.submits, options.receipts, not options.without_tally)
        off = run(False, options.submits, options.receipts, True)
        ratios.append(on / off)
        on_all.append(on)
        off_all.append(off)
        print(f"round {number + 1}: API on {on:.2f} us CPU per submit, --api none {off:.2f}, on / off {on / off:.3f}",
              flush=True)  # fmt: skip
    print(f"median: API on {statistics.median(on_all):.2f}, --api none {statistics.median(off_all):.2f}, "
          f"on / off {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
