"""Brush, eraser, HU limit, protect mode, flood and polygon fills on one slice."""

from __future__ import annotations

import numpy as np

from ictview.core import paint


def disk_count(r: int) -> int:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return int(((yy**2 + xx**2) <= r * r).sum())


def test_brush_paints_a_disk_and_returns_the_diff(hu):
    labels = np.zeros(hu.shape, np.uint8)
    d = paint.brush(labels, 2, 20, 20, 3, 4)
    assert np.count_nonzero(labels) == disk_count(3) == 29
    assert np.all(labels[2][labels[2] > 0] == 4)
    assert labels[2, 20, 20] == 4 and labels[2, 20, 23] == 4
    assert labels[2, 20, 24] == 0 and labels[2, 23, 23] == 0
    assert (d.z, d.y0, d.x0, d.mask.shape, d.new_value) == (2, 17, 17, (7, 7), 4)
    assert d.n_changed == 29 and not d.old[d.mask].any()
    # painting the same dab again changes nothing
    assert paint.brush(labels, 2, 20, 20, 3, 4) is None


def test_brush_small_radius_edges_and_anisotropy(hu):
    labels = np.zeros(hu.shape, np.uint8)
    paint.brush(labels, 0, 5, 5, 0.2, 1)
    assert np.count_nonzero(labels) == 1 and labels[0, 5, 5] == 1
    labels[:] = 0
    d = paint.brush(labels, 0, 0, 63, 3, 1)  # corner: clipped, no wrap-around
    assert d.y0 == 0 and d.x0 == 60 and np.count_nonzero(labels) == 11  # a quarter disk
    labels[:] = 0
    paint.brush(labels, 1, 30, 30, (2, 4), 2)  # (ry, rx): wider along x
    ys, xs = np.nonzero(labels[1])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (28, 32, 26, 34)
    assert paint.brush(labels, 9, 30, 30, 3, 1) is None  # outside the volume


def test_eraser_removes_only_its_class_or_any_class(hu):
    labels = np.zeros(hu.shape, np.uint8)
    labels[0, 10:20, 10:15] = 2
    labels[0, 10:20, 15:20] = 4
    before = labels.copy()
    d = paint.brush(labels, 0, 15, 15, 8, 2, erase=True)
    assert not (labels[0, 10:20, 10:15]).any()
    assert np.array_equal(labels[0, 10:20, 15:20], before[0, 10:20, 15:20])  # IPH kept
    d.revert(labels)
    assert np.array_equal(labels, before)
    paint.brush(labels, 0, 15, 15, 8, None, erase=True)
    assert not labels.any()


def test_hu_limited_brush_leaves_out_of_range_pixels_untouched(hu):
    labels = np.zeros(hu.shape, np.uint8)
    labels[3, 20:44, 20:44] = 2  # prior labels, partly outside the blood range
    before = labels.copy()
    lo, hi = 40, 90
    # a large dab over the blob border and the bright spot
    for cy, cx in ((32, 22), (7, 7), (32, 32)):
        paint.brush(labels, 3, cy, cx, 12, 4, hu=hu, hu_range=(lo, hi))
    inside = (hu[3] >= lo) & (hu[3] <= hi)
    changed = labels[3] != before[3]
    assert changed.any()
    assert np.all(inside[changed])  # only in-range pixels changed
    assert np.array_equal(labels[3][~inside], before[3][~inside])  # out-of-range pixels untouched
    assert np.array_equal(np.delete(labels, 3, 0), np.delete(before, 3, 0))


def test_protect_mode_keeps_other_classes(hu):
    labels = np.zeros(hu.shape, np.uint8)
    labels[1, 25:35, 25:35] = 1
    paint.brush(labels, 1, 30, 30, 8, 4, protect={1, 2, 3, 5, 255})
    assert np.all(labels[1, 25:35, 25:35] == 1)
    assert labels[1, 30, 22] == 4
    paint.brush(labels, 1, 30, 30, 8, 4)  # overwrite mode
    assert np.all(labels[1, 25:35, 25:35] == 4)


def test_line_brush_has_no_gaps_and_matches_the_dabs(hu):
    labels = np.zeros(hu.shape, np.uint8)
    d = paint.line_brush(labels, 0, (10, 5), (10, 55), 2, 3)
    ref = np.zeros(hu.shape, np.uint8)
    for x in range(5, 56):
        paint.brush(ref, 0, 10, x, 2, 3)
    assert np.array_equal(labels, ref)
    assert d.n_changed == np.count_nonzero(ref)
    # a diagonal drag: every pixel on the segment is painted
    labels[:] = 0
    paint.line_brush(labels, 0, (2.2, 3.0), (60.0, 50.4), 1, 3)
    for t in np.linspace(0, 1, 200):
        y, x = 2 + t * 58, 3 + t * 47
        assert labels[0, int(round(y)), int(round(x))] == 3


def test_flood_fill_is_bounded_by_the_hu_range(hu):
    labels = np.zeros(hu.shape, np.uint8)
    blob = hu[2] == 65
    d = paint.flood_fill(labels, 2, 32, 32, 4, hu=hu, hu_range=(40, 90))
    assert np.array_equal(labels[2] == 4, blob)
    assert d.n_changed == blob.sum()
    assert labels[[0, 1, 3, 4, 5]].sum() == 0
    # the seed outside the range fills nothing
    assert paint.flood_fill(labels, 2, 1, 1, 4, hu=hu, hu_range=(40, 90)) is None
    # the bright spot is its own region under a wide range, not connected to the blob
    labels[:] = 0
    paint.flood_fill(labels, 2, 6, 6, 5, hu=hu, hu_range=(200, 400))
    assert np.count_nonzero(labels) == 16


def test_flood_fill_respects_protected_labels(hu):
    labels = np.zeros(hu.shape, np.uint8)
    labels[2, 32, :] = 1  # a protected line cuts the blob in two
    paint.flood_fill(labels, 2, 28, 32, 4, hu=hu, hu_range=(40, 90), protect={1})
    filled = labels[2] == 4
    assert filled[:32].any() and not filled[33:].any()
    assert np.all(labels[2, 32, :] == 1)


def test_polygon_fill(hu):
    labels = np.zeros(hu.shape, np.uint8)
    d = paint.polygon_fill(labels, 4, [(10, 10), (10, 20), (20, 20), (20, 10)], 5)
    assert np.count_nonzero(labels) == 121 and np.all(labels[4, 10:21, 10:21] == 5)
    assert (d.y0, d.x0, d.mask.shape) == (10, 10, (11, 11))
    # a triangle, HU-limited: only the blob part inside the triangle is filled
    labels[:] = 0
    tri = [(0, 0), (63, 0), (63, 63)]
    paint.polygon_fill(labels, 4, tri, 2, hu=hu, hu_range=(40, 90))
    yy, xx = np.mgrid[:64, :64]
    assert np.all((hu[4] == 65)[labels[4] == 2])
    assert np.all(xx[labels[4] == 2] <= yy[labels[4] == 2])
    assert paint.polygon_fill(labels, 4, [(1, 1), (2, 2)], 2) is None  # not a polygon


def test_diff_apply_and_revert_round_trip(hu):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, hu.shape).astype(np.uint8)
    before = labels.copy()
    d = paint.brush(labels, 3, 30, 30, 7, 2)
    after = labels.copy()
    d.revert(labels)
    assert np.array_equal(labels, before)
    d.apply(labels)
    assert np.array_equal(labels, after)


def test_polygon_mask_agrees_with_skimage():
    from scipy.ndimage import binary_dilation
    from skimage.draw import polygon, polygon_perimeter

    rng = np.random.default_rng(3)
    for trial in range(200):
        pts = rng.uniform(-5, 45, (int(rng.integers(3, 12)), 2))
        if trial % 3 == 0:
            pts = np.round(pts)
        ours = paint.polygon_mask(pts[:, 0], pts[:, 1], (40, 40))
        inner = np.zeros((40, 40), bool)
        inner[polygon(pts[:, 0], pts[:, 1], shape=(40, 40))] = True
        outline = np.zeros((40, 40), bool)
        outline[polygon_perimeter(np.round(pts[:, 0]), np.round(pts[:, 1]), shape=(40, 40))] = True
        assert np.all(ours[inner]) and np.all(ours[outline])
        assert not np.any(ours & ~binary_dilation(inner | outline))
