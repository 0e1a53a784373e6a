"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted

from tests.redis_async import sleep
from tests.redis_cores import LATER, Process
from tests.redis_harness import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port of 127.0.0.1, stopped when the test ends (fails when it is not installed)."""
    with RedisServer(tmp_path) as server:
        yield server


@pytest_twisted.async_yield_fixture
async def processes(redis_server: RedisServer) -> AsyncIterator[tuple[Process, Process]]:
    """Two processes of cluster NA on one redis-server (SMPP1 and SMPP2), receipts a minute away; stopped after."""
    smpp1 = Process(redis_server.url, plan=LATER)
    smpp2 = Process(redis_server.url, plan=LATER)
    try:
        yield smpp1, smpp2
    finally:
        smpp1.stop()
        smpp2.stop()
        await sleep(0.05)  # the connections close
