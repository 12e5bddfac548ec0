"""The architecture's import rules (DESIGN.md): the core is Qt-free and torch-free,
the GUI is torch-free at import, training never imports Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

CORE = ("core", "io", "store", "synth", "study", "stats", "pacs")


def _modules(package: str) -> list[str]:
    mod = __import__(package, fromlist=["x"])
    return [m.name for m in pkgutil.walk_packages(mod.__path__, package + ".")]


def _loaded_after_import(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        f"print(','.join(f for f in {forbidden!r} if f in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_core_packages_import_neither_qt_nor_torch():
    modules = [m for p in CORE for m in [f"ictview.{p}"] + _modules(f"ictview.{p}")]
    assert len(modules) > 30
    assert _loaded_after_import(modules, ("PySide6", "pyqtgraph", "torch", "training")) == []


def test_gui_imports_no_torch():
    assert _loaded_after_import(_modules("ictview.gui") + ["ictview.cli"], ("torch", "training")) == []


def test_training_imports_no_qt():
    assert _loaded_after_import(["training.cli"] + _modules("training"), ("PySide6", "pyqtgraph")) == []


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere (module level or inside a
    function: a lazy import that closes a circle is still a circle of the design)."""
    import ast
    from pathlib import Path

    root = Path(__import__(package).__file__).parent
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[mod] = path
    graph: dict[str, set[str]] = {m: set() for m in names}
    for mod, path in names.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t in names and t != mod:
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_training_modules_import_each_other_in_no_circle():
    graph = _import_graph("training")
    assert "training.data.batches" in graph and graph["training.trainer"]
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
