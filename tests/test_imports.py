"""The core's layering, read from the source with ``ast`` (nothing is imported).

Two rules from the handbook, checked on every import statement:

- No cycle between core packages. A "package" is the first component under ``plait``
  (``plait.engine``, ``plait.storage``, and single modules such as ``plait.local``). Imports
  inside functions count: a deferred import still makes one package depend on the other, it
  only hides the cycle from the interpreter. Imports under ``if TYPE_CHECKING:`` do not count:
  they never run.
- No import of another package's private module (``plait.x._y`` from outside ``plait.x``,
  whether written ``import plait.x._y``, ``from plait.x._y import n`` or
  ``from plait.x import _y``), in the core or in the connector plugins (which may import only
  public names of ``plait`` and ``plait_sdk``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "src" / "plait"
SDK = ROOT / "sdk" / "src" / "plait_sdk"
PLUGINS = ROOT / "plugins"


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    module: str  # the imported module, absolute
    deferred: bool  # inside a function body


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def imports_of(file: Path) -> Iterator[Import]:
    """Every runtime import of ``file``: ``from a import b`` yields ``a`` and, when ``b`` is
    private-looking (``_x``), ``a._x`` too (it may be a module)."""
    tree = ast.parse(file.read_text("utf-8"), str(file))

    def visit(node: ast.AST, deferred: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    yield from visit_one(other, deferred)
                continue
            yield from visit_one(child, deferred)

    def visit_one(node: ast.AST, deferred: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, node.lineno, alias.name, deferred)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield Import(file, node.lineno, node.module, deferred)
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield Import(file, node.lineno, f"{node.module}.{alias.name}", deferred)
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from visit(node, inner)

    yield from visit(tree, False)


def module_of(file: Path, root: Path, top: str) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([top, *parts])


def package_of(module: str) -> str:
    """``plait.engine._runner`` -> ``engine``; ``plait`` itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def private_target(module: str, top: str) -> str | None:
    """The private package component a module path reaches into, if any (``plait.x._y`` or
    ``plait._x``)."""
    parts = module.split(".")
    if parts[0] != top:
        return None
    for index, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def package_graph() -> dict[str, dict[str, list[Import]]]:
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for file in core_files():
        source = package_of(module_of(file, CORE, "plait"))
        for found in imports_of(file):
            if not found.module.startswith("plait."):
                continue
            target = package_of(found.module)
            if source and target != source:
                graph[source][target].append(found)
    return graph


def cycles(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _where(imports: list[Import]) -> str:
    return ", ".join(f"{i.file.relative_to(ROOT)}:{i.line}" for i in imports[:3])


def test_no_cycle_between_core_packages() -> None:
    graph = package_graph()
    problems = []
    for component in cycles(graph):
        edges = [
            f"  {source} -> {target} ({_where(graph[source][target])})"
            for source in component
            for target in component
            if target in graph[source]
        ]
        problems.append(" <-> ".join(component) + "\n" + "\n".join(edges))
    assert problems == [], "import cycles between core packages:\n" + "\n".join(problems)


def test_core_packages_import_only_public_modules_of_each_other() -> None:
    problems = []
    for file in core_files():
        source = module_of(file, CORE, "plait")
        for found in imports_of(file):
            owner = private_target(found.module, "plait")
            if owner is None or owner == "plait":
                continue
            if source == owner or source.startswith(owner + "."):
                continue
            problems.append(f"{file.relative_to(ROOT)}:{found.line} imports {found.module}")
    assert problems == []


def test_plugins_import_only_public_names_of_plait_and_the_sdk() -> None:
    files = sorted(PLUGINS.glob("*/src/**/*.py"))
    assert files, "no plugin sources found"
    problems = []
    for file in files:
        for found in imports_of(file):
            for top in ("plait", "plait_sdk"):
                if private_target(found.module, top) is not None:
                    problems.append(f"{file.relative_to(ROOT)}:{found.line} imports {found.module}")
    assert problems == []


# The checker itself must be able to fail.


def test_a_cycle_is_found(tmp_path: Path) -> None:
    graph: dict[str, dict[str, list[Import]]] = {
        "a": {"b": []},
        "b": {"c": []},
        "c": {"a": []},
        "d": {"a": []},
    }
    assert cycles(graph) == [["a", "b", "c"]]


def test_deferred_imports_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import plait.flows\n"
        "if TYPE_CHECKING:\n"
        "    from plait.engine import Execution\n"
        "def f():\n"
        "    from plait.storage import _tables\n",
        "utf-8",
    )
    found = [(i.module, i.deferred) for i in imports_of(source)]
    assert found == [
        ("typing", False),
        ("plait.flows", False),
        ("plait.storage", True),
        ("plait.storage._tables", True),
    ]


def test_private_targets() -> None:
    assert private_target("plait.storage._tables", "plait") == "plait.storage"
    assert private_target("plait._library", "plait") == "plait"
    assert private_target("plait.storage", "plait") is None
    assert private_target("plait_sdk._runners", "plait_sdk") == "plait_sdk"
    assert private_target("yaml._x", "plait") is None
