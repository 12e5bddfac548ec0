"""The exam list: a table model over the workspace catalog, a filter proxy and the
panel (site / role / status filters and a search box above the table)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from ictview.store.workspace import Workspace

Qt = QtCore.Qt
COLUMNS = ("Exam", "Site", "Role", "Slices", "Labels")
STATUS_LABELLED, STATUS_EMPTY, STATUS_NONE = "labeled", "empty", "not started"
STATUSES = (STATUS_LABELLED, STATUS_EMPTY, STATUS_NONE)
_STATUS_COLOR = {
    STATUS_LABELLED: QtGui.QColor("#7fc18a"),
    STATUS_EMPTY: QtGui.QColor("#b8c0c8"),
    STATUS_NONE: QtGui.QColor("#6b747e"),
}
_EFFORT_COLOR = QtGui.QColor("#c9a6ff")  # started from a model: Dice·minutes
ALL = "All"
# the Labels column says each state in words (a lone "–" beside "empty" read as the same
# thing); the header's tooltip says what each means
_SHORT = {STATUS_LABELLED: "labeled", STATUS_EMPTY: "empty", STATUS_NONE: "not started"}
LABELS_TIP = ("Labels of this exam in the shown labelset — labeled: hemorrhage marked; "
              "empty: saved with nothing marked (read as no hemorrhage); not started: no "
              "labels saved yet; 0.82·3m: started from a model (Dice of its proposal vs the "
              "labels now · minutes on task)")


def natural_key(name: str) -> tuple:
    """CQ500-CT-2 before CQ500-CT-10."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


@dataclass
class ExamRow:
    name: str
    site: str
    role: str
    slices: int
    status: str = STATUS_NONE
    voxels: int = 0
    saved_by: str = ""
    saved_at: str = ""
    effort: dict | None = None  # started from a model: the label_effort row (issue 16)

    @property
    def effort_text(self) -> str:
        """'0.82·3m': Dice of the proposal vs the labels now, minutes on task (shown in
        the Labels column of an exam started from a model: no column of its own, the
        exam names keep their width)."""
        e = self.effort
        if not e:
            return ""
        return f"{e['dice']:.2f}·{e['seconds'] / 60:.0f}m"


def label_status(ws: Workspace, labelset: str) -> dict[str, tuple[int, str, str]]:
    """exam -> (voxels labeled, saved_by, saved_at) for every exam with a file in labelset
    that this login may read (the read guard hides a blinded study's exams)."""
    return ws.label_status(labelset)


class ExamTableModel(QtCore.QAbstractTableModel):
    """One row per exam; the label status column follows the current labelset."""

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._rows: list[ExamRow] = []
        self._index: dict[str, int] = {}

    def load(self, ws: Workspace, labelset: str | None) -> None:
        status = label_status(ws, labelset) if labelset else {}
        effort = {r["exam"]: r for r in ws.effort(labelset)} if labelset else {}
        rows = []
        for e in ws.exams():
            row = ExamRow(e.name, e.site, e.role, e.n_slices, effort=effort.get(e.name))
            if e.name in status:
                row.voxels, row.saved_by, row.saved_at = status[e.name]
                row.status = STATUS_LABELLED if row.voxels > 0 else STATUS_EMPTY
            rows.append(row)
        self.beginResetModel()
        self._rows = rows
        self._index = {r.name: i for i, r in enumerate(rows)}
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._rows, self._index = [], {}
        self.endResetModel()

    def set_status(self, exam: str, voxels: int, saved_by: str = "") -> None:
        """Update one row after a save, without re-reading the catalog."""
        i = self._index.get(exam)
        if i is None:
            return
        row = self._rows[i]
        row.voxels = voxels
        row.status = STATUS_LABELLED if voxels > 0 else STATUS_EMPTY
        if saved_by:
            row.saved_by = saved_by
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def set_effort(self, exam: str, effort: dict | None) -> None:
        """Update one row's Effort after a save (the panel shows the column when needed)."""
        i = self._index.get(exam)
        if i is not None:
            self._rows[i].effort = effort
            self.dataChanged.emit(self.index(i, 4), self.index(i, 4))

    def sort_key(self, i: int, column: int) -> tuple:
        r = self._rows[i]
        name = natural_key(r.name)
        keys = ((name,), (r.site, name), (r.role, name), (r.slices, name),
                (STATUSES.index(r.status), r.effort["dice"] if r.effort else 2.0, name))
        return keys[column]

    def row(self, i: int) -> ExamRow:
        return self._rows[i]

    def row_of(self, exam: str) -> int | None:
        return self._index.get(exam)

    def rows(self) -> list[ExamRow]:
        return list(self._rows)

    # ---- Qt model API ---------------------------------------------------------------------

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole \
                and COLUMNS[section] == "Labels":
            return LABELS_TIP
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (r.name, r.site, r.role, r.slices, r.effort_text or _SHORT[r.status])[c]
        if role == Qt.ItemDataRole.ForegroundRole and c == 4 and r.effort:
            return QtGui.QBrush(_EFFORT_COLOR)
        if role == Qt.ItemDataRole.ForegroundRole and c == 4:
            return QtGui.QBrush(_STATUS_COLOR[r.status])
        if role == Qt.ItemDataRole.TextAlignmentRole and c == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and c == 4 and r.effort:
            e = r.effort
            moved = ", ".join(f"{k} +{e['added'][k]}/-{e['removed'].get(k, 0)}"
                              for k in e["added"] if e["added"][k] or e["removed"].get(k))
            return (f"Started from {e['run']}: Dice {e['dice']:.3f} of the proposal "
                    f"({e['proposal_voxels']} voxels) vs the labels now; {e['strokes']} steps, "
                    f"{e['seconds'] / 60:.1f} min on task; voxels {moved or 'unchanged'}")
        if role == Qt.ItemDataRole.ToolTipRole:
            if r.status == STATUS_NONE:
                return f"{r.name}: not started, no labels in this labelset yet"
            who = f" by {r.saved_by}" if r.saved_by else ""
            when = f" at {r.saved_at}" if r.saved_at else ""
            if r.status == STATUS_EMPTY:
                return f"{r.name}: empty, saved with nothing marked{who}{when}"
            return f"{r.name}: {r.voxels} voxels labeled, saved{who}{when}"
        return None


class ExamFilterProxy(QtCore.QSortFilterProxyModel):
    """Site, role and status filters plus a case-insensitive search on all text columns."""

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.site = self.role = self.status = ALL
        self.text = ""

    def set_filters(self, *, site: str | None = None, role: str | None = None,
                    status: str | None = None, text: str | None = None) -> None:
        modern = hasattr(self, "beginFilterChange")  # Qt >= 6.10; invalidateFilter is deprecated
        if modern:
            self.beginFilterChange()
        if site is not None:
            self.site = site
        if role is not None:
            self.role = role
        if status is not None:
            self.status = status
        if text is not None:
            self.text = text.strip().lower()
        if modern:
            self.endFilterChange()
        else:
            self.invalidateRowsFilter()

    def lessThan(self, left: QtCore.QModelIndex, right: QtCore.QModelIndex) -> bool:  # noqa: N802
        m = self.sourceModel()
        return m.sort_key(left.row(), left.column()) < m.sort_key(right.row(), right.column())

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802
        r = self.sourceModel().row(source_row)
        if self.site != ALL and r.site != self.site:
            return False
        if self.role != ALL and r.role != self.role:
            return False
        if self.status != ALL and r.status != self.status:
            return False
        fields = (r.name, r.site, r.role, r.status)
        if self.text and not any(self.text in s.lower() for s in fields):
            return False
        return True


class _ExamTable(QtWidgets.QTableView):
    """The table; N (while it has the focus) asks for the next exam of the queue, taking
    the key from the window's N shortcut (crosshair) only here."""

    next_requested = QtCore.Signal()

    def event(self, ev: QtCore.QEvent) -> bool:
        if ev.type() == QtCore.QEvent.Type.ShortcutOverride and ev.key() == Qt.Key.Key_N \
                and not ev.modifiers():
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_N and not ev.modifiers():
            self.next_requested.emit()
            return
        super().keyPressEvent(ev)


class ExamListPanel(QtWidgets.QFrame):
    """Filters + search + table. Emits exam_activated(name) when the user picks an exam,
    next_requested when they press N in the table (the active-learning queue)."""

    exam_activated = QtCore.Signal(str)
    next_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sidePanel")
        self.model = ExamTableModel(self)
        self.proxy = ExamFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.search = QtWidgets.QLineEdit(placeholderText="Search exams…")
        self.search.setClearButtonEnabled(True)
        self.site_combo = QtWidgets.QComboBox()
        self.role_combo = QtWidgets.QComboBox()
        self.status_combo = QtWidgets.QComboBox()
        self.status_combo.addItem("All status", ALL)
        for st in STATUSES:
            self.status_combo.addItem(st, st)
        for combo, tip in ((self.site_combo, "Site"), (self.role_combo, "Role"),
                           (self.status_combo, "Label status in the current labelset")):
            combo.setToolTip(tip)
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.setMinimumContentsLength(6)

        self.table = _ExamTable()
        self.table.next_requested.connect(self.next_requested)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        hh = self.table.horizontalHeader()
        hh.setHighlightSections(False)
        hh.setMinimumSectionSize(36)
        fm = self.table.fontMetrics()
        widest_text = ((1, "validation"), (2, "validation"), (3, "Slices"), (4, "not started"))
        for col, widest in widest_text:
            hh.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.Fixed)
            hh.resizeSection(col, fm.horizontalAdvance(widest) + 24)
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        title = QtWidgets.QLabel("EXAMS")
        title.setObjectName("panelTitle")
        self.count_label = QtWidgets.QLabel()
        self.count_label.setObjectName("examMeta")
        head = QtWidgets.QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.count_label)

        filters = QtWidgets.QHBoxLayout()
        filters.setSpacing(4)
        filters.addWidget(self.site_combo, 1)
        filters.addWidget(self.role_combo, 1)
        filters.addWidget(self.status_combo, 1)

        self.header_form = QtWidgets.QFormLayout()
        self.header_form.setContentsMargins(0, 0, 0, 4)
        self.header_form.setHorizontalSpacing(8)
        self.header_form.setVerticalSpacing(6)
        self.header_form.setFieldGrowthPolicy(
            QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow
        )

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 0, 4, 8)
        lay.setSpacing(6)
        lay.addLayout(self.header_form)
        lay.addLayout(head)
        lay.addWidget(self.search)
        lay.addLayout(filters)
        lay.addWidget(self.table, 1)

        self.search.textChanged.connect(lambda t: self._filter(text=t))
        self.site_combo.currentTextChanged.connect(lambda t: self._filter(site=self._value(t)))
        self.role_combo.currentTextChanged.connect(lambda t: self._filter(role=self._value(t)))
        self.status_combo.currentIndexChanged.connect(
            lambda i: self._filter(status=self.status_combo.itemData(i) or ALL)
        )
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self._emit_selection = True

    def add_header_row(self, label: str, widget: QtWidgets.QWidget) -> None:
        """A labeled row above the exam filters (the main window puts the labelset here)."""
        self.header_form.addRow(label, widget)

    @staticmethod
    def _value(text: str) -> str:
        return text if text and not text.startswith(ALL) else ALL

    def _filter(self, **kw) -> None:
        self.proxy.set_filters(**kw)
        self._update_count()

    def _update_count(self) -> None:
        n, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{n} of {total}" if n != total else f"{total}")

    def load(self, ws: Workspace, labelset: str | None) -> None:
        current = self.current_exam()
        self._emit_selection = False
        try:
            self.model.load(ws, labelset)
            for combo, values in ((self.site_combo, sorted({r.site for r in self.model.rows()})),
                                  (self.role_combo, sorted({r.role for r in self.model.rows()}))):
                keep = combo.currentText()
                combo.blockSignals(True)
                combo.clear()
                combo.addItem(ALL + (" sites" if combo is self.site_combo else " roles"))
                combo.addItems(values)
                idx = combo.findText(keep)
                combo.setCurrentIndex(max(idx, 0))
                combo.blockSignals(False)
            self.proxy.set_filters(site=self._value(self.site_combo.currentText()),
                                   role=self._value(self.role_combo.currentText()))
            if current:
                self.select(current)
        finally:
            self._emit_selection = True
        self._update_count()

    def current_exam(self) -> str | None:
        idx = self.table.currentIndex()
        if not idx.isValid():
            return None
        return self.model.row(self.proxy.mapToSource(idx).row()).name

    def select(self, exam: str) -> bool:
        """Make `exam` the current row (clearing filters that hide it); no signal."""
        src = self.model.row_of(exam)
        if src is None:
            return False
        pidx = self.proxy.mapFromSource(self.model.index(src, 0))
        if not pidx.isValid():
            self.search.clear()
            for combo in (self.site_combo, self.role_combo, self.status_combo):
                combo.setCurrentIndex(0)
            pidx = self.proxy.mapFromSource(self.model.index(src, 0))
        emit, self._emit_selection = self._emit_selection, False
        try:
            self.table.setCurrentIndex(pidx)
            self.table.scrollTo(pidx)
        finally:
            self._emit_selection = emit
        return True

    def visible_exams(self) -> list[str]:
        return [
            self.model.row(self.proxy.mapToSource(self.proxy.index(i, 0)).row()).name
            for i in range(self.proxy.rowCount())
        ]

    def _on_current_changed(self, current: QtCore.QModelIndex, _previous) -> None:
        if self._emit_selection and current.isValid():
            self.exam_activated.emit(self.model.row(self.proxy.mapToSource(current).row()).name)
