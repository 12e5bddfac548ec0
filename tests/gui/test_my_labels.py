"""Train with my labels (issue 16): a real `ictview-train finetune` + `evaluate` child
process on the tiny config (a few steps); when it finishes the review overlay, 'Start
from' and the queue switch to the new run (hot swap)."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.gui.annotate import model_assist as assist
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace

MICRO = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=4", "augment.crop=32",
         "train.val_every_epochs=1", "train.log_every_steps=1", "evaluate.n_boot=20"]


@pytest.mark.slow
def test_the_overlay_switches_to_the_new_run_when_the_fine_tune_finishes(window, qtbot):
    from training.config import load_config
    from training.trainer import Trainer

    from ictview.gui.annotate.train_my_labels import MyLabelsTraining

    win = window
    root = win.ws.root
    Trainer(root, "t", load_config("tiny", MICRO), quiet=True).fit()
    with Workspace.open(root) as ws:
        test = ws.exams(role="test")[0]
        prob = np.zeros((test.n_slices, test.rows, test.cols), np.float16)
        ws.write_prediction("t", test.name, Prediction(prob, prob.max((1, 2)).astype(
            np.float32), 0.0))  # what the overlay shows before: an empty map
        kag = ws.exams(role="unlabeled")[0].name
        ref = next(e for e in ws.labelset_exams("reference") if ws.exam(e).role == "labeled")
        ws.save_labels(win.own_labelset, kag, ws.load_labels("reference", ref), win.rater)
    review = win.panels.open("review")
    review.load_runs(prefer="t")
    review.set_run("t")
    assert review.open_exam(test.name)
    before = review.layer.prob.copy()
    job = MyLabelsTraining(win, overrides=MICRO, poll_ms=200)
    run = job.start()
    assert run == f"t-{win.own_labelset}-1" and job.running()
    with qtbot.waitSignal(job.finished, timeout=600_000) as sig:
        pass
    assert sig.args == [run, "finished"], win.last_error
    with Workspace.open(root) as ws:
        assert ws.run(run)["kind"] == "finetune" and ws.run(run)["parent"] == "t"
        new = ws.read_prediction(run, test.name).prob
        assert set(ws.predicted_exams(run)) >= {kag, test.name}  # every role: the queue ranks
    assert review.run == run and review.run_combo.currentText() == run
    review.open_exam(test.name)
    assert np.array_equal(review.layer.prob, new) and not np.array_equal(before, new)
    assert assist.queue_run(win) == run
    q = assist.open_next(win)
    assert q is not None and q != kag  # the rater's labelled exam is not served
    win.panels.close("review")
