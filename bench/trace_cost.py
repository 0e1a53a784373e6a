"""
CPU microseconds per submit_sm through a whole simulator, in process, with
the pcap trace off: what the raw-octet events cost the hot path when nobody
traces.

    python3 -m bench.trace_cost [--rounds 7] [--submits 20000] [--subscriber] [--trace]

``--subscriber`` adds a subscriber of every (ordinary) event, as the API's
metrics and the conformance judge are, so the bus is active; ``--trace``
subscribes the pcap ring (tracing on, for comparison).  Prints the median
and the spread of the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from smsc_sim.config import default_config
from smsc_sim.simulator import SMPPServerFactory, Simulator
from tests import wire


def run(submits: int, subscriber: bool, trace: bool) -> float:
    """CPU µs per submit_sm for one round of ``submits``."""
    reactor = MemoryReactorClock()
    config = dataclasses.replace(default_config(), api_endpoint="", seed=0, conformance_judge=False)
    simulator = Simulator(config, reactor)
    if subscriber:
        simulator.events.subscribe(lambda event: None)
    if trace:
        from smsc_sim.trace.ring import TraceRing

        TraceRing(16 << 20).subscribe(simulator.events)
    factory = SMPPServerFactory(simulator, simulator.instances["SMPP1"])
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    session = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address, hostAddress=IPv4Address("TCP", "127.0.0.1", 2775))
    session.makeConnection(transport)
    session.dataReceived(wire.bind(0x02))
    frames = [wire.submit_sm(sequence=i + 2, registered_delivery=0) for i in range(submits)]
    start = time.process_time()
    for data in frames:
        session.dataReceived(data)
        transport.clear()
    return (time.process_time() - start) / submits * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--submits", type=int, default=20000)
    parser.add_argument("--subscriber", action="store_true")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    run(2000, args.subscriber, args.trace)  # warm-up
    results = sorted(run(args.submits, args.subscriber, args.trace) for _ in range(args.rounds))
    print(
        f"µs/submit_sm median {statistics.median(results):.2f} "
        f"min {results[0]:.2f} max {results[-1]:.2f} (rounds {args.rounds}, subscriber {args.subscriber})"
    )


if __name__ == "__main__":
    main()
