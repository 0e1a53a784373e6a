"""
The bounded YAML reader shared by scenarios and configuration files
(``smsc_sim.yaml_source``): every limit is refused with the file, the line
and the limit, before the work it guards is done, and messages quote at
most a short escaped excerpt of the text.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim import yaml_source
from smsc_sim.yaml_source import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_EXPANDED,
    MAX_NODES,
    BoundedLoader,
    YAMLSourceError,
    excerpt,
    load,
    read_text,
)

SECRET = "hunter2-do-not-echo"


def laughs(levels: int = 9, width: int = 10) -> str:
    """A "billion laughs" document: each level a list of ``width`` aliases of the one before."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


class Recording(BoundedLoader):
    """A bounded loader that lets the test see how far it got."""

    made: list[Recording] = []

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        Recording.made.append(self)


def refused(text: str, loader: type[BoundedLoader] = BoundedLoader) -> YAMLSourceError:
    """The error loading ``text`` as ``doc.yaml`` raises."""
    try:
        load(text, "doc.yaml", lambda loader, node: loader.construct_document(node), loader)
    except YAMLSourceError as e:
        return e
    raise AssertionError("the document was accepted")


class LimitTests(SynchronousTestCase):
    def setUp(self) -> None:
        Recording.made = []

    def test_alias_bomb_refused_before_expansion(self) -> None:
        """A billion-laughs document (10**9 values expanded) is refused having composed only the values it writes."""
        error = refused(laughs(), Recording)
        self.assertIn(f"more than {MAX_EXPANDED} values once aliases are expanded", error.problem)
        self.assertEqual(error.file, "doc.yaml")
        self.assertEqual(error.line, 4)  # l3 (11,111 values) takes the count past 10,000
        [loader] = Recording.made
        self.assertLess(loader.nodes, 60)
        self.assertLessEqual(loader.expanded, MAX_EXPANDED + 10**4)

    def test_merge_key_bomb_refused(self) -> None:
        """Merge keys (``<<: *a``) count what they copy, like any alias."""
        lines = ["a0: &a0 {" + ", ".join(f"k{j}: v" for j in range(10)) + "}"]
        for i in range(1, 8):
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"{{<<: *a{i - 1}}}"] * 10) + "]")
        self.assertIn("once aliases are expanded", refused("\n".join(lines) + "\n").problem)

    def test_self_referring_alias_refused(self) -> None:
        """An alias inside the list it names (an endless document) is refused, not walked forever."""
        error = refused("a: &a [1, *a]\n")
        self.assertEqual((error.line, error.problem), (1, "an alias refers to the mapping or list that contains it"))

    def test_too_many_values_refused(self) -> None:
        """A document writing more than MAX_NODES values is refused at the line where the limit was passed."""
        text = "".join(f"k{i}: {i}\n" for i in range(MAX_NODES))
        error = refused(text)
        self.assertEqual(error.problem, f"more than {MAX_NODES} values in the document (the limit)")
        self.assertEqual(error.line, MAX_NODES // 2)

    def test_deep_nesting_refused(self) -> None:
        """Lists nested deeper than MAX_DEPTH are refused with a message, never a RecursionError."""
        error = refused("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
        self.assertEqual(error.problem, f"mappings and lists nested more than {MAX_DEPTH} deep (the limit)")
        self.assertEqual(error.line, 1)

    def test_nesting_at_the_limit_accepted(self) -> None:
        """Nesting exactly MAX_DEPTH deep is still a document."""
        text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
        value = load(text, "doc.yaml", lambda loader, node: loader.construct_document(node))
        self.assertIsInstance(value, list)

    def test_too_many_bytes_refused(self) -> None:
        """A text over MAX_BYTES is refused by its size, before parsing, and none of it is quoted."""
        error = refused("# " + SECRET * (MAX_BYTES // len(SECRET)) + "\n")
        self.assertIn(f"more than the limit of {MAX_BYTES} bytes", error.problem)
        self.assertNotIn(SECRET, str(error))

    def test_nul_and_control_characters_refused(self) -> None:
        """A NUL byte (or another control character) is a clear error with its line, not a crash."""
        for char in ("\x00", "\x07", "\ufffe"):
            error = refused(f"a: 1\nb: x{char}y\n")
            self.assertEqual(error.line, 2, repr(char))
            self.assertIn(f"#x{ord(char):04x} is not allowed in YAML", error.problem)

    def test_syntax_error_quotes_little(self) -> None:
        """A syntax error names the line; PyYAML's phrase is cut short and the document's text is not echoed."""
        error = refused("a: 1\nb: [" + SECRET * 50 + "\n")
        self.assertEqual(error.file, "doc.yaml")
        self.assertTrue(error.problem.startswith("not valid YAML: "))
        self.assertLessEqual(len(str(error)), 120)
        self.assertNotIn(SECRET * 2, str(error))

    def test_unconvertible_scalar_is_an_error_not_a_crash(self) -> None:
        """A scalar YAML resolves but Python cannot build (a 5,000-digit integer) is a YAMLSourceError."""
        error = refused("a: " + "9" * 5000 + "\n")
        self.assertIn("a value YAML cannot convert", error.problem)
        self.assertNotIn("9" * 100, str(error))

    def test_the_largest_shipped_scenario_is_well_within_the_limits(self) -> None:
        """error-codes.yaml, the largest shipped scenario, uses less than a quarter of each limit."""
        path = os.path.join(os.path.dirname(__file__), "..", "scenarios", "error-codes.yaml")
        text = read_text(path)
        load(text, path, lambda loader, node: loader.construct_document(node), Recording)
        [loader] = Recording.made
        self.assertLess(len(text.encode()), MAX_BYTES // 4)
        self.assertLess(loader.nodes, MAX_NODES // 4)
        self.assertLess(loader.expanded, MAX_EXPANDED // 4)


class ReadTests(SynchronousTestCase):
    def write(self, data: bytes) -> str:
        """A temporary file holding ``data``."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_oversized_file_refused_by_its_size(self) -> None:
        """A 20 MB file is refused from its size alone: one line, the limit, none of its text."""
        path = self.write((SECRET + "\n").encode() * (20_000_000 // (len(SECRET) + 1)))
        error = self.assertRaises(YAMLSourceError, read_text, path)
        self.assertEqual(str(error), f"{path}: {os.path.getsize(path)} bytes, more than the limit of {MAX_BYTES} bytes")

    def test_growing_or_special_file_read_at_most_limit_plus_one(self) -> None:
        """A file that is not a regular file (a device that never ends) is refused without reading it."""
        error = self.assertRaises(YAMLSourceError, read_text, "/dev/zero")
        self.assertEqual(error.problem, "not a regular file")

    def test_not_utf8_refused_with_its_line(self) -> None:
        """Bytes that are not UTF-8 are named by line and offset, not quoted."""
        error = self.assertRaises(YAMLSourceError, read_text, self.write(b"a: 1\nb: \xff\xfe\n"))
        self.assertEqual((error.line, error.problem), (2, "not UTF-8 text (byte 0xff at offset 8)"))

    def test_missing_file(self) -> None:
        """A missing file gives the system's reason."""
        error = self.assertRaises(YAMLSourceError, read_text, "/nonexistent/x.yaml", what="the scenario")
        self.assertEqual(str(error), "/nonexistent/x.yaml: cannot read the scenario: No such file or directory")


class ExcerptTests(SynchronousTestCase):
    def test_short_values_shown_whole(self) -> None:
        """A short value is its repr."""
        self.assertEqual(excerpt("ESME_RTHROTLED"), "'ESME_RTHROTLED'")

    def test_long_values_cut_and_escaped(self) -> None:
        """A long value is cut to 40 characters with an ellipsis; control characters are escaped."""
        shown = excerpt("root:x:0:0\n" * 1000)
        self.assertEqual(shown, repr("root:x:0:0\n" * 1000)[:40] + "...")
        self.assertNotIn("\n", shown)

    def test_non_text_values(self) -> None:
        """Mappings and numbers are cut the same way."""
        value: Any = {f"k{i}": i for i in range(100)}
        self.assertEqual(len(excerpt(value)), 43)
        self.assertEqual(excerpt(12), "12")


class ParserTests(SynchronousTestCase):
    def test_libyaml_used_when_present(self) -> None:
        """With libyaml installed (the image, CI) its parser reads the events: about 5 times faster."""
        if not yaml.__with_libyaml__:
            raise self.skipTest("PyYAML without libyaml")
        from yaml._yaml import CParser

        self.assertTrue(issubclass(yaml_source.BoundedLoader, CParser))
