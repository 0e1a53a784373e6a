"""
The judge's report at shutdown: the summary logged one line per code, and
``--conformance-report FILE`` writing JUnit XML and a Markdown summary
beside it, in memory and from a real ``twistd -n smsc-sim`` stopped with
SIGTERM.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import provider

from smsc_sim.config import default_config
from smsc_sim.testing.client import SyncSMSCClient
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.conformance_harness import RawESME
from tests.process_harness import EPHEMERAL, SmscProcess

REPO = Path(__file__).resolve().parent.parent


class MemoryShutdownTests(SynchronousTestCase):
    def run_and_stop(self, report: str | None, judging: bool = True) -> list[str]:
        """Bind on SMPP1 only, close without unbind, stop the simulator; the log lines of the judge."""
        lines: list[str] = []

        @provider(ILogObserver)
        def observe(event: LogEvent) -> None:
            if event.get("log_namespace") == "smsc_sim.conformance":
                from twisted.logger import formatEvent

                lines.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        smsc = MemorySMSC(dataclasses.replace(default_config(), conformance_report=report, conformance_judge=judging))
        esme = RawESME(smsc.clock)
        esme.connection = smsc.connect(esme, "SMPP1")
        esme.send(wire.bind(0x09, 1))
        smsc.flush()
        esme.connection.disconnect()
        smsc.flush()
        smsc.stop()
        return lines

    def test_summary_logged_one_line_per_code(self) -> None:
        """At shutdown the verdict and one line per finding code are logged."""
        lines = self.run_and_stop(None)
        self.assertEqual(lines[0], "conformance: verdict warn, 2 findings (0 error, 2 warning, 0 info)")
        codes = [line.split(" ")[1] for line in lines[1:]]
        self.assertEqual(sorted(codes), ["no-unbind", "single-instance"])
        prefix = "conformance: no-unbind (warning): 1x, accounts smppclient1: "
        self.assertTrue(any(line.startswith(prefix) for line in lines))

    def test_report_files_written(self) -> None:
        """conformance_report gets the JUnit XML, and FILE.md the Markdown summary, both with the findings."""
        directory = self.mktemp()
        os.makedirs(directory)
        report = os.path.join(directory, "conformance.xml")
        self.run_and_stop(report)
        suite = ElementTree.parse(report).getroot()
        outputs = "".join(out.text or "" for out in suite.iter("system-out"))
        self.assertIn("no-unbind", outputs)
        with open(os.path.join(directory, "conformance.md"), encoding="utf-8") as f:
            markdown = f.read()
        self.assertTrue(markdown.startswith("# ESME conformance: warn"))
        self.assertIn("| `no-unbind` | warning | 1 | smppclient1 |", markdown)

    def test_no_report_when_not_judging(self) -> None:
        """
        With the judge switched off, shutdown logs that nothing was judged and
        writes no report (an empty one would read as a pass).
        """
        directory = self.mktemp()
        os.makedirs(directory)
        report = os.path.join(directory, "conformance.xml")
        lines = self.run_and_stop(report, judging=False)
        self.assertEqual(lines, ["conformance: not judged (conformance_judge is off); no report"])
        self.assertEqual(os.listdir(directory), [])

    def test_unwritable_report_is_logged_not_raised(self) -> None:
        """A report that cannot be written (its directory gone) is logged; the shutdown completes."""
        directory = self.mktemp()
        os.makedirs(directory)
        report = os.path.join(directory, "conformance.xml")
        os.rmdir(directory)
        lines = self.run_and_stop(report)
        self.assertTrue(any(line.startswith(f"conformance: cannot write the report {report}") for line in lines))


def _bound_socket(port: int) -> socket.socket:
    """A connection to ``port`` (the process said it listens there), bound as smppclient1."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(wire.bind(0x09, 1))
    assert connection.recv(4096)[4:8] == b"\x80\x00\x00\x09"
    return connection


@pytest.mark.integration
def test_twistd_writes_the_report_at_sigterm(tmp_path: Path) -> None:
    """
    ``twistd -n smsc-sim --conformance-report FILE``: an ESME binds SMPP1
    only and closes without unbind; after SIGTERM the log has one line per
    code, FILE holds JUnit XML and FILE.md the Markdown, both naming the
    findings.
    """
    report = tmp_path / "conformance.xml"
    # every endpoint tcp:0, the ports read back from the process's announce: a port picked free here and
    # handed on could be taken by another process before twistd binds it
    process = SmscProcess("smsc-sim", ["--api", EPHEMERAL, "--conformance-report", str(report),
                                       "--smpp1", EPHEMERAL, "--smpp2", EPHEMERAL, "--smpp0", EPHEMERAL],
                          tmp_path / "twistd.log")  # fmt: skip
    try:
        port, api_port = process.wait_listening("SMPP1", api=True)
        _bound_socket(port).close()
        api = SyncSMSCClient(f"http://127.0.0.1:{api_port}", timeout=10)
        deadline = time.monotonic() + 10
        while api.sessions() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.popen.send_signal(signal.SIGTERM)
        # twistd stops the reactor, then ends itself with the signal it got
        assert process.popen.wait(timeout=20) == -signal.SIGTERM
    finally:
        process.kill()
    output = process.output()
    assert "conformance: verdict warn, 2 findings (0 error, 2 warning, 0 info)" in output
    assert "conformance: no-unbind (warning): 1x, accounts smppclient1" in output
    assert "conformance: single-instance (warning): 1x, accounts smppclient1" in output
    assert "Traceback" not in output
    suite = ElementTree.parse(report).getroot()
    assert suite.get("failures") == "0"
    outputs = "".join(out.text or "" for out in suite.iter("system-out"))
    assert "no-unbind (session 1, on SMPP1)" in outputs
    markdown = (tmp_path / "conformance.md").read_text(encoding="utf-8")
    assert "| `no-unbind` | warning | 1 | smppclient1 |" in markdown
    assert "| `single-instance` | warning |" in markdown
