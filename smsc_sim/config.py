"""
The configuration model: one frozen, typed value built once at start.

It comes from the embedded default (:func:`default_config`), a YAML file,
twistd options and ``SMSC_SIM_*`` environment variables, in that order of
precedence (lowest first); ``smsc_sim.config_loader`` does the reading and
the validation, this module only says what a valid configuration is.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionSettings:
    """
    Timers and limits of every SMPP session (SMPP 3.4 section 7.2).

    Every timer is in seconds; ``0`` switches it off.
    """

    #: a connection that has not bound within this time is closed
    session_init_timeout: float = 30.0
    #: after this long with nothing received, the SMSC sends enquire_link
    enquire_link_interval: float = 30.0
    #: a request the SMSC sent (deliver_sm, enquire_link, unbind) must be answered within this
    response_timeout: float = 10.0
    #: an unbind the SMSC sends (shutdown, outages) waits this long for unbind_resp before closing
    unbind_timeout: float = 2.0
    #: a bound session with nothing received for this long is unbound and closed
    inactivity_timeout: float = 300.0
    #: largest command_length accepted; larger ones get generic_nack ESME_RINVCMDLEN and a close
    max_pdu_size: int = 70_000
    #: most requests from the ESME answered-later at once (delayed by latency); more get ``window_status``
    inbound_window: int = 100
    #: the status for a request beyond the inbound window (ESME_RMSGQFUL)
    window_status: int = 0x14
    #: most deliver_sm written and unanswered per session; the rest wait in order
    outbound_window: int = 10
    #: most deliveries queued behind the outbound window per session
    outbound_queue_limit: int = 10_000
    #: a partially received PDU must be complete within this time, or the connection is closed
    pdu_read_timeout: float = 10.0
    #: a close (FIN) the peer has not completed within this time is turned into a reset (RST): a peer
    #: that stopped reading never takes the last octets, and its bind would stay counted for ever
    close_timeout: float = 5.0


@dataclass(frozen=True)
class OutbindSettings:
    """
    Where and how the SMSC opens a session to an ESME of its own accord (SMPP 3.4 section 2.2.1).

    The SMSC connects to ``endpoint``, sends outbind with ``system_id`` and
    ``password``, and the ESME answers with bind_receiver on that connection.
    """

    #: Twisted client endpoint description of the ESME, e.g. ``tcp:host=127.0.0.1:port=2800``
    endpoint: str
    #: the system_id in the outbind (empty: the account's)
    system_id: str = ""
    #: the password in the outbind (empty: the account's)
    password: str = ""
    #: ``pending``: connect when the account has deliveries waiting and no receiver bound;
    #: ``always``: keep one outbind session up from the start
    when: str = "pending"
    #: the instance the outbind session belongs to (empty: the first configured one)
    instance: str = ""


@dataclass(frozen=True)
class AccountSettings:
    """One ESME account (an SMPP system_id)."""

    system_id: str
    password: str
    #: binds allowed at once across the cluster (the provider's default is 2)
    max_binds: int = 2
    #: messages per second across the cluster; 0 = unlimited (the provider's default is 30)
    throughput: float = 30.0
    #: how ``throughput`` is enforced: ``window`` (at most that many parts in any one-second window,
    #: what a client counting per second sees of the provider's "30 SMS per second") or ``bucket``
    #: (a token bucket of ``burst``: up to burst + rate in the first second after idle)
    throttle_model: str = "window"
    #: token bucket size (``bucket`` model only); 0 = same as ``throughput`` (one second of burst)
    burst: float = 0.0
    #: receipts as ``deliver_sm`` (default) or ``data_sm``
    receipts_as: str = "deliver_sm"
    #: how data_coding 0 is read: ``latin-1`` (what the provider documents) or ``gsm0338``
    default_alphabet: str = "latin-1"
    #: CIDR ranges allowed to bind; empty = any address
    allowed_addresses: tuple[str, ...] = ()
    #: submit_multi distribution lists (dest_flag 2) of this account: list name -> member addresses
    distribution_lists: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    #: the SMSC opens the session itself (outbind) when this is set; None = never
    outbind: OutbindSettings | None = None
    #: whether the account may bind over SMPP at all (the provider enables SMPP per account);
    #: false: every bind gets ESME_RINVSYSID and a log line saying why
    smpp_enabled: bool = True
    #: the receipt text's ``id:``: ``decimal`` (the provider's default) or ``hex`` (the submit_sm_resp
    #: form); the receipted_message_id TLV is unchanged; a scenario's ``receipt.id_format`` other than
    #: decimal wins
    receipt_id_format: str = "decimal"
    #: message ids whose hex form has only the digits 0-9 (``1154801617207301``), so a client that
    #: guesses decimal from the digits misreads them (Kannel's ``msg-id-type`` trap)
    message_id_digits: bool = False
    #: price per accepted part, as the provider writes it in TLV 0x1422 (``0.03330000 EUR``);
    #: empty: the account is not billed (unless it has a balance)
    price: str = ""
    #: prepaid balance at start, in the same form (``10.00000000 EUR``); each accepted part takes
    #: ``price`` off, and a submit it cannot pay is refused (``core.balance_status``); empty: unlimited
    balance: str = ""


@dataclass(frozen=True)
class InstanceSettings:
    """One SMPP instance (a named set of listeners), such as the provider's SMPP1."""

    name: str
    #: Twisted server endpoint descriptions, e.g. ``tcp:2775:interface=127.0.0.1``
    endpoints: tuple[str, ...]
    #: instances with the same cluster name share one core (store, quotas, throttles)
    cluster: str
    #: the system_id the SMSC names itself with in bind_resp
    system_id: str = ""
    #: seconds added to every response on this instance
    latency: float = 0.0
    #: strict protocol checks (refuse enquire_link before bind, bodies on header-only PDUs)
    strict: bool = False
    #: sc_interface_version TLV value in bind_resp
    sc_interface_version: int = 0x34


@dataclass(frozen=True)
class CoreSettings:
    """Behaviour of every cluster core."""

    #: how message ids are made: ``hex16`` (16 upper-case hex digits, the provider's) or ``decimal``
    message_id_format: str = "hex16"
    #: most message records kept; final ones are evicted oldest first, then submits get ESME_RMSGQFUL
    store_max_messages: int = 1_000_000
    #: final records older than this (seconds) are evicted
    store_final_ttl: float = 86_400.0
    #: most deliveries (receipts, MO) waiting for a bind, per cluster
    pending_max: int = 100_000
    #: a waiting delivery older than this (seconds) is dropped and recorded as expired
    pending_expiry: float = 86_400.0
    #: after an abrupt disconnect the bind slot stays taken this long (0 = freed at once)
    ghost_bind_hold: float = 0.0
    #: receipt and MO routing: ``origin`` (the submitting session, else its instance, else any) or ``round-robin``
    routing: str = "origin"
    #: seconds the parts of a concatenated message have to arrive
    reassembly_window: float = 60.0
    #: parts of a message still incomplete when the window closes: ``undeliverable`` (they end
    #: UNDELIVERABLE, as the provider's do, and no part reaches a final state before the message is
    #: complete) or ``deliver`` (each part follows its own receipt plan whatever happens to the others)
    reassembly_incomplete: str = "undeliverable"
    #: validity when the submit gives none (seconds)
    default_validity: float = 172_800.0
    #: cap on relative validity periods (seconds)
    max_validity: float = 604_800.0
    #: cap on relative schedule_delivery_time (seconds)
    max_schedule: float = 1_209_600.0
    #: retries of a deliver_sm answered with a temporary status, or not answered
    delivery_max_attempts: int = 5
    #: first retry after this many seconds, then doubled each time
    delivery_retry_backoff: float = 5.0
    #: destination number prefix -> the network's MCC and MNC (``{"44": "23410"}``), sent as TLV 0x1402;
    #: the longest matching prefix wins; empty: no 0x1402
    networks: dict[str, str] = field(default_factory=dict, hash=False)
    #: 0x1402 in submit_sm_resp / data_sm_resp
    network_in_response: bool = True
    #: 0x1402 in receipts
    network_in_receipt: bool = True
    #: how the vendor TLVs 0x1422, 0x1423 and 0x1402 carry their text: ``cstring`` (with a NUL, as
    #: SMPP's own text TLVs) or ``text`` (the octets alone); the provider does not say
    vendor_tlv_strings: str = "cstring"
    #: MO addresses of digits (no ``+``) up to this many are short codes and go as TON 3 (network
    #: specific) instead of TON 1; 0 = none
    short_code_digits: int = 8
    #: control characters (but LF and CR) in MO text sent as GSM, IA5 or Latin-1: ``gsm`` (the character
    #: the provider's alphabet has at that position, \x01 -> £), ``space``, or ``keep`` (sent raw)
    mo_control_characters: str = "gsm"
    #: the command_status of a submit the account's balance cannot pay (ESME_RSUBMITFAIL: the
    #: provider gives no SMPP status for "no credit")
    balance_status: int = 0x45


@dataclass(frozen=True)
class LimitSettings:
    """
    Bounds on connections and on bind attempts, per process (see docs/reliability.md).

    The connection limits are checked where a connection is accepted, the
    bind ones where a bind is decided (``smsc_sim.limits``); ``0`` switches a
    count limit off.
    """

    #: most open SMPP connections at once, all instances together; more are refused (closed at accept)
    max_connections: int = 10_000
    #: most open SMPP connections at once from one source address; as many as in total by default,
    #: since on a workstation or in CI every ESME comes from one address (lower it on a shared simulator)
    max_connections_per_address: int = 10_000
    #: seconds a failed bind's bind_resp is held back (slows password guessing); 0 = answer at once
    bind_failure_delay: float = 0.0
    #: consecutive failed binds from one address that lock it out; 0 = never
    bind_failure_lockout_after: int = 0
    #: how long (seconds) a locked-out address gets ESME_RBINDFAIL for every bind
    bind_failure_lockout: float = 60.0


@dataclass(frozen=True)
class Config:
    """The whole configuration of one simulator process."""

    instances: tuple[InstanceSettings, ...]
    accounts: tuple[AccountSettings, ...]
    session: SessionSettings = field(default_factory=SessionSettings)
    core: CoreSettings = field(default_factory=CoreSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    #: topology preset (``smsc_sim.presets``): ``default`` (the instances as configured) or ``apac``
    #: (adds the SMPP3/SMPP4 cluster APAC); applied once, after the file and before other overrides
    topology: str = "default"
    #: scenario name (a shipped one) or a path to a YAML file
    scenario: str = "default"
    #: directories the API may load scenarios from (by name or path), besides the shipped
    #: set and the directory of a ``scenario`` given as a path; resolved to absolute paths
    scenario_dirs: tuple[str, ...] = ()
    #: seed for every random choice; None = chosen at start and logged
    seed: int | None = None
    #: endpoint of the HTTP control API; empty = no API
    api_endpoint: str = "tcp:8775:interface=127.0.0.1"
    #: bearer token required by the API (all calls but liveness)
    api_token: str | None = None
    #: ``Host`` names the API answers besides loopback names and IP addresses (a CI
    #: service name such as ``smsc-sim``); ``*`` = any (no DNS-rebinding guard)
    api_allowed_hosts: tuple[str, ...] = ()
    #: log every PDU, decoded
    trace: bool = False
    #: ``memory`` or ``sqlite:PATH``
    store: str = "memory"
    #: where the state shared by the processes of a cluster lives: ``memory`` (one process, the
    #: default) or ``redis://HOST:PORT/DB`` (every cluster of this process, keyed by cluster name;
    #: so far the bind quota, receipts and MO, see docs/cluster.md)
    cluster_store: str = "memory"
    #: the instances this process runs (``--instances SMPP1``), by name; empty = every configured one
    run_instances: tuple[str, ...] = ()
    #: the judge's thresholds (the ``conformance:`` section), checked at load: threshold name -> number;
    #: names not given keep their defaults (see ``smsc_sim.conformance.Thresholds``)
    conformance: dict[str, float] = field(default_factory=dict, hash=False)
    #: where the judge's JUnit XML is written at shutdown (a Markdown summary goes beside it, with
    #: ``.md``); an absolute path; None = no report file
    conformance_report: str | None = None
    #: where the pcap trace of every SMPP connection is written (``--pcap``), an absolute path;
    #: None = no file (see docs/trace.md)
    pcap: str | None = None
    #: the bound of that file in octets: at it, nothing more is written (the file stays a valid
    #: capture) and a warning is logged; 0 = no bound
    pcap_max_bytes: int = 1 << 30
    #: the bound in octets of the trace ring the API's ``trace.pcap`` answers from; None = 16 MiB
    #: when ``pcap`` is set and no ring (no trace at all) when it is not; 0 = no ring
    pcap_ring: int | None = None
    #: whether the judge listens at all; off, its report stays empty and the event bus may stay idle
    #: (benchmarks run without the API and without the judge, so no event is built)
    conformance_judge: bool = True
    #: where the config came from, for messages (a path, or ``<embedded default>``)
    source: str = "<embedded default>"

    def clusters(self) -> dict[str, tuple[InstanceSettings, ...]]:
        """The instances grouped by cluster name, in configuration order."""
        groups: dict[str, list[InstanceSettings]] = {}
        for instance in self.instances:
            groups.setdefault(instance.cluster, []).append(instance)
        return {name: tuple(members) for name, members in groups.items()}


def default_config() -> Config:
    """
    The embedded default: the provider's topology on loopback.

    SMPP1 (2775) and SMPP2 (2776) form the cluster ``NA``; SMPP0 (2777)
    stands alone; one account ``smppclient1`` / ``password``.
    """
    return Config(
        instances=(
            InstanceSettings("SMPP1", ("tcp:2775:interface=127.0.0.1",), cluster="NA", system_id="SMPP1"),
            InstanceSettings("SMPP2", ("tcp:2776:interface=127.0.0.1",), cluster="NA", system_id="SMPP2"),
            InstanceSettings("SMPP0", ("tcp:2777:interface=127.0.0.1",), cluster="SMPP0", system_id="SMPP0"),
        ),
        accounts=(AccountSettings("smppclient1", "password"),),
    )
