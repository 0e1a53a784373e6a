"""
Tests for :mod:`smsc_sim.tap`: the ``twistd smsc-sim`` options become one
validated configuration, and every mistake is a usage error with the
loader's message.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import Config, default_config
from smsc_sim.tap import Options, makeService
from smsc_sim.yaml_source import MAX_BYTES, MAX_EXPANDED


def parse(argv: list[str], environ: Mapping[str, str] | None = None) -> Config:
    """The configuration ``twistd smsc-sim ARGV`` would run with."""
    options = Options(environ={} if environ is None else environ)
    options.parseOptions(argv)
    return options.config


class OptionsTests(SynchronousTestCase):
    """What each option does to the configuration."""

    def write(self, text: str) -> str:
        """Write a configuration file and return its path."""
        directory = tempfile.mkdtemp(prefix="smsc-sim-test-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "smsc-sim.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def usage_error(self, argv: list[str], environ: Mapping[str, str] | None = None) -> str:
        """The message of the UsageError parsing ``argv`` raises."""
        options = Options(environ={} if environ is None else environ)
        return str(self.assertRaises(usage.UsageError, options.parseOptions, argv))

    def test_no_options_run_the_default(self) -> None:
        """``twistd smsc-sim`` with nothing else runs the embedded default."""
        self.assertEqual(parse([]), default_config())

    def test_config_file(self) -> None:
        """--config and -c read a YAML file."""
        path = self.write("seed: 11\n")
        self.assertEqual(parse(["--config", path]).seed, 11)
        self.assertEqual(parse(["-c", path]).source, path)

    def test_instance_endpoint_options(self) -> None:
        """--smpp1, --smpp2 and --smpp0 replace the first listener of those instances."""
        config = parse(["--smpp1", "tcp:0:interface=127.0.0.1", "--smpp2=tcp:1", "--smpp0", "unix:/tmp/s0"])
        self.assertEqual(
            [i.endpoints for i in config.instances], [("tcp:0:interface=127.0.0.1",), ("tcp:1",), ("unix:/tmp/s0",)]
        )

    def test_listen_any_instance(self) -> None:
        """--listen NAME=ENDPOINT works for any instance of the file, repeatable, name in any case."""
        path = self.write(
            "instances:\n  - {name: APAC3, endpoints: ['tcp:1']}\n  - {name: APAC4, endpoints: ['tcp:2']}\n"
        )
        config = parse(["-c", path, "--listen", "apac3=tcp:5", "--listen", "APAC4=tcp:6:interface=127.0.0.1"])
        self.assertEqual([i.endpoints for i in config.instances], [("tcp:5",), ("tcp:6:interface=127.0.0.1",)])

    def test_listen_wins_over_instance_option(self) -> None:
        """Given both --smpp1 and --listen SMPP1=..., the --listen one applies."""
        self.assertEqual(parse(["--listen", "SMPP1=tcp:9", "--smpp1", "tcp:8"]).instances[0].endpoints, ("tcp:9",))

    def test_api_options(self) -> None:
        """--api sets the control API endpoint; '' or 'none' disables it; --api-token sets the token."""
        config = parse(["--api", "tcp:0:interface=127.0.0.1", "--api-token", "s3cret"])
        self.assertEqual((config.api_endpoint, config.api_token), ("tcp:0:interface=127.0.0.1", "s3cret"))
        self.assertEqual(parse(["--api="]).api_endpoint, "")
        self.assertEqual(parse(["--api", "none"]).api_endpoint, "")

    def test_run_options(self) -> None:
        """--scenario, --seed, --trace and --store set their values."""
        config = parse(["--scenario", "throttling", "--seed", "1234", "--trace", "--store", "sqlite:/tmp/sim.db"])
        self.assertEqual(
            (config.scenario, config.seed, config.trace, config.store), ("throttling", 1234, True, "sqlite:/tmp/sim.db")
        )

    def test_accounts_replace_all_others(self) -> None:
        """--account is repeatable, and the accounts given are the only ones."""
        config = parse(["--account", "esme1:pw1", "--account", "esme2:pw2"])
        self.assertEqual([(a.system_id, a.password) for a in config.accounts], [("esme1", "pw1"), ("esme2", "pw2")])

    def test_options_beat_the_environment(self) -> None:
        """An option overrides its SMSC_SIM_* variable; a flag not given leaves the variable's value."""
        environ = {"SMSC_SIM_SEED": "1", "SMSC_SIM_TRACE": "true", "SMSC_SIM_SMPP1_ENDPOINT": "tcp:1"}
        config = parse(["--seed", "2", "--smpp1", "tcp:2"], environ)
        self.assertEqual((config.seed, config.trace, config.instances[0].endpoints), (2, True, ("tcp:2",)))

    def test_reads_the_process_environment_by_default(self) -> None:
        """Built as twistd builds it (no arguments), the options read os.environ."""
        os.environ["SMSC_SIM_SEED"] = "77"
        self.addCleanup(os.environ.pop, "SMSC_SIM_SEED")
        options = Options()
        options.parseOptions([])
        self.assertEqual(options.config.seed, 77)

    def test_config_mistakes_are_usage_errors(self) -> None:
        """A bad file is reported as a usage error carrying the file, line and key."""
        path = self.write("core:\n  routing: random\n")
        self.assertEqual(
            self.usage_error(["-c", path]),
            f"{path}:2: core.routing: unknown value 'random' (expected one of origin, round-robin)",
        )

    def test_scenario_mistakes_are_usage_errors(self) -> None:
        """A bad scenario file stops the start as a usage error naming the file, line and key."""
        path = self.write('name: x\nrules:\n  - match: {destinaton: "1"}\n    status: ESME_RTHROTTLED\n')
        self.assertEqual(
            self.usage_error(["--scenario", path]),
            f"{path}:3: rules[0].match.destinaton: unknown key 'destinaton' (did you mean 'destination'?)",
        )

    def test_oversized_scenario_stops_the_start_in_one_line(self) -> None:
        """A 20 MB --scenario file is refused by its size in one line, quoting none of it."""
        path = self.write("# secret-value\n" * 1_400_000)
        message = self.usage_error(["--scenario", path])
        self.assertEqual(message, f"{path}: {os.path.getsize(path)} bytes, more than the limit of {MAX_BYTES} bytes")

    def test_scenario_alias_bomb_stops_the_start_in_one_line(self) -> None:
        """A --scenario file of nested aliases is refused in one line with its line and the limit."""
        lines = ["rule_sets:", "  one: [&r {match: {destination: '1'}, status: ESME_RTHROTTLED}]"]
        lines += [f"  all: &all [{', '.join(['*r'] * 300)}]"] + [f"  s{i}: *all" for i in range(300)]
        path = self.write("\n".join(lines) + "\n")
        message = self.usage_error(["--scenario", path])
        self.assertTrue(message.startswith(f"{path}:7: more than {MAX_EXPANDED} values once aliases"), message)
        self.assertNotIn("\n", message)

    def test_config_alias_bomb_stops_the_start_in_one_line(self) -> None:
        """A --config file of nested aliases is refused in one line with its line and the limit."""
        lines = ["x-l0: &l0 [" + ", ".join(["a"] * 10) + "]"]
        lines += [f"x-l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 8)]
        path = self.write("\n".join(lines) + "\n")
        message = self.usage_error(["-c", path])
        self.assertTrue(message.startswith(f"{path}:4: more than {MAX_EXPANDED} values once aliases"), message)
        self.assertNotIn("\n", message)

    def test_scenario_dirs_option(self) -> None:
        """--scenario-dirs sets the directories the API may load scenario files from."""
        directory = os.path.realpath(os.path.dirname(self.write("")))
        self.assertEqual(parse(["--scenario-dirs", directory]).scenario_dirs, (directory,))

    def test_unusable_store_stops_the_start_in_one_line(self) -> None:
        """A store that cannot be opened ends makeService with a one-line message, not a traceback."""
        options = Options(environ={})
        options.parseOptions(["--api", "none", "--store", "sqlite:/nonexistent-dir/x.db"])
        error = self.assertRaises(SystemExit, makeService, options)
        self.assertIn("store sqlite:/nonexistent-dir/x.db: cannot open", str(error.code))

    def test_option_mistakes_are_usage_errors(self) -> None:
        """Bad option values are usage errors naming the option."""
        self.assertEqual(
            self.usage_error(["--smpp1", "tcp:port"]),
            "option --listen SMPP1: instances[0].endpoints[0]: bad endpoint 'tcp:port': invalid literal for int() with base 10: 'port'"
            " (expected a Twisted server endpoint such as tcp:2775:interface=127.0.0.1)",
        )
        self.assertEqual(self.usage_error(["--listen", "SMPP1"]), "--listen wants NAME=ENDPOINT, got 'SMPP1'")
        self.assertEqual(self.usage_error(["--account", "esme"]), "--account wants system_id:password, got 'esme'")
        self.assertEqual(
            self.usage_error(["--store", "redis"]),
            "option --store: store: unknown store 'redis' (expected memory or sqlite:PATH)",
        )
        self.assertIn("invalid literal for int()", self.usage_error(["--seed", "abc"]))
        self.assertEqual(
            self.usage_error([], {"SMSC_SIM_TRACE": "perhaps"}),
            "environment variable SMSC_SIM_TRACE: trace: not a boolean: 'perhaps' (expected one of 1, true, yes, on, 0, false, no, off)",
        )

    def test_help_lists_every_option(self) -> None:
        """The help text documents each option."""
        text = str(Options(environ={}))
        for option in (
            "--config",
            "--smpp1",
            "--smpp2",
            "--smpp0",
            "--listen",
            "--api",
            "--api-token",
            "--scenario",
            "--seed",
            "--trace",
            "--store",
            "--conformance-report",
            "--account",
        ):
            self.assertIn(option + ("" if option == "--trace" else "="), text)
        self.assertIn("SMSC_SIM_", text)


class MakeServiceTests(SynchronousTestCase):
    """``makeService``: what twistd calls to build the simulator."""

    def test_hands_the_config_and_the_real_reactor_to_build_service(self) -> None:
        """makeService passes the parsed configuration and the global reactor to build_service, and returns its service."""
        import smsc_sim.service  # here, not at the top: it pulls in the whole simulator

        calls: list[tuple[Config, Any]] = []
        built = MultiService()

        def fake_build_service(config: Config, reactor: Any) -> MultiService:
            calls.append((config, reactor))
            return built

        self.patch(smsc_sim.service, "build_service", fake_build_service)
        policies: list[Any] = []
        self.patch(smsc_sim.tap, "process_gc_policy", policies.append)
        open_files: list[int] = []
        self.patch(smsc_sim.tap, "raise_open_files", open_files.append)
        options = Options(environ={})
        options.parseOptions(["--seed", "5"])
        self.assertIs(makeService(options), built)
        self.assertEqual(policies, [built])
        self.assertEqual(open_files, [10_000 + 256])  # limits.max_connections and some to spare
        from twisted.internet import reactor

        self.assertEqual(calls, [(options.config, reactor)])

    def test_builds_the_simulator_without_listening(self) -> None:
        """The service tree is built from the options and listens on nothing until twistd starts it."""
        self.addCleanup(gc.set_threshold, *gc.get_threshold())  # makeService sets the process's GC policy
        options = Options(environ={})
        options.parseOptions(["--api=", "--smpp1", "tcp:0:interface=127.0.0.1", "--seed", "1"])
        service = makeService(options)
        self.assertTrue(IService.providedBy(service))
        self.assertIsInstance(service, MultiService)
        self.assertFalse(service.running)
