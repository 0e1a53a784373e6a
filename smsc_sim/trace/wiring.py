"""
The trace as the configuration asks for it: the ring on the simulator's
event bus, and the ``--pcap`` file behind it.
"""

from __future__ import annotations

from smsc_sim.config import Config
from smsc_sim.events import EventBus
from smsc_sim.trace.pcap import PcapFile, TraceError, TraceUnavailable, require_dpkt
from smsc_sim.trace.ring import DEFAULT_MAX_BYTES, TraceRing

__all__ = ["Trace", "TraceError", "TraceUnavailable", "tracing", "start_trace"]


def tracing(config: Config) -> bool:
    """Whether ``config`` asks for a trace: a ``pcap`` file, or a ring for the API."""
    return config.pcap is not None or bool(config.pcap_ring)


class Trace:
    """
    The running trace: :attr:`ring`, and :attr:`file` when ``pcap`` is set.

    :raises TraceError: dpkt is missing, or the file cannot be opened.
    """

    def __init__(self, config: Config, events: EventBus) -> None:
        require_dpkt()
        self.file: PcapFile | None = None
        if config.pcap is not None:
            try:
                self.file = PcapFile(config.pcap, config.pcap_max_bytes)
            except OSError as e:
                raise TraceError(f"cannot write the pcap trace {config.pcap}: {e.strerror or e}") from None
        size = config.pcap_ring if config.pcap_ring is not None else DEFAULT_MAX_BYTES
        self.ring = TraceRing(size, sink=self.file)
        self._unsubscribe = self.ring.subscribe(events)

    def reset(self) -> None:
        """A reset of the simulator: the ring starts over (:meth:`TraceRing.reset`); the file goes on."""
        self.ring.reset()

    def stop(self) -> None:
        """Stop recording and close the file (everything in it was flushed as it was written)."""
        self._unsubscribe()
        if self.file is not None:
            self.file.close()


def start_trace(config: Config, events: EventBus) -> Trace | None:
    """The trace ``config`` asks for, recording ``events`` from now on; None when it asks for none."""
    return Trace(config, events) if tracing(config) else None
