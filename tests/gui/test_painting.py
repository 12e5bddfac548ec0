"""Painting through the real slice view: mouse events -> model -> labels on disk."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore
from PySide6.QtTest import QTest

from ictview.store.workspace import Workspace

from .conftest import RATER, brain_pixel, drag

Qt = QtCore.Qt


def _saved_labels(win):
    win.model.flush(10)
    with Workspace.open(win.ws.root) as ws:
        return ws.load_labels(win.labelset, win.model.exam)


def test_drag_paints_one_undo_step_and_autosaves(window):
    win, view = window, window.slice_view
    m = win.model
    assert win.editable and win.labelset == f"rater-{RATER}"
    z = view.z
    r, c = brain_pixel(m.hu, z)
    m.label_value = 4  # IPH
    before = m.labels.copy()
    drag(view, [(r, c), (r, c + 6), (r + 6, c + 6)])
    painted = m.labels.copy()
    changed = painted != before
    assert changed[z, r, c] and changed[z, r, c + 6] and changed[z, r + 6, c + 6]
    assert set(np.unique(painted[changed])) == {4}
    assert changed[:z].sum() == 0 and changed[z + 1 :].sum() == 0
    # the gap between the move points is painted too (line_brush), and it is one step
    assert painted[z, r, c + 3] == 4
    assert len(m.history) == 1
    # the label overlay shows the model's array
    assert np.array_equal(view.shown_labels(), painted[z])
    # autosaved to the rater's labelset
    assert np.array_equal(_saved_labels(win), painted)
    # the volume readout follows
    assert win.tool_panel.volume_labels["IPH"].text() != "0.00 mL"


def test_undo_redo_restore_exact_arrays(window, qtbot):
    win, view = window, window.slice_view
    m = win.model
    z = view.z
    r, c = brain_pixel(m.hu, z)
    states = [m.labels.copy()]
    for k, value in enumerate((1, 2, 5)):
        m.label_value = value
        drag(view, [(r + 3 * k, c - 4), (r + 3 * k, c + 4)])
        states.append(m.labels.copy())
    assert not np.array_equal(states[-1], states[0])
    for k in range(3, 0, -1):
        QTest.keySequence(win, "Ctrl+Z")
        assert np.array_equal(m.labels, states[k - 1])
    assert not win.actions_by_key["undo"].isEnabled()
    for k in range(1, 4):
        QTest.keySequence(win, "Ctrl+Shift+Z")
        assert np.array_equal(m.labels, states[k])
    QTest.keySequence(win, "Ctrl+Z")
    assert np.array_equal(_saved_labels(win), states[2])


def test_eraser_and_shift_drag_erase(window):
    win, view = window, window.slice_view
    m = win.model
    z = view.z
    r, c = brain_pixel(m.hu, z)
    m.label_value = 2
    drag(view, [(r, c - 6), (r, c + 6)])
    assert (m.labels[z, r, c - 6 : c + 7] == 2).all()
    QTest.keyClick(win, Qt.Key.Key_X)  # eraser tool
    assert m.tool == "eraser"
    drag(view, [(r, c - 6), (r, c)])
    assert (m.labels[z, r, c - 6 : c + 1] == 0).all()
    assert m.labels[z, r, c + 6] == 2
    QTest.keyClick(win, Qt.Key.Key_B)  # back to the brush; Shift+drag erases
    drag(view, [(r, c + 1), (r, c + 6)], modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert not (m.labels[z] == 2).any()


def test_hu_limited_brush_leaves_pixels_outside_the_range(window):
    win, view = window, window.slice_view
    m = win.model
    z = view.z
    r, c = brain_pixel(m.hu, z)
    QTest.keyClick(win, Qt.Key.Key_H)
    assert m.hu_limited and win.tool_panel.hu_limited.isChecked()
    win.tool_panel.hu_lo.setValue(25)
    win.tool_panel.hu_hi.setValue(35)
    assert m.hu_range == (25.0, 35.0)
    m.brush_radius_px = 12
    m.label_value = 3
    before = m.labels.copy()
    drag(view, [(r, c - 10), (r, c + 10)])
    changed = m.labels != before
    assert changed.any()
    hu = m.hu
    assert ((hu[changed] >= 25) & (hu[changed] <= 35)).all()
    # inside the brush's reach but outside the range: untouched
    reach = np.zeros_like(changed)
    reach[z, r - 10 : r + 11, c - 20 : c + 21] = True
    outside = reach & ((hu < 25) | (hu > 35))
    assert outside.any()
    assert np.array_equal(m.labels[outside], before[outside])


def test_flood_fill_and_polygon_tools(window):
    win, view = window, window.slice_view
    m = win.model
    z = view.z
    r, c = brain_pixel(m.hu, z)
    # polygon: four clicks and a double-click close it
    QTest.keyClick(win, Qt.Key.Key_P)
    assert view.tool == "polygon"
    m.label_value = 5
    corners = [(r - 5, c - 5), (r - 5, c + 5), (r + 5, c + 5), (r + 5, c - 5)]
    for rc in corners:
        drag(view, [rc])
    view.close_polygon()
    assert (m.labels[z, r - 4 : r + 5, c - 4 : c + 5] == 5).all()
    assert len(m.history) == 1
    # flood fill within the HU range, from a seed whose HU is in it
    QTest.keyClick(win, Qt.Key.Key_F)
    hu = int(m.hu[z, r + 20, c])
    m.hu_range = (hu - 2, hu + 2)
    m.label_value = 1
    drag(view, [(r + 20, c)])
    assert m.labels[z, r + 20, c] == 1
    filled = m.labels[z] == 1
    assert ((m.hu[z][filled] >= hu - 2) & (m.hu[z][filled] <= hu + 2)).all()


def test_closing_waits_for_saves(window):
    win, view = window, window.slice_view
    m = win.model
    z = view.z
    r, c = brain_pixel(m.hu, z)
    for k in range(5):
        drag(view, [(r + k, c - 5), (r + k, c + 5)])
    expected = m.labels.copy()
    root, labelset, exam = win.ws.root, win.labelset, m.exam
    win.close()
    assert win.model is None
    with Workspace.open(root) as ws:
        assert np.array_equal(ws.load_labels(labelset, exam), expected)
        assert not ws.label_path(labelset, exam).with_suffix(".journal").stat().st_size > 200


def test_export_dialog_writes_nifti_of_the_painted_labels(window, qtbot, tmp_path):
    from ictview.gui.shell.main_window import ExportDialog
    from ictview.io.export import read_nifti

    win, view = window, window.slice_view
    m = win.model
    r, c = brain_pixel(m.hu, view.z)
    drag(view, [(r, c - 4), (r, c + 4)])
    m.flush(10)
    dialog = ExportDialog(win, win.ws, win.labelset, m.exam)
    qtbot.addWidget(dialog)
    assert dialog.labelset.currentText() == win.labelset
    dialog.out.setText(str(tmp_path / "out"))
    dialog.only_current.setChecked(True)
    with qtbot.waitSignal(dialog.finished_export, timeout=30000):
        dialog.export_button.click()
    assert not isinstance(dialog.result, Exception), dialog.result
    assert [p.name for p in dialog.result.written] == [f"{m.exam}.nii.gz"]
    labels, _affine = read_nifti(dialog.result.written[0])
    assert np.array_equal(labels, m.labels)
    assert "Wrote 1 file" in dialog.message.text()
    dialog.reject()


def test_fill_holes_after_a_flood_fill_slice_then_3d_each_one_undo_step(window):
    """A flood fill inside a narrow HU range leaves noise holes; the tool panel's 'Fill
    holes: slice' fills those of the slice shown, 'Fill holes: 3D' those of every slice."""
    from ictview.core.brain_mask import fill_holes_inplane

    win, view = window, window.slice_view
    m = win.model
    z = view.z
    r, c = brain_pixel(m.hu, z)
    QTest.keyClick(win, Qt.Key.Key_F)
    m.label_value = 2
    hu = int(m.hu[z, r, c])
    m.hu_range = (hu - 12, hu + 12)

    def holes(k: int) -> np.ndarray:
        mask = m.labels[k] == 2
        return fill_holes_inplane(mask[None])[0] & (m.labels[k] == 0)

    for k in (z, z + 1):
        view.set_slice(k)
        rk, ck = brain_pixel(m.hu, k)
        m.hu_range = (int(m.hu[k, rk, ck]) - 12, int(m.hu[k, rk, ck]) + 12)
        drag(view, [(rk, ck)])
        assert (m.labels[k] == 2).sum() > 200
    view.set_slice(z)
    n_z, n_next = int(holes(z).sum()), int(holes(z + 1).sum())
    assert n_z > 0 and n_next > 0  # the noise holes this is about
    steps = len(m.history)
    before = m.labels.copy()
    win.tool_panel.fill_holes_slice.click()
    assert not holes(z).any() and int(holes(z + 1).sum()) == n_next
    changed = m.labels != before
    assert int(changed.sum()) == n_z and (before[changed] == 0).all()
    assert len(m.history) == steps + 1 and "Ctrl+Z" in win.status.currentMessage()
    win.tool_panel.fill_holes_3d.click()
    assert not holes(z + 1).any() and len(m.history) == steps + 2
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(m.labels, before)
    win.tool_panel.fill_holes_3d.click()  # the menu / action does the same
    win.actions_by_key["fill_holes_3d"].trigger()
    assert "encloses no unlabeled pixel" in win.status.currentMessage()
    assert np.array_equal(_saved_labels(win), m.labels)


def test_no_class_name_is_elided_in_the_tool_panel(window):
    """Each class button is as wide as its full text asks ('Intraparenchymal' was elided)."""
    for value, b in window.tool_panel.class_buttons.items():
        assert b.width() >= b.sizeHint().width(), (value, b.text(), b.width())
