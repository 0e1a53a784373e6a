"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_harness import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port of 127.0.0.1, stopped when the test ends (fails when it is not installed)."""
    with RedisServer(tmp_path) as server:
        yield server
