"""Blinding: a session loads only the current exam's CT and its own labelset."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.study.blinding import BlindingError, BlindingGuard, BlindingPolicy
from ictview.study.retest_plan import ExamSelection, events, plan_study
from ictview.study.retest_session import RetestSession

from ._retest_helpers import ADMIN, RATER, write_run
from ._retest_helpers import admin_ws, clock, ws  # noqa: F401  (fixtures)


@pytest.fixture
def guard(ws, admin_ws, clock):
    plan_study(ws, "s", RATER, ExamSelection(role="test", labelset="reference"), seed=3,
               washout_days=0, clock=clock, admins=(ADMIN,))
    s = RetestSession.start(ws, "s", RATER, clock=clock)
    # the same exams hold labels elsewhere: the reference, the imported repetitions,
    # another rater, the rater's own other repetition; and a model run predicted them
    for exam in s.order:
        e = ws.exam(exam)
        other = np.full((e.n_slices, e.rows, e.cols), 2, np.uint8)
        ws.save_labels("rater-someone", exam, other, "someone")
        ws.save_labels("retest-s-2", exam, other, RATER)
    write_run(admin_ws, "ss", list(s.order), 0.9, seed=1)  # reads the reference
    return BlindingGuard(s, clock)


def test_only_the_current_exam_in_the_own_labelset_is_handed_out(ws, guard):
    s = guard.session
    exam = s.current()
    assert guard.visible_labelsets() == ["retest-s-1"]
    vol = guard.load_volume(exam)
    assert vol.hu.shape == (ws.exam(exam).n_slices, ws.exam(exam).rows, ws.exam(exam).cols)
    assert guard.load_labels("retest-s-1", exam) is None  # nothing painted yet
    model = guard.open_model(exam)
    try:
        assert model.labelset == "retest-s-1" and model.exam == exam
        assert not model.labels.any()  # nothing of the other labelsets came in
    finally:
        model.close()
    forbidden = [
        ("labels", exam, "reference"), ("labels", exam, "retest-1"),
        ("labels", exam, "retest-s-2"), ("labels", exam, "rater-someone"),
        ("volume", s.order[1], None), ("labels", s.order[1], "retest-s-1"),
        ("model", s.order[2], "retest-s-1"),
    ]  # fmt: skip
    for kind, e, ls in forbidden:
        with pytest.raises(BlindingError):
            guard.check(kind, e, ls)
    with pytest.raises(BlindingError, match="predictions are hidden"):
        guard.load_prediction("ss", exam)
    with pytest.raises(BlindingError, match="labelset 'reference' is hidden"):
        guard.load_labels("reference", exam)
    assert [(a.kind, a.labelset) for a in guard.loaded] == [
        ("volume", None), ("labels", "retest-s-1"), ("model", "retest-s-1")]
    assert all(a.exam == exam for a in guard.loaded)
    assert len(guard.refused) == len(forbidden) + 2
    refusals = events(ws, ("retest_blinding_refused",), "retest-s-1")
    assert len(refusals) == len(forbidden) + 2
    assert {r["kind"] for r in refusals} == {"labels", "volume", "model", "prediction"}


def test_the_policy_follows_the_session_order(ws, guard, clock):
    s = guard.session
    first, second = s.order[0], s.order[1]
    assert guard.policy.allows("model", first, "retest-s-1")
    s.mark_done(first)
    assert not guard.policy.allows("model", first, "retest-s-1")  # no going back
    assert guard.policy.allows("model", second, "retest-s-1")
    done = BlindingPolicy("retest-s-1", None)
    assert "no current exam" in done.why_not("volume", first)


def test_the_rest_of_the_app_hides_study_exams_labels_from_the_rater(ws, guard, clock):
    """Outside the session the data layer's read guard (ws.guard) blinds the rater's login."""
    s = guard.session
    g = ws.guard
    assert g.hides_anything()
    exam = s.order[0]
    for ls in ("reference", "rater-someone", "retest-s-2", "rater-dr-lee"):
        assert not g.may_read_labels(ls, exam)
    assert g.may_read_labels("retest-s-1", exam)  # the repetition in progress: own work
    assert not g.may_read_labels(None, exam)  # slice- and exam-level labels too
    assert not g.may_read_prediction("ss", exam)
    assert not g.may_read_labels("retest-s-2", "ATL-0001")  # a study labelset anywhere
    assert g.may_read_labels("reference", "ATL-0001")  # other exams: as usual
    # once every repetition is finished, nothing is hidden any more
    while s.current():
        s.mark_done()
    s.finish()
    for _ in (2, 3):
        nxt = RetestSession.start(ws, "s", RATER, clock=clock)
        while nxt.current():
            nxt.mark_done()
        nxt.finish()
    assert not g.hides_anything()
    assert g.may_read_labels("reference", exam) and g.may_read_prediction("ss", exam)
