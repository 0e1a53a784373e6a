"""
Tests for :mod:`smsc_sim.config_loader`: every class of configuration mistake
gets a message naming where it is, and the layers apply in the order
default < file < environment < options.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from typing import Any, Mapping

from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.config import AccountSettings, Config, CoreSettings, InstanceSettings, SessionSettings, default_config
from smsc_sim.config_loader import ConfigError, load_config
from smsc_sim.yaml_source import MAX_BYTES, MAX_EXPANDED


class _Files(SynchronousTestCase):
    """Helpers writing a YAML file and loading it."""

    def write(self, text: str) -> str:
        """Write ``text`` to a fresh file and return its path."""
        directory = tempfile.mkdtemp(prefix="smsc-sim-test-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "smsc-sim.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def load(
        self, text: str | None, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Any:
        """Load ``text`` (or no file when ``None``)."""
        path = None if text is None else self.write(text)
        return load_config(path, overrides or {}, environ or {})

    def error(
        self, text: str | None, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> str:
        """The message of the ConfigError that loading ``text`` raises, with the file path shown as FILE."""
        path = None if text is None else self.write(text)
        e = self.assertRaises(ConfigError, load_config, path, overrides or {}, environ or {})
        self.assertIsInstance(e, ValueError)
        return str(e).replace(path, "FILE") if path else str(e)


class FileTests(_Files):
    """Reading the YAML file."""

    def test_no_file_is_the_embedded_default(self) -> None:
        """With no file, no variables and no options, the provider topology on loopback runs."""
        config = load_config(None, {}, {})
        self.assertEqual(config, default_config())
        self.assertEqual([i.name for i in config.instances], ["SMPP1", "SMPP2", "SMPP0"])
        self.assertEqual(config.source, "<embedded default>")

    def test_empty_file_is_the_default(self) -> None:
        """An empty file changes nothing but the recorded source."""
        path = self.write("")
        config = load_config(path, {}, {})
        self.assertEqual(config.source, path)
        self.assertEqual(dataclasses.replace(config, source="<embedded default>"), default_config())

    def test_file_changes_only_what_it_names(self) -> None:
        """A key in session or core replaces that default alone; the rest keep their defaults."""
        config = self.load("session:\n  enquire_link_interval: 5\ncore:\n  routing: round-robin\nseed: 7\n")
        self.assertEqual(config.session.enquire_link_interval, 5.0)
        self.assertEqual(config.session.response_timeout, default_config().session.response_timeout)
        self.assertEqual(config.core.routing, "round-robin")
        self.assertEqual(config.seed, 7)
        self.assertEqual(config.instances, default_config().instances)

    def test_instances_and_accounts_replace_the_defaults(self) -> None:
        """Instances listed in the file are the only ones; cluster and system_id default to the name."""
        config = self.load(
            "instances:\n"
            "  - name: EU1\n"
            "    endpoints: ['tcp:0:interface=127.0.0.1']\n"
            "  - name: EU2\n"
            "    cluster: EU1\n"
            "    endpoints: ['tcp:0:interface=127.0.0.1', 'unix:/tmp/eu2.sock']\n"
            "    latency: 0.5\n"
            "accounts:\n"
            "  - {system_id: esme, password: secret, max_binds: 4, allowed_addresses: [10.0.0.0/8]}\n"
        )
        self.assertEqual(
            [(i.name, i.cluster, i.system_id) for i in config.instances], [("EU1", "EU1", "EU1"), ("EU2", "EU1", "EU2")]
        )
        self.assertEqual(config.instances[1].endpoints, ("tcp:0:interface=127.0.0.1", "unix:/tmp/eu2.sock"))
        self.assertEqual(config.instances[1].latency, 0.5)
        self.assertEqual(
            config.accounts, (AccountSettings("esme", "secret", max_binds=4, allowed_addresses=("10.0.0.0/8",)),)
        )
        self.assertEqual(list(config.clusters()), ["EU1"])

    def test_anchors_under_x_keys(self) -> None:
        """Top-level keys starting with x- are ignored, so they can hold YAML anchors merged elsewhere."""
        config = self.load(
            "x-account: &acct {max_binds: 5, throughput: 10}\n"
            "accounts:\n"
            "  - <<: *acct\n"
            "    system_id: a\n"
            "    password: pw\n"
        )
        self.assertEqual((config.accounts[0].max_binds, config.accounts[0].throughput), (5, 10.0))

    def test_missing_file(self) -> None:
        """A file that does not exist is named, with the system's reason."""
        message = self.error(None, environ={"SMSC_SIM_CONFIG": "/nonexistent/smsc.yaml"})
        self.assertEqual(
            message, "/nonexistent/smsc.yaml: cannot read the configuration file: No such file or directory"
        )

    def test_yaml_syntax_error(self) -> None:
        """Broken YAML is reported with its line (the wording is libyaml's or PyYAML's, whichever parses)."""
        self.assertRegex(self.error("session:\n  a: [1, 2\n"), r"^FILE:3: not valid YAML: .*expected ',' or '\]'")

    def test_duplicate_key(self) -> None:
        """A key given twice in one mapping is an error, not a silent override."""
        self.assertEqual(self.error("seed: 1\nseed: 2\n"), "FILE:2: seed: duplicate key (first on line 1)")

    def test_top_level_not_a_mapping(self) -> None:
        """A file whose top level is a list says what it should be."""
        self.assertEqual(
            self.error("- a\n- b\n"),
            "FILE:1: (top level): not a mapping (expected keys such as instances, accounts, session, core)",
        )

    def test_non_string_key(self) -> None:
        """Keys must be strings."""
        self.assertEqual(self.error("session:\n  1: 2\n"), "FILE:2: 1: keys must be strings")


class MistakeTests(_Files):
    """Each class of mistake in the file, with its message."""

    def test_unknown_top_level_key_suggests(self) -> None:
        """A misspelt top-level key names the closest real one."""
        message = self.error("scenarios: throttle\n")
        self.assertTrue(
            message.startswith("FILE:1: scenarios: unknown key, did you mean 'scenario'? (expected one of instances, "),
            message,
        )

    def test_unknown_nested_key_suggests(self) -> None:
        """A misspelt session key is reported with its full path and line."""
        message = self.error("session:\n  response_timeout: 3\n  enquire_link_intervall: 5\n")
        self.assertTrue(
            message.startswith(
                "FILE:3: session.enquire_link_intervall: unknown key, did you mean 'enquire_link_interval'?"
            ),
            message,
        )

    def test_unknown_key_in_instance(self) -> None:
        """A misspelt key inside a list item names the item's index."""
        message = self.error("instances:\n  - name: A\n    endpoint: ['tcp:1']\n")
        self.assertTrue(
            message.startswith("FILE:3: instances[0].endpoint: unknown key, did you mean 'endpoints'?"), message
        )

    def test_unknown_key_without_suggestion(self) -> None:
        """A key like nothing known lists what is allowed, without a guess."""
        message = self.error("core:\n  zzz: 1\n")
        self.assertTrue(
            message.startswith("FILE:2: core.zzz: unknown key (expected one of message_id_format, "), message
        )

    def test_wrong_types(self) -> None:
        """Strings for numbers, booleans for integers and scalars for mappings are refused."""
        self.assertEqual(
            self.error("session:\n  response_timeout: soon\n"),
            "FILE:2: session.response_timeout: wrong type: 'soon' (str) (expected a number)",
        )
        self.assertEqual(
            self.error("session:\n  max_pdu_size: true\n"),
            "FILE:2: session.max_pdu_size: wrong type: True (bool) (expected an integer)",
        )
        self.assertEqual(self.error("trace: 1\n"), "FILE:1: trace: wrong type: 1 (int) (expected true or false)")
        self.assertEqual(
            self.error("session: 3\n"),
            "FILE:1: session: not a mapping: 3 (int) (expected a mapping of SessionSettings keys)",
        )
        self.assertEqual(
            self.error("accounts: {a: b}\n"),
            "FILE:1: accounts: not a list: a mapping (expected a list of AccountSettings mappings)",
        )
        self.assertEqual(
            self.error("instances:\n  - name: A\n    endpoints: tcp:1\n"),
            "FILE:3: instances[0].endpoints: not a list: 'tcp:1' (str) (expected a list of strings)",
        )
        self.assertEqual(
            self.error("session:\n  response_timeout: .inf\n"),
            "FILE:2: session.response_timeout: not a finite number: inf (expected a number)",
        )

    def test_bad_endpoints(self) -> None:
        """Endpoint strings are parsed as Twisted would, without listening."""
        self.assertEqual(
            self.error("instances:\n  - name: A\n    endpoints: ['tcp:abc']\n"),
            "FILE:3: instances[0].endpoints[0]: bad endpoint 'tcp:abc': invalid literal for int() with base 10: 'abc'"
            " (expected a Twisted server endpoint such as tcp:2775:interface=127.0.0.1)",
        )
        self.assertIn(
            "bad endpoint '2775': Unknown endpoint type: '2775'",
            self.error("instances:\n  - {name: A, endpoints: ['2775']}\n"),
        )
        self.assertIn(
            "bad endpoint 'tcp:1:colour=red'",
            self.error("instances:\n  - {name: A, endpoints: ['tcp:1:colour=red']}\n"),
        )
        self.assertEqual(
            self.error("instances:\n  - {name: A, endpoints: ['tcp:70000']}\n"),
            "FILE:2: instances[0].endpoints[0]: bad endpoint 'tcp:70000': port 70000 out of range (expected a port from 0 to 65535)",
        )
        self.assertIn("FILE:1: api_endpoint: bad endpoint 'http:8080'", self.error("api_endpoint: 'http:8080'\n"))

    def test_duplicate_instance_names(self) -> None:
        """Two instances may not share a name, whatever the case."""
        self.assertEqual(
            self.error(
                "instances:\n  - {name: SMPP1, endpoints: ['tcp:1']}\n  - {name: smpp1, endpoints: ['tcp:2']}\n"
            ),
            "FILE:3: instances[1]: duplicate instance name 'smpp1' (also instances[0]) (expected a unique instance name)",
        )

    def test_duplicate_accounts(self) -> None:
        """Two accounts may not share a system_id."""
        self.assertEqual(
            self.error("accounts:\n  - {system_id: a, password: x}\n  - {system_id: a, password: y}\n"),
            "FILE:3: accounts[1]: duplicate system_id 'a' (also accounts[0]) (expected a unique system_id)",
        )

    def test_instance_without_endpoints(self) -> None:
        """An instance with an empty endpoint list, or none at all, is refused."""
        self.assertEqual(
            self.error("instances:\n  - name: A\n    endpoints: []\n"),
            "FILE:3: instances[0].endpoints: no endpoints (expected at least one endpoint such as tcp:2775:interface=127.0.0.1)",
        )
        self.assertEqual(self.error("instances:\n  - name: A\n"), "FILE:2: instances[0]: missing key 'endpoints'")
        self.assertEqual(
            self.error("instances: []\n"), "FILE:1: instances: no instances (expected at least one SMPP instance)"
        )

    def test_bad_instance_name(self) -> None:
        """Instance names must fit in an environment variable name."""
        self.assertEqual(
            self.error("instances:\n  - {name: 'SMPP 1', endpoints: ['tcp:1']}\n"),
            "FILE:2: instances[0].name: bad instance name 'SMPP 1' (expected 1 to 32 letters, digits, '_' or '-')",
        )

    def test_reassembly_incomplete(self) -> None:
        """core.reassembly_incomplete takes deliver or undeliverable (the default); any other word is refused."""
        self.assertEqual(CoreSettings().reassembly_incomplete, "undeliverable")
        config = self.load("core:\n  reassembly_incomplete: deliver\n")
        self.assertEqual(config.core.reassembly_incomplete, "deliver")
        self.assertEqual(
            self.error("core:\n  reassembly_incomplete: drop\n"),
            "FILE:2: core.reassembly_incomplete: unknown value 'drop' (expected one of undeliverable, deliver)",
        )

    def test_unknown_choices(self) -> None:
        """Words with a fixed set of values list the allowed ones."""
        self.assertEqual(
            self.error("core:\n  message_id_format: uuid\n"),
            "FILE:2: core.message_id_format: unknown value 'uuid' (expected one of hex16, decimal)",
        )
        self.assertEqual(
            self.error("core:\n  routing: random\n"),
            "FILE:2: core.routing: unknown value 'random' (expected one of origin, round-robin)",
        )
        self.assertEqual(
            self.error("accounts:\n  - {system_id: a, password: b, default_alphabet: ascii}\n"),
            "FILE:2: accounts[0].default_alphabet: unknown value 'ascii' (expected one of latin-1, gsm0338)",
        )
        self.assertEqual(
            self.error("accounts:\n  - {system_id: a, password: b, receipts_as: sms}\n"),
            "FILE:2: accounts[0].receipts_as: unknown value 'sms' (expected one of deliver_sm, data_sm)",
        )
        self.assertEqual(
            self.error("store: redis\n"), "FILE:1: store: unknown store 'redis' (expected memory or sqlite:PATH)"
        )

    def test_negative_timers_and_ranges(self) -> None:
        """Timers may not be negative, and sizes have lower bounds."""
        self.assertEqual(
            self.error("session:\n  inactivity_timeout: -1\n"),
            "FILE:2: session.inactivity_timeout: negative: -1 (expected 0 or more; 0 switches a timer off)",
        )
        self.assertEqual(
            self.error("core:\n  pending_expiry: -0.5\n"),
            "FILE:2: core.pending_expiry: negative: -0.5 (expected 0 or more; 0 switches a timer off)",
        )
        self.assertEqual(
            self.error("session:\n  outbound_window: 0\n"),
            "FILE:2: session.outbound_window: out of range: 0 (expected 1 or more)",
        )
        self.assertEqual(
            self.error("session:\n  max_pdu_size: 15\n"),
            "FILE:2: session.max_pdu_size: out of range: 15 (expected 16 or more)",
        )
        self.assertEqual(
            self.error("instances:\n  - {name: A, endpoints: ['tcp:1'], sc_interface_version: 256}\n"),
            "FILE:2: instances[0].sc_interface_version: out of range: 256 (expected 0 to 255)",
        )

    def test_smpp_field_limits_on_accounts(self) -> None:
        """Credentials longer than SMPP allows could never bind, so they are refused."""
        self.assertEqual(
            self.error("accounts:\n  - {system_id: a, password: '123456789'}\n"),
            "FILE:2: accounts[0].password: too long (9 characters) (expected at most 8 characters, the SMPP limit)",
        )
        self.assertEqual(
            self.error("accounts:\n  - {system_id: '0123456789abcdef', password: x}\n"),
            "FILE:2: accounts[0].system_id: bad length (16 characters) (expected 1 to 15 characters, the SMPP limit)",
        )
        self.assertEqual(
            self.error("accounts:\n  - {system_id: a, password: b, allowed_addresses: [10.0.0.300/8]}\n"),
            "FILE:2: accounts[0].allowed_addresses[0]: not an address range: '10.0.0.300/8' (expected CIDR such as 10.0.0.0/8)",
        )

    def test_api_none_disables(self) -> None:
        """api_endpoint 'none' (or empty) means no control API; an empty token means no token."""
        config = self.load("api_endpoint: none\napi_token: ''\n")
        self.assertEqual((config.api_endpoint, config.api_token), ("", None))


class EnvironmentTests(_Files):
    """The SMSC_SIM_* variables."""

    def test_simple_variables(self) -> None:
        """Each variable sets its value over the file's."""
        config = self.load(
            "scenario: throttle\nseed: 1\n",
            environ={
                "SMSC_SIM_SCENARIO": "outage",
                "SMSC_SIM_SEED": "42",
                "SMSC_SIM_API": "tcp:0:interface=127.0.0.1",
                "SMSC_SIM_API_TOKEN": "t0ken",
                "SMSC_SIM_TRACE": "yes",
                "SMSC_SIM_STORE": "sqlite:/tmp/sim.db",
                "SMSC_SIM_ACCOUNTS": "esme1:pw1, esme2:pw:2",
            },
        )
        self.assertEqual(
            (config.scenario, config.seed, config.api_endpoint, config.api_token, config.trace, config.store),
            ("outage", 42, "tcp:0:interface=127.0.0.1", "t0ken", True, "sqlite:/tmp/sim.db"),
        )
        self.assertEqual([(a.system_id, a.password) for a in config.accounts], [("esme1", "pw1"), ("esme2", "pw:2")])

    def test_config_variable_names_the_file(self) -> None:
        """SMSC_SIM_CONFIG is used when no path is given, and a given path wins over it."""
        env_file, arg_file = self.write("seed: 1\n"), self.write("seed: 2\n")
        self.assertEqual(load_config(None, {}, {"SMSC_SIM_CONFIG": env_file}).seed, 1)
        self.assertEqual(load_config(arg_file, {}, {"SMSC_SIM_CONFIG": env_file}).seed, 2)
        self.assertEqual(load_config(None, {}, {"SMSC_SIM_CONFIG": env_file}).source, env_file)

    def test_empty_variables_count_as_unset(self) -> None:
        """An empty variable (as compose files often leave) changes nothing; 'none' switches the API off."""
        config = self.load(None, environ={"SMSC_SIM_API": "", "SMSC_SIM_SEED": "", "SMSC_SIM_CONFIG": ""})
        self.assertEqual(config, default_config())
        self.assertEqual(self.load(None, environ={"SMSC_SIM_API": "none"}).api_endpoint, "")

    def test_instance_endpoint_variable(self) -> None:
        """SMSC_SIM_<INSTANCE>_ENDPOINT replaces that instance's first endpoint, case-insensitively."""
        config = self.load(
            "instances:\n  - {name: eu-1, endpoints: ['tcp:1', 'tcp:2']}\n",
            environ={"SMSC_SIM_EU_1_ENDPOINT": "tcp:0:interface=127.0.0.1"},
        )
        self.assertEqual(config.instances[0].endpoints, ("tcp:0:interface=127.0.0.1", "tcp:2"))
        config = self.load(None, environ={"SMSC_SIM_SMPP2_ENDPOINT": "tcp:9000"})
        self.assertEqual(
            [i.endpoints[0] for i in config.instances],
            ["tcp:2775:interface=127.0.0.1", "tcp:9000", "tcp:2777:interface=127.0.0.1"],
        )

    def test_endpoint_variable_for_unknown_instance(self) -> None:
        """A variable naming no instance is an error listing the instances (with a hint for the API)."""
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_SMPP3_ENDPOINT": "tcp:1"}),
            "environment variable SMSC_SIM_SMPP3_ENDPOINT: instances: no instance named 'SMPP3' (expected one of SMPP1, SMPP2, SMPP0)",
        )
        self.assertIn("the API endpoint is SMSC_SIM_API", self.error(None, environ={"SMSC_SIM_API_ENDPOINT": "tcp:1"}))

    def test_bad_endpoint_variable(self) -> None:
        """A bad endpoint in a variable names the variable."""
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_SMPP1_ENDPOINT": "tcp:x"}),
            "environment variable SMSC_SIM_SMPP1_ENDPOINT: instances[0].endpoints[0]: bad endpoint 'tcp:x':"
            " invalid literal for int() with base 10: 'x' (expected a Twisted server endpoint such as tcp:2775:interface=127.0.0.1)",
        )

    def test_listen_host_rewrites_default_endpoints(self) -> None:
        """SMSC_SIM_LISTEN_HOST moves every default and file listener, the API too, to that address."""
        config = self.load(None, environ={"SMSC_SIM_LISTEN_HOST": "0.0.0.0"})
        self.assertEqual(
            [i.endpoints for i in config.instances],
            [("tcp:2775:interface=0.0.0.0",), ("tcp:2776:interface=0.0.0.0",), ("tcp:2777:interface=0.0.0.0",)],
        )
        self.assertEqual(config.api_endpoint, "tcp:8775:interface=0.0.0.0")

    def test_listen_host_leaves_explicit_endpoints(self) -> None:
        """Endpoints given by variable or option are taken as written; non-TCP ones are untouched; IPv6 is escaped."""
        config = self.load(
            "instances:\n  - {name: A, endpoints: ['tcp:1', 'unix:/tmp/a.sock']}\n  - {name: B, endpoints: ['tcp:2']}\n",
            overrides={"listen": {"B": "tcp:3:interface=127.0.0.1"}},
            environ={"SMSC_SIM_LISTEN_HOST": "::", "SMSC_SIM_API": "tcp:4:interface=127.0.0.1"},
        )
        self.assertEqual(
            [i.endpoints for i in config.instances],
            [("tcp:1:interface=\\:\\:", "unix:/tmp/a.sock"), ("tcp:3:interface=127.0.0.1",)],
        )
        self.assertEqual(config.api_endpoint, "tcp:4:interface=127.0.0.1")

    def test_bad_variables(self) -> None:
        """Values that do not parse name their variable."""
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_SEED": "x"}),
            "environment variable SMSC_SIM_SEED: seed: not an integer: 'x' (expected an integer)",
        )
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_TRACE": "maybe"}),
            "environment variable SMSC_SIM_TRACE: trace: not a boolean: 'maybe' (expected one of 1, true, yes, on, 0, false, no, off)",
        )
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_ACCOUNTS": "alice"}),
            "environment variable SMSC_SIM_ACCOUNTS: accounts[0]: not system_id:password: 'alice' (expected system_id:password)",
        )
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_LISTEN_HOST": "everywhere"}),
            "environment variable SMSC_SIM_LISTEN_HOST: listen host: not an IP address: 'everywhere' (expected an address such as 0.0.0.0 or ::)",
        )
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_STORE": "sqlite:"}),
            "environment variable SMSC_SIM_STORE: store: unknown store 'sqlite:' (expected memory or sqlite:PATH)",
        )

    def test_unrelated_variables_are_ignored(self) -> None:
        """Variables outside SMSC_SIM_*, and SMSC_SIM_* ones this loader does not know, change nothing."""
        self.assertEqual(
            self.load(None, environ={"HOME": "/root", "SMSC_SIM_KANNEL_PATH": "/usr/sbin"}), default_config()
        )


class PrecedenceTests(_Files):
    """default < file < environment < options."""

    def test_each_layer_overrides_the_one_below(self) -> None:
        """A value set in the file, the environment and an option takes the option's value."""
        text = "scenario: file\nseed: 1\napi_endpoint: 'tcp:1'\ntrace: false\nstore: memory\n"
        environ = {
            "SMSC_SIM_SCENARIO": "env",
            "SMSC_SIM_SEED": "2",
            "SMSC_SIM_API": "tcp:2",
            "SMSC_SIM_STORE": "sqlite:env.db",
        }
        overrides = {"scenario": "opt", "seed": 3, "api_endpoint": "tcp:3", "trace": True, "store": "sqlite:opt.db"}
        self.assertEqual(self.load(text).scenario, "file")
        self.assertEqual((self.load(text, environ=environ).scenario, self.load(text, environ=environ).seed), ("env", 2))
        config = self.load(text, overrides, environ)
        self.assertEqual(
            (config.scenario, config.seed, config.api_endpoint, config.trace, config.store),
            ("opt", 3, "tcp:3", True, "sqlite:opt.db"),
        )

    def test_none_overrides_are_ignored(self) -> None:
        """An option not given (None) leaves the lower layers alone."""
        config = self.load(
            "seed: 5\n",
            {"seed": None, "scenario": None, "listen": None, "accounts": None},
            {"SMSC_SIM_SCENARIO": "env"},
        )
        self.assertEqual((config.seed, config.scenario), (5, "env"))

    def test_endpoint_precedence(self) -> None:
        """An option's endpoint beats the variable's, which beats the file's."""
        text = "instances:\n  - {name: SMPP1, endpoints: ['tcp:1']}\n"
        self.assertEqual(self.load(text).instances[0].endpoints, ("tcp:1",))
        self.assertEqual(
            self.load(text, environ={"SMSC_SIM_SMPP1_ENDPOINT": "tcp:2"}).instances[0].endpoints, ("tcp:2",)
        )
        config = self.load(text, {"listen": {"smpp1": "tcp:3"}}, {"SMSC_SIM_SMPP1_ENDPOINT": "tcp:2"})
        self.assertEqual(config.instances[0].endpoints, ("tcp:3",))

    def test_accounts_option_replaces_and_keeps_known_settings(self) -> None:
        """Accounts from options replace the file's list; one the file knows keeps its other settings."""
        text = "accounts:\n  - {system_id: a, password: old, throughput: 99}\n  - {system_id: b, password: x}\n"
        config = self.load(text, {"accounts": ["a:new", "c:pw"]}, {"SMSC_SIM_ACCOUNTS": "b:y"})
        self.assertEqual(config.accounts, (AccountSettings("a", "new", throughput=99.0), AccountSettings("c", "pw")))

    def test_option_mistakes_name_the_option(self) -> None:
        """A bad value from the command line names its option."""
        self.assertEqual(
            self.error(None, {"listen": {"SMPP9": "tcp:1"}}),
            "option --listen SMPP9: instances: no instance named 'SMPP9' (expected one of SMPP1, SMPP2, SMPP0)",
        )
        self.assertEqual(
            self.error(None, {"accounts": ["a:123456789"]}),
            "option --account: accounts[0].password: too long (9 characters) (expected at most 8 characters, the SMPP limit)",
        )
        self.assertEqual(
            self.error(None, {"accounts": ["a:1", "a:2"]}),
            "option --account: accounts[1]: duplicate system_id 'a' (also accounts[0]) (expected a unique system_id)",
        )
        self.assertIn("option --api: api_endpoint: bad endpoint 'tcp:x'", self.error(None, {"api_endpoint": "tcp:x"}))
        self.assertEqual(
            self.error(None, {"scenario": ""}),
            "option --scenario: scenario: empty scenario (expected a shipped scenario name or a path to a YAML file)",
        )
        self.assertTrue(
            self.error(None, {"colour": "red"}).startswith("unknown override 'colour' (expected one of scenario, ")
        )

    def test_environ_is_not_read_from_the_process(self) -> None:
        """Only the mapping passed in is read, so tests and embedders control the environment."""
        os.environ["SMSC_SIM_SEED"] = "not-a-number"
        self.addCleanup(os.environ.pop, "SMSC_SIM_SEED")
        self.assertEqual(load_config(None, {}, {}).seed, None)


class ReadmeTests(_Files):
    """The configuration example in README.md."""

    def readme_example(self) -> str:
        """The first YAML block of README.md: the annotated configuration file."""
        readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
        with open(readme, encoding="utf-8") as f:
            return re.findall(r"```yaml\n(.*?)```", f.read(), re.S)[0]

    def test_readme_example_is_the_default(self) -> None:
        """The README's annotated file loads without error and spells out exactly the embedded default."""
        config = self.load(self.readme_example())
        self.assertEqual(dataclasses.replace(config, source="<embedded default>"), default_config())

    def test_readme_example_names_every_key(self) -> None:
        """Every key of the configuration model appears in the README's example, so the docs keep up with the model."""
        text = self.readme_example()
        for cls in (Config, InstanceSettings, SessionSettings, CoreSettings, AccountSettings):
            for field in dataclasses.fields(cls):
                if field.name != "source":
                    self.assertRegex(
                        text, rf"(?m)^[ -]*{field.name}:", f"{cls.__name__}.{field.name} is not in README.md"
                    )


class BoundTests(_Files):
    """The YAML bounds, for configuration files: one line naming the file, the line and the limit."""

    def test_alias_bomb_is_one_line_error(self) -> None:
        """A configuration of nested aliases (10**8 values expanded) is refused in one line naming line and limit."""
        lines = ["x-l0: &l0 [" + ", ".join(["a"] * 10) + "]"]
        lines += [f"x-l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 8)]
        message = self.error("\n".join(lines) + "\n")
        self.assertEqual(
            message,
            f"FILE:4: more than {MAX_EXPANDED} values once aliases are expanded "
            "(the limit; aliases (*name) count every value they repeat)",
        )

    def test_oversized_file_refused_unread(self) -> None:
        """A 20 MB configuration file is refused by its size, in one line, quoting none of it."""
        message = self.error("# secret-value\n" * 1_400_000)
        self.assertRegex(message, rf"^FILE: \d+ bytes, more than the limit of {MAX_BYTES} bytes$")

    def test_nul_byte_is_one_line_error(self) -> None:
        """A NUL byte is named by line, not a traceback."""
        self.assertEqual(
            self.error("session:\n  unbind_timeout: 2\x00\n"),
            "FILE:2: character #x0000 is not allowed in YAML (NUL and other control characters)",
        )

    def test_long_bad_value_quoted_as_excerpt(self) -> None:
        """A bad value of 100 kB is quoted as a 40-character excerpt."""
        message = self.error("core:\n  routing: " + "secret" * 20_000 + "\n")
        self.assertLess(len(message), 200)
        self.assertIn("unknown value 'secretsecretsecretsecretsecretsecretsec...", message)


class ScenarioDirsTests(_Files):
    """``scenario_dirs``: the directories the API may load scenario files from."""

    def test_from_file_environment_and_option(self) -> None:
        """The file's list, SMSC_SIM_SCENARIO_DIRS and --scenario-dirs (':'-separated) each set it, made absolute."""
        a, b = (os.path.realpath(tempfile.mkdtemp(prefix="smsc-sim-dirs-")) for _ in range(2))
        self.addCleanup(shutil.rmtree, a)
        self.addCleanup(shutil.rmtree, b)
        self.assertEqual(self.load(f"scenario_dirs: [{a}]\n").scenario_dirs, (a,))
        environ = {"SMSC_SIM_SCENARIO_DIRS": f"{a}{os.pathsep}{b}"}
        self.assertEqual(self.load(None, environ=environ).scenario_dirs, (a, b))
        self.assertEqual(self.load(None, {"scenario_dirs": b}, environ).scenario_dirs, (b,))
        self.assertEqual(self.load(None).scenario_dirs, ())

    def test_missing_directory_refused(self) -> None:
        """A directory that does not exist stops the start, naming where it was given."""
        self.assertEqual(
            self.error(None, environ={"SMSC_SIM_SCENARIO_DIRS": "/nonexistent-dir"}),
            "environment variable SMSC_SIM_SCENARIO_DIRS: scenario_dirs[0]: not a directory: '/nonexistent-dir' "
            "(expected an existing directory of scenarios)",
        )
