"""
The process's limit on open files, raised to what a run needs.

Every SMPP connection is a file descriptor; a common soft limit is 1024,
while the hard limit (what an unprivileged process may raise itself to) is
usually far higher.  A process that owns itself (``twistd smsc-sim``, the
load generator) raises its soft limit towards what its configuration
allows, so that ``limits.max_connections`` and not the shell's default is
what bounds the connections.
"""

from __future__ import annotations

import resource

__all__ = ["raise_open_files"]


def raise_open_files(wanted: int) -> int:
    """
    Raise the soft limit on open files towards ``wanted``, never past the hard limit, never down.

    :returns: the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)
