"""Threshold inspection on a real (few-step) teacher's pseudo-labels: marks persist with
rater and time, and the chosen C is what the next student run launched from the training
panel trains with."""

from __future__ import annotations

import shutil

import pytest

from ictview.store.workspace import Workspace
from ictview.study import ranker_review as rr

from .panels_support import progress_records, train_teacher_and_pseudolabel

pytestmark = pytest.mark.slow
RATER = "dr-ranker"


@pytest.fixture(scope="module")
def pl_workspace(tiny_workspace, tmp_path_factory):
    """A tiny workspace with a teacher ('baseline', 6 steps) and its pseudo-labels."""
    root = tmp_path_factory.mktemp("ranker") / "ws"
    shutil.copytree(tiny_workspace, root)
    train_teacher_and_pseudolabel(root)
    return root


@pytest.fixture
def ranker(qtbot, pl_workspace):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.ranker_panel import RankerPanel

    ensure_app()
    p = RankerPanel(pl_workspace, RATER, headless=True)
    qtbot.addWidget(p)
    p.resize(1500, 950)
    p.show()
    yield p
    p.shutdown()
    p.close()


def test_grid_shows_the_images_at_the_cut_with_their_pseudo_labels(ranker):
    assert ranker.run == "baseline-pl" and ranker.ranked.n == 64  # 8 exams x 8 slices
    ranker.set_c(20)
    ranker.wait()
    k = rr.n_top(64, 20)
    assert k == 13
    above = [t for t in ranker.tiles if not t.below]
    assert [t.image.rank for t in above] == list(range(k - 12, k))
    assert all(t.picture.pixmap() is not None and not t.picture.pixmap().isNull()
               for t in ranker.tiles)
    ranker.show_below.setChecked(True)
    ranker.wait()
    assert [t.image.rank for t in ranker.tiles if t.below] == list(range(k, k + 4))
    # the ranking plot marks the current cut
    assert any(abs(line.value() - (k + 0.5)) < 1e-9 for line in ranker.cut_lines)


def test_judgments_persist_and_change_the_next_student_runs_c(ranker, qtbot, pl_workspace):
    ranker.set_c(20)
    ranker.wait()
    tiles = [t for t in ranker.tiles if not t.below]
    tiles[0].true_button.click()
    tiles[1].false_button.click()
    ranker.select_tile(tiles[2])
    qtbot.keyClick(tiles[2], "t")  # keyboard: T marks the selected tile, then moves on
    assert ranker.selected is tiles[3]
    qtbot.keyClick(tiles[3], "f")
    tiles[1].false_button.click()  # clicking the checked mark again clears it
    summary = next(s for s in ranker.summaries if s.c_percent == 20)
    assert (summary.judged, summary.true_positive) == (3, 2)
    assert summary.precision_text.startswith("0.67 [")
    ranker.c_spin.setValue(20)
    ranker.khi_spin.setValue(0.6)
    ranker.klo_spin.setValue(0.25)
    choice = ranker.save_choice()
    assert choice is not None and choice.chosen_by == RATER
    assert "Chosen: <b>C 20%</b>" in ranker.choice_label.text()

    with Workspace.open(pl_workspace) as ws:  # stored with rater and time
        marks = rr.load_judgments(ws, "baseline-pl")
        assert {(j.exam, j.slice_idx, j.judgment) for j in marks} == {
            (tiles[0].image.exam, tiles[0].image.slice_idx, 1),
            (tiles[2].image.exam, tiles[2].image.slice_idx, 1),
            (tiles[3].image.exam, tiles[3].image.slice_idx, 0)}
        assert all(j.rater == RATER and j.judged_at and j.c_percent == 20 for j in marks)
        assert rr.chosen_ranker(ws, "baseline-pl") == (20.0, 0.6, 0.25)

    # a fresh panel shows the marks again
    from ictview.gui.review.ranker_panel import RankerPanel

    again = RankerPanel(pl_workspace, RATER, headless=True)
    qtbot.addWidget(again)
    assert again.c == 20 and again.khi_spin.value() == 0.6
    assert [t.judgment for t in again.tiles[:4]] == [1, None, 1, 0]
    again.shutdown()

    # the training panel's student picks the choice up and trains with it
    from ictview.gui.training.training_panel import TrainingPanel

    train = TrainingPanel(pl_workspace, headless=True)
    qtbot.addWidget(train)
    train.command.setCurrentIndex(train.command.findData("student"))
    train.teacher.setCurrentText("baseline")
    assert train.pseudolabels.currentData() == "baseline-pl"
    assert (train.c_spin.value(), train.khi_spin.value(), train.klo_spin.value()) == (20, 0.6, 0.25)
    assert RATER in train.ranker_note.text()
    train.run_name.setText("ss")
    for key, v in {"train.epochs": 1, "train.steps_per_epoch": 4, "train.val_every_epochs": 0,
                   "train.log_every_steps": 2}.items():
        train.config_tree.set_value(key, str(v))
    argv = train.build_spec().argv()
    assert "ranker.top_percent=20" in argv and "--pseudolabels" in argv
    with qtbot.waitSignal(train.job_finished, timeout=120_000) as sig:
        assert train.start()
    assert sig.args[0] == "finished", train.state.message
    start = next(r for r in progress_records(pl_workspace, "ss") if r["event"] == "start")
    pseudo = next(s for s in start["sources"] if s.get("pseudolabel_run") == "baseline-pl")
    assert pseudo["ranker"]["top_percent"] == 20.0 and pseudo["ranker"]["n_positive"] == 13
    assert (pseudo["ranker"]["k_hi"], pseudo["ranker"]["k_lo"]) == (0.6, 0.25)
    with Workspace.open(pl_workspace) as ws:
        import json

        cfg = json.loads(ws.run("ss")["config"])
        assert cfg["ranker"]["top_percent"] == 20.0
    train.shutdown()


def amber_pixels(img, x0: int, x1: int, y0: int, y1: int) -> int:
    """Pixels of the edge-letter colour (#e0b25a, antialiased) in a box of a tile image."""
    n = 0
    for x in range(x0, x1):
        for y in range(y0, y1):
            c = img.pixelColor(x, y)
            if c.red() > 150 and 110 < c.green() < 200 and c.blue() < 120:
                n += 1
    return n


def test_tiles_fill_the_width_and_carry_window_level_and_orientation(ranker, pl_workspace):
    from ictview.core.mpr import AXIAL, planes_for
    from ictview.gui.review.ranker_panel import MAX_TILE, MIN_TILE

    ranker.resize(1920, 1080)
    ranker.wait()
    vp = ranker.scroll.viewport()
    right = max(t.geometry().right() for t in ranker.tiles)
    assert (vp.width() - right) / vp.width() < 0.06  # no empty band beside the grid
    size = ranker.tile_size
    assert 226 < size <= MAX_TILE
    tile = ranker.tiles[0]
    assert all(t.rendered_size == size == t.picture.pixmap().width() for t in ranker.tiles)
    with Workspace.open(pl_workspace) as ws:
        vol = ws.read_volume(tile.image.exam)
        letters = planes_for(vol.hu.shape, ws.exam(tile.image.exam).spacing,
                             vol.geometry)[AXIAL].edge_letters()
    assert tile.letters == letters and sorted(letters.values()) == ["A", "L", "P", "R"]
    assert tile.wl == "W 80  L 40 (Brain)"
    img = tile.picture.pixmap().toImage()
    mid, edge = size // 2, size // 10
    assert amber_pixels(img, 0, edge, mid - edge, mid + edge) > 5  # the left letter drawn
    assert amber_pixels(img, size - edge, size, mid - edge, mid + edge) > 5

    ranker.window_box.setCurrentIndex(ranker.window_box.findData("subdural"))
    ranker.wait()
    assert all(t.wl == "W 215  L 75 (Subdural)" for t in ranker.tiles)

    ranker.resize(1150, 900)  # narrower: re-flowed and re-rendered at the new size
    ranker.wait()
    small = ranker.tile_size
    assert MIN_TILE <= small and small != size
    assert all(t.rendered_size == small == t.picture.pixmap().width() for t in ranker.tiles)
    right = max(t.geometry().right() for t in ranker.tiles)
    assert (vp.width() - right) / vp.width() < 0.1


def answer_next_dialog(button_text: str, seen: list[str]) -> None:
    """Click `button_text` in the next modal dialog once it is open (recording its text)."""
    from PySide6 import QtCore, QtWidgets

    def go(tries: int = 200) -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        if box is None:
            if tries:
                QtCore.QTimer.singleShot(10, lambda: go(tries - 1))
            return
        seen.append(f"{box.text()} {box.informativeText()}")
        next(b for b in box.buttons() if b.text() == button_text).click()

    QtCore.QTimer.singleShot(0, go)


def test_previewing_a_c_stores_nothing_and_choosing_asks_first(qtbot, pl_workspace, tmp_path):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.ranker_panel import RankerPanel

    root = tmp_path / "ws"
    shutil.copytree(pl_workspace, root)
    with Workspace.open(root) as ws:  # an earlier reader chose C 5%
        rr.save_choice(ws, "baseline-pl", 5.0, 0.7, 0.3, "dr-earlier")
    ensure_app()
    p = RankerPanel(root, RATER, headless=True)
    qtbot.addWidget(p)
    p.resize(1500, 950)
    p.show()
    buttons = {float(b.property("c")): b for b in p.c_buttons.buttons()}
    assert p.c == 5 and buttons[5].text() == "5% ✓" and "C 5%" in p.choice_label.text()
    assert not p.save_button.isEnabled()  # the preview is the choice: nothing to use

    buttons[20].click()  # preview only
    assert p.c == 20 and buttons[20].isChecked()
    with Workspace.open(root) as ws:
        assert rr.chosen_ranker(ws, "baseline-pl") == (5.0, 0.7, 0.3)
    assert buttons[5].text() == "5% ✓" and buttons[20].text() == "20%"
    assert "C 5%" in p.choice_label.text()
    assert p.save_button.isEnabled() and "Use C = 20%" in p.save_button.text()

    seen: list[str] = []
    answer_next_dialog("Cancel", seen)
    p.save_button.click()
    assert len(seen) == 1 and "C = 20%" in seen[0] and "replaces the choice C 5%" in seen[0]
    with Workspace.open(root) as ws:
        assert rr.chosen_ranker(ws, "baseline-pl") == (5.0, 0.7, 0.3)  # cancelled

    answer_next_dialog("Use it", seen)
    p.save_button.click()
    with Workspace.open(root) as ws:
        assert rr.chosen_ranker(ws, "baseline-pl") == (20.0, 0.7, 0.3)
        assert rr.load_choice(ws, "baseline-pl").chosen_by == RATER
    assert buttons[20].text() == "20% ✓" and buttons[5].text() == "5%"
    assert "C 20%" in p.choice_label.text() and RATER in p.choice_label.text()
    row = next(i for i in range(p.table.rowCount()) if p.table.item(i, 0).text().startswith("20%"))
    assert p.table.item(row, 0).text() == "20% ✓"
    assert not p.save_button.isEnabled()
    buttons[10].click()  # previewing another C afterwards still stores nothing
    with Workspace.open(root) as ws:
        assert rr.chosen_ranker(ws, "baseline-pl") == (20.0, 0.7, 0.3)
    p.shutdown()


def test_screenshot_shows_the_grid_the_window_shows(qtbot, pl_workspace):
    """The ranker as Training ▸ Threshold inspection opens it and as `ictview open --view
    ranker --screenshot` renders it: the same tiles, above and below the cut."""
    from ictview.gui.app import ensure_app
    from ictview.gui.panel_screenshots import _build, _settle
    from ictview.gui.shell.main_window import MainWindow

    ensure_app()
    win = MainWindow(headless=True)
    qtbot.addWidget(win)
    win.set_rater(RATER)
    assert win.open_workspace(pl_workspace)
    in_window = win.panels.open("ranker")
    in_window.wait()
    shot = _build("ranker", pl_workspace, None, None)
    shot.resize(1600, 1000)
    _settle("ranker", shot)

    def grid(p):
        return [(t.image.exam, t.image.slice_idx, t.below) for t in p.tiles]

    assert in_window.show_below.isChecked() and shot.show_below.isChecked()
    assert any(below for *_, below in grid(in_window))
    assert grid(shot) == grid(in_window) and shot.c == in_window.c
    shot.shutdown()
    shot.deleteLater()
    win.shutdown()
    win.close()
