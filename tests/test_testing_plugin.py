"""
The pytest plugin as a user's suite meets it (pytester, each suite in its
own pytest process): the ``smsc`` fixture with smpplib, the reset between
tests, options from conftest.py, the in-process mode under pytest-twisted
and the in-memory fixture.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAST = "name: fast\nreceipt:\n  stat: DELIVRD\n  delay: 0s\n"

CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def smsc_sim_options(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "fast.yaml"
    path.write_text(%r)
    return {"scenario": str(path)}
''' % FAST

SMPPLIB_SUITE = '''
import smpplib.client


def bound(smsc):
    client = smpplib.client.Client(*smsc.address("SMPP1"), allow_unknown_opt_params=True)
    ids = []
    client.set_message_sent_handler(lambda pdu: ids.append(pdu.message_id.decode()))
    client.connect()
    client.bind_transceiver(system_id=smsc.system_id, password=smsc.password)
    return client, ids


def test_bind_submit_and_receipt(smsc):
    client, ids = bound(smsc)
    client.send_message(source_addr="447700900001", destination_addr="447700900002",
                        short_message=b"hello", registered_delivery=1)
    client.read_once()
    client.read_once()
    result = smsc.wait_for_receipt(ids[0], timeout=5)
    assert result["receipt"]["stat"] == "DELIVRD"
    assert smsc.scenario()["name"] == "fast"
    client.unbind()
    client.disconnect()


def test_state_is_reset_between_tests(smsc):
    assert smsc.messages() == []
    smsc.start_outage("SMPP2", "blackhole")


def test_outage_was_ended_by_the_reset(smsc):
    assert smsc.instance("SMPP2")["state"] == "up"
    client, _ = bound(smsc)
    client.disconnect()


def test_left_bound_session_is_dropped(smsc):
    assert smsc.sessions() == []
'''

INPROCESS_SUITE = '''
import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_inprocess(smsc):
    assert smsc.simulator is not None
    instances = await smsc.instances()
    assert {i["name"] for i in instances} == {"SMPP0", "SMPP1", "SMPP2"}
    assert (await smsc.scenario())["name"] == "fast"


def test_memory(smsc_memory):
    assert smsc_memory.sessions() == []
    assert smsc_memory.simulator.scenario.describe()["name"] == "fast"
'''


CONFORMANCE_SUITE = '''
import socket
import time

import pytest


def bind(smsc, instance):
    connection = socket.create_connection(smsc.address(instance), timeout=10)
    body = b"smppclient1\\0password\\0\\0\\x34\\0\\0\\0"
    connection.sendall((16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000009 00000000 00000001") + body)
    assert connection.recv(4096)[4:8] == bytes.fromhex("80000009")
    return connection


def closed(smsc):
    deadline = time.monotonic() + 5
    while smsc.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_bad_esme_fails(smsc):
    bind(smsc, "SMPP1").close()
    closed(smsc)
    with pytest.raises(AssertionError, match="no-unbind"):
        smsc.assert_conformant()
    assert smsc.conformance()["counts"]["no-unbind"] == 1


def test_reset_between_tests_and_good_esme_passes(smsc):
    for connection in (bind(smsc, "SMPP1"), bind(smsc, "SMPP2")):
        connection.sendall(bytes.fromhex("00000010 00000006 00000000 00000002"))
        assert connection.recv(16)[4:8] == bytes.fromhex("80000006")
        connection.close()
    closed(smsc)
    smsc.assert_conformant()
'''

INPROCESS_CONFORMANCE_SUITE = '''
import pytest
import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_inprocess_bad_esme_fails(smsc):
    from twisted.internet import reactor, task
    from twisted.internet.protocol import ClientCreator, Protocol

    body = b"smppclient1\\0password\\0\\0\\x34\\0\\0\\0"
    bind = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000009 00000000 00000001") + body
    protocol = await ClientCreator(reactor, Protocol).connectTCP(*smsc.address("SMPP1"))
    protocol.transport.write(bind)
    await smsc.wait_for_bind(count=1, timeout=5)
    protocol.transport.loseConnection()
    for _ in range(100):
        if not await smsc.sessions():
            break
        await task.deferLater(reactor, 0.05, lambda: None)
    with pytest.raises(AssertionError, match="no-unbind"):
        await smsc.assert_conformant()
    await smsc.assert_conformant(allow=["no-unbind", "single-instance"])


def test_memory_good(smsc_memory):
    smsc_memory.assert_conformant()
'''


def _plugin_args() -> list[str]:
    """``-p`` for the plugin unless the installed package already registers it (pytest11)."""
    installed = any(ep.name == "smsc_sim" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "smsc_sim.testing.pytest_plugin"]


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A directory for a user's suite that can import smsc_sim from this checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    pytester.makeconftest(CONFTEST)
    return pytester


def test_smpplib_suite_with_the_smsc_fixture(suite: pytest.Pytester) -> None:
    """A smpplib suite using the smsc fixture passes: bind, submit, receipt, and a clean state per test."""
    suite.makepyfile(test_user=SMPPLIB_SUITE)
    result = suite.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_inprocess_mode_and_memory_fixture(suite: pytest.Pytester) -> None:
    """With --smsc-sim-mode=inprocess the smsc fixture is an in-process simulator; smsc_memory works too."""
    suite.makepyfile(test_user=INPROCESS_SUITE)
    result = suite.runpytest_subprocess(*_plugin_args(), "--smsc-sim-mode=inprocess", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_bad_mode_is_a_usage_error(suite: pytest.Pytester) -> None:
    """An unknown mode in the ini file is reported as a usage error."""
    suite.makeini("[pytest]\nsmsc_sim_mode = sideways\n")
    suite.makepyfile(test_user="def test_x(smsc):\n    pass\n")
    result = suite.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")
    assert "smsc_sim_mode must be one of" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0


def test_conformance_with_the_smsc_fixture(suite: pytest.Pytester) -> None:
    """
    smsc.assert_conformant fails a misbehaving raw ESME naming no-unbind, and the next test starts clean and passes.
    """
    suite.makepyfile(test_user=CONFORMANCE_SUITE)
    result = suite.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_conformance_inprocess(suite: pytest.Pytester) -> None:
    """
    In the in-process mode assert_conformant's Deferred fails for a misbehaving ESME; smsc_memory passes a clean
    run.
    """
    suite.makepyfile(test_user=INPROCESS_CONFORMANCE_SUITE)
    result = suite.runpytest_subprocess(*_plugin_args(), "--smsc-sim-mode=inprocess", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


FACTORY_CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def smsc_sim_options(smsc_sim_options):
    # the plugin's options (--smsc-sim-seed, ini smsc_sim_scenario...), with the suite's accounts
    return {**smsc_sim_options, "accounts": [("alice", "secret1")]}
'''

FACTORY_SUITE = '''
import smpplib.client
import smpplib.exceptions


def bind(smsc, system_id, password):
    client = smpplib.client.Client(*smsc.address("SMPP1"), timeout=5, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id=system_id, password=password)
        client.unbind()
        return True
    except smpplib.exceptions.PDUError:
        return False
    finally:
        client.disconnect()


def test_options_reach_the_fixture(smsc_sim):
    assert smsc_sim.system_id == "alice"
    assert smsc_sim.info()["seed"] == 77
    assert smsc_sim.scenario()["name"] == "error-codes"
    assert bind(smsc_sim, "alice", "secret1")


def test_factory_makes_another_simulator(smsc_sim, smsc_sim_factory):
    other = smsc_sim_factory(accounts=[("bob", "pw2")], scenario="default", seed=5)
    assert other.address("SMPP1") != smsc_sim.address("SMPP1")
    assert other.api_url != smsc_sim.api_url
    assert (other.system_id, other.info()["seed"], other.scenario()["name"]) == ("bob", 5, "default")
    assert bind(other, "bob", "pw2") and not bind(other, "alice", "secret1")
    assert smsc_sim.info()["accounts"] == ["alice"]


def test_factory_memory_form_honours_accounts(smsc_sim_factory):
    memory = smsc_sim_factory(mode="memory", accounts=[("carol", "pw3")])
    assert memory.info()["accounts"] == ["carol"]


def test_old_names_are_aliases(smsc, smsc_sim, smsc_memory, smsc_sim_memory):
    assert smsc is smsc_sim
    assert smsc_memory is smsc_sim_memory
    assert smsc_memory.system_id == "alice"
'''


@pytest.mark.parametrize("mode", ["subprocess", "thread"])
def test_factory_options_and_aliases(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """
    --smsc-sim-seed, ini smsc_sim_scenario and conftest accounts reach smsc_sim in either blocking mode;
    smsc_sim_factory makes a second simulator with its own ports, API and accounts; old names are aliases.
    """
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    pytester.makeconftest(FACTORY_CONFTEST)
    pytester.makeini("[pytest]\nsmsc_sim_scenario = error-codes\nsmsc_sim_seed = 1\n")
    pytester.makepyfile(test_user=FACTORY_SUITE)
    result = pytester.runpytest_subprocess(
        *_plugin_args(), "-p", "no:cacheprovider", f"--smsc-sim-mode={mode}", "--smsc-sim-seed=77"
    )
    result.assert_outcomes(passed=4)


def test_bad_seed_is_a_usage_error(suite: pytest.Pytester) -> None:
    """A seed that is not an integer is reported as a usage error naming smsc_sim_seed."""
    suite.makepyfile(test_user="def test_x(smsc_sim):\n    pass\n")
    result = suite.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "--smsc-sim-seed=abc")
    assert "smsc_sim_seed must be an integer" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0
