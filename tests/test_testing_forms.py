"""
The forms of the simulator a test can use (child process, reactor thread,
the test's own reactor, memory) offer one client API: each satisfies
:class:`~smsc_sim.testing.protocol.SimulatorForm`, each honours the same
options (accounts, scenario, seed, token, config) or refuses them naming
them, and every member, called in each form, answers the same.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generator

import pytest
import pytest_twisted
import smpplib.client
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.python.failure import Failure

from smsc_sim.config import default_config
from smsc_sim.testing.client import APIRequestError, WaitTimeout
from smsc_sim.testing.harness import InProcessSimulator, NotOnARunningReactor, SimulatorProcess, ThreadedSimulator
from smsc_sim.testing.memory import MemorySMSC
from smsc_sim.testing.protocol import FormOptionError, SimulatorForm
from smsc_sim.testing.pytest_plugin import make_simulator

#: the options every form is made with here: none is the default, so each shows it was honoured
OPTIONS: dict[str, Any] = {"accounts": [("alice", "secret1")], "seed": 4242, "scenario": "error-codes", "token": "t0k"}

FAST = "name: fast\nreceipt:\n  stat: DELIVRD\n  delay: 0s\n"

#: every member of the Protocol, so a member added there and not here fails a test
MEMBERS = sorted(
    name for name in dir(SimulatorForm) if not name.startswith("_") and name not in {"register"}
) + ["accounts"]


def steps(smsc: Any) -> Generator[Any, Any, set[str]]:
    """
    Call every member of the client API and check what a user sees; yields
    each answer that may be a Deferred.  Returns the names of the members called.
    """
    called: set[str] = set()

    def use(name: str) -> Any:
        called.add(name)
        return getattr(smsc, name)

    assert isinstance(smsc, SimulatorForm)
    assert use("accounts") == [("alice", "secret1")]
    assert (use("system_id"), use("password")) == ("alice", "secret1")
    assert use("host") == "127.0.0.1"
    endpoints = use("endpoints")
    assert set(endpoints) == {"SMPP0", "SMPP1", "SMPP2"}
    assert use("address")("SMPP1") == endpoints["SMPP1"][0]
    assert use("port")("SMPP2") == endpoints["SMPP2"][0][1]
    info = yield use("info")()
    assert (info["seed"], info["accounts"]) == (4242, ["alice"])
    scenario = yield use("scenario")()
    assert scenario["name"] == "error-codes"
    instances = yield use("instances")()
    assert {i["name"] for i in instances} == {"SMPP0", "SMPP1", "SMPP2"}
    assert (yield use("instance")("SMPP1"))["state"] == "up"
    yield use("start_outage")("SMPP2", "reject-binds")
    assert (yield smsc.instance("SMPP2"))["state"] != "up"
    yield use("end_outage")("SMPP2")
    assert (yield smsc.instance("SMPP2"))["state"] == "up"
    assert (yield use("sessions")(account="alice")) == []
    try:
        yield use("wait_for_bind")(account="alice", timeout=0.2)
        raise AssertionError("a wait for a bind nobody makes ended without WaitTimeout")
    except WaitTimeout:
        pass
    try:
        yield use("end_session")(999999)
        raise AssertionError("ending a session that does not exist did not fail")
    except APIRequestError as e:
        assert e.status == 404
    ids = yield use("inject_mo")("447700900001", "447700900002", "hello")
    assert len(ids) == 1
    found = yield use("wait_for_messages")(count=1, timeout=5, destination="447700900002")
    assert [m["message_id"] for m in found] == ids
    listed = yield use("messages")(destination="447700900002")
    assert [m["message_id"] for m in listed] == ids
    assert (yield use("message")(ids[0]))["text"] == "hello"
    assert (yield use("submits")()) == []
    for name, call, status in (
        ("force_receipt", lambda: use("force_receipt")("no-such-id", "DELIVRD"), 404),
        ("wait_for_receipt", lambda: use("wait_for_receipt")("no-such-id", timeout=0.2), 408),
    ):
        try:
            yield call()
            raise AssertionError(f"{name} of an unknown message did not fail")
        except APIRequestError as e:
            assert e.status == status, (name, e)
    assert (yield use("load_scenario")(yaml=FAST))["name"] == "fast"
    yield use("reset")()
    assert (yield smsc.scenario())["name"] == "error-codes"
    assert (yield smsc.messages()) == []
    assert isinstance((yield use("stats")()), dict)
    assert "verdict" in (yield use("conformance")())
    yield use("assert_conformant")()
    yield use("reset_conformance")()
    use("stop")  # called by the test's teardown
    return called


def run_blocking(smsc: Any, resolve: Callable[[Any], Any] = lambda value: value) -> set[str]:
    """Drive :func:`steps` for a form whose members return values (``resolve`` settles the memory form's Deferreds)."""
    script = steps(smsc)
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            asked = script.throw(error) if error is not None else script.send(answer)
        except StopIteration as done:
            result: set[str] = done.value
            return result
        answer, error = None, None
        try:
            answer = resolve(asked)
        except Exception as e:  # handed back to the script, as a blocking call raises it
            error = e


def settle_in_memory(smsc: MemorySMSC) -> Callable[[Any], Any]:
    """Settle a Deferred from the memory form by letting fake time pass (the waits here are bounded at 5 s)."""

    def resolve(value: Any) -> Any:
        if not isinstance(value, Deferred):
            return value
        box: list[Any] = []
        value.addBoth(box.append)
        smsc.advance(10)
        if isinstance(box[0], Failure):
            box[0].raiseException()
        return box[0]

    return resolve


def test_the_protocol_names_every_member_exercised() -> None:
    """The member list the forms are checked against is the Protocol's own."""
    assert {"system_id", "password", "address", "wait_for_receipt", "force_receipt", "submits", "stop"} <= set(
        MEMBERS
    )


def test_memory_form_every_member() -> None:
    """The memory form has every member (system_id, address, wait_for_receipt...) and honours every option."""
    smsc = MemorySMSC(**OPTIONS)
    try:
        assert run_blocking(smsc, settle_in_memory(smsc)) == set(MEMBERS)
    finally:
        smsc.stop()


@pytest.mark.integration
def test_thread_form_every_member() -> None:
    """The reactor-thread form has every member, answers with values, and honours every option."""
    with ThreadedSimulator(**OPTIONS) as smsc:
        assert run_blocking(smsc) == set(MEMBERS)
    assert not smsc.running


@pytest.mark.integration
def test_subprocess_form_every_member() -> None:
    """The child-process form has every member, answers with values, and honours every option."""
    with SimulatorProcess(**OPTIONS) as smsc:
        assert run_blocking(smsc) == set(MEMBERS)


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_inprocess_form_every_member() -> None:
    """The form on the test's reactor has every member (answers as Deferreds) and honours every option."""
    smsc = await InProcessSimulator(**OPTIONS).start()
    try:
        called = await inlineCallbacks(steps)(smsc)
        assert called == set(MEMBERS)
    finally:
        await smsc.stop()


def test_options_a_form_cannot_honour_are_refused_by_name() -> None:
    """twistd arguments outside the subprocess form, a Config for a child, or bad accounts fail at once, named."""
    with pytest.raises(FormOptionError, match="'args'.*only the subprocess form"):
        make_simulator("memory", {"args": ["--trace"]})
    with pytest.raises(FormOptionError, match="'args'"):
        make_simulator("thread", {"args": ["--trace"]})
    with pytest.raises(FormOptionError, match="path of a YAML file"):
        SimulatorProcess(config=default_config())  # type: ignore[arg-type]
    for form in (MemorySMSC, ThreadedSimulator, InProcessSimulator, SimulatorProcess):
        with pytest.raises(FormOptionError, match="system_id, password"):
            form(accounts=[("only-a-name",)])  # type: ignore[list-item]


def test_memory_form_takes_a_config_path(tmp_path: Any) -> None:
    """config= may be a YAML path in the memory form too, read as twistd reads it."""
    path = tmp_path / "smsc.yaml"
    path.write_text("accounts:\n  - system_id: carol\n    password: pw\n")
    smsc = MemorySMSC(config=str(path))
    try:
        assert smsc.system_id == "carol"
        assert smsc.info()["accounts"] == ["carol"]
    finally:
        smsc.stop()


def test_inprocess_form_refuses_to_start_without_a_running_reactor() -> None:
    """Started in a plain test (no reactor runs), the in-process form says what to use instead of hanging."""
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    assert not reactor.running
    with pytest.raises(NotOnARunningReactor, match="ThreadedSimulator.*SimulatorProcess"):
        InProcessSimulator(reactor=reactor).start()


@pytest.mark.integration
def test_blocking_smpplib_works_against_the_thread_form() -> None:
    """smpplib, blocking in a plain test, binds, submits and gets its receipt from the thread form, without warnings."""
    import warnings

    with ThreadedSimulator(accounts=[("alice", "secret1")]) as smsc:
        smsc.load_scenario(yaml=FAST)
        ids: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            client = smpplib.client.Client(*smsc.address("SMPP1"), timeout=5, allow_unknown_opt_params=True)
            client.set_message_sent_handler(lambda pdu: ids.append(pdu.message_id.decode()))
            client.set_message_received_handler(lambda pdu: None)
            client.connect()
            try:
                client.bind_transceiver(system_id=smsc.system_id, password=smsc.password)
                client.send_message(
                    source_addr="447700900001", destination_addr="447700900002", short_message=b"hi",
                    registered_delivery=1,
                )
                client.read_once()  # submit_sm_resp
                client.read_once()  # the receipt's deliver_sm, acknowledged by smpplib
                assert smsc.wait_for_receipt(ids[0], timeout=5)["receipt"]["stat"] == "DELIVRD"
                client.unbind()
            finally:
                client.disconnect()
        # the engine itself, reached in its own thread
        assert smsc.call(lambda: smsc.simulator.config.accounts[0].system_id) == "alice"


def test_protocol_members_are_documented() -> None:
    """Every member of the Protocol has a docstring, so the API's one reference says what it does."""
    for name in MEMBERS:
        member = inspect.getattr_static(SimulatorForm, name, None)
        if name == "accounts":
            continue
        doc = (member.fget if isinstance(member, property) else member).__doc__
        assert doc and doc.strip(), name
