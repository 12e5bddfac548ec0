"""Evaluation statistics of the study (numpy/scipy only): metrics, bootstrap, paired tests.

Used by `ictview-train report` and by the GUI dashboard. A report builds its tables as:

    y = majority_vote(reads)                                # exam reference (3 readers)
    ops = {run: operating_point(y, s, 0.92) for run, s in exam_scores.items()}
    exams = bootstrap_exams(y, exam_scores, n_boot=1000, seed=0,
                            thresholds={r: op.threshold for r, op in ops.items()})
    thr = {run: val_stats[run].best_dice_threshold("validation").threshold for run in runs}
    pixels = bootstrap_pixels(test_stats, dice_thresholds=thr, n_boot=1000, seed=0)
    exams.estimate("ss", "auc"); pixels.estimate("ss", "dice")     # value [ci_low, ci_high]
    pixels.compare("baseline", "ss", "ap")                          # delta, CI, z, p, KS
    retest_analysis({run: [stats vs rep1, rep2, rep3]}, dice_thresholds=thr)   # Table 4
    intra_rater_agreement({rep: label volumes}, voxel_volume)                  # Dice, mL
    subtype_auc(y, exam_scores["ss"], subtypes)                                # Suppl. Table 1
    roc_curve(y, s) / test_stats[run].pr_curve()                               # plots

where test_stats[run] = PixelStats.from_volumes((exam, probs, labels) ...) on the
pixel-labeled test subset. Undefined values are NaN with a reason (results.py).
"""

from ictview.stats.bootstrap import (
    BootstrapResult,
    bootstrap_exams,
    bootstrap_pixels,
    paired_t_test,
    paired_z_test,
    resample_counts,
)
from ictview.stats.metrics import (
    OperatingPoint,
    PrCurve,
    RocCurve,
    ThresholdChoice,
    average_precision,
    best_dice_threshold,
    dice_score,
    exam_auc,
    isolated_subtype_mask,
    majority_vote,
    operating_point,
    precision_recall_curve,
    roc_curve,
    sens_spec_at,
    subtype_auc,
)
from ictview.stats.pixel_stats import PixelStats, image_histogram
from ictview.stats.results import Estimate, MetricResult, PairedComparison, PairedTTest
from ictview.stats.retest import (
    RepetitionAgreement,
    RetestResult,
    intra_rater_agreement,
    retest_analysis,
    voxel_volume_ml,
)

__all__ = [
    "BootstrapResult",
    "Estimate",
    "MetricResult",
    "OperatingPoint",
    "PairedComparison",
    "PairedTTest",
    "PixelStats",
    "PrCurve",
    "RepetitionAgreement",
    "RetestResult",
    "RocCurve",
    "ThresholdChoice",
    "average_precision",
    "best_dice_threshold",
    "bootstrap_exams",
    "bootstrap_pixels",
    "dice_score",
    "exam_auc",
    "image_histogram",
    "intra_rater_agreement",
    "isolated_subtype_mask",
    "majority_vote",
    "operating_point",
    "paired_t_test",
    "paired_z_test",
    "precision_recall_curve",
    "resample_counts",
    "retest_analysis",
    "roc_curve",
    "sens_spec_at",
    "subtype_auc",
    "voxel_volume_ml",
]
