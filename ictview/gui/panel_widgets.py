"""Small pieces the training / review panels share: titles, plot styling, run colours,
tables that sort numbers as numbers, a read-only table model over plain rows."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: I001  (before pyqtgraph)

import pyqtgraph as pg

from ictview.gui.app import COLORS
from ictview.study import ranker_review as rr

Qt = QtCore.Qt
# distinguishable on the dark background, none of them the overlay's red/green/yellow
RUN_COLORS = ("#5aa9e6", "#f28e2b", "#c27ae0", "#4fd1c5", "#e15759", "#edc948", "#b07aa1",
              "#9c755f")
STATUS_COLORS = {"running": "#5aa9e6", "stopping": "#d9b45a", "finished": "#7fc18a",
                 "interrupted": "#d9b45a", "failed": "#e07a6a", "history": "#8a939d",
                 "idle": "#8a939d", "created": "#8a939d"}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def title(text: str) -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel(text.upper())
    lab.setObjectName("panelTitle")
    return lab


def muted(text: str = "", wrap: bool = True) -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel(text)
    lab.setObjectName("examMeta")
    lab.setWordWrap(wrap)
    return lab


def error_banner() -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel()
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setStyleSheet("background: #3a1f1c; color: #f2b8ae; border: 1px solid #7a3a32;"
                      "border-radius: 4px; padding: 6px 8px;")
    lab.hide()
    return lab


def plot_widget(x_label: str, y_label: str, title_text: str = "") -> pg.PlotWidget:
    w = pg.PlotWidget(background=COLORS["base"])
    item = w.getPlotItem()
    if title_text:
        item.setTitle(title_text, color=COLORS["text"], size="10pt")
    for side, text in (("bottom", x_label), ("left", y_label)):
        ax = item.getAxis(side)
        ax.setPen(pg.mkPen("#4a535d"))
        ax.setTextPen(pg.mkPen(COLORS["muted"]))
        ax.setLabel(text, color=COLORS["muted"])
        ax.enableAutoSIPrefix(False)  # "loss", not "loss (x0.001)"
    item.showGrid(x=True, y=True, alpha=0.15)
    item.setMenuEnabled(False)
    w.setMinimumHeight(180)
    return w


def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


class SortItem(QtWidgets.QTableWidgetItem):
    """Table cell sorting by SORT_ROLE (numbers as numbers, NaN last)."""

    def __lt__(self, other: QtWidgets.QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None:
            return super().__lt__(other)
        return a < b


def cell(text: str, sort=None, align_right: bool = False, color: str | None = None,
         tip: str = "") -> SortItem:
    it = SortItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if isinstance(sort, float) and not math.isfinite(sort):
        sort = -1e9
    it.setData(SORT_ROLE, sort if sort is not None else text)
    if align_right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if color:
        it.setForeground(QtGui.QBrush(QtGui.QColor(color)))
    if tip:
        it.setToolTip(tip)
    return it


def table(columns: list[str], stretch: int = 0) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setAlternatingRowColors(True)
    t.setShowGrid(False)
    t.setWordWrap(False)
    t.verticalHeader().hide()
    t.verticalHeader().setDefaultSectionSize(24)
    hh = t.horizontalHeader()
    hh.setHighlightSections(False)
    hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
    hh.setSectionResizeMode(stretch, QtWidgets.QHeaderView.ResizeMode.Stretch)
    return t


def reference_text(ref: bool | None) -> tuple[str, str]:
    """Exam-level reference -> (text, colour)."""
    if ref is None:
        return "–", COLORS["muted"]
    return ("ICH", "#e07a6a") if ref else ("no ICH", "#8a939d")


def legend_swatch(rgb: tuple[int, int, int], text: str, hatched: bool = False) -> QtWidgets.QWidget:
    w = QtWidgets.QWidget()
    lay = QtWidgets.QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(6)
    sw = QtWidgets.QLabel()
    pm = QtGui.QPixmap(14, 14)
    pm.fill(QtGui.QColor(*rgb) if not hatched else QtGui.QColor(0, 0, 0))
    if hatched:
        p = QtGui.QPainter(pm)
        p.setPen(QtGui.QPen(QtGui.QColor(*rgb), 2))
        for i in range(-14, 14, 4):
            p.drawLine(i, 14, i + 14, 0)
        p.end()
    sw.setPixmap(pm)
    lay.addWidget(sw)
    lay.addWidget(QtWidgets.QLabel(text), 1)
    return w


# ---- shared behaviour of the panels ------------------------------------------------------------


def add_shortcuts(widget: QtWidgets.QWidget, keys) -> list[QtGui.QShortcut]:
    """Key sequence -> slot (a dict or (seq, fn) pairs), active while the focus is inside
    `widget` (several panels live in one window). Keep the list: Qt owns nothing else."""
    ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
    out = []
    for seq, fn in (keys.items() if isinstance(keys, dict) else keys):
        sc = QtGui.QShortcut(QtGui.QKeySequence(seq), widget)
        sc.setContext(ctx)
        sc.activated.connect(fn)
        out.append(sc)
    return out


def fill_run_combo(combo: QtWidgets.QComboBox, runs: list[str], prefer: str = "") -> str:
    """Fill `combo` with `runs` (no signals); select and return `prefer` if listed, else the
    latest run; "" when there is none."""
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(runs)
    combo.blockSignals(False)
    if not runs:
        return ""
    pick = prefer if prefer in runs else runs[-1]
    combo.setCurrentText(pick)
    return pick


def select_exam_row(table: QtWidgets.QTableWidget, exam: str) -> None:
    """Select the row whose first column is `exam`, without signalling a new selection."""
    for i in range(table.rowCount()):
        if table.item(i, 0).text() == exam:
            table.blockSignals(True)
            table.selectRow(i)
            table.blockSignals(False)
            return


def selected_exam(table: QtWidgets.QTableWidget) -> str | None:
    rows = table.selectionModel().selectedRows()
    return table.item(rows[0].row(), 0).text() if rows else None


def step_row(table: QtWidgets.QTableWidget, delta: int) -> None:
    """Select the row `delta` below (above) the selected one, clamped to the table."""
    n = table.rowCount()
    if not n:
        return
    rows = table.selectionModel().selectedRows()
    i = rows[0].row() if rows else -1
    table.selectRow(min(max(i + delta, 0), n - 1))


def ranker_spins(c_step: float) -> tuple[QtWidgets.QDoubleSpinBox, ...]:
    """The C (top % positive), K hi and K lo inputs of a ranker choice, at the defaults."""
    c = QtWidgets.QDoubleSpinBox(decimals=1, minimum=0.1, maximum=100.0, singleStep=c_step,
                                 suffix=" %")
    khi = QtWidgets.QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
    klo = QtWidgets.QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
    c.setValue(rr.DEFAULT_C)
    khi.setValue(rr.DEFAULT_K_HI)
    klo.setValue(rr.DEFAULT_K_LO)
    return c, khi, klo
