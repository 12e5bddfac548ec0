"""`ictview bench gui`: the viewer's speed on a 40-slice 512x512 exam, offscreen.

Figures (medians; printed, nothing asserted):
- slice change with CT + label overlay, including the repaint (target < 16 ms)
- one brush dab inside a drag: mouse move -> model paint -> overlay -> repaint (< 8 ms)
- end of a stroke: journal append + fsync (the autosave point; disk-bound)
- opening the exam: catalog, volume, labels, journal lock, first paint (< 300 ms)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (40, 512, 512)
TARGETS_MS = {"slice_change_ms": 16.0, "brush_dab_ms": 8.0, "open_exam_ms": 300.0}


def _phantom(shape=SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A head-like volume (skull, brain, ventricles, a haematoma) and its label mask."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    zz, yy, xx = np.ogrid[:nz, :ny, :nx]
    zc = (zz - nz / 2) / (nz / 2)
    r = np.sqrt(((yy - ny / 2) / (0.42 * ny)) ** 2 + ((xx - nx / 2) / (0.36 * nx)) ** 2
                + zc**2 * 0.6)
    hu = np.full(shape, -1000, np.int16)
    hu[r < 1.0] = 1200
    hu[r < 0.93] = 34
    vent = (((yy - ny / 2) / (0.08 * ny)) ** 2 + ((xx - nx / 2) / (0.05 * nx)) ** 2 + zc**2) < 1
    hu[vent] = 8
    blood = (((yy - 0.35 * ny) / 20.0) ** 2 + ((xx - 0.62 * nx) / 28.0) ** 2 + (zc * 3) ** 2) < 1
    hu[blood] = 68
    hu = (hu + rng.normal(0, 4, shape)).astype(np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[blood] = 4
    return hu, labels


def _workspace(root: Path, shape=SHAPE) -> str:
    from ictview.core.geometry import Geometry
    from ictview.store.workspace import NewExam, Workspace

    hu, labels = _phantom(shape)
    g = Geometry((-120.0, -120.0, 0.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.47, 0.47))
    name = "BENCH-0001"
    with Workspace.create(root) as ws:
        ws.ensure_site("atlantis", "labeled")
        ws.add_exam(NewExam(
            name=name, site="atlantis", hu=hu, geometry=g,
            sop_uids=[f"1.2.826.0.1.3680043.9.{k}" for k in range(shape[0])],
            positions=[5.0 * k for k in range(shape[0])], patient_id=name,
            study_uid="1.2.826.0.1.3680043.9.1", series_uid="1.2.826.0.1.3680043.9.2",
            masks={"reference": labels},
        ))
    return name


def _ms(samples: list[float]) -> float:
    return round(1000.0 * statistics.median(samples), 2)


def bench_gui(repeats: int = 60) -> dict:
    from ictview.gui.app import use_offscreen_platform

    use_offscreen_platform()
    from PySide6 import QtCore, QtGui, QtWidgets

    from ictview.gui.app import ensure_app
    from ictview.gui.main_window import MainWindow

    app = ensure_app()
    results: dict = {"shape": list(SHAPE)}
    with tempfile.TemporaryDirectory(prefix="ictview-bench-") as tmp:
        root = Path(tmp) / "ws"
        exam = _workspace(root)
        win = MainWindow(headless=True)
        try:
            win.set_rater("bench")
            win.open_workspace(root)
            win._set_start_from("reference")  # the overlay has a lesion to draw
            win.resize(1600, 1000)
            win.show()
            app.processEvents()
            view = win.slice_view
            vp = view.canvas.viewport()

            opens = []
            for _ in range(7):
                win.close_exam()
                app.processEvents()
                t0 = time.perf_counter()
                win.open_exam(exam)
                vp.repaint()
                opens.append(time.perf_counter() - t0)
            results["open_exam_ms"] = _ms(opens)

            view.fit()
            app.processEvents()
            changes = []
            for k in range(repeats):
                z = (k * 7) % SHAPE[0]
                t0 = time.perf_counter()
                view.set_slice(z)
                vp.repaint()
                changes.append(time.perf_counter() - t0)
            results["slice_change_ms"] = _ms(changes)

            # a drag in circles over the lesion's slice: each mouse move is one dab
            z = int(np.argmax(win.model.labels.reshape(SHAPE[0], -1).sum(1)))
            view.set_slice(z)
            win.model.label_value = 4
            win.model.brush_radius_mm = 3.0
            E, B = QtCore.QEvent.Type, QtCore.Qt.MouseButton

            def send(kind, row, col, button, buttons):
                p = QtCore.QPointF(view.pixel_to_widget(row, col))
                ev = QtGui.QMouseEvent(kind, p, vp.mapToGlobal(p), button, buttons,
                                       QtCore.Qt.KeyboardModifier.NoModifier)
                QtWidgets.QApplication.sendEvent(vp, ev)

            dabs, ends = [], []
            for stroke in range(6):
                cy, cx = 200 + 15 * stroke, 300
                send(E.MouseButtonPress, cy, cx, B.LeftButton, B.LeftButton)
                for k in range(1, repeats // 3):
                    a = k * 0.35
                    t0 = time.perf_counter()
                    row, col = cy + 25 * np.sin(a), cx + 25 * np.cos(a)
                    send(E.MouseMove, row, col, B.NoButton, B.LeftButton)
                    vp.repaint()
                    dabs.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                send(E.MouseButtonRelease, cy, cx, B.LeftButton, B.NoButton)
                ends.append(time.perf_counter() - t0)
            results["brush_dab_ms"] = _ms(dabs)
            results["stroke_end_ms"] = _ms(ends)
            t0 = time.perf_counter()
            win.model.flush(30)
            results["background_save_wait_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        finally:
            win.shutdown()
            win.close()
            win.deleteLater()
            app.processEvents()
    for key, target in TARGETS_MS.items():
        results[f"{key.removesuffix('_ms')}_target_ms"] = target
    _print(results)
    return results


def _print(r: dict) -> None:
    z, y, x = r["shape"]
    print(f"ictview bench gui ({z} slices of {y}x{x}, offscreen, medians)")
    rows = [
        ("slice change (CT + labels, repaint)", r["slice_change_ms"],
         TARGETS_MS["slice_change_ms"]),
        ("brush dab in a drag (paint + repaint)", r["brush_dab_ms"], TARGETS_MS["brush_dab_ms"]),
        ("stroke end (journal append + fsync)", r["stroke_end_ms"], None),
        ("open exam (load, lock, first paint)", r["open_exam_ms"], TARGETS_MS["open_exam_ms"]),
    ]
    for name, value, target in rows:
        goal = f"  (target < {target:g} ms: {'ok' if value < target else 'SLOW'})" if target else ""
        print(f"  {name:<40} {value:8.2f} ms{goal}")
