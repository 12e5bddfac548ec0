"""GUI test fixtures: real widgets offscreen (tests/conftest.py sets QT_QPA_PLATFORM),
settings redirected to a temp folder, and a check that no test leaks widgets or threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: I001  (before pyqtgraph)

RATER = "tester"


@pytest.fixture(autouse=True)
def gui_settings(tmp_path_factory):
    """QSettings go to a temp INI folder, never to the user's real settings."""
    folder = tmp_path_factory.mktemp("qsettings")
    QtCore.QSettings.setPath(
        QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(folder)
    )
    return folder


@pytest.fixture(autouse=True)
def default_preferences(tmp_path, monkeypatch):
    """Each test starts on the default preferences, saving (if at all) into its tmp folder."""
    from ictview.gui import preferences

    monkeypatch.setenv("ICTVIEW_SETTINGS", str(tmp_path / "settings.json"))
    preferences.reset()
    yield tmp_path / "settings.json"
    preferences.reset()


@pytest.fixture(autouse=True)
def no_leaks(qapp):
    """Fail a test that leaves a visible top-level widget or a running thread behind."""
    threads_before = set(threading.enumerate())
    yield
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    qapp.processEvents()
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads left running: {[t.name for t in extra]}"
    visible = [w for w in QtWidgets.QApplication.topLevelWidgets() if w.isVisible()]
    assert not visible, f"widgets left open: {visible}"


def positive_exam(ws_root: Path, labelset: str = "reference") -> str:
    """An exam whose reference labels are not empty (the tiny preset has some)."""
    from ictview.store.workspace import Workspace

    with Workspace.open(ws_root) as ws:
        for name in ws.labelset_exams(labelset):
            labels = ws.load_labels(labelset, name)
            if labels is not None and labels.any():
                return name
    raise AssertionError("no labelled exam in the tiny workspace")


@pytest.fixture
def window(qtbot, tiny_workspace_copy):
    """The main window on a copy of the tiny workspace, rater 'tester', an exam open."""
    from ictview.gui.app import ensure_app
    from ictview.gui.shell.main_window import MainWindow

    ensure_app()
    win = MainWindow(headless=True)
    qtbot.addWidget(win)
    win.set_rater(RATER)
    assert win.open_workspace(tiny_workspace_copy)
    win.resize(1280, 860)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_exam("ATL-0001"), win.last_error
    win.slice_view.fit()
    qapp = QtWidgets.QApplication.instance()
    qapp.processEvents()
    yield win
    win.shutdown()
    win.close()


# ---- synthetic input events on the slice view --------------------------------------------


NO_MOD = QtCore.Qt.KeyboardModifier.NoModifier


def _send_mouse(widget, kind, pos, button, buttons, modifiers=NO_MOD):
    p = QtCore.QPointF(pos)
    ev = QtGui.QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, modifiers)
    QtWidgets.QApplication.sendEvent(widget, ev)


def drag(view, pixels, button=QtCore.Qt.MouseButton.LeftButton,
         modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """Press at the first (row, col), move through the others, release at the last."""
    vp = view.canvas.viewport()
    pts = [view.pixel_to_widget(r, c) for r, c in pixels]
    E = QtCore.QEvent.Type
    _send_mouse(vp, E.MouseButtonPress, pts[0], button, button, modifiers)
    for p in pts[1:]:
        _send_mouse(vp, E.MouseMove, p, QtCore.Qt.MouseButton.NoButton, button, modifiers)
    none = QtCore.Qt.MouseButton.NoButton
    _send_mouse(vp, E.MouseButtonRelease, pts[-1], button, none, modifiers)


def click(view, row, col, button=QtCore.Qt.MouseButton.LeftButton) -> None:
    drag(view, [(row, col)], button)


def wheel(view, row, col, steps: int, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    vp = view.canvas.viewport()
    p = QtCore.QPointF(view.pixel_to_widget(row, col))
    ev = QtGui.QWheelEvent(
        p, vp.mapToGlobal(p), QtCore.QPoint(0, 0), QtCore.QPoint(0, 120 * steps),
        QtCore.Qt.MouseButton.NoButton, modifiers, QtCore.Qt.ScrollPhase.NoScrollPhase, False,
    )
    QtWidgets.QApplication.sendEvent(vp, ev)


def brain_pixel(hu: np.ndarray, z: int) -> tuple[int, int]:
    """A pixel well inside the head on slice z (soft tissue, away from the edge)."""
    soft = (hu[z] > 0) & (hu[z] < 80)
    rows, cols = np.nonzero(soft)
    return int(np.median(rows)), int(np.median(cols))
