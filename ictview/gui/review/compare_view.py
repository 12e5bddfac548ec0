"""Side-by-side comparison of two runs (e.g. baseline and semi-supervised) on one exam.

Two SliceViews move together: slice, zoom, pan and window follow whichever view the reader
uses, and the mouse over either pane puts the crosshair and the HU / probability readout
at the same voxel in both. Each shows its run's prediction against the reference (red /
green / yellow) or as a heatmap. The exam list has both runs' exam scores and their
difference, sorted by disagreement; a line under the views says where the runs differ on
the open exam.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from ictview.core import overlay as ov
from ictview.core.window import WINDOW_PRESETS
from ictview.errors import IctviewError
from ictview.gui import panel_widgets as pc
from ictview.gui.preferences import overlay_swatch
from ictview.gui.review.prediction_layer import COMPARISON, HEATMAP, PredictionLayer
from ictview.gui.review.review_view import threshold_slider, window_combo
from ictview.gui.viewer.slice_view import SliceView
from ictview.store.workspace import Workspace
from ictview.study import run_review as rv

Qt = QtCore.Qt


class SyncedViews(QtCore.QObject):
    """Keeps a group of SliceViews on the same slice, view rectangle and window."""

    def __init__(self, views: list[SliceView], parent=None):
        super().__init__(parent)
        self.views = views
        self._busy = False
        for v in views:
            v.slice_changed.connect(lambda z, src=v: self._slice(src, z))
            v.window_changed.connect(lambda c, w, p, src=v: self._window(src, c, w, p))
            v.vb.sigRangeChanged.connect(lambda *_args, src=v: self._range(src))

    def _others(self, src: SliceView):
        return [v for v in self.views if v is not src and v.hu is not None]

    def _slice(self, src: SliceView, z: int) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            for v in self._others(src):
                v.set_slice(z)
        finally:
            self._busy = False

    def _window(self, src: SliceView, c: float, w: float, preset: str) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            for v in self._others(src):
                v.set_window(c, w, preset)
        finally:
            self._busy = False

    def _range(self, src: SliceView) -> None:
        """Same centre and magnification (image units per screen pixel) in every view; the
        views may differ by a pixel in size, so copying the range itself would not do."""
        if self._busy or src.hu is None:
            return
        self._busy = True
        try:
            (x0, x1), (y0, y1) = src.vb.viewRange()
            w = max(src.vb.width(), 1.0)
            per_px = (x1 - x0) / w
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            for v in self._others(src):
                hw, hh = v.vb.width() * per_px / 2, v.vb.height() * per_px / 2
                v.vb.setRange(xRange=(cx - hw, cx + hw), yRange=(cy - hh, cy + hh), padding=0)
        finally:
            self._busy = False


def view_geometry(view: SliceView) -> tuple[float, float, float]:
    """(centre x, centre y, image units per screen pixel) of a view."""
    (x0, x1), (y0, y1) = view.vb.viewRange()
    return (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / max(view.vb.width(), 1.0)


class CompareView(QtWidgets.QWidget):
    exam_shown = QtCore.Signal(str)

    def __init__(self, ws_root: Path, *, headless: bool = False, parent=None):
        super().__init__(parent)
        self.ws_root = Path(ws_root)
        self.headless = headless
        self.ws = Workspace.open(self.ws_root)
        self.run_a = self.run_b = ""
        self.exam = ""
        self.rows: list[rv.ExamRow] = []
        self.spacing = (1.0, 1.0, 1.0)
        self._build()
        self._summary_timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._summary_timer.timeout.connect(self.update_summary)
        self.load_runs()

    def _build(self) -> None:
        self.combo_a = QtWidgets.QComboBox()
        self.combo_b = QtWidgets.QComboBox()
        self.table = pc.table(["Exam", "Ref", "A", "B", "|A − B|"], stretch=1)
        self.table.horizontalHeaderItem(1).setToolTip("Exam-level reference (reads, mask or "
                                                      "image labels)")
        self.table.setSortingEnabled(True)
        self.count = pc.muted("", wrap=False)
        left = QtWidgets.QFrame()
        left.setObjectName("sidePanel")
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(8, 4, 4, 8)
        form = QtWidgets.QFormLayout()
        form.addRow("Run A", self.combo_a)
        form.addRow("Run B", self.combo_b)
        ll.addWidget(pc.title("Runs"))
        ll.addLayout(form)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(pc.title("Exams by disagreement"))
        head.addStretch(1)
        head.addWidget(self.count)
        ll.addLayout(head)
        ll.addWidget(self.table, 1)
        left.setMinimumWidth(420)

        self.view_a, self.view_b = SliceView(), SliceView()
        for v in (self.view_a, self.view_b):
            v.set_editable(False)
            v.set_crosshair_visible(False)  # drawn in both panes by _cursor instead
        self.layer_a, self.layer_b = PredictionLayer(self.view_a), PredictionLayer(self.view_b)
        self.sync = SyncedViews([self.view_a, self.view_b], self)
        self.title_a, self.title_b = QtWidgets.QLabel(), QtWidgets.QLabel()
        for t in (self.title_a, self.title_b):
            t.setObjectName("examTitle")
            t.setAlignment(Qt.AlignmentFlag.AlignCenter)
        views = QtWidgets.QGridLayout()
        views.setContentsMargins(0, 0, 0, 0)
        views.setHorizontalSpacing(4)
        views.setVerticalSpacing(2)
        views.addWidget(self.title_a, 0, 0)
        views.addWidget(self.title_b, 0, 1)
        views.addWidget(self.view_a, 1, 0)
        views.addWidget(self.view_b, 1, 1)
        views.setRowStretch(1, 1)
        views.setColumnStretch(0, 1)
        views.setColumnStretch(1, 1)

        self.mode_comparison = QtWidgets.QRadioButton("Reference vs prediction")
        self.mode_heatmap = QtWidgets.QRadioButton("Heatmap")
        self.mode_comparison.setChecked(True)
        self.threshold, self.threshold_label = threshold_slider()
        self.window = window_combo()
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 4)
        bar.addWidget(self.mode_comparison)
        bar.addWidget(self.mode_heatmap)
        bar.addSpacing(16)
        bar.addWidget(QtWidgets.QLabel("Threshold"))
        bar.addWidget(self.threshold, 1)
        bar.addWidget(self.threshold_label)
        bar.addSpacing(16)
        bar.addWidget(QtWidgets.QLabel("Window"))
        bar.addWidget(self.window)
        bar.addSpacing(16)
        for code, text in ((ov.REFERENCE_ONLY, "reference only"),
                           (ov.PREDICTION_ONLY, "prediction only"), (ov.OVERLAP, "both")):
            bar.addSpacing(10)
            bar.addWidget(overlay_swatch(code, text))

        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setStyleSheet("background: #16191c; border-top: 1px solid #2a2f35;"
                                   "padding: 8px 12px; font-size: 10.5pt;")

        center = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(center)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addLayout(bar)
        cl.addLayout(views, 1)
        cl.addWidget(self.summary)

        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(center)
        split.setStretchFactor(1, 1)
        split.setSizes([430, 1170])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.combo_a.currentIndexChanged.connect(lambda _i: self._runs_changed())
        self.combo_b.currentIndexChanged.connect(lambda _i: self._runs_changed())
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.mode_comparison.toggled.connect(self._mode_changed)
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.window.currentIndexChanged.connect(
            lambda _i: self.view_a.set_preset(self.window.currentData()))
        for v in (self.view_a, self.view_b):
            v.cursor_moved.connect(self._cursor)
        for v in (self.view_a, self.view_b):
            v.set_opacity(0.7)
        keys = {"Up": lambda: self.view_a.step_slice(1), "Down": lambda: self.view_a.step_slice(-1),
                "PgUp": lambda: self.view_a.step_slice(5),
                "PgDown": lambda: self.view_a.step_slice(-5),
                "Ctrl+Down": lambda: self.step_exam(1), "Ctrl+Up": lambda: self.step_exam(-1)}
        for i, name in enumerate(WINDOW_PRESETS, start=1):
            keys[str(i)] = lambda n=name: self.view_a.set_preset(n)
        self._keys = pc.add_shortcuts(self, keys)

    # ---- runs and exams ---------------------------------------------------------------------------

    def load_runs(self, a: str = "", b: str = "") -> None:
        rows = rv.prediction_runs(self.ws)
        names = [r["name"] for r in rows]  # model runs only (rv.prediction_runs)
        for combo in (self.combo_a, self.combo_b):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.blockSignals(False)
        if len(names) < 1:
            self.summary.setText("No run has predictions yet.")
            return
        teachers = [r["name"] for r in rows if r["kind"] == "teacher"]
        students = [r["name"] for r in rows if r["kind"] == "student"]
        a = a if a in names else ("baseline" if "baseline" in names else
                                  (teachers[0] if teachers else names[0]))
        b = b if b in names else ("ss" if "ss" in names else
                                  (students[-1] if students else names[-1]))
        self.set_runs(a, b)

    def set_runs(self, a: str, b: str) -> None:
        for combo, name in ((self.combo_a, a), (self.combo_b, b)):
            combo.blockSignals(True)
            combo.setCurrentText(name)
            combo.blockSignals(False)
        self._runs_changed()

    def _runs_changed(self) -> None:
        a, b = self.combo_a.currentText(), self.combo_b.currentText()
        if (a, b) == (self.run_a, self.run_b) or not a or not b:
            return
        self.run_a, self.run_b = a, b
        for col, name in ((2, a), (3, b)):
            self.table.horizontalHeaderItem(col).setText(name)
        self.title_a.setText(f"A · {a}")
        self.title_b.setText(f"B · {b}")
        both = set(self.ws.predicted_exams(a)) & set(self.ws.predicted_exams(b))
        self.rows = [r for r in rv.exam_rows(self.ws, [a, b]) if r.exam in both]
        self._fill_table()
        keep, self.exam = self.exam, ""
        if keep and any(r.exam == keep for r in self.rows):
            self.open_exam(keep)
        elif self.table.rowCount():
            self.table.selectRow(0)
        else:
            self.summary.setText(f"{a} and {b} have no predicted exam in common.")

    def _fill_table(self) -> None:
        t = self.table
        t.blockSignals(True)
        t.setSortingEnabled(False)
        t.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            text, color = pc.reference_text(r.reference)
            sa, sb = r.score(self.run_a), r.score(self.run_b)
            d = r.disagreement(self.run_a, self.run_b)
            t.setItem(i, 0, pc.cell(r.exam, tip=f"{r.site} · {r.role}"))
            t.setItem(i, 1, pc.cell(text, sort=-1 if r.reference is None else int(r.reference),
                                    color=color))
            t.setItem(i, 2, pc.cell(pc.fmt(sa), sort=sa, align_right=True))
            t.setItem(i, 3, pc.cell(pc.fmt(sb), sort=sb, align_right=True))
            dcol = "#e0b25a" if d >= 0.3 else None
            t.setItem(i, 4, pc.cell(pc.fmt(d) if d >= 0 else "–", sort=d, align_right=True,
                                    color=dcol))
        t.setSortingEnabled(True)
        t.sortByColumn(4, Qt.SortOrder.DescendingOrder)
        t.blockSignals(False)
        # blinding is said, not silent: the exams of an unfinished test-retest study
        hidden = {e for r in [self.run_a, self.run_b] if r for e in self.ws.guard.hidden_predictions(r)}
        blinded = f" · {len(hidden)} blinded" if hidden else ""
        self.count.setText(f"{len(self.rows)} exams{blinded}")
        self.count.setToolTip(f"{len(hidden)} exam(s) of an unfinished test-retest study are "
                              "hidden from your login until the study is finished"
                              if hidden else "")
        self._select_current()

    def _select_current(self) -> None:
        pc.select_exam_row(self.table, self.exam)

    def _row_selected(self) -> None:
        exam = pc.selected_exam(self.table)
        if exam is not None:
            self.open_exam(exam)

    def step_exam(self, delta: int) -> None:
        pc.step_row(self.table, delta)

    def open_exam(self, exam: str) -> bool:
        if exam == self.exam:
            return True
        try:
            vol = self.ws.read_volume(exam)
            pa = rv.load_probability(self.ws, self.run_a, exam)
            pb = rv.load_probability(self.ws, self.run_b, exam)
            ref = rv.reference_mask(self.ws, exam)
            e = self.ws.exam(exam)
        except IctviewError as err:
            self.summary.setText(f"<span style='color:#e07a6a'>{err}</span>")
            return False
        self.exam, self.spacing = exam, e.spacing
        z = self._start_slice(pa, pb, ref, self.threshold.value() / 100.0)
        # keep the reader's window across exams; B follows A through the sync
        c, w, preset = self.view_a.center, self.view_a.width, self.view_a.preset
        self.layer_a.set_exam(vol.hu, pa, ref, e.spacing[1:], z=z)
        self.layer_b.set_exam(vol.hu, pb, ref, e.spacing[1:], z=z)
        for v in (self.view_a, self.view_b):
            v.set_orientation(vol.geometry.row_dir, vol.geometry.col_dir)
        self.view_a.set_window(c, w, preset)
        row = next((r for r in self.rows if r.exam == exam), None)
        for v, run in ((self.view_a, self.run_a), (self.view_b, self.run_b)):
            s = row.score(run) if row else math.nan
            v.set_info(exam, f"score {pc.fmt(s)}")
        self.update_summary()
        self._select_current()
        self.exam_shown.emit(exam)
        return True

    @staticmethod
    def _start_slice(pa: np.ndarray, pb: np.ndarray, ref: np.ndarray | None, t: float) -> int:
        """Where the runs disagree on blood: the slice with most reference pixels that one
        run marks and the other does not; without such, the most reference blood; without a
        reference, the most pixels marked by one run only."""
        a, b = pa >= np.float16(t), pb >= np.float16(t)
        xor = a ^ b
        n = xor.shape[0]
        if ref is not None and ref.any():
            on_blood = (xor & ref).reshape(n, -1).sum(1)
            if on_blood.max() > 0:
                return int(np.argmax(on_blood))
            return int(np.argmax(ref.reshape(n, -1).sum(1)))
        per = xor.reshape(n, -1).sum(1)
        return int(np.argmax(per)) if per.max() > 0 else n // 2

    def update_summary(self) -> None:
        if not self.exam or self.layer_a.prediction is None:
            return
        row = next((r for r in self.rows if r.exam == self.exam), None)
        line = rv.difference_summary(
            self.run_a, self.run_b, self.layer_a.reference, self.layer_a.prediction,
            self.layer_b.prediction, self.spacing,
            row.score(self.run_a) if row else math.nan, row.score(self.run_b) if row else math.nan,
            min_voxels=ov.min_region_voxels(self.spacing))
        self.summary.setText(f"<b>{self.exam}</b> at p ≥ {self.layer_a.threshold:.2f}: {line}")

    # ---- controls ---------------------------------------------------------------------------------

    def _mode_changed(self) -> None:
        mode = COMPARISON if self.mode_comparison.isChecked() else HEATMAP
        self.layer_a.set_mode(mode)
        self.layer_b.set_mode(mode)

    def _threshold_changed(self, v: int) -> None:
        t = v / 100.0
        self.threshold_label.setText(f"p ≥ {t:.2f}")
        self.layer_a.set_threshold(t)
        self.layer_b.set_threshold(t)
        self._summary_timer.start()

    def _cursor(self, z: int, r: int, c: int) -> None:
        """The voxel under the mouse in either pane: both panes draw the crosshair through
        it and read out its HU and their own run's probability, so the two runs are compared
        at the same point without moving the mouse across."""
        for view, layer in ((self.view_a, self.layer_a), (self.view_b, self.layer_b)):
            p = layer.probability_at(z, r, c) if r >= 0 else None
            view.show_crosshair_at(r if p is not None else -1, c)
            view.set_bottom_right("" if p is None else
                                  f"HU {int(layer.hu[z, r, c])}  ·  p = {p:.2f}")

    def shutdown(self) -> None:
        self._summary_timer.stop()
        self.ws.close()
