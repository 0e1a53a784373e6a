"""
The durable message store (``--store sqlite:PATH``): a SQLite journal
behind the core's :class:`~smsc_sim.core.journal.IMessageJournal`, and the
restore that puts its messages back on start.  Only the assembly
(:mod:`smsc_sim.simulator`) uses it; the core imports nothing from here.
"""
