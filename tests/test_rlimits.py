"""The open-files limit a process raises for itself."""

from __future__ import annotations

import resource

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.rlimits import raise_open_files


class RaiseOpenFilesTests(SynchronousTestCase):
    """``raise_open_files`` on this test process, from a low soft limit; its limits restored afterwards."""

    def setUp(self) -> None:
        self.soft, self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (self.soft, self.hard))
        # well under any hard limit, yet room for what the test process has open
        self.ceiling = 4096 if self.hard == resource.RLIM_INFINITY else self.hard
        self.low = max(64, min(256, self.ceiling // 2))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.low, self.hard))

    def test_raises_the_soft_limit(self) -> None:
        """Asking for more than the soft limit, within the hard one, gives exactly that; the hard limit stays."""
        wanted = min(self.low * 2, self.ceiling)
        self.assertEqual(raise_open_files(wanted), wanted)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE), (wanted, self.hard))

    def test_never_lowers(self) -> None:
        """Asking for less than the soft limit changes nothing."""
        self.assertEqual(raise_open_files(self.low // 2), self.low)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE)[0], self.low)

    def test_stops_at_the_hard_limit(self) -> None:
        """Asking for more than the hard limit gives the hard limit (or exactly what was asked, when there is none)."""
        if self.hard == resource.RLIM_INFINITY:
            self.assertEqual(raise_open_files(8192), 8192)
        else:
            self.assertEqual(raise_open_files(self.hard + 1000), self.hard)
            self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE), (self.hard, self.hard))
