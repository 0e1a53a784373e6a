"""
Prometheus metrics of one simulator, fed by its event bus.

Counting happens in plain dictionaries on the event path (a labelled
``prometheus_client.Counter`` takes a lock and a label lookup per PDU, too
dear at tens of thousands of PDUs a second); a custom collector turns them,
and the gauges read from the live objects (sessions, queues, store), into
metric families when scraped.  Each simulator has its own
``CollectorRegistry``, so two simulators in one test process never mix.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from smsc_sim.contracts import Event
from smsc_sim.modes import InstanceMode
from smsc_sim.api.tally import PduTally, tally_of
from smsc_sim.smpp.constants import BIND_TYPES, CommandId, status_name

if TYPE_CHECKING:
    from smsc_sim.core.smsc import SMSCCore
    from smsc_sim.simulator import Simulator

_COMMAND_NAMES = {int(command): command.name for command in CommandId}
_BIND_NAMES = {int(command): bind_type.value for command, bind_type in BIND_TYPES.items()}
#: counters a session keeps (``session.counters``) that are summed per instance, closed sessions included
SESSION_COUNTERS = ("window_refused",)
#: why the connection limiter refuses a connection (``ConnectionLimiter.refused``)
REFUSAL_REASONS = ("max_connections", "max_connections_per_address")
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: the events counted here (every PDU is counted by the tally, which sessions call straight, message
#: state changes by each core's lifecycle and delivery steps by each core's router)
KINDS = ("outage", "connection", "session_closed")


def command_name(command_id: int) -> str:
    """The SMPP name of a command, or its hex id when unknown (as :attr:`PDU.name` says it)."""
    return _COMMAND_NAMES.get(command_id) or f"0x{command_id:08X}"


class SimulatorMetrics:
    """
    The metrics of one simulator.

    :param simulator: the simulator whose events are counted and whose
        sessions, instances and cores are read at scrape time.
    :param tally: the PDU tally to read (made, and closed by :meth:`close`, when not given).
    """

    def __init__(self, simulator: Simulator, tally: PduTally | None = None) -> None:
        self.simulator = simulator
        self.registry = CollectorRegistry(auto_describe=False)
        self._owns_tally = tally is None
        self.tally = tally if tally is not None else tally_of(simulator)
        self.outages: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.connections: defaultdict[str, int] = defaultdict(int)
        #: how many open waits the API has (set by the API, read at scrape)
        self.open_waits = lambda: 0
        # the counters dict of every open session (taken at its "connection" event), so that what a
        # session counted is still counted after it closes: (instance, session_id) -> counters
        self._session_counters: dict[tuple[str, Any], dict[str, int]] = {}
        #: per instance, what closed sessions counted (``window_refused``...)
        self.closed_session_counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.registry.register(self)  # type: ignore[arg-type]
        self._unsubscribe = simulator.events.subscribe(self.observe, kinds=KINDS)

    def close(self) -> None:
        """Stop counting (the registry still answers with what was counted)."""
        self._unsubscribe()
        if self._owns_tally:
            self.tally.close()

    # ------------------------------------------------------------------
    # the event path
    # ------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Count one event."""
        kind = event.kind
        data = event.data
        if kind == "outage":
            self.outages[(str(data.get("instance", "")), str(data.get("mode", "")))] += 1
        elif kind == "connection":
            instance = str(data.get("instance", ""))
            self.connections[instance] += 1
            self._keep_counters(instance, data.get("session_id"))
        elif kind == "session_closed":
            session_id = data.get("session_id")
            counters = self._session_counters.pop((str(data.get("instance", "")), session_id), None)
            if counters is not None:
                for name in SESSION_COUNTERS:
                    self.closed_session_counts[(str(data.get("instance", "")), name)] += counters.get(name, 0)

    def _keep_counters(self, instance: str, session_id: Any) -> None:
        """Hold a new session's counters dict, to add them up when it closes."""
        runtime = self.simulator.instances.get(instance)
        session = runtime.sessions.get(session_id) if runtime is not None else None
        if session is not None:
            self._session_counters[(instance, session_id)] = session.counters

    @property
    def deliveries(self) -> dict[tuple[str, str], int]:
        """Delivery steps by kind (receipt, mo) and outcome, all clusters."""
        totals: defaultdict[tuple[str, str], int] = defaultdict(int)
        for core in self.simulator.cores.values():
            for (kind, outcome), n in list(core.router.outcomes.items()):
                totals[(str(kind), str(outcome))] += n
        return totals

    def _state_changes(self) -> dict[tuple[str, str], int]:
        """Message state changes by direction and state, all clusters."""
        totals: defaultdict[tuple[str, str], int] = defaultdict(int)
        for core in self.simulator.cores.values():
            for key, n in list(core.lifecycle.state_changes.items()):
                totals[key] += n
        return totals

    def _pdu_counters(self) -> tuple[dict[Any, int], dict[Any, int], dict[Any, int]]:
        """The tally's PDU and bind counts, labelled with names (at scrape time)."""
        tally = self.tally
        pdus: defaultdict[tuple[str, str, str, str], int] = defaultdict(int)
        for (direction, instance, command_id, status), n in tally.counts().items():
            pdus[(direction, instance, command_name(command_id), status_name(status))] += n
        binds: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        failures: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        for (instance, account, command_id, status), n in list(tally.bind_answers.items()):
            if status == 0:
                binds[(instance, account, _BIND_NAMES[command_id])] += n
            else:
                failures[(instance, account, status_name(status))] += n
        return pdus, binds, failures

    # ------------------------------------------------------------------
    # the scrape
    # ------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """The metric families, for the registry."""
        yield from self._counters()
        yield from self._histograms()
        yield from self._gauges()
        yield from self._bounds()

    def _counters(self) -> Iterator[Metric]:
        pdus, binds, bind_failures = self._pdu_counters()
        tables: list[tuple[str, str, list[str], dict[Any, int]]] = [
            ("smsc_sim_pdus", "PDUs received (in) and sent (out)", ["direction", "instance", "command", "status"],
             pdus),
            ("smsc_sim_binds", "Successful binds", ["instance", "account", "bind_type"], binds),
            ("smsc_sim_bind_failures", "Refused binds", ["instance", "account", "status"], bind_failures),
            ("smsc_sim_throttled_submits", "Submits answered ESME_RTHROTTLED", ["instance", "account"],
             dict(self.tally.throttled)),
            ("smsc_sim_deliveries", "Receipt and MO delivery steps (queued, retry, acked, failed, exhausted, "
             "expired, dropped)", ["kind", "outcome"], self.deliveries),
            ("smsc_sim_message_states", "Message state changes", ["direction", "state"], self._state_changes()),
            ("smsc_sim_outages", "Outages started (mode) and ended (mode=up)", ["instance", "mode"], self.outages),
        ]  # fmt: skip
        for name, doc, labels, table in tables:
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(table.items()):
                family.add_metric(list(key), value)
            yield family
        family = CounterMetricFamily("smsc_sim_connections", "TCP connections accepted", labels=["instance"])
        for instance, value in sorted(self.connections.items()):
            family.add_metric([instance], value)
        yield family
        retries = CounterMetricFamily("smsc_sim_delivery_retries", "Deliveries retried", labels=["kind"])
        for (kind, outcome), value in sorted(self.deliveries.items()):
            if outcome == "retry":
                retries.add_metric([kind], value)
        yield retries

    def _histograms(self) -> Iterator[Metric]:
        for name, doc, table in (
            ("smsc_sim_response_latency_seconds", "Time from an ESME request to the SMSC's response",
             self.tally.latency),
            ("smsc_sim_esme_response_seconds", "Time from an SMSC request (deliver_sm...) to the ESME's response",
             self.tally.esme_latency),
        ):
            family = HistogramMetricFamily(name, doc, labels=["command"])
            named = sorted((command_name(command_id), histogram) for command_id, histogram in list(table.items()))
            for command, histogram in named:
                family.add_metric([command], histogram.buckets(), histogram.total)
            yield family

    def _gauges(self) -> Iterator[Metric]:
        simulator = self.simulator
        up = GaugeMetricFamily("smsc_sim_instance_up", "1 when the instance is up (no outage)", labels=["instance"])
        mode = GaugeMetricFamily(
            "smsc_sim_instance_mode", "1 for the instance's current mode", labels=["instance", "mode"]
        )
        sessions = GaugeMetricFamily("smsc_sim_sessions", "Open SMPP sessions by state", labels=["instance", "state"])
        bound = GaugeMetricFamily(
            "smsc_sim_bound_sessions", "Bound sessions", labels=["instance", "account", "bind_type"]
        )
        queue = GaugeMetricFamily(
            "smsc_sim_outbound_queue_depth", "Deliveries written and unanswered or queued, per instance",
            labels=["instance"],
        )  # fmt: skip
        for name, instance in simulator.instances.items():
            up.add_metric([name], 1.0 if instance.mode is InstanceMode.UP else 0.0)
            mode.add_metric([name, instance.mode.value], 1.0)
            states: defaultdict[str, int] = defaultdict(int)
            binds: defaultdict[tuple[str, str], int] = defaultdict(int)
            depth = 0
            for session in list(instance.sessions.values()):
                states[session.state.value] += 1
                if session.bind_type is not None and session.state.value.startswith("BOUND"):
                    binds[(session.system_id or "", session.bind_type.value)] += 1
                depth += session.outbound_pending()
            for state, n in sorted(states.items()):
                sessions.add_metric([name, state], n)
            for (account, bind_type), n in sorted(binds.items()):
                bound.add_metric([name, account, bind_type], n)
            queue.add_metric([name], depth)
        yield from (up, mode, sessions, bound, queue)
        pending = GaugeMetricFamily("smsc_sim_pending_deliveries", "Deliveries waiting for a bind", labels=["cluster"])
        stored = GaugeMetricFamily("smsc_sim_store_messages", "Message records held", labels=["cluster"])
        stats = GaugeMetricFamily("smsc_sim_core_stat", "The core's own counters", labels=["cluster", "name"])
        for cluster, core in simulator.cores.items():
            value = core_stats(core)
            for key, number in sorted(value.items()):
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    stats.add_metric([cluster, key], float(number))
            pending.add_metric([cluster], float(value.get("pending", 0) or 0))
            stored.add_metric([cluster], float(value.get("store_size", 0) or 0))
        yield from (pending, stored, stats)
        waits = GaugeMetricFamily("smsc_sim_api_open_waits", "Long-poll waits open on the API")
        waits.add_metric([], float(self.open_waits()))
        yield waits

    def _bounds(self) -> Iterator[Metric]:
        """
        What happened at each limit (docs/reliability.md), read at scrape time
        from the counters the limiter, the cores and the sessions keep anyway.
        """
        simulator = self.simulator
        described: dict[str, Any] = simulator.limiter.describe()
        refused = CounterMetricFamily(
            "smsc_sim_connections_refused", "Connections refused at accept, by the limit reached", labels=["reason"]
        )
        for reason in sorted(set(REFUSAL_REASONS) | set(described["refused"])):
            refused.add_metric([reason], float(described["refused"].get(reason, 0)))
        open_now = GaugeMetricFamily("smsc_sim_open_connections", "SMPP connections open, all instances")
        open_now.add_metric([], float(described["open"]))
        yield from (refused, open_now)
        window = CounterMetricFamily(
            "smsc_sim_inbound_window_refusals", "Requests answered at once with the window status (inbound window "
            "full)", labels=["instance"],
        )  # fmt: skip
        at_limit = GaugeMetricFamily(
            "smsc_sim_sessions_at_queue_limit", "Sessions whose outbound queue is full (the router skips them)",
            labels=["instance"],
        )  # fmt: skip
        for name, instance in simulator.instances.items():
            sessions = list(instance.sessions.values())
            live = sum(session.counters.get("window_refused", 0) for session in sessions)
            window.add_metric([name], float(live + self.closed_session_counts.get((name, "window_refused"), 0)))
            limit = simulator.config.session.outbound_queue_limit
            at_limit.add_metric([name], float(sum(1 for s in sessions if s.outbound_pending() >= limit)))
        yield from (window, at_limit)
        families: dict[str, Any] = {
            "lockouts": CounterMetricFamily(
                "smsc_sim_bind_lockout_refusals", "Binds refused (ESME_RBINDFAIL) because their address is locked "
                "out after failed binds", labels=["cluster"],
            ),
            "locked": GaugeMetricFamily(
                "smsc_sim_bind_locked_out_addresses", "Source addresses locked out now", labels=["cluster"]
            ),
            "dropped": CounterMetricFamily(
                "smsc_sim_pending_deliveries_lost", "Deliveries that waited for a bind and were dropped (queue full) "
                "or expired", labels=["cluster", "reason"],
            ),
            "evicted": CounterMetricFamily(
                "smsc_sim_store_evictions", "Final message records evicted (store full or past their TTL)",
                labels=["cluster"],
            ),
            "store_full": CounterMetricFamily(
                "smsc_sim_store_full_refusals", "Submits (or submit_multi destinations) refused with ESME_RMSGQFUL "
                "because the store held only pending records", labels=["cluster"],
            ),
            "queue_full": CounterMetricFamily(
                "smsc_sim_outbound_queue_full", "Deliveries a session refused because its outbound queue was full",
                labels=["cluster"],
            ),
        }  # fmt: skip
        for cluster, core in simulator.cores.items():
            lockouts = core.bind_guard.describe()
            families["lockouts"].add_metric([cluster], float(lockouts["lockout_refusals"]))
            families["locked"].add_metric([cluster], float(len(lockouts["locked_out"])))
            routed = core.router.counters
            families["dropped"].add_metric([cluster, "full"], float(routed["pending_dropped"]))
            families["dropped"].add_metric([cluster, "expired"], float(routed["pending_expired"]))
            families["evicted"].add_metric([cluster], float(core.store.evicted))
            families["store_full"].add_metric([cluster], float(core.counters["store_full"]))
            families["queue_full"].add_metric([cluster], float(routed["unanswered_queue_full"]))
        yield from families.values()


def core_stats(core: SMSCCore) -> dict[str, Any]:
    """A core's ``stats()``, flattened one level (``{"receipts": {"acked": 1}}`` gives ``receipts_acked``)."""
    flat: dict[str, Any] = {}
    for key, value in core.stats().items():
        if isinstance(value, dict):
            for inner, number in value.items():
                flat[f"{key}_{inner}"] = number
        else:
            flat[str(key)] = value
    return flat

