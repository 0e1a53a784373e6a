"""
The multi-process harness itself: a process or redis-server that could not
bind its port is reported as such at start, never mistaken for whatever
else listens there (another test run's listener on a shared machine).
redis-server must be installed (``scripts/install-redis.sh``).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.process_harness import Cluster, SmscProcess
from tests.redis_harness import RedisServer

pytestmark = pytest.mark.integration


def test_a_redis_server_whose_port_is_taken_is_not_taken_for_started(tmp_path: Path) -> None:
    """
    A redis-server started on a port another redis-server already holds
    fails to bind and exits; the harness does not take the PONG of the other
    server for its own (it reports the start failed, and its log says why).
    """
    with RedisServer(tmp_path) as there:
        second = RedisServer(tmp_path)
        second.port = there.port
        try:
            assert second._run() is False
        finally:
            second.stop()
        assert "Address already in use" in second.log_tail()


def test_a_twistd_that_cannot_listen_fails_the_start_with_its_log_line(tmp_path: Path) -> None:
    """
    A twistd told to listen on a port another socket holds keeps running
    without that listener; the harness's start wait does not take the other
    socket for it, it fails at once with the process's "cannot listen on"
    log line.
    """
    with RedisServer(tmp_path) as redis, socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        taken = other.getsockname()[1]
        options = Cluster(tmp_path, redis).options("SMPP1")
        options[options.index("--smpp1") + 1] = f"tcp:{taken}:interface=127.0.0.1"
        process = SmscProcess("SMPP1", options, tmp_path / "twistd-SMPP1.log")
        try:
            with pytest.raises(AssertionError, match=rf"SMPP1: twistd could not listen \(cannot listen on tcp:{taken}"):
                process.wait_listening("SMPP1", api=False)
        finally:
            process.kill()
