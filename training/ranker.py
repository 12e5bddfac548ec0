"""The ranker: teacher predictions on the unlabeled set -> pixel pseudo-labels (paper, 2.2).

1. Every unlabeled image (slice) has an image probability (the pseudolabel run's slice score).
   Images are sorted from high to low; the top C% (``top_percent``, paper C = 10) are
   positive, every other image negative.
2. Negative image: every pixel 0.
3. Positive image: pixel 1 where p > K_hi (0.7), 0 where p < K_lo (0.3), 255 (ignored: no
   loss) in between, bounds included in the ignored band.

No-ranker ablation: every image is treated as positive (the K thresholds everywhere).
Pixel oracle: the reference image label replaces the ranker (negative -> all 0, positive ->
K thresholds).

Count of positives: round-half-up of N * C / 100 (N = 64, C = 10 -> 6). Ties in the image
probability are broken by the images' order (exam name, then slice index), so the choice is
deterministic and the same on every run.

Pseudo-labels are binary (1 = hemorrhage); training on them needs ``model.num_classes = 2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ictview.core.labels import IGNORE
from ictview.errors import IctviewError
from ictview.store.arrays import CompactTargets, Prediction

POSITIVE = 1


@dataclass(frozen=True)
class RankerSummary:
    n_images: int
    n_positive: int
    top_percent: float
    k_hi: float
    k_lo: float
    threshold: float  # image probability of the last positive image (nan when none)
    enabled: bool

    def to_dict(self) -> dict:
        d = asdict(self)
        if math.isnan(d["threshold"]):
            d["threshold"] = None
        return d


def n_top(n_images: int, top_percent: float) -> int:
    """Images kept positive: round-half-up of n * C / 100."""
    if not 0 < top_percent <= 100:
        raise IctviewError(f"ranker: top_percent must be in (0, 100], got {top_percent}")
    return min(n_images, int(math.floor(n_images * top_percent / 100.0 + 0.5)))


def rank_images(scores: np.ndarray, top_percent: float) -> np.ndarray:
    """(N,) image probabilities -> (N,) bool, True for the top C%.

    A stable sort on the negated scores: equal scores keep their input order.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size and not np.isfinite(s).all():
        raise IctviewError("ranker: image probabilities contain NaN or infinity")
    k = n_top(s.size, top_percent)
    order = np.argsort(-s, kind="stable")
    out = np.zeros(s.size, bool)
    out[order[:k]] = True
    return out


def threshold_pixels(prob: np.ndarray, k_hi: float = 0.7, k_lo: float = 0.3) -> np.ndarray:
    """Pixel probabilities of a positive image -> uint8 1 (p > k_hi) / 0 (p < k_lo) / 255."""
    if not 0 <= k_lo <= k_hi <= 1:
        raise IctviewError(f"ranker: need 0 <= k_lo <= k_hi <= 1, got {k_lo}, {k_hi}")
    p = np.asarray(prob, dtype=np.float32)
    out = np.full(p.shape, IGNORE, np.uint8)
    out[p > k_hi] = POSITIVE
    out[p < k_lo] = 0
    return out


def rank_slices(
    slice_scores: Sequence[np.ndarray], top_percent: float = 10.0, enabled: bool = True,
    k_hi: float = 0.7, k_lo: float = 0.3,
) -> tuple[list[np.ndarray], RankerSummary]:
    """Step 1 from the slice scores alone: per exam (z,) bool "ranked positive" (all True
    when not ``enabled``: the no-ranker ablation), and the summary. No pixel map is needed:
    the pixels are read afterwards for the positive slices only."""
    flat = (np.concatenate([np.asarray(s, np.float64).ravel() for s in slice_scores])
            if len(slice_scores) else np.zeros(0))
    positive = rank_images(flat, top_percent) if enabled else np.ones(flat.size, bool)
    threshold = float(flat[positive].min()) if enabled and positive.any() else math.nan
    flags, start = [], 0
    for s in slice_scores:
        z = len(s)
        flags.append(positive[start : start + z])
        start += z
    summary = RankerSummary(
        int(flat.size), int(positive.sum()) if enabled else int(flat.size), float(top_percent),
        float(k_hi), float(k_lo), threshold, bool(enabled),
    )
    return flags, summary


def pseudo_labels(
    probs: Sequence[np.ndarray],
    slice_scores: Sequence[np.ndarray],
    top_percent: float = 10.0,
    k_hi: float = 0.7,
    k_lo: float = 0.3,
    enabled: bool = True,
) -> tuple[list[np.ndarray], list[np.ndarray], RankerSummary]:
    """Per exam (z, y, x) probabilities and (z,) image probabilities -> per exam uint8 label
    volumes, per exam (z,) bool "ranked positive", and a summary: the whole-volume form of
    ``rank_slices`` + ``threshold_pixels`` (the student reads the same a slice at a time).

    The ranking is over all images of all exams together (the corpus), not per exam.
    """
    if len(probs) != len(slice_scores):
        raise IctviewError("ranker: one slice-score vector per probability volume expected")
    for p, s in zip(probs, slice_scores):
        if p.ndim != 3 or p.shape[0] != len(s):
            raise IctviewError(f"ranker: {len(s)} slice scores for a volume of shape {p.shape}")
    flags, summary = rank_slices(slice_scores, top_percent, enabled, k_hi, k_lo)
    labels = []
    for p, pos in zip(probs, flags):
        lab = np.zeros(p.shape, np.uint8)
        if pos.any():
            lab[pos] = threshold_pixels(p[pos], k_hi, k_lo)
        labels.append(lab)
    return labels, flags, summary


def compact_prediction(pred: Prediction, k_hi: float, k_lo: float) -> Prediction:
    """``pred`` as a pseudolabel run stores it with inference.pseudo_store = "targets"."""
    return Prediction(np.empty((0, 0, 0), np.float16), pred.slice_scores, pred.exam_score,
                      dict(pred.attrs), compact_targets(pred.prob, k_hi, k_lo))


def compact_targets(prob: np.ndarray, k_hi: float = 0.7, k_lo: float = 0.3) -> CompactTargets:
    """A pseudolabel run's stored form of one exam: ``threshold_pixels`` of every slice, kept
    for the slices where it is not all 0 (some p >= k_lo). Any ranker setting with these K
    derives its labels from these exactly: a positive slice not stored is all 0 (every p <
    k_lo), a negative slice is all 0 anyway."""
    z, y, x = prob.shape
    keep, rows = [], []
    for k in range(z):  # a slice at a time: no (z, y, x) float32 copy of the volume
        t = threshold_pixels(prob[k], k_hi, k_lo)
        if t.any():
            keep.append(k)
            rows.append(t)
    targets = np.stack(rows) if rows else np.zeros((0, y, x), np.uint8)
    return CompactTargets((z, y, x), np.asarray(keep, np.int32), targets, k_hi, k_lo)


def oracle_pixel_labels(
    prob: np.ndarray, image_labels: np.ndarray, k_hi: float = 0.7, k_lo: float = 0.3
) -> np.ndarray:
    """Pixel oracle: reference image labels (z,) (1, 0, or -1 unknown) gate the pseudo pixels.

    Negative images -> all 0; positive -> K thresholds; unknown -> K thresholds (as if no
    label: nothing to suppress with).
    """
    il = np.asarray(image_labels).ravel()
    if prob.ndim != 3 or prob.shape[0] != il.size:
        raise IctviewError(
            f"pixel oracle: {il.size} image labels for a volume of shape {prob.shape}"
        )
    lab = threshold_pixels(prob, k_hi, k_lo)
    lab[il == 0] = 0
    return lab
