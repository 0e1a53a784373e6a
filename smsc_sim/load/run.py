"""
One load run: its connections, its counters, when to send and when to stop,
and its JSON result.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import asdict
from typing import IO, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall

from smsc_sim.load.esme import ESMEFactory, ESMEProtocol
from smsc_sim.load.settings import UNIQUE_DIGITS, LoadSettings, submit_template, unique_offsets
from smsc_sim.smpp.constants import status_name

__all__ = ["LoadRun", "run_load"]

#: how often the enquire_link sweep runs; each sweep sends to one slice of the sessions
_ENQUIRE_SWEEP = 0.1


class LoadRun:
    """
    One run: its connections, its counters, and when to send and when to stop.

    Phases: ``binding`` (until every connection is bound or gone, or the
    response timeout), ``sending`` (until the count, the duration or the last
    submitting session), ``draining`` (the last submit_sm_resp, within the
    response timeout), ``receipts`` (the missing receipts, within the receipt
    timeout), ``unbinding`` (until every connection is closed).

    :param reactor: connects (``connectTCP``) and keeps time.
    :param settings: what to run.
    :param progress: where progress lines go (``None``: nowhere).
    """

    def __init__(self, reactor: Any, settings: LoadSettings, progress: IO[str] | None = None) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.settings = settings
        self.template = submit_template(settings)
        self.unique_offsets = unique_offsets(settings) if settings.unique else None
        self._unique_counter = 0
        self.phase = "binding"
        self._progress = progress
        #: every connection made; ``bound`` those bound and still up
        self.connected: list[ESMEProtocol] = []
        self.bound: list[ESMEProtocol] = []
        self.connections = 0
        self.sending = False
        self.in_flight = self.submitted = self.responses = self.accepted = self.unanswered = 0
        self.receipts = self.receipts_unmatched = self.mo = self.enquire_links = self.sessions_bound = 0
        # float32 seconds: microsecond precision, half the memory of a long run's samples
        self.latencies = array("f")
        self.enquire_links_sent = 0
        self.enquire_latencies = array("f")
        self.enquire_link_errors = 0
        # connections not opened yet, and how many are opening or binding now
        self._to_connect: deque[tuple[str, int, str]] = deque()
        self._connecting = 0
        self._enquirer: LoopingCall | None = None
        self._sweep = 0
        self.errors: dict[str, int] = {}
        self.session_errors: dict[str, int] = {}
        self._awaiting: set[str] = set()
        self._early: set[str] = set()
        self._credit = self._refilled = 0.0
        self.started = self.last_response = self.last_receipt = self.first_mo = self.last_mo = 0.0
        self._deadline: IDelayedCall | None = None
        self._ticker: LoopingCall | None = None
        self._last_line = (0.0, 0)
        self.done: Deferred[dict[str, Any]] = Deferred()

    def _set_deadline(self, seconds: float, then: Any) -> None:
        """Replace the phase's deadline."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = self.clock.callLater(seconds, then) if seconds > 0 else None

    # -- binding -------------------------------------------------------------

    def start(self) -> Deferred[dict[str, Any]]:
        """Connect every session; the result fires once every connection is closed."""
        s = self.settings
        roles = ["trx"] if s.bind == "trx" else ["tx", "rx"]
        self.connections = s.sessions * len(roles)
        for i in range(s.sessions):
            host, port = s.targets[i % len(s.targets)]
            for role in roles:
                self._to_connect.append((host, port, role))
        self._connect_more()
        self._set_deadline(s.response_timeout, self._begin)
        return self.done

    def _connect_more(self) -> None:
        """Open connections while fewer than ``connect_concurrency`` are opening or binding."""
        s = self.settings
        while self._to_connect and self._connecting < s.connect_concurrency and self.phase != "unbinding":
            host, port, role = self._to_connect.popleft()
            self._connecting += 1
            self.reactor.connectTCP(host, port, ESMEFactory(self, role), timeout=s.response_timeout)

    def connect_settled(self, protocol: ESMEProtocol | None) -> None:
        """A connection bound, was refused or failed: open the next, and give binding another timeout."""
        if protocol is not None:
            if protocol.settled:
                return
            protocol.settled = True
        self._connecting -= 1
        if self.phase == "binding":
            # binding ends when every connection is bound or gone, or when none settles for a timeout
            self._set_deadline(self.settings.response_timeout, self._begin)
        self._connect_more()

    def session_bound(self, protocol: ESMEProtocol) -> None:
        """A connection is bound; sending begins once every connection is bound or gone."""
        self.bound.append(protocol)
        if self.phase == "unbinding":  # bound after the end (a slow connect): unbind it too
            protocol.unbind()
        elif self.phase == "sending":
            protocol.fill()
        elif self.phase == "binding" and len(self.bound) == self.connections:
            self._begin()

    def _begin(self) -> None:
        """Start sending on every bound session."""
        if self.phase != "binding":
            return
        self.phase = "sending"
        s = self.settings
        self.started = self._refilled = self.last_response = self.clock.seconds()
        self.sessions_bound = sum(1 for p in self.bound if p.submits or (s.listen_only and p.role != "tx"))
        if not self.sessions_bound:
            self.session_error("no session bound")
            self._finish()
            return
        self.sending = True
        self._set_deadline(s.duration, self._stop_sending)
        self._ticker = LoopingCall(self._tick)
        self._ticker.clock = self.clock
        self._ticker.start(0.005 if s.rate else 0.1, now=False)
        if s.enquire_link > 0:
            self._enquirer = LoopingCall(self._enquire_sweep)
            self._enquirer.clock = self.clock
            self._enquirer.start(_ENQUIRE_SWEEP, now=False)
        for protocol in self.bound:
            protocol.fill()

    def _enquire_sweep(self) -> None:
        """Send enquire_link on one slice of the bound sessions: each session once per ``--enquire-link`` seconds."""
        slices = max(1, round(self.settings.enquire_link / _ENQUIRE_SWEEP))
        turn = self._sweep % slices
        self._sweep += 1
        for protocol in self.bound[turn::slices]:
            protocol.enquire_link()

    def enquire_link_answered(self, sent: float, status: int) -> None:
        """Account for one enquire_link_resp."""
        self.enquire_latencies.append(self.clock.seconds() - sent)
        if status:
            self.enquire_link_errors += 1

    # -- the per-message path ------------------------------------------------

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` submits may go now (rate credit, count)."""
        if not self.sending:
            return 0
        s = self.settings
        if s.count:
            wanted = min(wanted, s.count - self.submitted)
        if s.rate:
            now = self.clock.seconds()
            # at most 50 ms worth of credit, so that a stall is not followed by a burst
            self._credit = min(self._credit + (now - self._refilled) * s.rate, max(1.0, s.rate * 0.05))
            self._refilled = now
            wanted = min(wanted, int(self._credit))
            self._credit -= wanted
        if wanted <= 0:
            return 0
        self.submitted += wanted
        self.in_flight += wanted
        if s.count and self.submitted >= s.count:
            self._stop_sending()
        return wanted

    def next_unique(self) -> int:
        """The counter --unique writes into the next message (round again after 10**8)."""
        self._unique_counter = (self._unique_counter + 1) % 10**UNIQUE_DIGITS
        return self._unique_counter

    def response(self, sent: float, status: int, message_id: str | None) -> None:
        """Account for one submit_sm_resp."""
        now = self.clock.seconds()
        self.latencies.append(now - sent)
        self.responses += 1
        self.in_flight -= 1
        self.last_response = now
        if status:
            self.status(status)
        else:
            self.accepted += 1
            if message_id is not None and self.settings.receipts:
                if message_id in self._early:
                    self._early.discard(message_id)
                    self._count_receipt(now)
                else:
                    self._awaiting.add(message_id)
        if not self.sending:
            self._check_done()

    def receipt(self, message_id: str | None) -> None:
        """Account for one receipt; one that beats its submit_sm_resp waits for it."""
        if message_id is not None and message_id in self._awaiting:
            self._awaiting.discard(message_id)
            self._count_receipt(self.clock.seconds())
        elif message_id is not None and self.in_flight > 0:
            self._early.add(message_id)
        else:
            self.receipts_unmatched += 1

    def _count_receipt(self, now: float) -> None:
        self.receipts += 1
        self.last_receipt = now
        if self.phase == "receipts" and not self._awaiting:
            self._finish()

    def mo_received(self) -> None:
        """Count one MO (a deliver_sm or data_sm that is not a receipt)."""
        self.last_mo = self.clock.seconds()
        if not self.mo:
            self.first_mo = self.last_mo
        self.mo += 1

    def nacked(self) -> None:
        """A submit_sm answered with generic_nack."""
        self.in_flight -= 1
        if not self.sending:
            self._check_done()

    def status(self, status: int, prefix: str = "") -> None:
        """Count an error status by name."""
        key = prefix + status_name(status)
        self.errors[key] = self.errors.get(key, 0) + 1

    def session_error(self, what: str) -> None:
        """Count a session-level problem (connect, bind, lost connection)."""
        self.session_errors[what] = self.session_errors.get(what, 0) + 1

    # -- stopping ------------------------------------------------------------

    def _tick(self) -> None:
        """Refill the windows the rate held back; print progress when due."""
        if self.sending and self.settings.rate:
            for protocol in self.bound:
                if protocol.submits:
                    protocol.fill()
        interval, stream = self.settings.progress, self._progress
        if interval and stream is not None:
            now = self.clock.seconds()
            last_time, last_count = self._last_line
            since = now - max(last_time, self.started)
            if since >= interval:
                self._last_line = (now, self.responses)
                stream.write(
                    f"[{now - self.started:7.1f}s] {self.phase}: submitted {self.submitted} answered "
                    f"{self.responses} ({(self.responses - last_count) / since:.0f}/s) receipts {self.receipts} "
                    f"mo {self.mo} errors {sum(self.errors.values())} outstanding {self.in_flight}\n"
                )
                stream.flush()

    def _stop_sending(self) -> None:
        """No more submits: wait for the responses (then the receipts)."""
        if not self.sending:
            return
        self.sending = False
        self.phase = "draining"
        self._set_deadline(self.settings.response_timeout, self._responses_overdue)
        self._check_done()

    def _responses_overdue(self) -> None:
        """Give up on the missing submit_sm_resp."""
        self.unanswered += self.in_flight
        self.in_flight = 0
        for protocol in self.bound:
            protocol.outstanding.clear()
        self._check_done()

    def _check_done(self) -> None:
        """Move from draining to waiting for receipts to unbinding, as each is satisfied."""
        if self.phase != "draining" or self.in_flight > 0:
            return
        if self.settings.receipts and self._awaiting:
            self.phase = "receipts"
            self._set_deadline(self.settings.receipt_timeout, self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        """Unbind every connection; the result fires when the last one is closed."""
        if self.phase == "unbinding":
            return
        self.phase = "unbinding"
        self.sending = False
        self._set_deadline(0, None)
        for ticker in (self._ticker, self._enquirer):
            if ticker is not None and ticker.running:
                ticker.stop()
        self.connections -= len(self._to_connect)  # never opened
        self._to_connect.clear()
        for protocol in list(self.connected):
            protocol.unbind()
        self._maybe_done()

    def connection_done(self, protocol: ESMEProtocol | None) -> None:
        """A connection closed (or never opened)."""
        self.connections -= 1
        if protocol is not None and protocol in self.bound:
            self.bound.remove(protocol)
            self.in_flight -= len(protocol.outstanding)
            if self.phase != "unbinding":
                self.unanswered += len(protocol.outstanding)
            protocol.outstanding.clear()
        if self.phase == "binding" and len(self.bound) == self.connections:
            self._begin()
        elif self.phase in ("sending", "draining", "receipts") and not any(
            p.submits or self.settings.listen_only for p in self.bound
        ):
            self._finish()
        elif self.phase == "draining":
            self._check_done()
        self._maybe_done()

    def _maybe_done(self) -> None:
        """Fire the result once unbinding and no connection is left."""
        if self.phase == "unbinding" and self.connections <= 0 and not self.done.called:
            self.done.callback(self.report())

    # -- the result ----------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The result of the run, as JSON-ready data."""
        s = self.settings
        elapsed = max(self.last_response - self.started, 1e-9)
        receipt_time = max(self.last_receipt - self.started, 1e-9)
        latencies = sorted(self.latencies)
        enquire_latencies = sorted(self.enquire_latencies)

        def ms(p: float, samples: list[float] = latencies) -> float | None:
            """The p-th percentile (nearest rank) in milliseconds."""
            if not samples:
                return None
            return round(samples[max(0, min(len(samples), math.ceil(p / 100 * len(samples))) - 1)] * 1e3, 3)

        expected = self.accepted if s.receipts else 0
        # over the intervals between the first and the last MO: the flood's rate, not the wait before it
        mo_rate = (self.mo - 1) / (self.last_mo - self.first_mo) if self.last_mo > self.first_mo else 0.0
        return {
            "settings": {**asdict(s), "targets": [f"{host}:{port}" for host, port in s.targets]},
            "sessions_bound": self.sessions_bound,
            "submitted": self.submitted,
            "answered": self.responses,
            "accepted": self.accepted,
            "unanswered": self.unanswered,
            "elapsed_s": round(elapsed, 3) if self.responses else 0.0,
            "submits_per_s": round(self.responses / elapsed, 1) if self.responses else 0.0,
            "accepted_per_s": round(self.accepted / elapsed, 1) if self.responses else 0.0,
            "latency_ms": {"p50": ms(50), "p90": ms(90), "p99": ms(99), "max": ms(100)},
            "receipts": {
                "expected": expected,
                "received": self.receipts,
                "missing": expected - self.receipts,
                "unmatched": self.receipts_unmatched + len(self._early),
                "per_s": round(self.receipts / receipt_time, 1) if self.receipts else 0.0,
            },
            "mo_received": self.mo,
            "mo_per_s": round(mo_rate, 1),
            "enquire_links_answered": self.enquire_links,
            "enquire_links": {
                "sent": self.enquire_links_sent,
                "answered": len(enquire_latencies),
                "errors": self.enquire_link_errors,
                "latency_ms": {"p50": ms(50, enquire_latencies), "p99": ms(99, enquire_latencies),
                               "max": ms(100, enquire_latencies)},
            },  # fmt: skip
            "errors": dict(sorted(self.errors.items())),
            "session_errors": dict(sorted(self.session_errors.items())),
        }


def run_load(reactor: Any, settings: LoadSettings, progress: IO[str] | None = None) -> Deferred[dict[str, Any]]:
    """
    Run the load described by ``settings``.

    :param reactor: connects and keeps time (the real reactor, in tests too).
    :param settings: what to run.
    :param progress: where progress lines go; ``None`` for none.
    :returns: fires with :meth:`LoadRun.report` once every connection is closed.
    """
    return LoadRun(reactor, settings, progress).start()


