"""`ictview bench gui`: the viewer's speed on a 40-slice 512x512 exam (5 mm slices), offscreen,
in a 1920x1080 window, against a plain pyqtgraph reference timed in the same run.

Each figure is the median time from the action to the end of the repaint it causes
(`processEvents`: Qt paints the dirty region into the offscreen backing store), so a view
that repaints only what changed is credited for it. The reference is what a bare
pyqtgraph viewer does: one GraphicsView + ViewBox, a float32 CT ImageItem with levels and
an Indexed8 label ImageItem (256-entry lookup table), each slice set with setImage, the
overlay re-set after each dab. Its view has the size of ours; the ratio (ours / reference)
is the figure to compare across machines. Nothing is asserted: on a loaded machine the
absolute figures are noisy.

- slice change in each plane (axial layout, then the three MPR views)
- brush dab inside a drag (mouse move -> model paint -> overlay -> repaint), axial and coronal
- MPR crosshair move: the three views change slice and repaint
- opening an exam: to the first painted CT slice, and until it is editable (loaded behind)
- end of a stroke: journal append + fsync (the autosave point; disk-bound)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (40, 512, 512)
SPACING = (5.0, 0.47, 0.47)
WINDOW_SIZE = (1920, 1080)
TARGETS_MS = {
    "slice_axial_ms": 4.0, "slice_coronal_ms": 4.0, "slice_sagittal_ms": 4.0,
    "brush_dab_ms": 3.0, "crosshair_ms": 12.0, "open_first_paint_ms": 100.0,
}


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


class _Reference:
    """The plain pyqtgraph viewer the figures are compared with."""

    def __init__(self, size, image_shape, aspect: float):
        import pyqtgraph as pg
        from PySide6 import QtCore, QtGui

        self.gv = pg.GraphicsView(background="k")
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.gv.setCentralItem(self.vb)
        self.ct = pg.ImageItem(axisOrder="row-major")
        self.lab = pg.ImageItem(axisOrder="row-major")
        lut = np.zeros((256, 4), np.uint8)
        lut[1:6] = (255, 60, 60, 255)
        self.lab.setLookupTable(lut)
        self.lab.setOpacity(0.5)
        tr = QtGui.QTransform.fromScale(1.0, aspect)
        for item in (self.ct, self.lab):
            item.setTransform(tr)
            self.vb.addItem(item)
        self.gv.resize(*size)
        self.gv.show()
        ny, nx = image_shape
        self.vb.setRange(QtCore.QRectF(0, 0, nx, ny * aspect), padding=0.01)

    def show(self, ct2d: np.ndarray, lab2d: np.ndarray | None) -> None:
        self.ct.setImage(np.ascontiguousarray(ct2d, dtype=np.float32), autoLevels=False,
                         levels=(0.0, 80.0))
        if lab2d is not None:
            self.lab.setImage(np.ascontiguousarray(lab2d), autoLevels=False)

    def close(self) -> None:
        self.gv.close()
        self.gv.deleteLater()


class _Paints:
    """Counts paint events of viewports: proof that each timed action was painted."""

    def __init__(self):
        from PySide6 import QtCore

        class Filter(QtCore.QObject):
            count = 0

            def eventFilter(self, obj, ev):  # noqa: N802
                if ev.type() == QtCore.QEvent.Type.Paint:
                    Filter.count += 1
                return False

        self.filter = Filter()

    def watch(self, widget) -> None:
        widget.installEventFilter(self.filter)

    @property
    def count(self) -> int:
        return type(self.filter).count


def _timed(app, action, repeats: int) -> list[float]:
    out = []
    for k in range(repeats):
        t0 = time.perf_counter()
        action(k)
        app.processEvents()  # the repaint of what the action made dirty
        out.append(time.perf_counter() - t0)
    return out


def _paired(app, ours, ref, repeats: int) -> tuple[float, float]:
    """Medians of our action and the reference's, interleaved so that the load of a busy
    machine weighs on both alike."""
    a, b = [], []
    for k in range(repeats):
        a += _timed(app, lambda _k: ours(k), 1)
        b += _timed(app, lambda _k: ref(k), 1)
    return _ms(a), _ms(b)


def bench_gui(repeats: int = 60) -> dict:
    from ictview.gui.app import use_offscreen_platform

    use_offscreen_platform()
    from PySide6 import QtCore, QtGui, QtWidgets

    from ictview.core import paint
    from ictview.core.mpr import AXIAL, CORONAL, SAGITTAL, planes_for
    from ictview.gui.app import ensure_app
    from ictview.gui.shell.main_window import MainWindow

    app = ensure_app()
    r: dict = {"shape": list(SHAPE), "window": list(WINDOW_SIZE)}
    paints = _Paints()
    hu, ref_labels = _phantom(SHAPE)
    planes = planes_for(SHAPE, SPACING)
    zs = [(k * 7) % SHAPE[0] for k in range(repeats)]
    with tempfile.TemporaryDirectory(prefix="ictview-bench-") as tmp:
        root = Path(tmp) / "ws"
        exam = _workspace(root)
        win = MainWindow(headless=True)
        refs = []
        try:
            win.set_rater("bench")
            win.open_workspace(root)
            win._set_start_from("reference")  # the overlay has a lesion to draw
            win.resize(*WINDOW_SIZE)
            win.show()
            app.processEvents()
            views = win.viewer.views
            for v in views.values():
                paints.watch(v.canvas.viewport())

            # ---- open: first painted slice, then editable -------------------------------
            first, ready = [], []
            for _ in range(7):
                win.close_exam()
                app.processEvents()
                t0 = time.perf_counter()
                win.open_exam(exam)
                app.processEvents()
                first.append(time.perf_counter() - t0)
                while win.model is None:
                    app.processEvents()
                    time.sleep(0.0005)
                app.processEvents()
                ready.append(time.perf_counter() - t0)
            r["open_first_paint_ms"] = _ms(first)
            r["open_first_paint_cold_ms"] = round(1000 * first[0], 2)
            r["open_ready_ms"] = _ms(ready)
            r["open_ready_cold_ms"] = round(1000 * ready[0], 2)
            m = win.model
            m.label_value = 4
            m.brush_radius_mm = 3.0
            lesion_z = int(np.argmax(m.labels.reshape(SHAPE[0], -1).sum(1)))

            def size_of(view):
                return (view.canvas.width(), view.canvas.height())

            # ---- axial layout -------------------------------------------------------------
            ax = views[AXIAL]
            win.viewer.fit_all()
            app.processEvents()
            ref = _Reference(size_of(ax), planes[AXIAL].image_shape, planes[AXIAL].aspect)
            refs.append(ref)
            app.processEvents()
            n0 = paints.count
            _timed(app, lambda k: ax.set_slice(zs[k]), 5)
            r["paints_per_action"] = round((paints.count - n0) / 5, 2)
            r["slice_axial_single_ms"], r["ref_slice_axial_single_ms"] = _paired(
                app, lambda k: ax.set_slice(zs[k]),
                lambda k: ref.show(hu[zs[k]], ref_labels[zs[k]]), repeats)
            ax.set_slice(lesion_z)
            ref_lab = ref_labels.copy()
            ref.show(hu[lesion_z], ref_lab[lesion_z])
            app.processEvents()
            ry, rx = 3.0 / SPACING[1], 3.0 / SPACING[2]
            ref_samples: list[float] = []

            def ref_dab(k):  # what a bare viewer does per dab: paint, re-set the overlay
                a = k * 0.35
                t0 = time.perf_counter()
                paint.brush(ref_lab, lesion_z, 200 + 25 * np.sin(a), 300 + 25 * np.cos(a),
                            (ry, rx), 4)
                ref.lab.setImage(ref_lab[lesion_z], autoLevels=False)
                app.processEvents()
                ref_samples.append(time.perf_counter() - t0)

            r["brush_dab_ms"], r["stroke_end_ms"] = _drag(app, ax, repeats, QtCore, QtGui,
                                                          QtWidgets, between=ref_dab)
            r["ref_brush_dab_ms"] = _ms(ref_samples)
            ref.close()
            refs.remove(ref)

            # ---- MPR 1x3 ------------------------------------------------------------------
            win.viewer.set_layout("mpr-1x3")
            app.processEvents()
            win.viewer.fit_all()
            app.processEvents()
            for name in (AXIAL, CORONAL, SAGITTAL):
                v, plane = views[name], planes[name]
                idx = [(k * 37) % plane.n_slices for k in range(repeats)]
                ref = _Reference(size_of(v), plane.image_shape, plane.aspect)
                refs.append(ref)
                app.processEvents()
                r[f"slice_{name}_ms"], r[f"ref_slice_{name}_ms"] = _paired(
                    app, lambda k: v.set_slice(idx[k]),
                    lambda k: ref.show(plane.image(hu, idx[k]), plane.image(ref_labels, idx[k])),
                    repeats)
                ref.close()
                refs.remove(ref)
            rng = np.random.default_rng(1)
            points = [tuple(int(rng.integers(0, n)) for n in SHAPE) for _ in range(repeats)]
            three = [_Reference(size_of(views[n]), planes[n].image_shape, planes[n].aspect)
                     for n in (AXIAL, CORONAL, SAGITTAL)]
            refs.extend(three)
            app.processEvents()

            def ref_cross(k):
                for ref3, n in zip(three, (AXIAL, CORONAL, SAGITTAL)):
                    i = points[k][planes[n].axes[0]]
                    ref3.show(planes[n].image(hu, i), planes[n].image(ref_labels, i))

            r["crosshair_ms"], r["ref_crosshair_ms"] = _paired(
                app, lambda k: win.viewer.set_crosshair(points[k]), ref_cross, repeats)
            cor = views[CORONAL]
            win.viewer.set_crosshair((lesion_z, 180, 300))
            app.processEvents()
            r["brush_dab_coronal_ms"], _ = _drag(app, cor, repeats, QtCore, QtGui, QtWidgets,
                                                 center=(SHAPE[0] - 1 - lesion_z, 300),
                                                 radius=(0.8, 25))
            t0 = time.perf_counter()
            win.model.flush(30)
            r["background_save_wait_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        finally:
            for ref in refs:
                ref.close()
            win.shutdown()
            win.close()
            win.deleteLater()
            app.processEvents()
    for key, target in TARGETS_MS.items():
        r[f"{key.removesuffix('_ms')}_target_ms"] = target
    _print(r)
    return r


def _drag(app, view, repeats, QtCore, QtGui, QtWidgets, center=(200, 300),
          radius=(25, 25), between=None) -> tuple[float, float]:
    """Circular drags: each mouse move is one dab. Returns (dab median, stroke end median).
    `between(k)` runs after each dab (the reference's dab, interleaved)."""
    vp = view.canvas.viewport()
    E, B = QtCore.QEvent.Type, QtCore.Qt.MouseButton

    def send(kind, row, col, button, buttons):
        p = QtCore.QPointF(view.pixel_to_widget(row, col))
        ev = QtGui.QMouseEvent(kind, p, vp.mapToGlobal(p), button, buttons,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(vp, ev)

    dabs, ends = [], []
    for stroke in range(6):
        cy, cx = center[0] + (15 * stroke if radius[0] > 2 else 0), center[1]
        send(E.MouseButtonPress, cy, cx, B.LeftButton, B.LeftButton)
        app.processEvents()
        for k in range(1, repeats // 3):
            a = k * 0.35
            row, col = cy + radius[0] * np.sin(a), cx + radius[1] * np.cos(a)
            t0 = time.perf_counter()
            send(E.MouseMove, row, col, B.NoButton, B.LeftButton)
            app.processEvents()
            dabs.append(time.perf_counter() - t0)
            if between is not None:
                between(stroke * repeats + k)
        t0 = time.perf_counter()
        send(E.MouseButtonRelease, cy, cx, B.LeftButton, B.NoButton)
        ends.append(time.perf_counter() - t0)
        app.processEvents()
    return _ms(dabs), _ms(ends)


def _print(r: dict) -> None:
    z, y, x = r["shape"]
    print(f"ictview bench gui ({z} slices of {y}x{x}, 5 mm, offscreen {r['window'][0]}x"
          f"{r['window'][1]}, medians of action + repaint; reference = plain pyqtgraph "
          "ImageItem + Indexed8 overlay, same view size, same run)")
    print(f"  {'':<44} {'ictview':>9} {'reference':>10} {'ratio':>6}   target")
    rows = [
        ("slice change, axial layout", "slice_axial_single_ms", "ref_slice_axial_single_ms",
         "slice_axial_ms"),
        ("slice change, MPR axial view", "slice_axial_ms", "ref_slice_axial_ms",
         "slice_axial_ms"),
        ("slice change, MPR coronal view", "slice_coronal_ms", "ref_slice_coronal_ms",
         "slice_coronal_ms"),
        ("slice change, MPR sagittal view", "slice_sagittal_ms", "ref_slice_sagittal_ms",
         "slice_sagittal_ms"),
        ("brush dab in a drag, axial", "brush_dab_ms", "ref_brush_dab_ms", "brush_dab_ms"),
        ("brush dab in a drag, coronal", "brush_dab_coronal_ms", None, "brush_dab_ms"),
        ("MPR crosshair move (three views)", "crosshair_ms", "ref_crosshair_ms", "crosshair_ms"),
        ("open exam to first paint", "open_first_paint_ms", None, "open_first_paint_ms"),
        ("open exam to first paint, first time", "open_first_paint_cold_ms", None,
         "open_first_paint_ms"),
        ("open exam until editable (background)", "open_ready_ms", None, None),
        ("open exam until editable, first time", "open_ready_cold_ms", None, None),
        ("stroke end (journal append + fsync)", "stroke_end_ms", None, None),
    ]
    for name, key, ref_key, target_key in rows:
        value = r[key]
        ref = f"{r[ref_key]:10.2f}" if ref_key else f"{'':>10}"
        ratio = f"{value / r[ref_key]:6.2f}" if ref_key and r[ref_key] > 0 else f"{'':>6}"
        goal = ""
        if target_key:
            t = TARGETS_MS[target_key]
            goal = f"   <= {t:g} ms: {'ok' if value <= t else 'SLOW'}"
        print(f"  {name:<44} {value:9.2f} {ref} {ratio}{goal}")
    print(f"  paints per timed action: {r['paints_per_action']} (>= 1: each figure includes "
          "its repaint)")
