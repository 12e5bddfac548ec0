"""Outside a session too, a rater with an unfinished test-retest study cannot review
labels of the study's exams in the main window, nor pick the study's labelsets."""

from __future__ import annotations

from ictview.store.workspace import Workspace
from ictview.study.retest_plan import ExamSelection, plan_study

from .conftest import RATER


def test_study_exams_show_the_ct_only(window):
    ws_root = window.ws.root
    with Workspace.open(ws_root) as ws:
        exams = ws.labelset_exams("retest-1")
        plan_study(ws, "tr", RATER, ExamSelection(exams=tuple(exams)), seed=3, created_by="admin")
    window.set_labelset("reference")
    listed = [window.labelset_combo.itemData(i) for i in range(window.labelset_combo.count())]
    assert "reference" in listed and not any(n.startswith("retest-tr-") for n in listed)

    assert window.open_exam(exams[0])
    model = window.model
    assert model.read_only and not model.labels.any()
    with Workspace.open(ws_root) as ws:
        assert ws.load_labels("reference", exams[0]).any()  # there was something to hide
    assert "hidden from tester" in window.last_error

    other = next(e.name for e in window.ws.exams(site="atlantis"))
    assert window.open_exam(other)
    assert window.model.labels is not None  # exams outside the study are unaffected
