"""
The cluster options: ``cluster_store`` (file, ``--cluster-store``,
``SMSC_SIM_CLUSTER_STORE``) and ``--instances`` (``run_instances``), each
checked at load with a one-line error naming where it came from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.simulator import Simulator

REPO = Path(__file__).resolve().parent.parent


class ClusterStoreTests(SynchronousTestCase):
    """Where the shared state lives."""

    def test_default_is_memory(self) -> None:
        """Without any setting the cluster lives in one process (memory), every instance runs."""
        config = load_config(None, {}, {})
        self.assertEqual((config.cluster_store, config.run_instances), ("memory", ()))

    def test_layers(self) -> None:
        """The file's value is overridden by SMSC_SIM_CLUSTER_STORE, and that by --cluster-store."""
        path = Path(self.mktemp())
        path.write_text("cluster_store: redis://10.0.0.1:6379/0\n", encoding="utf-8")
        self.assertEqual(load_config(str(path), {}, {}).cluster_store, "redis://10.0.0.1:6379/0")
        environ = {"SMSC_SIM_CLUSTER_STORE": "redis://redis:6380/2"}
        self.assertEqual(load_config(str(path), {}, environ).cluster_store, "redis://redis:6380/2")
        overrides = {"cluster_store": "redis://[::1]:6379/15"}
        self.assertEqual(load_config(str(path), overrides, environ).cluster_store, "redis://[::1]:6379/15")

    def test_bad_url_is_one_line(self) -> None:
        """A store that is not memory or redis://HOST:PORT/DB is refused in one line naming the option."""
        for bad in ("redis://host/0", "redis://host:6379", "redis://host:70000/0", "redis://host:6379/16", "mem"):
            with self.assertRaises(ConfigError) as caught:
                load_config(None, {"cluster_store": bad}, {})
            message = str(caught.exception)
            self.assertIn("option --cluster-store", message)
            self.assertIn("memory or redis://HOST:PORT/DB", message)
            self.assertNotIn("\n", message)


class ClusterStorePerClusterTests(SynchronousTestCase):
    """``cluster_store`` on a cluster's instances: each cluster its own store, the top level the default."""

    FILE = """\
cluster_store: redis://default:6379/0
instances:
  - name: SMPP1
    endpoints: ["tcp:2775"]
    cluster: NA
    cluster_store: redis://na-redis:6379/1
  - name: SMPP2
    endpoints: ["tcp:2776"]
    cluster: NA
  - name: SMPP0
    endpoints: ["tcp:2777"]
"""

    def write(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text, encoding="utf-8")
        return str(path)

    def test_each_cluster_its_store(self) -> None:
        """NA uses the store named on its instance; SMPP0, naming none, the top-level one (or the option's)."""
        config = load_config(self.write(self.FILE), {}, {})
        self.assertEqual(config.store_of("NA"), "redis://na-redis:6379/1")
        self.assertEqual(config.store_of("SMPP0"), "redis://default:6379/0")
        environ = {"SMSC_SIM_CLUSTER_STORE": "memory"}
        config = load_config(self.write(self.FILE), {}, environ)
        self.assertEqual((config.store_of("NA"), config.store_of("SMPP0")), ("redis://na-redis:6379/1", "memory"))

    def test_bad_or_conflicting_store_names_file_line_and_field(self) -> None:
        """A bad URL, or two stores for one cluster, is refused in one line with the file, the line and the field."""
        path = self.write(self.FILE.replace("redis://na-redis:6379/1", "redis://na-redis/1"))
        with self.assertRaises(ConfigError) as caught:
            load_config(path, {}, {})
        self.assertIn(f"{path}:6: instances[0].cluster_store: unknown cluster store", str(caught.exception))
        conflicting = self.FILE.replace(
            '    endpoints: ["tcp:2776"]\n    cluster: NA\n',
            '    endpoints: ["tcp:2776"]\n    cluster: NA\n    cluster_store: redis://other:6379/0\n',
        )
        path = self.write(conflicting)
        with self.assertRaises(ConfigError) as caught:
            load_config(path, {}, {})
        message = str(caught.exception)
        self.assertIn(f"{path}:7: instances[1].cluster_store: cluster NA already has cluster_store", message)
        self.assertNotIn("\n", message)


class InstancesTests(SynchronousTestCase):
    """--instances: the configured instances this process runs."""

    def test_names_match_case_insensitively(self) -> None:
        """``--instances smpp1,SMPP0`` runs SMPP1 and SMPP0, under their configured names."""
        config = load_config(None, {"run_instances": "smpp1,SMPP0"}, {})
        self.assertEqual(config.run_instances, ("SMPP1", "SMPP0"))
        self.assertEqual(load_config(None, {}, {"SMSC_SIM_INSTANCES": "smpp2"}).run_instances, ("SMPP2",))

    def test_unknown_name_is_one_line(self) -> None:
        """An instance that is not configured is refused in one line listing the configured ones."""
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"run_instances": "SMPP9"}, {})
        message = str(caught.exception)
        self.assertIn("no instance named", message)
        self.assertIn("SMPP1, SMPP2, SMPP0", message)
        self.assertNotIn("\n", message)

    def test_only_the_named_instances_listen(self) -> None:
        """A process started with --instances SMPP2 has the SMPP2 instance only, and no core for SMPP0's cluster."""
        config = load_config(None, {"run_instances": "SMPP2", "api_endpoint": "none"}, {})
        simulator = Simulator(config, Clock())
        self.assertEqual(list(simulator.instances), ["SMPP2"])
        self.assertEqual(list(simulator.cores), ["NA"])
        # the core still knows SMPP1, its sibling in the cluster
        self.assertEqual(sorted(simulator.cores["NA"].instances), ["SMPP1", "SMPP2"])

    def test_missing_client_is_one_line(self) -> None:
        """
        A Redis cluster store without txredisapi installed stops ``twistd smsc-sim`` in one line saying what to
        install, with exit status 1 and no traceback.

        Run in a process of its own with txredisapi hidden there: once another test of the same run has
        imported it, hiding it in this process no longer reaches the modules that hold it.
        """
        hide_and_run = "import sys; sys.modules['txredisapi'] = None; from twisted.scripts.twistd import run; run()"
        free = "tcp:0:interface=127.0.0.1"
        done = subprocess.run(
            [sys.executable, "-c", hide_and_run, "-n", "--pidfile=", "smsc-sim", "--api", "none",
             "--no-conformance-judge", "--cluster-store", "redis://127.0.0.1:6379/0",
             "--smpp1", free, "--smpp2", free, "--smpp0", free],  # fmt: skip
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            capture_output=True,
            timeout=60,
        )
        self.assertEqual(
            (done.returncode, done.stderr.decode().strip()),
            (1, "twistd: cluster_store redis://127.0.0.1:6379/0 needs txredisapi: pip install 'smsc-sim[redis]'"),
        )
