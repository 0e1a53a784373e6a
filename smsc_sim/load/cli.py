"""The ``smsc-sim-load`` command: options in, a load run, the JSON result out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from twisted.internet.defer import Deferred

from smsc_sim.load.run import run_load
from smsc_sim.load.settings import LoadSettings, submit_template
from smsc_sim.rlimits import raise_open_files

__all__ = ["parse_args", "main", "DESCRIPTION"]

DESCRIPTION = "A load generator ESME: many SMPP sessions submitting as fast as allowed."


def parse_args(argv: Sequence[str]) -> tuple[LoadSettings, str | None]:
    """
    The settings and the ``--json-out`` path from the command line.

    :raises SystemExit: for a usage error (argparse prints it).
    """
    p = argparse.ArgumentParser(prog="smsc-sim-load", description=DESCRIPTION)
    p.add_argument("--host", default="127.0.0.1", help="the SMSC's address (default %(default)s)")
    p.add_argument("--port", type=int, action="append", default=[], help="an SMSC port; repeatable (default 2775)")
    p.add_argument("--ports", default="", help="several ports at once, comma-separated; sessions go round them")
    p.add_argument("--system-id", default="smppclient1", help="default %(default)s")
    p.add_argument("--password", default="password", help="default %(default)s")
    p.add_argument("--bind", choices=("trx", "tx+rx"), default="trx",
                   help="a transceiver per session, or a transmitter and a receiver (default %(default)s)")
    p.add_argument("--sessions", type=int, default=1, help="sessions (default %(default)s)")
    p.add_argument("--window", type=int, default=10, help="submit_sm outstanding per session (default %(default)s)")
    p.add_argument("--rate", type=float, default=0.0, help="messages per second in total; 0 = flat out (default)")
    p.add_argument("--count", type=int, default=0, help="messages to submit in total")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to submit for (default 10 without --count)")
    p.add_argument("--receipts", action="store_true", help="request a receipt for every message and count them")
    p.add_argument("--listen-only", action="store_true", help="never submit: count MO and receipts for --duration")
    p.add_argument("--receipt-timeout", type=float, default=30.0, help="seconds to wait for late receipts")
    p.add_argument("--response-timeout", type=float, default=10.0, help="seconds for binds and the last responses")
    p.add_argument("--text", default=LoadSettings.text, help="short_message text (default %(default)r)")
    p.add_argument("--source", default=LoadSettings.source, help="source_addr")
    p.add_argument("--destination", default=LoadSettings.destination, help="destination_addr")
    p.add_argument("--unique", action="store_true",
                   help="every message its own destination (its last 8 digits count up) and text (8 digits in front)")
    p.add_argument("--progress", type=float, default=1.0, help="seconds between progress lines on stderr; 0 = none")
    p.add_argument("--enquire-link", type=float, default=0.0,
                   help="seconds between enquire_link on each session; 0 = none (default)")
    p.add_argument("--connect-concurrency", type=int, default=LoadSettings.connect_concurrency,
                   help="most connections being opened and bound at once (default %(default)s)")
    p.add_argument("--json-out", default=None, help="also write the JSON result to this file")
    a = p.parse_args(list(argv))
    ports = list(a.port)
    for part in filter(None, (x.strip() for x in a.ports.split(","))):
        if not part.isdigit():
            p.error(f"--ports wants numbers separated by commas, got {a.ports!r}")
        ports.append(int(part))
    if any(not 0 < port < 65536 for port in ports):
        p.error("ports are 1 to 65535")
    if a.sessions < 1 or a.window < 1:
        p.error("--sessions and --window are at least 1")
    if a.count < 0 or a.duration < 0 or a.rate < 0 or a.enquire_link < 0:
        p.error("--count, --duration, --rate and --enquire-link cannot be negative")
    if a.connect_concurrency < 1:
        p.error("--connect-concurrency is at least 1")
    try:
        submit_template(LoadSettings(targets=(), text=a.text, unique=a.unique))
    except ValueError as error:
        p.error(f"--text: {error}")
    settings = LoadSettings(
        targets=tuple((a.host, port) for port in ports or [2775]),
        system_id=a.system_id, password=a.password, bind=a.bind, sessions=a.sessions, window=a.window,
        rate=a.rate, count=a.count, duration=a.duration or (0.0 if a.count else 10.0), receipts=a.receipts,
        listen_only=a.listen_only, text=a.text, source=a.source, destination=a.destination,
        receipt_timeout=a.receipt_timeout, response_timeout=a.response_timeout, progress=a.progress,
        enquire_link=a.enquire_link, connect_concurrency=a.connect_concurrency, unique=a.unique,
    )  # fmt: skip
    return settings, a.json_out


def main(argv: Sequence[str] | None = None) -> None:
    """The ``smsc-sim-load`` command: run, print the JSON result, exit 1 if nothing was accepted."""
    from twisted.internet.task import react

    settings, json_out = parse_args(sys.argv[1:] if argv is None else argv)
    connections = settings.sessions * (1 if settings.bind == "trx" else 2)
    raise_open_files(connections + 64)

    async def run(reactor: Any) -> None:
        result = await run_load(reactor, settings, sys.stderr)
        text = json.dumps(result, indent=2)
        sys.stdout.write(text + "\n")
        if json_out:
            with open(json_out, "w", encoding="utf-8") as stream:
                stream.write(text + "\n")
        if not result["sessions_bound"] or (result["submitted"] and not result["answered"]):
            raise SystemExit(1)

    react(lambda reactor: Deferred.fromCoroutine(run(reactor)))

