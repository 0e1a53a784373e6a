"""
How the package's modules import each other: no import circles (imports
under ``TYPE_CHECKING`` and inside functions count too), and the core knows
nothing of the durable store's SQLite code.

Read from the source with :mod:`ast`, so nothing is imported to check.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

PACKAGE = Path(__file__).resolve().parent.parent / "smsc_sim"

#: circles allowed to stay: none (every layer imports only the layers below it)
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that a module imports, anywhere in its source (its own package excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in names:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # a package's face importing its own modules is not a circle of design
            if target and target != name and not name.startswith(target + ".") and target != package:
                targets.add(target)
    return targets


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected sets of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(frozenset(members))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


class ImportTests(SynchronousTestCase):
    def test_no_import_circles(self) -> None:
        """No module of smsc_sim imports, even indirectly, a module that imports it back."""
        new = [sorted(circle) for circle in _circles(_graph()) if circle not in KNOWN_CIRCLES]
        self.assertEqual(new, [])

    def test_core_knows_no_durable_store(self) -> None:
        """The core reports to a journal protocol; neither SQLite nor smsc_sim.durable is imported by it."""
        modules = _modules()
        for name, path in modules.items():
            if not name.startswith("smsc_sim.core"):
                continue
            imported = _imports(name, path, set(modules))
            self.assertFalse({t for t in imported if t.startswith("smsc_sim.durable")}, name)
            self.assertNotIn("sqlite3", path.read_text(encoding="utf-8"), name)

    def test_circle_finder_finds_a_circle(self) -> None:
        """The check itself sees a circle of three modules and ignores a chain."""
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        self.assertEqual(_circles(graph), [frozenset({"a", "b", "c"})])
