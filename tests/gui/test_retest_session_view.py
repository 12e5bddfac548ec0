"""The blinded session window: sequential exams, washout page, and blinding asserted on
what the widgets were given and on every label / prediction file read meanwhile."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from ictview.gui.shell.exam_list import ExamListPanel
from ictview.store import arrays
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from ictview.study.clock import FixedClock
from ictview.study.retest_plan import ExamSelection, events, load_study, plan_study
from ictview.study.retest_session import RetestSession

from .conftest import brain_pixel, drag

STUDY, RATER = "s", "dr-lee"
OWN = "retest-s-2"


@pytest.fixture
def study_ws(tiny_workspace_copy):
    """Repetition 1 done (with labels), other raters' labels and a prediction on the same
    exams; the clock 8 days later: repetition 2 is ready."""
    clock = FixedClock("2026-11-02T09:00:00+00:00")
    with Workspace.open(tiny_workspace_copy) as ws:
        # the test's login is the rater's; the study is administered by someone else
        plan_study(ws, STUDY, RATER, ExamSelection(role="test", labelset="reference"), seed=2,
                   clock=clock, admins=("admin-kim",))
        s = RetestSession.start(ws, STUDY, RATER, clock=clock)
        for exam in s.order:
            e = ws.exam(exam)
            full = np.full((e.n_slices, e.rows, e.cols), 2, np.uint8)
            ws.save_labels(s.labelset, exam, full, RATER)
            ws.save_labels("rater-other", exam, full, "other")
            prob = np.full(full.shape, 0.9, np.float16)
            ws.write_prediction("ss", exam, Prediction(prob, prob.max((1, 2)).astype(np.float32),
                                                       0.9))
            s.advance()
        order = list(load_study(ws, STUDY).session(2).exam_order)
    clock.advance(days=8)
    return tiny_workspace_copy, clock, order


@pytest.fixture
def file_reads(monkeypatch):
    """Every label and prediction file read while the test runs (pass-through spies)."""
    reads: list[tuple[str, str]] = []
    real_labels, real_pred = arrays.read_labels, arrays.read_prediction

    def read_labels(path, *a, **kw):
        reads.append(("labels", str(path)))
        return real_labels(path, *a, **kw)

    def read_prediction(path, *a, **kw):
        reads.append(("prediction", str(path)))
        return real_pred(path, *a, **kw)

    monkeypatch.setattr(arrays, "read_labels", read_labels)
    monkeypatch.setattr(arrays, "read_prediction", read_prediction)
    return reads


def make_window(qtbot, root, clock):
    from ictview.gui.app import ensure_app
    from ictview.gui.retest.session_window import RetestSessionWindow

    ensure_app()
    win = RetestSessionWindow(root, STUDY, RATER, clock=clock, headless=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_a_session_runs_in_order_and_stays_blinded(qtbot, study_ws, file_reads):
    root, clock, order = study_ws
    win = make_window(qtbot, root, clock)
    try:
        assert win.state == "ready" and win.stack.currentWidget() is win.page
        assert win.page.title.text() == "Repetition 2 of 3 is ready"
        assert win.given == [] and win.slice_view.hu is None
        qtbot.mouseClick(win.page.start, QtCore.Qt.MouseButton.LeftButton)
        assert win.state == "in progress" and win.session.labelset == OWN
        assert win.banner.progress.text() == "Repetition 2 of 3 — exam 1 of 3"
        assert win.model.exam == order[0] and win.slice_view.labels is win.model.labels
        # no way to other exams, labelsets or predictions in this window
        assert not win.findChildren(ExamListPanel)
        assert not win.findChildren(QtWidgets.QComboBox)
        assert not any(k.endswith("_exam") for k in win.actions_by_key)
        # paint on the first exam, through the view, into the session's labelset
        z = win.slice_view.z
        r, c = brain_pixel(win.model.hu, z)
        drag(win.slice_view, [(r, c), (r + 2, c + 3)])
        assert win.model.labels[z].any()
        # closing and reopening resumes at the same exam, with what was painted
        history = win.guard_history
        win.shutdown()
        win.close()
        win = make_window(qtbot, root, clock)
        win.guard_history[:0] = history
        assert win.state == "in progress" and win.model.exam == order[0]
        assert win.model.labels[z].any() and win.slice_view.z == z
        for k, exam in enumerate(order, start=1):
            assert win.model.exam == exam
            assert win.panel.exam.text() == f"Exam {k} of 3  ·  {exam}"
            assert win.banner.progress.text() == f"Repetition 2 of 3 — exam {k} of 3"
            qtbot.mouseClick(win.panel.done, QtCore.Qt.MouseButton.LeftButton)
        # the last exam ended the repetition: repetition 3 is in its washout
        assert win.state == "washout" and win.model is None
        assert win.page.title.text() == "Repetition 3 of 3 opens on 2026-11-17 09:00 UTC"
        # what the widgets were given: this session's labelset, the exams in order,
        # and nothing of the other labelsets (which are full of label 2 on these exams)
        assert [(g["widget"], g["exam"]) for g in win.given] == [
            (w, e) for e in order for w in ("tool_panel", "slice_view")]  # since the reopening
        assert {g["labelset"] for g in win.given} == {OWN}
        for g in win.given:
            assert not (g["labels"] == 2).any()
        assert [(a.kind, a.exam, a.labelset) for a in win.guard_history] == [
            ("model", e, OWN) for e in [order[0], *order]]
        assert all(a.allowed for a in win.guard_history)
    finally:
        win.shutdown()
        win.close()
    # every file read meanwhile: only the session's own label files, no prediction
    assert file_reads and all(kind == "labels" for kind, _ in file_reads)
    assert {p.split("/labels/")[1].split("/")[0] for _, p in file_reads} == {OWN}
    with Workspace.open(root, login="admin-kim") as ws:  # the rater may not: the guard
        ws.load_labels("rater-other", order[0])  # the spy sees any other read
        assert file_reads[-1][1].endswith(f"rater-other/{order[0]}.h5")
        saved = ws.load_labels(OWN, order[0])
        assert saved[z].any() and set(np.unique(saved)) <= {0, 1}
        assert not ws.load_labels(OWN, order[1]).any()  # marked done: no hemorrhage
        evs = events(ws, ("retest_exam_open", "retest_exam_close", "retest_exam_done"), OWN)
        one = ["retest_exam_open", "retest_exam_close"]
        assert [e["action"] for e in evs] == one + [
            a for _ in order for a in (*one, "retest_exam_done")]  # exam 1 was shown twice
        assert [e["exam"] for e in evs if e["action"] == "retest_exam_done"] == order
        assert load_study(ws, STUDY).session(2).status == "ended"


def test_before_the_washout_the_window_says_when_it_opens(qtbot, study_ws, file_reads):
    root, clock, _ = study_ws
    clock.advance(days=-4)  # 4 days after repetition 1 ended
    win = make_window(qtbot, root, clock)
    try:
        assert win.state == "washout"
        assert win.page.title.text() == "Repetition 2 of 3 opens on 2026-11-09 09:00 UTC"
        assert "3 days" in win.page.text.text() and "--override-reason" in win.page.hint.text()
        assert "opens on 2026-11-09 09:00 UTC" in win.banner.progress.text()
        assert not win.page.start.isVisible()
        win.done_next()  # nothing to finish, nothing happens
        assert win.given == [] and win.slice_view.hu is None and file_reads == []
    finally:
        win.shutdown()
        win.close()


def test_screenshot_of_a_session_in_progress_writes_nothing(qtbot, study_ws, tmp_path):
    from ictview.gui.retest.session_window import run_retest_gui

    root, clock, order = study_ws
    with Workspace.open(root) as ws:
        s = RetestSession.start(ws, STUDY, RATER, clock=clock)
        s.mark_done()
        n_audit = ws.con.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    png = tmp_path / "session.png"
    assert run_retest_gui(root, STUDY, RATER, screenshot=png, clock=clock) == 0
    img = QtGui.QImage(str(png))
    assert (img.width(), img.height()) == (1600, 1000)
    with Workspace.open(root) as ws:
        assert ws.con.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == n_audit
    assert run_retest_gui(root, STUDY, "someone-else", screenshot=png, clock=clock) == 2


def test_side_panel_fits_at_1600_by_1000(qtbot, study_ws):
    """Every control of the session / annotation column lies inside the visible width of
    its scroll area at the screenshot size (it scrolls vertically, never cuts sideways)."""
    root, clock, _order = study_ws
    with Workspace.open(root) as ws:
        RetestSession.start(ws, STUDY, RATER, clock=clock)
    win = make_window(qtbot, root, clock)
    win.resize(1600, 1000)
    QtWidgets.QApplication.processEvents()
    assert win.state == "in progress"
    area = win.side_scroll
    vp = area.viewport()
    assert area.widget().width() <= vp.width()
    checked = 0
    for w in area.widget().findChildren(QtWidgets.QWidget):
        if not w.isVisibleTo(area.widget()) or w.width() == 0:
            continue
        right = w.mapTo(vp, QtCore.QPoint(w.width() - 1, 0)).x()
        assert right < vp.width(), (type(w).__name__, w.objectName(), right, vp.width())
        checked += 1
    assert checked > 30
    lock = win.tool_panel.findChildren(QtWidgets.QCheckBox)
    assert lock and all(cb.mapTo(vp, QtCore.QPoint(cb.width(), 0)).x() <= vp.width()
                        for cb in lock if cb.isVisibleTo(area.widget()))
    win.shutdown()
    win.close()
