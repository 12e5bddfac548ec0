"""The study end to end on the tiny workspace (a few steps per run), and what each run uses.

One micro study (every run of the paper, 3 steps each) is shared by the module: it proves the
runs leave checkpoints, predictions, progress logs and metrics; the other tests then check
that the student starts from the teacher and that each variant trains on exactly its labels.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ictview.store.workspace import Workspace
from training.config import load_config
from training.data.batches import BatchMaker
from training.checkpoints import checkpoint_path
from training.data.exam_cache import ExamCache
from training.validation import exam_reference
from training.inference import Predictor
from training.progress import read_progress
from training.ranker import oracle_pixel_labels, pseudo_labels, threshold_pixels
from training.study import run_study
from training.trainer import (
    ImageOracleTrainer,
    NoRankerTrainer,
    NonFiniteLoss,
    PixelOracleTrainer,
    StudentTrainer,
    Trainer,
)
from training.windows import resolve_windows

MICRO = [
    "train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=4", "augment.crop=32",
    "train.val_every_epochs=1", "train.log_every_steps=1", "evaluate.n_boot=20",
    'study.contrast_variants=["none"]',
]


@pytest.fixture(scope="module")
def study(tiny_workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("study") / "ws"
    shutil.copytree(tiny_workspace, root)
    cfg = load_config("tiny", MICRO)
    summary = run_study(root, cfg, quiet=True)
    return root, cfg, summary


MODEL_RUNS = {"baseline": "teacher", "baseline-contrast-none": "teacher", "ss": "student",
              "no-ranker": "no-ranker", "image-oracle": "image-oracle",
              "pixel-oracle": "pixel-oracle"}


def test_study_leaves_every_run_in_the_workspace(study) -> None:
    root, _, summary = study
    assert set(summary["runs"]) == set(MODEL_RUNS)
    assert summary["pseudolabel_runs"] == ["baseline-pl"]
    with Workspace.open(root) as ws:
        runs = {r["name"]: r for r in ws.runs()}
        assert runs["study"]["status"] == "finished"
        assert runs["baseline-pl"]["kind"] == "pseudolabel"
        assert runs["baseline-pl"]["parent"] == "baseline"
        unlabeled = [e.name for e in ws.exams(role="unlabeled")]
        assert ws.predicted_exams("baseline-pl") == unlabeled
        evaluated = sorted(e.name for r in ("validation", "test") for e in ws.exams(role=r))
        for name, kind in MODEL_RUNS.items():
            assert runs[name]["kind"] == kind and runs[name]["status"] == "finished"
            d = ws.run_dir(name)
            for ck in ("latest", "best", "final"):
                assert (d / "checkpoints" / f"{ck}.pt").is_file(), (name, ck)
            assert (d / "config.toml").is_file()
            events = [e["event"] for e in read_progress(d / "progress.jsonl")]
            assert events[0] == "start" and "done" in events and "step" in events
            assert ws.predicted_exams(name) == evaluated
            metrics = json.loads((d / "metrics.json").read_text())
            assert set(metrics["roles"]) == {"validation", "test"}
            test = metrics["roles"]["test"]
            assert test["exam"]["reference"] == ["reads-majority"]
            assert 0 <= test["exam"]["auc"]["value"] <= 1
            assert "ap" in test["pixel"] and "dice" in test["pixel"]
            assert metrics["dice_threshold_source"] in ("validation", "config")
            if kind != "teacher":
                assert runs[name]["parent"] == "baseline"


def test_predictions_have_the_exam_shapes(study) -> None:
    root, _, _ = study
    with Workspace.open(root) as ws:
        for e in ws.exams(role="test"):
            p = ws.read_prediction("ss", e.name)
            assert p.prob.shape == (e.n_slices, e.rows, e.cols) and p.prob.dtype == np.float16
            assert p.slice_scores.shape == (e.n_slices,)
            assert p.exam_score == pytest.approx(float(p.slice_scores.max()))
            assert 0 <= p.prob.min() and p.prob.max() <= 1


def test_student_starts_from_the_teachers_weights(study) -> None:
    root, cfg, _ = study
    teacher = torch.load(checkpoint_path(root, "baseline", "final"), weights_only=False)["model"]
    t = StudentTrainer(root, "ss-init-check", cfg, parent="baseline", pseudolabel_run="baseline-pl",
                       init_checkpoint=checkpoint_path(root, "baseline", "final"), quiet=True)
    t.setup()
    try:
        start = t.model.state_dict()
        assert start.keys() == teacher.keys()
        assert all(torch.equal(start[k], teacher[k]) for k in teacher)
    finally:
        t.ws.close()
    trained = torch.load(checkpoint_path(root, "ss", "final"), weights_only=False)
    assert trained["parent"] == "baseline" and trained["pseudolabel_run"] == "baseline-pl"
    assert any(not torch.equal(trained["model"][k], teacher[k]) for k in teacher)
    # a teacher from scratch does not start there
    s = Trainer(root, "scratch-check", cfg, quiet=True)
    s.setup()
    try:
        assert any(not torch.equal(s.model.state_dict()[k], teacher[k]) for k in teacher
                   if teacher[k].dtype.is_floating_point)
    finally:
        s.ws.close()


def _sources(trainer_cls, root, cfg, pl="baseline-pl"):
    t = trainer_cls(root, "x", cfg, pseudolabel_run=pl, quiet=True)
    ws = Workspace.open(root)
    return ws, t.build_sources(ws, ExamCache(ws, cfg.preprocess))


def test_variants_train_on_exactly_their_labels(study) -> None:
    root, cfg, _ = study
    ws, (srcs, weights) = _sources(StudentTrainer, root, cfg)
    with ws:
        names = [e.name for e in ws.exams(role="unlabeled")]
        preds = [ws.read_prediction("baseline-pl", n) for n in names]
        image_labels = [ws.image_labels(n)[:, 0] for n in names]
        ref = {e.name: ws.load_labels("reference", e.name) for e in ws.exams(role="labeled")}
    probs, scores = [p.prob for p in preds], [p.slice_scores for p in preds]
    assert weights == [0.6, pytest.approx(0.4)]
    labeled, pseudo = srcs
    assert labeled.exams == list(ref) and all(
        np.array_equal(a, ref[n]) for n, a in zip(labeled.exams, labeled.labels))
    assert pseudo.exams == names and pseudo.cls_target is None
    r = cfg.ranker
    expected, _, _ = pseudo_labels(probs, scores, r.top_percent, r.k_hi, r.k_lo)
    assert all(np.array_equal(a, b) for a, b in zip(pseudo.labels, expected))

    _, (srcs, _) = _sources(NoRankerTrainer, root, cfg)
    assert all(np.array_equal(a, threshold_pixels(p, r.k_hi, r.k_lo))
               for a, p in zip(srcs[1].labels, probs))

    _, (srcs, _) = _sources(PixelOracleTrainer, root, cfg)
    oracle = srcs[1]
    for view, p, il, t in zip(oracle.labels, probs, image_labels, oracle.cls_target):
        a = np.asarray(view)  # sources read a slice at a time: the whole exam, to compare
        assert np.array_equal(a, oracle_pixel_labels(p, il, r.k_hi, r.k_lo))
        assert not a[il == 0].any(), "reference-negative images are all background"
        assert np.array_equal(t, il.astype(np.float32))

    _, (srcs, _) = _sources(ImageOracleTrainer, root, cfg, pl=None)
    img = srcs[1]
    assert img.augment.crop is None, "the whole slice is the patch"
    assert all((np.asarray(a) == 255).all() for a in img.labels), \
        "no pixel loss on the unlabeled set"
    assert all(np.array_equal(t, il.astype(np.float32))
               for t, il in zip(img.cls_target, image_labels))
    assert np.array_equal(srcs[0].labels[0], ref[srcs[0].exams[0]])


def test_image_oracle_batch_has_pixel_loss_on_labeled_only(study) -> None:
    root, cfg, _ = study
    ws, (srcs, weights) = _sources(ImageOracleTrainer, root, cfg, pl=None)
    ws.close()
    maker = BatchMaker(srcs, weights, 10, 0, resolve_windows(cfg.model.windows))
    groups = maker.batch(0)
    by_source = {int(g.sources[0]): g for g in groups}
    assert set(by_source) == {0, 1}
    whole, patch = by_source[1], by_source[0]
    assert whole.images.shape[-2:] == (128, 128) and patch.images.shape[-2:] == (32, 32)
    assert (whole.labels == 255).all() and set(whole.cls_target.tolist()) <= {0.0, 1.0}
    assert (patch.cls_target == -1).all()
    t = ImageOracleTrainer(root, "grad-check", cfg, quiet=True)
    model = t.build_model()
    from training.losses import patchfcn_loss

    out = model(whole.images)
    seg = out.seg_logits.detach().requires_grad_(True)
    terms = patchfcn_loss(seg, out.cls_logits, whole.labels, whole.cls_target)
    terms.seg.backward()
    assert terms.seg.item() == 0.0 and (seg.grad == 0).all()
    assert terms.cls.item() > 0


class _PoisonedTrainer(Trainer):
    """A teacher whose loss turns NaN at step 5 (as a diverging run would)."""

    def compute_loss(self, group):
        terms = super().compute_loss(group)
        if self.step >= 4:
            return terms._replace(total=terms.total * float("nan"))
        return terms


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(study) -> None:
    root, cfg, _ = study
    cfg = load_config("tiny", MICRO + ["train.epochs=3", "train.steps_per_epoch=2",
                                       "train.val_every_epochs=0"])
    t = _PoisonedTrainer(root, "nan-run", cfg, quiet=True)
    with pytest.raises(NonFiniteLoss, match="nan-run: loss became nan between steps 4 and 5"):
        t.fit()
    latest = torch.load(checkpoint_path(root, "nan-run", "latest"), weights_only=False)
    assert latest["step"] == 4
    assert all(torch.isfinite(v).all() for v in latest["model"].values() if v.is_floating_point())
    assert not checkpoint_path(root, "nan-run", "final").exists()
    with Workspace.open(root) as ws:
        assert ws.run("nan-run")["status"] == "failed"
    events = read_progress(root / "runs" / "nan-run" / "progress.jsonl")
    assert events[-1]["event"] == "error" and "nan" in events[-1]["message"]


def test_cli_nan_exit_code_and_one_line(study, capsys) -> None:
    from training.cli import main

    root, _, _ = study
    rc = main(["teacher", "-w", str(root), "-c", "tiny", "--run", "diverge", "--quiet",
               *[a for s in MICRO for a in ("--set", s)], "--set", "optim.lr=1e30"])
    err = capsys.readouterr().err.strip()
    assert rc == 3
    assert len(err.splitlines()) == 1 and "loss became" in err


def test_whole_slice_patch_score_equals_the_patch_head(study) -> None:
    """With the crop as large as the image, the dense patch score is the model's own head."""
    root, cfg, _ = study
    pred = Predictor.from_checkpoint(checkpoint_path(root, "baseline", "final"))
    with Workspace.open(root) as ws:
        name = ws.exams(role="test")[0].name
        hu = ws.read_volume(name).hu
    from ictview.core.brain_mask import strip_skull

    masked, mask = strip_skull(hu, pred.brain)
    x = pred._prepare(torch.from_numpy(masked[:4]))
    pred.crop = x.shape[-1]
    prob, logit = pred._whole(x)
    with torch.no_grad():
        out = pred.model(x)
    assert torch.allclose(logit, out.cls_logits, atol=1e-5)
    full = pred.predict_volume(hu)
    assert (full.prob[~mask] == 0).all(), "no probability outside the brain"
    pred.settings.mode = "sliding"
    slid = pred.predict_volume(hu)
    assert slid.prob.shape == full.prob.shape and slid.slice_scores.shape == full.slice_scores.shape


def test_exam_reference_sources(study) -> None:
    root, _, _ = study
    with Workspace.open(root) as ws:
        test = ws.exams(role="test")[0].name
        val = ws.exams(role="validation")[0].name
        assert exam_reference(ws, test)[1] == "reads-majority"
        y, src = exam_reference(ws, val)
        assert src == "reference-pixels"
        assert y == int(((ws.load_labels("reference", val) % 255) > 0).any())


def test_exam_loader_processes_give_the_inline_result(study) -> None:
    from training.data.exam_loader import iter_masked

    root, cfg, _ = study
    with Workspace.open(root) as ws:
        names = [e.name for e in ws.exams(role="test")][:3]
    inline = list(iter_masked(root, names, cfg.preprocess, workers=0))
    pooled = list(iter_masked(root, names, cfg.preprocess, workers=1))
    assert [n for n, _, _ in pooled] == names
    for (_, a, ma), (_, b, mb) in zip(inline, pooled):
        assert np.array_equal(a, b) and np.array_equal(ma, mb)


def test_predicting_into_a_run_in_use_is_refused_and_leaves_it_alone(study) -> None:
    """pseudolabel/evaluate take the same run lock as training (a held lock: this process)."""
    from ictview.errors import IctviewError
    from ictview.store.run_lock import RunLock
    from training.pseudolabel import pseudolabel

    root, _, summary = study
    out = root / "runs" / "baseline-pl-busy"
    with RunLock(out, "baseline-pl-busy", "ictview-train pseudolabel"):
        with pytest.raises(IctviewError, match="run 'baseline-pl-busy' is in use by pid"):
            pseudolabel(root, "baseline", "baseline-pl-busy", quiet=True)
    assert not (root / "predictions" / "baseline-pl-busy").exists()
    # the study's run itself was locked while it ran and is free now
    assert not (root / "runs" / "study" / ".lock").exists()
    assert not (root / "runs" / "baseline" / ".lock").exists()
