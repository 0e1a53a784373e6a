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

Import every form from here; :class:`SimulatorProcess` is written in
:mod:`smsc_sim.testing.process`, :class:`ThreadedSimulator` in
:mod:`smsc_sim.testing.threaded`, and what they share in :mod:`smsc_sim.testing.forms`.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.internet.defer import Deferred, gatherResults

from smsc_sim.config import Config
from smsc_sim.testing.client import SMSCClient
from smsc_sim.testing.forms import (
    EPHEMERAL,
    LOOPBACK,
    SimulatorStartError,
    Where,
    configure,
    ephemeral_config,
)
from smsc_sim.testing.process import SimulatorProcess
from smsc_sim.testing.threaded import ThreadedSimulator

# re-exported: the docs, the pytest plugin and users' tests import these from here
__all__ = [
    "EPHEMERAL",
    "LOOPBACK",
    "InProcessSimulator",
    "NotOnARunningReactor",
    "SimulatorProcess",
    "SimulatorStartError",
    "ThreadedSimulator",
    "configure",
    "ephemeral_config",
]


class InProcessSimulator(Where, SMSCClient):
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


async def _nothing() -> None:
    return None
