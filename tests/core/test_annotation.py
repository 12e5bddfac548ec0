"""AnnotationModel without a workspace: settings, events, tools, volumes."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.annotation import AnnotationModel


@pytest.fixture
def model(hu):
    return AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))


def test_brush_size_in_mm_and_px(model):
    model.brush_radius_mm = 2.0
    assert model.brush_radius_px == 4.0 and model.brush_radii_px == (4.0, 4.0)
    model.brush_radius_px = 6
    assert model.brush_radius_mm == 3.0
    model.grow_brush()
    assert model.brush_radius_px == 7
    model.shrink_brush(20)
    assert model.brush_radius_px == 0.5  # clamped
    m = AnnotationModel(model.hu, spacing=(5.0, 0.5, 1.0))
    m.brush_radius_mm = 2.0
    assert m.brush_radii_px == (4.0, 2.0)


def test_events(model):
    changed, state = [], []
    model.on_labels_changed.append(changed.append)
    model.on_state_changed.append(lambda: state.append(1))
    model.label_value = 3
    model.label_value = 3  # no change, no event
    assert len(state) == 1
    with pytest.raises(ValueError):
        model.label_value = 7
    with pytest.raises(ValueError):
        model.hu_range = (90, 40)
    model.set_window_preset("subdural")
    assert model.window == (75.0, 215.0) and len(state) == 2
    model.begin_stroke()
    model.paint_to(2, 30, 30)
    model.paint_to(2, 30, 40)
    model.end_stroke()
    assert changed == [(2, 3), (2, 3)]
    model.undo()
    assert changed[-1] == (2, 3)
    assert model.revision == 2  # stroke + undo


def test_model_hu_limited_brush_and_modes(model, hu):
    model.hu_limited = True
    model.brush_radius_px = 12
    model.label_value = 4
    model.begin_stroke()
    model.paint_to(1, 32, 22)
    model.end_stroke()
    painted = model.labels[1] == 4
    assert painted.any() and np.all((hu[1] >= 40) & (hu[1] <= 90) | ~painted)
    # protect mode: painting SDH over IPH keeps IPH
    model.hu_limited = False
    model.protect_others = True
    model.label_value = 2
    model.begin_stroke()
    model.paint_to(1, 32, 22)
    model.end_stroke()
    assert np.array_equal(model.labels[1] == 4, painted)
    # eraser in protect mode erases only the current class (SDH)
    model.tool = "eraser"
    model.begin_stroke()
    model.paint_to(1, 32, 22)
    model.end_stroke()
    assert not (model.labels[1] == 2).any() and np.array_equal(model.labels[1] == 4, painted)
    # eraser in overwrite mode erases any class
    model.protect_others = False
    model.erase_to(1, 32, 22)
    model.end_stroke()
    assert not model.labels[1].any()


def test_fills_and_volumes(model, hu):
    model.label_value = 4
    model.flood_fill(3, 32, 32)
    blob = int((hu[3] == 65).sum())
    assert model.volumes_ml()["IPH"] == pytest.approx(blob * 5 * 0.25 / 1000)
    model.label_value = 5
    model.polygon_fill(0, [(0, 0), (0, 9), (9, 9), (9, 0)])
    assert model.voxel_counts()[5] == 100
    assert model.volumes_ml()["IVH"] == pytest.approx(100 * 1.25 / 1000)
    model.undo()
    assert model.volumes_ml()["IVH"] == 0.0


def test_time_on_task_is_idle_capped(hu):
    now = [0.0]
    m = AnnotationModel(hu, idle_cap_s=30, clock=lambda: now[0])
    now[0] = 10
    m.paint_to(0, 5, 5)
    now[0] = 1000  # a long break counts as the cap
    m.end_stroke()
    now[0] = 1005
    m.touch()
    assert m.seconds_on_task == 10 + 30 + 5
