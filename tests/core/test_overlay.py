"""Prediction overlays without Qt: exact comparison colours, heatmap table, pseudo-label
codes (the ranker's bounds), FP / FN regions and jumping between them."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core import overlay as ov


def test_comparison_colours_are_exact_at_full_opacity() -> None:
    ref = np.zeros((6, 6), bool)
    pred = np.zeros((6, 6), bool)
    ref[1, 1] = True  # missed
    pred[2, 2] = True  # false positive
    ref[3, 3] = pred[3, 3] = True  # found
    codes = ov.comparison_codes(ref, pred)
    assert codes[1, 1] == ov.REFERENCE_ONLY and codes[2, 2] == ov.PREDICTION_ONLY
    assert codes[3, 3] == ov.OVERLAP and codes[0, 0] == ov.NONE
    gray = np.full((6, 6), 97, np.uint8)
    rgb = ov.compose_rgb(gray, codes, ov.comparison_lut(), opacity=1.0)
    assert tuple(rgb[1, 1]) == (255, 0, 0)
    assert tuple(rgb[2, 2]) == (0, 255, 0)
    assert tuple(rgb[3, 3]) == (255, 255, 0)
    assert tuple(rgb[0, 0]) == (97, 97, 97)  # untouched CT elsewhere
    half = ov.compose_rgb(gray, codes, ov.comparison_lut(), opacity=0.5)
    assert tuple(half[1, 1]) == (176, 48, 48)  # blended, not replaced, below full opacity


def test_without_reference_everything_predicted_is_green() -> None:
    pred = np.eye(4, dtype=bool)
    codes = ov.comparison_codes(None, pred)
    assert set(np.unique(codes)) == {ov.NONE, ov.PREDICTION_ONLY}
    with pytest.raises(ValueError):
        ov.comparison_codes(np.zeros((3, 3), bool), pred)


def test_heatmap_is_transparent_below_the_threshold_and_hot_above() -> None:
    lut = ov.heatmap_lut(0.6)
    idx = ov.probability_index(np.array([0.0, 0.59, 0.6, 1.0, np.nan], np.float32))
    assert list(idx) == [0, 150, 153, 255, 0]
    assert lut[150, 3] == 0 and lut[153, 3] == 255 and lut[255, 3] == 255
    assert tuple(lut[255, :3]) == (255, 255, 255)
    assert lut[153, 0] > lut[153, 1]  # dark red at the threshold


def test_pseudo_codes_follow_the_rankers_bounds() -> None:
    p = np.array([0.29, 0.3, 0.5, 0.7, 0.71], np.float32)
    codes = ov.pseudo_codes(p, k_hi=0.7, k_lo=0.3)
    # training/ranker.threshold_pixels: 1 where p > K_hi, 0 where p < K_lo, ignored between
    assert list(codes) == [0, ov.PSEUDO_IGNORED, ov.PSEUDO_IGNORED, ov.PSEUDO_IGNORED,
                           ov.PSEUDO_POSITIVE]
    gray = np.zeros((8, 8), np.uint8)
    c2 = np.zeros((8, 8), np.uint8)
    c2[2:6, 2:6] = ov.PSEUDO_POSITIVE
    c2[0, :] = ov.PSEUDO_IGNORED
    rgb = ov.compose_pseudolabel(gray, c2)
    assert tuple(rgb[2, 2]) == ov.PSEUDO_POSITIVE_RGB  # opaque edge
    assert rgb[3, 3, 1] > 0 and rgb[3, 3, 1] < 255  # translucent fill inside
    assert tuple(rgb[0, 0]) == ov.PSEUDO_IGNORED_RGB and tuple(rgb[0, 1]) == (0, 0, 0)  # hatch
    with pytest.raises(ValueError):
        ov.pseudo_codes(p, k_hi=0.2, k_lo=0.3)


def _volume() -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros((10, 32, 32), bool)
    pred = np.zeros_like(ref)
    ref[2:4, 5:9, 5:9] = True  # found: prediction overlaps it
    pred[3:5, 6:10, 6:10] = True
    ref[7, 20:24, 20:24] = True  # missed
    pred[5:7, 25:28, 2:5] = True  # false positive, largest on slice 5
    pred[6, 25:30, 2:5] = True
    pred[9, 0:2, 30:32] = True  # false positive at the corner
    return ref, pred


def test_error_regions_are_lesion_level() -> None:
    ref, pred = _volume()
    regions = ov.error_regions(ref, pred)
    kinds = [(r.kind, r.peak_z) for r in regions]
    assert kinds == [("TP", 3), ("FP", 6), ("FN", 7), ("FP", 9)]
    fp = regions[1]
    assert (fp.z_first, fp.z_last) == (5, 6) and fp.voxels == 9 + 15
    assert fp.bbox == (25, 2, 30, 5)
    fn = regions[2]
    assert fn.center == (21.5, 21.5) and fn.volume_ml((5.0, 0.5, 0.5)) == pytest.approx(0.02)
    assert fn.slices_text == "slice 8"
    assert [r.kind for r in ov.error_regions(None, pred)] == ["pred"] * 3


def test_next_region_walks_forward_and_back_with_wraparound() -> None:
    ref, pred = _volume()
    fps = [r for r in ov.error_regions(ref, pred) if r.kind == ov.FP]
    first = ov.next_region(fps, z=0)
    assert first.peak_z == 6
    second = ov.next_region(fps, z=first.peak_z, current=first)
    assert second.peak_z == 9
    assert ov.next_region(fps, z=9, current=second) is first  # wraps
    assert ov.next_region(fps, z=8, forward=False).peak_z == 6
    assert ov.next_region(fps, z=7) is second  # from a slice past the first one
    assert ov.next_region([], z=0) is None


def test_specks_below_the_minimum_size_are_not_regions() -> None:
    ref, pred = _volume()
    pred[0, 15, 15] = True  # a one-voxel speck
    assert len([r for r in ov.error_regions(ref, pred) if r.kind == ov.FP]) == 3
    kept = ov.error_regions(ref, pred, min_voxels=2)
    assert [(r.kind, r.peak_z) for r in kept] == [("TP", 3), ("FP", 6), ("FN", 7), ("FP", 9)]
    assert ov.min_region_voxels((5.0, 0.5, 0.5)) == 8  # 10 mm³ of 1.25 mm³ voxels
    assert ov.min_region_voxels((5.0, 2.0, 2.0)) == 1


def test_region_frame_keeps_context_and_stays_inside_the_slice():
    small = ov.Region(ov.FN, 2, 2, 2, (102.5, 102.5), (100, 100, 106, 106), 36)
    r0, c0, r1, c1 = ov.region_frame(small, (128, 128))
    assert r1 - r0 == c1 - c0 == 64  # half the slice, not 4 x a 6-pixel speck
    assert (r0, c0, r1, c1) == (64, 64, 128, 128)  # shifted back from the edge, not cut
    assert r0 <= 100 and r1 >= 106 and c0 <= 100 and c1 >= 106
    big = ov.Region(ov.FP, 0, 0, 0, (60.0, 60.0), (30, 30, 90, 90), 3600)
    r0, c0, r1, c1 = ov.region_frame(big, (128, 128))
    assert r1 - r0 == 128 and (r0, c0) == (0, 0)  # 4 x 60 > the slice: the whole slice
    wide = ov.Region(ov.FP, 0, 0, 0, (10.0, 60.0), (5, 10, 15, 110), 100)
    r0, c0, r1, c1 = ov.region_frame(wide, (64, 128))
    assert c1 - c0 == 128 and r1 - r0 == 128 and (r0 + r1) / 2 == 32  # slice centred in it
