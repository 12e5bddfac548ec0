"""Issue 11: the review, compare, ranker, dashboard and training views show the rater's
login no label and no prediction of an unfinished test-retest study's exams. Every
label and prediction file read while each view opens and renders is recorded (pass-
through spies on the HDF5 readers) and none may belong to a study exam; the views still
open and render (no error), and the administrator's login still sees those exams."""

from __future__ import annotations

import pytest

from ictview.store import arrays
from ictview.store.workspace import Workspace
from ictview.study.retest_plan import ExamSelection, plan_study

from .panels_support import KNOWN_EXAM, add_runs

VIEWS = ("training", "ranker", "review", "compare", "dashboard")
ADMIN = "admin-kim"


@pytest.fixture
def blinded_ws(tiny_workspace_copy):
    """Runs predicted every test and validation exam; a study on KNOWN_EXAM and another
    test exam, administered by ADMIN, rater login not known yet: the test's login is
    possibly the rater."""
    add_runs(tiny_workspace_copy)
    with Workspace.open(tiny_workspace_copy, login=ADMIN) as ws:
        other = next(e.name for e in ws.exams(role="test") if e.name != KNOWN_EXAM)
        plan_study(ws, "tr", "dr-lee", ExamSelection(exams=(KNOWN_EXAM, other)), seed=1,
                   admins=(ADMIN,))
    return tiny_workspace_copy, {KNOWN_EXAM, other}


@pytest.fixture
def file_reads(monkeypatch):
    reads: list[str] = []
    real_labels, real_pred = arrays.read_labels, arrays.read_prediction

    def read_labels(path, *a, **kw):
        reads.append(str(path))
        return real_labels(path, *a, **kw)

    def read_prediction(path, *a, **kw):
        reads.append(str(path))
        return real_pred(path, *a, **kw)

    monkeypatch.setattr(arrays, "read_labels", read_labels)
    monkeypatch.setattr(arrays, "read_prediction", read_prediction)
    return reads


@pytest.mark.parametrize("view", VIEWS)
def test_no_view_reads_a_study_exam_for_the_rater(qapp, blinded_ws, file_reads, tmp_path, view,
                                                  capsys):
    from ictview.gui.panel_screenshots import render_panel

    root, study_exams = blinded_ws
    png = tmp_path / f"{view}.png"
    assert render_panel(root, view, png, exam=None) == 0, capsys.readouterr().err
    assert png.exists()
    leaked = [p for p in file_reads if any(p.endswith(f"/{e}.h5") for e in study_exams)]
    assert leaked == []
    if view in ("review", "compare"):
        assert file_reads  # the view did read the rest: it is not just empty


def test_the_dashboard_refuses_rather_than_computing_on_fewer_exams(qtbot, blinded_ws,
                                                                    file_reads):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.dashboard import Dashboard

    root, study_exams = blinded_ws
    ensure_app()
    d = Dashboard(root, headless=True)
    qtbot.addWidget(d)
    try:
        d.compute()
        qtbot.waitUntil(lambda: not d.error.isHidden() or d.report is not None, timeout=60000)
        assert not d.error.isHidden() and "hidden from login" in d.error.text()
        assert "the report: 2 of the exams it needs" in d.error.text()
    finally:
        d.shutdown()
    assert file_reads == []


def test_the_review_says_why_a_study_exam_does_not_open(qtbot, blinded_ws, file_reads):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.review_view import ReviewView

    root, study_exams = blinded_ws
    ensure_app()
    v = ReviewView(root, headless=True)
    qtbot.addWidget(v)
    try:
        assert not {r.exam for r in v.rows} & study_exams  # not listed, and said so
        assert v.count.text().endswith(" exams · 2 blinded")
        assert "unfinished test-retest study" in v.count.toolTip()
        assert not v.open_exam(KNOWN_EXAM)  # asked for by name: refused, and says why
        assert "hidden from login" in v.exam_info.text()
        assert v.exam != KNOWN_EXAM
    finally:
        v.shutdown()
        v.close()
    assert not [p for p in file_reads if any(p.endswith(f"/{e}.h5") for e in study_exams)]


def test_the_administrator_reviews_the_study_exams(qapp, blinded_ws, file_reads, tmp_path,
                                                   monkeypatch):
    import ictview.identity
    from ictview.gui.panel_screenshots import render_panel

    monkeypatch.setattr(ictview.identity, "current_login", lambda: ADMIN)
    root, study_exams = blinded_ws
    assert render_panel(root, "review", tmp_path / "r.png", exam=KNOWN_EXAM) == 0
    assert any(p.endswith(f"/{KNOWN_EXAM}.h5") for p in file_reads)
