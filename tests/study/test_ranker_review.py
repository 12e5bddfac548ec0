"""Ranker threshold inspection, Qt-free: the ranking matches training's ranker, marks and
the chosen C persist in the workspace with rater and time, precision per C with its CI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ictview.errors import IctviewError
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from ictview.study import ranker_review as rr

RUN = "baseline-pl"


@pytest.fixture
def ws(tiny_workspace_copy):
    """A pseudolabel run over the unlabeled exams, with ties in the image probabilities."""
    w = Workspace.open(tiny_workspace_copy)
    w.create_run("baseline", "teacher", {})
    w.create_run(RUN, "pseudolabel", {}, parent="baseline")
    rng = np.random.default_rng(1)
    for e in w.exams(role="unlabeled"):
        scores = np.round(rng.random(e.n_slices), 1).astype(np.float32)  # many ties
        prob = np.zeros((e.n_slices, e.rows, e.cols), np.float16)
        w.write_prediction(RUN, e.name, Prediction(prob, scores, float(scores.max())))
    yield w
    w.close()


def test_ranking_is_the_one_the_student_trains_with(ws):
    from training.ranker import pseudo_labels  # numpy only: the student's own rule

    ranked = rr.load_ranked(ws, RUN)
    names = [e.name for e in ws.exams(role="unlabeled")]
    preds = [ws.read_prediction(RUN, n) for n in names]
    for c in (*rr.C_CHOICES, 12.5):
        _, flags, summary = pseudo_labels([p.prob for p in preds],
                                          [p.slice_scores for p in preds], c)
        theirs = {(n, int(z)) for n, f in zip(names, flags) for z in np.flatnonzero(f)}
        k = ranked.n_positive(c)
        mine = {(ranked.exams[i], int(ranked.slices[i])) for i in range(k)}
        assert mine == theirs and k == summary.n_positive
        assert ranked.cut_score(c) == pytest.approx(summary.threshold)
    assert np.all(np.diff(ranked.scores) <= 0)


def test_images_near_the_cut(ws):
    ranked = rr.load_ranked(ws, RUN)
    k = ranked.n_positive(10)
    assert k == 6  # round-half-up of 64 * 10 / 100
    near = ranked.near_cut(10, above=4, below=3)
    assert [im.rank for im in near] == [2, 3, 4, 5, 6, 7, 8]
    assert ranked.near_cut(10, above=50)[0].rank == 0
    with pytest.raises(IctviewError):
        rr.load_ranked(ws, "nope")


def test_judgments_persist_with_rater_and_time(ws, tiny_workspace_copy):
    rr.record_judgment(ws, RUN, "KAG-0001", 3, "dr-a", 1, 10)
    rr.record_judgment(ws, RUN, "KAG-0001", 3, "dr-a", 0, 15)  # a second look replaces
    rr.record_judgment(ws, RUN, "KAG-0002", 0, "dr-a", 1, 10)
    rr.record_judgment(ws, RUN, "KAG-0002", 0, "dr-b", 0, 10)
    rr.record_judgment(ws, RUN, "KAG-0002", 0, "dr-b", None)  # cleared
    with Workspace.open(tiny_workspace_copy) as again:
        marks = rr.load_judgments(again, RUN)
        assert {(j.exam, j.slice_idx, j.rater, j.judgment, j.c_percent) for j in marks} == {
            ("KAG-0001", 3, "dr-a", 0, 15.0), ("KAG-0002", 0, "dr-a", 1, 10.0)}
        assert all(j.judged_at.endswith("+00:00") for j in marks)
        assert rr.load_judgments(again, RUN, rater="dr-b") == []
        actions = [r[0] for r in again.con.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'ranker%'")]
        assert actions.count("ranker_judge") == 4 and actions.count("ranker_unjudge") == 1
    with pytest.raises(IctviewError):
        rr.record_judgment(ws, RUN, "KAG-0001", 3, " ", 1)
    with pytest.raises(IctviewError):
        rr.record_judgment(ws, RUN, "KAG-0001", 3, "dr-a", 2)


def test_precision_per_cut_with_wilson_interval(ws):
    ranked = rr.load_ranked(ws, RUN)
    marks = []
    for rank, value in ((0, 1), (1, 1), (2, 0), (5, 1), (6, 0), (7, 1)):
        im = ranked.image(rank)
        rr.record_judgment(ws, RUN, im.exam, im.slice_idx, "dr-a", value, 10)
    marks = rr.load_judgments(ws, RUN)
    s10 = rr.summarize_cut(ranked, marks, 10)  # top 6: ranks 0..5
    assert (s10.judged, s10.true_positive, s10.judged_below, s10.true_below) == (4, 3, 2, 1)
    assert s10.precision == 0.75
    lo, hi = rr.wilson_interval(3, 4)
    assert (round(lo, 3), round(hi, 3)) == (0.301, 0.954)  # textbook Wilson 95%
    assert (s10.ci_low, s10.ci_high) == (lo, hi)
    s5 = rr.summarize_cut(ranked, marks, 5)  # top 3
    assert (s5.judged, s5.true_positive) == (3, 2)
    empty = rr.summarize_cut(ranked, [], 30)
    assert empty.judged == 0 and math.isnan(empty.precision) and empty.precision_text == "–"
    assert [s.c_percent for s in rr.cut_table(ranked, marks)] == list(rr.C_CHOICES)
    assert all(math.isnan(v) for v in rr.wilson_interval(0, 0))  # nothing judged


def test_chosen_c_is_saved_with_the_run(ws):
    assert rr.chosen_ranker(ws, RUN) is None and rr.student_overrides(None) == []
    rr.save_choice(ws, RUN, 20, 0.65, 0.25, "dr-a")
    rr.save_choice(ws, RUN, 15, 0.7, 0.3, "dr-b")  # a later choice replaces it
    assert rr.chosen_ranker(ws, RUN) == (15.0, 0.7, 0.3)
    choice = rr.load_choice(ws, RUN)
    assert choice.chosen_by == "dr-b" and choice.chosen_at
    assert rr.student_overrides(rr.chosen_ranker(ws, RUN)) == [
        "ranker.top_percent=15", "ranker.k_hi=0.7", "ranker.k_lo=0.3"]
    for bad in ((0, 0.7, 0.3, "x"), (10, 0.3, 0.7, "x"), (10, 0.7, 0.3, ""),
                (101, 0.7, 0.3, "x")):
        with pytest.raises(IctviewError):
            rr.save_choice(ws, RUN, *bad)
    with pytest.raises(IctviewError):
        rr.save_choice(ws, "nope", 10, 0.7, 0.3, "x")
