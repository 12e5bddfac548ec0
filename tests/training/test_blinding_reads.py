"""Training reads labels and predictions through the workspace, so through the read guard
(ictview/store/read_guard.py). Where hidden exams would silently shrink a computation
(evaluation, pseudo-labels), a blinded login is refused in one line instead."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.store.arrays import Prediction
from ictview.store.read_guard import BlindingError
from ictview.store.workspace import Workspace
from ictview.study.retest_plan import ExamSelection, plan_study
from training.config import EvaluateSection
from training.data.sources import _predictions, labeled_source
from training.evaluate import role_metrics


@pytest.fixture
def blinded(tiny_workspace_copy):
    """A study on one test and one labeled exam (administrator kim; rater login unknown,
    so any other login is possibly the rater), a run that predicted every test exam."""
    with Workspace.open(tiny_workspace_copy, login="kim") as ws:
        test = [e.name for e in ws.exams(role="test")]
        labeled = ws.exams(role="labeled")[0].name
        plan_study(ws, "s", "dr-lee", ExamSelection(exams=(test[0], labeled)), seed=1,
                   admins=("kim",))
        ws.create_run("r", "teacher", {})
        for n in test:
            e = ws.exam(n)
            p = np.full((e.n_slices, e.rows, e.cols), 0.5, np.float16)
            ws.write_prediction("r", n, Prediction(p, p.max((1, 2)).astype(np.float32), 0.5))
    return tiny_workspace_copy, test


def test_evaluation_and_pseudo_labels_refuse_a_blinded_login(blinded):
    root, test = blinded
    ev = EvaluateSection(n_boot=2)
    with Workspace.open(root, login="someone") as ws:
        with pytest.raises(BlindingError, match="evaluating run 'r' on the test exams: 1 of the exams it needs"):
            role_metrics(ws, "r", "test", ev, None)
        with pytest.raises(BlindingError, match="pseudo-labels from run 'r'"):
            _predictions(ws, "r", test)
        with pytest.raises(BlindingError, match="hidden from login 'someone'"):
            labeled_source(ws, None, type("Cfg", (), {"data": type("D", (), {
                "labelset": "reference"})()})())
    with Workspace.open(root, login="kim") as ws:  # the administrator: as usual
        metrics, _ = role_metrics(ws, "r", "test", ev, None)
        assert metrics["exams_predicted"] == len(test)
        assert _predictions(ws, "r", test)[0] == test
