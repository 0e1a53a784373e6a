"""
Start a whole simulator for a test, on ephemeral ports of 127.0.0.1.

:class:`SimulatorProcess` runs it as a child process, for ESMEs written
with any library (smpplib, aiosmpplib, Java over JPype...): the test
process needs no reactor.  It is a :class:`~smsc_sim.testing.client.SyncSMSCClient`
as well, so every API call is a method of it::

    with SimulatorProcess() as smsc:
        client = smpplib.client.Client(*smsc.address("SMPP1"))
        ...
        smsc.wait_for_messages(count=1, destination="447700900001")

:class:`ThreadedSimulator` runs it in this process on a reactor of its own,
in a thread of its own: blocking clients work as with a child process.

:class:`InProcessSimulator` runs it on the running reactor of a Twisted
test process (pytest-twisted, trial); it is a
:class:`~smsc_sim.testing.client.SMSCClient`, so its API methods return
Deferreds, and :attr:`InProcessSimulator.simulator` gives the engine itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, gatherResults

from smsc_sim.config import AccountSettings, Config, default_config
from smsc_sim.testing.client import SMSCClient, SyncSMSCClient
from smsc_sim.testing.protocol import FormOptionError

LOOPBACK = "127.0.0.1"
EPHEMERAL = f"tcp:0:interface={LOOPBACK}"


class SimulatorStartError(RuntimeError):
    """The simulator did not come up; the message carries the end of its log."""


class _Where:
    """Addresses and credentials of a started simulator."""

    accounts: list[tuple[str, str]]

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listens: ``{"SMPP1": [("127.0.0.1", 40123)]}``."""
        raise NotImplementedError

    def address(self, instance: str = "SMPP1") -> tuple[str, int]:
        """``(host, port)`` of an instance's first listener."""
        try:
            return self.endpoints[instance][0]
        except (KeyError, IndexError):
            raise KeyError(f"instance {instance!r} does not listen; instances: {', '.join(self.endpoints)}") from None

    def port(self, instance: str = "SMPP1") -> int:
        """The port of an instance's first listener."""
        return self.address(instance)[1]

    @property
    def host(self) -> str:
        """The host every listener is on."""
        return LOOPBACK

    @property
    def system_id(self) -> str:
        """The first account's system_id."""
        return self.accounts[0][0]

    @property
    def password(self) -> str:
        """The first account's password."""
        return self.accounts[0][1]


def _instance_names(config_path: str | None, env: dict[str, str]) -> list[str]:
    """The instances a child will have, to give each an ephemeral port."""
    from smsc_sim.config_loader import load_config

    return [instance.name for instance in load_config(config_path, {}, env).instances]


class SimulatorProcess(_Where, SyncSMSCClient):
    """
    A simulator in a child process; a context manager.

    :param args: more ``twistd smsc-sim`` options (``--trace``, ``--store``...).
    :param config: a YAML configuration file.
    :param scenario: a scenario name or path.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    :param token: a bearer token for the API.
    :param seed: the seed of every random choice.
    :param env: environment variables for the child (on top of this process's).
    :param startup_timeout: seconds the child has to listen.
    :param python: the interpreter to run it with.
    """

    def __init__(
        self,
        *args: str,
        config: str | None = None,
        scenario: str | None = None,
        accounts: list[tuple[str, str]] | None = None,
        token: str | None = None,
        seed: int | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        if config is not None and not isinstance(config, str):
            raise FormOptionError(
                "SimulatorProcess takes config as the path of a YAML file (the child reads it); "
                f"got {type(config).__name__}: write it to a file, or use ThreadedSimulator for a Config object"
            )
        if accounts is not None:
            configure(None, accounts=accounts)  # the same check, and the same message, as the other forms
        self.env = dict(os.environ, **(env or {}))
        if token is None:
            # a token in the environment reaches the child through its SMSC_SIM_* variables
            token = self.env.get("SMSC_SIM_API_TOKEN") or None
        SyncSMSCClient.__init__(self, "http://127.0.0.1:0", token)
        self.args = list(args)
        self.config_path = config
        self.scenario_name = scenario
        self.account_list = accounts
        self.seed = seed
        self.startup_timeout = startup_timeout
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self._endpoints: dict[str, list[tuple[str, int]]] = {}
        self.accounts = []
        self.api_url = ""
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.log_path = ""

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listened at start: ``{"SMPP1": [("127.0.0.1", 40123)]}``."""
        return self._endpoints

    def command(self) -> list[str]:
        """The child's command line."""
        command = [self.python, "-m", "smsc_sim.testing.serve", "--exit-with-stdin"]
        command += ["--ports-file", os.path.join(self._directory(), "ports.json"), "--api", EPHEMERAL]
        for name in _instance_names(self.config_path, self.env):
            command += ["--listen", f"{name}={EPHEMERAL}"]
        if self.config_path:
            command += ["--config", self.config_path]
        if self.scenario_name:
            command += ["--scenario", self.scenario_name]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        if self.token:
            command += ["--api-token", self.token]
        for system_id, password in self.account_list if self.account_list is not None else ():
            command += ["--account", f"{system_id}:{password}"]
        return command + self.args

    def _directory(self) -> str:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="smsc-sim-")
        return self._dir.name

    def start(self) -> SimulatorProcess:
        """Start the child and wait until every listener is open."""
        if self.process is not None:
            return self
        ports = os.path.join(self._directory(), "ports.json")
        self.log_path = os.path.join(self._directory(), "smsc-sim.log")
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        # the child writes the file (atomically) once it listens: polling a file is all a
        # reactor-less test process can do, and it costs a few milliseconds at start only
        while not os.path.exists(ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = self.log_text()
                why = "exited" if self.process.returncode is not None else "did not listen in time"
                self.stop()
                raise SimulatorStartError(f"smsc-sim {why}; its log ends:\n{said[-3000:]}")
            time.sleep(0.02)
        with open(ports, encoding="utf-8") as f:
            found = json.load(f)
        self._endpoints = {name: [(h, p) for h, p in where] for name, where in found["instances"].items()}
        self.accounts = [(a[0], a[1]) for a in found["accounts"]]
        host, port = found["api"]
        self.api_url = f"http://{host}:{port}"
        self.base_url = self.api_url + "/api/v1"
        return self

    def log_text(self) -> str:
        """What the child logged so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, ValueError):
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the child gracefully (it unbinds every session), killing it if it hangs."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def running(self) -> bool:
        """Whether the child runs."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def configure(
    config: Config | str | None = None,
    *,
    scenario: str | None = None,
    accounts: Iterable[tuple[str, str]] | None = None,
    seed: int | None = None,
    token: str | None = None,
) -> Config:
    """
    The configuration of a simulator in this process, from the options every form takes.

    :param config: a :class:`Config`, or the path of a YAML file (read as ``twistd
        smsc-sim --config`` reads it, ``SMSC_SIM_*`` variables aside); the embedded default when None.
    :param scenario: a scenario name or path instead of the configured one.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    :param seed: the seed of every random choice.
    :param token: a bearer token for the API.
    :raises FormOptionError: for an account that is not a ``(system_id, password)`` pair.
    """
    if isinstance(config, str):
        from smsc_sim.config_loader import load_config

        config = load_config(config, {}, {})
    config = config if config is not None else default_config()
    changes: dict[str, Any] = {}
    if scenario is not None:
        changes["scenario"] = scenario
    if seed is not None:
        changes["seed"] = seed
    if token is not None:
        changes["api_token"] = token
    if accounts is not None:
        pairs = [tuple(pair) for pair in accounts]
        if not pairs or any(len(pair) != 2 or not all(isinstance(x, str) and x for x in pair) for pair in pairs):
            raise FormOptionError(f"accounts must be non-empty (system_id, password) pairs of strings, got {pairs!r}")
        changes["accounts"] = tuple(AccountSettings(system_id, password) for system_id, password in pairs)
    return dataclasses.replace(config, **changes)


def ephemeral_config(config: Config | None = None) -> Config:
    """``config`` (default: the embedded one) with every listener and the API on an ephemeral loopback port."""
    config = config if config is not None else default_config()
    instances = tuple(
        dataclasses.replace(i, endpoints=tuple(EPHEMERAL for _ in i.endpoints)) for i in config.instances
    )
    return dataclasses.replace(config, instances=instances, api_endpoint=EPHEMERAL)


class InProcessSimulator(_Where, SMSCClient):
    """
    A simulator on this process's running reactor (its API calls return Deferreds).

    It is for ESMEs written on Twisted, tested on the same reactor
    (pytest-twisted, trial).  A blocking client (smpplib) would stop that
    reactor, and the simulator with it: use :class:`ThreadedSimulator` or
    :class:`SimulatorProcess` for those.  :meth:`start` refuses, saying so,
    when no reactor runs.

    :param config: the configuration, or a YAML path; its endpoints are replaced by ephemeral loopback ports.
    :param reactor: the reactor (the global one when not given).
    :param scenario: a scenario name or path instead of the configured one.
    :param token: a bearer token for the API.
    :param seed: the seed of every random choice.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    """

    def __init__(
        self,
        config: Config | str | None = None,
        reactor: Any = None,
        scenario: str | None = None,
        token: str | None = None,
        seed: int | None = None,
        accounts: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.config = ephemeral_config(
            configure(config, scenario=scenario, accounts=accounts, seed=seed, token=token)
        )
        SMSCClient.__init__(self, "http://127.0.0.1:0", self.config.api_token)
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.simulator: Any = None
        self.accounts = [(a.system_id, a.password) for a in self.config.accounts]
        self.api_url = ""

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listens now (read from the simulator, so it follows outages)."""
        return self.simulator.endpoints() if self.simulator is not None else {}

    def start(self) -> Deferred[InProcessSimulator]:
        """
        Start listening; fires with self once every listener is open.

        :raises NotOnARunningReactor: when the reactor does not run (a plain,
            blocking test): nothing would ever answer the ESME.
        """
        if not getattr(self.reactor, "running", False):
            raise NotOnARunningReactor(
                "InProcessSimulator serves from the test's running reactor, and none runs here, so nothing would "
                "answer: for a blocking client (smpplib) in a plain test use ThreadedSimulator (the simulator's "
                "reactor in a thread of its own) or SimulatorProcess, or --smsc-sim-mode=thread/subprocess; "
                "for a Twisted client run the test under pytest-twisted or trial"
            )
        from smsc_sim.service import build_service

        self.simulator = build_service(self.config, self.reactor)
        self.simulator.startService()
        api = self.simulator.getServiceNamed("api")

        def listening(_: object) -> InProcessSimulator:
            address = api.address()
            if address is None or not all(self.endpoints.values()):
                raise RuntimeError(f"smsc-sim could not listen: {self.endpoints}, api {address}")
            self.api_url = f"http://{address[0]}:{address[1]}"
            self.base_url = self.api_url + "/api/v1"
            return self

        waits: list[Deferred[Any]] = [self.simulator.when_listening(), api.when_listening()]
        return gatherResults(waits).addCallback(listening)

    def stop(self) -> Deferred[None]:
        """Unbind every session and close every listener."""
        simulator, self.simulator = self.simulator, None
        if simulator is None or not simulator.running:
            return Deferred.fromCoroutine(_nothing())
        result: Deferred[None] = simulator.stopService()
        return result

    async def __aenter__(self) -> InProcessSimulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class NotOnARunningReactor(RuntimeError):
    """An :class:`InProcessSimulator` was started where no reactor runs; the message says what to use."""


def _private_reactor() -> Any:
    """A reactor of our own, not installed as the global one, to run in a thread."""
    try:
        from twisted.internet.epollreactor import EPollReactor

        return EPollReactor()
    except ImportError:  # pragma: no cover - not Linux
        from twisted.internet.selectreactor import SelectReactor

        return SelectReactor()


class ThreadedSimulator(_Where, SyncSMSCClient):
    """
    A simulator in this process, on a reactor of its own in a thread of its own.

    A blocking ESME (smpplib) works in a plain test, as with
    :class:`SimulatorProcess`, but without a child process: start-up takes
    milliseconds, and :meth:`call` runs code against the engine itself.  Its
    API methods block and return values.  The global reactor is never touched,
    so it also works beside pytest-twisted.

    :param config: the configuration, or a YAML path; its endpoints are replaced by ephemeral loopback ports.
    :param scenario: a scenario name or path instead of the configured one.
    :param token: a bearer token for the API.
    :param seed: the seed of every random choice.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    :param startup_timeout: seconds the simulator has to listen.
    """

    def __init__(
        self,
        config: Config | str | None = None,
        scenario: str | None = None,
        token: str | None = None,
        seed: int | None = None,
        accounts: Iterable[tuple[str, str]] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.config = ephemeral_config(
            configure(config, scenario=scenario, accounts=accounts, seed=seed, token=token)
        )
        SyncSMSCClient.__init__(self, "http://127.0.0.1:0", self.config.api_token)
        self.accounts = [(a.system_id, a.password) for a in self.config.accounts]
        self.startup_timeout = startup_timeout
        self.reactor: Any = None
        self.simulator: Any = None
        self.api_url = ""
        self._thread: threading.Thread | None = None
        self._endpoints: dict[str, list[tuple[str, int]]] = {}

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listened at start: ``{"SMPP1": [("127.0.0.1", 40123)]}``."""
        return self._endpoints

    def start(self) -> ThreadedSimulator:
        """Start the reactor's thread and return once every listener is open."""
        if self._thread is not None:
            return self
        from twisted.internet.threads import blockingCallFromThread

        from smsc_sim.service import build_service

        reactor = self.reactor = _private_reactor()
        self._thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, name="smsc-sim-reactor", daemon=True
        )

        def boot() -> Deferred[Any]:
            self.simulator = build_service(self.config, reactor)
            self.simulator.startService()
            api = self.simulator.getServiceNamed("api")
            return gatherResults([self.simulator.when_listening(), api.when_listening()]).addCallback(
                lambda _: (self.simulator.endpoints(), api.address())
            )

        self._thread.start()
        try:
            endpoints, api = _blocking_within(blockingCallFromThread, reactor, boot, self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        if api is None or not all(endpoints.values()):
            self.stop()
            raise SimulatorStartError(f"smsc-sim could not listen: {endpoints}, api {api}")
        self._endpoints = {name: [(h, p) for h, p in found] for name, found in endpoints.items()}
        self.api_url = f"http://{api[0]}:{api[1]}"
        self.base_url = self.api_url + "/api/v1"
        return self

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``function(*args, **kwargs)`` in the reactor's thread (where the engine lives); its result."""
        from twisted.internet.threads import blockingCallFromThread

        if self.reactor is None:
            raise RuntimeError("the simulator is not started")
        return blockingCallFromThread(self.reactor, function, *args, **kwargs)

    def stop(self, timeout: float = 15.0) -> None:
        """Unbind every session, close every listener, stop the reactor and its thread."""
        thread, self._thread = self._thread, None
        reactor = self.reactor
        if thread is None or reactor is None:
            return

        def shut() -> None:
            simulator, self.simulator = self.simulator, None
            done = simulator.stopService() if simulator is not None and simulator.running else None
            if isinstance(done, Deferred):
                done.addBoth(lambda _: reactor.stop())
            else:
                reactor.stop()

        reactor.callFromThread(shut)
        thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the reactor's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ThreadedSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _blocking_within(call: Callable[..., Any], reactor: Any, function: Callable[[], Any], timeout: float) -> Any:
    """``call(reactor, function)``, failing with :class:`SimulatorStartError` after ``timeout`` seconds."""
    box: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append((True, call(reactor, function)))
        except BaseException as e:  # handed to the caller's thread below
            box.append((False, e))
        done.set()

    threading.Thread(target=run, daemon=True, name="smsc-sim-start").start()
    if not done.wait(timeout):
        raise SimulatorStartError(f"smsc-sim did not listen within {timeout:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return value


async def _nothing() -> None:
    return None
