"""Scores that rank and are calibrated (issue 10): the patch head trained against the configured
prior, the temperature and the aggregation fitted on the validation role only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ictview.store.workspace import Workspace
from training.calibration import (
    calibrate,
    collect,
    fit_temperature,
    nll,
    validation_exams,
)
from training.config import load_config
from training.data.exam_cache import ExamCache
from training.data.sources import cls_prior_weights, labeled_source
from training.inference import Predictor
from training.losses import patch_target
from training.checkpoints import checkpoint_path
from training.trainer import Trainer

TINY = ["train.epochs=1", "train.steps_per_epoch=4", "train.batch_size=4", "augment.crop=32",
        "train.val_every_epochs=0", "train.log_every_steps=2",
        'inference.calibration="temperature"', 'inference.exam_score="auto"',
        'inference.slice_score="auto"']


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 6, 20000)
    y = rng.random(logits.size) < 1 / (1 + np.exp(-logits / 3.0))
    t = fit_temperature(logits, y)
    assert t == pytest.approx(3.0, rel=0.08)
    assert nll(logits, y, t) <= nll(logits, y, 1.0)
    assert fit_temperature(logits, np.zeros(logits.size)) == 1.0, "one class: nothing to fit"


@pytest.fixture(scope="module")
def calibrated(tiny_workspace, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("cal") / "ws"
    shutil.copytree(tiny_workspace, root)
    cfg = load_config("tiny", TINY)
    Trainer(root, "t", cfg, quiet=True).fit()
    return root, cfg


def test_calibration_is_fitted_on_the_validation_role_only(calibrated) -> None:
    root, cfg = calibrated
    ck = torch.load(checkpoint_path(root, "t", "final"), map_location="cpu", weights_only=False)
    cal = ck["calibration"]
    stored = json.loads((root / "runs" / "t" / "calibration.json").read_text())
    assert stored == json.loads(json.dumps(cal))
    with Workspace.open(root) as ws:
        val = [e.name for e in ws.exams(role="validation")]
        others = {e.name for r in ("labeled", "unlabeled", "test") for e in ws.exams(role=r)}
        assert cal["role"] == "validation"
        assert cal["exams"] == validation_exams(ws, "reference") == val
        assert not set(cal["exams"]) & others
        # recomputed independently from exactly those exams with the final weights
        pred = Predictor.from_checkpoint(checkpoint_path(root, "t", "final"),
                                         overrides=['inference.slice_score="auto"'])
        logits, labels = collect(pred, ws, val, "reference")
        y = np.concatenate(labels)
        assert int(y.sum()) == cal["positive_slices"] and y.size == cal["slices"]
        for kind, rec in cal["by_slice_score"].items():
            assert rec["temperature"] == pytest.approx(
                fit_temperature(np.concatenate(logits[kind]), y), rel=1e-4)
        # the same fit, whatever the test site's labels say: a changed test label changes nothing
        labeled = set(ws.labelset_exams("reference"))
        test_exam = next(e.name for e in ws.exams(role="test") if e.name in labeled)
        lab = ws.load_labels("reference", test_exam)
        ws.save_labels("reference", test_exam, np.where(lab == 0, 4, 0).astype(np.uint8),
                       rater="test")
        again = calibrate(pred, ws, "reference")
    assert again["temperature"] == pytest.approx(cal["temperature"], rel=1e-6)
    assert again["slice_score"] == cal["slice_score"]


def test_predictions_apply_the_stored_temperature_and_choice(calibrated) -> None:
    root, cfg = calibrated
    ck_path = checkpoint_path(root, "t", "final")
    cal = torch.load(ck_path, map_location="cpu", weights_only=False)["calibration"]
    pred = Predictor.from_checkpoint(ck_path)
    assert pred.temperature == pytest.approx(cal["temperature"])
    assert pred.settings.exam_score == cal["exam_score"]
    assert pred.settings.slice_score == cal["slice_score"]
    with Workspace.open(root) as ws:
        hu = ws.read_volume(ws.exams(role="test")[0].name).hu
    from ictview.core.brain_mask import strip_skull

    masked, mask = strip_skull(hu, pred.brain)
    _, logits = pred.forward_masked(masked, mask)
    p = pred.predict_masked(masked, mask)
    np.testing.assert_allclose(p.slice_scores, 1 / (1 + np.exp(-logits / pred.temperature)),
                               rtol=1e-5)
    off = Predictor.from_checkpoint(ck_path, overrides=['inference.calibration="off"'])
    assert off.temperature == 1.0


@pytest.mark.parametrize("prior", [0.1, "true"])
def test_patch_label_prior_in_training_equals_the_configured_one(tiny_workspace, prior) -> None:
    """Over many real batches (crops rendered, patch labels from the rendered pixels), the
    importance-weighted rate of positive patches is the configured prior, although the sampler
    draws half of the slices among positive ones."""
    value = '"true"' if prior == "true" else str(prior)
    cfg = load_config("tiny", ["augment.crop=none", "data.slice_positive_fraction=0.5",
                               f"data.cls_prior={value}"])
    with Workspace.open(tiny_workspace) as ws:
        src = labeled_source(ws, ExamCache(ws, cfg.preprocess), cfg)
    pr = cls_prior_weights(src, cfg.data.cls_prior)
    true_rate = float(src.positive.mean())
    expected = 0.1 if prior == 0.1 else true_rate
    assert pr.prior == pytest.approx(expected) and pr.sampled == 0.5
    from training.data.batches import BatchMaker
    from training.windows import resolve_windows

    maker = BatchMaker([src], [1.0], 8, 0, resolve_windows(cfg.model.windows))
    wy = w = n_pos = n = 0.0
    for step in range(150):
        for g in maker.batch(step):
            y = patch_target(g.labels).numpy()
            wt = np.where(y > 0.5, pr.w_pos, pr.w_neg)
            wy += float((wt * y).sum())
            w += float(wt.sum())
            n_pos += float(y.sum())
            n += y.size
    assert n_pos / n == pytest.approx(0.5, abs=0.06), "the sampler over-draws positives"
    assert wy / w == pytest.approx(expected, abs=0.03)
    assert w / n == pytest.approx(1.0, abs=0.1), "importance weights average to one"


def test_trainer_records_and_uses_the_configured_prior(tiny_workspace_copy) -> None:
    cfg = load_config("tiny", ["train.epochs=1", "train.steps_per_epoch=1", "augment.crop=32",
                               "train.val_every_epochs=0", "data.cls_prior=0.2"])
    Trainer(tiny_workspace_copy, "p", cfg, quiet=True).fit()
    ck = torch.load(checkpoint_path(tiny_workspace_copy, "p", "final"), map_location="cpu",
                    weights_only=False)
    recorded = ck["sources"][0]["cls_prior"]
    assert recorded["prior"] == 0.2
    assert recorded["w_pos"] == pytest.approx(0.2 / recorded["sampled"])
    assert recorded["w_neg"] == pytest.approx(0.8 / (1 - recorded["sampled"]))
