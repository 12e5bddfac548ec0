"""The DICOM tag browser: every header element of the current slice's source file.

It reads the file the slice was imported from (found by its SOP Instance UID in the
exam's source folder); when that folder or file is gone it says so in the dialog
instead of showing nothing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ictview.errors import IctviewError

Qt = QtCore.Qt


class TagBrowser(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None, ws_root: Path, exam: str, index: int):
        super().__init__(parent)
        self.setWindowTitle(f"DICOM tags — {exam}, slice {index + 1}")
        self.path: Path | None = None
        self.error = ""
        self.source = QtWidgets.QLabel()
        self.source.setObjectName("examMeta")
        self.source.setWordWrap(True)
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter by tag, name or value (e.g. 0028 or Kernel)")
        self.filter.setClearButtonEnabled(True)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setSectionResizeMode(3, QtWidgets.QHeaderView.ResizeMode.Stretch)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.source)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(buttons)
        self.filter.textChanged.connect(self._apply_filter)
        self.resize(900, 680)
        self._load(ws_root, exam, index)

    def _load(self, ws_root: Path, exam: str, index: int) -> None:
        from ictview.io.source_slice import find_slice_file, read_tags
        from ictview.store.workspace import Workspace

        try:
            with Workspace.open(ws_root) as ws:
                self.path = find_slice_file(ws, exam, index)
            rows = read_tags(self.path)
        except IctviewError as err:
            self.error = str(err)
            self.source.setText(f"<span style='color:#e07a6a'>{err}</span>")
            self.filter.setEnabled(False)
            return
        self.source.setText(f"Slice {index + 1}  ·  source file {self.path}  ·  "
                            f"{len(rows)} elements")
        items = []
        for r in rows:
            it = QtWidgets.QTreeWidgetItem(
                ["  " * r.depth + r.tag, r.keyword, r.vr, r.value])
            items.append(it)
        self.tree.addTopLevelItems(items)
        for col in range(3):
            self.tree.resizeColumnToContents(col)

    @property
    def n_rows(self) -> int:
        return self.tree.topLevelItemCount()

    def value_of(self, keyword: str) -> str | None:
        for i in range(self.n_rows):
            it = self.tree.topLevelItem(i)
            if it.text(1) == keyword:
                return it.text(3)
        return None

    def _apply_filter(self, text: str) -> None:
        t = text.strip().lower()
        for i in range(self.n_rows):
            it = self.tree.topLevelItem(i)
            hit = not t or any(t in it.text(c).lower() for c in range(4))
            it.setHidden(not hit)
