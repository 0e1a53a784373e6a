"""
A real redis-server for the cluster tests: started on 127.0.0.1 on a free
port, with persistence off, and stopped by the test that started it.

redis-server must be installed (``scripts/install-redis.sh``); when it is not,
:func:`find_redis_server` raises with the instruction, so the tests fail
saying how to fix it (they never skip).
"""

from __future__ import annotations

import os
import re
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


def _server_pid(port: int) -> int | None:
    """
    The process id of the redis-server answering on ``port`` (``INFO server``); None while none answers.

    The pid, not a mere PONG: the free port may have been taken, between its pick and the server's bind, by
    another redis-server (another test run's on a shared machine), which would answer PING just as well.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"INFO server\r\n")
            reply = b""
            while (found := re.search(rb"\nprocess_id:(\d+)\r\n", reply)) is None:
                chunk = conn.recv(65536)
                reply += chunk
                if not chunk or reply.startswith(b"-") or len(reply) > 65536:
                    return None  # closed, an error (still loading) or not Redis
            return int(found.group(1))
    except OSError:
        return None


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
        """Start the server and wait until it answers (a free port is retried if taken)."""
        for _attempt in range(3):
            self.port = free_port()
            if self._run():
                return
        raise AssertionError(f"redis-server did not answer on 127.0.0.1 (3 free ports tried, {START_TIMEOUT} s each); "
                             f"its log ends:\n{self.log_tail()}")

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port (a Redis restart without persistence)."""
        self.stop()
        if not self._run():
            raise AssertionError(f"redis-server did not come back on port {self.port} within {START_TIMEOUT} s "
                                 f"(or another process took the port meanwhile); its log ends:\n{self.log_tail()}")

    @property
    def log(self) -> Path:
        """Where the server's output goes (appended to by each start)."""
        return self.workdir / "redis-server.log"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server logged (why a start failed: a port in use...)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _run(self) -> bool:
        """Start on ``self.port``; whether it answers there (itself: another server may hold the port)."""
        binary = find_redis_server()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if _server_pid(self.port) == self.process.pid:
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
