"""
Throughput of the core with the in-memory store and with the durable store
(``sqlite:PATH``), in process, with fake sessions: no sockets, no codec on
the request path, so the difference is the journal's own cost.

    python bench/store_bench.py                  # 100 000 messages, window 50, receipts after 0.5 s
    python bench/store_bench.py --messages 20000 --window 10 --runs 5
    python bench/store_bench.py --e2e            # also end to end: twistd + smsc-sim-load, 4 x 50

Each run submits ``--messages`` submit_sm with registered_delivery 1 from
one transceiver, ``--window`` per clock turn (what one read of a pipelining
ESME brings), at ``--rate`` messages per second of simulated time; every
receipt is answered in the next turn (``--ack-at-once``: within the call).  A turn is: the core's replies, the clock
advanced by the longest reply delay (with sqlite: the group commit, then the
replies), every ``on_sent``, then the clock advanced to the next turn (due
receipts, write-behind commits).  The figure is messages per second of CPU
time for the whole run, the last receipts and commits included.  The median
of ``--runs`` runs (memory and sqlite interleaved) is printed, with the best.
The garbage collector runs as twistd sets it (``smsc_sim.tap.process_gc_policy``).

``--e2e`` also runs the real thing, with the helpers of ``bench/run.py``:
``twistd -n smsc-sim`` (the ``bench`` scenario: receipts after 0.5 s) with
each store, pinned to CPU 0, and ``smsc-sim-load --sessions 4 --window 50``
(with ``--receipts``, and without) pinned to CPU 1, for ``--seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Iterator

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from smsc_sim.config import AccountSettings, Config, InstanceSettings  # noqa: E402
from smsc_sim.contracts import ReceiptPlan, ReceiptStep  # noqa: E402
from smsc_sim.core.default_scenario import DefaultScenario  # noqa: E402
from smsc_sim.core.journal import NO_JOURNAL, IMessageJournal  # noqa: E402
from smsc_sim.core.smsc import SMSCCore  # noqa: E402
from smsc_sim.durable.cluster import ClusterJournal  # noqa: E402
from smsc_sim.durable.sqlite import SQLiteJournal  # noqa: E402
from smsc_sim.events import EventBus  # noqa: E402
from smsc_sim.gc_freezer import GCFreezer  # noqa: E402
from smsc_sim.tap import GC_THRESHOLD0  # noqa: E402
from smsc_sim.smpp.constants import CommandId  # noqa: E402
from smsc_sim.smpp.pdu import PDU, make_pdu  # noqa: E402

T0 = 1_700_000_000.0
DELIVER_SM_RESP = make_pdu(CommandId.deliver_sm_resp, 1)


class AckingSession:
    """A bound session whose ESME answers every delivery with status 0: at once, or when :meth:`answer` is called."""

    def __init__(self, at_once: bool) -> None:
        self.at_once = at_once
        self.waiting: list[Any] = []
        self.session_id = 1
        self.instance_name = "SMPP1"
        self.peer = "127.0.0.1:40000"
        self.system_id: str | None = None
        self.bind_type: Any = None
        self.interface_version = 0x34
        self.delivered = 0

    def send_delivery(self, pdu: PDU, waiter: Any) -> None:
        self.delivered += 1
        if self.at_once:
            waiter.callback(DELIVER_SM_RESP)
        else:
            self.waiting.append(waiter)

    def answer(self) -> None:
        """Answer the deliveries waiting (those of the previous turn)."""
        waiting, self.waiting = self.waiting, []
        for answer in waiting:
            answer.callback(DELIVER_SM_RESP)

    def unbind(self) -> Deferred[None]:
        return succeed(None)

    def abort(self) -> None:
        pass

    def outbound_pending(self) -> int:
        return 0


class Scenario(DefaultScenario):
    """The default scenario with a fixed receipt: DELIVRD ``delay`` seconds after the response."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.plan = ReceiptPlan(steps=(ReceiptStep(delay, "DELIVRD", 0),))

    def default_receipt(self) -> ReceiptPlan:
        return self.plan


def run(
    store: str, messages: int, window: int, rate: float, delay: float, at_once: bool = False
) -> tuple[float, int, int]:
    """One run: (CPU seconds, receipts delivered, commits)."""
    clock = Clock()
    clock.rightNow = T0
    config = Config(
        instances=(InstanceSettings("SMPP1", ("tcp:0",), cluster="NA"),),
        accounts=(AccountSettings("esme", "secret", throughput=0, max_binds=10),),
    )
    journal = None
    tmp = None
    if store == "sqlite":
        tmp = tempfile.TemporaryDirectory()
        journal = SQLiteJournal(os.path.join(tmp.name, "store.db"), clock)
    cluster_journal: IMessageJournal = NO_JOURNAL
    if journal is not None:
        cluster_journal = ClusterJournal(journal, "NA", {})
    core = SMSCCore("NA", clock, config, config.instances, Scenario(delay), EventBus(clock), journal=cluster_journal)
    if isinstance(cluster_journal, ClusterJournal):
        cluster_journal.attach_store(core.store)
    session = AckingSession(at_once)
    bind = core.bind(session, make_pdu(CommandId.bind_transceiver, 1, system_id="esme", password="secret", interface_version=0x34))
    if bind.on_sent is not None:
        bind.on_sent()
    pdus = [
        make_pdu(
            CommandId.submit_sm,
            n + 1,
            source_addr="447700900001",
            destination_addr="447700900002",
            source_addr_ton=1,
            source_addr_npi=1,
            dest_addr_ton=1,
            dest_addr_npi=1,
            short_message=b"hello from the store bench",
            registered_delivery=1,
        )
        for n in range(messages)
    ]
    turn = window / rate
    request = core.request
    # the garbage collector as twistd sets it (smsc_sim.tap.process_gc_policy): the store frozen as it grows
    thresholds = gc.get_threshold()
    gc.collect()
    gc.set_threshold(GC_THRESHOLD0, thresholds[1], thresholds[2])
    freezer = GCFreezer(clock, lambda: (len(core.store), core.store.evicted))
    freezer.start()
    started = time.process_time()
    for first in range(0, messages, window):
        replies = [request(session, pdu) for pdu in pdus[first : first + window]]
        held = max(reply.delay for reply in replies)
        clock.advance(held)
        for reply in replies:
            if reply.on_sent is not None:
                reply.on_sent()
        clock.advance(max(0.0, turn - held))
        session.answer()  # receipts sent during this turn are answered in the next one
    for _ in range(int((delay + 2.0) / 0.01)):
        clock.advance(0.01)  # the last receipts, their answers and the write-behind commits
        session.answer()
    if journal is not None:
        journal.close()
    elapsed = time.process_time() - started
    freezer.stop()
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    commits = journal.commits if journal is not None else 0
    if tmp is not None:
        tmp.cleanup()
    return elapsed, session.delivered, commits


@contextlib.contextmanager
def served(store: str, directory: str) -> Iterator[int]:
    """``twistd -n smsc-sim`` as bench/run.py runs it, with ``--store STORE``; yields its port."""
    import run as bench_run  # bench/run.py: its server, pinning and generator

    with bench_run.server("smsc-sim", directory, extra=("--store", store)) as (port, _):
        yield port


def end_to_end(seconds: float, runs: int) -> None:
    """Median msg/s of smsc-sim-load 4 x 50 against twistd with each store, with and without receipts."""
    import run as bench_run

    for receipts in (False, True):
        shape = bench_run.Shape("4 x 50" + (" + receipts" if receipts else ""), 4, 50, receipts=receipts)
        figures: dict[str, float] = {}
        for store in ("memory", "sqlite"):
            results = []
            for _ in range(runs):
                with tempfile.TemporaryDirectory(prefix="smsc-store-bench-") as directory:
                    wanted = "memory" if store == "memory" else "sqlite:" + os.path.join(directory, "store.db")
                    with served(wanted, directory) as port:
                        results.append(bench_run.generator(port, shape, seconds, directory))
            middle = sorted(results, key=lambda r: r["accepted_per_s"])[len(results) // 2]
            figures[store] = middle["accepted_per_s"]
            got = middle["receipts"]
            print(
                f"e2e {shape.name:18} {store:7} {middle['accepted_per_s']:8.0f} msg/s"
                f"  p50 {middle['latency_ms']['p50']} ms  p99 {middle['latency_ms']['p99']} ms"
                + (f"  receipts {got['received']}/{got['expected']}" if receipts else "")
            )
        print(f"e2e {shape.name:18} sqlite / memory: {figures['sqlite'] / figures['memory']:.0%}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=50, help="submits per clock turn")
    parser.add_argument("--rate", type=float, default=10_000.0, help="messages per second of simulated time")
    parser.add_argument("--delay", type=float, default=0.5, help="receipt delay (s)")
    parser.add_argument("--ack-at-once", action="store_true", help="answer receipts within the call that sends them")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--e2e", action="store_true", help="also end to end (twistd and smsc-sim-load)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of an end-to-end run")
    args = parser.parse_args(argv)
    print(
        f"{args.messages} messages, {args.window} per turn, receipts after {args.delay} s;"
        f" {args.runs} runs of each store, interleaved"
    )
    times: dict[str, list[float]] = {"memory": [], "sqlite": []}
    last: dict[str, tuple[float, int, int]] = {}
    for _ in range(args.runs):
        for store in times:  # interleaved, so that a busy moment of the machine hits both
            last[store] = run(store, args.messages, args.window, args.rate, args.delay, args.ack_at_once)
            times[store].append(last[store][0])
    rates = {store: args.messages / statistics.median(runs) for store, runs in times.items()}
    for store, runs in times.items():
        per = 1e6 * statistics.median(runs) / args.messages
        print(
            f"{store:7} {rates[store]:9.0f} msg/s median, {args.messages / min(runs):9.0f} best"
            f"  ({per:.1f} us CPU per message; {last[store][1]} receipts, {last[store][2]} commits)"
        )
    print(f"sqlite / memory: {rates['sqlite'] / rates['memory']:.0%} (median), "
          f"{min(times['memory']) / min(times['sqlite']):.0%} (best)")
    if args.e2e:
        end_to_end(args.seconds, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
