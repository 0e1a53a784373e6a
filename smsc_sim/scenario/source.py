"""
Reading scenario YAML while keeping where every value came from.

PyYAML's safe loader forgets line numbers once it has built Python values, so
this module constructs mappings and sequences as :class:`LineDict` and
:class:`LineList`, which remember the line of every key and item and the raw
text of every scalar (a prefix such as ``0044`` must stay a string even when
YAML would read it as a number).  A :class:`Cursor` walks that tree with a
key path such as ``rules[2].match.destination`` and turns every mistake into
a :class:`ScenarioError` naming the file, the line and the path.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Iterator

import yaml

from smsc_sim import yaml_source
from smsc_sim.yaml_source import BoundedLoader, YAMLSourceError, excerpt

__all__ = ["Cursor", "LineDict", "LineList", "ScenarioError", "excerpt", "load_yaml", "suggest"]

#: longest key path shown in a message (keys come from the file)
_PATH_CHARS = 120
#: longest problem shown (a list of names taken from the file could be any length)
_PROBLEM_CHARS = 300


class ScenarioError(ValueError):
    """
    A scenario file that cannot be used, with where and why.

    ``str()`` reads ``scenarios/x.yaml:12: rules[2].match.destinaton: unknown key
    'destinaton' (did you mean 'destination'?)``.

    :ivar file: the file name (or ``<string>``).
    :ivar line: 1-based line number, 0 when unknown.
    :ivar path: the key path, empty for the whole document.
    :ivar problem: what is wrong and what would be right.
    """

    def __init__(self, file: str, line: int, path: str, problem: str) -> None:
        if len(path) > _PATH_CHARS:  # a key of the file may be any length: show its start only
            path = path[:_PATH_CHARS] + "..."
        if len(problem) > _PROBLEM_CHARS:  # a last guard: values are quoted as excerpts already
            problem = problem[:_PROBLEM_CHARS] + "..."
        self.file = file
        self.line = line
        self.path = path
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {path}: {problem}" if path else f"{where}: {problem}")


class LineDict(dict[Any, Any]):
    """A YAML mapping that remembers its own line and those of its keys."""

    line: int = 0
    key_lines: dict[Any, int]
    raw: dict[Any, str]


class LineList(list[Any]):
    """A YAML sequence that remembers its own line and those of its items."""

    line: int = 0
    item_lines: list[int]
    raw: dict[int, str]


class _LineLoader(BoundedLoader):
    """Safe loading (no object construction) within the YAML bounds, recording lines."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.raw = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise ScenarioError(loader.file_name, line, "", "a mapping key must be a plain value") from None
        if key in result:
            first = result.key_lines[key]
            raise ScenarioError(loader.file_name, line, str(key), f"duplicate key (first given on line {first})")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
        if isinstance(value_node, yaml.ScalarNode):
            result.raw[key] = value_node.value
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    result.raw = {i: child.value for i, child in enumerate(node.value) if isinstance(child, yaml.ScalarNode)}
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str, file: str) -> Any:
    """
    Parse one YAML document safely, within the bounds of :mod:`smsc_sim.yaml_source`, keeping lines.

    :param text: the document.
    :param file: its name, for messages.
    :raises ScenarioError: on a YAML syntax error, a limit or a duplicate key.
    """
    try:
        return yaml_source.load(text, file, _construct_document, _LineLoader)
    except YAMLSourceError as e:
        raise ScenarioError(e.file, e.line, "", e.problem) from None


def _construct_document(loader: Any, node: yaml.Node) -> Any:
    return loader.construct_document(node)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    if len(word) > 64:  # nothing is that long: no suggestion, and no time spent comparing
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return excerpt(value)


class Cursor:
    """
    One value of a scenario file, with its file, line and key path.

    :ivar value: the Python value (a :class:`LineDict`, :class:`LineList` or scalar).
    :ivar raw: the scalar exactly as written, when it was a scalar.
    """

    __slots__ = ("value", "file", "path", "line", "raw")

    def __init__(self, value: Any, file: str, path: str = "", line: int = 0, raw: str | None = None) -> None:
        self.value = value
        self.file = file
        self.path = path
        self.line = line or getattr(value, "line", 0)
        self.raw = raw

    def error(self, problem: str) -> ScenarioError:
        """A :class:`ScenarioError` at this value."""
        return ScenarioError(self.file, self.line, self.path, problem)

    def _key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    # -- containers --------------------------------------------------------

    def is_mapping(self) -> bool:
        """Whether the value is a mapping."""
        return isinstance(self.value, dict)

    def is_list(self) -> bool:
        """Whether the value is a list."""
        return isinstance(self.value, list)

    def mapping(self, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Cursor]:
        """
        The value as a mapping of known keys.

        :param allowed: every key that may appear.
        :param required: the keys that must appear.
        :raises ScenarioError: for a non-mapping, an unknown key (with the
            closest known one) or a missing key.
        """
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping with keys {', '.join(sorted(allowed))}, got {_kind(self.value)}")
        allowed = tuple(allowed)
        value: dict[Any, Any] = self.value
        key_lines = getattr(value, "key_lines", {})
        raws = getattr(value, "raw", {})
        result: dict[str, Cursor] = {}
        for key, item in value.items():
            line = key_lines.get(key, self.line)
            if key not in allowed:
                problem = f"unknown key {excerpt(key)}" + suggest(str(key), allowed)
                if not suggest(str(key), allowed):
                    problem += f"; expected one of {', '.join(allowed)}"
                raise ScenarioError(self.file, line, self._key_path(str(key)), problem)
            result[key] = Cursor(item, self.file, self._key_path(key), line, raws.get(key))
        for key in required:
            if key not in result:
                raise self.error(f"missing key {key!r}")
        return result

    def entries(self, what: str) -> dict[str, Cursor]:
        """
        The value as a mapping with any text keys.

        :param what: what the mapping holds, for the message (``rule sets``).
        """
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping of {what}, got {_kind(self.value)}")
        for key in self.value:
            if not isinstance(key, str):
                line = getattr(self.value, "key_lines", {}).get(key, self.line)
                raise ScenarioError(self.file, line, self._key_path(str(key)), f"expected a name, got {excerpt(key)}")
        return self.mapping(tuple(self.value))

    def items(self) -> Iterator[Cursor]:
        """The items of a list (a single value counts as a list of one)."""
        if not isinstance(self.value, list):
            yield self
            return
        lines = getattr(self.value, "item_lines", [])
        raws = getattr(self.value, "raw", {})
        for i, item in enumerate(self.value):
            line = lines[i] if i < len(lines) else self.line
            yield Cursor(item, self.file, f"{self.path}[{i}]", line, raws.get(i))

    def as_list(self) -> list[Cursor]:
        """The items of a list, refusing anything else."""
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_kind(self.value)}")
        return [*self.items()]

    # -- scalars -----------------------------------------------------------

    def as_str(self, choices: Iterable[str] | None = None) -> str:
        """
        The value as text; numbers are taken as written (``0044`` stays ``"0044"``).

        :param choices: when given, the value must be one of them.
        """
        value = self.value
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            if choices is not None:
                raise self.error(f"expected one of {', '.join(choices)}, got {_kind(value)}")
            raise self.error(f"expected text, got {_kind(value)}")
        text = self.raw if self.raw is not None and not isinstance(value, str) else str(value)
        if choices is not None:
            choices = tuple(choices)
            if text not in choices:
                hint = suggest(text, choices)
                raise self.error(f"unknown value {excerpt(text)}{hint}; expected one of {', '.join(choices)}")
        return text

    def as_int(self, minimum: int | None = None, maximum: int | None = None) -> int:
        """The value as an integer (``0x58`` allowed), within the bounds."""
        value = self.value
        if isinstance(value, str):
            try:
                value = int(value.strip(), 0)
            except ValueError:
                raise self.error(f"expected a whole number, got {excerpt(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a whole number, got {_kind(value)}")
        self._bounds(value, minimum, maximum)
        return value

    def as_float(self, minimum: float | None = None, maximum: float | None = None) -> float:
        """The value as a number, within the bounds."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"expected a number, got {_kind(value)}")
        self._bounds(value, minimum, maximum)
        return float(value)

    def as_bool(self) -> bool:
        """The value as true/false."""
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {_kind(self.value)}")
        return self.value

    def _bounds(self, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            raise self.error(f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(f"{value} is above the maximum {maximum}")
