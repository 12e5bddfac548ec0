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

# Lazy: `ictview-train` builds its parser from ictview.stats.report_cli, and importing
# bootstrap (scipy.stats) eagerly cost seconds before any argument was checked.
import importlib

_WHERE = {
    "BootstrapResult": "bootstrap",
    "Estimate": "results",
    "MetricResult": "results",
    "OperatingPoint": "metrics",
    "PairedComparison": "results",
    "PairedTTest": "results",
    "PixelStats": "pixel_stats",
    "PrCurve": "metrics",
    "RepetitionAgreement": "retest",
    "RetestResult": "retest",
    "RocCurve": "metrics",
    "ThresholdChoice": "metrics",
    "average_precision": "metrics",
    "best_dice_threshold": "metrics",
    "bootstrap_exams": "bootstrap",
    "bootstrap_pixels": "bootstrap",
    "dice_score": "metrics",
    "exam_auc": "metrics",
    "image_histogram": "pixel_stats",
    "intra_rater_agreement": "retest",
    "isolated_subtype_mask": "metrics",
    "majority_vote": "metrics",
    "operating_point": "metrics",
    "paired_t_test": "bootstrap",
    "paired_z_test": "bootstrap",
    "precision_recall_curve": "metrics",
    "resample_counts": "bootstrap",
    "retest_analysis": "retest",
    "roc_curve": "metrics",
    "sens_spec_at": "metrics",
    "subtype_auc": "metrics",
    "voxel_volume_ml": "retest",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"ictview.stats.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ictview.stats' has no attribute {name!r}")
