"""Threshold inspection (the ranker): the radiologist looks at pseudo-labeled images at a
candidate cut C and says which are really hemorrhage.

Left: the pseudolabel run, its images ranked by teacher probability (plot with the
candidate cuts), the precision per C estimated from the marks (Wilson 95% CI), and the
choice of C / K_hi / K_lo saved with the run for the next student. Right: a grid of the
images just above the cut at the current C (optionally also just below), each with its
pseudo-label overlay: pixels p > K_hi green, the ignored band K_lo..K_hi amber-hatched.
Each tile is marked true or false positive (buttons, or T / F / Delete on the selected tile,
which then moves to the next one). Marks are stored with the rater and time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: I001  (before pyqtgraph)

import pyqtgraph as pg
from scipy import ndimage

from ictview.core import overlay as ov
from ictview.core.window import WINDOW_PRESETS, apply_window
from ictview.errors import IctviewError
from ictview.gui import panel_widgets as pc
from ictview.gui.app import COLORS
from ictview.gui.workers import Worker
from ictview.store.workspace import Workspace
from ictview.study import ranker_review as rr

Qt = QtCore.Qt
TILE = 226
TP_COLOR, FP_COLOR = "#4cc38a", "#e5534b"


def thumbnail(hu2d: np.ndarray, prob2d: np.ndarray, k_hi: float, k_lo: float, size: int = TILE,
              y_scale: float = 1.0) -> np.ndarray:
    """RGB tile: the head cropped, brain window, pseudo-label overlay drawn at tile resolution
    (codes resampled nearest, so edges and hatching stay crisp)."""
    head = hu2d > -300
    if head.any():
        rows, cols = np.nonzero(head)
        r0, r1 = max(rows.min() - 4, 0), min(rows.max() + 5, hu2d.shape[0])
        c0, c1 = max(cols.min() - 4, 0), min(cols.max() + 5, hu2d.shape[1])
    else:
        r0, r1, c0, c1 = 0, hu2d.shape[0], 0, hu2d.shape[1]
    h, w = (r1 - r0) * y_scale, c1 - c0
    side = max(h, w)
    zoom = (size * (h / side) / (r1 - r0), size * (w / side) / w)
    gray = (apply_window(hu2d[r0:r1, c0:c1], *WINDOW_PRESETS["brain"]) * 255.0)
    gray = np.clip(ndimage.zoom(gray, zoom, order=1), 0, 255).astype(np.uint8)
    codes = ov.pseudo_codes(prob2d[r0:r1, c0:c1].astype(np.float32), k_hi, k_lo)
    codes = ndimage.zoom(codes, zoom, order=0)[: gray.shape[0], : gray.shape[1]]
    rgb = ov.compose_pseudolabel(gray, codes)
    out = np.zeros((size, size, 3), np.uint8)
    oy, ox = (size - rgb.shape[0]) // 2, (size - rgb.shape[1]) // 2
    out[oy:oy + rgb.shape[0], ox:ox + rgb.shape[1]] = rgb
    return out


def to_pixmap(rgb: np.ndarray) -> QtGui.QPixmap:
    h, w, _ = rgb.shape
    img = QtGui.QImage(np.ascontiguousarray(rgb).tobytes(), w, h, 3 * w,
                       QtGui.QImage.Format.Format_RGB888)
    return QtGui.QPixmap.fromImage(img.copy())


class Tile(QtWidgets.QFrame):
    judged = QtCore.Signal(object, object)  # (tile, judgment 1 / 0 / None)
    selected = QtCore.Signal(object)

    def __init__(self, image: rr.RankedImage, below: bool, parent=None):
        super().__init__(parent)
        self.image = image
        self.below = below
        self.judgment: int | None = None
        self.is_selected = False
        self.picture = QtWidgets.QLabel()
        self.picture.setFixedSize(TILE, TILE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background: #000; color: #6b747e;")
        self.picture.setText("loading…")
        where = "below the cut" if below else "above the cut"
        self.caption = QtWidgets.QLabel(
            f"<b>#{image.rank + 1}</b> · p {image.score:.4f} · "
            f"<span style='color:{COLORS['muted']}'>{where}</span><br>"
            f"{image.exam} · slice {image.slice_idx + 1}")
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.true_button = QtWidgets.QToolButton()
        self.true_button.setText("✓ Blood")
        self.false_button = QtWidgets.QToolButton()
        self.false_button.setText("✗ No blood")
        for b in (self.true_button, self.false_button):
            b.setCheckable(True)
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                            QtWidgets.QSizePolicy.Policy.Fixed)
        self.true_button.setToolTip("True positive: this image shows hemorrhage  [T]")
        self.false_button.setToolTip("False positive: no hemorrhage in this image  [F]")
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.true_button)
        row.addWidget(self.false_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        lay.addWidget(self.picture)
        lay.addWidget(self.caption)
        lay.addLayout(row)
        self.true_button.clicked.connect(lambda on: self._clicked(1, on))
        self.false_button.clicked.connect(lambda on: self._clicked(0, on))
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setFixedWidth(TILE + 12)
        self.caption.setWordWrap(True)
        self._restyle()

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self.selected.emit(self)
        super().mousePressEvent(ev)

    def _clicked(self, value: int, on: bool) -> None:
        self.judged.emit(self, value if on else None)

    def set_judgment(self, value: int | None) -> None:
        self.judgment = value
        self.true_button.setChecked(value == 1)
        self.false_button.setChecked(value == 0)
        self._restyle()

    def set_selected(self, on: bool) -> None:
        self.is_selected = on
        self._restyle()

    def set_image(self, rgb: np.ndarray) -> None:
        self.picture.setPixmap(to_pixmap(rgb))

    def _restyle(self) -> None:
        color = {1: TP_COLOR, 0: FP_COLOR}.get(self.judgment, "#2f353c")
        width = 3 if self.judgment is not None else 1
        bg = "#232a31" if self.is_selected else ("#1a1d21" if self.below else "#1f2327")
        style = "dashed" if self.below and self.judgment is None else "solid"
        sel = "outline: none;"
        self.setStyleSheet(f"Tile {{ background: {bg}; border: {width}px {style} {color};"
                           f" border-radius: 5px; {sel} }}")
        if self.is_selected and self.judgment is None:
            self.setStyleSheet(f"Tile {{ background: {bg}; border: 2px solid #3d8fd6;"
                               " border-radius: 5px; }")


class RankerPanel(QtWidgets.QWidget):
    choice_saved = QtCore.Signal(object)  # RankerChoice

    def __init__(self, ws_root: Path, rater: str = "", *, headless: bool = False, parent=None):
        super().__init__(parent)
        self.ws_root = Path(ws_root)
        self.rater = rater
        self.headless = headless
        self.ws = Workspace.open(self.ws_root)
        self.run = ""
        self.ranked: rr.RankedImages | None = None
        self.judgments: dict[tuple[str, int], int] = {}
        self.tiles: list[Tile] = []
        self.selected: Tile | None = None
        self.worker: Worker | None = None
        self._build()
        self.load_runs()

    # ---- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.run_combo = QtWidgets.QComboBox()
        self.run_info = pc.muted()
        self.rank_plot = pc.plot_widget("image rank (highest teacher probability first)",
                                        "image probability", "")
        self.rank_plot.setMinimumHeight(200)
        self.rank_curve = self.rank_plot.plot([], [], pen=pg.mkPen("#5aa9e6", width=2))
        self.cut_lines: list[pg.InfiniteLine] = []
        self.table = pc.table(["C", "Positive", "Cut p", "Marked", "Blood",
                               "Precision (95% CI)", "Below cut"], stretch=5)
        self.table.horizontalHeaderItem(6).setToolTip(
            "Marked images below the cut: blood / marked (hemorrhage this C would drop)")
        self.table.horizontalHeaderItem(3).setToolTip("Your marks on images ranked positive at C")
        self.table.setMinimumHeight(200)
        self.c_spin, self.khi_spin, self.klo_spin = pc.ranker_spins(c_step=1.0)
        self.save_button = QtWidgets.QPushButton("Use for the next student run")
        self.choice_label = pc.muted()
        choice = QtWidgets.QGroupBox("CHOICE")
        g = QtWidgets.QGridLayout(choice)
        g.addWidget(QtWidgets.QLabel("C (top % positive)"), 0, 0)
        g.addWidget(self.c_spin, 0, 1)
        g.addWidget(QtWidgets.QLabel("K hi (pixel = blood above)"), 1, 0)
        g.addWidget(self.khi_spin, 1, 1)
        g.addWidget(QtWidgets.QLabel("K lo (pixel = background below)"), 2, 0)
        g.addWidget(self.klo_spin, 2, 1)
        g.addWidget(self.save_button, 3, 0, 1, 2)
        g.addWidget(self.choice_label, 4, 0, 1, 2)
        self.error = pc.error_banner()

        left = QtWidgets.QFrame()
        left.setObjectName("sidePanel")
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(10, 4, 6, 10)
        ll.addWidget(pc.title("Pseudo-label run"))
        ll.addWidget(self.run_combo)
        ll.addWidget(self.run_info)
        ll.addWidget(pc.title("Ranking"))
        ll.addWidget(self.rank_plot, 2)
        ll.addWidget(pc.title("Precision of the positives per C (from your marks)"))
        ll.addWidget(self.table, 2)
        ll.addWidget(choice)
        ll.addWidget(self.error)
        left.setMinimumWidth(540)

        # right: the cut and its images
        self.c_buttons = QtWidgets.QButtonGroup(self)
        self.c_buttons.setExclusive(True)
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(10, 6, 10, 4)
        bar.addWidget(QtWidgets.QLabel("Cut at C ="))
        for c in rr.C_CHOICES:
            b = QtWidgets.QToolButton()
            b.setText(f"{c:g}%")
            b.setCheckable(True)
            b.setProperty("c", c)
            self.c_buttons.addButton(b)
            bar.addWidget(b)
        bar.addSpacing(12)
        self.n_above = QtWidgets.QSpinBox(minimum=1, maximum=60, value=12)
        self.show_below = QtWidgets.QCheckBox("also below the cut")
        self.n_below = QtWidgets.QSpinBox(minimum=1, maximum=60, value=4)
        bar.addWidget(QtWidgets.QLabel("Images above the cut"))
        bar.addWidget(self.n_above)
        bar.addWidget(self.show_below)
        bar.addWidget(self.n_below)
        bar.addStretch(1)
        self.cut_info = QtWidgets.QLabel("")
        self.cut_info.setTextFormat(Qt.TextFormat.RichText)
        self.cut_info.setWordWrap(True)
        self.cut_info.setContentsMargins(10, 0, 10, 4)
        legend = QtWidgets.QHBoxLayout()
        legend.setContentsMargins(10, 0, 10, 4)
        legend.addWidget(pc.legend_swatch(ov.PSEUDO_POSITIVE_RGB, "pseudo-label: blood (p > K hi)"))
        legend.addWidget(pc.legend_swatch(ov.PSEUDO_IGNORED_RGB,
                                          "ignored in training (K lo ≤ p ≤ K hi)", hatched=True))
        legend.addStretch(1)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumHeight(6)
        self.progress.setTextVisible(False)
        self.progress.hide()

        self.grid_host = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.grid_host)
        self.grid.setContentsMargins(10, 6, 10, 10)
        self.grid.setSpacing(10)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.grid_host)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.viewport().installEventFilter(self)  # re-flow the tiles on resize
        self._columns = 4

        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(2)
        rl.addLayout(bar)
        rl.addWidget(self.cut_info)
        rl.addLayout(legend)
        rl.addWidget(self.progress)
        rl.addWidget(self.scroll, 1)

        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([560, 1040])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.run_combo.currentIndexChanged.connect(lambda _i: self.set_run(
            self.run_combo.currentText()))
        self.c_buttons.buttonClicked.connect(lambda b: self.set_c(float(b.property("c"))))
        self.c_spin.editingFinished.connect(lambda: self.set_c(self.c_spin.value()))
        self.khi_spin.editingFinished.connect(self.reload_tiles)
        self.klo_spin.editingFinished.connect(self.reload_tiles)
        self.n_above.editingFinished.connect(self.reload_tiles)
        self.n_below.editingFinished.connect(self.reload_tiles)
        self.show_below.toggled.connect(lambda _on: self.reload_tiles())
        self.save_button.clicked.connect(self.save_choice)
        self.table.itemSelectionChanged.connect(self._table_row)
        self._keys = pc.add_shortcuts(self, (
            ("T", lambda: self.mark_selected(1)), ("F", lambda: self.mark_selected(0)),
            ("Delete", lambda: self.mark_selected(None)),
            ("Right", lambda: self.move_selection(1)), ("Left", lambda: self.move_selection(-1))))

    # ---- data -----------------------------------------------------------------------------------

    def load_runs(self, prefer: str = "") -> None:
        runs = [r["name"] for r in self.ws.runs() if r["kind"] == "pseudolabel"
                and self.ws.predicted_exams(r["name"])]
        pick = pc.fill_run_combo(self.run_combo, runs, prefer)
        if not pick:
            self.run_info.setText("No pseudo-label run yet: Training ▸ Training runs, "
                                  "command Pseudo-label.")
            return
        self.set_run(pick)

    def set_run(self, run: str) -> None:
        if not run or run == self.run:
            return
        try:
            ranked = rr.load_ranked(self.ws, run)
        except IctviewError as e:
            self.show_error(str(e))
            return
        self.run, self.ranked = run, ranked
        info = self.ws.run(run) or {}
        n_exams = len(set(ranked.exams))
        self.run_info.setText(f"{ranked.n} images from {n_exams} exams, teacher "
                              f"<b>{info.get('parent') or '?'}</b>")
        self.rank_curve.setData(np.arange(1, ranked.n + 1), ranked.scores)
        self.rank_plot.getPlotItem().setXRange(0, max(ranked.n * 0.45, 10), padding=0.02)
        self.rank_plot.getPlotItem().setYRange(0, 1, padding=0.02)
        choice = rr.load_choice(self.ws, run)
        if choice is not None:
            self.khi_spin.setValue(choice.k_hi)
            self.klo_spin.setValue(choice.k_lo)
        self._show_choice(choice)
        self._load_judgments()
        self.set_c(choice.c_percent if choice else rr.DEFAULT_C)

    def _load_judgments(self) -> None:
        marks = rr.load_judgments(self.ws, self.run, self.rater or None)
        self.judgments = {(j.exam, j.slice_idx): j.judgment for j in marks}
        self._marks = marks

    @property
    def c(self) -> float:
        return self.c_spin.value()

    def set_c(self, c: float) -> None:
        self.c_spin.setValue(c)
        for b in self.c_buttons.buttons():
            b.setChecked(abs(float(b.property("c")) - c) < 1e-9)
        self._draw_cuts()
        self._update_table()
        self.reload_tiles()

    def _draw_cuts(self) -> None:
        for line in self.cut_lines:
            self.rank_plot.removeItem(line)
        self.cut_lines = []
        if self.ranked is None:
            return
        cs = sorted(set(rr.C_CHOICES) | {self.c})
        for i, c in enumerate(cs):
            k = self.ranked.n_positive(c)
            current = abs(c - self.c) < 1e-9
            pen = pg.mkPen("#e0b25a" if current else "#4a535d", width=2 if current else 1,
                           style=Qt.PenStyle.SolidLine if current else Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(pos=k + 0.5, angle=90, pen=pen,
                                   label=f"{c:g}%", labelOpts={
                                       "position": 0.95 if current else (0.12 if i % 2 else 0.22),
                                       "color": "#e0b25a" if current else COLORS["muted"]})
            self.rank_plot.addItem(line)
            self.cut_lines.append(line)

    def _update_table(self) -> None:
        if self.ranked is None:
            return
        cs = tuple(sorted(set(rr.C_CHOICES) | {self.c}))
        marks = list(self._marks)
        rows = rr.cut_table(self.ranked, marks, cs)
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(rows))
        for i, s in enumerate(rows):
            current = abs(s.c_percent - self.c) < 1e-9
            color = "#e0b25a" if current else None
            t.setItem(i, 0, pc.cell(f"{s.c_percent:g}%", sort=s.c_percent, color=color))
            t.setItem(i, 1, pc.cell(str(s.n_positive), sort=s.n_positive, align_right=True))
            t.setItem(i, 2, pc.cell(pc.fmt(s.cut_score, 4), sort=s.cut_score, align_right=True))
            t.setItem(i, 3, pc.cell(str(s.judged), sort=s.judged, align_right=True))
            t.setItem(i, 4, pc.cell(str(s.true_positive), sort=s.true_positive, align_right=True))
            t.setItem(i, 5, pc.cell(s.precision_text, sort=s.precision))
            below = f"{s.true_below} of {s.judged_below}" if s.judged_below else "–"
            t.setItem(i, 6, pc.cell(below, sort=s.judged_below, align_right=True))
            if current:
                t.selectRow(i)
        t.blockSignals(False)
        self.summaries = rows

    def _table_row(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            c = float(self.table.item(rows[0].row(), 0).data(pc.SORT_ROLE))
            if abs(c - self.c) > 1e-9:
                self.set_c(c)

    # ---- tiles ----------------------------------------------------------------------------------

    def reload_tiles(self) -> None:
        if self.ranked is None:
            return
        if self.klo_spin.value() > self.khi_spin.value():
            self.show_error("K lo must not be above K hi.")
            return
        self.error.hide()
        self._stop_worker()
        for tile in self.tiles:
            tile.setParent(None)
            tile.deleteLater()
        self.tiles, self.selected = [], None
        below = self.n_below.value() if self.show_below.isChecked() else 0
        images = self.ranked.near_cut(self.c, self.n_above.value(), below)
        k = self.ranked.n_positive(self.c)
        for i, im in enumerate(images):
            tile = Tile(im, below=im.rank >= k)
            tile.set_judgment(self.judgments.get((im.exam, im.slice_idx)))
            tile.judged.connect(self._tile_judged)
            tile.selected.connect(self.select_tile)
            self.tiles.append(tile)
        self._relayout(force=True)
        s = next((x for x in getattr(self, "summaries", []) if abs(x.c_percent - self.c) < 1e-9),
                 None)
        above = sum(1 for t in self.tiles if not t.below)
        text = (f"At C = <b>{self.c:g}%</b> the ranker keeps the top <b>{k}</b> of "
                f"{self.ranked.n} images (p ≥ {self.ranked.cut_score(self.c):.4f}) positive. "
                f"Shown: the {above} lowest-ranked positives")
        if below:
            text += f" and the {sum(1 for t in self.tiles if t.below)} images just below the cut"
        text += ". Mark each: is there hemorrhage?"
        if s is not None and s.judged:
            text += f" Precision so far: <b>{s.precision_text}</b> ({s.judged} marked)."
        self.cut_info.setText(text)
        if self.tiles:
            self.select_tile(self.tiles[0])
        self._start_worker(images)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.scroll.viewport() and ev.type() == QtCore.QEvent.Type.Resize:
            self._relayout()
        return False

    def _relayout(self, force: bool = False) -> None:
        gap = self.grid.horizontalSpacing()
        margins = self.grid.contentsMargins()
        avail = self.scroll.viewport().width() - margins.left() - margins.right()
        cols = max(1, (avail + gap) // (TILE + 12 + gap))
        if cols == self._columns and not force:
            return
        self._columns = cols
        for tile in self.tiles:
            self.grid.removeWidget(tile)
        for i, tile in enumerate(self.tiles):
            self.grid.addWidget(tile, i // cols, i % cols)

    def _start_worker(self, images: list[rr.RankedImage]) -> None:
        if not images:
            return
        self.progress.setRange(0, len(images))
        self.progress.setValue(0)
        self.progress.show()
        k_hi, k_lo = self.khi_spin.value(), self.klo_spin.value()
        self._token = getattr(self, "_token", 0) + 1
        self.worker = Worker(render_tiles, self.ws_root, self.run, images, k_hi, k_lo,
                             self._token, name="ranker-tiles")
        self.worker.progressed.connect(self._tile_ready)
        self.worker.done.connect(lambda _r: self.progress.hide())
        self.worker.failed.connect(self.show_error)
        self.worker.start()

    def _tile_ready(self, item) -> None:
        token, i, rgb = item
        if token != self._token:
            return  # a tile of a grid that has been replaced
        if i < len(self.tiles):
            self.tiles[i].set_image(rgb)
        self.progress.setValue(self.progress.value() + 1)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait()
            self.worker = None

    def wait(self) -> None:
        """Until every tile image is rendered (screenshots, tests)."""
        if self.worker is not None:
            self.worker.wait()
            QtCore.QCoreApplication.sendPostedEvents()
            QtWidgets.QApplication.processEvents()

    def select_tile(self, tile: Tile) -> None:
        if self.selected is not None and self.selected in self.tiles:
            self.selected.set_selected(False)
        self.selected = tile
        tile.set_selected(True)
        tile.setFocus()  # T / F / Delete act on the selected tile
        self.scroll.ensureWidgetVisible(tile)

    def move_selection(self, delta: int) -> None:
        if not self.tiles:
            return
        i = self.tiles.index(self.selected) if self.selected in self.tiles else -1
        self.select_tile(self.tiles[int(np.clip(i + delta, 0, len(self.tiles) - 1))])

    def mark_selected(self, value: int | None) -> None:
        if self.selected is None:
            return
        tile = self.selected
        self.judge(tile, value)
        if value is not None:
            self.move_selection(1)

    def _tile_judged(self, tile: Tile, value) -> None:
        self.select_tile(tile)
        self.judge(tile, value)

    def judge(self, tile: Tile, value: int | None) -> bool:
        """Store the rater's mark on a tile's image (None clears it)."""
        if not self.rater:
            self.show_error("Set your rater name first (it is recorded with every mark).")
            tile.set_judgment(self.judgments.get((tile.image.exam, tile.image.slice_idx)))
            return False
        try:
            rr.record_judgment(self.ws, self.run, tile.image.exam, tile.image.slice_idx,
                               self.rater, value, self.c)
        except IctviewError as e:
            self.show_error(str(e))
            return False
        key = (tile.image.exam, tile.image.slice_idx)
        if value is None:
            self.judgments.pop(key, None)
        else:
            self.judgments[key] = value
        tile.set_judgment(value)
        self._load_judgments()
        self._update_table()
        return True

    # ---- choice -----------------------------------------------------------------------------------

    def save_choice(self) -> rr.RankerChoice | None:
        if not self.run:
            return None
        try:
            choice = rr.save_choice(self.ws, self.run, self.c, self.khi_spin.value(),
                                    self.klo_spin.value(), self.rater)
        except IctviewError as e:
            self.show_error(str(e))
            return None
        self.error.hide()
        self._show_choice(choice)
        self.choice_saved.emit(choice)
        return choice

    def _show_choice(self, choice: rr.RankerChoice | None) -> None:
        if choice is None:
            self.choice_label.setText("No C chosen for this run yet; the student would use "
                                      "the config's (paper: C 10%, K 0.7 / 0.3).")
            self.choice_label.setStyleSheet("")
        else:
            self.choice_label.setText(
                f"Saved: C {choice.c_percent:g}%, K hi {choice.k_hi:g}, K lo {choice.k_lo:g} "
                f"— by {choice.chosen_by}, {choice.chosen_at[:16].replace('T', ' ')} UTC. "
                "The next student run on these pseudo-labels uses it.")
            self.choice_label.setStyleSheet("color: #7fc18a;")

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def shutdown(self) -> None:
        self._stop_worker()
        self.ws.close()


def render_tiles(ws_root: Path, run: str, images: list[rr.RankedImage], k_hi: float,
                 k_lo: float, token: int = 0):
    """Worker: one (index, RGB tile) per image, reading each exam once (grouped by exam, one
    exam in memory at a time) on its own connection (SQLite objects stay on their thread)."""
    order = sorted(range(len(images)), key=lambda i: (images[i].exam, i))
    with Workspace.open(ws_root) as ws:
        current, hu, prob, y_scale = None, None, None, 1.0
        for i in order:
            im = images[i]
            if im.exam != current:
                hu = ws.read_volume(im.exam).hu
                prob = ws.read_prediction(run, im.exam, pixels=True).prob
                _sz, sy, sx = ws.exam(im.exam).spacing
                y_scale, current = (sy / sx if sx > 0 else 1.0), im.exam
            yield token, i, thumbnail(hu[im.slice_idx], prob[im.slice_idx], k_hi, k_lo,
                                      y_scale=y_scale)
    return len(images)
