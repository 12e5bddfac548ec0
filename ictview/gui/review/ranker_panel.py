"""Threshold inspection (the ranker): the radiologist looks at pseudo-labeled images at a
candidate cut C and says which are really hemorrhage.

Left: the pseudolabel run, its images ranked by teacher probability (plot with the
candidate cuts), the precision per C estimated from the marks (Wilson 95% CI), and the
choice of C / K_hi / K_lo saved with the run for the next student. Right: a grid of the
images just above the cut at the previewed C and just below it (what that C would drop),
each with its pseudo-label overlay: pixels p > K_hi green, the ignored band K_lo..K_hi
amber-hatched, and, like the viewer, its window / level and the patient direction at each
edge. The tiles grow with the window (re-rendered at their new size, within bounds).
Each tile is marked true or false positive (buttons, or T / F / Delete on the selected tile,
which then moves to the next one). Marks are stored with the rater and time.

Previewing a C (its button, the table, the spin box) changes nothing stored; the C the next
student run uses changes only through "Use C = … for the next student run", confirmed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: I001  (before pyqtgraph)

import pyqtgraph as pg
from scipy import ndimage

from ictview.core import overlay as ov
from ictview.core.mpr import AXIAL, planes_for
from ictview.core.window import WINDOW_PRESETS, apply_window
from ictview.errors import IctviewError
from ictview.gui import panel_widgets as pc
from ictview.gui.app import COLORS
from ictview.gui.review.review_view import window_combo
from ictview.gui.workers import Worker
from ictview.store.workspace import Workspace
from ictview.study import ranker_review as rr

Qt = QtCore.Qt
# tile image side in pixels: about TARGET_TILE, as many columns as fill the width, never
# smaller than MIN_TILE nor larger than MAX_TILE (a 1920 window: 5 columns of ~260)
MIN_TILE, TARGET_TILE, MAX_TILE = 170, 250, 440
TILE = TARGET_TILE
TILE_PAD = 12  # the tile frame around its image (margins)
RERENDER_MS = 200  # after the last resize, tiles are re-rendered at their new size
TP_COLOR, FP_COLOR = "#4cc38a", "#e5534b"
CHOSEN_COLOR = "#7fc18a"
MARKER_COLOR = "#e0b25a"  # the viewer's edge-letter colour


def tile_layout(avail: int, gap: int) -> tuple[int, int]:
    """(columns, tile image side) filling `avail` pixels of width with `gap` between tiles."""
    avail = max(int(avail), 1)

    def side(cols: int) -> int:
        return (avail - (cols - 1) * gap) // cols - TILE_PAD

    cols = max(1, round((avail + gap) / (TARGET_TILE + TILE_PAD + gap)))
    while cols > 1 and side(cols) < MIN_TILE:
        cols -= 1
    while side(cols) > MAX_TILE:
        cols += 1
    return cols, int(min(max(side(cols), MIN_TILE), MAX_TILE))


def thumbnail(hu2d: np.ndarray, prob2d: np.ndarray, k_hi: float, k_lo: float, size: int = TILE,
              y_scale: float = 1.0, window: tuple[float, float] = WINDOW_PRESETS["brain"]
              ) -> np.ndarray:
    """RGB tile: the head cropped, in `window` (centre, width), pseudo-label overlay drawn at
    tile resolution (codes resampled nearest, so edges and hatching stay crisp)."""
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
    gray = (apply_window(hu2d[r0:r1, c0:c1], *window) * 255.0)
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


def window_text(name: str, window: tuple[float, float]) -> str:
    """The viewer's corner text for a window: 'W 80  L 40 (Brain)'."""
    c, w = window
    return f"W {w:.0f}  L {c:.0f} ({name.capitalize()})"


def annotate(rgb: np.ndarray, letters: dict[str, str], wl: str) -> QtGui.QPixmap:
    """The tile image with the patient direction at each edge and the window / level in
    the corner, as the viewer shows them."""
    pix = to_pixmap(rgb)
    p = QtGui.QPainter(pix)
    p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
    size = pix.width()
    font = p.font()
    font.setPixelSize(max(11, size // 18))
    font.setBold(True)
    p.setFont(font)
    p.setPen(QtGui.QColor(MARKER_COLOR))
    fm = QtGui.QFontMetrics(font)
    h = fm.height()
    for key, flags, rect in (
            ("left", Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
             QtCore.QRect(4, 0, size, size)),
            ("right", Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
             QtCore.QRect(0, 0, size - 4, size)),
            ("top", Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
             QtCore.QRect(0, 2, size, size)),
            ("bottom", Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
             QtCore.QRect(0, 0, size, size - 2))):
        if letters.get(key):
            p.drawText(rect, int(flags), letters[key])
    font.setBold(False)
    font.setPixelSize(max(10, size // 24))
    p.setFont(font)
    p.setPen(QtGui.QColor("#c9d1d9"))
    p.drawText(QtCore.QRect(5, size - h - 2, size, h),
               int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), wl)
    p.end()
    return pix


class Tile(QtWidgets.QFrame):
    judged = QtCore.Signal(object, object)  # (tile, judgment 1 / 0 / None)
    selected = QtCore.Signal(object)

    def __init__(self, image: rr.RankedImage, below: bool, size: int = TILE, parent=None):
        super().__init__(parent)
        self.image = image
        self.below = below
        self.judgment: int | None = None
        self.is_selected = False
        self.letters: dict[str, str] = {}  # edge -> patient direction, once rendered
        self.wl = ""  # the window / level text drawn on the image
        self.rendered_size = 0  # the side the shown image was rendered at
        self.picture = QtWidgets.QLabel()
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
        self.caption.setWordWrap(True)
        self.set_size(size)
        self._restyle()

    def set_size(self, size: int) -> None:
        """The image side; an image rendered at another size is scaled until re-rendered."""
        self.size = int(size)
        self.picture.setFixedSize(self.size, self.size)
        self.setFixedWidth(self.size + TILE_PAD)
        pix = self.picture.pixmap()
        if pix is not None and not pix.isNull() and pix.width() != self.size:
            self.picture.setPixmap(pix.scaled(
                self.size, self.size, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))

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

    def set_image(self, rgb: np.ndarray, letters: dict[str, str] | None = None,
                  wl: str = "") -> None:
        self.letters, self.wl = dict(letters or {}), wl
        self.rendered_size = int(rgb.shape[0])
        pix = annotate(rgb, self.letters, wl)
        if pix.width() != self.size:  # resized while it rendered: a new render is queued
            pix = pix.scaled(self.size, self.size, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
        self.picture.setPixmap(pix)

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
        self.choice: rr.RankerChoice | None = None  # what the next student run uses
        self._images: list[rr.RankedImage] = []
        self._tile_size = TILE
        self._token = 0
        self._wl = ""
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
        self.c_spin.setToolTip("The C previewed in the grid (top % of images positive); "
                               "previewing stores nothing")
        # choosing is its own act: this button (with a confirmation), never a preview click
        self.save_button = QtWidgets.QPushButton("Use C = … for the next student run…")
        self.save_button.setObjectName("primaryButton")
        self.choice_label = pc.muted()
        self.choice_label.setTextFormat(Qt.TextFormat.RichText)
        choice = QtWidgets.QGroupBox("CHOICE FOR THE NEXT STUDENT RUN")
        g = QtWidgets.QGridLayout(choice)
        g.addWidget(self.choice_label, 0, 0, 1, 2)
        g.addWidget(QtWidgets.QLabel("C previewed (top % positive)"), 1, 0)
        g.addWidget(self.c_spin, 1, 1)
        g.addWidget(QtWidgets.QLabel("K hi (pixel = blood above)"), 2, 0)
        g.addWidget(self.khi_spin, 2, 1)
        g.addWidget(QtWidgets.QLabel("K lo (pixel = background below)"), 3, 0)
        g.addWidget(self.klo_spin, 3, 1)
        g.addWidget(self.save_button, 4, 0, 1, 2)
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
        left.setMinimumWidth(580)  # the table: its seven columns with the chosen C marked

        # right: the cut and its images
        self.c_buttons = QtWidgets.QButtonGroup(self)
        self.c_buttons.setExclusive(True)
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(10, 6, 10, 4)
        bar.addWidget(QtWidgets.QLabel("Preview C ="))
        for c in rr.C_CHOICES:
            b = QtWidgets.QToolButton()
            b.setText(f"{c:g}%")
            b.setCheckable(True)
            b.setProperty("c", c)
            b.setToolTip(f"Show the images at the cut of C = {c:g}% (stores nothing)")
            self.c_buttons.addButton(b)
            bar.addWidget(b)
        bar.addSpacing(12)
        self.n_above = QtWidgets.QSpinBox(minimum=1, maximum=60, value=12)
        # on by default: what a C drops matters as much as what it keeps
        self.show_below = QtWidgets.QCheckBox("also below the cut")
        self.show_below.setChecked(True)
        self.n_below = QtWidgets.QSpinBox(minimum=1, maximum=60, value=4)
        self.window_box = window_combo()
        self.window_box.setToolTip("Window of the tiles (each tile says its W / L)")
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
        legend.addWidget(QtWidgets.QLabel("Tiles in"))
        legend.addWidget(self.window_box)
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
        # always there: a scroll bar appearing would narrow the grid and re-flow it again
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll.viewport().installEventFilter(self)  # re-flow the tiles on resize
        self._columns = 4
        self._rerender = QtCore.QTimer(self, singleShot=True, interval=RERENDER_MS)
        self._rerender.timeout.connect(self._render_current)

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
        split.setSizes([590, 1010])
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
        self.window_box.currentIndexChanged.connect(lambda _i: self._render_current())
        self.khi_spin.valueChanged.connect(lambda _v: self._update_choice_button())
        self.klo_spin.valueChanged.connect(lambda _v: self._update_choice_button())
        self.save_button.clicked.connect(self.choose)
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
        self.choice = choice
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
        """Preview the cut at C (the grid, the table, the plot); nothing is stored."""
        self.c_spin.setValue(c)
        for b in self.c_buttons.buttons():
            b.setChecked(abs(float(b.property("c")) - c) < 1e-9)
        self._update_choice_button()
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
            chosen = self.choice is not None and abs(s.c_percent - self.choice.c_percent) < 1e-9
            t.setItem(i, 0, pc.cell(f"{s.c_percent:g}%" + (" ✓" if chosen else ""),
                                    sort=s.c_percent, color=color,
                                    tip="the C the next student run uses" if chosen else ""))
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
        self._images = images
        for i, im in enumerate(images):
            tile = Tile(im, below=im.rank >= k, size=self._tile_size)
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
        self._render_current()

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.scroll.viewport() and ev.type() == QtCore.QEvent.Type.Resize:
            self._relayout()
        return False

    def _relayout(self, force: bool = False) -> None:
        """Columns and tile size filling the grid's width; tiles whose image was rendered at
        another size are re-rendered once the resizing stops."""
        gap = self.grid.horizontalSpacing()
        margins = self.grid.contentsMargins()
        avail = self.scroll.viewport().width() - margins.left() - margins.right()
        cols, size = tile_layout(avail, gap)
        if (cols, size) == (self._columns, self._tile_size) and not force:
            return
        self._columns = cols
        if size != self._tile_size:
            self._tile_size = size
            for tile in self.tiles:
                tile.set_size(size)
            if self.tiles:
                self._rerender.start()
        for tile in self.tiles:
            self.grid.removeWidget(tile)
        for i, tile in enumerate(self.tiles):
            self.grid.addWidget(tile, i // cols, i % cols)

    @property
    def tile_size(self) -> int:
        return self._tile_size

    def tile_window(self) -> tuple[str, tuple[float, float]]:
        name = self.window_box.currentData() or "brain"
        return name, tuple(WINDOW_PRESETS[name])

    def _render_current(self) -> None:
        """(Re-)render the grid's images at the tile size and window shown now."""
        self._rerender.stop()
        self._stop_worker()
        self._start_worker(self._images)

    def _start_worker(self, images: list[rr.RankedImage]) -> None:
        if not images:
            return
        self.progress.setRange(0, len(images))
        self.progress.setValue(0)
        self.progress.show()
        k_hi, k_lo = self.khi_spin.value(), self.klo_spin.value()
        self._token += 1
        name, window = self.tile_window()
        self._wl = window_text(name, window)
        self.worker = Worker(render_tiles, self.ws_root, self.run, images, k_hi, k_lo,
                             self._token, self._tile_size, window, name="ranker-tiles")
        self.worker.progressed.connect(self._tile_ready)
        self.worker.done.connect(lambda _r: self.progress.hide())
        self.worker.failed.connect(self.show_error)
        self.worker.start()

    def _tile_ready(self, item) -> None:
        token, i, rgb, letters = item
        if token != self._token:
            return  # a tile of a grid that has been replaced
        if i < len(self.tiles):
            self.tiles[i].set_image(rgb, letters, self._wl)
        self.progress.setValue(self.progress.value() + 1)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait()
            self.worker = None

    def wait(self) -> None:
        """Until every tile image is rendered at the current size (screenshots, tests)."""
        QtWidgets.QApplication.processEvents()  # pending resizes re-flow the grid first
        if self._rerender.isActive():
            self._render_current()
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

    def _update_choice_button(self) -> None:
        c, k_hi, k_lo = self.c, self.khi_spin.value(), self.klo_spin.value()
        self.save_button.setText(f"Use C = {c:g}%, K {k_hi:g} / {k_lo:g} for the next "
                                 "student run…")
        ch = self.choice
        same = ch is not None and (abs(ch.c_percent - c) < 1e-9 and abs(ch.k_hi - k_hi) < 1e-9
                                   and abs(ch.k_lo - k_lo) < 1e-9)
        self.save_button.setEnabled(bool(self.run) and not same)
        if same:
            self.save_button.setText(f"C = {c:g}%, K {k_hi:g} / {k_lo:g} is the current choice")
        self.save_button.setToolTip("This is the choice already saved" if same else
                                    "Asks first; the choice is stored with your name")
        for b in self.c_buttons.buttons():
            on = ch is not None and abs(float(b.property("c")) - ch.c_percent) < 1e-9
            b.setText(f"{float(b.property('c')):g}%" + (" ✓" if on else ""))
            b.setStyleSheet(f"color: {CHOSEN_COLOR}; font-weight: 600;" if on else "")

    def choose(self) -> rr.RankerChoice | None:
        """The reader's explicit choice: confirm, then save the previewed C / K hi / K lo
        for the next student run on these pseudo-labels."""
        if not self.run:
            return None
        c, k_hi, k_lo = self.c, self.khi_spin.value(), self.klo_spin.value()
        n = self.ranked.n_positive(c) if self.ranked is not None else 0
        text = (f"Use C = {c:g}% (the top {n} images positive), K hi {k_hi:g}, K lo {k_lo:g} "
                f"for the next student run on {self.run}?")
        was = self.choice
        detail = (f"This replaces the choice C {was.c_percent:g}%, K {was.k_hi:g} / "
                  f"{was.k_lo:g} made by {was.chosen_by}." if was is not None else
                  "No C is chosen yet: without one the student uses the config's.")
        if not self.confirm(text, detail):
            return None
        return self.save_choice()

    def confirm(self, text: str, detail: str) -> bool:
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("ictview — choose C")
        box.setText(text)
        box.setInformativeText(detail)
        yes = box.addButton("Use it", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(yes)
        box.exec()
        ok = box.clickedButton() is yes
        box.deleteLater()
        return ok

    def save_choice(self) -> rr.RankerChoice | None:
        """Store the previewed C / K hi / K lo as this run's choice (no question asked:
        `choose` is the button's way, with one)."""
        if not self.run:
            return None
        try:
            choice = rr.save_choice(self.ws, self.run, self.c, self.khi_spin.value(),
                                    self.klo_spin.value(), self.rater)
        except IctviewError as e:
            self.show_error(str(e))
            return None
        self.error.hide()
        self.choice = choice
        self._show_choice(choice)
        self._update_choice_button()
        self._update_table()
        self.choice_saved.emit(choice)
        return choice

    def _show_choice(self, choice: rr.RankerChoice | None) -> None:
        if choice is None:
            self.choice_label.setText("Chosen: <b>none yet</b> — the next student run uses "
                                      "the config's (paper: C 10%, K 0.7 / 0.3).")
            self.choice_label.setStyleSheet("")
        else:
            self.choice_label.setText(
                f"Chosen: <b>C {choice.c_percent:g}%</b>, K hi {choice.k_hi:g}, K lo "
                f"{choice.k_lo:g} — by {choice.chosen_by}, "
                f"{choice.chosen_at[:16].replace('T', ' ')} UTC. The next student run on "
                "these pseudo-labels uses it.")
            self.choice_label.setStyleSheet(f"color: {CHOSEN_COLOR};")

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def shutdown(self) -> None:
        self._stop_worker()
        self.ws.close()


def render_tiles(ws_root: Path, run: str, images: list[rr.RankedImage], k_hi: float,
                 k_lo: float, token: int = 0, size: int = TILE,
                 window: tuple[float, float] = WINDOW_PRESETS["brain"]):
    """Worker: one (token, index, RGB tile, edge letters) per image, reading each exam once
    (grouped by exam, one exam in memory at a time) on its own connection (SQLite objects
    stay on their thread). The letters are the axial plane's (core.mpr), as the viewer's."""
    order = sorted(range(len(images)), key=lambda i: (images[i].exam, i))
    with Workspace.open(ws_root) as ws:
        current, hu, prob, y_scale, letters = None, None, None, 1.0, {}
        for i in order:
            im = images[i]
            if im.exam != current:
                vol = ws.read_volume(im.exam)
                hu = vol.hu
                prob = ws.read_prediction(run, im.exam, pixels=True).prob
                spacing = ws.exam(im.exam).spacing
                _sz, sy, sx = spacing
                y_scale, current = (sy / sx if sx > 0 else 1.0), im.exam
                letters = planes_for(hu.shape, spacing, vol.geometry)[AXIAL].edge_letters()
            yield token, i, thumbnail(hu[im.slice_idx], prob[im.slice_idx], k_hi, k_lo,
                                      size=size, y_scale=y_scale, window=window), letters
    return len(images)
