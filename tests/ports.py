"""
A port of 127.0.0.1 where nothing listens, for tests of "the peer is not
there", held for as long as the test needs it.

A port picked free and closed at once races: another process (another test
run's redis-server or simulator) can listen there before the test connects,
and the test then talks to it.  Here the port stays bound, without
``SO_REUSEADDR`` and without ``listen()``: Linux lets no other socket bind
it meanwhile (reuse needs the option on both), and a connection to it is
refused.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections and that nobody else can take until the block ends."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])
