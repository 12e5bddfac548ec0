"""Test-retest analysis: runs against each of one rater's repeated segmentations.

Table 4 of the paper: for every repetition r of the rater's segmentation of the
pixel-labeled test set, each run's pixel AP and Dice against repetition r, with a
percentile CI from `n_boot` (50) image bootstraps; then paired t-tests of run b
against run a across those bootstraps (b and a share each resample). The
repetitions segment the same images, so the same seed gives the same image
resamples for every repetition. Tests are reported per repetition and pooled over
all repetitions' bootstraps ("all").

Intra-rater agreement: Dice between each pair of repetitions (over all voxels of
all exams, and per exam) and per-exam volume differences in mL.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ictview.core.geometry import Geometry
from ictview.core.labels import IGNORE
from ictview.errors import IctviewError
from ictview.stats.bootstrap import BootstrapResult, bootstrap_pixels, paired_t_test
from ictview.stats.metrics import dice_result, dice_values
from ictview.stats.pixel_stats import PixelStats
from ictview.stats.results import Estimate, MetricResult, PairedTTest, json_safe

POOLED = "all"


@dataclass(frozen=True)
class RetestTest:
    repetition: str  # a repetition name, or "all" for the pooled test
    metric: str  # "ap" or "dice"
    run_a: str
    run_b: str
    test: PairedTTest  # ttest_rel(b, a) over the paired bootstrap replicates

    def to_dict(self) -> dict:
        return {
            "repetition": self.repetition,
            "metric": self.metric,
            "run_a": self.run_a,
            "run_b": self.run_b,
            **self.test.to_dict(),
        }


@dataclass
class RetestResult:
    runs: list[str]
    repetitions: list[str]
    n_boot: int
    seed: int | None
    bootstraps: dict[str, BootstrapResult]  # repetition -> all runs against it
    tests: list[RetestTest]

    def estimate(self, repetition: str, run: str, metric: str) -> Estimate:
        return self.bootstraps[repetition].estimate(run, metric)

    def estimates(self) -> list[tuple[str, Estimate]]:
        """(repetition, estimate) for every repetition, run and metric, in table order."""
        return [
            (r, b.estimate(run, m))
            for r, b in self.bootstraps.items()
            for run in b.runs
            for m in b.metrics(run)
        ]

    def to_dict(self) -> dict:
        return {
            "runs": self.runs,
            "repetitions": self.repetitions,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "estimates": [{"repetition": r, **e.to_dict()} for r, e in self.estimates()],
            "tests": [t.to_dict() for t in self.tests],
        }

    def test(self, repetition: str, run_a: str, run_b: str, metric: str) -> PairedTTest:
        for t in self.tests:
            if (t.repetition, t.run_a, t.run_b, t.metric) == (repetition, run_a, run_b, metric):
                return t.test
        raise IctviewError(f"retest: no test {run_b} vs {run_a} on {metric} for {repetition}")


def retest_analysis(
    runs: Mapping[str, Sequence[PixelStats]],
    *,
    dice_thresholds: Mapping[str, float] | None = None,
    repetitions: Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_boot: int = 50,
    seed: int = 0,
) -> RetestResult:
    """runs: run -> one PixelStats per repetition (its predictions against that repetition).

    pairs: (run_a, run_b) to t-test; default: the first run against each other run.
    dice_thresholds: run -> fixed Dice threshold (chosen on validation); without
    one a run gets AP only.
    """
    names = list(runs)
    if not names:
        raise IctviewError("retest: no runs")
    n_rep = len(runs[names[0]])
    if any(len(v) != n_rep for v in runs.values()) or n_rep == 0:
        raise IctviewError("retest: every run needs one PixelStats per repetition")
    reps = list(repetitions) if repetitions is not None else [f"rep{i + 1}" for i in range(n_rep)]
    if len(reps) != n_rep:
        raise IctviewError(f"retest: {len(reps)} repetition names for {n_rep} repetitions")
    pairs = list(pairs) if pairs is not None else [(names[0], b) for b in names[1:]]
    boots = {
        r: bootstrap_pixels(
            {run: runs[run][i] for run in names},
            dice_thresholds=dice_thresholds,
            n_boot=n_boot,
            seed=seed,
        )
        for i, r in enumerate(reps)
    }
    tests = []
    for a, b in pairs:
        for metric in ("ap", "dice"):
            if (
                metric not in boots[reps[0]].replicates[a]
                or metric not in boots[reps[0]].replicates[b]
            ):
                continue
            pooled_a, pooled_b = [], []
            for r in reps:
                ra, rb = boots[r].replicates[a][metric], boots[r].replicates[b][metric]
                tests.append(RetestTest(r, metric, a, b, paired_t_test(rb, ra)))
                pooled_a.append(ra)
                pooled_b.append(rb)
            tests.append(
                RetestTest(
                    POOLED,
                    metric,
                    a,
                    b,
                    paired_t_test(np.concatenate(pooled_b), np.concatenate(pooled_a)),
                )
            )
    return RetestResult(names, reps, n_boot, seed, boots, tests)


# ---------------------------------------------------------------------------
# intra-rater agreement


def voxel_volume_ml(geometry: Geometry) -> float:
    """Volume of one voxel in mL (slice spacing along the normal x dy x dx, mm^3 / 1000)."""
    return float(np.prod(geometry.spacing_zyx)) / 1000.0


def _hemorrhage(mask: object) -> np.ndarray:
    m = np.asarray(mask)
    return m if m.dtype == bool else (m > 0) & (m != IGNORE)


@dataclass(frozen=True)
class RepetitionAgreement:
    """Agreement of two repetitions of one rater's segmentation."""

    rep_a: str
    rep_b: str
    dice: MetricResult  # over all voxels of all exams
    exam_ids: tuple[str, ...]
    exam_dice: np.ndarray  # per exam; NaN where both repetitions are empty
    volume_a_ml: np.ndarray  # hemorrhage volume per exam
    volume_b_ml: np.ndarray
    diff_ml: np.ndarray  # b - a per exam
    mean_diff_ml: float
    sd_diff_ml: float  # ddof=1; NaN with one exam
    mean_abs_diff_ml: float

    def to_dict(self) -> dict:
        summary = json_safe(
            {
                "rep_a": self.rep_a,
                "rep_b": self.rep_b,
                "mean_diff_ml": self.mean_diff_ml,
                "sd_diff_ml": self.sd_diff_ml,
                "mean_abs_diff_ml": self.mean_abs_diff_ml,
            }
        )
        as_list = lambda a: [None if math.isnan(v) else float(v) for v in a]  # noqa: E731
        return {
            **summary,
            "dice": self.dice.to_dict(),
            "exam_ids": list(self.exam_ids),
            "exam_dice": as_list(self.exam_dice),
            "volume_a_ml": as_list(self.volume_a_ml),
            "volume_b_ml": as_list(self.volume_b_ml),
            "diff_ml": as_list(self.diff_ml),
        }


def intra_rater_agreement(
    repetitions: Mapping[str, Sequence[object]],
    voxel_volume: float | Sequence[float],
    exam_ids: Sequence[str] | None = None,
) -> list[RepetitionAgreement]:
    """Every pair of repetitions: Dice and volume differences.

    repetitions: name -> one label volume per exam (same exams, same order, same
    shapes across repetitions); hemorrhage = labels 1..5 (255 ignored) or True.
    voxel_volume: mL per voxel, one for all exams or one per exam (voxel_volume_ml).
    """
    names = list(repetitions)
    if len(names) < 2:
        raise IctviewError("intra-rater agreement: needs at least 2 repetitions")
    n = len(repetitions[names[0]])
    if any(len(v) != n for v in repetitions.values()):
        raise IctviewError("intra-rater agreement: repetitions have different exam counts")
    vox = np.broadcast_to(np.asarray(voxel_volume, np.float64), (n,))
    ids = tuple(exam_ids) if exam_ids is not None else tuple(str(i) for i in range(n))
    # per repetition and exam: voxel count; per pair and exam: overlap
    masks = {r: [_hemorrhage(m) for m in repetitions[r]] for r in names}
    for i in range(n):
        shapes = {masks[r][i].shape for r in names}
        if len(shapes) != 1:
            raise IctviewError(f"{ids[i]}: repetitions have different shapes {sorted(shapes)}")
    sizes = {r: np.array([np.count_nonzero(m) for m in masks[r]], np.int64) for r in names}
    out = []
    for a, b in itertools.combinations(names, 2):
        overlap = np.array(
            [np.count_nonzero(ma & mb) for ma, mb in zip(masks[a], masks[b])], np.int64
        )
        fp, fn = sizes[b] - overlap, sizes[a] - overlap
        vol_a, vol_b = sizes[a] * vox, sizes[b] * vox
        diff = vol_b - vol_a
        out.append(RepetitionAgreement(
            rep_a=a, rep_b=b, exam_ids=ids,
            dice=dice_result(int(overlap.sum()), int(fp.sum()), int(fn.sum())),
            exam_dice=dice_values(overlap, fp, fn),
            volume_a_ml=vol_a, volume_b_ml=vol_b, diff_ml=diff,
            mean_diff_ml=float(diff.mean()) if n else math.nan,
            sd_diff_ml=float(diff.std(ddof=1)) if n >= 2 else math.nan,
            mean_abs_diff_ml=float(np.abs(diff).mean()) if n else math.nan,
        ))  # fmt: skip
    return out
