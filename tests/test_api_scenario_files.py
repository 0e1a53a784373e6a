"""
``PUT /api/v1/scenario`` and files: a scenario given by name or path comes
only from the shipped set, the operator's ``scenario_dirs`` or the directory
of the configured scenario file; anything else is refused with 403 naming
the rule, and no answer quotes more than a short excerpt of any file or body.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any

from smsc_sim.config import default_config
from smsc_sim.testing.memory import MemorySMSC
from smsc_sim.yaml_source import MAX_BYTES, MAX_DEPTH, MAX_EXPANDED
from tests.test_api import APITestCase

SECRET = "hunter2-do-not-echo"
RULE = "name: {name}\nrules:\n  - {{match: {{destination: '1'}}, status: ESME_RTHROTTLED}}\n"


def directory(test: Any) -> str:
    """A fresh temporary directory, removed after the test."""
    path = tempfile.mkdtemp(prefix="smsc-sim-scenarios-")
    test.addCleanup(_remove_tree, path)
    return os.path.realpath(path)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def write(folder: str, name: str, text: str) -> str:
    """Write ``text`` to ``folder/name`` and return the path."""
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class RefusedPathTests(APITestCase):
    """Paths outside the allowed directories, with the default configuration (shipped scenarios only)."""

    def assertRefused(self, name: str) -> dict[str, Any]:
        """PUT ``name``: 403, the rule named, no file content, the active scenario unchanged."""
        code, body = self.call("PUT", "/api/v1/scenario", {"name": name})
        self.assertEqual(code, 403, body)
        message = body["error"]["message"]
        self.assertIn("scenarios load only from the shipped set or scenario_dirs", message)
        self.assertNotIn(SECRET, str(body))
        self.assertNotIn("root:", str(body))
        self.assertEqual(self.call("GET", "/api/v1/scenario")[1]["scenario"]["name"], "default")
        return dict(body["error"])

    def test_etc_passwd_refused_without_its_content(self) -> None:
        """PUT {"name": "/etc/passwd"} answers 403 with the rule, never a line of the file."""
        self.assertRefused("/etc/passwd")

    def test_secret_file_refused_without_its_content(self) -> None:
        """A readable file outside the scenario directories holding a secret: 403, the secret not in the answer."""
        path = write(directory(self), "key.yaml", f"name: {SECRET}\n")
        self.assertRefused(path)

    def test_dot_dot_traversal_refused(self) -> None:
        """A path climbing out of a shipped or configured directory with ``..`` is refused after resolving."""
        outside = directory(self)
        write(outside, "secret.yaml", f"name: {SECRET}\n")
        shipped = os.path.join(os.path.dirname(__file__), "..", "scenarios")
        climbing = os.path.join(shipped, "..", os.path.relpath(outside, os.path.dirname(shipped)), "secret.yaml")
        self.assertRefused(climbing)
        self.assertRefused("../" * 20 + outside.lstrip("/") + "/secret.yaml")

    def test_name_is_not_a_path_in_the_working_directory(self) -> None:
        """A bare name is looked up only among the shipped scenarios, not as a file of the working directory."""
        code, body = self.call("PUT", "/api/v1/scenario", {"name": "setup"})  # ./setup.py exists, setup.yaml does not
        self.assertEqual(code, 400)
        self.assertIn("no scenario named 'setup'", body["error"]["message"])

    def test_long_name_quoted_as_an_excerpt(self) -> None:
        """A 100 kB name is answered with a 40-character excerpt of it."""
        code, body = self.call("PUT", "/api/v1/scenario", {"name": "x" * 100_000})
        self.assertEqual(code, 400)
        self.assertLess(len(body["error"]["message"]), 400)


class AllowedDirectoryTests(APITestCase):
    """``scenario_dirs`` and the directory of the configured scenario file."""

    def setUp(self) -> None:
        self.dirs = directory(self)
        self.home = directory(self)
        started = write(self.home, "started.yaml", RULE.format(name="started"))
        config = dataclasses.replace(default_config(), scenario_dirs=(self.dirs,))
        self.smsc = MemorySMSC(config=config, scenario=started)
        self.addCleanup(self.smsc.stop)

    def put(self, name: str) -> tuple[int, Any]:
        """PUT a scenario by name or path."""
        return self.call("PUT", "/api/v1/scenario", {"name": name})

    def test_file_in_scenario_dirs_by_path_name_and_relative_path(self) -> None:
        """A file in a configured scenario_dirs directory loads by absolute path, by name and by relative path."""
        write(self.dirs, "mine.yaml", RULE.format(name="mine"))
        for name in (os.path.join(self.dirs, "mine.yaml"), "mine", "mine.yaml"):
            code, body = self.put(name)
            self.assertEqual((code, body["scenario"]["name"]), (200, "mine"), name)

    def test_file_next_to_the_started_scenario(self) -> None:
        """A file in the directory of the --scenario file given at start loads."""
        other = write(self.home, "other.yaml", RULE.format(name="other"))
        code, body = self.put(other)
        self.assertEqual((code, body["scenario"]["name"]), (200, "other"))

    def test_shipped_scenarios_still_load(self) -> None:
        """The shipped set stays available by name."""
        self.assertEqual(self.put("throttling")[0], 200)

    def test_symlink_out_of_scenario_dirs_refused(self) -> None:
        """A link inside scenario_dirs to a file outside is refused: the path is checked after resolving links."""
        secret = write(directory(self), "secret.yaml", f"name: {SECRET}\n")
        os.symlink(secret, os.path.join(self.dirs, "link.yaml"))
        for name in ("link", os.path.join(self.dirs, "link.yaml")):
            code, body = self.put(name)
            self.assertIn(code, (400, 403), name)
            self.assertNotIn(SECRET, str(body))

    def test_refusal_names_the_configured_directories(self) -> None:
        """The 403 names the rule and the directories an operator offered."""
        code, body = self.put("/etc/hostname")
        self.assertEqual(code, 403)
        self.assertIn(self.dirs, body["error"]["message"])
        self.assertIn(self.home, body["error"]["message"])

    def test_oversized_file_refused_unread(self) -> None:
        """A 20 MB file in an allowed directory is refused by its size: one line, the limit, none of its text."""
        write(self.dirs, "huge.yaml", ("# " + SECRET + "\n") * (20_000_000 // (len(SECRET) + 3)))
        code, body = self.put("huge")
        self.assertEqual(code, 400)
        message = body["error"]["message"]
        self.assertIn(f"more than the limit of {MAX_BYTES} bytes", message)
        self.assertNotIn(SECRET, message)
        self.assertNotIn("\n", message)

    def test_file_content_never_echoed_in_a_parse_error(self) -> None:
        """An allowed file that is not a scenario is named with line and problem, quoting at most 40 characters."""
        write(self.dirs, "notes.yaml", "padding-" * 6 + SECRET * 1000 + "\n")
        code, body = self.put("notes")
        self.assertEqual(code, 400)
        self.assertIn("notes.yaml:1: expected a mapping", body["error"]["message"])
        self.assertIn("'padding-padding-", body["error"]["message"])
        self.assertNotIn(SECRET, str(body))


class BodyBoundTests(APITestCase):
    """Scenario YAML sent as text: the same bounds, answered with 400 and a short message."""

    def put_yaml(self, text: str) -> tuple[int, Any]:
        """PUT a scenario as YAML text."""
        return self.call("PUT", "/api/v1/scenario", {"yaml": text})

    def test_alias_bomb_refused(self) -> None:
        """A 5 kB body whose aliases make 90,000 rules is refused with 400 naming the limit and the line."""
        text = "rule_sets:\n  one: [&r {match: {destination: '1'}, status: ESME_RTHROTTLED}]\n"
        text += f"  all: &all [{', '.join(['*r'] * 300)}]\n"
        text += "".join(f"  s{i}: *all\n" for i in range(300))
        self.assertLess(len(text), 6_000)
        code, body = self.put_yaml(text)
        self.assertEqual(code, 400, str(body)[:200])
        self.assertIn(f"more than {MAX_EXPANDED} values once aliases are expanded", body["error"]["message"])
        self.assertEqual((body["error"]["file"], body["error"]["line"]), ("<request body>", 7))  # s3: 4 x 2,101 values
        self.assertEqual(self.call("GET", "/api/v1/scenario")[1]["scenario"]["name"], "default")

    def test_deep_nesting_refused(self) -> None:
        """10,000 nested lists answer 400 naming the depth limit, not 500."""
        code, body = self.put_yaml("rules: " + "[" * 10_000 + "]" * 10_000 + "\n")
        self.assertEqual(code, 400)
        self.assertIn(f"nested more than {MAX_DEPTH} deep", body["error"]["message"])

    def test_nul_byte_refused(self) -> None:
        """
        A NUL byte in the YAML answers 400, not 500, and the scenario stays:
        the API refuses NUL in any JSON body before the YAML is read (the
        YAML reader's own refusal, with its line, is tested in test_yaml_source).
        """
        code, body = self.put_yaml("name: a\ndescription: b\x00c\n")
        self.assertEqual(code, 400)
        self.assertIn("NUL", body["error"]["message"])
        self.assertEqual(self.call("GET", "/api/v1/scenario")[1]["scenario"]["name"], "default")

    def test_long_values_quoted_as_excerpts(self) -> None:
        """A bad 100 kB value is quoted as a 40-character excerpt."""
        code, body = self.put_yaml("name: x\nrules: " + SECRET * 5000 + "\n")
        self.assertEqual(code, 400)
        self.assertLess(len(body["error"]["message"]), 300)
        self.assertIn(f"expected a list, got {SECRET * 2!r}"[:-1][:60], body["error"]["message"])
