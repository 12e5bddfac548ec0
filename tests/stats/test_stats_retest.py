"""Test-retest analysis and intra-rater agreement on toy masks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError
from ictview.stats.pixel_stats import PixelStats
from ictview.stats.retest import intra_rater_agreement, retest_analysis, voxel_volume_ml


def toy_study(seed=0, n_exams=3, z=6, size=24):
    """Three repetitions of one rater (the blob boundary moves by a pixel) and two runs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    reps = {f"rep{r + 1}": [] for r in range(3)}
    base, better = [], []
    for e in range(n_exams):
        centre = rng.integers(8, 16, 2)
        blob = np.stack(
            [(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < (2 + k % 4) ** 2 for k in range(z)]
        )
        blob[: 1 + e % 2] = False  # some empty slices
        for r, name in enumerate(reps):
            grown = blob.copy()
            grown[:, :, 1:] |= blob[:, :, :-1] if r == 1 else False  # rep2 one pixel wider
            reps[name].append(
                np.where(grown if r != 2 else np.roll(blob, 1, axis=1), 3, 0).astype(np.uint8)
            )
        base.append(np.clip(rng.normal(0.2 + 0.4 * blob, 0.2), 0, 1).astype(np.float16))
        better.append(np.clip(rng.normal(0.2 + 0.6 * blob, 0.15), 0, 1).astype(np.float16))
    return reps, base, better


def stats_for(preds, rep_masks):
    return PixelStats.from_volumes(
        [(f"E{i}", p, m) for i, (p, m) in enumerate(zip(preds, rep_masks))]
    )


def test_retest_runs_against_each_repetition():
    reps, base, better = toy_study()
    runs = {
        "baseline": [stats_for(base, m) for m in reps.values()],
        "ss": [stats_for(better, m) for m in reps.values()],
    }
    thr = {"baseline": 0.45, "ss": 0.5}
    res = retest_analysis(runs, dice_thresholds=thr, repetitions=list(reps), n_boot=50, seed=3)
    assert res.repetitions == ["rep1", "rep2", "rep3"] and res.n_boot == 50
    for i, rep in enumerate(reps):
        for run in runs:
            ap, dice = res.estimate(rep, run, "ap"), res.estimate(rep, run, "dice")
            assert ap.value == runs[run][i].average_precision().value
            assert dice.value == runs[run][i].dice(thr[run]).value
            assert ap.ci_low <= ap.value <= ap.ci_high and ap.n_boot == 50
        for metric in ("ap", "dice"):
            t = res.test(rep, "baseline", "ss", metric)
            boot = res.bootstraps[rep]
            ref = sps.ttest_rel(boot.replicates["ss"][metric], boot.replicates["baseline"][metric])
            assert abs(t.t - ref.statistic) <= 1e-9 and abs(t.p - ref.pvalue) <= 1e-9
            assert t.mean_diff > 0 and t.p < 1e-3 and t.df == 49
    pooled = res.test("all", "baseline", "ss", "dice")
    assert pooled.n == 150 and pooled.p < 1e-3
    # the repetitions differ, so the same run scores differently against each
    assert len({res.estimate(r, "ss", "dice").value for r in reps}) == 3
    # same seed -> same image resamples for every repetition
    assert len(res.estimates()) == 3 * 2 * 2
    doc = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert len(doc["tests"]) == 2 * 4 and doc["estimates"][0]["repetition"] == "rep1"


def test_retest_identical_runs_give_p_one():
    reps, base, _ = toy_study(1)
    runs = {
        "a": [stats_for(base, m) for m in reps.values()],
        "b": [stats_for(base, m) for m in reps.values()],
    }
    res = retest_analysis(runs, n_boot=10, seed=0)
    assert res.test("rep2", "a", "b", "ap").p == 1.0
    assert all(t.metric == "ap" for t in res.tests)  # no thresholds: AP only
    with pytest.raises(IctviewError, match="one PixelStats per repetition"):
        retest_analysis({"a": runs["a"], "b": runs["b"][:2]})


def test_intra_rater_agreement_known_values():
    a = np.zeros((2, 4, 4), np.uint8)
    a[0, :2, :2] = 1  # 4 voxels
    b = a.copy()
    b[0, 2, :2] = 2  # 6 voxels, overlap 4
    b[1, 0, 0] = 255  # ignored: not hemorrhage
    empty = np.zeros((3, 3, 3), np.uint8)
    pairs = intra_rater_agreement(
        {"rep1": [a, empty], "rep2": [b, empty], "rep3": [a, empty]},
        voxel_volume=[0.5, 1.0],
        exam_ids=["E1", "E2"],
    )
    assert [(p.rep_a, p.rep_b) for p in pairs] == [
        ("rep1", "rep2"),
        ("rep1", "rep3"),
        ("rep2", "rep3"),
    ]
    p12, p13, _ = pairs
    assert p12.dice.value == pytest.approx(2 * 4 / (4 + 6))
    assert p12.exam_dice[0] == pytest.approx(0.8) and math.isnan(p12.exam_dice[1])
    np.testing.assert_allclose(p12.volume_a_ml, [2.0, 0.0])
    np.testing.assert_allclose(p12.diff_ml, [1.0, 0.0])
    assert p12.mean_diff_ml == 0.5 and p12.mean_abs_diff_ml == 0.5
    assert p12.sd_diff_ml == pytest.approx(np.std([1.0, 0.0], ddof=1))
    assert p13.dice.value == 1.0 and np.all(p13.diff_ml == 0)
    d = p12.to_dict()
    assert d["exam_dice"][1] is None and d["exam_ids"] == ["E1", "E2"]
    with pytest.raises(IctviewError, match="E2"):
        intra_rater_agreement({"r1": [a, empty], "r2": [b, a]}, 1.0, ["E1", "E2"])


def test_voxel_volume_from_geometry():
    g = Geometry((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.5, 0.4))
    assert voxel_volume_ml(g) == pytest.approx(5.0 * 0.5 * 0.4 / 1000)
