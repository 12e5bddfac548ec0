"""`ictview next`: the active-learning queue (issue 16) on the tiny workspace, with
predictions written as real prediction files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ictview.cli import main
from ictview.core.annotation import rater_labelset
from ictview.errors import IctviewError
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from ictview.study.active_learning import binary_entropy, next_exams

ROLES = ("labeled", "unlabeled")


def _write(ws, run, exam, p_value: float, exam_score: float) -> None:
    x = ws.exam(exam)
    prob = np.full((x.n_slices, x.rows, x.cols), p_value, np.float16)
    ws.create_run(run, "teacher", {})
    ws.write_prediction(run, exam, Prediction(prob, prob.max((1, 2)).astype(np.float32),
                                              exam_score))


@pytest.fixture
def ranked(tiny_workspace_copy):
    """Run 'r': exam i of the labeled/unlabeled roles gets a uniform probability
    0.02 * (i + 1) (entropy rising with i); run 'q': 0.9 everywhere."""
    with Workspace.open(tiny_workspace_copy, login="ana") as ws:
        exams = [e.name for e in ws.exams() if e.role in ROLES]
        for i, e in enumerate(exams):
            _write(ws, "r", e, 0.02 * (i + 1), 0.02 * (i + 1))
            _write(ws, "q", e, 0.9, 0.9)
    return tiny_workspace_copy, exams


def test_uncertainty_serves_the_most_uncertain_first_and_never_a_test_exam(ranked):
    root, exams = ranked
    with Workspace.open(root, login="ana") as ws:
        q = next_exams(ws, "r", "uncertainty", n=len(exams))
    assert [s.exam for s in q.served] == exams[::-1]  # p rises to <= 0.5: entropy rises
    assert q.served[0].score == pytest.approx(float(binary_entropy(
        np.float16(0.02 * len(exams)))), abs=1e-4)
    assert {s.role for s in q.served} <= set(ROLES)


def test_a_labeled_exam_is_never_served(ranked):
    root, exams = ranked
    top = exams[-1]
    with Workspace.open(root, login="ana") as ws:
        x = ws.exam(top)
        ws.save_labels(rater_labelset("ana"), top, np.zeros((x.n_slices, x.rows, x.cols),
                                                             np.uint8), "ana")
        for strategy in ("uncertainty", "random"):
            q = next_exams(ws, "r", strategy, n=100, labelset=rater_labelset("ana"))
            assert top not in {s.exam for s in q.served}
            assert q.excluded["labeled_by_rater"] == 1
        # another rater still gets it
        assert next_exams(ws, "r", "uncertainty", rater="ben",
                          labelset=rater_labelset("ben")).served[0].exam == top


def test_a_study_exam_is_never_served_to_anyone(ranked):
    from ictview.study.retest_plan import ExamSelection, plan_study

    root, exams = ranked
    study = exams[-2:]
    with Workspace.open(root, login="kim") as ws:
        plan_study(ws, "s", "dr-lee", ExamSelection(exams=tuple(study)), seed=1,
                   admins=("kim",))
    for login in ("kim", "someone"):  # the administrator and a possible rater
        with Workspace.open(root, login=login) as ws:
            for strategy in ("uncertainty", "random"):
                q = next_exams(ws, "r", strategy, n=100)
                assert not set(study) & {s.exam for s in q.served}
                assert q.excluded["in_unfinished_study"] == 2
                assert len(q.served) == len(exams) - 2


def test_random_is_reproducible_for_a_seed(ranked):
    root, exams = ranked
    with Workspace.open(root, login="ana") as ws:
        a = [s.exam for s in next_exams(ws, "r", "random", n=100, seed=3).served]
        b = [s.exam for s in next_exams(ws, "r", "random", n=100, seed=3).served]
        others = {tuple(s.exam for s in next_exams(ws, "r", "random", n=100, seed=k).served)
                  for k in range(4, 8)}
    assert a == b and sorted(a) == sorted(exams)
    assert others - {tuple(a)}  # another seed, another order


def test_disagreement_and_the_exam_measure(ranked):
    root, exams = ranked
    with Workspace.open(root, login="ana") as ws:
        # r is below its default 0.5 threshold everywhere, q above: total disagreement
        q = next_exams(ws, "r", "disagreement", against="q", n=3)
        assert [s.score for s in q.served] == [1.0, 1.0, 1.0]
        # exam scores: |s_r - 0.9| is largest for the first exam
        q = next_exams(ws, "r", "disagreement", against="q", measure="exam")
        assert q.served[0].exam == exams[0]
        # closeness to the operating threshold (0.5 without metrics): the highest score
        q = next_exams(ws, "r", "uncertainty", measure="exam")
        assert q.served[0].exam == exams[-1]
        with pytest.raises(IctviewError, match="--against"):
            next_exams(ws, "r", "disagreement")


def test_cli_json_and_text(ranked, capsys):
    root, exams = ranked
    assert main(["next", str(root), "--run", "r", "--n", "2", "--json", "--rater", "ana"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["exam"] for s in doc["served"]] == exams[::-1][:2]
    assert main(["next", str(root), "--run", "nope"]) == 2
    assert "no run named 'nope'" in capsys.readouterr().err
