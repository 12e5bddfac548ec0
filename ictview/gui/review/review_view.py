"""Prediction review: any run's predictions on any exam against the reference.

Reference only red, prediction only green, both yellow (the paper's Figure 3; or blue /
orange / white, Preferences; exact colours at full opacity), or the probability heatmap; a threshold slider; the exam list
with each exam's score (sortable); F / Shift+F and N / Shift+N jump to the next / previous
false-positive or false-negative region (3-D connected regions, ictview.core.overlay).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core import overlay as ov
from ictview.core.window import WINDOW_PRESETS
from ictview.errors import IctviewError
from ictview.gui import panel_widgets as pc
from ictview.gui import preferences
from ictview.gui.preferences import overlay_swatch, review_hex
from ictview.gui.review.prediction_layer import COMPARISON, HEATMAP, PredictionLayer
from ictview.gui.viewer.slice_view import SliceView
from ictview.store.workspace import Workspace
from ictview.study import run_review as rv

Qt = QtCore.Qt
ROLES = ("test", "validation", "unlabeled", "labeled")
LEGEND_TEXT = ("Reference only (not predicted)", "Prediction only (no reference)",
               "Both (reference and prediction)")
ALL_ROLES = "All roles"


def threshold_slider() -> tuple[QtWidgets.QSlider, QtWidgets.QLabel]:
    s = QtWidgets.QSlider(Qt.Orientation.Horizontal)
    s.setRange(1, 99)
    s.setValue(50)
    s.setPageStep(5)
    lab = QtWidgets.QLabel("p ≥ 0.50")
    lab.setMinimumWidth(64)
    return s, lab


def window_combo() -> QtWidgets.QComboBox:
    c = QtWidgets.QComboBox()
    for i, (name, (ctr, w)) in enumerate(WINDOW_PRESETS.items(), start=1):
        c.addItem(f"{name.capitalize()}  (W {w} / L {ctr})  [{i}]", name)
    return c


def region_box(view: SliceView) -> QtWidgets.QGraphicsRectItem:
    item = QtWidgets.QGraphicsRectItem()
    pen = QtGui.QPen(QtGui.QColor("#4fd1ff"), 1.5, Qt.PenStyle.DashLine)
    pen.setCosmetic(True)
    item.setPen(pen)
    item.setZValue(28)
    item.setVisible(False)
    view.vb.addItem(item, ignoreBounds=True)
    return item


def show_region(view: SliceView, box: QtWidgets.QGraphicsRectItem, region: ov.Region | None,
                center: bool = True) -> None:
    """Go to the region's largest slice, outline it, and frame it (ov.region_frame: the
    region in the middle with the anatomy around it, the same for every kind of region)."""
    if region is None:
        box.setVisible(False)
        return
    view.set_slice(region.peak_z)
    ys = view._y_scale
    r0, c0, r1, c1 = region.bbox
    pad = 3
    box.setRect(QtCore.QRectF(c0 - pad, (r0 - pad) * ys, (c1 - c0) + 2 * pad,
                              ((r1 - r0) + 2 * pad) * ys))
    box.setVisible(True)
    if center and view.hu is not None:
        f0, g0, f1, g1 = ov.region_frame(region, view.hu.shape[1:])
        view.vb.setRange(QtCore.QRectF(g0, f0 * ys, g1 - g0, (f1 - f0) * ys), padding=0)


class ReviewView(QtWidgets.QWidget):
    exam_shown = QtCore.Signal(str)

    def __init__(self, ws_root: Path, *, headless: bool = False, parent=None):
        super().__init__(parent)
        self.ws_root = Path(ws_root)
        self.headless = headless
        self.ws = Workspace.open(self.ws_root)
        self.run = ""
        self.exam = ""
        self.rows: list[rv.ExamRow] = []
        self.regions: list[ov.Region] = []
        self.current_region: ov.Region | None = None
        self.spacing = (1.0, 1.0, 1.0)
        self.score = math.nan
        self._build()
        self._regions_timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._regions_timer.timeout.connect(self._update_regions)
        self.load_runs()

    # ---- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.run_combo = QtWidgets.QComboBox()
        self.role_combo = QtWidgets.QComboBox()
        self.role_combo.addItem(ALL_ROLES, "")
        for r in ROLES:
            self.role_combo.addItem(r, r)
        self.table = pc.table(["Exam", "Reference", "Mask", "Score"], stretch=1)
        self.table.setSortingEnabled(True)
        self.count = pc.muted("", wrap=False)
        left = QtWidgets.QFrame()
        left.setObjectName("sidePanel")
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(8, 4, 4, 8)
        ll.addWidget(pc.title("Run"))
        ll.addWidget(self.run_combo)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(pc.title("Exams"))
        head.addStretch(1)
        head.addWidget(self.count)
        ll.addLayout(head)
        ll.addWidget(self.role_combo)
        ll.addWidget(self.table, 1)
        left.setMinimumWidth(340)

        self.view = SliceView()
        self.view.set_editable(False)
        self.view.set_crosshair_visible(False)
        self.layer = PredictionLayer(self.view)
        preferences.listen(self)  # the counter's colours follow the review palette
        self.box = region_box(self.view)

        # controls
        self.mode_comparison = QtWidgets.QRadioButton("Reference vs prediction")
        self.mode_heatmap = QtWidgets.QRadioButton("Probability heatmap")
        self.mode_comparison.setChecked(True)
        self.threshold, self.threshold_label = threshold_slider()
        self.opacity = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(70)
        self.opacity_label = QtWidgets.QLabel("70 %")
        self.outline = QtWidgets.QCheckBox("Outline only")
        self.window = window_combo()
        ov_box = QtWidgets.QGroupBox("OVERLAY")
        g = QtWidgets.QGridLayout(ov_box)
        g.addWidget(self.mode_comparison, 0, 0, 1, 2)
        g.addWidget(self.mode_heatmap, 1, 0, 1, 2)
        g.addWidget(QtWidgets.QLabel("Threshold"), 2, 0, 1, 2)
        g.addWidget(self.threshold, 3, 0)
        g.addWidget(self.threshold_label, 3, 1)
        g.addWidget(QtWidgets.QLabel("Opacity"), 4, 0, 1, 2)
        g.addWidget(self.opacity, 5, 0)
        g.addWidget(self.opacity_label, 5, 1)
        g.addWidget(self.outline, 6, 0, 1, 2)
        g.addWidget(QtWidgets.QLabel("Window"), 7, 0, 1, 2)
        g.addWidget(self.window, 8, 0, 1, 2)

        self.legend = QtWidgets.QWidget()
        lg = QtWidgets.QVBoxLayout(self.legend)
        lg.setContentsMargins(0, 0, 0, 0)
        lg.setSpacing(3)
        # the legend is per pixel (what each colour is), the error-region counter per lesion:
        # reference-only pixels on a found lesion are its under-segmented rim, not a missed lesion
        self.swatches = [overlay_swatch(ov.REFERENCE_ONLY, LEGEND_TEXT[0]),
                         overlay_swatch(ov.PREDICTION_ONLY, LEGEND_TEXT[1]),
                         overlay_swatch(ov.OVERLAP, LEGEND_TEXT[2])]
        for w in self.swatches:
            lg.addWidget(w)
        self.heat_legend = QtWidgets.QLabel()
        self.heat_legend.setVisible(False)
        lg.addWidget(self.heat_legend)
        legend_box = QtWidgets.QGroupBox("LEGEND")
        QtWidgets.QVBoxLayout(legend_box).addWidget(self.legend)

        self.region_counts = QtWidgets.QLabel("")
        self.region_counts.setWordWrap(True)
        self.region_info = pc.muted("")
        self.prev_fp = QtWidgets.QPushButton("◀")
        self.next_fp = QtWidgets.QPushButton("Next FP  [F]")
        self.prev_fn = QtWidgets.QPushButton("◀")
        self.next_fn = QtWidgets.QPushButton("Next FN  [N]")
        for b in (self.prev_fp, self.prev_fn):
            b.setFixedWidth(34)
        self.prev_fp.setToolTip("Previous false-positive region [Shift+F]")
        self.prev_fn.setToolTip("Previous false-negative region [Shift+N]")
        err_box = QtWidgets.QGroupBox("ERROR REGIONS")
        eg = QtWidgets.QGridLayout(err_box)
        eg.addWidget(self.region_counts, 0, 0, 1, 2)
        eg.addWidget(self.prev_fp, 1, 0)
        eg.addWidget(self.next_fp, 1, 1)
        eg.addWidget(self.prev_fn, 2, 0)
        eg.addWidget(self.next_fn, 2, 1)
        eg.addWidget(self.region_info, 3, 0, 1, 2)

        self.exam_info = QtWidgets.QLabel("")
        self.exam_info.setWordWrap(True)
        self.exam_info.setTextFormat(Qt.TextFormat.RichText)
        info_box = QtWidgets.QGroupBox("EXAM")
        QtWidgets.QVBoxLayout(info_box).addWidget(self.exam_info)

        right = QtWidgets.QFrame()
        right.setObjectName("sidePanel")
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(6, 4, 8, 8)
        rl.addWidget(info_box)
        rl.addWidget(ov_box)
        rl.addWidget(legend_box)
        rl.addWidget(err_box)
        rl.addStretch(1)
        right.setMinimumWidth(300)
        right.setMaximumWidth(360)

        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(self.view)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([360, 900, 330])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.run_combo.currentIndexChanged.connect(lambda _i: self.set_run(
            self.run_combo.currentText()))
        self.role_combo.currentIndexChanged.connect(lambda _i: self._fill_table())
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.mode_comparison.toggled.connect(self._mode_changed)
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.outline.toggled.connect(self.view.set_outline_mode)
        self.window.currentIndexChanged.connect(
            lambda _i: self.view.set_preset(self.window.currentData()))
        self.view.window_changed.connect(self._window_changed)
        self.view.cursor_moved.connect(self._cursor_moved)
        self.view.slice_changed.connect(self._slice_changed)
        self.next_fp.clicked.connect(lambda: self.jump(ov.FP, True))
        self.prev_fp.clicked.connect(lambda: self.jump(ov.FP, False))
        self.next_fn.clicked.connect(lambda: self.jump(ov.FN, True))
        self.prev_fn.clicked.connect(lambda: self.jump(ov.FN, False))
        self._shortcuts()
        self._opacity_changed(self.opacity.value())

    def _shortcuts(self) -> None:
        keys = {
            "F": lambda: self.jump(ov.FP, True), "Shift+F": lambda: self.jump(ov.FP, False),
            "N": lambda: self.jump(ov.FN, True), "Shift+N": lambda: self.jump(ov.FN, False),
            "Up": lambda: self.view.step_slice(1), "Down": lambda: self.view.step_slice(-1),
            "PgUp": lambda: self.view.step_slice(5), "PgDown": lambda: self.view.step_slice(-5),
            "H": lambda: (self.mode_heatmap if self.mode_comparison.isChecked()
                          else self.mode_comparison).setChecked(True),
            "Ctrl+Down": lambda: self.step_exam(1), "Ctrl+Up": lambda: self.step_exam(-1),
        }
        for i, name in enumerate(WINDOW_PRESETS, start=1):
            keys[str(i)] = lambda n=name: self.view.set_preset(n)
        self._keys = pc.add_shortcuts(self, keys)

    # ---- data -----------------------------------------------------------------------------------

    def load_runs(self, prefer: str = "") -> None:
        rows = rv.prediction_runs(self.ws)
        runs = [r["name"] for r in rows]
        pick = pc.fill_run_combo(self.run_combo, runs, prefer or rv.default_run(rows))
        if not pick:
            self.view.placeholder.setText("No run has predictions yet: train and evaluate a "
                                          "model (Training ▸ Training runs)")
            return
        self.set_run(pick)

    def set_run(self, run: str) -> None:
        if not run or run == self.run:
            return
        self.run = run
        self.run_combo.blockSignals(True)
        self.run_combo.setCurrentText(run)
        self.run_combo.blockSignals(False)
        self.rows = rv.exam_rows(self.ws, [run])
        roles = {r.role for r in self.rows}
        if self.role_combo.currentData() and self.role_combo.currentData() not in roles:
            self.role_combo.setCurrentIndex(0)
        self._fill_table()
        keep = self.exam if any(r.exam == self.exam for r in self.rows) else ""
        self.exam = ""
        if keep:
            self.open_exam(keep)
        elif self.table.rowCount():
            self.table.selectRow(0)

    def _fill_table(self) -> None:
        role = self.role_combo.currentData()
        rows = [r for r in self.rows if not role or r.role == role]
        t = self.table
        t.blockSignals(True)
        t.setSortingEnabled(False)
        t.setRowCount(len(rows))
        for i, r in enumerate(rows):
            text, color = pc.reference_text(r.reference)
            tip = f"exam-level reference from {r.reference_source}" if r.reference_source \
                else "no exam-level reference"
            s = r.score(self.run)
            t.setItem(i, 0, pc.cell(r.exam, sort=r.exam, tip=f"{r.site} · {r.role}"))
            t.setItem(i, 1, pc.cell(text, sort=(-1 if r.reference is None else int(r.reference)),
                                    color=color, tip=tip))
            t.setItem(i, 2, pc.cell("✓" if r.pixel_reference else "", sort=int(r.pixel_reference),
                                    tip="pixel labels in the 'reference' labelset: reference vs "
                                        "prediction review possible" if r.pixel_reference else ""))
            t.setItem(i, 3, pc.cell(pc.fmt(s), sort=s, align_right=True))
        t.setSortingEnabled(True)
        t.sortByColumn(3, Qt.SortOrder.DescendingOrder)
        t.blockSignals(False)
        # blinding is said, not silent: the exams of an unfinished test-retest study
        hidden = {e for r in [self.run] if r for e in self.ws.guard.hidden_predictions(r)}
        blinded = f" · {len(hidden)} blinded" if hidden else ""
        self.count.setText(f"{len(rows)} exams{blinded}")
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
            prob = rv.load_probability(self.ws, self.run, exam)
            ref = rv.reference_mask(self.ws, exam)
            e = self.ws.exam(exam)
        except IctviewError as err:
            self.exam_info.setText(f"<span style='color:#e07a6a'>{err}</span>")
            return False
        self.exam = exam
        self.spacing = e.spacing
        row = next((r for r in self.rows if r.exam == exam), None)
        self.row = row
        self.score = row.score(self.run) if row else math.nan
        z = self._start_slice(prob, ref)
        self.layer.set_exam(vol.hu, prob, ref, e.spacing[1:], z=z)
        self.view.set_orientation(vol.geometry.row_dir, vol.geometry.col_dir)
        self.current_region = None
        self.box.setVisible(False)
        self._update_regions()
        self._update_info()
        self._select_current()
        self.exam_shown.emit(exam)
        return True

    @staticmethod
    def _start_slice(prob: np.ndarray, ref: np.ndarray | None) -> int:
        """The slice with the most reference hemorrhage, else the most confident one."""
        if ref is not None and ref.any():
            return int(np.argmax(ref.reshape(ref.shape[0], -1).sum(1)))
        return int(np.argmax(prob.reshape(prob.shape[0], -1).max(1)))

    # ---- controls -------------------------------------------------------------------------------

    def set_threshold(self, t: float) -> None:
        self.threshold.setValue(int(round(t * 100)))

    def _threshold_changed(self, v: int) -> None:
        t = v / 100.0
        self.threshold_label.setText(f"p ≥ {t:.2f}")
        self.layer.set_threshold(t)
        self._regions_timer.start()  # regions after the slider settles
        self._update_heat_legend()

    def _mode_changed(self) -> None:
        mode = COMPARISON if self.mode_comparison.isChecked() else HEATMAP
        self.layer.set_mode(mode)
        self._update_heat_legend()

    def set_mode(self, mode: str) -> None:
        (self.mode_heatmap if mode == HEATMAP else self.mode_comparison).setChecked(True)

    def _update_heat_legend(self) -> None:
        heat = self.layer.mode == HEATMAP
        for w in self.swatches:
            w.setVisible(not heat)
        self.heat_legend.setVisible(heat)
        if heat:
            lut = ov.heatmap_lut(self.layer.threshold)
            w = 200
            img = np.zeros((12, w, 3), np.uint8)
            idx = np.linspace(0, 255, w).astype(int)
            img[:] = lut[idx, :3]
            img[:, lut[idx, 3] == 0] = 40
            qimg = QtGui.QImage(img.tobytes(), w, 12, 3 * w, QtGui.QImage.Format.Format_RGB888)
            self.heat_legend.setPixmap(QtGui.QPixmap.fromImage(qimg.copy()))
            self.heat_legend.setToolTip(f"p from 0 (left) to 1 (right); hidden below "
                                        f"{self.layer.threshold:.2f}")

    def _opacity_changed(self, v: int) -> None:
        self.opacity_label.setText(f"{v} %")
        self.layer.set_opacity(v / 100.0)

    def set_opacity(self, opacity: float) -> None:
        self.opacity.setValue(int(round(opacity * 100)))

    def _window_changed(self, _c: float, _w: float, preset: str) -> None:
        i = self.window.findData(preset)
        if i >= 0 and i != self.window.currentIndex():
            self.window.blockSignals(True)
            self.window.setCurrentIndex(i)
            self.window.blockSignals(False)

    def _cursor_moved(self, z: int, row: int, col: int) -> None:
        p = self.layer.probability_at(z, row, col)
        if p is None:
            self.view.set_bottom_right("")
            return
        hu = int(self.layer.hu[z, row, col])
        ref = ""
        if self.layer.reference is not None:
            ref = "  ·  reference: blood" if self.layer.reference[z, row, col] else ""
        self.view.set_bottom_right(f"HU {hu}  ·  p = {p:.2f}{ref}")

    def _slice_changed(self, z: int) -> None:
        r = self.current_region
        if r is not None and not (r.z_first <= z <= r.z_last):
            self.box.setVisible(False)
            self.current_region = None
            self.region_info.setText("")

    # ---- regions --------------------------------------------------------------------------------

    def preferences_changed(self, _prefs) -> None:
        if self.layer.codes is not None:
            self._update_regions()

    def _update_regions(self) -> None:
        self.regions = self.layer.regions(ov.min_region_voxels(self.spacing))
        fp = [r for r in self.regions if r.kind == ov.FP]
        fn = [r for r in self.regions if r.kind == ov.FN]
        tp = [r for r in self.regions if r.kind == ov.TP]
        mm3 = ov.MIN_REGION_MM3
        if self.layer.reference is None:
            pred = [r for r in self.regions if r.kind == ov.PRED]
            self.region_counts.setText(f"No pixel reference for this exam: "
                                       f"{len(pred)} predicted region(s) of ≥ {mm3:g} mm³; "
                                       "F jumps between them.")
        else:
            self.region_counts.setText(
                f"Lesions (3-D regions ≥ {mm3:g} mm³):<br>"
                f"<span style='color:{review_hex(ov.REFERENCE_ONLY)}'>{len(fn)} missed</span> · "
                f"<span style='color:{review_hex(ov.OVERLAP)}'>{len(tp)} found</span> · "
                f"<span style='color:{review_hex(ov.PREDICTION_ONLY)}'>{len(fp)} "
                "false-positive</span>")
        self.region_counts.setToolTip(
            "Counted per lesion: a reference lesion is missed when no predicted voxel touches "
            "it, found when one does; a false-positive region is a predicted region touching "
            f"no reference voxel. Regions under {mm3:g} mm³ are not counted. The legend's "
            "volumes are per pixel: the reference-only rim of a found lesion is reference the prediction "
            "did not cover, not a missed lesion.")
        self._update_legend_volumes()
        has_ref = self.layer.reference is not None
        self.next_fp.setEnabled(bool(fp) or (not has_ref and bool(self.regions)))
        self.prev_fp.setEnabled(self.next_fp.isEnabled())
        self.next_fn.setEnabled(bool(fn))
        self.prev_fn.setEnabled(bool(fn))
        if self.current_region is not None and self.current_region not in self.regions:
            self.current_region = None
            self.box.setVisible(False)
        self._update_info()

    def _update_legend_volumes(self) -> None:
        """Each colour's volume beside its swatch, so the pixel legend carries numbers too."""
        codes = self.layer.codes
        ml = float(np.prod(self.spacing)) / 1000.0
        counts = np.bincount(codes.ravel(), minlength=4) if codes is not None else None
        for w, code, text in zip(self.swatches, (ov.REFERENCE_ONLY, ov.PREDICTION_ONLY,
                                                 ov.OVERLAP), LEGEND_TEXT):
            label = w.layout().itemAt(1).widget()
            label.setText(text if counts is None else f"{text}: {counts[code] * ml:.2f} mL")

    def jump(self, kind: str, forward: bool = True) -> ov.Region | None:
        """Go to the next (previous) region of `kind` (FP or FN) from the current position."""
        if self._regions_timer.isActive():
            self._regions_timer.stop()
            self._update_regions()
        if self.layer.reference is None and kind == ov.FP:
            kind = ov.PRED
        pool = [r for r in self.regions if r.kind == kind]
        cur = self.current_region if self.current_region in pool else None
        r = ov.next_region(pool, self.view.z, cur, forward)
        if r is None:
            return None
        self.current_region = r
        show_region(self.view, self.box, r)
        i = sorted(pool, key=lambda q: (q.peak_z, q.center[0], q.center[1])).index(r) + 1
        names = {ov.FP: "False positive", ov.FN: "Missed (false negative)",
                 ov.PRED: "Predicted region"}
        pmax = ""
        if self.layer.prob is not None:
            z0, z1 = r.z_first, r.z_last + 1
            r0, c0, r1, c1 = r.bbox
            pmax = f", max p {float(self.layer.prob[z0:z1, r0:r1, c0:c1].max()):.2f}"
        self.region_info.setText(f"{names[kind]} {i} of {len(pool)}: {r.slices_text}, "
                                 f"{r.volume_ml(self.spacing):.2f} mL{pmax}")
        return r

    def _update_info(self) -> None:
        row = getattr(self, "row", None)
        ref_text, color = pc.reference_text(row.reference if row else None)
        src = f" ({row.reference_source})" if row and row.reference_source else ""
        lines = [f"<b>{self.exam}</b> · {row.site if row else ''} · {row.role if row else ''}",
                 f"Run <b>{self.run}</b>: exam score <b>{pc.fmt(self.score)}</b>",
                 f"Reference: <span style='color:{color}'>{ref_text}</span>{src}"]
        ref, pred = self.layer.reference, self.layer.prediction
        if ref is not None and pred is not None:
            d = rv.dice(ref, pred)
            ml = float(np.prod(self.spacing)) / 1000.0
            lines.append(f"Dice at p ≥ {self.layer.threshold:.2f}: <b>{pc.fmt(d, 2)}</b>  "
                         f"(reference {ref.sum() * ml:.2f} mL, predicted {pred.sum() * ml:.2f} mL)")
        elif ref is None:
            lines.append("No pixel reference: the prediction alone is shown.")
        self.exam_info.setText("<br>".join(lines))
        self.view.set_info(f"{self.exam}<br><span style='color:#8a939d'>{self.run}</span>",
                           f"score {pc.fmt(self.score)}")

    def shutdown(self) -> None:
        self._regions_timer.stop()
        self.ws.close()
