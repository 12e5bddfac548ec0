"""Issue 11, points 1-3, tried as an attacker: every path is refused by the data layer's
read guard (ictview/store/read_guard.py) by OS login, whatever name is typed.

The study: administrator ADMIN, rater login RATER_LOGIN, repetition 1 in progress with
one exam painted; a model run predicted every study exam and one exam outside it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ictview.cli import main as ictview_main
from ictview.core.annotation import AnnotationModel
from ictview.errors import IctviewError
from ictview.store.read_guard import BlindingError
from ictview.store.workspace import Workspace
from ictview.study.clock import parse_time
from ictview.study.retest_plan import ExamSelection, close_study, events, load_study, plan_study
from ictview.study.retest_session import RetestSession

from ._retest_helpers import ADMIN, RATER, RATER_LOGIN, write_run
from ._retest_helpers import admin_ws, as_login, clock, ws  # noqa: F401  (fixtures)

OUTSIDE = "ATL-0001"  # an exam outside the study, with reference labels


@pytest.fixture
def study(ws, admin_ws, clock):
    st = plan_study(admin_ws, "s", RATER, ExamSelection(role="test", labelset="reference"),
                    seed=3, washout_days=7, clock=clock, admins=(ADMIN,),
                    rater_login=RATER_LOGIN)
    s = RetestSession.start(ws, "s", RATER, clock=clock)
    e = ws.exam(s.current())
    ws.save_labels(s.labelset, s.current(), np.ones((e.n_slices, e.rows, e.cols), np.uint8),
                   RATER)
    write_run(admin_ws, "ss", [*st.exams, OUTSIDE], 0.9, seed=1)
    return s


def _open(ws, login):
    return Workspace.open(ws.root, login=login)


# ---- (a) the rater's login sees nothing of the study's exams but the current repetition ----


@pytest.mark.parametrize("typed", ["dr-lee", "Dr-Lee", "", "someone"])
def test_the_rater_login_reads_no_label_of_a_study_exam_whatever_name_is_typed(
        ws, study, typed):
    exam = study.current()
    for labelset in ("reference", "retest-1", "retest-s-2", "rater-" + typed.strip().lower()):
        with pytest.raises(BlindingError, match="hidden from login 'lee'|only its admin"):
            ws.load_labels(labelset, exam)
        with pytest.raises(BlindingError):
            AnnotationModel.open(ws, exam, labelset, typed or "x", read_only=True)
    with pytest.raises(BlindingError):  # opening for editing copies nothing in either
        AnnotationModel.open(ws, exam, "rater-x", "x", start_from="reference")
    with pytest.raises(BlindingError):
        ws.exam_reads(exam)
    with pytest.raises(BlindingError):
        ws.image_labels(exam)
    assert ws.load_labels("retest-s-1", exam).all()  # the repetition in progress: own work
    assert ws.load_labels("reference", OUTSIDE) is not None  # other exams as usual
    refused = events(ws, ("blinding_refused",))
    assert refused and all(r["actor"] == RATER_LOGIN for r in refused)


def test_the_rater_login_sees_no_prediction_of_a_study_exam(ws, admin_ws, study):
    assert set(admin_ws.predicted_exams("ss")) == {*study.order, OUTSIDE}
    assert ws.predicted_exams("ss") == [OUTSIDE]
    with pytest.raises(BlindingError, match="predictions of"):
        ws.read_prediction("ss", study.current(), pixels=False)
    assert ws.read_prediction("ss", OUTSIDE, pixels=False).exam_score > 0


def test_an_unknown_rater_login_is_treated_as_possibly_the_rater(admin_ws, clock):
    plan_study(admin_ws, "u", RATER, ExamSelection(role="test", labelset="reference"), seed=3,
               clock=clock, admins=(ADMIN,))
    exam = load_study(admin_ws, "u").exams[0]
    with _open(admin_ws, "mallory") as w:
        with pytest.raises(BlindingError, match="possibly its rater"):
            w.load_labels("reference", exam)
        # once the rater opened a session under their login, others read the reference again
        with _open(admin_ws, RATER_LOGIN) as rater:
            RetestSession.open_next(rater, "u", RATER)
        assert w.load_labels("reference", exam) is not None
        with pytest.raises(BlindingError, match="segmented under login 'lee'"):
            RetestSession.resume(w, "u", RATER)


# ---- (b) other logins: no repetition labelset -------------------------------------------


def test_other_logins_read_the_reference_but_no_repetition(ws, study):
    exam = study.current()
    with _open(ws, "someone") as w:
        assert w.load_labels("reference", exam) is not None
        assert w.guard.hides_anything()  # restricted on the repetitions only
        for ls in ("retest-s-1", "retest-s-2"):
            with pytest.raises(BlindingError, match="only its administrators \\(admin-kim\\)"):
                w.load_labels(ls, exam)
            with pytest.raises(BlindingError):
                AnnotationModel.open(w, exam, ls, RATER, read_only=True)
        assert not any(ls["name"].startswith("retest-s-") for ls in w.labelsets())
        assert w.labelset_exams("retest-s-1") == []


def test_export_of_a_repetition_while_unfinished(ws, study, as_login, tmp_path, capsys):
    root = str(ws.root)
    for login in (RATER_LOGIN, "someone"):
        as_login(login)
        out = tmp_path / login
        assert ictview_main(["export", root, "--labelset", "retest-s-1", "--format", "nifti",
                             "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "administrators (admin-kim)" in err
        assert not out.exists() or not any(out.iterdir())
    as_login(ADMIN)  # the administrator may; the export is audited
    assert ictview_main(["export", root, "--labelset", "retest-s-1", "--format", "nifti",
                         "--out", str(tmp_path / "admin")]) == 0
    assert len(list((tmp_path / "admin").glob("*.nii.gz"))) == 1
    (ev,) = events(ws, ("blinding_export_repetition",))
    assert (ev["actor"], ev["labelset"], ev["study"]) == (ADMIN, "retest-s-1", "s")


def test_export_of_the_reference_by_the_rater_leaves_the_study_exams_out(
        ws, study, as_login, tmp_path, capsys):
    root = str(ws.root)
    as_login(RATER_LOGIN)
    out = tmp_path / "ref"
    assert ictview_main(["export", root, "--labelset", "reference", "--format", "nifti",
                         "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    written = {p.split("/")[-1].removesuffix(".nii.gz") for p in doc["written"]}
    assert written and not written & set(study.order) and OUTSIDE in written
    assert {x["exam"] for x in doc["skipped"]} == set(study.order)
    assert all("hidden from login 'lee'" in x["reason"] for x in doc["skipped"])
    # naming a study exam: refused in one line
    assert ictview_main(["export", root, "--labelset", "reference", "--format", "nifti",
                         "--out", str(out), "--exam", study.current()]) == 2
    assert "hidden from login 'lee'" in capsys.readouterr().err


def test_info_lists_only_what_the_login_may_see(ws, study, as_login, capsys):
    root = str(ws.root)
    seen = {}
    for login in (RATER_LOGIN, "someone", ADMIN):
        as_login(login)
        assert ictview_main(["info", root, "--json"]) == 0
        seen[login] = {ls["name"] for ls in json.loads(capsys.readouterr().out)["labelsets"]}
    study_sets = {"retest-s-1", "retest-s-2", "retest-s-3"}
    assert seen[RATER_LOGIN] & study_sets == {"retest-s-1"}  # the repetition in progress
    assert not seen["someone"] & study_sets
    assert seen[ADMIN] >= study_sets


# ---- (c) administrator actions ------------------------------------------------------------


def test_self_override_is_refused_whatever_by_says(ws, study, clock):
    while study.current():
        study.mark_done()
    study.finish()
    clock.advance(days=2)
    with pytest.raises(BlindingError, match="a washout override .* not login 'lee'"):
        RetestSession.start(ws, "s", RATER, clock=clock, override_reason="I remember nothing")
    assert load_study(ws, "s").session(2).started_at is None
    assert not events(ws, ("retest_override",))


def test_an_administrator_cannot_be_the_rater(admin_ws, study):
    with pytest.raises(BlindingError, match="administers test-retest study 's'"):
        RetestSession.resume(admin_ws, "s", RATER)
    with pytest.raises(IctviewError, match="cannot be an administrator"):
        plan_study(admin_ws, "t", RATER, ExamSelection(role="test"), admins=("kim", "lee"),
                   rater_login="lee")


def test_unblind_and_abort_are_for_administrators_and_audited(ws, admin_ws, study, clock):
    exam = study.current()
    for how in ("unblinded", "aborted"):
        with pytest.raises(BlindingError, match="administrators \\(admin-kim\\)"):
            close_study(ws, "s", how, "let me see", clock=clock)
    assert ws.guard.hides_anything()
    clock.advance(minutes=5)
    st = close_study(admin_ws, "s", "unblinded", "rater left the department", clock=clock)
    assert (st.closed_how, st.closed_by) == ("unblinded", ADMIN) and st.finished
    (ev,) = events(ws, ("retest_unblind",))
    assert (ev["actor"], ev["reason"]) == (ADMIN, "rater left the department")
    assert ws.load_labels("reference", exam) is not None  # the blinding is lifted
    with pytest.raises(IctviewError, match="no repetition can start"):
        RetestSession.start(ws, "s", RATER, clock=clock)


# ---- washout you can trust -------------------------------------------------------------------


def test_a_clock_earlier_than_the_last_audited_event_is_refused(ws, study, clock):
    while study.current():
        study.mark_done()
    study.finish()
    clock.advance(days=8)
    clock.advance(days=-9)  # the clock is set back before the end of repetition 1
    with pytest.raises(IctviewError, match="earlier than the study's last audited event"):
        RetestSession.start(ws, "s", RATER, clock=clock)
    assert load_study(ws, "s").session(2).started_at is None


def test_a_clock_moved_ahead_starts_repetition_2_but_the_audit_shows_it(ws, admin_ws, study,
                                                                       clock):
    from ictview.study.retest_analysis import study_repetitions

    while study.current():
        study.mark_done()
    study.finish()
    ended = parse_time(events(ws, ("retest_session_end",), "retest-s-1")[-1]["at"])
    clock.advance(days=8)  # the rater moves the clock 8 days ahead
    s2 = RetestSession.start(ws, "s", RATER, clock=clock)
    assert s2.repetition == 2 and not s2.overridden
    (start,) = events(ws, ("retest_session_start",), "retest-s-2")
    assert start["washout_s"] == pytest.approx(8 * 86400)
    assert parse_time(start["at"]) - ended == clock.now() - ended
    # and setting the clock right again refuses every further study event
    clock.advance(days=-8)
    with pytest.raises(IctviewError, match="earlier than the study's last audited event"):
        s2.open_exam()
    reps = study_repetitions(admin_ws, "s")
    assert reps[1].session["washout_audit_days"] == pytest.approx(8.0)


def test_a_clock_kept_ahead_shows_in_the_analysis(ws, admin_ws):
    """With the system clock (audit rows of saves use it too): the rater moves the clock 8
    days ahead for repetition 2 and back afterwards; the next ordinary row is earlier than
    the study's last rows, and `retest analyze` says the washouts may not be real."""
    from datetime import datetime, timezone

    from ictview.study.clock import FixedClock
    from ictview.study.retest_analysis import analyze, clock_reversals

    real = FixedClock(datetime.now(timezone.utc))
    exams = tuple(e.name for e in admin_ws.exams(role="test"))[:2]
    plan_study(admin_ws, "k", RATER, ExamSelection(exams=exams), seed=1, clock=real,
               admins=(ADMIN,), rater_login=RATER_LOGIN)
    for k in (1, 2):
        s = RetestSession.start(ws, "k", RATER, clock=real)
        while s.current():
            s.mark_done()
        s.finish()
        real.advance(days=8)  # repetition 2 runs 8 days "ahead" of the real time
    admin_ws.audit(ADMIN, "note", None, "any row written at the real time")
    back = clock_reversals(admin_ws)
    assert back and back[-1]["action"] == "note" and back[-1]["back_by_days"] > 7
    doc = analyze(admin_ws, study="k")
    assert doc["clock_reversals"] and any("the clock was moved" in n for n in doc["notes"])
