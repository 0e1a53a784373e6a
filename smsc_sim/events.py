"""
The event bus: every PDU in or out and every change of state is published
here, and the inspection API, metrics and logs subscribe.

Publishing costs one attribute check when nobody listens, so the hot path
can publish unconditionally.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from smsc_sim.contracts import Event

Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of :class:`~smsc_sim.contracts.Event` values to subscribers."""

    log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._subscribers: list[Subscriber] = []

    @property
    def active(self) -> bool:
        """Whether anyone listens; callers may skip building costly event data when not."""
        return bool(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """
        Call ``subscriber`` with every event from now on.

        :returns: a function that unsubscribes it.
        """
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, kind: str, **data: Any) -> None:
        """Publish one event; a failing subscriber is logged and never breaks the publisher."""
        if not self._subscribers:
            return
        event = Event(kind, self._clock.seconds(), data)
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                self.log.failure("event subscriber failed on {kind}", kind=kind)
