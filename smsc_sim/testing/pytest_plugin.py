"""
The pytest plugin (entry point ``pytest11: smsc_sim``): fixtures that give
a test an SMSC.  Every simulator they give is a
:class:`~smsc_sim.testing.protocol.SimulatorForm` (one client API).

``smsc_sim``
    A running simulator on ephemeral 127.0.0.1 ports, in a clean state
    (messages, counters, outages, scenario, sessions are reset before every
    test).  Its form is the mode (``--smsc-sim-mode`` or the ini option
    ``smsc_sim_mode``):

    ``subprocess`` (default)
        a :class:`~smsc_sim.testing.harness.SimulatorProcess`, one child process
        for the session: any ESME library (smpplib, asyncio...), blocking API calls;
    ``thread``
        a :class:`~smsc_sim.testing.harness.ThreadedSimulator`, one for the
        session, on a reactor in a thread of its own: any ESME library, blocking
        API calls, no child process;
    ``inprocess``
        a fresh :class:`~smsc_sim.testing.harness.InProcessSimulator` per test on
        the test's running reactor (needs pytest-twisted): for Twisted ESMEs; its
        API methods return Deferreds.
``smsc_sim_memory``
    A :class:`~smsc_sim.testing.memory.MemorySMSC`: no sockets, a fake clock.
``smsc_sim_factory``
    Makes more simulators in the same test, each with its own ports, API and
    options: ``smsc_sim_factory(accounts=[("other", "pw")], scenario="throttle")``
    returns a started one (``mode=`` picks the form; the default is the
    suite's mode), stopped when the test ends.
``smsc_sim_options``
    The keyword arguments every simulator is made with (``scenario``,
    ``accounts``, ``token``, ``seed``, ``config``; ``args``, more twistd
    options, for the subprocess form only: the thread and inprocess forms
    refuse them, the memory fixture leaves them out): override it in a ``conftest.py``
    to change them for a whole suite.  It starts from ``--smsc-sim-scenario``
    / ini ``smsc_sim_scenario``, ``--smsc-sim-seed`` / ``smsc_sim_seed`` and
    ini ``smsc_sim_args``.
``smsc_sim_process``, ``smsc_sim_thread``, ``smsc_sim_inprocess``
    The forms themselves (the first two shared by the session, not reset).

Older names still work, as aliases: ``smsc`` (``smsc_sim``), ``smsc_memory``
(``smsc_sim_memory``) and ``smsc_inprocess`` (``smsc_sim_inprocess``).

Nothing here imports the reactor: a suite that never asks for a fixture
pays nothing for the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from smsc_sim.testing.harness import SimulatorProcess, ThreadedSimulator
    from smsc_sim.testing.memory import MemorySMSC

MODES = ("subprocess", "thread", "inprocess")
#: the forms the factory makes
FACTORY_MODES = MODES + ("memory",)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--smsc-sim-mode``, ``--smsc-sim-scenario``, ``--smsc-sim-seed`` and their ini options."""
    group = parser.getgroup("smsc-sim", "SMPP SMSC simulator fixtures")
    group.addoption(
        "--smsc-sim-mode",
        choices=MODES,
        default=None,
        help="the smsc_sim fixture's form: subprocess (default), thread, or inprocess (needs pytest-twisted)",
    )
    group.addoption("--smsc-sim-scenario", default=None, help="scenario (shipped name or path) simulators start with")
    group.addoption("--smsc-sim-seed", default=None, help="seed of every simulator's random choices (an integer)")
    parser.addini("smsc_sim_mode", "default form of the smsc_sim fixture (subprocess, thread or inprocess)")
    parser.addini("smsc_sim_scenario", "scenario simulators start with", default="")
    parser.addini("smsc_sim_seed", "seed of every simulator's random choices (an integer)", default="")
    parser.addini("smsc_sim_args", "more twistd smsc-sim options for the subprocess form", type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    """A bad mode or seed stops the run at once, as a usage error, whether a test asks for a simulator or not."""
    _mode(config)
    _seed(config)


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("--smsc-sim-mode") or config.getini("smsc_sim_mode") or "subprocess"
    if mode not in MODES:
        raise pytest.UsageError(f"smsc_sim_mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


def _seed(config: pytest.Config) -> int | None:
    raw = config.getoption("--smsc-sim-seed") or config.getini("smsc_sim_seed")
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise pytest.UsageError(f"smsc_sim_seed must be an integer, got {raw!r}") from None


@pytest.fixture(scope="session")
def smsc_sim_options(pytestconfig: pytest.Config) -> dict[str, Any]:
    """
    How every simulator is made: ``scenario``, ``accounts`` (``[(system_id,
    password)]``), ``token``, ``seed``, ``config`` (a YAML path) and ``args``
    (more command-line options, subprocess form only).
    """
    options: dict[str, Any] = {}
    scenario = pytestconfig.getoption("--smsc-sim-scenario") or pytestconfig.getini("smsc_sim_scenario")
    if scenario:
        options["scenario"] = scenario
    seed = _seed(pytestconfig)
    if seed is not None:
        options["seed"] = seed
    args = pytestconfig.getini("smsc_sim_args")
    if args:
        options["args"] = list(args)
    return options


def make_simulator(mode: str, options: dict[str, Any]) -> Any:
    """
    A started simulator of form ``mode`` made with ``options``; stop it with its ``stop()``.

    :raises FormOptionError: for an option the form cannot honour (``args`` outside the subprocess form).
    :raises pytest.UsageError: for an unknown mode.
    """
    from smsc_sim.testing.protocol import check_options

    options = dict(options)
    if mode == "subprocess":
        from smsc_sim.testing.harness import SimulatorProcess

        check_options(mode, options, ("args", "env", "startup_timeout"))
        args = options.pop("args", [])
        return SimulatorProcess(*args, **options).start()
    if mode == "thread":
        from smsc_sim.testing.harness import ThreadedSimulator

        check_options(mode, options, ("startup_timeout",))
        return ThreadedSimulator(**options).start()
    if mode == "memory":
        from smsc_sim.testing.memory import MemorySMSC

        check_options(mode, options)
        return MemorySMSC(**options)
    if mode == "inprocess":
        from smsc_sim.testing.harness import InProcessSimulator

        check_options(mode, options)
        simulator = InProcessSimulator(**options)
        return _blockon(simulator.start())
    raise pytest.UsageError(f"mode must be one of {', '.join(FACTORY_MODES)}, got {mode!r}")


def _blockon(deferred: Any) -> Any:
    try:
        import pytest_twisted
    except ImportError:
        raise pytest.UsageError("the inprocess form needs pytest-twisted (a running reactor in the test process)")
    return pytest_twisted.blockon(deferred)


def _stop(simulator: Any) -> None:
    result = simulator.stop()
    if result is not None and hasattr(result, "addCallback"):
        _blockon(result)


@pytest.fixture(scope="session")
def smsc_sim_process(smsc_sim_options: dict[str, Any]) -> Iterator[SimulatorProcess]:
    """One simulator child process for the whole test session (use ``smsc_sim`` for the reset between tests)."""
    process = make_simulator("subprocess", smsc_sim_options)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def smsc_sim_thread(smsc_sim_options: dict[str, Any]) -> Iterator[ThreadedSimulator]:
    """One simulator on a reactor thread of its own for the whole session (``smsc_sim`` resets it between tests)."""
    simulator = make_simulator("thread", smsc_sim_options)
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def smsc_sim(request: pytest.FixtureRequest) -> Any:
    """A running simulator on ephemeral loopback ports, in a clean state (see the module's docstring)."""
    mode = _mode(request.config)
    if mode == "inprocess":
        return request.getfixturevalue("smsc_sim_inprocess")
    shared: Any = request.getfixturevalue("smsc_sim_process" if mode == "subprocess" else "smsc_sim_thread")
    if not shared.running:
        said = shared.log_text()[-3000:] if hasattr(shared, "log_text") else ""
        raise RuntimeError(f"the smsc-sim {mode} has stopped; its log ends:\n{said}")
    shared.reset(outages=True, scenario=True, sessions=True)
    return shared


@pytest.fixture
def smsc(smsc_sim: Any) -> Any:
    """Alias of ``smsc_sim`` (the older name)."""
    return smsc_sim


@pytest.fixture
def smsc_sim_memory(smsc_sim_options: dict[str, Any]) -> Iterator[MemorySMSC]:
    """A simulator in memory (fake clock, no sockets) for Twisted ESME code (the suite's ``args`` are left out)."""
    # the suite's twistd options belong to its socket forms; this fixture is asked for by name beside them
    memory = make_simulator("memory", {k: v for k, v in smsc_sim_options.items() if k != "args"})
    try:
        yield memory
    finally:
        memory.stop()


@pytest.fixture
def smsc_memory(smsc_sim_memory: MemorySMSC) -> MemorySMSC:
    """Alias of ``smsc_sim_memory`` (the older name)."""
    return smsc_sim_memory


@pytest.fixture
def smsc_sim_factory(request: pytest.FixtureRequest, smsc_sim_options: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """
    ``make(mode=None, **options)``: another started simulator, with its own
    ports and API, made from the suite's options updated with ``options``
    (``accounts=``, ``scenario=``, ``seed=``, ``config=``, ``token=``); each is
    stopped when the test ends.  ``mode`` is subprocess, thread, inprocess or
    memory (default: the suite's mode).
    """
    made: list[Any] = []

    def make(mode: str | None = None, **options: Any) -> Any:
        form = mode or _mode(request.config)
        merged = {**smsc_sim_options, **options}
        if form != "subprocess" and "args" in merged and "args" not in options:
            # the suite's twistd options are for its subprocess form; another form is asked for here
            merged.pop("args")
        simulator = make_simulator(form, merged)
        made.append(simulator)
        return simulator

    try:
        yield make
    finally:
        for simulator in reversed(made):
            _stop(simulator)


try:
    import pytest_twisted
except ImportError:  # pragma: no cover - pytest-twisted is optional
    pytest_twisted = None

if pytest_twisted is not None:

    @pytest_twisted.async_yield_fixture
    async def smsc_sim_inprocess(smsc_sim_options: dict[str, Any]) -> Any:
        """A fresh simulator per test on the running reactor (pytest-twisted); its API methods return Deferreds."""
        from smsc_sim.testing.harness import InProcessSimulator
        from smsc_sim.testing.protocol import check_options

        check_options("inprocess", smsc_sim_options)
        simulator = InProcessSimulator(**smsc_sim_options)
        await simulator.start()
        try:
            yield simulator
        finally:
            await simulator.stop()

else:

    @pytest.fixture
    def smsc_sim_inprocess() -> Any:
        """Needs pytest-twisted (a running reactor in the test process)."""
        raise pytest.UsageError(
            "smsc_sim_inprocess and --smsc-sim-mode=inprocess need pytest-twisted; "
            "for a blocking ESME use --smsc-sim-mode=thread or subprocess"
        )


@pytest.fixture
def smsc_inprocess(smsc_sim_inprocess: Any) -> Any:
    """Alias of ``smsc_sim_inprocess`` (the older name)."""
    return smsc_sim_inprocess
