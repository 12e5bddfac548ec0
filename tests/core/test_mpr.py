"""MPR geometry without Qt: plane shapes, true aspect, edge letters, crosshair mapping."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.geometry import Geometry
from ictview.core.mpr import (AXIAL, CORONAL, SAGITTAL, Crosshair, axial_diffs, native_view,
                              planes_for, scale_bar, scale_text)
from ictview.core import paint

SHAPE = (10, 40, 30)  # z, y, x
SPACING = (5.0, 0.5, 0.4)
# a standard head CT: columns towards L, rows towards P, slices towards S
GEO = Geometry((-6.0, -10.0, 20.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.5, 0.4))


def test_plane_shapes_and_true_aspect_of_thick_slices():
    p = planes_for(SHAPE, SPACING, GEO)
    assert p[AXIAL].image_shape == (40, 30) and p[AXIAL].n_slices == 10
    assert p[CORONAL].image_shape == (10, 30) and p[CORONAL].n_slices == 40
    assert p[SAGITTAL].image_shape == (10, 40) and p[SAGITTAL].n_slices == 30
    assert p[AXIAL].aspect == pytest.approx(0.5 / 0.4)
    # 5 mm slices under 0.4 mm columns: each coronal row is drawn 12.5 columns tall
    assert p[CORONAL].aspect == pytest.approx(12.5)
    assert p[SAGITTAL].aspect == pytest.approx(10.0)
    assert p[CORONAL].pixel_mm == (5.0, 0.4) and p[SAGITTAL].slice_mm == 0.4


def test_edge_letters_of_each_plane():
    p = planes_for(SHAPE, SPACING, GEO)
    # radiological convention: patient's right on the screen's left
    assert p[AXIAL].edge_letters() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert p[CORONAL].edge_letters() == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert p[SAGITTAL].edge_letters() == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    # a stack stored top-down (slice step towards I): no flip needed for S to be up
    down = Geometry((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, -5.0), (0.5, 0.4))
    q = planes_for(SHAPE, SPACING, down)
    assert not q[CORONAL].flip_rows and q[CORONAL].edge_letters()["top"] == "S"
    assert p[CORONAL].flip_rows


def test_display_images_and_voxel_mapping_round_trip():
    vol = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    p = planes_for(SHAPE, SPACING, GEO)
    cor = p[CORONAL].image(vol, 7)
    assert cor.shape == (10, 30)
    assert cor[0, 3] == vol[9, 7, 3]  # the top row is the most superior slice
    sag = p[SAGITTAL].image(vol, 4)
    assert sag[9, 12] == vol[0, 12, 4]
    for name, plane in p.items():
        idx, row, col = plane.from_voxel((3, 17, 21))
        assert plane.to_voxel(idx, row, col) == pytest.approx((3, 17, 21)), name
        img = plane.image(vol, int(idx))
        assert img[int(row), int(col)] == vol[3, 17, 21], name


def test_crosshair_links_the_three_planes():
    p = planes_for(SHAPE, SPACING, GEO)
    c = Crosshair(SHAPE)
    assert c.zyx == (5, 20, 15)
    # a click on the coronal view at display row 2 (slice z = 7), column 11, coronal slice y=30
    assert c.set_from_plane(p[CORONAL], 30, 2, 11)
    assert c.zyx == (7, 30, 11)
    assert c.index_in(p[AXIAL]) == 7 and c.index_in(p[SAGITTAL]) == 11
    assert c.point_in(p[AXIAL]) == (30, 11)
    assert c.point_in(p[SAGITTAL]) == (2, 30)
    # clamped into the volume
    c.set_voxel((-4, 99, 12.6))
    assert c.zyx == (0, 39, 13)
    # patient mm from the geometry (LPS): x = -6 + 13*0.4, y = -10 + 39*0.5, z = 20 + 0
    assert c.patient_mm(GEO) == pytest.approx((-0.8, 9.5, 20.0))


def test_slice_position_in_patient_mm():
    p = planes_for(SHAPE, SPACING, GEO)
    assert p[AXIAL].position_text(3, GEO) == "S 35.0 mm"
    assert p[CORONAL].position_text(4, GEO) == "A 8.0 mm"  # -10 + 4 * 0.5 = -8 -> anterior
    assert p[SAGITTAL].position_text(20, GEO) == "L 2.0 mm"  # -6 + 20 * 0.4


def test_coronal_brush_becomes_per_axial_slice_diffs():
    labels = np.zeros(SHAPE, np.uint8)
    nat = native_view(labels, CORONAL)
    d = paint.brush(nat, 12, 4, 10, (1.2, 3.0), 2)  # coronal slice y=12, rows z 3..5
    diffs = axial_diffs(d, CORONAL)
    assert [x.z for x in diffs] == [3, 4, 5]
    assert all(x.y0 == 12 and x.mask.shape[0] == 1 for x in diffs)
    assert set(np.flatnonzero(labels.any(axis=(0, 2)))) == {12}  # only row y = 12 painted
    # undoing the axial diffs restores the volume
    for x in reversed(diffs):
        x.revert(labels)
    assert not labels.any()
    s = paint.brush(native_view(labels, SAGITTAL), 9, 5, 20, (0.5, 2.0), 3)
    sd = axial_diffs(s, SAGITTAL)
    assert len(sd) == 1 and sd[0].x0 == 9 and sd[0].mask.shape == (5, 1)
    assert labels[5, 18:23, 9].tolist() == [3] * 5 and labels.sum() == 15


def test_scale_bar_picks_a_round_length():
    assert scale_bar(0.5, 120) == (50.0, 100.0)  # 60 mm fit: 50 mm is the round one
    assert scale_bar(0.1, 120) == (10.0, 100.0)
    assert scale_bar(0.03, 120)[0] == 2.0
    assert scale_bar(0.0, 120) == (0.0, 0.0)
    assert scale_text(50.0) == "5 cm" and scale_text(2.0) == "2 mm"
