"""
A load generator ESME: many SMPP sessions submitting as fast as allowed.

``smsc-sim-load`` (or ``python -m smsc_sim.load``) binds ``--sessions``
sessions (transceivers, or a transmitter plus a receiver each), keeps up to
``--window`` submit_sm outstanding on each, at ``--rate`` messages per second
in total or flat out, for ``--count`` messages or ``--duration`` seconds.  It
answers every deliver_sm (receipts and MO), data_sm and enquire_link, sends
an enquire_link on every session each ``--enquire-link`` seconds, prints
a progress line on stderr every ``--progress`` seconds and a JSON result on
stdout: throughput, submit -> submit_sm_resp latency percentiles, receipts
received against expected, enquire_link round trips, and errors by status
name.  At most ``--connect-concurrency`` connections are being opened and
bound at once, so that thousands of sessions do not overflow the SMSC's
listen backlog.

It must not be the bottleneck of what it measures, so the per-message path
has no Deferred, no timer and no PDU object: the submit_sm is encoded once
and only its sequence number is patched (``struct.pack_into``), a window is
filled with one write, a submit_sm_resp is read from its header, and the
rate is a credit refilled from the clock whenever a session has room.

The modules: :mod:`~smsc_sim.load.settings` (what to run, and the submit_sm
every message is patched from), :mod:`~smsc_sim.load.esme` (one
connection), :mod:`~smsc_sim.load.run` (the run, its phases and its result)
and :mod:`~smsc_sim.load.cli` (the command).
"""

from smsc_sim.load.cli import main, parse_args
from smsc_sim.load.esme import ESMEProtocol
from smsc_sim.load.run import LoadRun, run_load
from smsc_sim.load.settings import LoadSettings

__all__ = ["LoadSettings", "LoadRun", "ESMEProtocol", "run_load", "parse_args", "main"]
