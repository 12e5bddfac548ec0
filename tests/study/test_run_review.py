"""Review / comparison data without Qt: runs with predictions, per-exam scores and the
exam-level reference, and the one-line difference of two runs on an exam."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from ictview.study import run_review as rv


def test_exam_rows_scores_and_references(tiny_workspace_copy):
    with Workspace.open(tiny_workspace_copy) as ws:
        ws.create_run("baseline", "teacher", {})
        ws.create_run("empty", "teacher", {})
        for i, e in enumerate(ws.exams(role="test") + ws.exams(role="unlabeled")[:1]):
            prob = np.zeros((e.n_slices, e.rows, e.cols), np.float16)
            ws.write_prediction("baseline", e.name,
                                Prediction(prob, np.zeros(e.n_slices, np.float32), i / 10))
        assert [r["name"] for r in rv.prediction_runs(ws)] == ["baseline"]
        rows = {r.exam: r for r in rv.exam_rows(ws, ["baseline"])}
        assert set(rows) == {e.name for e in ws.exams(role="test")} | {"KAG-0001"}
        assert rows["CQ500-CT-1"].reference_source == "reads"
        assert rows["CQ500-CT-1"].reference is bool(ws.exam_label("CQ500-CT-1"))
        assert rows["CQ500-CT-2"].pixel_reference and not rows["CQ500-CT-1"].pixel_reference
        assert rows["KAG-0001"].reference_source == "image labels"
        assert rows["CQ500-CT-2"].score("baseline") == pytest.approx(0.1)
        assert np.isnan(rows["CQ500-CT-2"].score("other"))
        assert rows["CQ500-CT-2"].disagreement("baseline", "other") == -1.0
        only_test = rv.exam_rows(ws, ["baseline"], roles=("unlabeled",))
        assert [r.exam for r in only_test] == ["KAG-0001"]


def test_difference_summary_names_lesions_and_false_positives():
    ref = np.zeros((6, 20, 20), bool)
    ref[1, 2:5, 2:5] = True  # lesion 1: only B finds it
    ref[4, 10:14, 10:14] = True  # lesion 2: both find it
    a = np.zeros_like(ref)
    b = np.zeros_like(ref)
    a[4, 11:13, 11:13] = b[4, 10:14, 10:14] = True
    b[1, 3, 3] = True
    a[2, 15:18, 15:18] = True  # an FP of A only
    a[5, 0, 0] = b[5, 0, 0] = True  # an FP of both: not a difference
    line = rv.difference_summary("baseline", "ss", ref, a, b, (5.0, 0.5, 0.5), 0.4, 0.9)
    assert "ss finds 1 lesion baseline misses (slice 2, 0.01 mL)" in line
    assert "baseline alone has 1 false-positive region (slice 3)" in line
    assert "Dice 0.21 vs 0.79" in line and line.endswith("exam score 0.400 vs 0.900")
    same = rv.difference_summary("a", "b", ref, b, b, (1, 1, 1))
    assert same.startswith("a and b mark the same 3 regions")
    none = rv.difference_summary("a", "b", None, a, b, (1, 1, 1))
    assert "a marks 1 region b does not (slice 3" in none and "Dice" not in none
    blank = np.zeros_like(ref)
    assert rv.difference_summary("a", "b", None, blank, blank, (1, 1, 1)).startswith(
        "neither a nor b")
