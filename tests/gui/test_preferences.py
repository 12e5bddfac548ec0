"""Preferences driven through the real dialog and windows: a re-bound key fires its action
(and the old one no longer does), a key another action holds is refused, the colour-blind
palette is what the review view paints, and the settings survive a restart."""

from __future__ import annotations

import json

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from ictview.core import overlay as ov
from ictview.core import prefs as P
from ictview.core.window import BUILTIN_PRESETS, WINDOW_PRESETS

from .conftest import RATER
from .panels_support import FALSE_POS, FOUND, KNOWN_EXAM, MISSED, Z, add_runs
from .test_panels_review import centre, screen_rgb

Qt = QtCore.Qt


def _dialog(win):
    from ictview.gui.shell.preferences_dialog import open_preferences

    dlg = open_preferences(win)  # headless: returned, not run
    assert dlg is not None
    return dlg


def test_rebound_key_fires_the_action_and_the_old_key_does_not(window, default_preferences):
    dlg = _dialog(window)
    dlg.select_action("tool_eraser")
    assert dlg.bind("tool_eraser", ["Y"])
    assert dlg.apply()
    dlg.deleteLater()
    assert window.model.tool == "brush"
    QTest.keyClick(window, Qt.Key.Key_X)  # the old key: nothing happens
    assert window.model.tool == "brush"
    QTest.keyClick(window, Qt.Key.Key_Y)
    assert window.model.tool == "eraser"
    # the file holds the override only, the tooltip and cheat sheet follow
    saved = json.loads(default_preferences.read_text())
    assert saved["keymap"] == {"tool_eraser": ["Y"]}
    from ictview.gui.shell.preferences_dialog import cheat_sheet_html, toggle_cheat_sheet

    assert "<code>Y</code></b></td><td>Eraser" in cheat_sheet_html(window)
    QTest.keyClick(window, Qt.Key.Key_F1)
    sheet = window.cheat_sheet
    assert sheet is not None and sheet.isVisible()
    assert "Eraser" in sheet.browser.toPlainText()
    toggle_cheat_sheet(window)  # F1 again closes it
    assert not sheet.isVisible()


def test_conflicting_key_is_refused_and_names_the_holder(window, default_preferences):
    dlg = _dialog(window)
    dlg.select_action("tool_eraser")
    assert not dlg.bind("tool_eraser", ["B"])
    msg = dlg.key_message.text()
    assert "B is already the shortcut of “Brush”" in msg and "nothing changed" in msg
    assert dlg.keymap.keys("tool_eraser") == ("X",)
    # through the key box and the Assign button, as a rater does it
    dlg.key_edit.setKeySequence("Ctrl+E")
    dlg.assign.click()
    assert "Ctrl+E is already the shortcut of “Export labels…”" in dlg.key_message.text()
    assert dlg.apply()
    dlg.deleteLater()
    assert "keymap" not in json.loads(default_preferences.read_text())
    QTest.keyClick(window, Qt.Key.Key_X)
    assert window.model.tool == "eraser"


def test_settings_persist_across_a_restart(qtbot, tiny_workspace_copy, default_preferences):
    from ictview.gui import preferences
    from ictview.gui.app import ensure_app
    from ictview.gui.shell.main_window import MainWindow

    ensure_app()

    def start() -> MainWindow:
        preferences.load_settings()  # as `ictview open` does ($ICTVIEW_SETTINGS: tmp)
        win = MainWindow(headless=True)
        qtbot.addWidget(win)
        win.set_rater(RATER)
        assert win.open_workspace(tiny_workspace_copy)
        win.show()
        qtbot.waitExposed(win)
        assert win.open_exam("ATL-0001"), win.last_error
        return win

    win = start()
    dlg = _dialog(win)
    assert dlg.bind("tool_fill", ["Ctrl+Shift+F"])
    dlg.set_label_color("SDH", (10, 200, 30))
    dlg.palette_buttons["colour-blind"].setChecked(True)
    dlg.layout_combo.setCurrentIndex(P.LAYOUTS.index("mpr-2x2"))
    dlg.preset_combo.setCurrentIndex(list(BUILTIN_PRESETS).index("subdural"))
    dlg.preset_spins["subdural"][1].setValue(200)
    dlg.accept()
    dlg.deleteLater()
    win.shutdown()
    win.close()
    preferences.reset()  # the "restart": nothing kept in memory
    assert WINDOW_PRESETS["subdural"] == BUILTIN_PRESETS["subdural"]

    win = start()
    try:
        km = win.prefs_binding.keymap
        assert km.keys("tool_fill") == ("Ctrl+Shift+F",)
        shortcuts = win.actions_by_key["tool_fill"].shortcuts()
        assert [s.toString() for s in shortcuts] == ["Ctrl+Shift+F"]
        assert preferences.review_palette() == "colour-blind"
        assert win.viewer.layout_mode == "mpr-2x2"
        assert win.model.window == (75.0, 200.0)  # the first exam opens in the chosen preset
        assert "W 200" in win.actions_by_key["preset_subdural"].text()
        from ictview.gui.viewer.slice_view import label_lut

        assert tuple(label_lut()[2][:3]) == (10, 200, 30)
        assert tuple(win.slice_view.label_item.lut[2][:3]) == (10, 200, 30)
    finally:
        win.shutdown()
        win.close()


def test_damaged_settings_file_is_one_line_and_left_alone(qtbot, default_preferences, capsys,
                                                          tiny_workspace_copy):
    from ictview.gui.launch import run_gui

    default_preferences.write_text('{"review_palette": "rainbow"')
    out = default_preferences.parent / "shot.png"
    assert run_gui(tiny_workspace_copy, screenshot=out, settings_file=default_preferences) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(default_preferences) in err[0] and "not JSON" in err[0]
    assert default_preferences.read_text() == '{"review_palette": "rainbow"'


@pytest.fixture
def review_ws(tiny_workspace_copy):
    add_runs(tiny_workspace_copy)
    return tiny_workspace_copy


def test_colour_blind_palette_is_what_review_paints(qtbot, review_ws):
    from ictview.gui import preferences
    from ictview.gui.app import ensure_app
    from ictview.gui.review.review_view import ReviewView

    ensure_app()
    v = ReviewView(review_ws, headless=True)
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    qtbot.waitExposed(v)
    try:
        v.set_run("ss")
        assert v.open_exam(KNOWN_EXAM)
        v.set_opacity(1.0)
        v.view.set_slice(Z)
        v.view.fit()
        qtbot.wait(10)
        assert screen_rgb(v.view, *centre(MISSED)) == (255, 0, 0)
        # chosen in Preferences while the review is open: the overlay and legend follow
        preferences.set_current(preferences.current().with_(review_palette="colour-blind"))
        qtbot.wait(10)
        blue, orange, white = ov.REVIEW_PALETTES["colour-blind"]
        assert screen_rgb(v.view, *centre(MISSED)) == blue
        assert screen_rgb(v.view, *centre(FALSE_POS)) == orange
        assert screen_rgb(v.view, *centre(FOUND)) == white
        swatches = [w for w in v.findChildren(QtCore.QObject, "overlaySwatch")]
        colours = {s.pixmap().toImage().pixelColor(7, 7).getRgb()[:3] for s in swatches}
        assert colours == {blue, orange, white}
    finally:
        v.shutdown()
        v.close()


def test_compare_view_opens_in_the_chosen_palette(qtbot, review_ws):
    from ictview.gui import preferences
    from ictview.gui.app import ensure_app
    from ictview.gui.review.compare_view import CompareView

    preferences.set_current(preferences.current().with_(review_palette="colour-blind"))
    ensure_app()
    v = CompareView(review_ws, headless=True)
    qtbot.addWidget(v)
    try:
        assert v.layer_a.palette == v.layer_b.palette == "colour-blind"
        lut = v.view_a.label_item.lut
        assert lut is None or tuple(lut[ov.REFERENCE_ONLY][:3]) == (86, 180, 233)
    finally:
        v.shutdown()
        v.close()
