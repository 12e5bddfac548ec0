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
import numpy as np
from scipy import sparse

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


def _sparse_row(hist: np.ndarray) -> sparse.csr_matrix:
    """A (2, k) image histogram as one (1, 2k) sparse row."""
    flat = hist.ravel()
    cols = np.flatnonzero(flat)
    return sparse.csr_matrix((flat[cols].astype(np.int32), cols.astype(np.int32),
                              np.array([0, cols.size], np.int32)), shape=(1, flat.size))  # fmt: skip


def _stack(rows: list[sparse.csr_matrix]) -> sparse.csr_matrix:
    if not rows:
        return sparse.csr_matrix((0, 2 * FLOAT16_BINS), dtype=np.int32)
    return sparse.vstack(rows, format="csr", dtype=np.int32)


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


class PixelStats:
    """One run's pixel predictions on one pixel-labeled image set, as histograms.

    Row i of `hist` is image i's histogram, reference-positive pixels in columns
    0 .. n_bins-1 and reference-negative ones in n_bins .. 2 n_bins-1; bin_values[j] is
    the score bin j stands for (ascending). `counts` gives the same as a dense
    (n_images, 2, n_bins) array.

    Memory: `hist` is sparse (scipy CSR, int32 counts and column indices, 8 bytes per
    non-empty bin). An image touches few of the 15361 float16 bins (everything outside
    the brain is one bin, 0.0): ~2,000 non-empty bins per 128 x 128 image of the
    cpu-study preset, 16 kB instead of the 123 kB of a dense (2, 15361) int32 histogram.
    The report keeps one PixelStats per run and labelset (8 runs x 1,040 images there:
    ~130 MB instead of 1 GB). `nbytes` says what one holds.
    """

    __slots__ = ("hist", "bin_values", "image_ids", "binning")

    def __init__(self, counts: object, bin_values: np.ndarray, image_ids: Sequence[str],
                 binning: str = "float16") -> None:
        """counts: dense (n_images, 2, n_bins) counts or a sparse (n_images, 2 n_bins) matrix."""
        bin_values = np.asarray(bin_values, np.float64)
        k = bin_values.size
        if sparse.issparse(counts):
            hist = sparse.csr_matrix(counts, dtype=np.int32)
        else:
            dense = np.asarray(counts)
            if dense.ndim != 3 or dense.shape[1:] != (2, k):
                raise IctviewError(f"pixel stats: counts of shape {dense.shape}, "
                                   f"expected (images, 2, {k})")
            hist = sparse.csr_matrix(dense.reshape(dense.shape[0], 2 * k), dtype=np.int32)
        if hist.shape[1] != 2 * k:
            raise IctviewError(f"pixel stats: {hist.shape[1]} columns for {k} bins")
        hist.sum_duplicates()
        hist.eliminate_zeros()
        self.hist = hist
        self.bin_values = bin_values
        self.image_ids = tuple(image_ids)
        self.binning = binning
        if len(self.image_ids) != hist.shape[0]:
            raise IctviewError(f"pixel stats: {len(self.image_ids)} ids for "
                               f"{hist.shape[0]} images")

    # -- construction ------------------------------------------------------

    @classmethod
    def from_images(
        cls, images: Iterable[tuple[object, object]], image_ids: Sequence[str] | None = None
    ) -> PixelStats:
        """From (probability map, reference mask) pairs, one per 2D image, streamed."""
        rows = [_sparse_row(image_histogram(p, m, f"image {i}"))
                for i, (p, m) in enumerate(images)]  # fmt: skip
        ids = (
            tuple(image_ids) if image_ids is not None else tuple(str(i) for i in range(len(rows)))
        )
        if len(ids) != len(rows):
            raise IctviewError(f"image_ids: {len(ids)} ids for {len(rows)} images")
        return cls(_stack(rows), float16_bin_values(), ids)

    @classmethod
    def from_volumes(cls, volumes: Iterable[tuple[str, object, object]]) -> PixelStats:
        """From (exam, probability volume (z,y,x), label volume) triples: each slice is an image.

        Image ids are "<exam>:<slice index>"; the bootstrap resamples these images.
        """
        rows, ids = [], []
        for exam, probs, labels in volumes:
            p, m = np.asarray(probs), np.asarray(labels)
            if p.ndim != 3 or p.shape != m.shape:
                raise IctviewError(
                    f"{exam}: prediction {p.shape} and labels {m.shape} must be equal (z,y,x)"
                )
            for z in range(p.shape[0]):
                rows.append(_sparse_row(image_histogram(p[z], m[z], f"{exam} slice {z}")))
                ids.append(f"{exam}:{z}")
        return cls(_stack(rows), float16_bin_values(), tuple(ids))

    @classmethod
    def concat(cls, parts: Sequence[PixelStats]) -> PixelStats:
        if not parts:
            raise IctviewError("pixel stats: nothing to concatenate")
        if any(p.binning != parts[0].binning for p in parts):
            raise IctviewError("pixel stats: cannot concatenate different binnings")
        return cls(
            sparse.vstack([p.hist for p in parts], format="csr"),
            parts[0].bin_values,
            tuple(i for p in parts for i in p.image_ids),
            parts[0].binning,
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> PixelStats:
        idx = np.asarray(indices, dtype=np.int64)
        return PixelStats(
            self.hist[idx], self.bin_values, tuple(self.image_ids[i] for i in idx), self.binning
        )

    def rebin(self, n_bins: int) -> PixelStats:
        """Uniform bins [k/n, (k+1)/n) (the last one closed); bin_values are the lower edges."""
        if n_bins < 1:
            raise IctviewError("rebin: n_bins must be >= 1")
        new = np.minimum(np.floor(self.bin_values * n_bins), n_bins - 1).astype(np.int64)
        k = self.n_bins
        # old column -> new column, in each half (positive, negative)
        target = np.concatenate([new, new + n_bins])
        merge = sparse.csr_matrix((np.ones(2 * k, np.int32), (np.arange(2 * k), target)),
                                  shape=(2 * k, 2 * n_bins))  # fmt: skip
        return PixelStats(self.hist @ merge, np.arange(n_bins) / n_bins, self.image_ids,
                          f"uniform-{n_bins}")  # fmt: skip

    # -- shape and reference ----------------------------------------------

    @property
    def n_images(self) -> int:
        return self.hist.shape[0]

    @property
    def n_bins(self) -> int:
        return self.bin_values.size

    @property
    def counts(self) -> np.ndarray:
        """Dense (n_images, 2, n_bins) int32 counts (123 kB per float16 image: for small sets)."""
        return self.hist.toarray().reshape(self.n_images, 2, self.n_bins)

    @property
    def nbytes(self) -> int:
        """Bytes held by the histograms."""
        h = self.hist
        return int(h.data.nbytes + h.indices.nbytes + h.indptr.nbytes)

    def _columns(self, first: int = 0) -> np.ndarray:
        """(2 n_bins, 2) int64 selector: positive / negative bins >= `first`."""
        k = self.n_bins
        sel = np.zeros((2 * k, 2), np.int64)
        sel[first:k, 0] = 1
        sel[k + first:, 1] = 1
        return sel

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) pixel counts per bin over all images (int64)."""
        t = np.asarray(self.hist.sum(0, dtype=np.int64)).ravel()
        return t[: self.n_bins], t[self.n_bins :]

    def image_reference(self) -> np.ndarray:
        """(n_images, 2) reference positive / negative pixel counts (checks pairing of runs)."""
        return np.asarray(self.hist @ self._columns(), np.int64)

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
        above = np.asarray(self.hist @ self._columns(self.first_bin(threshold)), np.int64)
        n_pos = self.image_reference()[:, 0]
        return np.stack([above[:, 0], above[:, 1], n_pos - above[:, 0]], axis=1)

    def dice(self, threshold: float) -> MetricResult:
        """Data-set-level Dice: 2 sum TP / (2 sum TP + sum FP + sum FN) over all images."""
        tp, fp, fn = (int(v) for v in self.dice_counts(threshold).sum(0))
        return dice_result(tp, fp, fn)

    def best_dice_threshold(self, chosen_on: str = "") -> ThresholdChoice:
        """The threshold maximising data-set-level Dice on these images (use validation)."""
        pos, neg = self.totals()
        return best_threshold_from_counts(self.bin_values, pos, neg, chosen_on)
