"""
The twistd command: ``twistd -n smsc-sim [options]``.

:class:`Options` turns the command line into a validated
:class:`~smsc_sim.config.Config` (through :func:`smsc_sim.config_loader.load_config`,
so the file, ``SMSC_SIM_*`` variables and options layer the same way
everywhere); :func:`makeService` hands it, with the real reactor, to
:func:`smsc_sim.service.build_service`.  This is the one place the global
reactor is imported.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping
from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from smsc_sim.config import Config
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.presets import describe_presets
from smsc_sim.rlimits import raise_open_files
from smsc_sim.signals import install_reload_on_sighup
from smsc_sim.simulator import Simulator
from smsc_sim.trace.wiring import TraceUnavailable, require_dpkt, tracing

__all__ = ["Options", "TwistdOptions", "makeService", "process_gc_policy", "version_line"]

#: The cyclic GC's generation-0 threshold in the twistd process (Python's default is 700).
GC_THRESHOLD0 = 20_000


class Options(usage.Options):
    """
    The options of ``twistd smsc-sim``.

    After :meth:`parseOptions`, :attr:`config` holds the validated
    configuration; any mistake is a :class:`usage.UsageError` carrying the
    loader's message, which twistd prints without a traceback.
    """

    synopsis = "[options]"
    longdesc = (
        "Runs an SMPP 3.4 SMSC simulator modelled on the Vonage SMPP platform: "
        "SMPP1 and SMPP2 (one cluster) and SMPP0 (alone) on 127.0.0.1:2775-2777, "
        "account smppclient1/password, and an HTTP control API on 127.0.0.1:8775. "
        "Settings come from the embedded default, then the --config file, then "
        "SMSC_SIM_* environment variables, then these options. Endpoints are "
        "Twisted server endpoint descriptions, e.g. tcp:2775:interface=0.0.0.0."
    )

    optFlags = [
        ["trace", None, "Log every PDU in and out, decoded ($SMSC_SIM_TRACE)."],
        [
            "no-conformance-judge",
            None,
            "Do not judge the ESMEs' conformance (for benchmarks: no event is then built for it) "
            "($SMSC_SIM_CONFORMANCE_JUDGE=false).",
        ],
    ]
    optParameters: list[list[Any]] = [
        ["config", "c", None, "YAML configuration file ($SMSC_SIM_CONFIG; default: the embedded default)."],
        [
            "smpp1",
            None,
            None,
            "Endpoint of instance SMPP1's first listener, short for --listen SMPP1=ENDPOINT "
            "(default tcp:2775:interface=127.0.0.1).",
        ],
        [
            "smpp2",
            None,
            None,
            "Endpoint of instance SMPP2's first listener, short for --listen SMPP2=ENDPOINT "
            "(default tcp:2776:interface=127.0.0.1).",
        ],
        [
            "smpp0",
            None,
            None,
            "Endpoint of instance SMPP0's first listener, short for --listen SMPP0=ENDPOINT "
            "(default tcp:2777:interface=127.0.0.1).",
        ],
        [
            "api",
            None,
            None,
            "Endpoint of the HTTP control API; '' or 'none' disables it "
            "($SMSC_SIM_API; default tcp:8775:interface=127.0.0.1).",
        ],
        ["api-token", None, None, "Bearer token the control API requires ($SMSC_SIM_API_TOKEN; default: none)."],
        [
            "api-allowed-hosts",
            None,
            None,
            "Comma-separated Host names the control API answers besides loopback and IP addresses, e.g. "
            "smsc-sim for a CI service; '*' allows any ($SMSC_SIM_API_ALLOWED_HOSTS; default: none).",
        ],
        [
            "scenario",
            None,
            None,
            "Scenario: a shipped scenario's NAME or a PATH to a YAML file " "($SMSC_SIM_SCENARIO; default: default).",
        ],
        [
            "scenario-dirs",
            None,
            None,
            "Directories PUT /api/v1/scenario may load scenario files from, besides the shipped set "
            "and the --scenario file's directory; separated by ':' ($SMSC_SIM_SCENARIO_DIRS).",
        ],
        [
            "topology",
            None,
            None,
            "Topology preset: default, or apac to add the SMPP3+SMPP4 cluster APAC on 2778/2779; "
            "'list' prints the presets and exits ($SMSC_SIM_TOPOLOGY; default: default).",
        ],
        ["seed", None, None, "Seed for every random choice, for reproducible runs ($SMSC_SIM_SEED).", int],
        ["store", None, None, "Message store: memory or sqlite:PATH ($SMSC_SIM_STORE; default: memory)."],
        [
            "cluster-store",
            None,
            None,
            "State shared by the processes of a cluster: memory or redis://HOST:PORT/DB, for every "
            "cluster whose instances name none ($SMSC_SIM_CLUSTER_STORE; default: memory; see docs/cluster.md).",
        ],
        [
            "instances",
            None,
            None,
            "Run only these configured instances, comma-separated: SMPP1 ($SMSC_SIM_INSTANCES; default: all).",
        ],
        [
            "conformance-report",
            None,
            None,
            "Write the judge's findings on the ESMEs as JUnit XML to FILE at shutdown, and a Markdown "
            "summary beside it (FILE with .md) ($SMSC_SIM_CONFORMANCE_REPORT; default: none).",
        ],
        [
            "pcap",
            None,
            None,
            "Write every SMPP connection, both directions, connect and close, to FILE as a pcap "
            "for Wireshark; needs the 'trace' extra ($SMSC_SIM_PCAP; default: none).",
        ],
        [
            "pcap-max-bytes",
            None,
            None,
            "Bound of the --pcap file in octets; at it nothing more is written, 0 = none "
            "($SMSC_SIM_PCAP_MAX_BYTES; default: 1073741824).",
            int,
        ],
        [
            "pcap-ring",
            None,
            None,
            "Octets of trace the API's trace.pcap answers from; 0 = none "
            "($SMSC_SIM_PCAP_RING; default: 16777216 with --pcap, else no trace).",
            int,
        ],
    ]

    #: the validated configuration, set by :meth:`postOptions`
    config: Config

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """
        :param environ: the environment to read ``SMSC_SIM_*`` from;
            ``os.environ`` when not given (twistd gives nothing).
        """
        super().__init__()
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self["listen"] = {}
        self["account"] = []

    def opt_version(self) -> None:
        """Print smsc-sim's version and the Twisted and smpp.pdu3 versions it runs with, and exit."""
        print(version_line())
        sys.exit(0)

    def opt_listen(self, value: str) -> None:
        """NAME=ENDPOINT: replace the first listener of instance NAME (any instance). Repeatable."""
        name, sep, endpoint = value.partition("=")
        if not sep or not name or not endpoint:
            raise usage.UsageError(f"--listen wants NAME=ENDPOINT, got {value!r}")
        self["listen"][name.upper()] = endpoint

    def opt_account(self, value: str) -> None:
        """system_id:password of an ESME account. Repeatable; replaces all other accounts ($SMSC_SIM_ACCOUNTS)."""
        if ":" not in value:
            raise usage.UsageError(f"--account wants system_id:password, got {value!r}")
        self["account"].append(value)

    def postOptions(self) -> None:
        """Build and validate the configuration; report any mistake as a usage error."""
        if self["topology"] == "list":
            # like --version: an answer, not a start
            print(describe_presets())
            raise SystemExit(0)
        listen = {name.upper(): self[name] for name in ("smpp1", "smpp2", "smpp0") if self[name] is not None}
        listen.update(self["listen"])
        overrides: dict[str, Any] = {
            "scenario": self["scenario"],
            "scenario_dirs": self["scenario-dirs"],
            "seed": self["seed"],
            "api_endpoint": self["api"],
            "api_token": self["api-token"],
            "api_allowed_hosts": self["api-allowed-hosts"],
            "trace": True if self["trace"] else None,
            "store": self["store"],
            "cluster_store": self["cluster-store"],
            "run_instances": self["instances"],
            "conformance_report": self["conformance-report"],
            "pcap": self["pcap"],
            "pcap_max_bytes": self["pcap-max-bytes"],
            "pcap_ring": self["pcap-ring"],
            "conformance_judge": False if self["no-conformance-judge"] else None,
            "accounts": list(self["account"]) or None,
            "listen": listen or None,
            "topology": self["topology"],
        }
        try:
            self.config = load_config(self["config"], overrides, self._environ)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        # a scenario mistake stops the start with its file, line and key, like a config mistake
        from smsc_sim.scenario.loader import ScenarioError, load_scenario

        try:
            load_scenario(self.config.scenario)
        except ScenarioError as e:
            raise usage.UsageError(str(e)) from None
        if tracing(self.config):
            try:
                require_dpkt()
            except TraceUnavailable as e:
                raise usage.UsageError(str(e)) from None


class TwistdOptions(Options):
    """
    :class:`Options` as ``twistd smsc-sim`` parses them: a mistake is one
    line on standard error and exit status 2, not twistd's page of usage
    (on standard output) followed by the error.
    """

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Parse, or print the mistake as one line on stderr and exit with status 2."""
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            sys.stderr.write(f"twistd smsc-sim: {one_line(str(e))}\n")
            sys.stderr.flush()
            sys.exit(2)


def one_line(message: str) -> str:
    """A message on one line: its lines joined with ``; ``."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip()) or "invalid options"


def version_line() -> str:
    """``smsc-sim 0.1.0 (Twisted 26.10.0, smpp.pdu3 0.6, Python 3.11.7)``."""
    from importlib.metadata import PackageNotFoundError, version

    import twisted

    import smsc_sim

    try:
        pdu3 = version("smpp.pdu3")
    except PackageNotFoundError:  # pragma: no cover - a broken install
        pdu3 = "not installed"
    python = ".".join(map(str, sys.version_info[:3]))
    return f"smsc-sim {smsc_sim.__version__} (Twisted {twisted.__version__}, smpp.pdu3 {pdu3}, Python {python})"


def makeService(options: Options) -> IService:
    """
    Build the simulator's service tree on the real reactor.

    :param options: parsed :class:`Options`.
    :returns: the top :class:`~twisted.application.service.MultiService`.
    """
    from twisted.internet import reactor

    from smsc_sim.service import build_service

    from smsc_sim.cluster.redis.connect import ClusterStoreError
    from smsc_sim.durable.schema import StoreError
    from smsc_sim.trace.wiring import TraceError

    try:
        simulator = build_service(options.config, reactor)
    except (StoreError, TraceError, ClusterStoreError) as e:
        # a store, a cluster store or a pcap file that cannot be used is a start-up mistake: one line, no traceback
        raise SystemExit(f"twistd: {e}") from None
    process_gc_policy(simulator)
    # every connection is a file: let limits.max_connections, not the shell's default of 1024, bound them
    max_connections = options.config.limits.max_connections
    raise_open_files(max_connections + 256 if max_connections else 1 << 20)
    install_reload_on_sighup(simulator, reactor)
    service: IService = simulator
    return service


def process_gc_policy(simulator: Simulator) -> None:
    """
    The garbage-collector policy of a simulator that owns its process.

    Process-wide settings, so they belong here (the twistd form, and the
    container, which runs it) and never in :class:`~smsc_sim.simulator.Simulator`
    itself, which tests and fixtures embed in other processes:

    - the message store is frozen out of the cyclic collector as it grows
      (:class:`~smsc_sim.gc_freezer.GCFreezer`): no full collection walks a
      million records, the pauses that made the latency tail;
    - generation 0 is collected every :data:`GC_THRESHOLD0` allocations
      instead of 700: a submit allocates a few dozen container objects that
      mostly die by reference counting, so the default collects far more
      often than anything cyclic appears.

    ``bench/run.py --profile`` applies the same policy to the profiled process.
    """
    _, threshold1, threshold2 = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD0, threshold1, threshold2)
    simulator.freeze_gc()
