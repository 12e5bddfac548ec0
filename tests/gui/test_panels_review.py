"""Prediction review and side-by-side comparison on predictions written into a copy of the
tiny workspace (known squares on one exam: see panels_support)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from ictview.core import overlay as ov

from .conftest import drag, wheel
from .panels_support import (
    FALSE_POS,
    FN_SLICE,
    FOUND,
    FP_SLICE,
    KNOWN_EXAM,
    MISSED,
    Z,
    add_runs,
)


@pytest.fixture
def review_ws(tiny_workspace_copy):
    add_runs(tiny_workspace_copy)
    return tiny_workspace_copy


@pytest.fixture
def review(qtbot, review_ws):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.review_view import ReviewView

    ensure_app()
    v = ReviewView(review_ws, headless=True)
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()
    v.close()


def screen_rgb(view, row: int, col: int) -> tuple[int, int, int]:
    """The colour drawn at the centre of image pixel (row, col)."""
    img = view.canvas.grab().toImage()
    p = view.pixel_to_widget(row, col)
    dpr = img.devicePixelRatio()
    c = img.pixelColor(int(p.x() * dpr), int(p.y() * dpr))
    return c.red(), c.green(), c.blue()


def centre(region: tuple[slice, slice]) -> tuple[int, int]:
    return (region[0].start + region[0].stop) // 2, (region[1].start + region[1].stop) // 2


def test_overlay_colours_at_known_pixels_are_exact(review, qtbot):
    review.set_run("ss")
    assert review.open_exam(KNOWN_EXAM)
    review.set_opacity(1.0)
    review.view.set_slice(Z)
    review.view.fit()
    qtbot.wait(10)
    assert screen_rgb(review.view, *centre(MISSED)) == (255, 0, 0)
    assert screen_rgb(review.view, *centre(FALSE_POS)) == (0, 255, 0)
    assert screen_rgb(review.view, *centre(FOUND)) == (255, 255, 0)
    hu = review.layer.hu[Z]
    r, c = 10, 120  # no prediction, no reference: the CT grey itself
    grey = screen_rgb(review.view, r, c)
    assert grey[0] == grey[1] == grey[2]
    lo, hi = review.view.levels
    assert abs(grey[0] - 255 * np.clip((hu[r, c] - lo) / (hi - lo), 0, 1)) <= 1.5

    # below full opacity the CT shows through (blended, not exact)
    review.set_opacity(0.5)
    assert screen_rgb(review.view, *centre(MISSED)) != (255, 0, 0)
    # raising the threshold above the false positive's 0.8 removes the green square
    review.set_opacity(1.0)
    review.set_threshold(0.85)
    assert review.layer.codes[(Z, *FALSE_POS)].max() == ov.NONE
    assert screen_rgb(review.view, *centre(FOUND)) == (255, 255, 0)
    # heatmap: the hot ramp, nothing below the threshold
    review.set_threshold(0.5)
    review.set_mode("heatmap")
    hot = screen_rgb(review.view, *centre(FOUND))
    assert hot != (255, 255, 0) and hot[0] == 255 and hot[2] < hot[0]
    assert screen_rgb(review.view, *centre(MISSED))[0] == screen_rgb(review.view, *centre(MISSED))[1]


def test_keys_jump_to_false_positive_and_missed_regions(review, qtbot):
    review.set_run("baseline")
    assert review.open_exam(KNOWN_EXAM)
    counts = review.region_counts.text()
    assert "2 false-positive" in counts and "2 missed" in counts and "1 found" in counts
    assert "Lesions" in counts  # says what it counts: the legend is per pixel
    review.view.set_slice(0)
    review.view.canvas.setFocus()
    qtbot.keyClick(review.view.canvas, QtCore.Qt.Key.Key_F)
    assert review.view.z == Z and review.current_region.kind == ov.FP  # first FP from slice 0
    assert review.box.isVisible()
    qtbot.keyClick(review.view.canvas, QtCore.Qt.Key.Key_F)
    assert review.view.z == FP_SLICE
    qtbot.keyClick(review.view.canvas, QtCore.Qt.Key.Key_F, QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert review.view.z == Z
    qtbot.keyClick(review.view.canvas, QtCore.Qt.Key.Key_N)
    assert review.current_region.kind == ov.FN and review.view.z == Z  # MISSED, after the FP
    qtbot.keyClick(review.view.canvas, QtCore.Qt.Key.Key_N)
    assert review.view.z == FN_SLICE and "Missed" in review.region_info.text()
    # a missed region is framed like a false positive: zoomed to half the 128-pixel slice
    # around it, shifted back from the edge so the frame stays on the slice
    (x0, x1), (y0, y1) = review.view.vb.viewRange()
    assert 60 < x1 - x0 < 80 and x0 > 60 and x1 <= 128.5
    assert x0 <= 100 and x1 >= 106 and y0 <= 100 and y1 >= 106
    qtbot.keyClick(review.view.canvas, QtCore.Qt.Key.Key_F)  # the FP at rows/cols 10..16
    (x0, x1), (y0, y1) = review.view.vb.viewRange()
    assert 60 < x1 - x0 < 80 and x0 >= -0.5 and y0 >= -0.5 and x1 >= 16 and y1 >= 16


def test_counter_counts_lesions_and_legend_gives_each_colours_volume(review):
    """A found lesion partly covered: red pixels on screen, yet 0 missed lesions; the legend
    says the red is reference-only pixels and how much of it there is."""
    from ictview.store.workspace import Workspace

    review.set_run("ss")
    assert review.open_exam(KNOWN_EXAM)
    review.layer.prediction[(Z, *MISSED)] = False
    review.layer.prediction[FN_SLICE, 100:106, 100:106] = False
    review.layer.prediction[Z, 30:34, 30:34] = True  # touches the big red square: found
    review.layer.prediction[FN_SLICE, 100:102, 100:102] = True
    review.layer.codes = ov.comparison_codes(review.layer.reference, review.layer.prediction)
    review._update_regions()
    counts = review.region_counts.text()
    assert "0 missed" in counts and "3 found" in counts
    ml = float(np.prod(Workspace.open(review.ws_root).exam(KNOWN_EXAM).spacing)) / 1000
    red = int((review.layer.codes == ov.REFERENCE_ONLY).sum())
    assert red > 0
    text = review.swatches[0].layout().itemAt(1).widget().text()
    assert text.startswith("Reference only (not predicted)") and f"{red * ml:.2f} mL" in text
    assert "missed" not in text.lower()


def test_review_opens_on_the_study_student_and_lists_no_pseudolabel_runs(qtbot, tiny_workspace_copy):
    """Runs trained after the student (an oracle) and pseudolabel runs (teacher predictions on
    the unlabeled role) must not be what the review opens on; -pl runs are not models."""
    from ictview.gui.review.review_view import ReviewView

    add_runs(tiny_workspace_copy, runs=(("baseline", "teacher", 0.9), ("ss", "student", 0.95),
                                        ("baseline-pl", "pseudolabel", 0.9),
                                        ("pixel-oracle", "pixel-oracle", 0.97)))
    v = ReviewView(tiny_workspace_copy, headless=True)
    qtbot.addWidget(v)
    names = [v.run_combo.itemText(i) for i in range(v.run_combo.count())]
    assert names == ["baseline", "ss", "pixel-oracle"]
    assert v.run == "ss" and v.run_combo.currentText() == "ss"
    v.shutdown()


def test_exam_scores_are_listed_and_sortable(review, review_ws):
    from ictview.store.workspace import Workspace

    review.set_run("ss")
    t = review.table
    with Workspace.open(review_ws) as ws:
        expected = {e: ws.read_prediction("ss", e, pixels=False).exam_score
                    for e in ws.predicted_exams("ss")}
    shown = {t.item(i, 0).text(): float(t.item(i, 3).text()) for i in range(t.rowCount())}
    assert shown.keys() == expected.keys()
    assert all(abs(shown[k] - expected[k]) < 5e-4 for k in shown)
    scores = [float(t.item(i, 3).text()) for i in range(t.rowCount())]
    assert scores == sorted(scores, reverse=True)  # default: most suspicious first
    t.horizontalHeader().sectionClicked.emit(3)  # the reader clicks the Score header
    t.sortByColumn(3, QtCore.Qt.SortOrder.AscendingOrder)
    scores = [float(t.item(i, 3).text()) for i in range(t.rowCount())]
    assert scores == sorted(scores)
    review.role_combo.setCurrentIndex(review.role_combo.findData("validation"))
    assert all(t.item(i, 0).text().startswith("VAL") for i in range(t.rowCount()))


@pytest.fixture
def compare(qtbot, review_ws):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.compare_view import CompareView

    ensure_app()
    v = CompareView(review_ws, headless=True)
    qtbot.addWidget(v)
    v.resize(1500, 900)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()
    v.close()


def same_range(a, b) -> bool:
    """Same centre and magnification (the views may differ by a pixel in size)."""
    from ictview.gui.review.compare_view import view_geometry

    return np.allclose(view_geometry(a), view_geometry(b), rtol=1e-6, atol=1e-6)


def test_synchronized_views_stay_in_sync_after_scrolling_either_one(compare, qtbot):
    assert (compare.run_a, compare.run_b) == ("baseline", "ss")
    assert compare.open_exam(KNOWN_EXAM)
    a, b = compare.view_a, compare.view_b
    a.set_slice(3)
    assert b.z == 3
    wheel(a, 64, 64, 2)  # scroll on A
    assert a.z == 5 and b.z == 5
    wheel(b, 64, 64, -3)  # scroll on B
    assert b.z == 2 and a.z == 2
    from ictview.gui.review.compare_view import view_geometry

    scale = view_geometry(a)[2]
    wheel(b, 50, 60, 3, QtCore.Qt.KeyboardModifier.ControlModifier)  # zoom on B
    assert view_geometry(a)[2] < scale * 0.8 and same_range(a, b)
    before = a.vb.viewRange()
    drag(a, [(64, 64), (70, 80)], button=QtCore.Qt.MouseButton.MiddleButton)  # pan on A
    assert a.vb.viewRange() != before and same_range(a, b)
    drag(b, [(64, 64), (40, 90)], button=QtCore.Qt.MouseButton.RightButton)  # window on B
    assert (a.center, a.width) == (b.center, b.width) != (40.0, 80.0)
    wheel(a, 64, 64, 1)
    assert a.z == b.z == 3 and same_range(a, b)
    compare.window.setCurrentIndex(compare.window.findData("bone"))
    assert a.preset == b.preset == "bone"


def test_exams_sorted_by_disagreement_with_a_summary_line(compare):
    t = compare.table
    d = [float(t.item(i, 4).text()) for i in range(t.rowCount()) if t.item(i, 4).text() != "–"]
    assert d == sorted(d, reverse=True) and len(d) == t.rowCount()
    for i in range(t.rowCount()):
        a, b = float(t.item(i, 2).text()), float(t.item(i, 3).text())
        assert abs(abs(a - b) - float(t.item(i, 4).text())) < 2e-3
    assert compare.open_exam(KNOWN_EXAM)
    text = compare.summary.text()
    assert KNOWN_EXAM in text and "Dice" in text and "exam score" in text
    compare.threshold.setValue(92)  # between baseline's 0.9 and ss's 0.95 on the found square
    compare.update_summary()
    assert "ss finds 1 lesion baseline misses" in compare.summary.text()


def hover(view, row: int, col: int) -> None:
    """The mouse moves (no button) onto pixel (row, col) of a view."""
    from .conftest import _send_mouse

    vp = view.canvas.viewport()
    none = QtCore.Qt.MouseButton.NoButton
    _send_mouse(vp, QtCore.QEvent.Type.MouseMove, view.pixel_to_widget(row, col), none, none)


def test_both_panes_show_the_crosshair_and_readout_at_the_voxel_under_the_mouse(compare):
    assert compare.open_exam(KNOWN_EXAM)
    a, b = compare.view_a, compare.view_b
    a.set_slice(Z)
    r, c = centre(FOUND)  # baseline 0.9, ss 0.95 there
    hu = int(compare.layer_a.hu[Z, r, c])
    hover(a, r, c)
    assert a.crosshair_at() == b.crosshair_at() == (r, c)
    assert a._corners["br"].text() == f"HU {hu}  ·  p = 0.90"
    assert b._corners["br"].text() == f"HU {hu}  ·  p = 0.95"
    r2, c2 = centre(MISSED)
    hover(b, r2, c2)  # the other pane drives it just the same
    assert a.crosshair_at() == b.crosshair_at() == (r2, c2)
    assert "HU" in a._corners["br"].text() and "HU" in b._corners["br"].text()
    a._leave()  # the mouse leaves the image: both clear
    assert a.crosshair_at() is None and b.crosshair_at() is None
    assert a._corners["br"].text() == b._corners["br"].text() == ""


def test_review_without_predictions_says_so(qtbot, tiny_workspace_copy):
    from ictview.gui.review.review_view import ReviewView

    v = ReviewView(tiny_workspace_copy, headless=True)
    qtbot.addWidget(v)
    assert v.run_combo.count() == 0 and "No run has predictions" in v.view.placeholder.text()
    v.shutdown()
