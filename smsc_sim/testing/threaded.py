"""
:class:`ThreadedSimulator`: a whole simulator in this process, on a reactor
of its own in a thread of its own, on ephemeral ports of 127.0.0.1: blocking
clients work as with a child process.  Importable from
:mod:`smsc_sim.testing.harness`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, gatherResults

from smsc_sim.config import Config
from smsc_sim.testing.client import SyncSMSCClient
from smsc_sim.testing.forms import (
    SimulatorStartError,
    Where,
    configure,
    ephemeral_config,
)

__all__ = ["ThreadedSimulator"]


def _private_reactor() -> Any:
    """A reactor of our own, not installed as the global one, to run in a thread."""
    try:
        from twisted.internet.epollreactor import EPollReactor

        return EPollReactor()
    except ImportError:  # pragma: no cover - not Linux
        from twisted.internet.selectreactor import SelectReactor

        return SelectReactor()


class ThreadedSimulator(Where, SyncSMSCClient):
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
