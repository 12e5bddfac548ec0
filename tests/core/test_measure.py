"""Ruler and ROI statistics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.measure import (Measurement, distance_mm, ellipse_mask, freehand_mask,
                                  roi_stats)


def test_ruler_uses_the_pixel_size_of_each_axis():
    # 3 rows of 5 mm and 4 columns of 0.5 mm: sqrt(15^2 + 2^2)
    assert distance_mm((0, 0), (3, 4), (5.0, 0.5)) == pytest.approx(np.sqrt(229.0))
    assert distance_mm((2, 2), (2, 2), (1.0, 1.0)) == 0.0


def test_roi_stats_by_hand():
    img = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], np.int16)
    mask = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)  # 20 40 50 60 80
    s = roi_stats(img, mask, (0.5, 0.4))
    assert s.n == 5 and s.mean == pytest.approx(50.0)
    # sample sd: deviations -30 -10 0 10 30 -> (900+100+0+100+900) / 4 = 500
    assert s.sd == pytest.approx(np.sqrt(500.0))
    assert (s.min, s.max) == (20.0, 80.0)
    assert s.area_mm2 == pytest.approx(5 * 0.2)
    assert "mean 50.0 HU" in s.text() and "1.0 mm²" in s.text()
    assert roi_stats(img, np.zeros((3, 3), bool), (1, 1)).text() == "empty ROI"


def test_ellipse_and_freehand_masks():
    m = ellipse_mask((11, 11), (3, 3), (7, 7))  # a circle of radius 2 around (5, 5)
    assert m.sum() == 13 and m[5, 5] and m[3, 5] and not m[3, 3]
    sq = freehand_mask((10, 10), [(2, 2), (2, 6), (6, 6), (6, 2)])
    assert sq.sum() == 25 and sq[2:7, 2:7].all()
    assert not freehand_mask((4, 4), [(1, 1), (2, 2)]).any()


def test_measurement_text_for_ruler_and_roi():
    img = np.full((20, 20), 35, np.int16)
    r = Measurement("ruler", "coronal", 3, [(0.0, 0.0), (4.0, 0.0)])
    assert r.compute(img, (5.0, 0.45)) == "20.0 mm"
    e = Measurement("ellipse", "axial", 0, [(3.0, 3.0), (7.0, 7.0)])
    assert e.compute(img, (1.0, 1.0)).startswith("mean 35.0 HU  sd 0.0")
