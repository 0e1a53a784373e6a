"""
The process's subscribed Redis connection: hears the control channels.

A subscribed connection can send nothing but (un)subscriptions, so it is a
connection of its own.  It reconnects by itself (within a second or two of
Redis coming back) and subscribes again each time; whether it is connected
now is part of readiness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

#: the longest wait between two reconnection attempts, in seconds
MAX_DELAY = 2.0


class RedisSubscriber:
    """
    Subscribe to channels on a connection that reconnects by itself.

    :param host: Redis's host.
    :param port: Redis's port.
    :param handler: called with ``(channel, message)`` for every message heard.
    :param connected: called each time the subscription is (again) in place: what was
        published while it was not is lost, so the caller reads the state again.
    """

    log = Logger()

    def __init__(
        self, host: str, port: int, handler: Callable[[str, Any], None], connected: Callable[[], None]
    ) -> None:
        # imported here, as everywhere in this package: txredisapi imports Twisted's global reactor
        import txredisapi

        self.channels: list[str] = []
        self.connected = False
        self._handler = handler
        self._connected = connected
        self._host, self._port = host, port
        subscriber = self

        class Protocol(txredisapi.SubscriberProtocol):  # type: ignore[misc, name-defined]
            def connectionMade(self) -> Any:
                ready = super().connectionMade()
                ready.addCallback(lambda _: self.subscribe(subscriber.channels) if subscriber.channels else None)
                ready.addCallback(lambda _: subscriber._up())
                ready.addErrback(lambda f: subscriber.log.warn("control channel: {error}", error=f.getErrorMessage()))
                return ready

            def connectionLost(self, why: Any) -> None:
                subscriber._down()
                super().connectionLost(why)

            def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                subscriber._handler(name, message)

        self._factory: Any = txredisapi.SubscriberFactory(isLazy=True)
        self._factory.protocol = Protocol
        self._factory.maxDelay = MAX_DELAY
        self._factory.initialDelay = 0.2
        self._factory.reconnect = True
        self._make_endpoint = txredisapi._makeEndpoint
        self._started = False

    def subscribe(self, name: str) -> None:
        """Hear ``name`` too (before :meth:`start`)."""
        if name not in self.channels:
            self.channels.append(name)

    def start(self) -> None:
        """Connect (and keep connecting)."""
        if not self._started:
            self._started = True
            self._factory.startConnecting(self._make_endpoint(self._host, self._port, 2))

    def stop(self) -> None:
        """Disconnect for good."""
        if self._started:
            self._started = False
            self._factory.disconnect()

    def _up(self) -> None:
        if not self.connected:
            self.connected = True
            self.log.info("control channel: listening on {channels}", channels=", ".join(self.channels))
        self._connected()

    def _down(self) -> None:
        if self.connected:
            self.connected = False
            self.log.warn("control channel: connection to Redis lost; reconnecting")
