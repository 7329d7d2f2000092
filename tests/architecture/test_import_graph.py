"""The import graph of ``lab`` has no cycle.

Two graphs are checked. The *load* graph counts every import a module runs when it is imported (module
level, also inside top-level ``try``/``if`` blocks), except those under ``if TYPE_CHECKING:``, which never
run; it has no cycle at all. The *full* graph also counts imports inside functions and methods (they run
later, on use) and ``TYPE_CHECKING`` imports: a cycle there is a design cycle (the runner and the executors
used to import each other this way); it has none except the one listed in ``KNOWN_FULL_CYCLES``. Registries
load their built-in modules by name (``importlib``), which neither graph counts. An import of ``lab.a.b`` is
an edge to ``lab.a.b`` only, not to the package ``lab.a`` it runs first, so a package's ``__init__``
re-exporting its modules is not a cycle.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import lab

ROOT = Path(lab.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


KNOWN_FULL_CYCLES = [{"lab.traces.store", "lab.traces.frames"}]
"""``TraceStore.runs_frame()`` and friends call :mod:`lab.traces.frames`, which reads the store."""


def _imports(tree: ast.Module, module: str, is_package: bool, *, full: bool) -> list[str]:
    found: list[str] = []

    def absolute(st: ast.ImportFrom) -> str:
        base = st.module or ""
        if st.level:
            pkg = module.split(".") if is_package else module.split(".")[:-1]
            pkg = pkg[: len(pkg) - (st.level - 1)]
            base = ".".join(pkg + ([base] if base else []))
        return base

    if full:
        for st in ast.walk(tree):
            if isinstance(st, ast.Import):
                found.extend(a.name for a in st.names)
            elif isinstance(st, ast.ImportFrom):
                base = absolute(st)
                found.extend([*(f"{base}.{a.name}" for a in st.names), base])
        return found

    def visit(stmts: list[ast.stmt]) -> None:
        for st in stmts:
            if isinstance(st, ast.Import):
                found.extend(a.name for a in st.names)
            elif isinstance(st, ast.ImportFrom):
                base = absolute(st)
                found.extend([*(f"{base}.{a.name}" for a in st.names), base])
            elif isinstance(st, ast.If):
                test = ast.unparse(st.test)
                if "TYPE_CHECKING" not in test:
                    visit(st.body)
                visit(st.orelse)
            elif isinstance(st, ast.Try):
                visit(st.body)
                for h in st.handlers:
                    visit(h.body)
                visit(st.orelse)
                visit(st.finalbody)

    visit(tree.body)
    return found


def import_graph(root: Path = ROOT, *, full: bool = False) -> dict[str, set[str]]:
    """Modules of ``lab`` (under ``root``) and the ``lab`` modules each imports when it is imported (with
    ``full``: anywhere in it)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in _imports(tree, name, path.name == "__init__.py", full=full):
            # `from lab.a import b`: the module lab.a.b when there is one, else lab.a
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("lab") and target != name:
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or ``None``."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        return list(e.args[1])
    return None


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [n for n in graph if n == start or n.startswith(start + ".")]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_graph_is_built_from_real_imports():
    g = import_graph()
    assert "lab.pipeline" in g["lab.runner"] and "lab.pipeline" in g["lab.executors.local"]
    assert "lab.runner" not in g["lab.executors.local"]


def test_cycles_are_found(tmp_path):
    pkg = tmp_path / "lab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from lab import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import lab.c\nimport lab.a\n")
    (pkg / "c.py").write_text("def f():\n    import lab.a\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and set(cycle) == {"lab.a", "lab.b"}


def test_lab_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None


def test_lab_has_no_design_cycle_counting_function_level_imports():
    graph = import_graph(full=True)
    for known in KNOWN_FULL_CYCLES:  # cut each known cycle once, then nothing else may be left
        a, b = sorted(known)
        graph[a].discard(b)
    assert find_cycle(graph) is None


def test_full_graph_finds_the_old_runner_executor_cycle(tmp_path):
    pkg = tmp_path / "lab"
    (pkg / "executors").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "runner.py").write_text("from lab.executors.local import LocalExecutor\n")
    (pkg / "executors" / "__init__.py").write_text("")
    (pkg / "executors" / "local.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lab.runner import Runner\n"
        "class LocalExecutor:\n    def start(self):\n        from lab.runner import Outcome\n")
    assert find_cycle(import_graph(pkg)) is None
    assert set(find_cycle(import_graph(pkg, full=True))) == {"lab.runner", "lab.executors.local"}


@pytest.mark.parametrize("low,high", [("lab.pipeline", "lab.runner"), ("lab.pipeline", "lab.executors"),
                                      ("lab.agents", "lab.pipeline"), ("lab.traces", "lab.agents")])
def test_lower_layers_do_not_reach_up(low, high):
    assert not any(n == high or n.startswith(high + ".") for n in _reach(import_graph(), low))
