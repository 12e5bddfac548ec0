"""`ictview bench io`: the DICOM reader benchmark plus reading the stored volume back."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ictview.io.bench import bench_io, bench_series
from ictview.io.importers import ImportOptions, import_source
from ictview.store import arrays
from ictview.store.workspace import Workspace


def run_bench_io(repeats: int = 15) -> dict:
    with tempfile.TemporaryDirectory(prefix="ictview-bench-ws-") as tmp:
        # the same deterministic series bench_io reads, imported once into a workspace
        bench_series(Path(tmp) / "series")
        root = Path(tmp) / "ws"
        with Workspace.create(root) as ws:
            import_source(ws, [Path(tmp) / "series"], ImportOptions("bench", "test"))
            name = ws.exams()[0].name
            path = ws.volume_path(name)

        def open_and_read():
            with Workspace.open(root) as w:
                return w.read_volume(name)

        return bench_io(
            repeats,
            extra={
                "workspace volume file read": lambda: arrays.read_volume(path),
                "workspace open + catalog + read": open_and_read,
            },
        )
