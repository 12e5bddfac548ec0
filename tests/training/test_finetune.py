"""Train with my labels (issue 16): a fine-tune starts from the model's weights and adds
the rater's finished labels (never a validation or test exam's) to the labeled set."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ictview.store.workspace import Workspace
from training.config import load_config
from training.finetune import FinetuneTrainer, labeled_set
from training.checkpoints import checkpoint_path
from training.trainer import Trainer

MICRO = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=4", "augment.crop=32",
         "train.val_every_epochs=1", "train.log_every_steps=1", "evaluate.n_boot=20"]


@pytest.fixture(scope="module")
def teacher(tiny_workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft") / "ws"
    shutil.copytree(tiny_workspace, root)
    cfg = load_config("tiny", MICRO)
    Trainer(root, "t", cfg, quiet=True).fit()
    with Workspace.open(root) as ws:
        ref = ws.labelset_exams("reference")
        lab = ws.load_labels("reference", next(e for e in ref
                                              if ws.exam(e).role == "labeled"))
        kag = ws.exams(role="unlabeled")[0].name
        val = ws.exams(role="validation")[0].name
        for exam in (kag, val):  # the rater labels an unlabeled and a validation exam
            ws.save_labels("rater-ana", exam, lab.copy(), "ana")
    return root, cfg, kag, val


def test_the_labeled_set_adds_the_raters_exams_but_no_validation_exam(teacher):
    root, cfg, kag, val = teacher
    with Workspace.open(root) as ws:
        pairs = dict(labeled_set(ws, "reference", ["rater-ana"]))
        labeled = {e for e in ws.labelset_exams("reference") if ws.exam(e).role == "labeled"}
    assert pairs[kag] == "rater-ana" and val not in pairs
    assert labeled <= set(pairs) and all(pairs[e] == "reference" for e in labeled)


def test_finetune_starts_from_the_model_and_trains_on_the_raters_labels(teacher):
    root, cfg, kag, val = teacher
    ft = FinetuneTrainer(root, "t-ft", cfg, init_checkpoint=checkpoint_path(root, "t", "final"),
                         parent="t", extra_labelsets=["rater-ana"], quiet=True)
    ft.fit()
    src = ft.sources_summary[0] if ft.sources_summary else {}
    with Workspace.open(root) as ws:
        run = ws.run("t-ft")
    assert run["kind"] == "finetune" and run["parent"] == "t" and run["status"] == "finished"
    assert src.get("rater_exams") == 1 and kag in ft.maker.sources[0].exams
    # started from the teacher: a fresh model would be far from it after 2 steps
    a = torch.load(checkpoint_path(root, "t", "final"), map_location="cpu", weights_only=False)["model"]
    b = torch.load(checkpoint_path(root, "t-ft", "final"), map_location="cpu", weights_only=False)["model"]
    k = next(k for k in a if a[k].dtype.is_floating_point and a[k].ndim == 4)
    assert float((a[k] - b[k]).abs().max()) < float(a[k].abs().max())
    assert not np.allclose(a[k].numpy(), 0)
