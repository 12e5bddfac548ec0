"""Seeded, vectorised bootstrap and the paper's paired comparison of two runs.

What is resampled:
- exam metrics (AUC, sensitivity/specificity at a fixed threshold): exams, with
  replacement, n of n, n_boot times;
- pixel metrics (AP, Dice at a fixed threshold): images of the pixel-labeled set,
  n of n, n_boot times; the metric of a resample is data-set level over all of
  its pixels (an image drawn twice counts twice).

A resample is a row of multiplicities (how often each unit is drawn), so every
replicate is a matrix product of those rows with per-unit sufficient statistics
(per-exam indicators, per-image histograms): no replicate sorts anything.

Pairing: resample_counts(n, n_boot, seed) depends on (n, n_boot, seed) only, so all
runs in one call, and runs bootstrapped in separate calls with the same seed on
the same units, share the same resamples: their deltas are paired.

Replicates where a metric is undefined (e.g. a resample without a positive exam)
are NaN; intervals and tests use the defined ones and report how many (n_valid).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from ictview.errors import IctviewError
from ictview.stats.metrics import (
    ap_from_counts,
    as_binary,
    as_scores,
    auc_from_counts,
    dice_values,
    exam_auc,
    sens_spec_at,
)
from ictview.stats.pixel_stats import PixelStats
from ictview.stats.results import Estimate, MetricResult, PairedComparison, PairedTTest, undefined

CI_PERCENTILES = (2.5, 97.5)


def resample_counts(n: int, n_boot: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """(n_boot, n) int64 multiplicities: row b = how often each unit is drawn in resample b.

    Draws rng.integers(0, n, (n_boot, n)) from np.random.default_rng(seed).
    """
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((n_boot, 0), np.int64)
    idx = rng.integers(0, n, size=(n_boot, n))
    idx += (np.arange(n_boot) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, CI_PERCENTILES)
    return float(lo), float(hi)


def paired_z_test(
    metric: str,
    run_a: str,
    run_b: str,
    point_a: MetricResult,
    point_b: MetricResult,
    reps_a: np.ndarray,
    reps_b: np.ndarray,
    unit: str = "",
    n: int = 0,
) -> PairedComparison:
    """The paper's test of b - a: Z = observed delta / sd(bootstrap deltas), two-sided normal p.

    reps_a[i] and reps_b[i] must come from the same resample. Deltas where either
    replicate is undefined are dropped.
    """
    deltas = np.asarray(reps_b, np.float64) - np.asarray(reps_a, np.float64)
    deltas = deltas[~np.isnan(deltas)]
    delta = point_b.value - point_a.value
    known = dict(metric=metric, run_a=run_a, run_b=run_b, delta=delta, n=n, unit=unit,
                 n_boot=len(reps_a), n_valid=int(deltas.size))  # fmt: skip

    def result(**fields) -> PairedComparison:
        nan = math.nan
        blank = dict(ci_low=nan, ci_high=nan, sd=nan, z=nan, p=nan, ks_statistic=nan, ks_p=nan,
                     reason="")  # fmt: skip
        return PairedComparison(**known, **{**blank, **fields})

    if math.isnan(delta):
        why = point_a.reason if not point_a.defined else point_b.reason
        return result(reason=f"delta undefined: {why}")
    if deltas.size < 2:
        return result(reason="fewer than 2 bootstrap deltas defined")
    lo, hi = percentile_ci(deltas)
    sd = float(np.std(deltas, ddof=1))
    if sd == 0:
        # identical predictions give all-zero deltas: no evidence of a difference
        if delta == 0 and np.all(deltas == 0):
            why = "bootstrap deltas all 0: z = 0 and p = 1 by definition; KS undefined"
            return result(ci_low=lo, ci_high=hi, sd=0.0, z=0.0, p=1.0, reason=why)
        z = math.copysign(math.inf, delta) if delta else 0.0
        return result(ci_low=lo, ci_high=hi, sd=0.0, z=z, p=0.0 if delta else 1.0,
                      reason="bootstrap deltas constant: KS undefined")  # fmt: skip
    z = delta / sd
    p = float(2 * sps.norm.sf(abs(z)))
    ks = sps.kstest((deltas - deltas.mean()) / sd, "norm")
    return result(ci_low=lo, ci_high=hi, sd=sd, z=float(z), p=p, ks_statistic=float(ks.statistic),
                  ks_p=float(ks.pvalue))  # fmt: skip


def paired_t_test(b: np.ndarray, a: np.ndarray) -> PairedTTest:
    """scipy.stats.ttest_rel(b, a), two-sided, degenerate cases defined (see PairedTTest)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise IctviewError(f"paired t-test: {b.size} values against {a.size}")
    ok = ~(np.isnan(a) | np.isnan(b))
    d = b[ok] - a[ok]
    n = int(d.size)
    if n < 2:
        return PairedTTest(
            math.nan,
            math.nan,
            max(n - 1, 0),
            float(d.mean()) if n else math.nan,
            n,
            "fewer than 2 defined pairs",
        )
    mean = float(d.mean())
    if np.all(d == d[0]):
        if d[0] == 0:
            return PairedTTest(0.0, 1.0, n - 1, 0.0, n, "")
        return PairedTTest(math.copysign(math.inf, d[0]), 0.0, n - 1, mean, n, "")
    res = sps.ttest_rel(b[ok], a[ok])
    return PairedTTest(float(res.statistic), float(res.pvalue), n - 1, mean, n, "")


@dataclass
class BootstrapResult:
    """Point values and bootstrap replicates for several runs on the same resamples."""

    unit: str  # "exam" or "image"
    n: int
    n_boot: int
    seed: int | None
    points: dict[str, dict[str, MetricResult]] = field(
        default_factory=dict
    )  # run -> metric -> value
    replicates: dict[str, dict[str, np.ndarray]] = field(
        default_factory=dict
    )  # run -> metric -> (n_boot,)
    thresholds: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # run -> metric -> threshold used

    @property
    def runs(self) -> list[str]:
        return list(self.points)

    def metrics(self, run: str) -> list[str]:
        return list(self.points[run])

    def _get(self, run: str, metric: str) -> tuple[MetricResult, np.ndarray]:
        try:
            return self.points[run][metric], self.replicates[run][metric]
        except KeyError:
            raise IctviewError(f"bootstrap: no {metric!r} for run {run!r}") from None

    def estimate(self, run: str, metric: str) -> Estimate:
        point, reps = self._get(run, metric)
        valid = reps[~np.isnan(reps)]

        def est(lo: float = math.nan, hi: float = math.nan, reason: str = "") -> Estimate:
            return Estimate(run=run, metric=metric, value=point.value, ci_low=lo, ci_high=hi,
                            n=self.n, unit=self.unit, n_boot=self.n_boot, n_valid=int(valid.size),
                            reason=reason)  # fmt: skip

        if not point.defined:
            return est(reason=point.reason)
        if valid.size < 2:
            return est(reason="CI undefined: fewer than 2 bootstrap replicates defined")
        return est(*percentile_ci(valid))

    def compare(self, run_a: str, run_b: str, metric: str) -> PairedComparison:
        """run_b - run_a (e.g. compare("baseline", "ss", "auc") is positive when SS is better)."""
        pa, ra = self._get(run_a, metric)
        pb, rb = self._get(run_b, metric)
        return paired_z_test(metric, run_a, run_b, pa, pb, ra, rb, self.unit, self.n)

    def to_dict(self, pairs: Sequence[tuple[str, str]] | None = None) -> dict:
        """JSON-ready: every estimate, the thresholds used, and paired comparisons.

        pairs: (run_a, run_b) to compare (b - a); default every pair in run order.
        """
        if pairs is None:
            pairs = list(itertools.combinations(self.runs, 2))
        return {
            "unit": self.unit,
            "n": self.n,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "ci": "percentile 2.5/97.5",
            "estimates": [
                self.estimate(r, m).to_dict() for r in self.runs for m in self.metrics(r)
            ],
            "thresholds": self.thresholds,
            "comparisons": [
                self.compare(a, b, m).to_dict()
                for a, b in pairs
                for m in self.metrics(a)
                if m in self.points[b]
            ],
        }

    def add(
        self,
        run: str,
        metric: str,
        point: MetricResult,
        reps: np.ndarray,
        threshold: float | None = None,
    ) -> None:
        self.points.setdefault(run, {})[metric] = point
        self.replicates.setdefault(run, {})[metric] = np.asarray(reps, np.float64)
        if threshold is not None:
            self.thresholds.setdefault(run, {})[metric] = float(threshold)


def _seed_record(seed) -> int | None:
    return int(seed) if isinstance(seed, (int, np.integer)) else None


def bootstrap_exams(
    labels: object,
    scores: Mapping[str, object],
    *,
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
    thresholds: Mapping[str, float] | None = None,
) -> BootstrapResult:
    """Exam-level bootstrap of every run on the same exam resamples.

    labels: 0/1 reference per exam (majority vote); scores: run -> exam score.
    Metrics: "auc"; with thresholds[run] (e.g. operating_point(...).threshold chosen
    on the full test set and then held fixed), also "sensitivity" and "specificity".
    """
    y = as_binary(labels)
    n = y.size
    res = BootstrapResult("exam", n, n_boot, _seed_record(seed))
    counts = resample_counts(n, n_boot, seed)
    c_pos, c_neg = counts * y, counts * ~y
    n_pos_b, n_neg_b = c_pos.sum(1), c_neg.sum(1)
    for run, raw in scores.items():
        s = as_scores(raw, n, f"scores of {run}")
        if n == 0:
            res.add(run, "auc", undefined("AUC undefined: no exams"), np.full(n_boot, np.nan))
        else:
            order = np.argsort(s, kind="stable")
            ss = s[order]
            starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
            pos = np.add.reduceat(c_pos[:, order], starts, axis=1)
            neg = np.add.reduceat(c_neg[:, order], starts, axis=1)
            res.add(run, "auc", exam_auc(y, s), auc_from_counts(pos, neg))
        if thresholds and run in thresholds:
            t = float(thresholds[run])
            pred = s >= t
            tp_b = counts @ (y & pred)
            fp_b = counts @ (~y & pred)
            op = sens_spec_at(y, s, t)
            with np.errstate(invalid="ignore", divide="ignore"):
                sens = np.where(n_pos_b > 0, tp_b / np.maximum(n_pos_b, 1), np.nan)
                spec = np.where(n_neg_b > 0, (n_neg_b - fp_b) / np.maximum(n_neg_b, 1), np.nan)
            for name, value, reps in (
                ("sensitivity", op.sensitivity, sens),
                ("specificity", op.specificity, spec),
            ):
                point = MetricResult(value, "" if not math.isnan(value) else op.reason, n)
                res.add(run, name, point, reps, threshold=t)
    return res


def bootstrap_pixels(
    stats: Mapping[str, PixelStats],
    *,
    dice_thresholds: Mapping[str, float] | None = None,
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
    chunk: int = 128,
) -> BootstrapResult:
    """Image-level bootstrap of data-set-level pixel AP (and Dice) for every run.

    stats: run -> PixelStats on the same images and reference (checked). Metrics:
    "ap"; with dice_thresholds[run] (chosen on validation, e.g.
    PixelStats.best_dice_threshold), also "dice" at that fixed threshold.
    Cost per run: one (n_boot x n_images) @ (n_images x 2 bins) float64 product with the
    sparse histograms (exact for integer counts), in chunks of `chunk` resamples: memory is
    one run's non-empty bins plus a (chunk x 2 bins) block, whatever the number of runs.
    """
    if not stats:
        raise IctviewError("bootstrap: no runs")
    first = next(iter(stats.values()))
    for run, st in stats.items():
        if not first.same_images(st):
            raise IctviewError(f"bootstrap: run {run!r} is not on the same images and reference")
    n = first.n_images
    res = BootstrapResult("image", n, n_boot, _seed_record(seed))
    counts = resample_counts(n, n_boot, seed).astype(np.float64)
    for run, st in stats.items():
        k = st.n_bins
        hist_t = st.hist.T.astype(np.float64)  # (2 bins, n_images) sparse
        ap = np.empty(n_boot)
        for i in range(0, n_boot, chunk):
            summed = np.asarray(hist_t @ counts[i : i + chunk].T).T
            ap[i : i + chunk] = ap_from_counts(summed[:, :k], summed[:, k:])
        del hist_t
        res.add(run, "ap", st.average_precision(), ap)
        if dice_thresholds and run in dice_thresholds:
            t = float(dice_thresholds[run])
            tp, fp, fn = (counts @ st.dice_counts(t).astype(np.float64)).T
            res.add(run, "dice", st.dice(t), dice_values(tp, fp, fn), threshold=t)
    return res
