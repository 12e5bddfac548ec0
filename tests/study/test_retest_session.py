"""Running sessions with an injected clock: order, washout, override, audit, time on task."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from ictview.errors import IctviewError
from ictview.study.blinding import BlindingGuard
from ictview.study.clock import parse_time
from ictview.study.retest_plan import ExamSelection, events, load_study, plan_study
from ictview.study.retest_session import RetestSession, WashoutNotOver, availability

from ._retest_helpers import ADMIN, RATER, RATER_LOGIN
from ._retest_helpers import admin_ws, clock, ws  # noqa: F401  (fixtures)


def plan(ws, clock, **kw):
    return plan_study(ws, "s", RATER, ExamSelection(role="test", labelset="reference"), seed=3,
                      clock=clock, admins=(ADMIN,), **kw)


def run_through(session: RetestSession, clock, minutes: float = 5.0) -> None:
    """Every exam of the session, in order: painted exams get a small blob."""
    while (exam := session.current()) is not None:
        session.open_exam(exam)
        e = session.ws.exam(exam)
        labels = np.zeros((e.n_slices, e.rows, e.cols), np.uint8)
        labels[2, 40:48, 40:50] = 4
        session.ws.save_labels(session.labelset, exam, labels, RATER, seconds_on_task=60.0)
        clock.advance(minutes=minutes)
        session.close_exam(exam, seconds_on_task=60.0)
        assert session.advance() == session.current()
    assert session.ended


def test_a_session_presents_exams_in_its_order_and_records_everything(ws, clock):
    st = plan(ws, clock)
    s = RetestSession.start(ws, "s", RATER, clock=clock)
    assert (s.repetition, s.labelset) == (1, "retest-s-1")
    order = list(st.session(1).exam_order)
    assert s.current() == order[0] and s.position() == (1, 3)
    assert s.progress_text() == "Repetition 1 of 3 — exam 1 of 3"
    # only the current exam can be opened or marked done; nothing advances unsaved
    with pytest.raises(IctviewError, match="current one is"):
        s.open_exam(order[1])
    with pytest.raises(IctviewError, match="current one is"):
        s.mark_done(order[2])
    s.open_exam(order[0])
    with pytest.raises(IctviewError, match="is not saved yet"):
        s.advance()
    # paint through the blinding guard's model (journal + autosave), then advance
    guard = BlindingGuard(s, clock)
    model = guard.open_model(order[0])
    model.paint_to(3, 60, 60)
    model.end_stroke()
    model.close()
    clock.advance(minutes=4)
    s.close_exam(order[0], seconds_on_task=model.seconds_on_task)
    assert s.is_saved(order[0])
    assert s.advance() == order[1] and s.position() == (2, 3)
    # a negative exam: explicitly marked done without painting gets an empty segmentation
    s.open_exam(order[1])
    clock.advance(minutes=2)
    s.close_exam(order[1], seconds_on_task=30.0)
    s.mark_done(order[1])
    assert not ws.load_labels("retest-s-1", order[1]).any()
    assert s.current() == order[2]
    run_through(s, clock)
    assert s.done_exams() == order
    assert load_study(ws, "s").session(1).status == "ended"
    # audit: every event, in order, with the clock's times and the session's labelset
    evs = events(ws, ("retest_session_start", "retest_exam_open", "retest_exam_close",
                      "retest_exam_done", "retest_session_end"), "retest-s-1")
    actions = [e["action"] for e in evs]
    assert actions[0] == "retest_session_start" and actions[-1] == "retest_session_end"
    assert actions.count("retest_exam_open") == 3 and actions.count("retest_exam_done") == 3
    assert [e["exam"] for e in evs if e["action"] == "retest_exam_done"] == order
    assert all(e["actor"] == RATER_LOGIN for e in evs)  # the OS login, not the typed name
    assert evs[0]["at"].startswith("2026-11-02T09:00:00")
    saves = ws.con.execute("SELECT COUNT(*) FROM audit_log WHERE action='save_labels' AND "
                           "detail='retest-s-1'").fetchone()[0]
    assert saves >= 3
    # time on task per exam: active seconds from the model, wall time from the clock
    tot = s.time_on_task()
    assert tot[order[1]] == {"active_s": 30.0, "wall_s": 120.0, "opened": 1}
    assert tot[order[0]]["wall_s"] == 240.0 and tot[order[0]]["active_s"] >= 0
    with pytest.raises(IctviewError, match="has ended"):
        s.open_exam()


def test_an_early_start_is_refused_with_the_opening_time(ws, clock):
    plan(ws, clock)
    run_through(RetestSession.start(ws, "s", RATER, clock=clock), clock)
    ended = load_study(ws, "s").session(1).ended_at
    assert ended == parse_time("2026-11-02T09:15:00+00:00")
    clock.advance(days=6, hours=23)
    with pytest.raises(WashoutNotOver) as err:
        RetestSession.start(ws, "s", RATER, clock=clock)
    msg = str(err.value)
    assert "repetition 2 of 3 opens on 2026-11-09 09:15 UTC" in msg
    assert "--override-reason" in msg and "\n" not in msg
    assert err.value.opens_at == ended + timedelta(days=7)
    assert load_study(ws, "s").session(2).status == "planned"
    assert availability(load_study(ws, "s"), clock).state == "washout"
    # an empty (or blank) override reason is no override
    from ictview.store.workspace import Workspace

    with Workspace.open(ws.root, login=ADMIN) as admin:
        with pytest.raises(IctviewError, match="needs a typed reason"):
            RetestSession.start(admin, "s", RATER, clock=clock, override_reason="   ")
    assert not events(ws, ("retest_override",))
    # once the washout has passed it starts, and is not marked
    clock.advance(hours=1)
    with Workspace.open(ws.root, login=ADMIN) as admin:
        s2 = RetestSession.start(admin, "s", RATER, clock=clock, override_reason="not needed")
    assert s2.repetition == 2 and not s2.overridden
    assert not events(ws, ("retest_override",))


def test_an_override_is_recorded_and_audited(ws, admin_ws, clock):
    plan(ws, clock)
    run_through(RetestSession.start(ws, "s", RATER, clock=clock), clock)
    clock.advance(days=3)
    s2 = RetestSession.start(admin_ws, "s", RATER, clock=clock,
                             override_reason="rater leaves for 3 months on Friday")
    assert s2.overridden and s2.repetition == 2
    plan2 = load_study(ws, "s").session(2)
    assert plan2.override_reason == "rater leaves for 3 months on Friday"
    assert plan2.override_by == "admin-kim"
    assert plan2.started_at == clock.now()
    (ev,) = events(ws, ("retest_override",))
    assert ev["actor"] == "admin-kim" and ev["reason"] == plan2.override_reason
    assert ev["at"] == "2026-11-05T09:15:00.000+00:00" and ev["repetition"] == 2
    assert ev["opens_at"].startswith("2026-11-09T09:15")
    start = events(ws, ("retest_session_start",), "retest-s-2")
    assert start[0]["overridden"] is True
    # the audit log cannot be edited afterwards
    with pytest.raises(Exception, match="append-only"):
        ws.con.execute("UPDATE audit_log SET detail='' WHERE action='retest_override'")


def test_sequence_rules_between_repetitions_and_raters(ws, clock):
    plan(ws, clock, washout_days=0)
    with pytest.raises(IctviewError, match="segmented by rater 'dr-lee', not 'dr-x'"):
        RetestSession.start(ws, "s", "dr-x", clock=clock)
    s1 = RetestSession.start(ws, "s", RATER, clock=clock)
    with pytest.raises(IctviewError, match="repetition 1 already started"):
        RetestSession.start(ws, "s", RATER, clock=clock)
    assert RetestSession.resume(ws, "s", RATER, clock=clock).repetition == 1
    with pytest.raises(IctviewError, match="still has 3 exam"):
        s1.finish()
    run_through(s1, clock)
    # washout 0: the next one opens at once; open_next starts it
    s2 = RetestSession.open_next(ws, "s", RATER, clock=clock)
    assert s2.repetition == 2 and s2.current() == load_study(ws, "s").session(2).exam_order[0]
    run_through(s2, clock)
    run_through(RetestSession.open_next(ws, "s", RATER, clock=clock), clock)
    with pytest.raises(IctviewError, match="all 3 repetitions are finished"):
        RetestSession.start(ws, "s", RATER, clock=clock)
