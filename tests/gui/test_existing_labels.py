"""An exam the reference labels opens on the rater's empty labelset: the view says the
labels exist and Labels > Start from existing labels copies them as one undo step; an exam
the read guard blinds is never offered."""

from __future__ import annotations

import numpy as np
from PySide6.QtTest import QTest

from ictview.store.workspace import Workspace
from ictview.study.retest_plan import ExamSelection, plan_study

from .conftest import RATER, positive_exam


def test_reference_labels_are_offered_and_copied_in_one_undo_step(window):
    exam = positive_exam(window.ws.root, "reference")
    assert window.open_exam(exam), window.last_error
    m = window.model
    assert not m.read_only and not m.labels.any() and m.labelset == f"rater-{RATER}"
    action = window.actions_by_key["start_existing"]
    assert action.isEnabled() and "reference" in action.text()
    assert "labels exist in 'reference'" in window.slice_view.info()[0]
    assert "has labels in 'reference'" in window.status.currentMessage()
    # the message is not drawn over the cursor fields, which come back when it clears
    assert not window.status.position.isVisibleTo(window)
    window.status.clearMessage()
    assert window.status.position.isVisibleTo(window)

    action.trigger()
    with Workspace.open(window.ws.root) as ws:
        ref = ws.load_labels("reference", exam)
    assert np.array_equal(m.labels, ref) and not action.isEnabled()
    assert len(m.history) == 1
    QTest.keySequence(window, "Ctrl+Z")
    assert not m.labels.any()
    QTest.keySequence(window, "Ctrl+Shift+Z")
    m.flush(10)
    with Workspace.open(window.ws.root) as ws:  # saved like any stroke
        assert np.array_equal(ws.load_labels(m.labelset, exam), ref)
    # reopened: the rater's labels exist now, nothing is offered any more
    window.close_exam()
    assert window.open_exam(exam)
    assert not window.actions_by_key["start_existing"].isEnabled()


def test_an_exam_the_guard_blinds_is_not_offered(window):
    ws_root = window.ws.root
    exams = window.ws.labelset_exams("retest-1")
    from ictview.gui.annotate.existing_labels import labels_elsewhere

    assert "retest-1" in labels_elsewhere(window.ws, exams[0], window.own_labelset)
    with Workspace.open(ws_root, login="admin-kim") as ws:
        plan_study(ws, "tr", RATER, ExamSelection(exams=tuple(exams)), seed=3,
                   admins=("admin-kim",))
    window.close_exam()
    window.set_rater(RATER)
    assert window.open_exam(exams[0])
    assert not window.model.labels.any()
    assert not window.actions_by_key["start_existing"].isEnabled()
    # the rule is the guard's: no labelset of a blinded exam is readable for this login
    assert labels_elsewhere(window.ws, exams[0], window.own_labelset) == []
