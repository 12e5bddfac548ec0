"""Evaluation: a run's predictions on the validation / test roles and its metrics.json.

``evaluate`` predicts every exam of ``evaluate.roles`` with the run's checkpoint into
WS/predictions/<run>/ (the GUI reviews them there), then writes WS/runs/<run>/metrics.json,
computed with ``ictview.stats`` (the same code as ``ictview-train report`` and the GUI):

- exam level, per role: the exam reference is the readers' majority ("ICH") where the exam has
  reads (test), otherwise "any labeled hemorrhage pixel" in the reference labelset
  (validation); exam AUC with a percentile bootstrap CI, sensitivity / specificity at the
  highest threshold reaching ``target_sensitivity`` (paper 0.92) on that role; on reads,
  per-subtype AUC on isolated-subtype exams;
- pixel level, on the role's exams with reference pixel labels (each slice is an image): pixel
  AP (data-set level, exact for float16 probabilities) and Dice at a fixed threshold: the
  Dice-maximising threshold chosen on the validation role, applied unchanged to the test role
  (``evaluate.dice_threshold`` when there is no validation pixel set); bootstrap CIs over
  images.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ictview.core.labels import FINDINGS
from ictview.errors import IctviewError
from ictview.stats import (
    PixelStats,
    bootstrap_exams,
    bootstrap_pixels,
    exam_auc,
    operating_point,
    subtype_auc,
)
from ictview.store.workspace import Workspace
from training import distributed as D
from training.config import Config, EvaluateSection, InferenceSection
from training.prediction_run import run_predictions
from training.validation import exam_reference


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def role_metrics(
    ws: Workspace, run: str, role: str, ev: EvaluateSection, dice_threshold: float | None
) -> tuple[dict, float | None]:
    """Metrics of one role from the stored predictions; returns (metrics, chosen threshold)."""
    # blinding (ictview/store/read_guard.py): refuse rather than evaluate on fewer exams
    ws.guard.require_unblinded([e.name for e in ws.exams(role=role)],
                               f"evaluating run '{run}' on the {role} exams")
    have = set(ws.predicted_exams(run))
    exams = [e.name for e in ws.exams(role=role) if e.name in have]
    out: dict = {"exams_predicted": len(exams)}
    ys, ss, names, sources = [], [], [], set()
    for name in exams:
        y, src = exam_reference(ws, name, ev.labelset)
        if y is None:
            continue
        ys.append(y)
        ss.append(ws.read_prediction(run, name, pixels=False).exam_score)
        names.append(name)
        sources.add(src)
    y, s = np.array(ys, dtype=int), np.array(ss, dtype=np.float64)
    exam = {"n": len(ys), "positive": int(y.sum()) if len(ys) else 0,
            "reference": sorted(sources), "auc": exam_auc(y, s).to_dict()}
    if len(ys):
        op = operating_point(y, s, ev.target_sensitivity)
        exam["operating_point"] = op.to_dict()
        thr = op.threshold if math.isfinite(op.threshold) else None
        boot = bootstrap_exams(y, {run: s}, n_boot=ev.n_boot, seed=0,
                               thresholds={run: thr} if thr is not None else None)
        exam["bootstrap"] = boot.to_dict(pairs=[])
        if "reads-majority" in sources:
            subtypes = {code: np.array([ws.exam_label(n, code) or 0 for n in names])
                        for code in FINDINGS[1:]}
            exam["subtype_auc"] = {k: v.to_dict() for k, v in subtype_auc(y, s, subtypes).items()}
    out["exam"] = exam

    pix_exams = [n for n in ws.labelset_exams(ev.labelset) if n in set(exams)]
    chosen = None
    if pix_exams:
        vols = ((n, ws.read_prediction(run, n).prob, ws.load_labels(ev.labelset, n))
                for n in pix_exams)
        stats = PixelStats.from_volumes(vols)
        pixel: dict = {"exams": len(pix_exams), "images": stats.n_images,
                       "ap": stats.average_precision().to_dict()}
        if role == "validation":
            choice = stats.best_dice_threshold("validation")
            pixel["best_dice_threshold"] = choice.to_dict()
            if math.isfinite(choice.threshold):
                chosen = choice.threshold
        thr = dice_threshold if dice_threshold is not None else (chosen if chosen is not None
                                                                 else ev.dice_threshold)
        pixel["dice_threshold"] = thr
        pixel["dice"] = stats.dice(thr).to_dict()
        boot = bootstrap_pixels({run: stats}, dice_thresholds={run: thr}, n_boot=ev.n_boot, seed=0)
        pixel["bootstrap"] = boot.to_dict(pairs=[])
        out["pixel"] = pixel
    return out, chosen


def compute_metrics(
    ws: Workspace, run: str, ev: EvaluateSection, extra: dict | None = None
) -> dict:
    roles = sorted(ev.roles, key=lambda r: r != "validation")  # the threshold comes first
    result = {"run": run, "roles": {}, **(extra or {})}
    threshold = None
    for role in roles:
        metrics, chosen = role_metrics(ws, run, role, ev, threshold)
        if role == "validation" and chosen is not None:
            threshold = chosen
        result["roles"][role] = metrics
    result["dice_threshold_source"] = "validation" if threshold is not None else "config"
    return _finite(result)


def evaluate(
    ws_root: Path | str,
    run: str,
    *,
    cfg: Config | None = None,
    checkpoint: str = "final",
    settings: InferenceSection | None = None,
    overrides: list[str] | None = None,
    device: str = "auto",
    json_progress: bool = False,
    overwrite: bool = True,
    quiet: bool = False,
) -> dict | None:
    """Predictions for ``evaluate.roles`` + WS/runs/<run>/metrics.json (rank 0 returns it)."""
    ev = cfg.evaluate if cfg is not None else EvaluateSection()

    def exams(ws: Workspace) -> list[str]:
        # from run_predictions' workspace: under torchrun, each rank's view of one snapshot
        if ws.run(run) is None:
            raise IctviewError(f"{ws_root}: no run named '{run}'")
        names = [e.name for role in ev.roles for e in ws.exams(role=role)]
        if not names:
            raise IctviewError(f"{ws_root}: no exams with roles {', '.join(ev.roles)} to evaluate")
        return names

    summary = run_predictions(ws_root, run, run, exams, kind="evaluate", checkpoint=checkpoint,
                              settings=settings, overrides=overrides, device=device,
                              json_progress=json_progress,
                              overwrite=overwrite, quiet=quiet)
    info, _ = D.init(device)
    if not info.is_main:
        return None
    with Workspace.open(ws_root) as ws:
        metrics = compute_metrics(ws, run, ev, {"checkpoint": checkpoint, "prediction": summary})
        path = ws.run_dir(run) / "metrics.json"
        tmp = path.with_name("metrics.json.tmp")
        tmp.write_text(json.dumps(metrics, indent=1))
        os.replace(tmp, path)
    return metrics
