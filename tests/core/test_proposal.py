"""Start from a model (issue 16): a proposal becomes labels as one undo step, components
take the subtype the rater picks, and the edit effort equals hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.annotation import AnnotationModel
from ictview.core.proposal import UNCLASSIFIED, edit_effort, proposal_components


def _model() -> tuple[AnnotationModel, np.ndarray]:
    hu = np.full((4, 16, 16), 40, np.int16)
    comps = np.zeros(hu.shape, np.int32)
    comps[1:3, 2:5, 2:5] = 1  # 18 voxels
    comps[2, 10:12, 10:13] = 2  # 6 voxels
    return AnnotationModel(hu), comps


def test_a_proposal_is_one_undo_step_and_starts_unclassified():
    m, comps = _model()
    m.apply_proposal(comps, "r")
    assert (m.labels[comps > 0] == UNCLASSIFIED).all() and not m.labels[comps == 0].any()
    assert m.history.can_undo
    m.undo()
    assert not m.labels.any() and not m.history.can_undo  # exactly one step
    m.redo()
    assert (m.labels == UNCLASSIFIED).sum() == 24


def test_one_click_gives_a_component_the_chosen_subtype():
    m, comps = _model()
    m.apply_proposal(comps, "r")
    m.label_value = 1
    assert m.cycle_class() == 2 and m.cycle_class(-1) == 1 and m.cycle_class(-1) == 5
    m.cycle_class()  # back to 1 (EDH) ...
    m.cycle_class()  # ... then 2 (SDH)
    assert m.classify_component(2, 3, 3) is not None  # a voxel of component 1
    assert (m.labels[comps == 1] == 2).all()
    assert (m.labels[comps == 2] == UNCLASSIFIED).all()  # the other one untouched
    assert m.classify_component(0, 0, 0) is None  # no component there: nothing happens
    m.classify_component(2, 10, 11, value=4)
    assert (m.labels[comps == 2] == 4).all()
    m.undo()
    assert (m.labels[comps == 2] == UNCLASSIFIED).all() and (m.labels[comps == 1] == 2).all()


def test_edit_metrics_equal_hand_computed_values():
    prop = np.array([[[255, 255, 0], [255, 0, 0], [0, 0, 0]]], np.uint8)  # 3 voxels
    cur = np.array([[[4, 255, 0], [0, 0, 0], [0, 4, 4]]], np.uint8)
    e = edit_effort(prop, cur)
    # hemorrhage: proposal {00, 01, 10}, current {00, 01, 21, 22}: overlap 2 -> 2*2/(3+4)
    assert e["dice"] == pytest.approx(4 / 7)
    assert e["added"] == {"EDH": 0, "SDH": 0, "SAH": 0, "IPH": 3, "IVH": 0, "unclassified": 0}
    assert e["removed"] == {"EDH": 0, "SDH": 0, "SAH": 0, "IPH": 0, "IVH": 0,
                            "unclassified": 2}
    assert e["changed"] == 4
    assert edit_effort(np.zeros((1, 2, 2), np.uint8), np.zeros((1, 2, 2), np.uint8))["dice"] == 1


def test_the_model_reports_effort_against_its_proposal():
    m, comps = _model()
    assert m.edit_effort() is None  # not started from a model
    m.apply_proposal(comps, "r")
    m.classify_component(2, 3, 3, value=3)
    m.begin_stroke(erase=True)
    m.brush_radius_px = 0.5
    m.paint_to(2, 10, 10)
    m.end_stroke()
    e = m.edit_effort()
    assert e["run"] == "r" and e["strokes"] == 2
    assert e["added"]["SAH"] == 18 and e["removed"]["unclassified"] == 19
    assert e["dice"] == pytest.approx(2 * 23 / (24 + 23))


def test_components_below_the_minimum_size_are_dropped_and_the_brain_mask_applies():
    prob = np.zeros((3, 10, 10), np.float32)
    prob[1, 1:4, 1:4] = 0.9  # 9 voxels
    prob[1, 7, 7] = 0.9  # a speck
    prob[0, 5:8, 1:4] = 0.4  # below the threshold
    brain = np.ones(prob.shape, bool)
    comps, n = proposal_components(prob, brain, 0.5, min_voxels=2)
    assert n == 1 and (comps > 0).sum() == 9
    brain[1, 1, :] = False
    comps, n = proposal_components(prob, brain, 0.5, min_voxels=2)
    assert n == 1 and (comps > 0).sum() == 6
