"""
The pytest plugin (entry point ``pytest11: smsc_sim``): fixtures that give
a test an SMSC.

``smsc``
    A running simulator on ephemeral 127.0.0.1 ports.  By default a child
    process, started once per test session and reset before every test
    (messages, counters, outages, scenario, sessions), so it serves
    synchronous and asyncio ESMEs (smpplib...) with no reactor in the test
    process: a :class:`~smsc_sim.testing.harness.SimulatorProcess`.  With
    ``--smsc-sim-mode=inprocess`` (or the ini option ``smsc_sim_mode``) and
    pytest-twisted, a fresh :class:`~smsc_sim.testing.harness.InProcessSimulator`
    per test on the running reactor (its API methods return Deferreds).
``smsc_memory``
    A :class:`~smsc_sim.testing.memory.MemorySMSC`: no sockets, a fake clock.
``smsc_sim_options``
    The keyword arguments the simulator is made with (``scenario``,
    ``accounts``, ``token``, ``seed``, ``config``, ``args``); override it in a
    ``conftest.py`` to change them for a whole suite.

Nothing here imports the reactor: a suite that never asks for a fixture
pays nothing for the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from smsc_sim.testing.harness import SimulatorProcess
    from smsc_sim.testing.memory import MemorySMSC

MODES = ("subprocess", "inprocess")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--smsc-sim-mode`` and the ini options."""
    group = parser.getgroup("smsc-sim", "SMPP SMSC simulator fixtures")
    group.addoption(
        "--smsc-sim-mode",
        choices=MODES,
        default=None,
        help="how the smsc fixture runs the simulator: subprocess (default) or inprocess (needs pytest-twisted)",
    )
    parser.addini("smsc_sim_mode", "default mode of the smsc fixture (subprocess or inprocess)", default="subprocess")
    parser.addini("smsc_sim_scenario", "scenario the smsc fixture starts with", default="")
    parser.addini("smsc_sim_args", "more twistd smsc-sim options for the subprocess", type="args", default=[])


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("--smsc-sim-mode") or config.getini("smsc_sim_mode") or "subprocess"
    if mode not in MODES:
        raise pytest.UsageError(f"smsc_sim_mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


@pytest.fixture(scope="session")
def smsc_sim_options(pytestconfig: pytest.Config) -> dict[str, Any]:
    """
    How the simulator is made: ``scenario``, ``accounts`` (``[(system_id,
    password)]``), ``token``, ``seed``, ``config`` (a YAML path, subprocess
    only) and ``args`` (more command-line options, subprocess only).
    """
    options: dict[str, Any] = {}
    scenario = pytestconfig.getini("smsc_sim_scenario")
    if scenario:
        options["scenario"] = scenario
    args = pytestconfig.getini("smsc_sim_args")
    if args:
        options["args"] = list(args)
    return options


@pytest.fixture(scope="session")
def smsc_sim_process(smsc_sim_options: dict[str, Any]) -> Iterator[SimulatorProcess]:
    """One simulator child process for the whole test session (use ``smsc`` for the reset between tests)."""
    from smsc_sim.testing.harness import SimulatorProcess

    options = dict(smsc_sim_options)
    args = options.pop("args", [])
    process = SimulatorProcess(*args, **options)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def smsc(request: pytest.FixtureRequest) -> Any:
    """A running simulator on ephemeral loopback ports, in a clean state (see the module's docstring)."""
    if _mode(request.config) == "inprocess":
        return request.getfixturevalue("smsc_inprocess")
    process: SimulatorProcess = request.getfixturevalue("smsc_sim_process")
    if not process.running:
        raise RuntimeError(f"the smsc-sim process has exited; its log ends:\n{process.log_text()[-3000:]}")
    process.reset(outages=True, scenario=True, sessions=True)
    return process


@pytest.fixture
def smsc_memory(smsc_sim_options: dict[str, Any]) -> Iterator[MemorySMSC]:
    """A simulator in memory (fake clock, no sockets) for Twisted ESME code."""
    from smsc_sim.testing.memory import MemorySMSC

    options = {key: smsc_sim_options[key] for key in ("scenario", "token", "seed") if key in smsc_sim_options}
    memory = MemorySMSC(**options)
    try:
        yield memory
    finally:
        memory.stop()


try:
    import pytest_twisted
except ImportError:  # pragma: no cover - pytest-twisted is optional
    pytest_twisted = None

if pytest_twisted is not None:

    @pytest_twisted.async_yield_fixture
    async def smsc_inprocess(smsc_sim_options: dict[str, Any]) -> Any:
        """A fresh simulator per test on the running reactor (pytest-twisted); its API methods return Deferreds."""
        from smsc_sim.testing.harness import InProcessSimulator

        options = {key: smsc_sim_options[key] for key in ("scenario", "token", "seed") if key in smsc_sim_options}
        simulator = InProcessSimulator(**options)
        await simulator.start()
        try:
            yield simulator
        finally:
            await simulator.stop()

else:

    @pytest.fixture
    def smsc_inprocess() -> Any:
        """Needs pytest-twisted (a running reactor in the test process)."""
        raise pytest.UsageError("smsc_inprocess and --smsc-sim-mode=inprocess need pytest-twisted")
