"""Ranker: top C% of images by image probability, K thresholds inside positives, oracles."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.errors import IctviewError
from training.ranker import (
    n_top,
    oracle_pixel_labels,
    pseudo_labels,
    rank_images,
    threshold_pixels,
)


def test_top_percent_counts_round_half_up() -> None:
    assert n_top(100, 10) == 10
    assert n_top(64, 10) == 6  # 6.4
    assert n_top(65, 10) == 7  # 6.5 rounds up
    assert n_top(3, 10) == 0
    assert n_top(7, 100) == 7
    with pytest.raises(IctviewError):
        n_top(10, 0)


def test_rank_images_picks_the_highest_and_breaks_ties_by_order() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.2, 0.95, 0.3, 0.4, 0.0, 0.6])
    assert np.flatnonzero(rank_images(scores, 10)).tolist() == [5]
    assert np.flatnonzero(rank_images(scores, 20)).tolist() == [1, 5]  # tie 0.9: first one
    assert np.flatnonzero(rank_images(scores, 30)).tolist() == [1, 3, 5]
    assert rank_images(scores, 100).all()


def test_k_thresholds_exclusive_bounds_go_to_ignore() -> None:
    p = np.array([0.0, 0.29, 0.3, 0.5, 0.7, 0.71, 1.0], np.float32)
    assert threshold_pixels(p, 0.7, 0.3).tolist() == [0, 0, 255, 255, 255, 1, 1]


def _volumes():
    """Two exams, 5 + 5 slices of 4 x 4; one hot pixel map per slice."""
    rng = np.random.default_rng(0)
    probs = [rng.uniform(0, 1, (5, 4, 4)).astype(np.float16) for _ in range(2)]
    scores = [np.array([0.1, 0.8, 0.2, 0.3, 0.05]), np.array([0.9, 0.4, 0.6, 0.15, 0.25])]
    return probs, scores


def test_pseudo_labels_rank_over_the_whole_corpus() -> None:
    probs, scores = _volumes()
    labels, flags, summary = pseudo_labels(probs, scores, top_percent=20, k_hi=0.7, k_lo=0.3)
    # 10 images, top 20% = 2: exam 1 slice 0 (0.9) and exam 0 slice 1 (0.8)
    assert flags[0].tolist() == [False, True, False, False, False]
    assert flags[1].tolist() == [True, False, False, False, False]
    assert summary.n_images == 10 and summary.n_positive == 2 and summary.threshold == 0.8
    for e in range(2):
        for z in range(5):
            lab, p = labels[e][z], probs[e][z].astype(np.float32)
            if flags[e][z]:
                assert np.array_equal(lab == 1, p > 0.7)
                assert np.array_equal(lab == 0, p < 0.3)
                assert np.array_equal(lab == 255, (p >= 0.3) & (p <= 0.7))
            else:
                assert not lab.any(), "negative images are all background"
        assert labels[e].dtype == np.uint8


def test_no_ranker_thresholds_every_image() -> None:
    probs, scores = _volumes()
    labels, flags, summary = pseudo_labels(probs, scores, 20, 0.7, 0.3, enabled=False)
    assert all(f.all() for f in flags) and summary.n_positive == 10
    for p, lab in zip(probs, labels):
        assert np.array_equal(lab, threshold_pixels(p, 0.7, 0.3))


def test_pixel_oracle_zeroes_reference_negatives() -> None:
    probs, _ = _volumes()
    image_labels = np.array([1, 0, -1, 0, 1])
    lab = oracle_pixel_labels(probs[0], image_labels, 0.7, 0.3)
    k = threshold_pixels(probs[0], 0.7, 0.3)
    for z, il in enumerate(image_labels):
        expected = np.zeros_like(k[z]) if il == 0 else k[z]
        assert np.array_equal(lab[z], expected)


def test_bad_inputs_are_one_line_errors() -> None:
    probs, scores = _volumes()
    with pytest.raises(IctviewError, match="slice scores"):
        pseudo_labels(probs, [scores[0][:3], scores[1]])
    with pytest.raises(IctviewError, match="NaN"):
        rank_images(np.array([0.1, np.nan]), 10)
    with pytest.raises(IctviewError, match="k_lo"):
        threshold_pixels(probs[0], 0.2, 0.3)
