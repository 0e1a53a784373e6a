"""
No module of smsc_sim imports itself back through others.

The imports are read from the source (``ast``), so an import under
``if TYPE_CHECKING:`` or inside a function counts as much as one at the top:
a circle of annotations is still a circle of design.  A package importing its
own submodules (its public face in ``__init__``) is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import smsc_sim

#: Circles known and being removed, each as its sorted modules.  The core's
#: helpers import the core and the core imports them; the core refactor, which
#: passes each helper the collaborators it uses instead of the core, removes it.
ALLOWED: frozenset[tuple[str, ...]] = frozenset(
    {
        (
            "smsc_sim.core.durable_core",
            "smsc_sim.core.mo",
            "smsc_sim.core.operations",
            "smsc_sim.core.smsc",
            "smsc_sim.core.submit",
        ),
    }
)


def package_modules(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from smsc_sim.api import app" imports the module smsc_sim.api.app
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in names:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, without a package's imports of its own parts."""
    modules = package_modules(root)
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        graph[name] = {
            target
            for target in imported(name, path, known)
            # a module importing its package (its __init__) is fine, and so is the reverse
            if not name.startswith(target + ".") and target != name.rpartition(".")[0]
        }
    return graph


def circles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected sets of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(tuple(sorted(component)))
    return sorted(found)


class ImportCircleTests(SynchronousTestCase):
    def test_no_import_circles(self) -> None:
        """No module of smsc_sim imports itself back, TYPE_CHECKING imports included, beyond the allowed list."""
        root = Path(smsc_sim.__file__).parent
        found = circles(import_graph(root))
        unexpected = [circle for circle in found if circle not in ALLOWED]
        self.assertEqual(
            unexpected,
            [],
            "import circles:\n" + "\n".join(" <-> ".join(circle) for circle in unexpected),
        )

    def test_a_type_checking_import_closes_a_circle(self) -> None:
        """An import under TYPE_CHECKING counts: two modules importing each other that way are a circle."""
        source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.{other} import X\n"
        package = Path(self.mktemp()) / "pkg"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "a.py").write_text(source.format(other="b"))
        (package / "b.py").write_text("from . import a\n")
        (package / "c.py").write_text("from pkg.a import X\n")
        self.assertEqual(circles(import_graph(package)), [("pkg.a", "pkg.b")])
