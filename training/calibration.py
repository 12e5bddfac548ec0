"""Calibration of slice scores and the choice of exam aggregation, on the validation role only.

At the end of training (``inference.calibration = "temperature"``) the trained model predicts
every exam of the validation role, and:

1. Temperature: one T > 0 minimises the binary cross-entropy of sigmoid(logit / T) against
   the slice labels (a slice is positive when its reference pixel label has any hemorrhage
   pixel). T never changes a ranking; it makes a score of 0.9 mean roughly "9 in 10 such
   slices bleed" at the validation site, and lets noisy-or / top-k aggregations combine
   probabilities rather than over-confident numbers.
2. Slice score (``inference.slice_score = "auto"``): the patch head ("cls") or the highest
   pixel probability ("max_pixel"), each with its own temperature; the better by validation
   exam AUC.
3. Exam aggregation (``inference.exam_score = "auto"``): of ``EXAM_SCORES`` (max, mean of the
   top 2 / 3 slices, noisy-or), the one with the highest validation exam AUC on the calibrated
   slice scores; ties go to the earlier (simpler) one. The validation role is the only one the
   paper tunes on; the test site is never read here.

The result is a plain dict stored in the final checkpoint (``calibration``) and in
WS/runs/<run>/calibration.json; ``Predictor.from_checkpoint`` applies it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from ictview.core.labels import IGNORE
from ictview.core.brain_mask import strip_skull
from ictview.stats import exam_auc
from ictview.store.workspace import Workspace
from training.config import EXAM_SCORES, SLICE_SCORES
from training.inference import Predictor, aggregate_exam

CALIBRATION_ROLE = "validation"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of sigmoid(logits / T) against 0/1 labels."""
    z = np.asarray(logits, np.float64) / temperature
    y = np.asarray(y, np.float64)
    # log(1 + exp(-|z|)) + max(z, 0) - y z: stable for any z
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.05, 100] minimising ``nll``; 1.0 when the labels hold one class only."""
    y = np.asarray(y)
    if y.size == 0 or y.min() == y.max():
        return 1.0
    res = minimize_scalar(lambda lt: nll(logits, y, math.exp(lt)), bounds=(math.log(0.05),
                          math.log(100.0)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


def validation_exams(ws: Workspace, labelset: str) -> list[str]:
    """Exams of the calibration role with reference pixel labels (the only ones read)."""
    role = [e.name for e in ws.exams(role=CALIBRATION_ROLE)]
    # blinding (ictview/store/read_guard.py): refuse rather than calibrate on fewer exams
    ws.guard.require_unblinded(role, "calibrating on the validation exams")
    labeled = set(ws.labelset_exams(labelset))
    return [e.name for e in ws.exams(role=CALIBRATION_ROLE) if e.name in labeled]


def collect(predictor: Predictor, ws: Workspace, exams: Sequence[str],
            labelset: str) -> tuple[dict[str, list[np.ndarray]], list[np.ndarray]]:
    """Per slice-score kind, per exam: slice logits (before any temperature); per exam the
    0/1 slice labels. The only place calibration reads labels."""
    logits: dict[str, list[np.ndarray]] = {k: [] for k in SLICE_SCORES}
    labels = []
    for name in exams:
        lab = ws.load_labels(labelset, name)
        masked, mask = strip_skull(ws.read_volume(name).hu, predictor.brain)
        _, both = predictor.forward_both(masked, mask)
        for k in SLICE_SCORES:
            logits[k].append(both[k].astype(np.float64))
        labels.append(((lab > 0) & (lab != IGNORE)).reshape(lab.shape[0], -1).any(1))
    return logits, labels


def choose_exam_score(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> tuple[str, dict]:
    """The aggregation with the best exam AUC (ties: earlier in EXAM_SCORES) and every AUC."""
    y = np.array([int(lab.any()) for lab in labels])
    aucs: dict[str, float | None] = {}
    for how in EXAM_SCORES:
        s = np.array([aggregate_exam(v, how) for v in scores])
        a = exam_auc(y, s).value if 0 < y.sum() < y.size else math.nan
        aucs[how] = None if not math.isfinite(a) else float(a)
    finite = [h for h in EXAM_SCORES if aucs[h] is not None]
    best = max(finite, key=lambda h: (aucs[h], -EXAM_SCORES.index(h))) if finite else "max"
    return best, aucs


def calibrate(predictor: Predictor, ws: Workspace, labelset: str = "reference") -> dict | None:
    """Fit the temperature and choose the exam aggregation on the validation role.

    The slice score kind is the predictor's ``settings.slice_score`` unless the run's config
    says ``auto`` (``requested``): then both kinds are calibrated and the one whose best
    aggregation has the higher validation exam AUC is kept (ties: cls, the paper's image
    probability). None when the workspace has no pixel-labeled validation exam (nothing to fit
    on: the run keeps T = 1, cls and exam score "max")."""
    exams = validation_exams(ws, labelset)
    if not exams:
        return None
    logits, labels = collect(predictor, ws, exams, labelset)
    flat_y = np.concatenate(labels).astype(np.float64)
    kinds = SLICE_SCORES if predictor.requested_slice_score == "auto" else (
        predictor.settings.slice_score,)
    by_kind = {}
    for k in kinds:
        flat_l = np.concatenate(logits[k])
        t = fit_temperature(flat_l, flat_y)
        chosen, aucs = choose_exam_score([_sigmoid(lg / t) for lg in logits[k]], labels)
        by_kind[k] = {"temperature": t, "exam_score": chosen, "exam_auc_by_aggregation": aucs,
                      "nll_before": nll(flat_l, flat_y, 1.0), "nll_after": nll(flat_l, flat_y, t)}
    best = max(kinds, key=lambda k: (by_kind[k]["exam_auc_by_aggregation"][
        by_kind[k]["exam_score"]] or -1.0, -kinds.index(k)))
    return {
        "method": "temperature",
        "role": CALIBRATION_ROLE,
        "labelset": labelset,
        "slice_score": best,
        **by_kind[best],
        "by_slice_score": by_kind,
        "slices": int(flat_y.size),
        "positive_slices": int(flat_y.sum()),
        "exams": list(exams),
    }
