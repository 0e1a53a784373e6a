"""
Test helpers: a simulator for a test, and clients of its API.

- :mod:`smsc_sim.testing.protocol`: :class:`~smsc_sim.testing.protocol.SimulatorForm`,
  the one client API every form below offers, and the options they all take;
- :mod:`smsc_sim.testing.harness`: :class:`~smsc_sim.testing.harness.SimulatorProcess`
  (a child process, for any ESME library),
  :class:`~smsc_sim.testing.harness.ThreadedSimulator` (a reactor in a thread of its
  own, for any ESME library without a child process) and
  :class:`~smsc_sim.testing.harness.InProcessSimulator` (on the test's running reactor);
- :mod:`smsc_sim.testing.memory`: :class:`~smsc_sim.testing.memory.MemorySMSC`
  (no sockets, a fake clock, for Twisted ESME code);
- :mod:`smsc_sim.testing.client`: the blocking and the treq clients of the API;
- :mod:`smsc_sim.testing.pytest_plugin`: the ``smsc_sim`` fixtures and the factory;
- :mod:`smsc_sim.testing.serve`: the child process's entry point.
"""
