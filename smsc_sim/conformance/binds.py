"""
The checks on an account's binds: how fast it binds, whether it exceeds
its quota, whether it has a bind that can receive its receipts, whether
it uses both instances of a cluster, and whether it fails over when an
instance goes out.
"""

from __future__ import annotations

from smsc_sim.conformance.findings import Check, Evidence, Finding
from smsc_sim.conformance.sessions import DOWN_MODES
from smsc_sim.conformance.tracks import (
    AccountTrack,
    Context,
    FailoverWatch,
    SessionTrack,
    evidence_of,
)
from smsc_sim.modes import DROPPING_MODES
from smsc_sim.smpp.constants import REGISTERED_DELIVERY_RECEIPT_MASK, CommandStatus
from smsc_sim.smpp.pdu import PDU

_RALYBND = int(CommandStatus.ESME_RALYBND)
#: outage modes that end the sessions on an instance
_RECEIVING = frozenset({"receiver", "transceiver"})


class BindChecks:
    """Account-level checks on binds and outages."""

    def __init__(self, context: Context, modes: dict[str, str]) -> None:
        self._context = context
        self._modes = modes

    def attempt(self, account: AccountTrack, time: float, evidence: Evidence) -> None:
        """A bind (accepted or refused): too many in the period is a rebind storm."""
        thresholds = self._context.thresholds
        binds = account.recent_binds
        while binds and binds[0].time <= time - thresholds.rebind_period:
            binds.popleft()
        crossing = len(binds) == thresholds.rebind_max  # this bind is the first over the limit
        binds.append(evidence)
        while len(binds) > thresholds.rebind_max + 1:
            binds.popleft()
        if len(binds) > thresholds.rebind_max:
            # the first bind over the limit shows the whole burst; later ones add themselves
            shown = tuple(binds) if crossing else (evidence,)
            self._context.book.record(
                Check.rebind_storm,
                account.account,
                None,
                None,
                time,
                shown,
                f"more than {thresholds.rebind_max} binds within {thresholds.rebind_period:g} s: "
                "reconnecting without backoff",
            )

    def refused(self, account: AccountTrack, status: int, time: float, evidence: Evidence) -> None:
        """A refused bind; ESME_RALYBND means the account asked for more binds than its quota."""
        if status == _RALYBND:
            self._context.book.record(
                Check.bind_quota_exceeded,
                account.account,
                None,
                None,
                time,
                (evidence,),
                "bind refused with ESME_RALYBND: more binds than the account's quota (the provider allows 2)",
            )

    def bound(self, account: AccountTrack, track: SessionTrack, time: float, evidence: Evidence) -> None:
        """An accepted bind: remember it; a pending failover in its cluster is done."""
        assert track.bind_type is not None
        account.sessions[track.session_id] = (track.instance, track.bind_type)
        account.instances.add(track.instance)
        events = account.bind_evidence.setdefault(track.instance, [])
        if len(events) < self._context.thresholds.max_evidence:
            events.append(evidence)
        account.bind_count[track.instance] = account.bind_count.get(track.instance, 0) + 1
        account.first_bind.setdefault(track.instance, time)
        account.last_bind[track.instance] = time
        for name, watch in list(account.failovers.items()):
            if watch.cluster == track.cluster:
                if watch.timer is not None and watch.timer.active():
                    watch.timer.cancel()
                del account.failovers[name]

    def ended(self, account: AccountTrack, track: SessionTrack) -> None:
        """A session of the account unbound or closed."""
        account.sessions.pop(track.session_id, None)

    def submitted(self, account: AccountTrack, track: SessionTrack, pdu: PDU, time: float) -> None:
        """A submit that asks for a receipt needs a receiving bind of the account in the cluster."""
        if not pdu.params.get("registered_delivery", 0) & REGISTERED_DELIVERY_RECEIPT_MASK:
            return
        landscape = self._context.landscape
        for instance, bind_type in account.sessions.values():
            if bind_type in _RECEIVING and landscape.cluster_of(instance) == track.cluster:
                return
        self._context.book.record(
            Check.tx_without_rx,
            account.account,
            None,
            None,
            time,
            (evidence_of(pdu, time),),
            f"{pdu.name} asks for a receipt (registered_delivery) but the account has no receiver or "
            f"transceiver bind in cluster {track.cluster}: its receipts queue",
        )

    def single_instance(self, account: AccountTrack) -> list[Finding]:
        """
        The account's single-instance findings as of now: bound on only one
        instance of a cluster that has several.  Derived afresh each time,
        so an ESME that binds the second instance later loses the finding.
        """
        landscape = self._context.landscape
        by_cluster: dict[str, list[str]] = {}
        for instance in sorted(account.instances):
            cluster = landscape.cluster_of(instance)
            if cluster is not None:
                by_cluster.setdefault(cluster, []).append(instance)
        found = []
        for cluster, instances in by_cluster.items():
            members = landscape.members(cluster)
            if len(instances) != 1 or len(members) < 2:
                continue
            [instance] = instances
            evidence = account.bind_evidence.get(instance, [])
            others = ", ".join(m for m in members if m != instance)
            finding = Finding(
                Check.single_instance,
                account.account,
                None,
                instance,
                account.first_bind[instance],
                account.last_bind[instance],
                f"bound only on {instance} of cluster {cluster}; the provider recommends binding to {others} too",
                account.bind_count[instance],
                list(evidence),
            )
            found.append(finding)
        return found

    def outage(self, account: AccountTrack, instance: str, mode: str, time: float) -> None:
        """An instance went out: an account bound only there must be bound in the cluster again in time."""
        if mode not in DROPPING_MODES:
            return
        landscape = self._context.landscape
        cluster = landscape.cluster_of(instance)
        if cluster is None:
            return
        on_instance = [sid for sid, (name, _) in account.sessions.items() if name == instance]
        if not on_instance:
            return
        elsewhere = [
            name
            for name, _ in account.sessions.values()
            if name != instance
            and landscape.cluster_of(name) == cluster
            and self._modes.get(name, "up") not in DOWN_MODES
        ]
        window = self._context.thresholds.failover_window
        if elsewhere or window <= 0 or instance in account.failovers:
            return  # already bound on another instance: it can move its traffic there
        watch = FailoverWatch(instance, cluster, time, Evidence("outage", None, None, time), on_instance[0])
        watch.timer = self._context.clock.callLater(window, self._failover_due, account, watch)
        account.failovers[instance] = watch

    def _failover_due(self, account: AccountTrack, watch: FailoverWatch) -> None:
        watch.timer = None
        if account.failovers.get(watch.instance) is not watch:
            return
        del account.failovers[watch.instance]
        landscape = self._context.landscape
        could_rebind = [m for m in landscape.members(watch.cluster) if self._modes.get(m, "up") not in DOWN_MODES]
        if not could_rebind:
            return  # the whole cluster stayed out: nowhere to go
        now = self._context.clock.seconds()
        self._context.book.record(
            Check.no_failover,
            account.account,
            None,
            watch.instance,
            now,
            (watch.evidence,),
            f"an outage of {watch.instance} dropped the account's binds and within "
            f"{self._context.thresholds.failover_window:g} s it did not bind again in cluster {watch.cluster} "
            f"although {', '.join(could_rebind)} accepted binds",
        )

    def cancel(self, account: AccountTrack) -> None:
        """Stop the account's failover timers (reset)."""
        for watch in account.failovers.values():
            if watch.timer is not None and watch.timer.active():
                watch.timer.cancel()
        account.failovers.clear()
