"""
The control API's resources: health, instances and outages, sessions,
scenario, reset, statistics and metrics.  Messages, waits and MO injection
are in :mod:`smsc_sim.api.messages`.

Everything goes through the :class:`~smsc_sim.simulator.Simulator` (outages,
scenario, reset) and the live objects it holds (instances, sessions, cores);
the API keeps no state of its own but its open waits.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.web.resource import Resource

import smsc_sim
from smsc_sim.api.http import (
    APIError,
    Call,
    JSONAPI,
    JSONResponse,
    TextResponse,
    check_keys,
    excerpt,
    number,
    text,
)
from smsc_sim.api.accounts import AccountRoutes
from smsc_sim.api.cluster_views import cluster_health, merged_instances, merged_sessions, process_stats
from smsc_sim.api.conformance import ConformanceRoutes
from smsc_sim.api.handsets import HandsetRoutes
from smsc_sim.api.outbind import OutbindRoutes
from smsc_sim.api.trace import TraceRoutes
from smsc_sim.api.messages import MessageRoutes
from smsc_sim.api.metrics import CONTENT_TYPE, SimulatorMetrics
from smsc_sim.api.sse import EventStreams
from smsc_sim.api.submits import SubmitRoutes
from smsc_sim.api.views import session_view
from smsc_sim.api.waiting import Waits
from smsc_sim.console import ConsoleResource
from smsc_sim.modes import CLOSED_MODES, OUTAGE_MODES
from smsc_sim.smpp.constants import parse_status
from smsc_sim.topology import OutageError
from smsc_sim.yaml_source import clip

if TYPE_CHECKING:
    from smsc_sim.session import SMPPSession
    from smsc_sim.simulator import Simulator

PREFIX = "/api/v1"
#: where to go from an index (``/api``, ``/api/v1``): paths on this server, and the docs in the source tree
LINKS = {
    "api": PREFIX,
    "openapi": PREFIX + "/openapi.json",
    "console": "/",
    "events": PREFIX + "/events",
    "docs": "docs/api.md in the smsc-sim source (README.md, docs/*.md)",
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description shipped with the package."""
    source = resources.files("smsc_sim.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(source)
    document["info"]["version"] = smsc_sim.__version__
    return document


class ControlAPI:
    """
    The HTTP control and inspection API of one simulator.

    :param simulator: what the API drives and shows.
    :param token: the bearer token every call but liveness needs, or None.
    :param metrics: the metrics to expose; made here when not given.
    :param allowed_hosts: ``Host`` names the API answers besides loopback
        and IP addresses (:class:`~smsc_sim.api.http.JSONAPI`).
    """

    log = Logger()

    def __init__(
        self,
        simulator: Simulator,
        token: str | None = None,
        metrics: SimulatorMetrics | None = None,
        allowed_hosts: tuple[str, ...] | None = None,
    ) -> None:
        self.simulator = simulator
        self.metrics = metrics if metrics is not None else SimulatorMetrics(simulator)
        self.waits = Waits(simulator.events, simulator.clock)
        self.metrics.open_waits = lambda: len(self.waits.open)
        hosts = simulator.config.api_allowed_hosts if allowed_hosts is None else allowed_hosts
        self.api = JSONAPI("", token, hosts)
        self.messages = MessageRoutes(simulator, self.waits)
        self.conformance = ConformanceRoutes(simulator)
        self.streams = EventStreams(simulator)
        self.traces = TraceRoutes(simulator)
        self.submits = SubmitRoutes(simulator, self.metrics.tally)
        if simulator.control is not None:
            # a reset asked through another process's API forgets this API's submit log too
            simulator.control.reset_hooks.append(self.submits.clear)
        self._routes()

    def resource(self) -> Resource:
        """The root resource (serve it with ``twisted.web.server.Site``): the API, and the console at ``/``."""
        return ConsoleResource(self.api)

    def _routes(self) -> None:
        add = self.api.add
        add(PREFIX, "GET", self.index)
        add("/api", "GET", self.links)
        add(PREFIX + "/openapi.json", "GET", lambda call: openapi_document(), open_access=True)
        add(PREFIX + "/health/live", "GET", self.live, open_access=True)
        add(PREFIX + "/health/ready", "GET", self.ready)
        add(PREFIX + "/instances", "GET", self.instances)
        add(PREFIX + "/instances/{name}", "GET", self.instance)
        add(PREFIX + "/instances/{name}/outage", "POST", self.start_outage)
        add(PREFIX + "/instances/{name}/outage", "DELETE", self.end_outage)
        add(PREFIX + "/sessions", "GET", self.sessions)
        add(PREFIX + "/sessions/{session_id}", "GET", self.session)
        add(PREFIX + "/sessions/{session_id}", "DELETE", self.end_session)
        add(PREFIX + "/scenario", "GET", self.scenario)
        add(PREFIX + "/scenario", "PUT", self.load_scenario)
        add(PREFIX + "/scenarios", "GET", self.scenarios)
        add(PREFIX + "/reset", "POST", self.reset)
        add(PREFIX + "/stats", "GET", self.stats)
        add(PREFIX + "/metrics", "GET", self.prometheus)
        add("/metrics", "GET", self.prometheus)
        self.messages.add_routes(self.api, PREFIX)
        self.conformance.add_routes(self.api, PREFIX)
        self.streams.add_routes(self.api, PREFIX)
        self.traces.add_routes(self.api, PREFIX)
        self.submits.add_routes(self.api, PREFIX)
        OutbindRoutes(self.simulator).add_routes(self.api, PREFIX)
        HandsetRoutes(self.simulator).add_routes(self.api, PREFIX)
        AccountRoutes(self.simulator).add_routes(self.api, PREFIX)

    # -- health ---------------------------------------------------------------

    def index(self, call: Call) -> dict[str, Any]:
        """What this is and where to go."""
        simulator = self.simulator
        return {
            "name": "smsc-sim",
            "version": smsc_sim.__version__,
            "seed": simulator.seed,
            "time": simulator.clock.seconds(),
            "endpoints": {
                name: [f"{host}:{port}" for host, port in addresses]
                for name, addresses in simulator.endpoints().items()
            },
            "accounts": [account.system_id for account in simulator.config.accounts],
            "openapi": PREFIX + "/openapi.json",
            "links": LINKS,
        }

    def links(self, call: Call) -> dict[str, Any]:
        """``GET /api``: where the API, its description, the console and the docs are."""
        return {"name": "smsc-sim", "version": smsc_sim.__version__, "links": LINKS}

    def live(self, call: Call) -> dict[str, Any]:
        """The process answers."""
        return {"status": "live"}

    def ready(self, call: Call) -> JSONResponse:
        """200 when every listener that should be open is open, else 503 with what is not."""
        simulator = self.simulator
        instances = {}
        ready = bool(simulator.running)
        for name, instance in simulator.instances.items():
            # listeners closed on purpose by an outage do not make the simulator unready
            expected = instance.mode not in CLOSED_MODES
            listening = [listener.address() is not None for listener in instance.listeners]
            ok = all(listening) or not expected
            ready = ready and ok
            instances[name] = {
                "state": instance.mode.value,
                "listeners": len(listening),
                "listening": sum(listening),
                "ready": ok,
            }
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "ready": ready, "instances": instances}
        # a shared cluster's state is in Redis: without it binds are refused, so the process is not ready
        store_ok, cluster = cluster_health(simulator)
        if cluster is not None:
            body["cluster"] = cluster
            if not store_ok:
                ready = False
                reasons = [store["reason"] for store in cluster["stores"] if "reason" in store]
                body.update(status="not ready", ready=False, reason="; ".join(reasons))
        return JSONResponse(200 if ready else 503, body)

    # -- instances and outages ------------------------------------------------

    def _instance(self, call: Call) -> Any:
        name = call.params["name"]
        try:
            return self.simulator.instance(name)
        except OutageError as e:
            raise APIError(404, str(e)) from None

    def instances(self, call: Call) -> dict[str, Any]:
        """Every instance with its state, the other processes' of a shared cluster too."""
        own = [instance.describe() for instance in self.simulator.instances.values()]
        return {"instances": merged_instances(self.simulator, own)}

    def instance(self, call: Call) -> dict[str, Any]:
        """One instance; in a shared cluster, one another process runs too (as its last snapshot shows it)."""
        name = call.params["name"]
        if name not in self.simulator.instances:
            for shown in merged_instances(self.simulator, []):
                if shown.get("name") == name:
                    return shown
        description: dict[str, Any] = self._instance(call).describe()
        return description

    def start_outage(self, call: Call) -> Deferred[JSONResponse] | JSONResponse:
        """
        Start an outage; answers once it is in place (sessions unbound, listeners closed).

        In a shared cluster the other processes hear of it; an instance that runs in
        another process is put in its outage by that process (202: published).
        """
        control = self.simulator.control
        remote = control is not None and control.runs_elsewhere(call.params["name"])
        instance = None if remote else self._instance(call)
        body = call.object_body()
        check_keys(body, ("mode", "duration", "status", "latency"))
        mode = body.get("mode")
        if mode not in OUTAGE_MODES:
            raise APIError(400, f"mode must be one of {', '.join(OUTAGE_MODES)}, got {excerpt(mode)}")
        options: dict[str, Any] = {}
        if body.get("duration") is not None:
            options["duration"] = number(body["duration"], "duration", 0)
        if body.get("latency") is not None:
            options["latency"] = number(body["latency"], "latency", 0)
        if body.get("status") is not None:
            status = body["status"]
            if isinstance(status, bool) or not isinstance(status, (int, str)):
                raise APIError(400, f"status must be a command_status number or name, got {excerpt(status)}")
            try:
                options["status"] = parse_status(body["status"])
            except ValueError as e:
                raise APIError(400, f"status: {e}") from None
        duration = options.pop("duration", None)
        if instance is None:
            assert control is not None
            if mode == "slow" and "latency" not in options:
                raise APIError(400, "a 'slow' outage needs a latency in seconds (0 or more)")
            name = call.params["name"]
            published = control.outage(name, mode, duration, options)
            return published.addCallback(_published, name, mode, control.cluster_of(name))
        try:
            done = instance.start_outage(mode, duration, **options)
        except OutageError as e:
            raise APIError(400, str(e)) from None
        if control is not None:
            done.addCallback(lambda _: control.outage(instance.name, mode, duration, options))
        return done.addCallback(lambda _: JSONResponse(200, instance.describe()))

    def end_outage(self, call: Call) -> Deferred[dict[str, Any]] | Deferred[JSONResponse]:
        """End the instance's outage (nothing happens when it is up), in whichever process of the cluster it runs."""
        control = self.simulator.control
        name = call.params["name"]
        if control is not None and control.runs_elsewhere(name):
            return control.end_outage(name).addCallback(_published, name, "up", control.cluster_of(name))
        instance = self._instance(call)
        done = instance.end_outage()
        if control is not None:
            done.addCallback(lambda _: control.end_outage(instance.name))
        return done.addCallback(lambda _: instance.describe())

    # -- sessions -------------------------------------------------------------

    def _all_sessions(self) -> list[SMPPSession]:
        found = [s for instance in self.simulator.instances.values() for s in list(instance.sessions.values())]
        return sorted(found, key=lambda s: s.session_id)

    def sessions(self, call: Call) -> dict[str, Any]:
        """Open sessions, filtered by account, instance, bind_type or state."""
        query = call.query
        check_keys(query, ("account", "instance", "bind_type", "state"), "query")
        views = merged_sessions(self.simulator, [session_view(s) for s in self._all_sessions()])
        for key in ("account", "instance", "bind_type", "state"):
            if key in query:
                views = [v for v in views if str(v[key]).lower() == query[key].lower()]
        return {"sessions": views}

    def _session(self, call: Call) -> SMPPSession:
        wanted = call.params["session_id"]
        for session in self._all_sessions():
            if str(session.session_id) == wanted:
                return session
        raise APIError(404, f"no open session {wanted}")

    def session(self, call: Call) -> dict[str, Any]:
        """One open session."""
        return session_view(self._session(call))

    def end_session(self, call: Call) -> Deferred[dict[str, Any]] | dict[str, Any]:
        """End a session: ``?how=unbind`` (default: unbind, wait for unbind_resp, close) or ``?how=reset`` (RST)."""
        session = self._session(call)
        check_keys(call.query, ("how",), "query")
        how = call.query.get("how", "unbind")
        view = session_view(session)
        if how == "reset":
            session.abort()
            return {"ended": "reset", "session": view}
        if how != "unbind":
            raise APIError(400, f"how must be 'unbind' or 'reset', got {excerpt(how)}")
        return session.unbind().addCallback(lambda _: {"ended": "unbind", "session": view})

    # -- scenario, reset, stats, metrics ---------------------------------------

    def scenario(self, call: Call) -> dict[str, Any]:
        """The active scenario."""
        return {"scenario": self.simulator.scenario.describe()}

    def scenarios(self, call: Call) -> dict[str, Any]:
        """The shipped scenarios' names."""
        from smsc_sim.scenario.loader import shipped_scenarios

        return {"scenarios": shipped_scenarios(), "active": self.scenario(call)["scenario"].get("name")}

    def load_scenario(self, call: Call) -> dict[str, Any] | Deferred[dict[str, Any]]:
        """
        Switch to a scenario by ``name`` or by ``yaml`` text; errors change nothing.

        A name is a shipped scenario, or a name or path inside the operator's
        ``scenario_dirs`` or the directory of the ``--scenario`` file: any
        other path is refused with 403, so the API never reads (or quotes)
        a file the operator did not offer.  Files and texts are read within
        the YAML bounds of :mod:`smsc_sim.yaml_source`.
        """
        from smsc_sim.scenario.source import ScenarioError

        body = call.object_body()
        check_keys(body, ("name", "yaml"))
        if ("name" in body) == ("yaml" in body):
            raise APIError(400, "give exactly one of 'name' (a shipped scenario or a path) and 'yaml' (the text)")
        from smsc_sim.cluster.control import switch_scenario

        spec = {"name": text(body["name"], "name")} if "name" in body else {"yaml": text(body["yaml"], "yaml")}
        try:
            switch_scenario(self.simulator, spec)
        except ScenarioError as e:
            from smsc_sim.scenario.loader import ScenarioRefused

            code = 403 if isinstance(e, ScenarioRefused) else 400
            raise APIError(code, str(e), file=e.file, line=e.line, path=e.path, problem=e.problem) from None
        except ValueError as e:
            raise APIError(400, clip(str(e))) from None
        if self.simulator.control is not None:
            # the other processes of the cluster switch too (each finds a name in its own directories)
            return self.simulator.control.scenario(spec).addCallback(lambda _: self.scenario(call))
        return self.scenario(call)

    def reset(self, call: Call) -> Deferred[dict[str, Any]]:
        """
        Start over between tests: messages, pending deliveries and counters
        are forgotten; unless told otherwise, outages end and the configured
        scenario is loaded again; with ``"sessions": true`` every session is reset too.
        """
        body = call.object_body()
        check_keys(body, ("outages", "scenario", "sessions"))
        flags = {key: body.get(key, key != "sessions") for key in ("outages", "scenario", "sessions")}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise APIError(400, f"{key} must be true or false, got {excerpt(value)}")
        simulator = self.simulator
        waits: list[Deferred[Any]] = []
        if flags["sessions"]:
            dropped = {session.session_id for session in self._all_sessions()}
            for session in self._all_sessions():
                session.abort()

            def gone() -> bool | None:
                open_ids = {s.session_id for s in self._all_sessions()}
                return True if not dropped & open_ids else None

            # answer only once the connections are closed and their binds freed, so that
            # a test binding right after the reset never meets its predecessor's quota
            waits.append(self.waits.until(gone, frozenset({"session_closed"}), 5.0))
        if flags["outages"]:
            waits += [instance.end_outage() for instance in simulator.instances.values()]
        if flags["scenario"]:
            try:
                simulator.load_scenario(simulator.config.scenario)
            except ValueError as e:
                raise APIError(500, f"cannot reload the configured scenario: {e}") from None
        simulator.reset()
        self.submits.clear()
        if simulator.control is not None:
            # every process of the cluster resets too, and the cluster's shared keys go
            waits.append(simulator.control.reset(flags))
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: {"reset": flags})

    def stats(self, call: Call) -> dict[str, Any]:
        """Every core's counters, by cluster; in a shared cluster, every process's too (``processes``)."""
        result = {}
        for cluster, core in self.simulator.cores.items():
            result[cluster] = json.loads(json.dumps(core.stats(), default=str))
        processes = process_stats(self.simulator, result)
        return {"clusters": result} if processes is None else {"clusters": result, "processes": processes}

    def prometheus(self, call: Call) -> TextResponse:
        """The metrics in the Prometheus text format."""
        return TextResponse(self.metrics.exposition(), CONTENT_TYPE)

    def close(self) -> None:
        """Stop counting events and end every open wait."""
        self.metrics.close()
        self.streams.close()
        self.submits.close()
        for wait in list(self.waits.open):
            wait.result.cancel()


def _published(published: bool, name: str, state: str, cluster: str | None) -> JSONResponse:
    """
    The answer for an outage of an instance another process runs: 202 once
    published (that process applies it), 503 when Redis did not take it.
    """
    if not published:
        raise APIError(503, f"the cluster store does not answer: {name} runs in another process and was not told")
    return JSONResponse(202, {
        "name": name,
        "cluster": cluster,
        "state": state,
        "process": "another process of the cluster",
        "published": True,
    })  # fmt: skip
