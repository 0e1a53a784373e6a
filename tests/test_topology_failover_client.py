"""
The failover client that docs/topology.md shows, run as printed there.

The test reads the client's Python block out of the guide, so the guide and
the test cannot drift apart: it changes only the instances' addresses (to
the simulator's ephemeral ports) and shortens the client's two waits, each
found exactly once.  The client runs as a subprocess (it blocks, and it runs
forever); the simulator runs in-process on the real reactor, and the test
starts and ends each outage over the HTTP API, as the guide's ``curl``
examples do.  It then checks the lines the client prints.  Every wait has a
deadline, and the client is killed and the simulator stopped whatever
happens.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from smsc_sim.testing.harness import InProcessSimulator

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "topology.md"

#: the client's waits in the test: a bind_resp or the silence before a probe, and the pause between binds
TIMEOUT, RETRY = 2, 0.5
#: receipts 3 s after the submit_sm_resp: time to crash SMPP1 between a message's acceptance and its receipt
RECEIPTS = "name: failover-client\nreceipt:\n  stat: DELIVRD\n  delay: 3s\n"
#: the longest the test waits for one line of the client's (a black hole takes 2 * TIMEOUT to notice)
LINE_DEADLINE = 10.0


def doc_client() -> str:
    """The guide's failover client: the one Python block that defines ``keep_bound``."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "def keep_bound" in b]
    assert len(blocks) == 1, f"{len(blocks)} failover clients in {DOC}"
    return blocks[0]


def doc_crash_output() -> list[tuple[str, str]]:
    """
    The guide's "During the SMPP1 crash" lines, each with a pattern for the
    line the client prints: any message id, any object address, the test's
    retry pause; annotations (``<- ...``) and ``...`` left out.
    """
    text = DOC.read_text()
    start = text.index("During the SMPP1 crash, its output looks like this")
    block = re.search(r"```\n(.*?)```", text[start:], re.S)
    assert block is not None, "no output block after the crash sentence"
    variable = re.compile(r"([0-9A-F]{16}|0x[0-9a-f]+|retry in 5 s)")
    shown: list[tuple[str, str]] = []
    for line in block[1].splitlines():
        line = line.split("  <- ")[0].rstrip()
        if line in ("", "..."):
            continue
        parts = variable.split(line)
        for i in range(1, len(parts), 2):
            if parts[i].startswith("0x"):
                parts[i] = r"0x[0-9a-f]+"
            elif parts[i].startswith("retry"):
                parts[i] = re.escape(f"retry in {RETRY} s")
            else:
                parts[i] = r"[0-9A-F]+"
        parts[::2] = [re.escape(part) for part in parts[::2]]
        shown.append((line, "".join(parts)))
    return shown


def substitute(source: str, old: str, new: str) -> str:
    """``source`` with ``old``, which must occur exactly once, replaced by ``new``."""
    assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times in the guide's client"
    return source.replace(old, new)


def client_for(ports: dict[str, int]) -> str:
    """The guide's client, aimed at these SMPP1 and SMPP2 ports, with the test's shorter waits."""
    source = doc_client()
    source = substitute(
        source,
        'INSTANCES = {"SMPP1": ("127.0.0.1", 2775), "SMPP2": ("127.0.0.1", 2776)}\n',
        f'INSTANCES = {{"SMPP1": ("127.0.0.1", {ports["SMPP1"]}), "SMPP2": ("127.0.0.1", {ports["SMPP2"]})}}\n',
    )
    source = substitute(source, "\nTIMEOUT = 5  #", f"\nTIMEOUT = {TIMEOUT}  #")
    return substitute(source, "\nRETRY = 5  #", f"\nRETRY = {RETRY}  #")


class Output:
    """
    The lines a subprocess prints, read by a thread per stream and handed to
    the reactor, where a test waits for the one it expects.  stdout (the
    client's lines) and stderr (smpplib's warnings) are read apart: through
    one pipe, a write to one could land inside a line of the other.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.lines: list[str] = []
        self._waiters: list[tuple[re.Pattern[str], int, Deferred[re.Match[str]]]] = []
        self.threads = [
            threading.Thread(target=self._read, args=(stream,), name="failover-client-output", daemon=True)
            for stream in (process.stdout, process.stderr)
        ]
        for thread in self.threads:
            thread.start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:  # ends at EOF, once the process is gone
            self.reactor.callFromThread(self._received, raw.decode("utf-8", "replace").rstrip("\n"))

    def _received(self, line: str) -> None:
        self.lines.append(line)
        for waiter in list(self._waiters):
            pattern, since, done = waiter
            match = self._find(pattern, since)
            if match is not None:
                self._waiters.remove(waiter)
                done.callback(match)

    def _find(self, pattern: re.Pattern[str], since: int) -> re.Match[str] | None:
        for line in self.lines[since:]:
            match = pattern.fullmatch(line)
            if match is not None:
                return match
        return None

    def mark(self) -> int:
        """Where the output is now: :meth:`expect` from here ignores what came before."""
        return len(self.lines)

    async def expect(self, pattern: str, since: int = 0, deadline: float = LINE_DEADLINE) -> re.Match[str]:
        """The first line from ``since`` on that matches ``pattern`` whole; fail after ``deadline`` seconds."""
        compiled = re.compile(pattern)
        found = self._find(compiled, since)
        if found is not None:
            return found
        done: Deferred[re.Match[str]] = Deferred()
        waiter = (compiled, since, done)
        self._waiters.append(waiter)

        def expire() -> None:
            if not done.called:
                self._waiters.remove(waiter)
                shown = "\n".join(self.lines[since:]) or "(nothing)"
                done.errback(AssertionError(f"no line {pattern!r} within {deadline} s; the client printed:\n{shown}"))

        timer = self.reactor.callLater(deadline, expire)
        try:
            return await done
        finally:
            if timer.active():
                timer.cancel()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_the_guides_failover_client_survives_every_outage_it_names(tmp_path: Path) -> None:
    """
    The failover client of docs/topology.md, run as printed against the
    simulator, goes through the four outages the guide says it survives:
    SMPP2 refuses its bind (ESME_RBINDFAIL), and it binds once the outage
    ends; SMPP1 crashes, it reports the reset, finds SMPP1 refused, gets the
    receipt of a message accepted via SMPP1 through SMPP2, and rebinds to
    SMPP1 after the recovery; SMPP2 shuts down gracefully, it answers the
    unbind with an unbind_resp and rebinds after the recovery; SMPP1 becomes a black hole, its
    unanswered enquire_link reveals it, its binds time out, its messages go
    through SMPP2 meanwhile, and it rebinds after the recovery.
    """
    smsc = await InProcessSimulator().start()
    process: subprocess.Popen[bytes] | None = None
    output: Output | None = None
    retry = re.escape(f"; retry in {RETRY} s")
    try:
        await smsc.load_scenario(yaml=RECEIPTS)
        script = tmp_path / "failover_client.py"
        script.write_text(client_for({name: smsc.port(name) for name in ("SMPP1", "SMPP2")}))

        # refused binds: SMPP2 answers the client's first bind with ESME_RBINDFAIL
        await smsc.start_outage("SMPP2", "reject-binds")
        process = subprocess.Popen(
            [sys.executable, "-u", str(script)],
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        output = Output(process)
        await output.expect("SMPP1: bound")
        await output.expect(r"SMPP2: bind failed: PDUError\('\(13\) bind_transceiver_resp: Bind Failed', 13\)" + retry)
        mark = output.mark()
        await smsc.end_outage("SMPP2")
        await output.expect("SMPP2: bound", mark)

        # crash: SMPP1 resets the connection between a message's submit_sm_resp and its receipt
        crash = mark = output.mark()
        message_id = (await output.expect(r"SMPP1: accepted (\S+) \(status 0\)", mark))[1]
        await smsc.start_outage("SMPP1", "crash")
        await output.expect(r"SMPP1: lost: ConnectionError\(\)", mark)
        await output.expect(r"SMPP1: bind failed: ConnectionError\('Connection refused'\)" + retry, mark)
        await output.expect(f"SMPP2: receipt for {re.escape(message_id)}", mark)
        await output.expect(r"SMPP2: accepted \S+ \(status 0\)", mark)  # it keeps sending, through SMPP2
        assert f"SMPP1: receipt for {message_id}" not in output.lines
        mark = output.mark()
        await smsc.end_outage("SMPP1")
        await output.expect("SMPP1: bound", mark)
        printed = output.lines[crash:]
        for line, pattern in doc_crash_output():  # the guide's example output is what the client prints
            shown = "\n".join(printed)
            assert any(re.fullmatch(pattern, p) for p in printed), f"the guide shows {line!r}; printed:\n{shown}"

        # graceful shutdown: SMPP2 sends an unbind, which the client answers
        mark = output.mark()
        unbinds: list[str] = []  # instances where an SMSC's unbind was answered (a close alone is not)
        unsubscribe = smsc.simulator.events.subscribe(
            lambda event: unbinds.append(event.data["instance"]) if event.kind == "unbind" else None
        )
        try:
            await smsc.start_outage("SMPP2", "graceful")  # answers once the unbind is answered or the peer gone
        finally:
            unsubscribe()
        assert unbinds == ["SMPP2"]
        await output.expect(r"SMPP2: lost: ConnectionError\('unbound by the SMSC'\)", mark)
        await output.expect(r"SMPP2: bind failed: ConnectionError\('Connection refused'\)" + retry, mark)
        mark = output.mark()
        await smsc.end_outage("SMPP2")
        await output.expect("SMPP2: bound", mark)

        # black hole: SMPP1 answers nothing, not even enquire_link or a bind
        mark = output.mark()
        await smsc.start_outage("SMPP1", "blackhole")
        await output.expect(r"SMPP1: lost: ConnectionError\('enquire_link unanswered'\)", mark)
        lost = output.mark()
        await output.expect(r"SMPP1: bind failed: ConnectionError\(\)" + retry, lost)
        await output.expect(r"SMPP2: accepted \S+ \(status 0\)", lost)
        mark = output.mark()
        await smsc.end_outage("SMPP1")
        await output.expect("SMPP1: bound", mark)

        assert process.poll() is None, "the client stopped"
        assert not [line for line in output.lines if line.startswith("Traceback")], "\n".join(output.lines)
    finally:
        if process is not None:
            process.kill()
            process.wait(timeout=10)
            for thread in output.threads if output is not None else []:
                thread.join(timeout=10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        await smsc.stop()
