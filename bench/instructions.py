"""
Instructions per submit_sm, counted by valgrind's callgrind: a measure of the
hot path's cost that a shared, noisy machine does not blur.

    python bench/instructions.py                         # default form and --api none, with and without receipts
    python bench/instructions.py --forms default --receipts off
    python bench/instructions.py --checkout /tmp/before  # another checkout's code (PYTHONPATH)
    python bench/instructions.py --forms bare            # neither the API nor the judge: the engine alone
    python bench/instructions.py --sessions 100          # the same submits spread over 100 sessions

Each figure is the difference between two runs under callgrind, one of 10 and
one of 50 reads of 50 submit_sm on one bound transceiver (a simulator in
process, on a fake clock, the shipped ``bench`` scenario), divided by the 2 000
submits between them: start-up and shutdown cancel out.  The simulator runs
with the twistd form's garbage-collector policy (``process_gc_policy``), and
the hash seed is fixed (``--hash-seed``, 0 by default): with a random seed the
same code counts a point or so more or less from run to run, with a fixed one
the count repeats to within a few instructions.  With receipts, every
read is followed by half a second of fake time and the 50 deliver_sm_resp.
With ``--sessions N`` the 50 submits of each read go to N bound transceivers
round robin (each session reads its share at once: with 100 sessions, one
submit per read, each session every other read), for costs per session or per
read that one session hides.  A ``--checkout`` from before the conformance
judge has no switch for it and runs as it is in every form (compare its
``api-none`` with this tree's ``bare``).  Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import re
import shutil
import struct
import subprocess
import sys

BATCH = 50
#: reads prepared in every run, whatever its rounds, so that encoding them cancels out of the difference
PREPARED = 50


def workload(api: bool, judge: bool, receipts: bool, rounds: int, sessions: int = 1) -> None:
    """(Under callgrind) bind ``sessions`` transceivers and process ``rounds`` rounds of :data:`BATCH` submit_sm.

    The submits go to the sessions round robin (submit ``k`` of the whole stream to session ``k % sessions``),
    each session reading its share of a round at once; with one session that is one read of 50 per round.
    """
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import MemoryReactorClock, StringTransport

    from smsc_sim.api.app import ControlAPI
    from smsc_sim.config import default_config
    from smsc_sim.simulator import Simulator, SMPPServerFactory
    from smsc_sim.smpp.codec import encode
    from smsc_sim.smpp.constants import CommandId
    from smsc_sim.smpp.pdu import make_pdu
    from smsc_sim.tap import process_gc_policy

    def submit(sequence: int) -> bytes:
        return encode(make_pdu(CommandId.submit_sm, sequence, source_addr_ton=1, source_addr="447700900001",
                               dest_addr_ton=1, destination_addr="447700900002", short_message=b"Hello, world",
                               registered_delivery=1 if receipts else 0))  # fmt: skip

    def answer(sequence: int) -> bytes:
        return struct.pack(">IIII", 17, 0x80000005, 0, sequence) + b"\0"

    reactor = MemoryReactorClock()
    reactor.advance(1.8e9)
    base = default_config()
    # a checkout from before the judge (``--checkout``) has no switch for it: it runs as it is
    config = dataclasses.replace(base, api_endpoint="", seed=0, scenario="bench")
    if "conformance_judge" in {field.name for field in dataclasses.fields(base)}:
        config = dataclasses.replace(config, conformance_judge=judge)
    simulator = Simulator(config, reactor)
    simulator.startService()
    if api:
        ControlAPI(simulator)
    process_gc_policy(simulator)  # as twistd does once the services are built
    factory = SMPPServerFactory(simulator, simulator.instances["SMPP1"])
    bound = []
    for number in range(sessions):
        session = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000 + number))
        transport = StringTransport()
        session.makeConnection(transport)
        session.dataReceived(encode(make_pdu(CommandId.bind_transceiver, 1, system_id="smppclient1",
                                             password="password", interface_version=0x34)))  # fmt: skip
        if b"\x80\x00\x00\x09\x00\x00\x00\x00" not in transport.value():
            raise SystemExit(f"session {number} was not bound: {transport.value()!r}")
        bound.append((session, transport))
    # every round's reads, prepared before counting starts: (session, submits, their receipts' answers);
    # a session's submits are numbered from 2 (the bind was 1), its receipts from 1, both in order
    submitted, received = [1] * sessions, [0] * sessions
    prepared = []
    for i in range(PREPARED):
        shares: dict[int, int] = {}
        for k in range(BATCH * i, BATCH * (i + 1)):
            shares[k % sessions] = shares.get(k % sessions, 0) + 1
        reads = []
        for number, count in shares.items():
            first, answered = submitted[number] + 1, received[number] + 1
            submitted[number] += count
            received[number] += count
            reads.append((bound[number], b"".join(submit(first + j) for j in range(count)),
                          b"".join(answer(answered + j) for j in range(count))))  # fmt: skip
        prepared.append(reads)
    for _, transport in bound:
        transport.clear()
    gc.collect()
    for i in range(rounds):
        for (session, transport), data, _ in prepared[i]:
            session.dataReceived(data)
            transport.clear()
        if receipts:
            reactor.advance(0.5)
            for (session, transport), _, resps in prepared[i]:
                written = transport.value()
                transport.clear()
                if written.count(b"id:") != len(resps) // 17:
                    raise SystemExit(f"expected a receipt per submit after round {i}, got {written!r}")
                session.dataReceived(resps)
    simulator.stopService()


def instructions(root: str, form: str, receipts: bool, rounds: int, sessions: int = 1, hash_seed: str = "0") -> int:
    """Instructions callgrind counts for one workload run (``hash_seed`` "random": Python's own)."""
    api, judge = form not in ("api-none", "bare"), form not in ("no-judge", "bare")
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, os.path.abspath(__file__),
            "--child", "on" if api else "off", "on" if judge else "off", "on" if receipts else "off", str(rounds), str(sessions)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.path.abspath(root), PYTHONHASHSEED=hash_seed)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    """Parse the options, count, print a line per form and shape."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--forms", default="default,api-none", help="of default, api-none, no-judge, bare (neither API nor judge)"
    )
    parser.add_argument("--receipts", default="off,on", help="off, on or both (off,on)")
    parser.add_argument("--checkout", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--sessions", type=int, default=1, help="bound sessions the submits go to, round robin")
    parser.add_argument("--hash-seed", default="0", help="PYTHONHASHSEED of the runs (default 0; random: a new one each)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        api, judge, receipts = (value == "on" for value in options.child[:3])
        workload(api, judge, receipts, int(options.child[3]), int(options.child[4]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    for receipts in (value == "on" for value in options.receipts.split(",")):
        for form in options.forms.split(","):
            few, many = (
                instructions(options.checkout, form, receipts, rounds, options.sessions, options.hash_seed)
                for rounds in (10, 50)
            )
            per_submit = (many - few) / (40 * BATCH)
            shape = "with receipts" if receipts else "no receipts"
            print(f"{form:9} {shape:14} {per_submit:10.0f} instructions per submit_sm", flush=True)


if __name__ == "__main__":
    main()
