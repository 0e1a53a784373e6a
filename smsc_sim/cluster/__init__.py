"""
Cluster state shared by several processes (SMPP1 and SMPP2 as two processes).

Only the assembly imports these backends; the core sees the contracts of
:mod:`smsc_sim.contracts`.  See docs/cluster.md for what is shared so far.
"""
