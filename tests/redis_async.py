"""
Plumbing for the tests that run the cluster's Redis modules on the real
reactor (pytest-twisted) against a redis-server of :mod:`tests.redis_harness`:
the reactor, a real-time sleep, a bounded wait, and txredisapi connections,
each standing for one process of the cluster.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet.task import deferLater

from tests.redis_harness import RedisServer


def reactor() -> Any:
    """The global reactor pytest-twisted runs (imported late: importing this module installs none)."""
    from twisted.internet import reactor

    return reactor


async def sleep(seconds: float) -> None:
    """Let the reactor run for ``seconds`` of real time."""
    await deferLater(reactor(), seconds, lambda: None)


async def until(check: Callable[[], Any], within: float = 5.0) -> None:
    """
    Let the reactor run until ``check()`` holds.

    :raises AssertionError: when it did not within ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not reached within {within} s"
        await sleep(0.02)


async def connect(server: RedisServer, reconnect: bool = False) -> Any:
    """
    A txredisapi connection to database 0 of ``server``, connected.

    :param reconnect: one that reconnects by itself (2 s to connect), for the
        tests that restart redis-server under it.
    """
    import txredisapi

    if not reconnect:
        return await txredisapi.Connection("127.0.0.1", server.port, dbid=0, reconnect=False)
    connection = txredisapi.lazyConnection("127.0.0.1", server.port, dbid=0, reconnect=True, connectTimeout=2)
    await connection._connected
    return connection


@asynccontextmanager
async def connected(server: RedisServer, count: int, reconnect: bool = False) -> AsyncIterator[list[Any]]:
    """``count`` connections of :func:`connect`, each closed at the end."""
    opened: list[Any] = []
    try:
        for _ in range(count):
            opened.append(await connect(server, reconnect))
        yield opened
    finally:
        for connection in opened:
            await connection.disconnect()
