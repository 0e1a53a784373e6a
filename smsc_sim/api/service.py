"""
The control API as a service of the simulator's tree.

:func:`add_api` is what :func:`smsc_sim.service.build_service` calls when
the configuration has an API endpoint.  The service is named ``api`` so
that a harness can find it (``simulator.getServiceNamed("api")``) and read
the address an ephemeral port got.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.web.server import Request, Site

from smsc_sim.api.app import ControlAPI
from smsc_sim.api.metrics import SimulatorMetrics
from smsc_sim.topology import Listener

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

SERVICE_NAME = "api"


def endpoint_is_loopback(description: str) -> bool:
    """
    Whether a server endpoint description only listens on loopback.

    ``tcp:8775`` listens on every interface, so it is not; ``unix:`` sockets
    are local, so they are.
    """
    parts = re.split(r"(?<!\\):", description)
    kind = parts[0].lower()
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    for part in parts[1:]:
        if part.startswith("interface="):
            host = part[len("interface=") :].replace("\\", "")
            try:
                return ipaddress.ip_address(host).is_loopback
            except ValueError:
                return host == "localhost"
    return False


class _BodyRequest(Request):
    """
    A request whose body twisted.web leaves alone.

    By default a POST with a form Content-Type has its body parsed into
    ``args`` (the query), and a malformed multipart body is answered with a
    bare, non-JSON 400 before the API sees it; the API refuses every non-JSON
    body itself, with a 415 that says why.
    """

    _parsePOSTFormSubmission = False


class _QuietSite(Site):
    """A Site that never shows a traceback, logs no access line per request and never parses form bodies."""

    displayTracebacks = False
    noisy = False
    requestFactory = _BodyRequest

    def log(self, request: Any) -> None:
        """Access logging is off: tests and long-polls would flood the log."""


class APIService(MultiService):
    """
    The HTTP control API: its listener, resource, metrics and waits.

    :param simulator: the simulator it serves.
    :param endpoint: a server endpoint description.
    :param token: bearer token, or None for none.
    """

    log = Logger()

    def __init__(self, simulator: Simulator, endpoint: str, token: str | None) -> None:
        super().__init__()
        self.setName(SERVICE_NAME)
        self.simulator = simulator
        self.endpoint = endpoint
        self.token = token
        self.metrics = SimulatorMetrics(simulator)
        self.control = ControlAPI(simulator, token, self.metrics)
        self.site = _QuietSite(self.control.resource())
        self.listener = Listener(simulator.reactor, endpoint, self.site)  # type: ignore[arg-type]
        self.listener.setName(f"api {endpoint}")
        self.listener.setServiceParent(self)

    def startService(self) -> None:
        """Listen, with a warning when the API is reachable from elsewhere with no token."""
        if not self.token and not endpoint_is_loopback(self.endpoint):
            self.log.warn(
                "the control API listens on {endpoint}, beyond loopback, with no token: anyone who can reach it "
                "controls the simulator; set SMSC_SIM_API_TOKEN (or --api-token)",
                endpoint=self.endpoint,
            )
        super().startService()
        waits: list[Deferred[Any]] = [self.simulator.when_listening(), self.listener.listen()]
        gatherResults(waits).addCallback(self._announce)

    def _announce(self, _: object) -> None:
        """Log where everything listens, real ports included (ephemeral ones are known only now)."""
        address = self.address()
        api = f"http://{address[0]}:{address[1]}/api/v1" if address is not None else "not listening"
        instances = " ".join(
            f"{name}={','.join(f'{h}:{p}' for h, p in where) or 'closed'}"
            for name, where in self.simulator.endpoints().items()
        )
        self.log.info("smsc-sim listening: {instances}; control API {api}", instances=instances, api=api)

    def stopService(self) -> Deferred[None]:
        """Stop listening and end every open wait."""
        self.control.close()
        result = super().stopService()
        return result if isinstance(result, Deferred) else succeed(None)

    def when_listening(self) -> Deferred[IListeningPort | None]:
        """Fires once the API listens (with its port), or with None when it could not."""
        return self.listener.listen()

    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` while listening."""
        return self.listener.address()


def add_api(simulator: Simulator, endpoint: str, token: str | None) -> APIService:
    """
    Add the control API to the simulator's service tree.

    :param simulator: the simulator to serve.
    :param endpoint: where to listen, e.g. ``tcp:8775:interface=127.0.0.1``.
    :param token: the bearer token every call but liveness needs, or None.
    :returns: the service, already a child of ``simulator``.
    """
    service = APIService(simulator, endpoint, token)
    service.setServiceParent(simulator)
    return service
