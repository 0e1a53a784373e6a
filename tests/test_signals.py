"""
SIGHUP reloads the scenario without dropping a session: the handler, the
reload in memory (kept sessions, the next receipt, a broken file, what the
API loaded), and a real process signalled while an smpplib session is bound.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import smpplib.client
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.signals import install_reload_on_sighup, reload_scenario
from smsc_sim.smpp.receipt import parse_receipt
from smsc_sim.testing.harness import SimulatorProcess
from smsc_sim.testing.memory import MemorySMSC
from tests import wire
from tests.test_api import BASE, RecordingESME

REPO = Path(__file__).resolve().parent.parent


def receipt_scenario(stat: str, name: str) -> str:
    """A scenario whose every message gets a ``stat`` receipt 1 s after its submit_sm_resp."""
    err = {"DELIVRD": 0, "UNDELIV": 5}[stat]
    return f"name: {name}\ndescription: every receipt {stat}\nreceipt:\n  stat: {stat}\n  err: {err}\n  delay: 1s\n"


def scenario_name(simulator: Any) -> str:
    """The active scenario's name."""
    return str(simulator.scenario.describe()["name"])


class FakeReactor:
    """Records what is handed to ``callFromThread`` instead of running it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append((f, args))


class SighupHandlerTests(SynchronousTestCase):
    def setUp(self) -> None:
        previous = signal.getsignal(signal.SIGHUP)
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        self.path = Path(self.mktemp())
        self.path.write_text(receipt_scenario("DELIVRD", "before"))
        self.smsc = MemorySMSC(scenario=str(self.path))
        self.addCleanup(self.smsc.stop)
        self.simulator = self.smsc.simulator

    def test_signal_hands_the_reload_to_the_reactor(self) -> None:
        """SIGHUP only queues the reload on the reactor; the reactor's call then switches the scenario."""
        reactor = FakeReactor()
        install_reload_on_sighup(self.simulator, reactor)
        handler = signal.getsignal(signal.SIGHUP)
        assert callable(handler)
        self.path.write_text(receipt_scenario("UNDELIV", "after"))
        handler(signal.SIGHUP, None)
        self.assertEqual(reactor.calls, [(reload_scenario, (self.simulator,))])
        self.assertEqual(scenario_name(self.simulator), "before")  # nothing changed in the handler
        f, args = reactor.calls[0]
        f(*args)
        self.assertEqual(scenario_name(self.simulator), "after")


class ReloadTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.path.write_text(receipt_scenario("DELIVRD", "before"))
        self.smsc = MemorySMSC(scenario=str(self.path))
        self.addCleanup(self.smsc.stop)
        self.simulator = self.smsc.simulator
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)  # type: ignore[arg-type]
        self.esme = RecordingESME()
        self.smsc.connect(self.esme, "SMPP1")
        self.write(wire.bind())
        self.smsc.flush()
        self.sequence = 2

    def write(self, data: bytes) -> None:
        """Send bytes from the ESME."""
        assert self.esme.transport is not None
        self.esme.transport.write(data)

    def receipt_stat(self) -> str:
        """Submit a message and return the stat of its receipt, 1 s later."""
        self.write(wire.submit_sm(self.sequence))
        self.sequence += 1
        self.smsc.flush()
        self.esme.received.clear()
        self.smsc.advance(1.5)
        [body] = [body for header, body in self.esme.received if header.command_id == 0x05]
        text = wire.deliver_sm_fields(body)["short_message"]
        assert isinstance(text, bytes)
        return str(parse_receipt(text.decode("latin-1"))["stat"])

    def lines(self, level: LogLevel) -> list[dict[str, Any]]:
        return [e for e in self.logged if e.get("log_level") == level and "SIGHUP" in str(e.get("log_format"))]

    def test_session_stays_bound_and_next_receipt_follows_the_file(self) -> None:
        """After a reload the ESME is still bound on the same session and its next receipt has the new stat."""
        self.assertEqual(self.receipt_stat(), "DELIVRD")
        [before] = self.smsc.sessions()
        self.path.write_text(receipt_scenario("UNDELIV", "after"))
        self.assertTrue(reload_scenario(self.simulator))
        [after] = self.smsc.sessions()
        self.assertEqual((after["session_id"], after["state"]), (before["session_id"], "BOUND_TRX"))
        self.assertFalse(self.esme.closed)
        self.assertEqual(self.receipt_stat(), "UNDELIV")

    def test_reload_is_logged(self) -> None:
        """Each reload logs one line naming the scenario, its file and the sessions kept."""
        reload_scenario(self.simulator)
        [line] = self.lines(LogLevel.info)
        self.assertEqual((line["name"], line["source"], line["sessions"]), ("before", str(self.path), 1))

    def test_broken_file_keeps_the_old_scenario(self) -> None:
        """A file broken since the start is logged with file, line and key, and receipts stay as they were."""
        old = self.simulator.scenario
        self.path.write_text("name: broken\nreceipt:\n  stat: DELIVRD\n  dealy: 1s\n")
        self.assertFalse(reload_scenario(self.simulator))
        self.assertIs(self.simulator.scenario, old)
        [line] = self.lines(LogLevel.error)
        self.assertIn(f"{self.path}:4: receipt.dealy: unknown key 'dealy'", line["problem"])
        self.assertEqual(self.receipt_stat(), "DELIVRD")

    def test_reload_reads_what_the_api_loaded_last(self) -> None:
        """After PUT /api/v1/scenario with a path, SIGHUP reads that file again, not the configured one."""
        other = self.path.parent / "other.yaml"  # the API loads from the configured scenario's directory
        other.write_text(receipt_scenario("DELIVRD", "other"))
        self.put({"name": str(other)})
        other.write_text(receipt_scenario("UNDELIV", "other-edited"))
        self.assertTrue(reload_scenario(self.simulator))
        self.assertEqual(scenario_name(self.simulator), "other-edited")
        self.assertEqual(self.receipt_stat(), "UNDELIV")

    def test_yaml_text_from_the_api_stays(self) -> None:
        """A scenario sent as YAML text has no file: SIGHUP warns and keeps it."""
        self.put({"yaml": receipt_scenario("UNDELIV", "text")})
        current = self.simulator.scenario
        self.assertFalse(reload_scenario(self.simulator))
        self.assertIs(self.simulator.scenario, current)
        self.assertEqual(len(self.lines(LogLevel.warn)), 1)

    def put(self, body: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json"}
        data = json.dumps(body).encode()
        answer = self.smsc.http.request("PUT", BASE + "/api/v1/scenario", data=data, headers=headers)
        self.smsc.flush()
        self.assertEqual(self.successResultOf(answer).code, 200)


# ----------------------------------------------------------------------
# a real process
# ----------------------------------------------------------------------

#: ``python -m smsc_sim.testing.serve`` with the SIGHUP handler installed as tap.makeService installs it
WRAPPER = """\
import sys
import smsc_sim.service
from smsc_sim.signals import install_reload_on_sighup

build_service = smsc_sim.service.build_service

def build_with_sighup(config, reactor):
    simulator = build_service(config, reactor)
    install_reload_on_sighup(simulator, reactor)
    return simulator

smsc_sim.service.build_service = build_with_sighup
from smsc_sim.testing.serve import main
sys.exit(main())
"""


class SighupProcess(SimulatorProcess):
    """A :class:`SimulatorProcess` whose child installs the SIGHUP handler."""

    wrapper = ""

    def command(self) -> list[str]:
        command = super().command()
        assert command[1:3] == ["-m", "smsc_sim.testing.serve"]
        return [command[0], self.wrapper, *command[3:]]


def read_receipt(client: smpplib.client.Client, seconds: float = 10.0) -> str:
    """Read PDUs until a deliver_sm receipt arrives; its stat."""
    got: list[str] = []

    def on_message(pdu: Any) -> None:
        got.append(str(parse_receipt(pdu.short_message.decode("latin-1"))["stat"]))

    client.set_message_received_handler(on_message)
    deadline = time.monotonic() + seconds
    while not got:
        assert time.monotonic() < deadline, "no receipt from the simulator"
        client.read_once(auto_send_enquire_link=False)
    return got[0]


@pytest.mark.integration
def test_sighup_reloads_while_smpplib_stays_bound(tmp_path: Path) -> None:
    """
    A simulator process signalled with SIGHUP after its scenario file
    changed from DELIVRD to UNDELIV keeps the smpplib session bound, and the
    next receipt on that session is UNDELIV.
    """
    scenario = tmp_path / "receipts.yaml"
    scenario.write_text(receipt_scenario("DELIVRD", "before"))
    wrapper = tmp_path / "serve_with_sighup.py"
    wrapper.write_text(WRAPPER)
    process = SighupProcess(scenario=str(scenario), env={"PYTHONPATH": str(REPO)}, python=sys.executable)
    process.wrapper = str(wrapper)
    with process as smsc:
        client = smpplib.client.Client(*smsc.address("SMPP1"), timeout=5, allow_unknown_opt_params=True)
        client.connect()
        try:
            client.bind_transceiver(system_id=smsc.system_id, password=smsc.password)
            [session] = smsc.sessions()

            def submit() -> None:
                client.send_message(source_addr_ton=1, source_addr="1000", dest_addr_ton=1, destination_addr="2000",
                                    short_message=b"hi", registered_delivery=1)  # fmt: skip

            submit()
            assert read_receipt(client) == "DELIVRD"
            scenario.write_text(receipt_scenario("UNDELIV", "after"))
            assert smsc.process is not None
            smsc.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while smsc.scenario()["name"] != "after":
                assert time.monotonic() < deadline, "the scenario was not reloaded:\n" + smsc.log_text()[-2000:]
                time.sleep(0.05)
            submit()
            assert read_receipt(client) == "UNDELIV"
            [still] = smsc.sessions()
            assert (still["session_id"], still["state"]) == (session["session_id"], "BOUND_TRX")
            assert "SIGHUP: scenario after reloaded from" in smsc.log_text()
            client.unbind()
        finally:
            client.disconnect()
