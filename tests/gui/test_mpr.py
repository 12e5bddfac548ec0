"""The MPR layout through real widgets: painting, undo, 3D fill, interpolation, crosshair,
measurements and the tag browser from any of the three views."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from ictview.core.measure import distance_mm
from ictview.core.mpr import AXIAL, CORONAL, SAGITTAL
from ictview.core.volume_paint import grow_region

from .conftest import brain_pixel, click, drag, wheel

Qt = QtCore.Qt
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def mpr(window, qtbot):
    QTest.keyClick(window, Qt.Key.Key_M)  # the layout key
    assert window.viewer.layout_mode == "mpr-1x3"
    window.viewer.fit_all()
    QtCore.QCoreApplication.processEvents()
    return window


def _views(win):
    v = win.viewer.views
    return v[AXIAL], v[CORONAL], v[SAGITTAL]


def test_layout_key_and_menu_switch_between_axial_1x3_and_2x2(window):
    v = window.viewer
    ax, cor, sag = _views(window)
    assert v.layout_mode == "axial" and not cor.isVisible()
    QTest.keyClick(window, Qt.Key.Key_M)
    assert v.layout_mode == "mpr-1x3" and cor.isVisible() and sag.isVisible()
    QTest.keySequence(window, "Shift+M")
    assert v.layout_mode == "mpr-2x2" and v.info.isVisible()
    assert "CROSSHAIR" in v.info.text()
    window.actions_by_key["layout_axial"].trigger()
    assert v.layout_mode == "axial" and not sag.isVisible()
    assert window.actions_by_key["layout_axial"].isChecked()


def test_views_show_their_plane_at_true_aspect_with_letters_and_position(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    nz, ny, nx = m.hu.shape
    assert cor.shown_labels().shape == (nz, nx) and sag.shown_labels().shape == (nz, ny)
    # a 5 mm slice is drawn as tall as 5 mm of columns
    assert cor._y_scale == pytest.approx(m.spacing[0] / m.spacing[2])
    assert cor._markers["top"].text() == "S" and cor._markers["left"].text() == "R"
    assert sag._markers["left"].text() == "A" and sag._markers["bottom"].text() == "I"
    assert "mm" in ax._corners["bl"].text() and "Coronal" in cor._corners["bl"].text()
    assert ax.scale.mm > 0 and cor.scale.mm > 0


def test_crosshair_click_and_wheel_link_the_three_views(mpr):
    ax, cor, sag = _views(mpr)
    z = ax.z
    r, c = brain_pixel(mpr.model.hu, z)
    drag(ax, [(r, c)], modifiers=CTRL)  # Ctrl+click sets the point with any tool
    assert mpr.viewer.crosshair.zyx == (z, r, c)
    assert cor.z == r and sag.z == c
    assert ax.link_v.value() == pytest.approx(c + 0.5)
    # the crosshair tool: a plain click on the sagittal view moves axial and coronal
    QTest.keyClick(mpr, Qt.Key.Key_N)
    nz = mpr.model.hu.shape[0]
    click(sag, nz - 1 - (z - 1), r - 5)  # display row of slice z - 1 (head top up)
    assert mpr.viewer.crosshair.zyx == (z - 1, r - 5, c)
    assert ax.z == z - 1 and cor.z == r - 5
    # scrolling the coronal view moves the coronal line in the axial view
    wheel(cor, 2, 5, +2)
    assert cor.z == r - 3 and mpr.viewer.crosshair.zyx[1] == r - 3
    assert ax.link_h.value() == pytest.approx((r - 3 + 0.5) * ax._y_scale)


def test_painting_in_the_coronal_view_shows_in_the_axial_one_and_undo_spans_views(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    z = ax.z
    r, c = brain_pixel(m.hu, z)
    mpr.viewer.set_crosshair((z, r, c))
    assert cor.z == r
    nz = m.hu.shape[0]
    row = nz - 1 - z  # display row of slice z in the coronal view
    m.label_value = 3
    before = m.labels.copy()
    drag(cor, [(row, c - 6), (row, c + 6)])
    changed = np.argwhere(m.labels != before)
    assert len(changed) and set(changed[:, 1]) == {r}  # only the coronal slice y = r
    assert z in set(changed[:, 0]) and m.labels[z, r, c] == 3
    # the axial view on slice z shows it, and the sagittal view through column c too
    assert ax.shown_labels()[r, c] == 3
    assert sag.shown_labels()[row, r] == 3
    assert len(m.history) == 1
    # and it is on screen in both views (the overlay repaints only the changed boxes)
    for view, (vr, vc) in ((cor, (row, c)), (ax, (r, c))):
        view.set_linked_point(None)  # the crosshair lines pass through this very pixel
        QtCore.QCoreApplication.processEvents()
        img = view.canvas.viewport().grab().toImage()
        color = img.pixelColor(view.pixel_to_widget(vr, vc))
        assert color.blue() - color.red() > 60, (view.plane_name, color.getRgb())  # SAH cyan
    after_coronal = m.labels.copy()
    # a second stroke in the axial view, then undo both from the keyboard
    drag(ax, [(r + 8, c), (r + 8, c + 4)])
    assert len(m.history) == 2 and m.labels[z, r + 8, c + 2] == 3
    QTest.keySequence(mpr, "Ctrl+Z")
    assert np.array_equal(m.labels, after_coronal)
    QTest.keySequence(mpr, "Ctrl+Z")
    assert np.array_equal(m.labels, before)
    assert cor.shown_labels()[row, c] == 0 and ax.shown_labels()[r, c] == 0
    # saved like any stroke (the journal/saver does not care about the view)
    QTest.keySequence(mpr, "Ctrl+Shift+Z")
    m.flush(10)
    from ictview.store.workspace import Workspace

    with Workspace.open(mpr.ws.root) as ws:
        assert np.array_equal(ws.load_labels(mpr.labelset, m.exam), m.labels)


def test_3d_fill_from_the_sagittal_view_is_bounded_by_the_hu_range(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    z = ax.z
    r, c = brain_pixel(m.hu, z)
    lo, hi = m.hu[z, r, c] - 6, m.hu[z, r, c] + 6
    m.hu_range = (float(lo), float(hi))
    m.grow_connectivity = 6
    QTest.keyClick(mpr, Qt.Key.Key_G)
    assert m.tool == "grow"
    mpr.viewer.set_crosshair((z, r, c))
    nz = m.hu.shape[0]
    click(sag, nz - 1 - z, r)
    want = grow_region(m.hu, (z, r, c), (lo, hi), connectivity=6)
    got = m.labels == m.label_value
    assert want.any() and np.array_equal(got, want)
    hu_in = m.hu[got]
    assert hu_in.min() >= lo and hu_in.max() <= hi
    assert len({int(k) for k in np.flatnonzero(got.any(axis=(1, 2)))}) > 1  # 3D, not 2D
    assert len(m.history) == 1
    # over the cap: nothing written, the reason in the status bar
    QTest.keySequence(mpr, "Ctrl+Z")
    m.grow_max_voxels = 5
    click(sag, nz - 1 - z, r)
    assert not m.labels.any()
    assert "cap of 5" in mpr.status.currentMessage()


def test_fill_between_slices_between_two_labelled_slices(window):
    win, ax = window, window.slice_view
    m = win.model
    z1 = 1
    z2 = z1 + 4
    r, c = brain_pixel(m.hu, z1)
    m.label_value = 2
    m.brush_radius_mm = 4.0
    for z in (z1, z2):
        ax.set_slice(z)
        drag(ax, [(r, c - 3), (r, c + 3)])
    assert all(not (m.labels[k] == 2).any() for k in range(z1 + 1, z2))
    QTest.keySequence(win, "Ctrl+I")
    for k in range(z1 + 1, z2):
        assert (m.labels[k] == 2).any() and m.labels[k, r, c] == 2
    assert not (m.labels[z2 + 1:] == 2).any() and not (m.labels[:z1] == 2).any()
    assert len(m.history) == 3 and "Ctrl+Z undoes it" in win.status.currentMessage()
    QTest.keySequence(win, "Ctrl+Z")
    assert all(not (m.labels[k] == 2).any() for k in range(z1 + 1, z2))


def test_ruler_and_ellipse_roi_in_the_coronal_view(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    QTest.keyClick(mpr, Qt.Key.Key_R)
    assert cor.view_tool == "ruler" and ax.view_tool == "ruler"
    before = m.labels.copy()
    drag(cor, [(1, 20), (3, 40), (5, 60)])
    assert np.array_equal(m.labels, before)  # a measuring drag paints nothing
    meas = cor.measurements[-1]
    # the points are where the mouse was (widget pixels: within half a voxel)
    assert np.allclose(meas.points[0], (1, 20), atol=0.5)
    assert np.allclose(meas.points[-1], (5, 60), atol=0.5)
    want = distance_mm(meas.points[0], meas.points[-1], (m.spacing[0], m.spacing[2]))
    assert meas.kind == "ruler" and meas.plane == CORONAL and meas.index == cor.z
    assert meas.text == f"{want:.1f} mm"
    assert f"{want:.1f} mm" in mpr.status.currentMessage()
    assert len(cor._measure_items) == 2 and not ax._measure_items  # drawn where it was made
    QTest.keyClick(mpr, Qt.Key.Key_Q)
    r, c = brain_pixel(m.hu, ax.z)
    drag(ax, [(r - 4, c - 4), (r + 4, c + 4)])
    roi = ax.measurements[-1]
    assert roi.kind == "ellipse" and "mean" in roi.text and "mm²" in roi.text
    QTest.keyClick(mpr, Qt.Key.Key_B)  # an annotation tool ends measuring
    assert ax.view_tool is None
    QTest.keyClick(mpr, Qt.Key.Key_Delete)
    assert not ax.measurements and not ax._measure_items


def test_hidden_class_is_transparent_and_locked_class_is_kept(window):
    win, ax = window, window.slice_view
    m, panel = win.model, window.tool_panel
    z = ax.z
    r, c = brain_pixel(m.hu, z)
    m.label_value = 1
    drag(ax, [(r, c)])
    panel.lock_boxes[1].setChecked(True)
    panel.show_boxes[4].setChecked(False)
    assert m.locked_classes == {1} and m.hidden_classes == {4}
    lut = ax.label_item.lut
    assert lut[4][3] == 0 and lut[1][3] == 255
    m.label_value = 4
    m.brush_radius_mm = 8.0
    drag(ax, [(r, c)])
    assert m.labels[z, r, c] == 1 and (m.labels == 4).any()
    for v in win.viewer.views.values():
        assert v.label_item.lut[4][3] == 0


def test_tag_browser_reads_the_source_file_and_says_when_it_is_gone(window, qtbot):
    from ictview.gui.viewer.actions import open_tag_browser

    win = window
    dlg = open_tag_browser(win)
    qtbot.addWidget(dlg)
    with sqlite3.connect(win.ws.root / "workspace.sqlite") as con:
        sop = con.execute(
            "SELECT s.sop_uid FROM slices s JOIN exams e ON e.id = s.exam_id "
            "WHERE e.name = ? AND s.idx = ?", (win.model.exam, win.slice_view.z)).fetchone()[0]
    assert not dlg.error and dlg.n_rows > 30
    assert dlg.value_of("SOPInstanceUID") == sop
    dlg.filter.setText("0028")
    shown = [dlg.tree.topLevelItem(i) for i in range(dlg.n_rows)]
    assert any(not it.isHidden() for it in shown) and any(it.isHidden() for it in shown)
    with sqlite3.connect(win.ws.root / "workspace.sqlite") as con:
        con.execute("UPDATE exams SET source = ? WHERE name = ?",
                    (str(win.ws.root / "moved-away"), win.model.exam))
    gone = open_tag_browser(win)
    qtbot.addWidget(gone)
    assert "is gone" in gone.error and gone.n_rows == 0
    assert "is gone" in gone.source.text()


def test_large_exam_paints_its_first_slice_before_it_is_loaded_and_is_cached(window, qtbot):
    from ictview.gui.viewer.exam_cache import exam_cache

    win = window
    win.sync_open_max_voxels = 0  # every exam is "large": opened on the loader thread
    cache = exam_cache()
    with qtbot.waitSignal(win.exam_opened, timeout=10000):
        assert win.open_exam("ATL-0002")
        assert win.model is None  # still loading, but the CT is already on screen
        shown = win.slice_view.ct_item.image
        assert shown is not None and shown.shape == (128, 128)
        assert "Loading ATL-0002" in win.slice_view._corners["bl"].text()
    hits = cache.hits
    win.open_exam("ATL-0001")
    qtbot.waitUntil(lambda: win.model is not None and win.model.exam == "ATL-0001", timeout=10000)
    assert cache.hits > hits  # opened before in this session: not read again
    assert not win.model.hu.flags.writeable  # a cached CT is shared: nothing may edit it


def test_polygon_in_the_coronal_view_fills_the_right_voxels(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    z = ax.z
    r, c = brain_pixel(m.hu, z)
    mpr.viewer.set_crosshair((z, r, c))
    nz = m.hu.shape[0]
    top, bottom = nz - 1 - (z + 1), nz - 1 - (z - 1)  # display rows of slices z+1 .. z-1
    QTest.keyClick(mpr, Qt.Key.Key_P)
    m.label_value = 5
    for row, col in ((top, c - 5), (top, c + 5), (bottom, c + 5), (bottom, c - 5)):
        click(cor, row, col)
    QTest.keyClick(cor.canvas, Qt.Key.Key_Return)
    painted = np.argwhere(m.labels == 5)
    assert set(painted[:, 1]) == {r}  # the coronal slice y = r
    assert set(painted[:, 0]) == {z - 1, z, z + 1}  # head-top-up rows mapped back to slices
    assert set(painted[:, 2]) == set(range(c - 5, c + 6)) and len(m.history) == 1


def test_freehand_roi_in_the_sagittal_view_reports_its_area(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    QTest.keyClick(mpr, Qt.Key.Key_W)
    nz = m.hu.shape[0]
    pts = [(1, 30), (1, 60), (nz - 2, 60), (nz - 2, 30), (1, 30)]
    drag(sag, pts)
    roi = sag.measurements[-1]
    assert roi.kind == "freehand" and roi.plane == SAGITTAL and len(roi.points) >= 4
    # a box of (nz - 2) rows x 31 columns of 5 x 1.74 mm pixels, within half a pixel per side
    area = float(roi.text.split("area ")[1].split(" mm")[0])
    want = (nz - 2) * 31 * m.spacing[0] * m.spacing[1]
    assert abs(area - want) <= 0.15 * want


def test_fill_holes_slice_works_in_the_view_last_clicked(mpr):
    ax, cor, sag = _views(mpr)
    m = mpr.model
    nz = m.labels.shape[0]
    assert nz >= 5
    y = cor.z
    ring = np.zeros_like(m.labels)
    ring[1:nz - 1, y, 20:41] = 2  # a hollow rectangle in coronal slice y: a hole only there
    ring[2:nz - 2, y, 22:39] = 0
    m.copy_labels(ring)
    m.label_value = 2
    QTest.keyClick(mpr, Qt.Key.Key_N)  # the crosshair tool: a click paints nothing
    click(cor, 0, 60)
    assert mpr.viewer.working_slice() == (CORONAL, y)
    mpr.tool_panel.fill_holes_slice.click()
    assert (m.labels[2:nz - 2, y, 22:39] == 2).all() and len(m.history) == 2
    assert "coronal slice" in mpr.status.currentMessage()
    window_axial = mpr.actions_by_key["layout_axial"]
    window_axial.trigger()  # one view: 'this slice' is the axial one again
    assert mpr.viewer.working_slice() == (AXIAL, ax.z)
