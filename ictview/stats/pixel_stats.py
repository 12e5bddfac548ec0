"""Sufficient statistics for data-set-level pixel metrics: per-image score histograms.

Pixel AP and Dice of a run are data-set-level metrics (sums over every pixel of
the pixel-labeled set), and the bootstrap resamples *images*. Both only need, per
image, how many reference-positive and reference-negative pixels got each score:
a resample's counts are the multiplicity-weighted sum of its images' histograms,
so no bootstrap replicate ever sorts a pixel.

Binning. Predictions are stored as float16 probabilities in [0, 1]. There are
exactly 15361 float16 values in [0, 1] (bit patterns 0x0000 = 0 ... 0x3C00 = 1,
including subnormals), and their bit patterns sort like their values. The default
binning uses the bit pattern as the bin index, one bin per representable value:
for float16 scores the histogram loses nothing, and AP, Dice, the Dice-maximising
threshold and the PR curve are *exact* (equal to the sort-based metrics up to
float64 rounding, ~1e-12). Scores of another dtype are rounded to the nearest
float16 first (relative error <= 2^-11, which can only merge near-ties).
`rebin(n)` gives uniform bins [k/n, (k+1)/n) for comparison; bench_stats()
prints the error of each choice.

Reference masks: label maps (0 background, 1..5 hemorrhage, 255 ignored: such
pixels are counted nowhere) or bool masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ictview.core.labels import IGNORE
from ictview.errors import IctviewError
from ictview.stats.metrics import (
    PrCurve,
    ThresholdChoice,
    ap_result,
    best_threshold_from_counts,
    dice_result,
    pr_from_counts,
)
from ictview.stats.results import MetricResult

FLOAT16_BINS = 0x3C00 + 1  # float16 bit patterns of 0.0 ... 1.0


def float16_bin_values() -> np.ndarray:
    """The float16 value each default bin stands for, ascending (float64)."""
    return np.arange(FLOAT16_BINS, dtype=np.uint16).view(np.float16).astype(np.float64)


def float16_codes(probs: object, name: str = "prediction") -> np.ndarray:
    """Bin index (= float16 bit pattern) of each probability; checks the range [0, 1]."""
    p = np.asarray(probs)
    if p.dtype.kind not in "fiub":
        raise IctviewError(f"{name}: probabilities must be numeric")
    # min/max are NaN when a NaN is present, so this also rejects NaN
    if p.size and not (p.min() >= 0 and p.max() <= 1):
        raise IctviewError(f"{name}: probabilities outside [0, 1] or NaN")
    # the mask drops the sign bit of -0.0; every other value is already >= +0
    return p.astype(np.float16, copy=False).view(np.uint16) & np.uint16(0x7FFF)


def image_histogram(probs: object, mask: object, name: str = "image") -> np.ndarray:
    """(2, FLOAT16_BINS) int32: counts of reference-positive [0] / negative [1] pixels per bin."""
    p = np.asarray(probs)
    m = np.asarray(mask)
    if p.shape != m.shape:
        raise IctviewError(f"{name}: prediction shape {p.shape} differs from mask shape {m.shape}")
    if p.size >= 2**31:
        raise IctviewError(f"{name}: too many pixels for int32 counts")
    k = FLOAT16_BINS
    idx = float16_codes(p, name).ravel().astype(np.int32)
    # row 0 (positives): idx = code; row 1 (negatives): code + k; ignored: 2k, dropped
    if m.dtype == bool:
        idx += k * ~m.ravel()
    else:
        lab = m.ravel()
        idx += k * ((lab == 0) | (lab == IGNORE))
        idx[lab == IGNORE] = 2 * k
    return np.bincount(idx, minlength=2 * k + 1)[: 2 * k].reshape(2, k).astype(np.int32)


@dataclass
class PixelStats:
    """One run's pixel predictions on one pixel-labeled image set, as histograms.

    counts[i, 0, j] / counts[i, 1, j]: reference-positive / negative pixels of image
    i whose score falls in bin j; bin_values[j] is the score the bin stands for
    (ascending). Memory: 2 x 4 bytes x 15361 bins = 123 kB per image (65 MB for
    529 images), whatever the image size.
    """

    counts: np.ndarray  # (n_images, 2, n_bins) int32
    bin_values: np.ndarray  # (n_bins,) float64 ascending
    image_ids: tuple[str, ...]
    binning: str = "float16"  # or "uniform-<n>"

    # -- construction ------------------------------------------------------

    @classmethod
    def from_images(
        cls, images: Iterable[tuple[object, object]], image_ids: Sequence[str] | None = None
    ) -> PixelStats:
        """From (probability map, reference mask) pairs, one per 2D image, streamed."""
        hists = [image_histogram(p, m, f"image {i}") for i, (p, m) in enumerate(images)]
        ids = (
            tuple(image_ids) if image_ids is not None else tuple(str(i) for i in range(len(hists)))
        )
        if len(ids) != len(hists):
            raise IctviewError(f"image_ids: {len(ids)} ids for {len(hists)} images")
        return cls(cls._stack(hists), float16_bin_values(), ids)

    @classmethod
    def from_volumes(cls, volumes: Iterable[tuple[str, object, object]]) -> PixelStats:
        """From (exam, probability volume (z,y,x), label volume) triples: each slice is an image.

        Image ids are "<exam>:<slice index>"; the bootstrap resamples these images.
        """
        hists, ids = [], []
        for exam, probs, labels in volumes:
            p, m = np.asarray(probs), np.asarray(labels)
            if p.ndim != 3 or p.shape != m.shape:
                raise IctviewError(
                    f"{exam}: prediction {p.shape} and labels {m.shape} must be equal (z,y,x)"
                )
            for z in range(p.shape[0]):
                hists.append(image_histogram(p[z], m[z], f"{exam} slice {z}"))
                ids.append(f"{exam}:{z}")
        return cls(cls._stack(hists), float16_bin_values(), tuple(ids))

    @staticmethod
    def _stack(hists: list[np.ndarray]) -> np.ndarray:
        if not hists:
            return np.zeros((0, 2, FLOAT16_BINS), np.int32)
        return np.stack(hists)

    @classmethod
    def concat(cls, parts: Sequence[PixelStats]) -> PixelStats:
        if not parts:
            raise IctviewError("pixel stats: nothing to concatenate")
        if any(p.binning != parts[0].binning for p in parts):
            raise IctviewError("pixel stats: cannot concatenate different binnings")
        return cls(
            np.concatenate([p.counts for p in parts]),
            parts[0].bin_values,
            tuple(i for p in parts for i in p.image_ids),
            parts[0].binning,
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> PixelStats:
        idx = np.asarray(indices, dtype=np.int64)
        return PixelStats(
            self.counts[idx], self.bin_values, tuple(self.image_ids[i] for i in idx), self.binning
        )

    def rebin(self, n_bins: int) -> PixelStats:
        """Uniform bins [k/n, (k+1)/n) (the last one closed); bin_values are the lower edges."""
        if n_bins < 1:
            raise IctviewError("rebin: n_bins must be >= 1")
        new = np.minimum(np.floor(self.bin_values * n_bins), n_bins - 1).astype(np.int64)
        used, first = np.unique(new, return_index=True)  # `new` is non-decreasing
        counts = np.zeros(self.counts.shape[:2] + (n_bins,), np.int32)
        if self.counts.size:
            counts[:, :, used] = np.add.reduceat(self.counts, first, axis=2)
        return PixelStats(counts, np.arange(n_bins) / n_bins, self.image_ids, f"uniform-{n_bins}")

    # -- shape and reference ----------------------------------------------

    @property
    def n_images(self) -> int:
        return self.counts.shape[0]

    @property
    def n_bins(self) -> int:
        return self.counts.shape[2]

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) pixel counts per bin over all images (int64)."""
        t = self.counts.sum(0, dtype=np.int64)
        return t[0], t[1]

    def image_reference(self) -> np.ndarray:
        """(n_images, 2) reference positive / negative pixel counts (checks pairing of runs)."""
        return self.counts.sum(2, dtype=np.int64)

    def same_images(self, other: PixelStats) -> bool:
        """Same image list with the same reference: the condition for paired comparison."""
        return (
            self.image_ids == other.image_ids
            and self.binning == other.binning
            and np.array_equal(self.image_reference(), other.image_reference())
        )

    # -- metrics -------------------------------------------------------------

    def average_precision(self) -> MetricResult:
        """Pixel AP over all pixels of the set (exact for float16 scores)."""
        return ap_result(*self.totals(), what="pixels")

    def pr_curve(self, drop_intermediate: bool = False) -> PrCurve:
        pos, neg = self.totals()
        return pr_from_counts(self.bin_values, pos, neg, drop_intermediate)

    def first_bin(self, threshold: float) -> int:
        """Index of the first bin predicted positive by p >= threshold.

        Exact with float16 binning (each bin is one value); with uniform bins, a
        bin counts as positive when its lower edge is >= threshold.
        """
        return int(np.searchsorted(self.bin_values, threshold, side="left"))

    def dice_counts(self, threshold: float) -> np.ndarray:
        """(n_images, 3) int64 TP, FP, FN of the prediction p >= threshold."""
        k = self.first_bin(threshold)
        above = self.counts[:, :, k:].sum(2, dtype=np.int64)
        n_pos = self.counts[:, 0].sum(1, dtype=np.int64)
        return np.stack([above[:, 0], above[:, 1], n_pos - above[:, 0]], axis=1)

    def dice(self, threshold: float) -> MetricResult:
        """Data-set-level Dice: 2 sum TP / (2 sum TP + sum FP + sum FN) over all images."""
        tp, fp, fn = (int(v) for v in self.dice_counts(threshold).sum(0))
        return dice_result(tp, fp, fn)

    def best_dice_threshold(self, chosen_on: str = "") -> ThresholdChoice:
        """The threshold maximising data-set-level Dice on these images (use validation)."""
        pos, neg = self.totals()
        return best_threshold_from_counts(self.bin_values, pos, neg, chosen_on)
