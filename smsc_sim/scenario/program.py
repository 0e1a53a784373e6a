"""
Running what a scenario schedules: the timeline, MO generators and
auto-replies, on an injected clock, against a host (the simulator).

The :class:`Program` only schedules; what an action means is decided by the
callback it is given (:meth:`ScenarioRuntime._apply`), so rule-set switches
and throttle changes stay in the runtime.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import ThrottleSettings
from smsc_sim.scenario.model import (
    Action,
    EndOutageAction,
    MOGenerator,
    OutageAction,
    Timeline,
    TimelineStep,
)


class IScenarioHost(Protocol):
    """What the scenario engine asks of the simulator (the core side provides it)."""

    def inject_mo(
        self, account: str, source: str, destination: str, text: str, data_coding: int | None, split: str
    ) -> Any:
        """Originate an MO message to a bound receiver of ``account`` (``split``: udh8, udh16, sar, payload)."""

    def start_outage(self, instance: str, mode: str, duration: float | None, **options: Any) -> Any:
        """
        Put an instance in an outage mode; the host ends it after ``duration``
        seconds when given.  ``options``: ``status`` (reject-binds), ``latency`` (slow).
        """

    def end_outage(self, instance: str) -> Any:
        """Bring an instance back up."""

    def set_throttle(self, settings: ThrottleSettings | None) -> Any:
        """
        Optional: the throttle changed (what ``ScenarioRuntime.throttle()``
        now returns; ``None``: each account's configured throughput).  The
        core also sees the change on its next ``throttle()`` call.
        """


def mo_text(generator: MOGenerator, n: int, rng: random.Random) -> str:
    """
    The text of a generator's ``n``-th message (1-based).

    :param rng: used only when the generator picks at random.
    """
    texts = generator.texts
    template = texts[(n - 1) % len(texts)] if generator.pick == "cycle" else rng.choice(texts)
    text = template.format_map({"n": n, "name": generator.name})
    if generator.length is not None:
        piece = text or "x"
        while len(text) < generator.length:
            text = f"{text} {piece}" if text else piece
        text = text[: generator.length]
    return text


class Program:
    """
    The scheduled part of one scenario run.

    :param clock: the clock every timer uses.
    :param host: receives MO messages and outages.
    :param rng: draws for MO texts and arrival times (not verdicts).
    :param apply: carries out a timeline action.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        host: IScenarioHost,
        rng: random.Random,
        timeline: Timeline,
        generators: tuple[MOGenerator, ...],
        apply: Callable[[Action], None],
    ) -> None:
        self._clock = clock
        self.host = host
        self._rng = rng
        self._timeline = timeline
        self._generators = generators
        self._apply = apply
        self._calls: list[IDelayedCall] = []
        self._prune_at = 64
        self._after: list[TimelineStep] = []
        self.cycle = 0
        self.cycle_start = 0.0
        self.cycle_submits = 0
        self.sent: dict[str, int] = {g.name: 0 for g in generators}
        self.running = False
        self.started = 0.0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the timeline's first cycle and every MO generator."""
        self.running = True
        self.started = self._clock.seconds()
        self._start_cycle(self.started)
        for generator in self._generators:
            if generator.rate is None:
                for at in generator.at:
                    self._later(at, self._send, generator)
            else:
                origin = self.started + generator.start
                self._schedule_rate(generator, origin, origin, 0)

    def stop(self) -> None:
        """Cancel every pending timer (outages already started stay as they are)."""
        self.running = False
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls.clear()
        self._after.clear()

    def _later(self, delay: float, f: Callable[..., None], *args: Any) -> None:
        if len(self._calls) >= self._prune_at:
            # forget fired calls now and then, at a cost proportional to what is added
            self._calls = [c for c in self._calls if c.active()]
            self._prune_at = max(64, 2 * len(self._calls))
        self._calls.append(self._clock.callLater(max(delay, 0.0), f, *args))

    # -- timeline ------------------------------------------------------------

    def _start_cycle(self, cycle_start: float) -> None:
        """
        Schedule one cycle's steps from when the cycle was due, not from when
        its timer fired, so that late timers do not add up cycle after cycle.
        """
        self.cycle += 1
        self.cycle_start = cycle_start
        self.cycle_submits = 0
        now = self._clock.seconds()
        self._after = [s for s in self._timeline.steps if s.after_submits is not None]
        for step in self._timeline.steps:
            if step.at is not None:
                self._later(cycle_start + step.at - now, self._run, step.action)
        if self._timeline.loop is not None:
            next_start = cycle_start + self._timeline.loop
            self._later(next_start - now, self._start_cycle, next_start)

    def submitted(self) -> None:
        """Count one submit; run the steps due after this many."""
        self.cycle_submits += 1
        while self._after and (self._after[0].after_submits or 0) <= self.cycle_submits:
            step = self._after.pop(0)
            if isinstance(step.action, (OutageAction, EndOutageAction)):
                # never tear sessions down from inside the core's handling of a submit
                self._later(0, self._run, step.action)
            else:
                self._run(step.action)

    def _run(self, action: Action) -> None:
        try:
            self._apply(action)
        except Exception:
            self.log.failure("scenario timeline step failed: {action!r}", action=action)

    # -- MO ------------------------------------------------------------------

    def _schedule_rate(self, generator: MOGenerator, origin: float, previous: float, k: int) -> None:
        """Schedule message ``k`` (0-based) of a rate generator whose first message is due at ``origin``."""
        assert generator.rate is not None
        if generator.count is not None and k >= generator.count:
            return
        if generator.arrivals == "poisson":
            when = previous + self._rng.expovariate(generator.rate)
        else:
            # computed from the origin, not the previous send, so float error never accumulates
            when = origin + k / generator.rate
        if generator.stop is not None and when > self.started + generator.stop:
            return
        self._later(when - self._clock.seconds(), self._send_rate, generator, origin, when, k)

    def _send_rate(self, generator: MOGenerator, origin: float, when: float, k: int) -> None:
        self._send(generator)
        self._schedule_rate(generator, origin, when, k + 1)

    def _send(self, generator: MOGenerator) -> None:
        n = self.sent[generator.name] = self.sent[generator.name] + 1
        text = mo_text(generator, n, self._rng)
        self.call_host(
            "inject_mo",
            generator.account,
            generator.source,
            generator.destination,
            text,
            generator.data_coding,
            generator.split,
        )

    def call_host(self, method: str, *args: Any, optional: bool = False, **kwargs: Any) -> None:
        """
        Call the host, logging (never raising) what fails, now or later.

        :param optional: skip silently when the host has no such method.
        """
        if optional and not hasattr(self.host, method):
            return
        try:
            result = getattr(self.host, method)(*args, **kwargs)
        except Exception:
            self.log.failure("scenario: host.{method} failed", method=method)
            return
        if isinstance(result, Deferred):
            result.addErrback(lambda f: self.log.failure("scenario: host.{method} failed", f, method=method))

    def later(self, delay: float, f: Callable[..., None], *args: Any) -> None:
        """Run ``f(*args)`` after ``delay`` seconds, cancelled by :meth:`stop`."""
        self._later(delay, f, *args)
