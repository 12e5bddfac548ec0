"""Undo/redo restores exact arrays; one drag = one step; the history is bounded."""

from __future__ import annotations

import numpy as np

from ictview.core import paint
from ictview.core.annotation import AnnotationModel
from ictview.core.history import UndoHistory, merge_diffs


def random_step(m: AnnotationModel, rng: np.random.Generator) -> None:
    """One user action of a random kind on the model."""
    nz, ny, nx = m.labels.shape
    z = int(rng.integers(nz))
    m.label_value = int(rng.integers(1, 6))
    m.protect_others = bool(rng.random() < 0.3)
    m.hu_limited = bool(rng.random() < 0.3)
    m.brush_radius_px = float(rng.uniform(0.5, 6))
    kind = rng.random()
    if kind < 0.6:  # a drag, sometimes erasing, sometimes crossing slices
        m.begin_stroke(erase=bool(rng.random() < 0.25))
        for _ in range(int(rng.integers(1, 12))):
            if rng.random() < 0.1:
                z = int(rng.integers(nz))
            m.paint_to(z, rng.uniform(0, ny - 1), rng.uniform(0, nx - 1))
        m.end_stroke()
    elif kind < 0.8:
        m.flood_fill(z, int(rng.integers(ny)), int(rng.integers(nx)))
    else:
        pts = rng.uniform(0, ny - 1, size=(int(rng.integers(3, 7)), 2))
        m.polygon_fill(z, pts)


def test_undo_redo_restore_exact_arrays_over_120_strokes(hu):
    rng = np.random.default_rng(7)
    m = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5), history_steps=200)
    states = [m.labels.copy()]
    while len(states) < 121:
        random_step(m, rng)
        if not np.array_equal(m.labels, states[-1]):
            states.append(m.labels.copy())
        else:  # a no-op action adds no undo step
            assert len(m.history) == len(states) - 1
    assert len(m.history) == 120
    for k in range(120, 0, -1):
        assert m.undo() is not None
        assert np.array_equal(m.labels, states[k - 1]), f"undo to state {k - 1}"
    assert m.undo() is None and not m.can_undo
    for k in range(1, 121):
        assert m.redo() is not None
        assert np.array_equal(m.labels, states[k]), f"redo to state {k}"
    assert m.redo() is None
    # a new stroke after undo clears redo
    m.undo()
    m.undo()
    assert m.can_redo
    m.label_value, m.protect_others, m.hu_limited = 1, False, False
    z, y, x = np.argwhere(m.labels != 1)[0]
    m.paint_to(z, y, x)
    m.end_stroke()
    assert not m.can_redo
    # the live volumes follow undo/redo exactly
    vols = m.volumes_ml()
    for code, value in zip(("EDH", "SDH", "SAH", "IPH", "IVH"), range(1, 6)):
        assert vols[code] == np.count_nonzero(m.labels == value) * m.voxel_ml


def test_one_drag_is_one_step(hu):
    m = AnnotationModel(hu)
    m.begin_stroke()
    for x in range(5, 60, 3):
        m.paint_to(2, 20, x)
    m.paint_to(3, 20, 20)  # the drag continues on another slice
    stroke = m.end_stroke()
    assert len(m.history) == 1 and stroke.z_range == (2, 4)
    m.undo()
    assert not m.labels.any()


def test_history_is_bounded_in_steps_and_bytes(hu):
    labels = np.zeros(hu.shape, np.uint8)
    h = UndoHistory(max_steps=10)
    for i in range(25):
        h.begin_stroke()
        h.add(paint.brush(labels, i % 6, 10 + i, 10 + i, 2, 1 + i % 5))
        h.end_stroke()
    assert len(h) == 10
    h = UndoHistory(max_steps=1000, max_bytes=2000)
    for i in range(25):
        h.add(paint.brush(labels, 0, 30, 30, 10, 1 + i % 5))  # 21*21*2 + 64 bytes each
    assert len(h) == 2 and h.nbytes <= 2000


def test_merged_diffs_undo_like_the_dabs(hu):
    labels = np.zeros(hu.shape, np.uint8)
    labels[2, 10:30, 10:30] = 3
    before = labels.copy()
    diffs = [paint.brush(labels, 2, 20, x, 4, 4) for x in range(12, 30, 2)]
    diffs = [d for d in diffs if d is not None]
    merged = merge_diffs(diffs)
    assert len(merged) == 1
    after = labels.copy()
    merged[0].revert(labels)
    assert np.array_equal(labels, before)
    merged[0].apply(labels)
    assert np.array_equal(labels, after)
