"""Exact metrics against scikit-learn (the reference) on random and adversarial inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ictview.errors import IctviewError
from ictview.stats import metrics as M

TOL = 1e-9
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def labelled_scores(draw, min_size=1, max_size=120):
    n = draw(st.integers(min_size, max_size))
    labels = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    kind = draw(st.sampled_from(["ties", "float", "float16", "extreme"]))
    if kind == "ties":  # few distinct values: many ties across classes
        values = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        scores = np.array(values, float) / 3
    elif kind == "float16":
        values = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
        scores = np.array(values).astype(np.float16)
    elif kind == "extreme":
        values = draw(
            st.lists(
                st.sampled_from([-1e300, -0.0, 0.0, 5e-324, 1.0, 1 + 2**-52, 1e300]),
                min_size=n,
                max_size=n,
            )
        )
        scores = np.array(values)
    else:
        values = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n))
        scores = np.array(values)
    return labels, scores


def _both_classes(y):
    return 0 < y.sum() < y.size


@SETTINGS
@given(labelled_scores())
def test_auc_matches_sklearn(data):
    y, s = data
    got = M.exam_auc(y, s)
    if _both_classes(y):
        assert got.reason == ""
        assert abs(got.value - skm.roc_auc_score(y, s)) <= TOL
    else:
        assert math.isnan(got.value) and "AUC undefined" in got.reason


@SETTINGS
@given(labelled_scores())
def test_average_precision_matches_sklearn(data):
    y, s = data
    got = M.average_precision(y, s)
    if y.sum() > 0:
        assert abs(got.value - skm.average_precision_score(y, s)) <= TOL
    else:  # sklearn returns 0 (with a warning): we say why it is undefined instead
        assert math.isnan(got.value) and "no positive" in got.reason


@SETTINGS
@given(labelled_scores(), st.booleans())
def test_curves_match_sklearn(data, drop):
    y, s = data
    roc = M.roc_curve(y, s, drop_intermediate=drop)
    pr = M.precision_recall_curve(y, s, drop_intermediate=drop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=drop)
        prec, rec, pthr = skm.precision_recall_curve(y, s, drop_intermediate=drop)
    np.testing.assert_allclose(roc.fpr, fpr, atol=TOL, rtol=0)
    np.testing.assert_allclose(roc.tpr, tpr, atol=TOL, rtol=0)
    np.testing.assert_array_equal(roc.thresholds, thr)
    assert (roc.reason == "") == _both_classes(y)
    np.testing.assert_array_equal(pr.thresholds, pthr)
    np.testing.assert_allclose(pr.precision, prec, atol=TOL, rtol=0)
    if y.sum() > 0:
        np.testing.assert_allclose(pr.recall, rec, atol=TOL, rtol=0)
    else:
        assert "no positive" in pr.reason


def test_large_input_matches_sklearn():
    rng = np.random.default_rng(7)
    n = 300_000
    y = rng.random(n) < 0.03
    s = np.clip(rng.normal(0.2 + 0.4 * y, 0.2), 0, 1).astype(np.float16)  # float16: heavy ties
    assert abs(M.exam_auc(y, s).value - skm.roc_auc_score(y, s)) <= TOL
    assert abs(M.average_precision(y, s).value - skm.average_precision_score(y, s)) <= TOL


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0], [0], [1]])
def test_one_class_is_nan_with_reason(y):
    s = np.linspace(0, 1, len(y))
    auc = M.exam_auc(y, s)
    assert math.isnan(auc.value) and auc.reason and not auc.defined
    ap = M.average_precision(y, s)
    if sum(y):
        assert ap.value == pytest.approx(1.0)  # all positive: precision 1 everywhere (as sklearn)
    else:
        assert math.isnan(ap.value) and ap.reason


def test_empty_input_is_nan_with_reason():
    for res in (M.exam_auc([], []), M.average_precision([], [])):
        assert math.isnan(res.value) and "no" in res.reason and res.n == 0
    assert M.roc_curve([], []).reason and M.precision_recall_curve([], []).reason
    assert math.isnan(M.operating_point([], []).threshold)


def test_constant_scores():
    y = np.array([0, 1, 1, 0, 1])
    s = np.full(5, 0.3)
    assert M.exam_auc(y, s).value == 0.5
    assert M.average_precision(y, s).value == pytest.approx(0.6)
    assert M.average_precision(y, s).value == pytest.approx(
        skm.average_precision_score(y, s), abs=TOL
    )


def test_bad_input_raises_one_line_error():
    with pytest.raises(IctviewError, match="NaN"):
        M.exam_auc([0, 1], [0.1, np.nan])
    with pytest.raises(IctviewError, match="0/1"):
        M.exam_auc([0, 2], [0.1, 0.2])
    with pytest.raises(IctviewError, match="3 scores for 2 labels"):
        M.average_precision([0, 1], [0.1, 0.2, 0.3])


@SETTINGS
@given(labelled_scores(min_size=2), st.sampled_from([0.5, 0.8, 0.92, 1.0]))
def test_operating_point_matches_sklearn_roc(data, target):
    y, s = data
    op = M.operating_point(y, s, target)
    if y.sum() == 0:
        assert math.isnan(op.threshold) and op.reason
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    k = int(np.argmax(tpr >= target))
    assert op.threshold == thr[k]
    assert abs(op.sensitivity - tpr[k]) <= TOL and op.sensitivity >= target
    if (y == 0).any():
        assert abs(op.specificity - (1 - fpr[k])) <= TOL
    else:
        assert math.isnan(op.specificity) and "specificity undefined" in op.reason
    again = M.sens_spec_at(y, s, op.threshold)
    assert (again.tp, again.fp, again.tn, again.fn) == (op.tp, op.fp, op.tn, op.fn)


def test_sens_spec_at_threshold_matches_confusion_matrix():
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.4
    s = rng.random(200)
    op = M.sens_spec_at(y, s, 0.5)
    tn, fp, fn, tp = skm.confusion_matrix(y, s >= 0.5).ravel()
    assert (op.tp, op.fp, op.tn, op.fn) == (tp, fp, tn, fn)
    assert op.sensitivity == tp / (tp + fn) and op.specificity == tn / (tn + fp)


@SETTINGS
@given(labelled_scores())
def test_best_dice_threshold_is_the_brute_force_maximum(data):
    y, s = data
    choice = M.best_dice_threshold(y, s, chosen_on="validation")
    if y.sum() == 0:
        assert math.isnan(choice.threshold) and choice.dice.reason
        return
    values = np.unique(s)
    pred = s[None, :] >= values[:, None]  # every candidate threshold at once
    tp = (pred & (y == 1)).sum(1)
    dices = 2 * tp / (pred.sum(1) + y.sum())
    best = dices.max()
    assert abs(choice.dice.value - best) <= TOL
    assert choice.threshold == values[dices >= best - 1e-12].max()
    assert abs(choice.dice.value - skm.f1_score(y, s >= choice.threshold)) <= TOL


def test_dice_cases():
    assert math.isnan(M.dice_score([0, 0], [0, 0]).value)
    assert "no positive" in M.dice_score([0, 0], [0, 0]).reason
    assert M.dice_score([0, 0], [1, 0]).value == 0.0  # false positives only: defined, 0
    rng = np.random.default_rng(1)
    t, p = rng.random(500) < 0.3, rng.random(500) < 0.3
    assert abs(M.dice_score(t, p).value - skm.f1_score(t, p)) <= TOL


def test_majority_vote_and_subtype_auc():
    reads = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(M.majority_vote(reads), [True, False, True, False, True])

    rng = np.random.default_rng(5)
    n = 300
    ich = rng.random(n) < 0.4
    sub = {c: ich & (rng.random(n) < 0.35) for c in ("EDH", "SDH", "SAH", "IPH")}
    scores = rng.random(n) + 0.4 * ich
    res = M.subtype_auc(ich, scores, sub)
    for code in sub:
        others = np.any([sub[c] for c in sub if c != code], axis=0)
        mask = ~ich | (sub[code] & ~others)
        assert np.array_equal(M.isolated_subtype_mask(ich, sub, code), mask)
        assert abs(res[code].value - skm.roc_auc_score(ich[mask], scores[mask])) <= TOL
    # a subtype nobody has: no positive exam in its subset -> NaN with the subtype named
    res = M.subtype_auc(ich, scores, {**sub, "IVH": np.zeros(n, bool)}, codes=["IVH"])
    assert math.isnan(res["IVH"].value) and res["IVH"].reason.startswith("IVH")
