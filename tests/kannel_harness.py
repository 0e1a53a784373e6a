"""
Run a real Kannel (bearerbox + smsbox) against a simulator inside the test
process, for the end-to-end tests of ``tests/test_kannel.py``.

The Kannel configuration is ``examples/kannel/kannel.conf.template`` (the
same file the example script fills in), rendered with free ports on
127.0.0.1.  Kannel runs as two child processes of the test's reactor; every
wait is bounded, and :meth:`Kannel.stop` always ends them (TERM, then KILL).

The simulator binds ephemeral ports itself (``tcp:0``), but Kannel needs
its admin, smsbox and sendsms port numbers in its configuration, picked
free before it starts; on a shared machine another process can take one
meanwhile.  A box that could not bind says so on its console ("bind
failed", "Address already in use"): :meth:`Kannel.start` reports that line
and starts again on new ports, a bounded number of times.  The admin
password is unique per run, so the status page that answers is this
bearerbox's, never another run's on a port taken from under it.

Nothing here skips: a missing Kannel is a :class:`KannelError` telling how
to install it (``scripts/install-kannel.sh``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import socket
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, TypeVar
from urllib.parse import urlencode

import treq
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "examples" / "kannel" / "kannel.conf.template"
#: where Debian and most builds put the boxes, searched after $PATH
EXTRA_PATHS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin")
_PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")
#: starts of Kannel tried, each on new ports, while a box logs that a port was taken from under it
START_ATTEMPTS = 3
#: seconds each request of a start's polls may take: a port taken from under a box may belong to a listener
#: that accepts and never answers, and the poll must look at the boxes' consoles again soon
PROBE_TIMEOUT = 2.0
#: what a box writes to its console when it cannot bind a port: bearerbox goes on without its admin port (or
#: exits, for its smsbox port), smsbox exits (its sendsms port)
_BIND_FAILED = re.compile(r"^.*(?:bind failed|Address already in use|Could not open smsbox port"
                          r"|Failed to open HTTP socket).*$", re.MULTILINE)  # fmt: skip


class KannelError(AssertionError):
    """Kannel is missing, did not start, or did not do what a test waited for."""


class PortTaken(KannelError):
    """A box could not bind a port picked for it (another process took it): the start is tried again."""


def find_kannel() -> tuple[str, str]:
    """
    The paths of bearerbox and smsbox.

    :raises KannelError: when either is missing, saying how to install them.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_PATHS])
    bearerbox, smsbox = (shutil.which(name, path=search) for name in ("bearerbox", "smsbox"))
    if bearerbox is None or smsbox is None:
        raise KannelError(
            "Kannel's bearerbox/smsbox were not found (searched $PATH and "
            f"{', '.join(EXTRA_PATHS)}). The Kannel end-to-end tests need Kannel 1.4.x: "
            "run `sudo scripts/install-kannel.sh` (Debian/Ubuntu: apt-get install kannel), "
            "or deselect them with `-m 'not kannel'`."
        )
    return bearerbox, smsbox


def render(template: str, values: Mapping[str, object]) -> str:
    """
    Fill every ``@NAME@`` placeholder of a template.

    :raises KeyError: naming a placeholder with no value.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for placeholder @{name}@ of {TEMPLATE}")
        return str(values[name])

    return _PLACEHOLDER.sub(value, template)


def free_port() -> int:
    """
    A TCP port of 127.0.0.1 free right now, for Kannel, which needs port numbers in its configuration (the
    simulator binds ``tcp:0`` instead): another process may take it before Kannel binds it, which
    :meth:`Kannel.start` detects and retries.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def poll(reactor: Any, check: Callable[[], Awaitable[T | None]], timeout: float, what: str,
               alive: Callable[[], str | None] = lambda: None, interval: float = 0.1) -> T:
    """
    Call ``check`` until it returns something other than None (exceptions
    count as None), at most ``timeout`` seconds.

    Kannel publishes no event a test could wait on for "bound" or "HTTP
    port open", so this bounded poll is the one real-time wait here.

    :param alive: returns a reason when the awaited process has died, to
        fail at once instead of at the deadline.
    :raises KannelError: on timeout or death, naming ``what`` (or what ``alive`` raises).
    """
    deadline = reactor.seconds() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = await check()
        except Exception as error:  # connection refused while starting, and the like
            result, last = None, error
        if result is not None:
            return result
        dead = alive()
        if dead:
            raise KannelError(f"while waiting for {what}: {dead}")
        if reactor.seconds() >= deadline:
            detail = f" (last error: {last!r})" if last is not None else ""
            raise KannelError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        await deferLater(reactor, interval, lambda: None)


# ----------------------------------------------------------------------
# status page
# ----------------------------------------------------------------------


@dataclass(frozen=True)
class SMSCStatus:
    """One ``<smsc>`` of bearerbox's status.xml."""

    admin_id: str
    smsc_id: str
    status: str  # "online 12s", "re-connecting", "connecting", "dead", ...
    sms_received: int
    sms_sent: int
    dlr_received: int
    failed: int
    queued: int

    @property
    def online(self) -> bool:
        """Whether bearerbox reports the bind as up."""
        return self.status.startswith("online")


@dataclass(frozen=True)
class KannelStatus:
    """What bearerbox's status.xml says."""

    smscs: dict[str, SMSCStatus]
    boxes: tuple[str, ...]  # types of the connected boxes, e.g. ("smsbox",)
    sms_sent: int
    sms_received: int
    dlr_received: int

    @classmethod
    def parse(cls, xml: bytes) -> KannelStatus:
        """Read status.xml (the admin page ``/status.xml``)."""
        root = ElementTree.fromstring(xml)

        def number(node: ElementTree.Element | None, path: str) -> int:
            found = node.find(path) if node is not None else None
            return int(found.text or 0) if found is not None and found.text else 0

        smscs = {}
        for node in root.iter("smsc"):
            status = SMSCStatus(
                admin_id=node.findtext("admin-id", ""),
                smsc_id=node.findtext("id", ""),
                status=node.findtext("status", ""),
                sms_received=number(node, "sms/received"),
                sms_sent=number(node, "sms/sent"),
                dlr_received=number(node, "dlr/received"),
                failed=number(node, "failed"),
                queued=number(node, "queued"),
            )
            smscs[status.admin_id or status.smsc_id] = status
        boxes = tuple(box.findtext("type", "") for box in root.iter("box"))
        return cls(
            smscs=smscs,
            boxes=boxes,
            sms_sent=number(root, "sms/sent/total"),
            sms_received=number(root, "sms/received/total"),
            dlr_received=number(root, "dlr/received/total"),
        )


# ----------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------


class _Box(ProcessProtocol):
    """One Kannel box; remembers how it ended."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ended: Failure | None = None

    def processEnded(self, reason: Failure) -> None:  # noqa: N802 (Twisted's name)
        self.ended = reason

    @property
    def running(self) -> bool:
        return self.ended is None and self.transport is not None


@dataclass(frozen=True)
class KannelSettings:
    """What the template needs besides ports Kannel picks for itself."""

    smpp1: tuple[str, int]
    smpp2: tuple[str, int]
    smpp0: tuple[str, int]
    user: str
    password: str
    dlr_url: str
    mo_url: str
    #: extra lines for both smsc groups, e.g. ``msg-id-type = 0x01``
    smsc_extra: str = ""
    smsc_id: str = "vonage"
    reconnect_delay: int = 2
    #: 0 logs every PDU (what a failing test wants to read)
    log_level: int = 0
    sendsms_user: str = "tester"
    sendsms_password: str = "testpass"
    admin_password: str = "adminpass"


@dataclass
class Kannel:
    """
    bearerbox and smsbox running on free ports of 127.0.0.1.

    :param reactor: spawns the boxes and times the waits.
    :param workdir: gets ``kannel.conf`` and every log.
    """

    reactor: Any
    workdir: Path
    settings: KannelSettings
    admin_port: int = field(default_factory=free_port)
    smsbox_port: int = field(default_factory=free_port)
    sendsms_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.bearerbox_path, self.smsbox_path = find_kannel()
        self.boxes: dict[str, _Box] = {}
        self.config_path = self.workdir / "kannel.conf"
        # unique to this run: another run's bearerbox on a port taken from under ours answers 403, not 200
        self.admin_password = f"{self.settings.admin_password}-{secrets.token_hex(8)}"
        #: the bind failures of earlier starts, one line each (empty when the first start bound every port)
        self.port_failures: list[str] = []

    # -- configuration ---------------------------------------------------

    def values(self) -> dict[str, object]:
        """The template's placeholders for these settings."""
        s = self.settings
        return {
            "ADMIN_PORT": self.admin_port,
            "ADMIN_PASSWORD": self.admin_password,
            "SMSBOX_PORT": self.smsbox_port,
            "SENDSMS_PORT": self.sendsms_port,
            "SENDSMS_USER": s.sendsms_user,
            "SENDSMS_PASSWORD": s.sendsms_password,
            "LOG_DIR": str(self.workdir),
            "LOG_LEVEL": s.log_level,
            "SMSC_ID": s.smsc_id,
            "SMPP_HOST": s.smpp1[0],
            "SMPP1_PORT": s.smpp1[1],
            "SMPP2_PORT": s.smpp2[1],
            "SMPP0_PORT": s.smpp0[1],
            "SMPP_USER": s.user,
            "SMPP_PASSWORD": s.password,
            "RECONNECT_DELAY": s.reconnect_delay,
            "SMSC_EXTRA": s.smsc_extra,
            "DLR_URL": s.dlr_url,
            "MO_URL": s.mo_url,
        }

    def write_config(self) -> Path:
        """Render the template into ``workdir/kannel.conf``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(TEMPLATE.read_text(), self.values()))
        return self.config_path

    # -- lifecycle -------------------------------------------------------

    async def start(self, online: tuple[str, ...] = ("SMPP1", "SMPP2"), timeout: float = 20.0) -> None:
        """
        Start bearerbox, then smsbox, and wait until the smsc groups named
        (by smsc-admin-id) are online and sendsms answers.

        A box that logs it could not bind one of its ports (picked free a
        moment before, and taken by another process meanwhile) is stopped
        and both are started again on new ports, up to
        :data:`START_ATTEMPTS` times in all; each such failure is printed
        and kept in :attr:`port_failures`.

        :raises KannelError: naming every bind failure, when no attempt bound all the ports.
        """
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self._start_once(online, timeout)
                return
            except PortTaken as taken:
                failure = f"start {attempt} of {START_ATTEMPTS}: {taken}"
                self.port_failures.append(failure)
                print(f"kannel_harness: {failure}", file=sys.stderr)  # pytest shows it with a failure
                await self.stop(timeout=1.0)  # a box that failed its start may linger on TERM; nothing to keep
                self._set_aside(attempt)
                self.admin_port, self.smsbox_port, self.sendsms_port = free_port(), free_port(), free_port()
        raise KannelError(f"Kannel could not bind its ports in {START_ATTEMPTS} starts, each on new ports:\n"
                          + "\n".join(self.port_failures))  # fmt: skip

    def _set_aside(self, attempt: int) -> None:
        """Keep a failed start's consoles as ``NAME.console.N``, so the next start's consoles begin empty."""
        for name in self.boxes:
            console = self.workdir / f"{name}.console"
            if console.exists():
                console.rename(self.workdir / f"{name}.console.{attempt}")
        self.boxes = {}

    async def _start_once(self, online: tuple[str, ...], timeout: float) -> None:
        """One start on the current ports; :class:`PortTaken` when a box could not bind one."""
        self.write_config()
        self._spawn("bearerbox", self.bearerbox_path)
        await poll(self.reactor, self._admin_up, timeout, "bearerbox's admin port", self._death)
        self._spawn("smsbox", self.smsbox_path)

        async def ready() -> bool | None:
            status = await self.status(timeout=PROBE_TIMEOUT)
            # smsbox opens its sendsms port before it connects to bearerbox (or exits when it cannot): connected
            # to this bearerbox (the unique password proves it is this one), it holds the sendsms port too
            if "smsbox" not in status.boxes:
                return None
            if not all(name in status.smscs and status.smscs[name].online for name in online):
                return None
            code, _ = await self._get(f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms", PROBE_TIMEOUT)
            return True if code else None

        await poll(self.reactor, ready, timeout, f"smsbox and the binds {', '.join(online)} online", self._death)

    def _spawn(self, name: str, executable: str) -> None:
        box = _Box(name)
        # console output (warnings and worse, -v 2) next to the log files
        with open(self.workdir / f"{name}.console", "ab") as console:
            self.reactor.spawnProcess(
                box,
                executable,
                [executable, "-v", "2", str(self.config_path)],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                path=str(self.workdir),
                childFDs={0: "w", 1: console.fileno(), 2: console.fileno()},
            )
        self.boxes[name] = box

    def _death(self) -> str | None:
        """
        Why the start cannot succeed: a box that ended; None while both may still come up.

        :raises PortTaken: with the console line, when a box could not bind a port (whether it ended or not:
            bearerbox without its admin port goes on running).
        """
        for box in self.boxes.values():
            console = self.log(f"{box.name}.console")
            failed = _BIND_FAILED.findall(console)
            if failed:
                ports = f"admin {self.admin_port}, smsbox {self.smsbox_port}, sendsms {self.sendsms_port}"
                raise PortTaken(f"{box.name} could not bind a port ({ports}): {' / '.join(failed)}")
        for box in self.boxes.values():
            if box.ended is not None:
                return f"{box.name} exited ({box.ended.value}); its console:\n{self.tail(box.name + '.console', 15)}"
        return None

    async def _admin_up(self) -> bool | None:
        code, _ = await self._get(self.admin_url("status.xml"), PROBE_TIMEOUT)
        return True if code == 200 else None

    async def stop(self, timeout: float = 10.0) -> None:
        """End smsbox, then bearerbox: TERM, and KILL after ``timeout`` seconds. Never raises."""
        for name in ("smsbox", "bearerbox"):
            box = self.boxes.get(name)
            if box is None or not box.running:
                continue
            for signal_name, wait in (("TERM", timeout), ("KILL", 5.0)):
                try:
                    assert box.transport is not None
                    box.transport.signalProcess(signal_name)
                except Exception:  # already gone
                    break
                try:
                    await poll(self.reactor, lambda: _done(box), wait, f"{name} to exit", interval=0.05)
                    break
                except KannelError:
                    continue

    # -- HTTP ------------------------------------------------------------

    def admin_url(self, command: str, **args: str) -> str:
        """A URL of bearerbox's admin interface, password included."""
        query = urlencode({"password": self.admin_password, **args})
        return f"http://127.0.0.1:{self.admin_port}/{command}?{query}"

    async def _get(self, url: str, timeout: float = 10.0) -> tuple[int, bytes]:
        # no persistent connections: nothing left open when the test ends
        response = await treq.get(url, persistent=False, reactor=self.reactor, timeout=timeout)
        return response.code, await response.content()

    async def status(self, timeout: float = 10.0) -> KannelStatus:
        """bearerbox's status page, parsed."""
        code, body = await self._get(self.admin_url("status.xml"), timeout)
        if code != 200:
            raise KannelError(f"status.xml answered {code}: {body[:200]!r}")
        return KannelStatus.parse(body)

    async def admin(self, command: str, **args: str) -> bytes:
        """Run an admin command (``stop-smsc``, ``start-smsc``...); returns the page."""
        _, body = await self._get(self.admin_url(command, **args))
        return body

    async def sendsms(self, **params: str | bytes) -> tuple[int, str]:
        """
        Call smsbox's ``/cgi-bin/sendsms`` with this user's credentials.

        ``bytes`` values go on the URL as they are (percent-encoded), for
        ``charset=ISO-8859-1`` text.
        """
        query = urlencode(
            {"username": self.settings.sendsms_user, "password": self.settings.sendsms_password, **params}
        )
        code, body = await self._get(f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?{query}")
        return code, body.decode("utf-8", "replace")

    async def send_text(self, to: str, text: str, dlr_mask: str = "17", charset: str = "ISO-8859-1",
                        sender: str = "test", **params: str) -> None:
        """
        Send ``text`` encoded in ``charset`` through sendsms.

        :raises KannelError: unless smsbox accepts it (``0: Accepted for delivery``).
        """
        code, body = await self.sendsms(
            to=to, text=text.encode(charset), charset=charset, **{"from": sender, "dlr-mask": dlr_mask}, **params
        )
        if (code, body.strip()) != (202, "0: Accepted for delivery"):
            raise KannelError(f"sendsms to {to} answered {code} {body.strip()!r}")

    # -- diagnostics -----------------------------------------------------

    def log(self, name: str = "bearerbox.log") -> str:
        """A log file of the run ('' when missing)."""
        path = self.workdir / name
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a log file."""
        return "\n".join(self.log(name).splitlines()[-lines:])

    def problems(self, limit: int = 40) -> str:
        """bearerbox's and smsbox's ERROR/WARNING/PANIC lines (what a failing test should show)."""
        found: list[str] = []
        for box in ("bearerbox", "smsbox"):
            # the console repeats the log file; it matters when the box died before opening its log
            name = f"{box}.log" if self.log(f"{box}.log") else f"{box}.console"
            for line in self.log(name).splitlines():
                if re.search(r"\] (ERROR|WARNING|PANIC):", line):
                    found.append(f"{name}: {line}")
        return "\n".join(found[-limit:]) or "(no errors or warnings logged)"

    def unmatched_receipts(self) -> list[str]:
        """
        bearerbox's "got DLR but could not find message" lines.

        :raises AssertionError: when bearerbox wrote no log: no lines would
            otherwise pass for "every receipt matched".
        """
        path = self.workdir / "bearerbox.log"
        assert path.exists() and path.stat().st_size > 0, f"bearerbox wrote no log at {path}"
        return [line for line in self.log().splitlines() if "could not find message" in line]


async def _done(box: _Box) -> bool | None:
    return True if box.ended is not None else None


def with_port(config: Any) -> Any:
    """
    A simulator config whose every instance listens on one ephemeral port
    of 127.0.0.1 (``tcp:0``, bound by the simulator itself), without the
    HTTP API.

    An instance whose outage ends listens again on the port it first bound
    (the simulator pins it), where Kannel reconnects; a number picked free
    here instead could be taken by another process before the simulator
    binds it.
    """
    instances = tuple(
        dataclasses.replace(instance, endpoints=("tcp:0:interface=127.0.0.1",)) for instance in config.instances
    )
    return dataclasses.replace(config, instances=instances, api_endpoint="")



class Rig:
    """
    A simulator (real TCP on ephemeral ports of 127.0.0.1), an HTTP sink for
    Kannel's dlr-url and sms-service calls, and Kannel bound to SMPP1 and
    SMPP2 — started by ``async with``, always stopped on the way out.  When
    the block raises, the exception gets Kannel's errors and warnings as a note.

    :param config: the simulator's configuration (endpoints are replaced by
        ephemeral ones); the embedded default when not given.
    :param smsc_extra: extra lines for both of Kannel's smsc groups.
    :param reconnect_delay: Kannel's ``reconnect-delay``; ``examples/kannel/kannel.sh``
        writes 5, the shorter default keeps the other tests quick.
    """

    def __init__(self, reactor: Any, workdir: Path, config: Any = None, smsc_extra: str = "",
                 account: tuple[str, str] | None = None, reconnect_delay: int = 2) -> None:
        from smsc_sim.config import default_config

        from tests.http_sink import HTTPSink

        self.reactor = reactor
        self.workdir = workdir
        self.config = with_port(config if config is not None else default_config())
        self.account = account or (self.config.accounts[0].system_id, self.config.accounts[0].password)
        self.smsc_extra = smsc_extra
        self.reconnect_delay = reconnect_delay
        self.sink = HTTPSink(reactor)
        self.simulator: Any = None
        self._kannel: Kannel | None = None

    @property
    def kannel(self) -> Kannel:
        """The running Kannel (inside the ``async with`` block)."""
        if self._kannel is None:
            raise KannelError("Kannel is not started")
        return self._kannel

    async def __aenter__(self) -> Rig:
        from smsc_sim.service import build_service

        base = await self.sink.start()
        try:
            self.simulator = build_service(self.config, self.reactor)
            self.simulator.startService()
            await self.simulator.when_listening()
            ports = {name: addresses[0] for name, addresses in self.simulator.endpoints().items()}
            self._kannel = Kannel(
                self.reactor,
                self.workdir,
                KannelSettings(
                    smpp1=ports["SMPP1"],
                    smpp2=ports["SMPP2"],
                    smpp0=ports.get("SMPP0", ports["SMPP1"]),
                    user=self.account[0],
                    password=self.account[1],
                    dlr_url=f"{base}/dlr",
                    mo_url=f"{base}/mo",
                    smsc_extra=self.smsc_extra,
                    reconnect_delay=self.reconnect_delay,
                ),
            )
            await self._kannel.start()
        except BaseException as error:
            await self.__aexit__(type(error), error, None)
            raise
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self._kannel is not None:
            diagnostics = f"Kannel's problems (logs in {self.workdir}):\n{self._kannel.problems()}"
            add_note = getattr(exc, "add_note", None)  # Python 3.11+
            if add_note is not None:
                add_note(diagnostics)
            else:  # pytest shows captured output of a failed test
                print(diagnostics, file=sys.stderr)
        if self._kannel is not None:
            await self._kannel.stop()
        if self.simulator is not None and self.simulator.running:
            await self.simulator.stopService()
        await self.sink.stop()

    def core(self, instance: str = "SMPP1") -> Any:
        """The core behind an instance (SMPP1 and SMPP2 share one)."""
        return self.simulator.instance(instance).core

    def records(self, destination: str, instance: str = "SMPP1") -> list[Any]:
        """The simulator's MT message records for one destination, oldest first."""
        return self.core(instance).messages(destination=destination, direction="mt", limit=None)

    def dlrs(self, to: str, kind: str | None = None) -> Callable[[Any], bool]:
        """A sink predicate: dlr-url calls for messages sent to ``to`` (``+`` and all), of one DLR type."""
        return lambda r: r.path == "/dlr" and r.get("from") == to and (kind is None or r.get("type") == kind)
