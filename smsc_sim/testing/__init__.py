"""
Test helpers: a simulator for a test, and clients of its API.

- :mod:`smsc_sim.testing.harness`: :class:`~smsc_sim.testing.harness.SimulatorProcess`
  (a child process, for any ESME library) and
  :class:`~smsc_sim.testing.harness.InProcessSimulator` (on the running reactor);
- :mod:`smsc_sim.testing.memory`: :class:`~smsc_sim.testing.memory.MemorySMSC`
  (no sockets, a fake clock, for Twisted ESME code);
- :mod:`smsc_sim.testing.client`: the blocking and the treq clients of the API;
- :mod:`smsc_sim.testing.pytest_plugin`: the ``smsc`` fixtures;
- :mod:`smsc_sim.testing.serve`: the child process's entry point.
"""
