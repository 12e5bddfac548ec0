"""A damaged file in the GUI: one line in a dialog naming the file, and the window goes on
(real main window offscreen, real damaged HDF5 / SQLite files)."""

from __future__ import annotations

import shutil
import sqlite3
import sys

import h5py
import pytest

from PySide6 import QtCore, QtWidgets  # noqa: I001

from ictview.gui.app import ensure_app
from ictview.gui.shell.main_window import MainWindow
from ictview.store.workspace import Workspace

RATER = "tester"


def garble_sop_uids(volume) -> None:
    """The heap address of the volume's first SOP UID string (as tests/test_read_errors.py)."""
    with h5py.File(volume, "r") as f:
        offset = f["sop_uids"].id.get_offset()
    with open(volume, "r+b") as f:
        f.seek(offset + 4)
        f.write(b"\xa5" * 8)


def garble_table(db, table: str) -> None:
    con = sqlite3.connect(db)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def close_dialogs(shown: list[str]) -> QtCore.QTimer:
    """Accept every message box as it appears, keeping its text."""
    def poll() -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        if isinstance(box, QtWidgets.QMessageBox):
            shown.append(box.text())
            box.done(0)

    timer = QtCore.QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    return timer


@pytest.fixture
def live_window(qtbot):
    """A main window that shows dialogs (not headless), closed at the end."""
    ensure_app()
    win = MainWindow(headless=False)
    qtbot.addWidget(win)
    win.set_rater(RATER)
    win.resize(1280, 860)
    yield win
    win.shutdown()
    win.close()


def test_opening_a_damaged_exam_shows_a_dialog_and_the_window_keeps_working(
        qtbot, live_window, tiny_workspace_copy):
    with Workspace.open(tiny_workspace_copy) as ws:
        good, bad = [e.name for e in ws.exams()][:2]
        volume = ws.volume_path(bad)
    garble_sop_uids(volume)
    win = live_window
    assert win.open_workspace(tiny_workspace_copy)
    win.show()
    qtbot.waitExposed(win)
    shown: list[str] = []
    timer = close_dialogs(shown)
    try:
        assert not win.open_exam(bad)
        qtbot.waitUntil(lambda: len(shown) == 1)
    finally:
        timer.stop()
    assert str(volume) in shown[0] and "damaged or unreadable" in shown[0], shown
    assert "\n" not in shown[0] and "Traceback" not in shown[0]
    # the window goes on: another exam opens and shows its slices
    assert win.open_exam(good), win.last_error
    assert win.model is not None and win.model.exam == good
    assert win.slice_view.n_slices == win.model.hu.shape[0] > 0


@pytest.mark.qt_no_exception_capture  # the app's own hook is under test, not pytest-qt's
def test_a_damaged_catalog_in_a_slot_is_one_line_in_a_dialog(
        qtbot, live_window, tiny_workspace_copy, tmp_path, monkeypatch):
    from ictview.gui import error_hook

    healthy = tmp_path / "healthy"
    shutil.copytree(tiny_workspace_copy, healthy)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    error_hook.install()
    win = live_window
    assert win.open_workspace(tiny_workspace_copy)
    win.show()
    qtbot.waitExposed(win)
    db = tiny_workspace_copy / "workspace.sqlite"
    win.ws.con.close()
    garble_table(db, "labelsets")
    win.ws = Workspace.open(tiny_workspace_copy)  # reopened on the damaged file
    shown: list[str] = []
    timer = close_dialogs(shown)
    try:
        # choosing a labelset reads the labelsets table: the slot raises, the hook reports
        win.labelset_combo.activated.emit(0)
        qtbot.waitUntil(lambda: len(shown) == 1)
    finally:
        timer.stop()
    assert str(db) in shown[0] and "damaged SQLite database" in shown[0], shown
    assert "\n" not in shown[0]
    # the app goes on: a healthy workspace opens and shows an exam
    assert win.open_workspace(healthy), win.last_error
    with Workspace.open(healthy) as ws:
        name = ws.exams()[0].name
    assert win.open_exam(name), win.last_error
    assert win.slice_view.n_slices > 0
