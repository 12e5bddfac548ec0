"""Exact classification and segmentation metrics (numpy only).

Everything is computed from *level counts*: the distinct score values in
ascending order with the number of positive and negative samples at each value.
The exact paths get them by one stable sort; the pixel path (pixel_stats) gets
them from per-image score histograms; the bootstrap gets them as resample-weighted
sums. One formula per metric serves all three, so they cannot drift apart.

Conventions (identical to scikit-learn where it defines the value):
- a prediction is positive where score >= threshold;
- AUC counts a tie between a positive and a negative as 1/2 (Mann-Whitney);
- AP is the step-function sum over distinct thresholds,
  sum_k (R_k - R_{k-1}) P_k (sklearn's average_precision_score, no interpolation);
- undefined values are NaN with a reason (see results.py), where scikit-learn
  would raise, warn or return 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ictview.errors import IctviewError
from ictview.stats.results import MetricResult, json_safe, undefined

# ---------------------------------------------------------------------------
# input checks


def as_binary(labels: object, name: str = "labels") -> np.ndarray:
    """Flattened bool array from bool or 0/1 labels; anything else is bad input."""
    a = np.asarray(labels)
    if a.dtype == bool:
        return a.ravel()
    if a.dtype.kind not in "iuf" or (a.size and not np.isin(a, (0, 1)).all()):
        raise IctviewError(f"{name}: labels must be 0/1 or bool")
    return a.ravel().astype(bool)


def as_scores(scores: object, n: int, name: str = "scores") -> np.ndarray:
    """Flattened numeric scores of length n, finite; keeps the dtype (float16 stays small)."""
    s = np.asarray(scores)
    if s.dtype.kind not in "iufb":
        raise IctviewError(f"{name}: scores must be numeric")
    s = s.ravel()
    if s.size != n:
        raise IctviewError(f"{name}: {s.size} scores for {n} labels")
    if s.dtype.kind == "f" and s.size and not np.isfinite(s).all():
        raise IctviewError(f"{name}: scores contain NaN or infinity")
    return s


# ---------------------------------------------------------------------------
# level counts and the formulas on them


def level_counts(labels: object, scores: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, pos, neg): distinct scores ascending (float64) and int64 counts at each.

    One stable sort: O(n log n), the only sort any exact metric needs.
    """
    y = as_binary(labels)
    s = as_scores(scores, y.size)
    if y.size == 0:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(y[order], starts, dtype=np.int64)
    total = np.diff(np.r_[starts, y.size])
    return s_sorted[starts].astype(np.float64), pos, total - pos


def auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC over the last axis (levels ascending); NaN where a class is absent.

    Works on any leading shape: (levels,) for one data set, (n_boot, levels) for
    bootstrap replicates. Counts may be weights (resample multiplicities).
    """
    pos = np.asarray(pos, np.float64)
    neg = np.asarray(neg, np.float64)
    n_pos = pos.sum(-1)
    n_neg = neg.sum(-1)
    neg_below = np.cumsum(neg, -1) - neg
    wins = (pos * (neg_below + 0.5 * neg)).sum(-1)
    denom = n_pos * n_neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, wins / np.where(denom > 0, denom, 1), np.nan)


def ap_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Average precision over the last axis (levels ascending); NaN where no positive."""
    pos_d = np.asarray(pos, np.float64)[..., ::-1]
    neg_d = np.asarray(neg, np.float64)[..., ::-1]
    tp = np.cumsum(pos_d, -1)
    predicted = tp + np.cumsum(neg_d, -1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    n_pos = tp[..., -1] if tp.shape[-1] else np.zeros(tp.shape[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            n_pos > 0, (pos_d * precision).sum(-1) / np.where(n_pos > 0, n_pos, 1), np.nan
        )


def dice_values(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """2TP / (2TP + FP + FN), elementwise; NaN where reference and prediction are both empty."""
    tp, fp, fn = (np.asarray(a, np.float64) for a in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), np.nan)


def _class_reason(n_pos: int, n_neg: int, what: str = "samples") -> str:
    if n_pos + n_neg == 0:
        return f"no {what}"
    if n_pos == 0:
        return f"no positive {what}"
    if n_neg == 0:
        return f"no negative {what}"
    return ""


def auc_result(pos: np.ndarray, neg: np.ndarray, what: str = "samples") -> MetricResult:
    n_pos, n_neg = int(np.sum(pos)), int(np.sum(neg))
    reason = _class_reason(n_pos, n_neg, what)
    if reason:
        return undefined(f"AUC undefined: {reason}", n_pos + n_neg)
    return MetricResult(float(auc_from_counts(pos, neg)), "", n_pos + n_neg)


def ap_result(pos: np.ndarray, neg: np.ndarray, what: str = "samples") -> MetricResult:
    n_pos, n_neg = int(np.sum(pos)), int(np.sum(neg))
    if n_pos == 0:
        return undefined(f"AP undefined: {_class_reason(n_pos, n_neg, what)}", n_pos + n_neg)
    return MetricResult(float(ap_from_counts(pos, neg)), "", n_pos + n_neg)


# ---------------------------------------------------------------------------
# exact metrics on arrays


def exam_auc(labels: object, scores: object) -> MetricResult:
    """ROC AUC (= sklearn roc_auc_score). labels: 0/1 per exam (e.g. majority_vote)."""
    _, pos, neg = level_counts(labels, scores)
    return auc_result(pos, neg, "exams")


def average_precision(labels: object, scores: object) -> MetricResult:
    """Average precision (= sklearn average_precision_score), exact, any float scores.

    For pixels pass the flattened reference and scores of every pixel of the
    labeled set (one data-set-level value, not a mean over images); the fast
    equivalent for float16 maps is PixelStats.average_precision().
    """
    _, pos, neg = level_counts(labels, scores)
    return ap_result(pos, neg)


@dataclass(frozen=True)
class RocCurve:
    """Same arrays as sklearn.metrics.roc_curve (thresholds[0] = inf)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    reason: str = ""


@dataclass(frozen=True)
class PrCurve:
    """Same arrays as sklearn.metrics.precision_recall_curve (recall decreasing)."""

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray
    reason: str = ""


def _descending_cumulative(levels, pos, neg):
    keep = (pos + neg) > 0  # histogram bins with no sample are not thresholds
    thresholds = np.asarray(levels, np.float64)[keep][::-1]
    tps = np.cumsum(np.asarray(pos, np.float64)[keep][::-1])
    fps = np.cumsum(np.asarray(neg, np.float64)[keep][::-1])
    return thresholds, tps, fps


def roc_from_counts(levels, pos, neg, drop_intermediate: bool = True) -> RocCurve:
    thresholds, tps, fps = _descending_cumulative(levels, pos, neg)
    if tps.size == 0:
        return RocCurve(np.zeros(0), np.zeros(0), np.zeros(0), "ROC undefined: no samples")
    if drop_intermediate and fps.size > 2:
        # sklearn's rule: drop points collinear with both neighbours
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        thresholds, tps, fps = thresholds[keep], tps[keep], fps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    reason = _class_reason(int(tps[-1]), int(fps[-1]))
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return RocCurve(fpr, tpr, thresholds, f"ROC undefined: {reason}" if reason else "")


def pr_from_counts(levels, pos, neg, drop_intermediate: bool = False) -> PrCurve:
    thresholds, tps, fps = _descending_cumulative(levels, pos, neg)
    if tps.size == 0:
        return PrCurve(np.ones(1), np.zeros(1), np.zeros(0), "PR undefined: no samples")
    if drop_intermediate and fps.size > 2:
        # sklearn's rule: keep the first and last point of each recall value
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(tps[:-1]), np.diff(tps[1:])), True])
        thresholds, tps, fps = thresholds[keep], tps[keep], fps[keep]
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    if tps[-1] > 0:
        recall, reason = tps / tps[-1], ""
    else:
        recall, reason = np.full(tps.shape, np.nan), "PR undefined: no positive samples"
    return PrCurve(np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1], reason)


def roc_curve(labels: object, scores: object, drop_intermediate: bool = True) -> RocCurve:
    return roc_from_counts(*level_counts(labels, scores), drop_intermediate=drop_intermediate)


def precision_recall_curve(
    labels: object, scores: object, drop_intermediate: bool = False
) -> PrCurve:
    return pr_from_counts(*level_counts(labels, scores), drop_intermediate=drop_intermediate)


# ---------------------------------------------------------------------------
# sensitivity / specificity


@dataclass(frozen=True)
class OperatingPoint:
    """Sensitivity and specificity of 'score >= threshold' (NaN + reason when undefined)."""

    threshold: float
    sensitivity: float
    specificity: float
    tp: int
    fp: int
    tn: int
    fn: int
    target_sensitivity: float | None = None  # set when the threshold was chosen for it
    reason: str = ""

    def to_dict(self) -> dict:
        return json_safe(asdict(self))


def _operating_point(threshold, tp, fp, n_pos, n_neg, target=None, reason="") -> OperatingPoint:
    fn, tn = n_pos - tp, n_neg - fp
    reasons = [reason] if reason else []
    if n_pos == 0:
        reasons.append("sensitivity undefined: no positive exams")
    if n_neg == 0:
        reasons.append("specificity undefined: no negative exams")
    nan = float("nan")
    return OperatingPoint(
        threshold=float(threshold),
        sensitivity=tp / n_pos if n_pos else nan,
        specificity=tn / n_neg if n_neg else nan,
        tp=int(tp), fp=int(fp), tn=int(tn), fn=int(fn),
        target_sensitivity=target,
        reason="; ".join(reasons),
    )  # fmt: skip


def sens_spec_at(labels: object, scores: object, threshold: float) -> OperatingPoint:
    """Sensitivity and specificity of the prediction score >= threshold."""
    y = as_binary(labels)
    s = as_scores(scores, y.size)
    pred = s >= threshold
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    return _operating_point(threshold, tp, fp, int(y.sum()), int((~y).sum()))


def operating_point(
    labels: object, scores: object, target_sensitivity: float = 0.92
) -> OperatingPoint:
    """The highest threshold whose sensitivity on these data is >= target (paper: 0.92).

    That is the ROC point with the fewest false positives among those reaching the
    target; its achieved sensitivity can exceed the target where scores are tied or
    the exam count makes the target unreachable exactly. The specificity there is
    the paper's "specificity at sensitivity 0.92".
    """
    levels, pos, neg = level_counts(labels, scores)
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0:
        return _operating_point(
            np.nan, 0, 0, n_pos, n_neg, target_sensitivity, "no threshold: no positive exams"
        )
    tps = np.cumsum(pos[::-1])
    k = int(np.argmax(tps / n_pos >= target_sensitivity))  # reached at the latest at k = last
    fps = np.cumsum(neg[::-1])
    return _operating_point(levels[::-1][k], tps[k], fps[k], n_pos, n_neg, target_sensitivity)


# ---------------------------------------------------------------------------
# Dice


@dataclass(frozen=True)
class ThresholdChoice:
    """A pixel threshold chosen to maximise data-set-level Dice (record it with the run)."""

    threshold: float  # predict hemorrhage where p >= threshold
    dice: MetricResult  # Dice at that threshold on the data it was chosen on
    chosen_on: str = ""  # e.g. "validation"

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "dice": self.dice.to_dict(),
            "chosen_on": self.chosen_on,
            "rule": "p >= threshold",
        }


def dice_result(tp: int, fp: int, fn: int) -> MetricResult:
    n = int(tp + fp + fn)
    if tp + fp + fn == 0:
        return undefined("Dice undefined: no positive pixels in reference or prediction", 0)
    return MetricResult(float(dice_values(tp, fp, fn)), "", n)


def dice_score(truth: object, pred: object) -> MetricResult:
    """Dice of two binary masks over all their pixels (data-set level when given the whole set)."""
    t = as_binary(truth, "truth")
    p = as_binary(pred, "prediction")
    if t.size != p.size:
        raise IctviewError(f"prediction: {p.size} pixels for {t.size} reference pixels")
    tp = int(np.count_nonzero(t & p))
    return dice_result(tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp)


def best_threshold_from_counts(levels, pos, neg, chosen_on: str = "") -> ThresholdChoice:
    """Threshold maximising Dice of 'p >= threshold'; the highest one among ties."""
    keep = (np.asarray(pos) + np.asarray(neg)) > 0
    levels, pos, neg = np.asarray(levels)[keep], np.asarray(pos)[keep], np.asarray(neg)[keep]
    n_pos = int(pos.sum())
    if n_pos == 0:
        return ThresholdChoice(
            float("nan"), undefined("no threshold: no positive pixels"), chosen_on
        )
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    dice = dice_values(tp, fp, n_pos - tp)
    k = int(np.argmax(dice))
    return ThresholdChoice(
        float(levels[::-1][k]), dice_result(int(tp[k]), int(fp[k]), n_pos - int(tp[k])), chosen_on
    )


def best_dice_threshold(truth: object, scores: object, chosen_on: str = "") -> ThresholdChoice:
    """Exact Dice-maximising threshold over all distinct scores (use it on validation data)."""
    return best_threshold_from_counts(*level_counts(truth, scores), chosen_on=chosen_on)


# ---------------------------------------------------------------------------
# exam labels and subtypes


def majority_vote(reads: object) -> np.ndarray:
    """Per-exam reference from readers' 0/1 reads, shape (exams, readers): > half say yes."""
    r = np.asarray(reads)
    if r.ndim != 2:
        raise IctviewError("reads: expected a (exams, readers) array")
    return as_binary(r, "reads").reshape(r.shape).sum(1) * 2 > r.shape[1]


def isolated_subtype_mask(ich: object, subtypes: Mapping[str, object], code: str) -> np.ndarray:
    """Exams for the per-subtype AUC: all ICH-negative exams + exams whose only subtype is `code`.

    (The paper's Supplemental Table 1: most positive exams have several subtypes,
    so only isolated-subtype exams are used, to avoid confounding.)
    """
    y = as_binary(ich, "ich")
    if code not in subtypes:
        raise IctviewError(f"subtypes: no column {code!r}")
    flags = {k: as_binary(v, k) for k, v in subtypes.items()}
    if any(f.size != y.size for f in flags.values()):
        raise IctviewError("subtypes: one flag per exam expected")
    others = np.zeros(y.size, bool)
    for k, f in flags.items():
        if k != code:
            others |= f
    return ~y | (y & flags[code] & ~others)


def subtype_auc(
    ich: object, scores: object, subtypes: Mapping[str, object], codes: Sequence[str] | None = None
) -> dict[str, MetricResult]:
    """Exam AUC of the ICH score per subtype on isolated-subtype exams (vs all negatives)."""
    y = as_binary(ich, "ich")
    s = as_scores(scores, y.size)
    out = {}
    for code in codes if codes is not None else list(subtypes):
        m = isolated_subtype_mask(y, subtypes, code)
        res = exam_auc(y[m], s[m])
        out[code] = res if res.defined else MetricResult(res.value, f"{code}: {res.reason}", res.n)
    return out
