"""
A real redis-server for the cluster tests: started on 127.0.0.1 on a free
port, with persistence off, and stopped by the test that started it.

redis-server must be installed (``scripts/install-redis.sh``); when it is not,
:func:`find_redis_server` raises with the instruction, so the tests fail
saying how to fix it (they never skip).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

#: where Debian puts redis-server, searched after $PATH
EXTRA_PATHS = ("/usr/bin", "/usr/sbin", "/usr/local/bin")
#: seconds a starting server gets to answer PING
START_TIMEOUT = 10.0


class RedisMissing(AssertionError):
    """redis-server is not installed; the message says how to install it."""


def find_redis_server() -> str:
    """
    The path of redis-server.

    :raises RedisMissing: when it is not installed, saying how to install it.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_PATHS])
    path = shutil.which("redis-server", path=search)
    if path is None:
        raise RedisMissing(
            "redis-server was not found (searched $PATH and "
            f"{', '.join(EXTRA_PATHS)}). The Redis cluster tests need Redis 7: "
            "run `sudo scripts/install-redis.sh` (Debian/Ubuntu: apt-get install redis-server)."
        )
    return path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (redis-server refuses ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_command(port: int, *command: str) -> bytes:
    """
    One command to the redis-server on ``port``, over a raw socket; its raw
    reply, read up to its end of line (a status, an error or an integer: the
    replies the tests ask for).
    """
    payload = f"*{len(command)}\r\n" + "".join(f"${len(part)}\r\n{part}\r\n" for part in command)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(payload.encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = connection.recv(65536)
            assert chunk, f"redis-server closed the connection before answering {command[0]} (got {reply!r})"
            reply += chunk
        return reply


class RedisServer:
    """
    One redis-server process, as a context manager.

    :param workdir: its working directory (nothing is saved there: ``--save ''``).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``cluster_store`` URL of this server, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING (a free port is retried if taken)."""
        for _attempt in range(3):
            self.port = free_port()
            if self._run():
                return
        raise AssertionError(f"redis-server did not answer PING on 127.0.0.1 within {START_TIMEOUT} s")

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port (a Redis restart without persistence)."""
        self.stop()
        if not self._run():
            raise AssertionError(f"redis-server did not come back on port {self.port} within {START_TIMEOUT} s")

    def _run(self) -> bool:
        """Start on ``self.port``; whether it answered PING."""
        binary = find_redis_server()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if _ping(self.port):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        """Kill the server and reap it."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
