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
