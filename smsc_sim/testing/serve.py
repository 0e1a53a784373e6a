"""
Run a simulator in this process and say where it listens:
``python -m smsc_sim.testing.serve --ports-file PATH [twistd smsc-sim options]``.

It takes every option of ``twistd smsc-sim`` (and the same ``SMSC_SIM_*``
variables, through :class:`smsc_sim.tap.Options`), so ephemeral ports
(``--listen SMPP1=tcp:0:interface=127.0.0.1``, ``--api tcp:0:...``) can be
used, and writes, once everything listens, a JSON file naming the real
addresses.  It stops when its standard input closes (with
``--exit-with-stdin``), so a test process that dies never leaves it behind.
This is what :class:`smsc_sim.testing.harness.SimulatorProcess` starts.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet.defer import gatherResults
from twisted.internet.protocol import Protocol
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python import usage
from twisted.python.failure import Failure

log = Logger()


def addresses(simulator: Any) -> dict[str, Any]:
    """Where a started simulator listens, as written to the ports file."""
    api = None
    try:
        service = simulator.getServiceNamed("api")
    except KeyError:
        service = None
    if service is not None and service.address() is not None:
        api = list(service.address())
    return {
        "pid": os.getpid(),
        "instances": {name: [list(a) for a in found] for name, found in simulator.endpoints().items()},
        "api": api,
        "accounts": [[account.system_id, account.password] for account in simulator.config.accounts],
        "scenario": simulator.config.scenario,
        "seed": simulator.seed,
    }


def write_atomically(path: str, data: dict[str, Any]) -> None:
    """Write JSON so a reader never sees half a file."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(partial, path)


class _StopOnEOF(Protocol):
    """Stops the reactor when standard input closes (the parent went away)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.reactor.running:
            self.reactor.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the simulator until stopped, return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    ports_file = None
    exit_with_stdin = False
    rest: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "--ports-file" and args:
            ports_file = args.pop(0)
        elif arg.startswith("--ports-file="):
            ports_file = arg.split("=", 1)[1]
        elif arg == "--exit-with-stdin":
            exit_with_stdin = True
        else:
            rest.append(arg)
    from smsc_sim.tap import Options

    options = Options()
    try:
        options.parseOptions(rest)
    except usage.UsageError as e:
        print(f"smsc-sim: {e}", file=sys.stderr)
        return 2
    from twisted.internet import reactor

    from smsc_sim.service import build_service

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    simulator = build_service(options.config, reactor)
    failed: list[str] = []

    def started() -> None:
        simulator.startService()
        waits = [simulator.when_listening()]
        try:
            waits.append(simulator.getServiceNamed("api").when_listening())
        except KeyError:
            pass

        def report(_: object) -> None:
            found = addresses(simulator)
            closed = [name for name, where in found["instances"].items() if not where]
            if closed or (options.config.api_endpoint and found["api"] is None):
                failed.append(f"cannot listen: {', '.join(closed) or 'api'}")
                reactor.stop()
                return
            if ports_file:
                write_atomically(ports_file, found)

        gatherResults(waits).addCallback(report)

    reactor.callWhenRunning(started)
    reactor.addSystemEventTrigger("before", "shutdown", simulator.stopService)
    if exit_with_stdin:
        from twisted.internet.stdio import StandardIO

        # stdout stays the log's: the stdin watcher writes nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        StandardIO(_StopOnEOF(reactor), stdout=devnull, reactor=reactor)  # type: ignore[call-arg]
    reactor.run()
    if failed:
        print(f"smsc-sim: {failed[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
