"""The open-files limit a process raises for itself."""

from __future__ import annotations

import resource

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.rlimits import raise_open_files


class RaiseOpenFilesTests(SynchronousTestCase):
    """``raise_open_files`` on this test process, its limits restored afterwards."""

    def setUp(self) -> None:
        self.soft, self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (self.soft, self.hard))
        if self.hard != resource.RLIM_INFINITY and self.hard < 2048:
            self.fail(f"the hard limit on open files is {self.hard}: these tests need 2048")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, self.hard))

    def test_raises_the_soft_limit(self) -> None:
        """From a soft limit of 1024, asking for 2000 gives 2000, and the hard limit stays."""
        self.assertEqual(raise_open_files(2000), 2000)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE), (2000, self.hard))

    def test_never_lowers(self) -> None:
        """Asking for less than the soft limit changes nothing."""
        self.assertEqual(raise_open_files(100), 1024)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024)

    def test_stops_at_the_hard_limit(self) -> None:
        """Asking for more than the hard limit gives the hard limit."""
        if self.hard == resource.RLIM_INFINITY:
            self.assertEqual(raise_open_files(1 << 20), 1 << 20)
        else:
            self.assertEqual(raise_open_files(self.hard + 1000), self.hard)
