"""
Reading YAML (scenario and configuration files) within stated bounds.

Both the scenario loader and the configuration loader read YAML written by
someone else: an operator's file, or a scenario body sent to the HTTP API.
PyYAML's safe loader builds no objects, but it would still spend unbounded
time and memory on a large or nested document, and aliases (``*anchor``)
let a few kilobytes stand for millions of values once a consumer walks the
tree.  :func:`load` is the one place such text becomes a YAML node tree,
and it refuses, with the file, the line and the limit:

- a document of more than :data:`MAX_BYTES` bytes;
- more than :data:`MAX_NODES` values written in the document;
- more than :data:`MAX_EXPANDED` values once every alias is expanded (what a
  consumer that walks the tree will visit), and any alias to a mapping or
  list that contains it;
- mappings and lists nested more than :data:`MAX_DEPTH` deep;
- characters YAML forbids (NUL, other control characters), bad syntax.

Messages never quote more than a short escaped excerpt (:func:`excerpt`) of
the document: a file named by mistake (a key, ``/etc/passwd``) must not be
echoed to whoever asked for it.  :func:`read_text` reads a file under the
same byte limit, checking its size before reading it.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.resolver import Resolver

__all__ = [
    "EXCERPT_CHARS",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EXPANDED",
    "MAX_NODES",
    "BoundedLoader",
    "YAMLSourceError",
    "clip",
    "excerpt",
    "load",
    "read_text",
]

#: largest document read, in bytes (the largest shipped scenario is 13 KB)
MAX_BYTES = 256 * 1024
#: most values (scalars, mappings, lists) written in one document
MAX_NODES = 5_000
#: most values once every alias is expanded: what walking the tree costs
MAX_EXPANDED = 10_000
#: deepest nesting of mappings and lists
MAX_DEPTH = 64
#: the most characters of a document's (or a request's) text an error message quotes
EXCERPT_CHARS = 40

_T = TypeVar("_T")


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """
    A value as a short, escaped excerpt for an error message.

    :returns: ``repr(value)`` when it is at most ``limit`` characters,
        else its first ``limit`` characters and ``...`` (so control
        characters are escaped and a long text is never echoed whole).
    """
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[: 4 * limit]  # repr of a huge text is not built only to be cut
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


class YAMLSourceError(ValueError):
    """
    A YAML document that cannot be read: too large, too deep, or not YAML.

    ``str()`` reads ``FILE:LINE: problem``.

    :ivar file: the file name (or ``<request body>``).
    :ivar line: 1-based line number, 0 when unknown.
    :ivar problem: what is wrong, quoting at most a short excerpt of the text.
    """

    def __init__(self, file: str, line: int, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        super().__init__(f"{file}:{line}: {problem}" if line else f"{file}: {problem}")


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml: the pure-Python parser, about 5 times slower
        _SafeLoader = yaml.SafeLoader
    else:

        class _SafeLoader(Composer, CParser, SafeConstructor, Resolver):
            """
            libyaml's parser (events, in C) under PyYAML's Python composer.

            The composer stays in Python so that :class:`BoundedLoader` can count
            every node and alias as it is composed; libyaml's parser keeps its
            own stack (no recursion), so depth is refused before it costs.
            """

            def __init__(self, stream: str) -> None:
                CParser.__init__(self, stream)
                SafeConstructor.__init__(self)
                Resolver.__init__(self)
                Composer.__init__(self)


class BoundedLoader(_SafeLoader):
    """
    PyYAML's safe loader, counting what it composes and refusing past the limits.

    Aliases are composed as references to the anchored node (cheap); the
    count of expanded values charges each alias the expanded size of its
    target, which is what any walk of the tree will pay.
    """

    file_name = "<string>"
    max_nodes = MAX_NODES
    max_expanded = MAX_EXPANDED
    max_depth = MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.expanded = 0
        self._depth = 0
        #: expanded size of every finished node, by id (the nodes stay alive in the tree)
        self._sizes: dict[int, int] = {}

    def _refuse(self, problem: str) -> YAMLSourceError:
        event = self.peek_event()
        return YAMLSourceError(self.file_name, event.start_mark.line + 1, problem)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise self._refuse("an alias refers to the mapping or list that contains it")
                self._charge(size)
            return super().compose_node(parent, index)
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise self._refuse(f"more than {self.max_nodes} values in the document (the limit)")
        nested = isinstance(event, CollectionStartEvent)
        if nested:
            self._depth += 1
            if self._depth > self.max_depth:
                raise self._refuse(f"mappings and lists nested more than {self.max_depth} deep (the limit)")
        else:
            self._charge(1)
        node = super().compose_node(parent, index)
        if node is None:
            return None
        if nested:
            self._depth -= 1
            children: list[yaml.Node] = (
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
            )
            self._charge(1)
            self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        else:
            self._sizes[id(node)] = 1
        return node

    def _charge(self, size: int) -> None:
        self.expanded += size
        if self.expanded > self.max_expanded:
            raise self._refuse(
                f"more than {self.max_expanded} values once aliases are expanded (the limit; "
                "aliases (*name) count every value they repeat)"
            )


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, max(position, 0)) + 1


def clip(text: str | None, limit: int = 2 * EXCERPT_CHARS) -> str:
    """
    A library's message (PyYAML's problem, a parser's error) on one line and at most ``limit`` characters.

    Such messages may quote the text they choke on; unlike :func:`excerpt` the
    message is not quoted again, only cut.
    """
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "..."


def load(
    text: str,
    file: str,
    build: Callable[[Any, yaml.Node], _T],
    loader_class: type[BoundedLoader] = BoundedLoader,
) -> _T | None:
    """
    Compose one YAML document within the limits and build a value from it.

    :param text: the document.
    :param file: its name, for messages.
    :param build: turns the loader and the root node into the result; called
        inside the error handling, so PyYAML errors it raises (a bad
        ``!!int``) become :class:`YAMLSourceError` too.
    :param loader_class: :class:`BoundedLoader` or a subclass (with constructors).
    :returns: ``None`` for an empty document.
    :raises YAMLSourceError: for any limit, forbidden character or syntax error.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YAMLSourceError(file, 0, f"{size} bytes, more than the limit of {MAX_BYTES} bytes")
    loader: BoundedLoader | None = None
    try:
        # the reader checks every character when it is made: NUL and control characters fail here
        loader = loader_class(text)
        loader.file_name = file
        root = loader.get_single_node()
        return None if root is None else build(loader, root)
    except yaml.reader.ReaderError as e:
        code = ord(e.character) if isinstance(e.character, str) else int(e.character)
        problem = f"character #x{code:04x} is not allowed in YAML (NUL and other control characters)"
        raise YAMLSourceError(file, _line_of(text, e.position), problem) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise YAMLSourceError(file, line, f"not valid YAML: {clip(e.problem or e.context) or 'syntax error'}") from None
    except yaml.YAMLError as e:
        raise YAMLSourceError(file, 0, f"not valid YAML: {type(e).__name__}") from None
    except ValueError as e:
        if type(e) is not ValueError:
            raise  # a consumer's own error (a scenario's duplicate key), already worded
        # PyYAML's constructors let Python's own errors through: an int of too many digits, a bad date
        raise YAMLSourceError(file, 0, f"a value YAML cannot convert: {clip(str(e))}") from None
    except RecursionError:
        raise YAMLSourceError(file, 0, f"nested too deep (the limit is {MAX_DEPTH})") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(
    path: str | os.PathLike[str], file: str | None = None, limit: int = MAX_BYTES, what: str = ""
) -> str:
    """
    Read a UTF-8 text file of at most ``limit`` bytes.

    The size is checked before reading, and at most ``limit + 1`` bytes are
    read (a file growing meanwhile, or a device, cannot make it read more).

    :param file: the name used in messages (default: the path).
    :param what: what the file is, for "cannot read WHAT" (``the configuration file``).
    :raises YAMLSourceError: when the file cannot be read, is not a regular
        file, is too large or is not UTF-8; the message quotes none of it.
    """
    name = os.fspath(path) if file is None else file
    try:
        # non-blocking: opening a FIFO must not wait for a writer (it is refused just below)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise YAMLSourceError(name, 0, "not a regular file")
            if status.st_size > limit:
                raise YAMLSourceError(name, 0, f"{status.st_size} bytes, more than the limit of {limit} bytes")
            data = stream.read(limit + 1)
    except OSError as e:
        reading = f"cannot read {what}" if what else "cannot read"
        raise YAMLSourceError(name, 0, f"{reading}: {e.strerror or type(e).__name__}") from None
    if len(data) > limit:
        raise YAMLSourceError(name, 0, f"more than the limit of {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        return _not_utf8(name, data, e)


def _not_utf8(name: str, data: bytes, error: UnicodeDecodeError) -> str:
    line = data.count(b"\n", 0, error.start) + 1
    raise YAMLSourceError(name, line, f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})")
