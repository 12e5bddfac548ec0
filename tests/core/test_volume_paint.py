"""3D region grow, fill between slices and painting in any plane through the model."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.annotation import AnnotationModel
from ictview.core.mpr import CORONAL, SAGITTAL
from ictview.core.volume_paint import RegionTooLarge, fill_between_slices, region_grow
from ictview.store.label_journal import LabelJournal, journal_path
from ictview.store.workspace import Workspace


def _blob_volume():
    """Brain 30 HU with a blood ball (65 HU) and, diagonally touching it, a blood voxel."""
    hu = np.full((9, 32, 32), 30, np.int16)
    zz, yy, xx = np.ogrid[:9, :32, :32]
    ball = ((zz - 4) * 3) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= 36
    hu[ball] = 65
    hu[0, 0, 0] = 65  # disconnected blood
    return hu, ball


def test_region_grow_stays_inside_the_hu_range_and_the_connected_region():
    hu, ball = _blob_volume()
    labels = np.zeros(hu.shape, np.uint8)
    diffs = region_grow(labels, hu, (4, 16, 16), 4, (40, 90))
    assert np.array_equal(labels == 4, ball)
    assert {d.z for d in diffs} == set(np.flatnonzero(ball.any(axis=(1, 2))))
    assert labels[0, 0, 0] == 0
    # seed outside the range: nothing
    assert region_grow(np.zeros_like(labels), hu, (4, 0, 0), 4, (40, 90)) == []


def test_region_grow_connectivity_6_vs_26_and_the_voxel_cap():
    hu = np.full((3, 5, 5), 0, np.int16)
    hu[1, 1, 1] = hu[2, 2, 2] = 60  # corner-touching only
    a = np.zeros(hu.shape, np.uint8)
    region_grow(a, hu, (1, 1, 1), 3, (50, 70), connectivity=6)
    assert a.sum() == 3
    b = np.zeros(hu.shape, np.uint8)
    region_grow(b, hu, (1, 1, 1), 3, (50, 70), connectivity=26)
    assert b.sum() == 6
    big = np.full((4, 10, 10), 60, np.int16)
    lab = np.zeros(big.shape, np.uint8)
    with pytest.raises(RegionTooLarge, match="400 voxels.*cap of 100"):
        region_grow(lab, big, (0, 0, 0), 3, (50, 70), max_voxels=100)
    assert not lab.any()  # nothing written


def test_fill_between_two_labelled_slices():
    labels = np.zeros((7, 30, 30), np.uint8)
    yy, xx = np.ogrid[:30, :30]
    labels[1][(yy - 15) ** 2 + (xx - 15) ** 2 <= 16] = 2   # radius 4
    labels[5][(yy - 15) ** 2 + (xx - 15) ** 2 <= 64] = 2   # radius 8
    labels[3, 15, 20] = 5  # another class in the gap is kept
    diffs = fill_between_slices(labels, 2, spacing=(5.0, 1.0, 1.0))
    assert sorted({d.z for d in diffs}) == [2, 3, 4]
    areas = [(labels[k] == 2).sum() for k in range(7)]
    assert areas[0] == areas[6] == 0
    assert areas[1] < areas[2] < areas[3] < areas[4] < areas[5]
    # the middle slice is about a radius-6 disc
    assert abs(areas[3] - np.pi * 36) < 0.15 * np.pi * 36
    assert labels[3, 15, 20] == 5
    assert fill_between_slices(labels, 2) == []  # nothing left to fill


def test_model_paints_in_the_coronal_plane_and_undo_is_one_step():
    hu, _ = _blob_volume()
    m = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))
    m.label_value = 3
    m.brush_radius_mm = 6.0  # 12 px along x, 1.2 slices along z
    m.begin_stroke()
    m.paint_to(4, 10, 8, plane=CORONAL)
    m.paint_to(4, 10, 20, plane=CORONAL)
    m.end_stroke()
    painted = np.argwhere(m.labels == 3)
    assert set(painted[:, 1]) == {10}  # one coronal slice, y = 10
    assert set(painted[:, 0]) == {3, 4, 5}  # 6 mm radius over 5 mm slices
    assert m.labels[4, 10, 14] == 3  # the drag is swept, no gap
    assert len(m.history) == 1 and m.volumes_ml()["SAH"] > 0
    m.undo()
    assert not m.labels.any() and m.volumes_ml()["SAH"] == 0
    m.redo()
    assert (m.labels == 3).sum() == len(painted)
    # sagittal polygon: native coordinates (z, y) on column x = 5
    m.polygon_fill(5, [(2, 4), (2, 12), (6, 12), (6, 4)], plane=SAGITTAL)
    assert (m.labels[2:7, 4:13, 5] == 3).all() and len(m.history) == 2


def test_locked_class_is_neither_painted_over_nor_erased():
    hu, _ = _blob_volume()
    m = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))
    m.label_value = 1
    m.paint_to(4, 16, 16)
    m.end_stroke()
    m.locked_classes = {1}
    m.label_value = 2
    m.brush_radius_mm = 6.0  # larger: covers class 1 and empty pixels around it
    m.paint_to(4, 16, 16)
    m.end_stroke()
    assert m.labels[4, 16, 16] == 1 and (m.labels == 2).any()
    m.tool = "eraser"
    m.begin_stroke()
    m.paint_to(4, 16, 16)
    m.end_stroke()
    assert m.labels[4, 16, 16] == 1 and not (m.labels == 2).any()


def test_region_grow_and_interpolation_are_single_steps_of_the_model():
    hu, ball = _blob_volume()
    m = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))
    m.label_value = 4
    m.hu_range = (40, 90)
    assert m.region_grow(4, 16, 16) is not None
    assert np.array_equal(m.labels == 4, ball) and len(m.history) == 1
    m.grow_max_voxels = 10
    m.undo()
    with pytest.raises(RegionTooLarge):
        m.region_grow(4, 16, 16)
    assert not m.labels.any()


def test_journal_replays_strokes_from_any_plane(small_ws):
    """A crash after the journal append and before the label file: the coronal stroke,
    the 3D fill and the interpolation come back from the journal."""
    with Workspace.open(small_ws) as ws:
        hu = ws.read_volume("EX-1").hu
    scratch = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))
    scratch.label_value = 2
    steps = []
    scratch.begin_stroke()
    scratch.paint_to(2, 20, 20, plane=CORONAL)
    scratch.paint_to(4, 20, 30, plane=CORONAL)
    steps.append(scratch.end_stroke())
    scratch.hu_range = (60, 70)
    steps.append(scratch.region_grow(3, 32, 32))
    scratch.label_value = 5
    scratch.paint_to(0, 10, 10)
    steps.append(scratch.end_stroke())
    scratch.paint_to(4, 10, 10)
    steps.append(scratch.end_stroke())
    steps.append(scratch.fill_between_slices())
    assert all(s is not None for s in steps)
    with Workspace.open(small_ws) as ws:
        j = LabelJournal(journal_path(ws, "rater-a", "EX-1"), "EX-1", "rater-a", hu.shape)
        for seq, st in enumerate(steps, 1):
            j.append(seq, 1.0, [(d.z, d.y0, d.x0, d.mask, d.new_value) for d in st.diffs])
        j.close()
    m = AnnotationModel.open(small_ws, "EX-1", "rater-a", "a")
    try:
        assert m.recovered_steps == 5
        assert np.array_equal(m.labels, scratch.labels)
        assert (m.labels[1:4] == 5).any()  # the interpolated slices
    finally:
        m.close()


def test_hu_limited_brush_in_the_sagittal_plane_keeps_to_the_range():
    hu, ball = _blob_volume()
    m = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))
    m.label_value = 4
    m.hu_limited = True
    m.hu_range = (40, 90)
    m.brush_radius_mm = 8.0  # wider than the ball's section: the brain around is refused
    m.paint_to(4, 16, 16, plane=SAGITTAL)
    m.end_stroke()
    painted = m.labels == 4
    assert painted.any() and set(np.argwhere(painted)[:, 2]) == {16}
    assert (hu[painted] >= 40).all() and np.array_equal(painted[:, :, 16], ball[:, :, 16] & (
        (np.arange(9)[:, None] - 4) ** 2 / (8 / 5) ** 2 + (np.arange(32)[None, :] - 16) ** 2
        / 16 ** 2 <= 1))


def _holey_blob():
    """Class 2 on slices 2..5 of a 8 x 24 x 24 volume with, on slice 3, two one-pixel noise
    holes, a 2 x 2 hole holding one pixel of class 4, and a notch open to the outside."""
    labels = np.zeros((8, 24, 24), np.uint8)
    labels[2:6, 6:18, 6:18] = 2
    labels[3, 9, 9] = labels[3, 12, 14] = 0  # noise holes
    labels[3, 14:16, 8:10] = 0
    labels[3, 14, 8] = 4  # another class inside the hole: stays
    labels[3, 6:9, 11] = 0  # a notch from the edge: not a hole
    labels[5, 10, 10] = 0  # a hole on another slice
    return labels


def test_fill_holes_fills_enclosed_unlabeled_pixels_of_one_slice():
    from ictview.core.volume_paint import fill_holes

    labels = _holey_blob()
    before = labels.copy()
    diffs = fill_holes(labels, 2, index=3)
    assert [d.z for d in diffs] == [3]
    assert labels[3, 9, 9] == labels[3, 12, 14] == 2
    assert (labels[3, 14:16, 8:10] == [[4, 2], [2, 2]]).all()
    assert (labels[3, 6:9, 11] == 0).all()  # open to the outside
    assert labels[5, 10, 10] == 0  # other slices untouched
    changed = labels != before
    assert changed.sum() == 5 and (before[changed] == 0).all()
    assert fill_holes(labels, 2, index=3) == []  # nothing left
    assert fill_holes(labels, 3, index=3) == []  # a class that is not there


def test_fill_holes_on_every_slice_and_in_other_planes():
    from ictview.core.volume_paint import fill_holes

    labels = _holey_blob()
    diffs = fill_holes(labels, 2)  # every axial slice (3D)
    assert sorted({d.z for d in diffs}) == [3, 5] and labels[5, 10, 10] == 2
    assert labels[3, 9, 9] == 2 and (labels[3, 6:9, 11] == 0).all()
    # a tunnel along x through the blob: open in axial and coronal slices (it reaches the
    # blob's x edges), a one-pixel hole in every sagittal slice it crosses
    labels = np.zeros((8, 24, 24), np.uint8)
    labels[1:7, 6:18, 6:18] = 2
    labels[4, 10, 6:18] = 0
    assert fill_holes(labels, 2) == [] and fill_holes(labels, 2, plane=CORONAL) == []
    diffs = fill_holes(labels, 2, plane=SAGITTAL, index=8)
    assert labels[4, 10, 8] == 2 and labels[4, 10, 9] == 0 and {d.z for d in diffs} == {4}
    diffs = fill_holes(labels, 2, plane=SAGITTAL)
    assert (labels[4, 10, 6:18] == 2).all() and sum(d.n_changed for d in diffs) == 11
    with pytest.raises(ValueError):
        fill_holes(labels, 2, plane=CORONAL, index=24)


def test_model_fill_holes_is_one_undo_step():
    labels = _holey_blob()
    m = AnnotationModel(np.zeros(labels.shape, np.int16), labels=labels.copy(),
                        spacing=(5.0, 0.5, 0.5))
    m.label_value = 2
    before = m.labels.copy()
    n_before = m.voxel_counts().get(2, 0)
    step = m.fill_holes()  # 3D
    assert step is not None and len(m.history) == 1
    assert m.voxel_counts()[2] == n_before + 6  # 5 on slice 3, 1 on slice 5
    m.undo()
    assert np.array_equal(m.labels, before)
    m.redo()
    assert m.labels[5, 10, 10] == 2
    assert m.fill_holes(index=3) is None  # nothing left: no empty step
    assert len(m.history) == 1
