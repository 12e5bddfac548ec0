"""Start from a model in a real workspace (issue 16): the run's prediction, read through
the read guard, becomes the exam's starting labels; each save stores the edit effort."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.annotation import AnnotationModel, rater_labelset
from ictview.core.brain_mask import brain_mask
from ictview.core.proposal import UNCLASSIFIED, edit_effort
from ictview.errors import IctviewError
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from ictview.study.model_start import resume_proposal, start_from_model

LS = rater_labelset("ana")


@pytest.fixture
def predicted(tiny_workspace_copy):
    """Run 'r' on a labeled exam: a 0.9 blob of 3x5x5 inside the brain and a 0.9 speck."""
    with Workspace.open(tiny_workspace_copy, login="ana") as ws:
        exam = ws.exams(role="labeled")[0].name
        hu = ws.read_volume(exam).hu
        brain = brain_mask(hu)
        z, y, x = (int(v) for v in np.argwhere(brain).mean(axis=0))
        prob = np.zeros(hu.shape, np.float16)
        prob[z - 1:z + 2, y - 2:y + 3, x - 2:x + 3] = 0.9
        zz, yy, xx = np.argwhere(brain)[0]
        prob[zz, yy, xx] = 0.9
        ws.create_run("r", "teacher", {})
        ws.write_prediction("r", exam, Prediction(prob, prob.max((1, 2)).astype(np.float32),
                                                  0.9))
    return tiny_workspace_copy, exam, (z, y, x)


def test_start_from_a_model_records_effort_on_each_save(predicted):
    root, exam, (z, y, x) = predicted
    with Workspace.open(root, login="ana") as ws:
        m = AnnotationModel.open(ws, exam, LS, "ana")
        try:
            p = start_from_model(m, ws, "r", min_voxels=5)
            assert p.n == 1 and p.voxels == 75 and p.threshold == 0.5  # no metrics.json
            m.classify_component(z, y, x, value=4)
            m.begin_stroke(erase=True)
            m.paint_to(z, y, x)  # erase a dab
            m.end_stroke()
            assert m.flush(30)
            expected = edit_effort(np.where(p.components > 0, UNCLASSIFIED, 0), m.labels)
        finally:
            m.close()
        row = ws.effort(LS)[0]
        assert row["exam"] == exam and row["run"] == "r" and row["proposal_voxels"] == 75
        assert row["dice"] == pytest.approx(expected["dice"]) and row["dice"] < 1
        assert row["added"] == expected["added"] and row["removed"] == expected["removed"]
        assert row["strokes"] == 2
        saved = ws.load_labels(LS, exam)
        erased = expected["removed"]["unclassified"] - expected["added"]["IPH"]
        assert erased > 0 and (saved != 0).sum() == 75 - erased
        assert set(np.unique(saved)) <= {0, 4}
        # reopening finds its proposal again: components stay clickable, effort goes on
        m = AnnotationModel.open(ws, exam, LS, "ana")
        try:
            assert resume_proposal(m, ws) is not None
            assert m.component_at(z, y, x) == 1
            m.begin_stroke()
            m.label_value = 2
            m.paint_to(z, y - 2, x - 2)
            m.end_stroke()
            assert m.flush(30)
        finally:
            m.close()
        assert ws.effort(LS)[0]["strokes"] == 3


def test_a_labelled_exam_does_not_start_from_a_model(predicted):
    root, exam, (z, y, x) = predicted
    with Workspace.open(root, login="ana") as ws:
        with AnnotationModel.open(ws, exam, "rater-ben", "ben") as m:
            m.paint_to(z, y, x)
            m.end_stroke()
            with pytest.raises(IctviewError, match="already has labels"):
                start_from_model(m, ws, "r")
        with AnnotationModel.open(ws, exam, LS, "ana") as m:
            with pytest.raises(IctviewError, match="no run named"):
                start_from_model(m, ws, "nope")


def test_effort_per_run_for_the_dashboard_and_the_report(predicted):
    from ictview.stats.effort import effort_by_run, effort_lines
    from ictview.stats.report_render import _effort

    root, exam, (z, y, x) = predicted
    with Workspace.open(root, login="ana") as ws:
        with AnnotationModel.open(ws, exam, LS, "ana", clock=iter(range(0, 10**6, 30)).__next__
                                  ) as m:
            start_from_model(m, ws, "r", min_voxels=5)
            m.classify_component(z, y, x, value=1)
        rows = effort_by_run(ws)
    assert [r["run"] for r in rows] == ["r"] and rows[0]["exams"] == 1
    assert rows[0]["median_dice"] == 1.0  # classifying keeps every voxel
    assert rows[0]["minutes_per_exam"] > 0
    assert "r" in effort_lines(rows)[1]
    heading, table = _effort({"assist_effort": rows})
    assert table.rows[0][:3] == ["r", "1", "1.000"]
