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
    assert "Saved: C 20%" in ranker.choice_label.text()

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
