"""
Topology presets: ``--topology apac`` (``topology:``, ``SMSC_SIM_TOPOLOGY``)
adds the provider's APAC cluster SMPP3+SMPP4, and ``--topology list`` names
the presets.  The bind quota is shared inside the APAC cluster and not with
the NA one, on real loopback sockets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile

import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.service import build_service
from smsc_sim.tap import Options
from smsc_sim.testing.harness import ephemeral_config
from tests.test_integration_topology import raw_bind


class PresetConfigTests(SynchronousTestCase):
    """What the preset does to the configuration."""

    def write(self, text: str) -> str:
        directory = tempfile.mkdtemp(prefix="smsc-sim-test-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "smsc-sim.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_apac_adds_smpp3_and_smpp4_as_one_cluster(self) -> None:
        """--topology apac: five instances; SMPP3 (2778) and SMPP4 (2779) form cluster APAC, NA is untouched."""
        config = load_config(None, {"topology": "apac"}, {})
        self.assertEqual([i.name for i in config.instances], ["SMPP1", "SMPP2", "SMPP0", "SMPP3", "SMPP4"])
        clusters = config.clusters()
        self.assertEqual([i.name for i in clusters["APAC"]], ["SMPP3", "SMPP4"])
        self.assertEqual([i.name for i in clusters["NA"]], ["SMPP1", "SMPP2"])
        self.assertEqual(
            [(i.endpoints, i.system_id) for i in clusters["APAC"]],
            [(("tcp:2778:interface=127.0.0.1",), "SMPP3"), (("tcp:2779:interface=127.0.0.1",), "SMPP4")],
        )

    def test_default_adds_nothing(self) -> None:
        """Without a topology (or with 'default') the instances are the configured three."""
        self.assertEqual(len(load_config(None, {}, {}).instances), 3)
        self.assertEqual(len(load_config(None, {"topology": "default"}, {}).instances), 3)

    def test_file_key_and_environment(self) -> None:
        """topology: apac in the file and SMSC_SIM_TOPOLOGY=apac both add the cluster; the option wins over both."""
        path = self.write("topology: apac\n")
        self.assertIn("APAC", load_config(path, {}, {}).clusters())
        self.assertIn("APAC", load_config(None, {}, {"SMSC_SIM_TOPOLOGY": "apac"}).clusters())
        config = load_config(path, {"topology": "default"}, {"SMSC_SIM_TOPOLOGY": "apac"})
        self.assertNotIn("APAC", config.clusters())

    def test_endpoint_overrides_reach_the_added_instances(self) -> None:
        """SMSC_SIM_SMPP3_ENDPOINT and --listen SMPP4=... move the preset's instances."""
        config = load_config(
            None,
            {"topology": "apac", "listen": {"SMPP4": "tcp:9004"}},
            {"SMSC_SIM_SMPP3_ENDPOINT": "tcp:9003"},
        )
        endpoints = {i.name: i.endpoints[0] for i in config.instances}
        self.assertEqual((endpoints["SMPP3"], endpoints["SMPP4"]), ("tcp:9003", "tcp:9004"))

    def test_instance_the_file_names_is_kept(self) -> None:
        """A file that already defines SMPP3 keeps its own SMPP3; the preset adds only SMPP4."""
        path = self.write(
            "topology: apac\n"
            "instances:\n"
            "  - {name: SMPP1, endpoints: ['tcp:2775'], cluster: NA}\n"
            "  - {name: SMPP3, endpoints: ['tcp:3003'], cluster: SG}\n"
        )
        config = load_config(path, {}, {})
        self.assertEqual([(i.name, i.cluster) for i in config.instances], [("SMPP1", "NA"), ("SMPP3", "SG"), ("SMPP4", "APAC")])

    def test_unknown_preset_names_where_it_came_from(self) -> None:
        """An unknown name is one line naming the file line, variable or option and the known presets."""
        path = self.write("seed: 1\ntopology: emea\n")
        with self.assertRaises(ConfigError) as caught:
            load_config(path, {}, {})
        self.assertEqual(str(caught.exception), f"{path}:2: topology: unknown value 'emea' (expected one of default, apac)")
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {}, {"SMSC_SIM_TOPOLOGY": "emea"})
        self.assertTrue(str(caught.exception).startswith("environment variable SMSC_SIM_TOPOLOGY: topology: unknown"))
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"topology": "emea"}, {})
        self.assertTrue(str(caught.exception).startswith("option --topology: topology: unknown"))


class TopologyOptionTests(SynchronousTestCase):
    """The twistd option."""

    def test_option_adds_the_cluster(self) -> None:
        """twistd smsc-sim --topology apac runs with SMPP3 and SMPP4."""
        options = Options(environ={})
        options.parseOptions(["--topology", "apac"])
        self.assertIn("SMPP4", [i.name for i in options.config.instances])

    def test_list_prints_the_presets_and_exits_0(self) -> None:
        """--topology list prints one line per preset and exits with status 0, starting nothing."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as caught:
            Options(environ={}).parseOptions(["--topology", "list"])
        self.assertEqual(caught.exception.code, 0)
        lines = out.getvalue().splitlines()
        self.assertEqual([line.split()[0] for line in lines], ["default", "apac"])
        self.assertIn("SMPP3+SMPP4", lines[1])


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_apac_cluster_shares_the_bind_quota() -> None:
    """
    With --topology apac, the account's 2 binds span SMPP3 and SMPP4 (a third
    bind on either gets ESME_RALYBND 0x05) while SMPP1 and SMPP2 still take
    two binds of their own: the clusters do not share a quota.
    """
    from twisted.internet import reactor

    config = dataclasses.replace(ephemeral_config(load_config(None, {"topology": "apac"}, {})), api_endpoint="")
    simulator = build_service(config, reactor)
    simulator.startService()
    try:
        await simulator.when_listening()
        port = {name: addresses[0][1] for name, addresses in simulator.endpoints().items()}

        def binds() -> list[int]:
            statuses, sockets = [], []
            try:
                for instance in ("SMPP3", "SMPP4", "SMPP3", "SMPP4", "SMPP1", "SMPP2", "SMPP1"):
                    sock, status = raw_bind(port[instance])
                    sockets.append(sock)
                    statuses.append(status)
            finally:
                for sock in sockets:
                    sock.close()
            return statuses

        assert await threads.deferToThread(binds) == [0, 0, 0x05, 0x05, 0, 0, 0x05]
    finally:
        await simulator.stopService()
