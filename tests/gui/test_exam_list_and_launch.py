"""Exam list filters, labelsets, opening off the UI thread, run_gui screenshots, imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ictview.gui.shell.exam_list import ALL, STATUS_LABELLED, STATUS_NONE
from ictview.store.workspace import Workspace

from .conftest import RATER, brain_pixel, drag, positive_exam

REPO = Path(__file__).resolve().parents[2]


def test_exam_list_filters_and_search(window, qtbot):
    panel = window.exam_list
    all_names = panel.visible_exams()
    with Workspace.open(window.ws.root) as ws:
        assert sorted(all_names) == sorted(e.name for e in ws.exams())
        kaggle = sorted(e.name for e in ws.exams(site="kaggle"))
        tests = sorted(e.name for e in ws.exams(role="test"))
    panel.site_combo.setCurrentText("kaggle")
    assert sorted(panel.visible_exams()) == kaggle
    assert panel.count_label.text() == f"{len(kaggle)} of {len(all_names)}"
    panel.site_combo.setCurrentIndex(0)
    panel.role_combo.setCurrentText("test")
    assert sorted(panel.visible_exams()) == tests
    panel.role_combo.setCurrentIndex(0)
    qtbot.keyClicks(panel.search, "atl-0002")
    assert panel.visible_exams() == ["ATL-0002"]
    panel.search.clear()
    # status follows the shown labelset: nothing labelled yet in the rater's own one
    assert {r.status for r in panel.model.rows()} == {STATUS_NONE}
    # every state in words, and the header says what each means
    m = panel.model
    assert {m.data(m.index(i, 4)) for i in range(m.rowCount())} == {"not started"}
    tip = m.headerData(4, QtCore.Qt.Orientation.Horizontal, QtCore.Qt.ItemDataRole.ToolTipRole)
    assert all(w in tip for w in ("labeled:", "empty:", "not started:"))
    panel.status_combo.setCurrentIndex(panel.status_combo.findData(STATUS_LABELLED))
    assert panel.visible_exams() == []
    panel.status_combo.setCurrentIndex(panel.status_combo.findData(ALL))
    # natural order: CQ500-CT-2 before CQ500-CT-10 when there are ten
    cq = [n for n in panel.visible_exams() if n.startswith("CQ500")]
    assert cq == sorted(cq, key=lambda n: int(n.rsplit("-", 1)[1]))


def test_painting_marks_the_exam_labelled_and_selecting_opens(window, qtbot):
    win = window
    r, c = brain_pixel(win.model.hu, win.slice_view.z)
    drag(win.slice_view, [(r, c), (r, c + 4)])
    win.model.flush(10)
    qtbot.waitUntil(lambda: win.exam_list.model.rows()[0].status == STATUS_LABELLED, timeout=5000)
    m = win.exam_list.model
    assert m.data(m.index(0, 4)) == "labeled"  # one spelling: the role is 'labeled' too
    # picking another row in the table opens that exam
    panel = win.exam_list
    src = panel.model.row_of("ATL-0003")
    with qtbot.waitSignal(win.exam_opened, timeout=5000):
        panel.table.setCurrentIndex(panel.proxy.mapFromSource(panel.model.index(src, 0)))
    assert win.model.exam == "ATL-0003"


def test_other_labelsets_are_read_only(window, tiny_workspace_copy):
    win = window
    exam = positive_exam(tiny_workspace_copy)
    win.set_labelset("reference")
    assert win.open_exam(exam)
    m = win.model
    assert m.read_only and not win.tool_panel.isEnabled()
    assert m.labels.any()
    before = m.labels.copy()
    z = int(np.argmax(m.labels.reshape(m.labels.shape[0], -1).sum(1)))
    assert win.slice_view.z == z  # opens on the slice with the most labels
    r, c = brain_pixel(m.hu, z)
    drag(win.slice_view, [(r, c), (r, c + 5)])
    assert np.array_equal(m.labels, before)
    win.set_labelset(f"rater-{RATER}")
    assert not win.model.read_only


def test_start_from_copies_reference_into_own_labelset(window, tiny_workspace_copy):
    win = window
    exam = positive_exam(tiny_workspace_copy)
    win.start_combo.setCurrentText("reference")
    win._set_start_from("reference")
    assert win.open_exam(exam)
    with Workspace.open(tiny_workspace_copy) as ws:
        ref = ws.load_labels("reference", exam)
    assert np.array_equal(win.model.labels, ref)
    assert win.model.labelset == f"rater-{RATER}" and not win.model.read_only


def test_large_exams_open_off_the_ui_thread(window, qtbot):
    win = window
    win.sync_open_max_voxels = 0
    with qtbot.waitSignal(win.exam_opened, timeout=10000) as sig:
        assert win.open_exam("ATL-0004")
        assert win.model is None  # still loading: the UI thread is free
    assert sig.args == ["ATL-0004"] and win.model.exam == "ATL-0004"
    # switching while a load is in flight drops the stale one cleanly
    win.open_exam("ATL-0005")
    win.open_exam("ATL-0006")
    qtbot.waitUntil(lambda: win.model is not None and win.model.exam == "ATL-0006", timeout=10000)


def test_run_gui_screenshot_is_a_valid_non_blank_png(tiny_workspace_copy, tmp_path, qapp):
    from ictview.gui.launch import run_gui

    labels_before = sorted(p.relative_to(tiny_workspace_copy)
                           for p in (tiny_workspace_copy / "labels").rglob("*"))
    out = tmp_path / "shots" / "main.png"
    assert run_gui(tiny_workspace_copy, screenshot=out) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1600, 1000)
    img = img.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    arr = arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
    assert arr.std() > 10  # not blank
    # preview mode wrote nothing into the workspace
    labels_after = sorted(p.relative_to(tiny_workspace_copy)
                          for p in (tiny_workspace_copy / "labels").rglob("*"))
    assert labels_after == labels_before


def _rgb(img: QtGui.QImage) -> np.ndarray:
    img = img.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    arr = arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    return arr.reshape(img.height(), img.width(), 3).astype(int)


def test_screenshot_shows_the_label_overlay_on_the_ct(tiny_workspace_copy, tmp_path, qtbot):
    from ictview.gui.launch import first_labelled_exam, save_screenshot
    from ictview.gui.shell.main_window import MainWindow

    win = MainWindow(headless=True)
    qtbot.addWidget(win)
    win.preview = True
    win.set_rater("demo-rater")
    win.open_workspace(tiny_workspace_copy)
    exam = first_labelled_exam(win)
    assert win.labelset == "reference" and win.open_exam(exam)
    assert save_screenshot(QtWidgets.QApplication.instance(), win, tmp_path / "on.png") == 0
    win.model.labels_visible = False
    assert save_screenshot(QtWidgets.QApplication.instance(), win, tmp_path / "off.png") == 0
    on = _rgb(QtGui.QImage(str(tmp_path / "on.png")))
    off = _rgb(QtGui.QImage(str(tmp_path / "off.png")))
    view = win.slice_view
    z = view.z
    labelled = np.argwhere(win.model.labels[z] > 0)
    background = np.argwhere((win.model.labels[z] == 0) & (win.model.hu[z] > 0))
    assert len(labelled) > 0

    def at(pixels):
        vp = view.canvas.viewport()
        pts = [vp.mapTo(win, view.pixel_to_widget(r, c)) for r, c in pixels[::7]]
        return np.array([(p.y(), p.x()) for p in pts])

    lab, bg = at(labelled), at(background)
    diff_lab = np.abs(on[lab[:, 0], lab[:, 1]] - off[lab[:, 0], lab[:, 1]]).sum(1)
    diff_bg = np.abs(on[bg[:, 0], bg[:, 1]] - off[bg[:, 0], bg[:, 1]]).sum(1)
    assert (diff_lab > 30).mean() > 0.8  # coloured where the labels are
    assert (diff_bg > 30).mean() < 0.05  # and nowhere else (crosshair/cursor aside)
    # brain window: soft tissue is mid-grey, not saturated
    grey = off[bg[:, 0], bg[:, 1]].mean()
    assert 40 < grey < 215
    win.shutdown()
    win.close()


def test_run_gui_reports_bad_input_in_one_line(tmp_path, qapp, capsys):
    from ictview.gui.launch import run_gui

    assert run_gui(tmp_path / "missing", screenshot=tmp_path / "x.png") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    assert not (tmp_path / "x.png").exists()


def test_gui_never_imports_torch_or_training():
    code = (
        "import sys; import ictview.gui.shell.main_window, ictview.gui.launch, ictview.gui.bench; "
        "bad = [m for m in ('torch', 'training') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_recent_workspaces_are_remembered(window, tiny_workspace_copy):
    from ictview.gui.shell.main_window import recent_workspaces

    assert recent_workspaces()[0] == str(Path(tiny_workspace_copy).resolve())


def test_exam_open_elsewhere_is_shown_read_only(window):
    from ictview.core.annotation import AnnotationModel

    other = AnnotationModel.open(window.ws.root, "ATL-0002", window.labelset, RATER)
    try:
        assert window.open_exam("ATL-0002")
        assert window.model.read_only and "another ictview" in window.last_error
        assert not window.slice_view.editable and not window.slice_view.cursor_item.isVisible()
    finally:
        window.close_exam()
        other.close()


def test_run_gui_event_loop_uses_stored_rater_and_recent_workspace(tiny_workspace_copy, qapp):
    from PySide6 import QtCore

    from ictview.gui.app import settings
    from ictview.gui.launch import run_gui
    from ictview.gui.shell.main_window import MainWindow, remember_recent

    settings().setValue("rater", "alice")
    remember_recent(tiny_workspace_copy)
    seen = {}

    def inspect_and_close():
        wins = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        w = wins[0]
        seen.update(rater=w.rater, labelset=w.labelset, exam=w.model.exam if w.model else None,
                    root=w.ws.root if w.ws else None)
        w.close()

    QtCore.QTimer.singleShot(200, inspect_and_close)
    assert run_gui(None, exam=None) == 0
    assert seen["rater"] == "alice" and seen["labelset"] == "rater-alice"
    assert Path(seen["root"]).resolve() == Path(tiny_workspace_copy).resolve()
    assert seen["exam"] is not None  # the first exam (alice has labelled none yet)
    QtCore.QTimer.singleShot(200, inspect_and_close)
    assert run_gui(tiny_workspace_copy, exam="VAL-0002") == 0
    assert seen["exam"] == "VAL-0002"
