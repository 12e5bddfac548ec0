"""Viewing: window presets and free window/level, slice scrolling, zoom/fit, status bar."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from ictview.core.window import WINDOW_PRESETS, window_levels

from .conftest import brain_pixel, drag, wheel

Qt = QtCore.Qt


@pytest.mark.parametrize("key,name", [(Qt.Key.Key_1, "brain"), (Qt.Key.Key_2, "subdural"),
                                      (Qt.Key.Key_3, "stroke"), (Qt.Key.Key_4, "bone")])
def test_keys_1_to_4_set_window_presets(window, key, name):
    win, view = window, window.slice_view
    QTest.keyClick(win, Qt.Key.Key_4 if key != Qt.Key.Key_4 else Qt.Key.Key_1)  # start elsewhere
    QTest.keyClick(win, key)
    lo, hi = window_levels(*WINDOW_PRESETS[name])
    assert tuple(view.ct_item.levels) == pytest.approx((lo, hi))
    assert win.model.window == tuple(map(float, WINDOW_PRESETS[name]))
    assert win.actions_by_key[f"preset_{name}"].isChecked()
    assert f"W {WINDOW_PRESETS[name][1]}" in win.status.window.text()
    QTest.keyClick(win, key)  # again: stays on, still the only one checked
    checked = [k for k, a in win.actions_by_key.items()
               if k.startswith("preset_") and a.isChecked()]
    assert checked == [f"preset_{name}"]


def test_right_drag_changes_window_level(window):
    win, view = window, window.slice_view
    c0, w0 = view.center, view.width
    r, col = brain_pixel(win.model.hu, view.z)
    drag(view, [(r, col), (r + 20, col + 30)], button=Qt.MouseButton.RightButton)
    assert view.width > w0 and view.center > c0  # right = wider, down = higher level
    assert win.model.window == (view.center, view.width)
    assert view.preset == "" and not any(
        a.isChecked() for k, a in win.actions_by_key.items() if k.startswith("preset_")
    )
    assert tuple(view.ct_item.levels) == pytest.approx(window_levels(view.center, view.width))
    # no label was painted by the right button
    assert not win.model.history.can_undo


def test_wheel_arrows_and_page_keys_change_slice(window):
    win, view = window, window.slice_view
    n = view.n_slices
    view.set_slice(n // 2)
    z0 = view.z
    r, c = brain_pixel(win.model.hu, z0)
    wheel(view, r, c, +1)
    assert view.z == z0 + 1
    wheel(view, r, c, -2)
    assert view.z == z0 - 1
    QTest.keyClick(win, Qt.Key.Key_Up)
    assert view.z == z0
    QTest.keyClick(win, Qt.Key.Key_Down)
    assert view.z == z0 - 1
    QTest.keyClick(win, Qt.Key.Key_PageDown)
    assert view.z == max(z0 - 6, 0)
    QTest.keyClick(win, Qt.Key.Key_PageUp)
    QTest.keyClick(win, Qt.Key.Key_PageUp)
    assert view.z == min(max(z0 - 6, 0) + 10, n - 1)
    for _ in range(n + 2):
        QTest.keyClick(win, Qt.Key.Key_Up)
    assert view.z == n - 1  # clamped
    # the shown images are the new slice's
    expected = win.model.hu[view.z].astype(np.float32)
    assert np.array_equal(view.ct_item.image, expected)
    assert np.array_equal(view.shown_labels(), win.model.labels[view.z])
    assert win.status.slice.text() == f"Slice {n} / {n}"


def test_zoom_pan_fit_and_crosshair(window):
    win, view = window, window.slice_view
    full = view.vb.viewRect()
    r, c = brain_pixel(win.model.hu, view.z)
    wheel(view, r, c, +3, modifiers=Qt.KeyboardModifier.ControlModifier)
    zoomed = view.vb.viewRect()
    assert zoomed.width() < full.width() * 0.9
    assert view.z == view.z  # Ctrl+wheel zooms, it does not scroll
    drag(view, [(r, c), (r + 10, c + 10)], button=Qt.MouseButton.MiddleButton)
    panned = view.vb.viewRect()
    assert panned.center() != zoomed.center()
    QTest.keySequence(win, "Ctrl+0")
    fitted = view.vb.viewRect()
    assert fitted.width() == pytest.approx(full.width(), rel=0.02)
    # crosshair follows the cursor and toggles with C
    drag(view, [(r, c)], button=Qt.MouseButton.MiddleButton)
    assert view.v_line.isVisible() and view.v_line.value() == pytest.approx(c + 0.5)
    QTest.keyClick(win, Qt.Key.Key_C)
    assert not view.crosshair_visible and not view.v_line.isVisible()


def test_status_bar_shows_hu_and_position_under_cursor(window):
    win, view = window, window.slice_view
    z = view.z
    r, c = brain_pixel(win.model.hu, z)
    drag(view, [(r, c)], button=Qt.MouseButton.MiddleButton)
    assert win.status.hu.text() == f"HU {int(win.model.hu[z, r, c])}"
    win.model.label_value = 5
    win.model.paint_to(z, r, c)
    win.model.end_stroke()
    drag(view, [(r, c)], button=Qt.MouseButton.MiddleButton)
    assert win.status.hu.text() == f"HU {int(win.model.hu[z, r, c])}  ·  IVH"
    # the slice numbered from 1 in both places, never a 0-based z beside "Slice z+1 / n"
    assert f"x {c}  y {r}  slice {z + 1}" in win.status.position.text()
    assert win.status.slice.text().startswith(f"Slice {z + 1} /")


def test_brush_size_keys_and_class_keys(window):
    win = window
    m = win.model
    px = m.brush_radius_px
    QTest.keyClick(win, Qt.Key.Key_BracketRight)
    assert m.brush_radius_px == pytest.approx(px + 1)
    assert win.tool_panel.radius_mm.value() == pytest.approx(m.brush_radius_mm, abs=0.05)
    QTest.keyClick(win, Qt.Key.Key_BracketLeft)
    QTest.keyClick(win, Qt.Key.Key_BracketLeft)
    assert m.brush_radius_px == pytest.approx(px - 1)
    assert win.slice_view.brush_radius_px == pytest.approx(m.brush_radii_px)
    for key, value in ((Qt.Key.Key_S, 2), (Qt.Key.Key_A, 3), (Qt.Key.Key_I, 4),
                       (Qt.Key.Key_V, 5), (Qt.Key.Key_E, 1)):
        QTest.keyClick(win, key)
        assert m.label_value == value
        assert win.tool_panel.class_buttons[value].isChecked()
    QTest.keyClick(win, Qt.Key.Key_O)
    assert m.fill_mode == "outline" and win.slice_view.outline_mode
    win.tool_panel.opacity.setValue(80)
    assert m.opacity == pytest.approx(0.8)
    assert win.slice_view.label_item.opacity() == pytest.approx(0.8)


def test_settings_carry_over_to_the_next_exam(window):
    win = window
    QTest.keyClick(win, Qt.Key.Key_2)
    QTest.keyClick(win, Qt.Key.Key_I)
    assert win.open_exam("ATL-0002")
    assert win.model.exam == "ATL-0002"
    assert win.model.window == tuple(map(float, WINDOW_PRESETS["subdural"]))
    assert win.model.label_value == 4
    assert win.exam_list.current_exam() == "ATL-0002"


def test_space_drag_pans_instead_of_painting(window):
    win, view = window, window.slice_view
    r, c = brain_pixel(win.model.hu, view.z)
    before = view.vb.viewRect()
    view.canvas.setFocus()
    QTest.keyPress(view.canvas, Qt.Key.Key_Space)
    drag(view, [(r, c), (r + 15, c + 15)])
    QTest.keyRelease(view.canvas, Qt.Key.Key_Space)
    assert view.vb.viewRect().center() != before.center()
    assert not win.model.history.can_undo
