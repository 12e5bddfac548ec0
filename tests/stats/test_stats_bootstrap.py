"""Bootstrap: replicates equal the exact metric on the resampled data; paired tests vs scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy import stats as sps

from ictview.errors import IctviewError
from ictview.stats.bootstrap import (
    bootstrap_exams,
    bootstrap_pixels,
    paired_t_test,
    paired_z_test,
    resample_counts,
)
from ictview.stats.pixel_stats import PixelStats
from ictview.stats.results import MetricResult

TOL = 1e-9


def exams(seed=0, n=300, sep=(0.8, 1.6)):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.42
    scores = {
        f"run{i}": np.round(rng.normal(s * y, 1.0), 2) for i, s in enumerate(sep)
    }  # rounded: ties
    return y, scores


def pixel_runs(seed=0, n=24, size=16):
    rng = np.random.default_rng(seed)
    masks, a, b = [], [], []
    for i in range(n):
        m = np.zeros((size, size), np.uint8)
        if i % 2:
            m[rng.integers(0, 8) :, rng.integers(0, 8) :][:4, :5] = 2
        truth = m > 0
        a.append(np.clip(rng.normal(0.2 + 0.35 * truth, 0.2), 0, 1).astype(np.float16))
        b.append(np.clip(rng.normal(0.2 + 0.55 * truth, 0.2), 0, 1).astype(np.float16))
        masks.append(m)
    return masks, PixelStats.from_images(zip(a, masks)), PixelStats.from_images(zip(b, masks)), a, b


def test_resample_counts_reproducible_and_sound():
    c1 = resample_counts(50, 200, seed=3)
    assert c1.shape == (200, 50) and np.all(c1.sum(1) == 50)
    assert np.array_equal(c1, resample_counts(50, 200, seed=3))
    assert not np.array_equal(c1, resample_counts(50, 200, seed=4))
    idx = np.random.default_rng(3).integers(0, 50, size=(200, 50))
    assert np.array_equal(c1[17], np.bincount(idx[17], minlength=50))


def test_exam_replicates_equal_sklearn_on_the_resample():
    y, scores = exams()
    thr = {"run0": 0.5}
    boot = bootstrap_exams(y, scores, n_boot=40, seed=11, thresholds=thr)
    counts = resample_counts(y.size, 40, 11)
    for b in range(40):
        take = np.repeat(np.arange(y.size), counts[b])
        for run, s in scores.items():
            assert abs(boot.replicates[run]["auc"][b] - skm.roc_auc_score(y[take], s[take])) <= TOL
        tn, fp, fn, tp = skm.confusion_matrix(y[take], scores["run0"][take] >= 0.5).ravel()
        assert abs(boot.replicates["run0"]["sensitivity"][b] - tp / (tp + fn)) <= TOL
        assert abs(boot.replicates["run0"]["specificity"][b] - tn / (tn + fp)) <= TOL
    assert boot.points["run0"]["auc"].value == pytest.approx(
        skm.roc_auc_score(y, scores["run0"]), abs=TOL
    )
    assert (
        boot.thresholds["run0"]["specificity"] == 0.5 and "sensitivity" not in boot.points["run1"]
    )


def test_pixel_replicates_equal_sklearn_on_the_resample():
    masks, sa, sb, a, _ = pixel_runs()
    boot = bootstrap_pixels(
        {"a": sa, "b": sb}, dice_thresholds={"a": 0.5}, n_boot=30, seed=5, chunk=7
    )
    counts = resample_counts(sa.n_images, 30, 5)
    for r in range(0, 30, 3):
        take = np.repeat(np.arange(sa.n_images), counts[r])
        y = np.concatenate([masks[i].ravel() > 0 for i in take])
        s = np.concatenate([a[i].ravel() for i in take])
        assert abs(boot.replicates["a"]["ap"][r] - skm.average_precision_score(y, s)) <= TOL
        assert abs(boot.replicates["a"]["dice"][r] - skm.f1_score(y, s >= 0.5)) <= TOL
    assert "dice" not in boot.points["b"]


def test_reproducible_and_paired_across_calls():
    y, scores = exams(1)
    joint = bootstrap_exams(y, scores, n_boot=100, seed=9)
    again = bootstrap_exams(y, scores, n_boot=100, seed=9)
    alone = bootstrap_exams(y, {"run1": scores["run1"]}, n_boot=100, seed=9)
    assert np.array_equal(joint.replicates["run0"]["auc"], again.replicates["run0"]["auc"])
    assert np.array_equal(joint.replicates["run1"]["auc"], alone.replicates["run1"]["auc"])
    assert joint.compare("run0", "run1", "auc") == again.compare("run0", "run1", "auc")
    other = bootstrap_exams(y, scores, n_boot=100, seed=10)
    assert not np.array_equal(joint.replicates["run0"]["auc"], other.replicates["run0"]["auc"])


def test_ci_contains_point_estimate():
    y, scores = exams(2)
    boot = bootstrap_exams(y, scores, n_boot=1000, seed=0)
    masks, sa, sb, *_ = pixel_runs(2, n=40)
    pix = bootstrap_pixels(
        {"a": sa, "b": sb}, dice_thresholds={"a": 0.45, "b": 0.5}, n_boot=300, seed=0
    )
    for res, metric in ((boot, "auc"), (pix, "ap"), (pix, "dice")):
        for run in res.runs:
            e = res.estimate(run, metric)
            assert e.reason == "" and e.n_valid == e.n_boot
            assert e.ci_low < e.value < e.ci_high and e.ci_high - e.ci_low < 0.3
            assert e.n == res.n and e.unit == res.unit


def test_paired_test_identical_and_clearly_different():
    y, scores = exams(3, n=400, sep=(0.3, 2.0))
    boot = bootstrap_exams(y, {**scores, "copy": scores["run0"].copy()}, n_boot=500, seed=1)
    same = boot.compare("run0", "copy", "auc")
    assert same.delta == 0 and same.z == 0 and same.p == 1.0 and same.sd == 0
    assert math.isnan(same.ks_p) and "p = 1" in same.reason and not same.normal
    diff = boot.compare("run0", "run1", "auc")
    assert diff.delta > 0.2 and diff.p < 1e-6 and diff.ci_low > 0 and diff.reason == ""
    assert diff.n_valid == 500


def test_z_and_ks_match_scipy_and_the_formula():
    rng = np.random.default_rng(4)
    ra, rb = rng.normal(0.90, 0.01, 1000), rng.normal(0.93, 0.01, 1000)
    c = paired_z_test("auc", "a", "b", MetricResult(0.9), MetricResult(0.93), ra, rb)
    d = rb - ra
    sd = d.std(ddof=1)
    assert abs(c.sd - sd) <= TOL and abs(c.z - 0.03 / sd) <= TOL
    assert abs(c.p - math.erfc(abs(c.z) / math.sqrt(2))) <= TOL  # two-sided normal p
    assert abs(c.p - 2 * sps.norm.sf(abs(c.z))) <= TOL
    # KS statistic computed by hand on the standardized deltas
    x = np.sort((d - d.mean()) / sd)
    cdf = sps.norm.cdf(x)
    i = np.arange(1, x.size + 1)
    ks = max((i / x.size - cdf).max(), (cdf - (i - 1) / x.size).max())
    assert abs(c.ks_statistic - ks) <= TOL
    assert abs(c.ks_p - sps.kstest((d - d.mean()) / sd, "norm").pvalue) <= TOL
    lo, hi = np.percentile(d, [2.5, 97.5])
    assert (c.ci_low, c.ci_high) == (lo, hi)


def test_paired_t_test_matches_scipy_and_defines_degenerate_cases():
    rng = np.random.default_rng(8)
    for _ in range(20):
        a = rng.normal(0.8, 0.02, 50)
        b = a + rng.normal(0.01, 0.01, 50)
        res, ref = paired_t_test(b, a), sps.ttest_rel(b, a)
        assert abs(res.t - ref.statistic) <= TOL and abs(res.p - ref.pvalue) <= TOL and res.df == 49
    same = paired_t_test(a, a)
    assert (same.t, same.p) == (0.0, 1.0)
    grid = np.arange(50) / 64.0  # b - a exactly 0.5 in floating point
    shifted = paired_t_test(grid + 0.5, grid)
    assert shifted.p == 0.0 and shifted.t == math.inf
    few = paired_t_test(np.array([1.0, np.nan]), np.array([0.5, 0.2]))
    assert math.isnan(few.p) and few.reason


def test_undefined_replicates_and_points_are_reported():
    y = np.array([1, 0, 0, 0, 0, 0])  # one positive exam: many resamples have none
    boot = bootstrap_exams(y, {"a": np.arange(6.0), "b": np.arange(6.0)[::-1]}, n_boot=200, seed=2)
    e = boot.estimate("a", "auc")
    assert e.reason == "" and 0 < e.n_valid < 200
    assert np.isnan(boot.replicates["a"]["auc"]).sum() == 200 - e.n_valid
    c = boot.compare("a", "b", "auc")
    assert c.n_valid == e.n_valid and not math.isnan(c.p)
    none = bootstrap_exams(np.zeros(5), {"a": np.arange(5.0), "b": np.ones(5)}, n_boot=20, seed=0)
    e = none.estimate("a", "auc")
    assert math.isnan(e.value) and math.isnan(e.ci_low) and "no positive" in e.reason
    assert "delta undefined" in none.compare("a", "b", "auc").reason
    empty = bootstrap_exams([], {"a": []}, n_boot=10)
    assert "no exams" in empty.estimate("a", "auc").reason
    # the report writes these as JSON: NaN becomes null next to its reason
    doc = json.loads(json.dumps(none.to_dict(), allow_nan=False))
    assert doc["estimates"][0]["value"] is None and doc["estimates"][0]["reason"]
    assert [(c["run_a"], c["run_b"]) for c in doc["comparisons"]] == [("a", "b")]


def test_pixel_bootstrap_requires_the_same_images():
    masks, sa, sb, a, b = pixel_runs()
    other = PixelStats.from_images(zip(b[1:] + b[:1], masks[1:] + masks[:1]))
    with pytest.raises(IctviewError, match="same images"):
        bootstrap_pixels({"a": sa, "b": other}, n_boot=5)
    with pytest.raises(IctviewError, match="no 'dice'"):
        bootstrap_pixels({"a": sa}, n_boot=5).estimate("a", "dice")
