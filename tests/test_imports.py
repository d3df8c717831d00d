"""No import circles in slimcli: every module's slimcli imports, as a graph, has no cycle.

Each module of `slimcli/` is parsed with `ast` (nothing is imported). Its edges are the
slimcli modules named by all its import statements: at module level, inside `if`/`try` blocks,
and inside functions too. A function-level import cannot meet a half-initialised module, but a
circle hidden in a function (`slim/variables.py` <-> `slim/losses.py` was one) still ties two
modules into one, which is what this test forbids; lazy imports that keep TensorFlow out of the
commands' start-up are fine as long as they go one way.

`from a.b import c` is an edge to the module `a.b.c` when that is a module, else to `a.b`; `import
a.b.c` is an edge to `a.b.c`. The parent packages that Python initialises before a submodule are
not edges: a package's `__init__` runs before its submodules, so only what it imports in turn can
close a circle, and that is an edge of its own.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def module_files(package_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name → file, for every .py under `package_dir` (a package named by its dir)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _import_statements(tree: ast.Module):
    """Every import statement of a module, wherever it is (function bodies included)."""
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package_dir: pathlib.Path) -> dict[str, set[str]]:
    """Module → the modules of the same top-level package it imports."""
    files = module_files(package_dir)

    def known(name: str) -> str | None:  # the module itself, or the nearest package above it
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in files.items():
        edges = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _import_statements(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _absolute(node, module, path.name == "__init__.py")
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                           for alias in node.names]
            edges.update(t for t in map(known, targets) if t and t != module)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path of names) per strongly connected component that has one."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(set(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest closed path through the first module (by name) of a component."""
    start = min(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for succ in sorted(graph[path[-1]] & component):
            if succ == start:
                return path + [start]
            if succ not in seen:
                seen.add(succ)
                paths.append(path + [succ])
    raise AssertionError(f"no cycle through {start}")  # a component of 2+ always has one


def test_slimcli_has_no_import_cycle():
    graph = import_graph(ROOT / "slimcli")
    cycles = find_cycles(graph)
    assert not cycles, "import circles in slimcli:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles)


def test_the_graph_sees_the_input_package_edges():
    graph = import_graph(ROOT / "slimcli")
    assert {"slimcli.input.cache", "slimcli.input.stream", "slimcli.input.config",
            "slimcli.input.checks"} <= graph["slimcli.input.pipeline"]
    assert graph["slimcli.input.records"] == set()  # TensorFlow and nothing of slimcli


@pytest.mark.parametrize("b_source, expected", [
    ("from pkg import a\n", [["pkg.a", "pkg.b", "pkg.a"]]),
    ("from . import a\n", [["pkg.a", "pkg.b", "pkg.a"]]),
    ("import pkg.a\n", [["pkg.a", "pkg.b", "pkg.a"]]),
    ("try:\n    from pkg.a import thing\nexcept ImportError:\n    pass\n",
     [["pkg.a", "pkg.b", "pkg.a"]]),
    ("def late():\n    from pkg import a\n", [["pkg.a", "pkg.b", "pkg.a"]]),
    ("from pkg import helpers\n", []),
], ids=["from_package", "relative", "import", "in_try", "in_function", "one_way"])
def test_a_circle_is_found_and_named(tmp_path, b_source, expected):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import helper\n")
    (package / "b.py").write_text(b_source)
    (package / "helpers.py").write_text("import os\n")
    assert find_cycles(import_graph(package)) == expected
