"""Planning: exam sets, seeded orders (permutations, new each repetition, reproducible)."""

from __future__ import annotations

import json
import math

import pytest

from ictview.errors import IctviewError
from ictview.study.retest_plan import (
    ExamSelection,
    events,
    load_study,
    plan_study,
    repetition_labelset,
    session_orders,
)

from ._retest_helpers import RATER, RATER_LOGIN
from ._retest_helpers import clock, ws  # noqa: F401  (fixtures)

EXAMS = [f"E{i:02d}" for i in range(23)]


@pytest.mark.parametrize("n, reps", [(23, 3), (5, 4), (3, 6), (2, 2)])
def test_orders_are_new_permutations_reproducible_from_the_seed(n, reps):
    exams = EXAMS[:n]
    orders = session_orders(exams, reps, seed=11)
    assert len(orders) == reps
    for order in orders:
        assert sorted(order) == sorted(exams)  # a permutation: every exam exactly once
    # every order differs from every earlier one (n! is large enough in these cases)
    assert math.factorial(n) >= reps
    assert len({tuple(o) for o in orders}) == reps
    assert session_orders(exams, reps, seed=11) == orders  # same seed, same orders


def test_orders_depend_on_the_seed_and_few_exams_still_change_order():
    assert session_orders(EXAMS, 3, seed=1) != session_orders(EXAMS, 3, seed=2)
    # 2 exams, 3 repetitions: only 2 permutations exist; each differs from the previous
    orders = session_orders(EXAMS[:2], 3, seed=5)
    assert orders[0] != orders[1] and orders[1] != orders[2]
    assert session_orders(EXAMS[:1], 3, seed=5) == [[EXAMS[0]]] * 3


def test_plan_records_study_sessions_labelsets_and_audit(ws, clock):
    sel = ExamSelection(role="test", labelset="reference")
    st = plan_study(ws, "cq", RATER, sel, seed=42, clock=clock)  # planned by login 'lee'
    assert st.admins == {RATER_LOGIN} and st.created_by == RATER_LOGIN
    subset = sorted(set(ws.labelset_exams("reference")) & {e.name for e in ws.exams(role="test")})
    assert list(st.exams) == subset and len(subset) == 3
    assert (st.repetitions, st.washout_days, st.seed, st.rater) == (3, 7.0, 42, RATER)
    assert [s.labelset for s in st.sessions] == [repetition_labelset("cq", k) for k in (1, 2, 3)]
    assert [list(s.exam_order) for s in st.sessions] == session_orders(subset, 3, 42)
    assert all(s.status == "planned" and not s.overridden for s in st.sessions)
    # the orders are stored in the catalog and read back identically
    again = load_study(ws, "cq")
    assert again == st
    rows = {ls["name"]: ls for ls in ws.labelsets()}
    for s in st.sessions:
        assert rows[s.labelset]["kind"] == "retest" and rows[s.labelset]["rater"] == RATER
        stored = ws.con.execute("SELECT exam_order FROM retest_sessions WHERE labelset=?",
                                (s.labelset,)).fetchone()[0]
        assert json.loads(stored) == list(s.exam_order)
    (ev,) = events(ws, ("retest_plan",))
    assert ev["actor"] == RATER_LOGIN and ev["study"] == "cq" and ev["seed"] == 42
    assert ev["at"].startswith("2026-11-02T09:00:00")


def test_random_sample_is_reproducible_and_explicit_lists_are_checked(ws, clock):
    a = plan_study(ws, "a", RATER, ExamSelection(sample=5), seed=9, clock=clock)
    b = plan_study(ws, "b", RATER, ExamSelection(sample=5), seed=9, clock=clock)
    assert a.exams == b.exams and len(a.exams) == 5
    assert [s.exam_order for s in a.sessions] == [s.exam_order for s in b.sessions]
    c = plan_study(ws, "c", RATER, ExamSelection(exams=("CQ500-CT-3", "CQ500-CT-1")),
                   repetitions=2, washout_days=14, seed=1, clock=clock)
    assert c.exams == ("CQ500-CT-1", "CQ500-CT-3") and c.washout_days == 14
    seeded = plan_study(ws, "d", RATER, ExamSelection(role="test"), clock=clock)
    assert isinstance(seeded.seed, int)  # a random seed is drawn and recorded


@pytest.mark.parametrize("kwargs, message", [
    ({"selection": ExamSelection(exams=("NOPE",))}, "no exam named 'NOPE'"),
    ({"selection": ExamSelection(exams=("CQ500-CT-1", "CQ500-CT-1"))}, "listed twice"),
    ({"selection": ExamSelection(role="test", sample=99)}, "cannot sample 99"),
    ({"selection": ExamSelection(role="test"), "repetitions": 1}, "at least 2 repetitions"),
    ({"selection": ExamSelection(role="test"), "washout_days": -1}, "washout must be >= 0"),
    ({"selection": ExamSelection(role="test"), "rater": " "}, "needs a rater"),
    ({"selection": ExamSelection(role="test"), "name": "a b"}, "may only use"),
    ({"selection": ExamSelection(role="nope")}, "role 'nope'"),
])  # fmt: skip
def test_bad_plans_are_refused_with_one_line(ws, clock, kwargs, message):
    args = {"name": "s", "rater": RATER, **kwargs}
    with pytest.raises(IctviewError, match=message) as err:
        plan_study(ws, args.pop("name"), args.pop("rater"), args.pop("selection"), clock=clock,
                   **args)
    assert "\n" not in str(err.value)
    assert ws.con.execute("SELECT COUNT(*) FROM retest_studies").fetchone()[0] == 0


def test_names_and_labelsets_are_never_reused(ws, clock):
    plan_study(ws, "s", RATER, ExamSelection(role="test"), seed=1, clock=clock)
    with pytest.raises(IctviewError, match="already exists"):
        plan_study(ws, "s", RATER, ExamSelection(role="test"), seed=1, clock=clock)
    ws.ensure_labelset("retest-t-2", "retest", RATER)
    with pytest.raises(IctviewError, match="labelset 'retest-t-2' already exists"):
        plan_study(ws, "t", RATER, ExamSelection(role="test"), seed=1, clock=clock)
