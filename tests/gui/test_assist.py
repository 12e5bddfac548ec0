"""Model-assisted labelling in the main window (issue 16): Start from a model, one click
per component, the Effort column, and N in the exam list for the queue."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core.brain_mask import brain_mask
from ictview.core.proposal import UNCLASSIFIED
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace

from .conftest import _send_mouse, click


def _predict(root: Path, exams: list[str]) -> dict[str, tuple[int, int, int]]:
    """Run 'r': two 0.9 blobs inside the brain of each exam, 3 x 9 x 9 at the returned
    centre and 3 x 5 x 5 beside it; entropy rises with the exam's index (a faint
    0.03 * i haze elsewhere)."""
    centres = {}
    with Workspace.open(root) as ws:
        ws.create_run("r", "teacher", {})
        for i, e in enumerate(exams):
            hu = ws.read_volume(e).hu
            z, y, x = (int(v) for v in np.argwhere(brain_mask(hu)).mean(axis=0))
            y, x = y - 14, x - 14
            prob = np.full(hu.shape, 0.03 * i, np.float16)
            prob[z - 1:z + 2, y - 4:y + 5, x - 4:x + 5] = 0.9
            prob[z - 1:z + 2, y + 24:y + 29, x + 26:x + 31] = 0.9
            ws.write_prediction("r", e, Prediction(prob, prob.max((1, 2)).astype(np.float32),
                                                   0.9))
            centres[e] = (z, y, x)
    return centres


def test_start_from_a_model_classify_a_component_and_see_the_effort(window, qtbot):
    win = window
    root = win.ws.root
    exams = [e.name for e in win.ws.exams(role="unlabeled")][:3]
    centres = _predict(root, exams)
    win._refresh_labelsets()
    i = win.start_combo.findText("Model: r")
    assert i > 0  # the run is offered as a start
    win.start_combo.setCurrentIndex(i)
    win.start_combo.activated.emit(i)
    exam = exams[0]
    assert win.open_exam(exam), win.last_error
    m = win.model
    z, y, x = centres[exam]
    assert m.proposal_run == "r" and (m.labels == UNCLASSIFIED).sum() == 3 * 81 + 75
    assert m.tool == "fill"
    win.slice_view.set_slice(z)
    m.label_value = 4
    win.actions_by_key["cycle_class"].trigger()  # K: IPH -> IVH
    assert m.label_value == 5
    click(win.slice_view, y, x)  # one click on the component
    assert (m.labels == 5).sum() == 3 * 81 and (m.labels == UNCLASSIFIED).sum() == 75
    assert m.flush(30)
    qtbot.waitUntil(lambda: win.exam_list.model.row(
        win.exam_list.model.row_of(exam)).effort_text != "", timeout=10000)
    row = win.exam_list.model.row(win.exam_list.model.row_of(exam))
    assert row.effort["run"] == "r" and row.effort["added"]["IVH"] == 243
    assert row.effort_text.startswith("1.00·")  # classifying changes no hemorrhage voxel
    win.viewer.fit_all()
    _send_mouse(win.slice_view.canvas.viewport(), QtCore.QEvent.Type.MouseMove,
                win.slice_view.pixel_to_widget(2, 2), QtCore.Qt.MouseButton.NoButton,
                QtCore.Qt.MouseButton.NoButton)
    QtWidgets.QApplication.processEvents()
    out = os.environ.get("ICTVIEW_ASSIST_SCREENSHOT")
    if out:  # for looking at it: ICTVIEW_ASSIST_SCREENSHOT=/tmp/assist.png pytest ...
        assert win.grab().save(out)
    # the proposal is its own undo step, after the classification
    m.undo()
    m.undo()
    assert not m.labels.any()


def test_n_in_the_exam_list_opens_the_queue_s_next_exam(window, qtbot):
    win = window
    exams = [e.name for e in win.ws.exams() if e.role in ("labeled", "unlabeled")]
    _predict(win.ws.root, exams)
    win.exam_list.table.setFocus()
    ev = QtGui.QKeyEvent(QtCore.QEvent.Type.KeyPress, QtCore.Qt.Key.Key_N,
                         QtCore.Qt.KeyboardModifier.NoModifier, "n")
    QtWidgets.QApplication.sendEvent(win.exam_list.table, ev)
    # the most uncertain exam is the last one (the haze 0.03 * i stays below 0.5); none labelled
    assert win.model is not None and win.model.exam == exams[-1], win.last_error
