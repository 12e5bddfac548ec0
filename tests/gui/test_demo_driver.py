"""`ictview demo` with a window: the demo's models train through the training launcher
(real `ictview-train` children, a few-step `demo` config) while the views fill in."""

from __future__ import annotations

import pytest

from ictview.store.workspace import Workspace

pytestmark = pytest.mark.slow

FAST_DEMO = """
[model]
width = 0.125
blocks = [1, 1, 1, 1, 1, 1, 1, 1]
[augment]
crop = 64
[train]
epochs = 1
steps_per_epoch = 6
batch_size = 4
device = "cpu"
amp = "off"
channels_last = "off"
compile = "off"
log_every_steps = 2
val_every_epochs = 0
torch_threads = 1
[ranker]
k_hi = 0.5
k_lo = 0.2
[evaluate]
n_boot = 20
"""


def test_demo_trains_in_the_launcher_and_the_views_fill_in(window, qtbot, tmp_path,
                                                           monkeypatch):
    from ictview.gui.training.demo_training import DemoTraining

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.toml").write_text(FAST_DEMO)
    monkeypatch.setenv("ICTVIEW_CONFIG_DIR", str(tmp_path / "configs"))
    review = window.panels.open("review")
    compare = window.panels.open("compare")
    assert review.run_combo.count() == 0  # nothing to review yet
    driver = DemoTraining(window)
    started: list[tuple[int, str]] = []
    driver.step_started.connect(lambda k, n, what: started.append((k, what)))
    with qtbot.waitSignal(driver.finished, timeout=600_000) as sig:
        assert driver.start()
        training = window.panels.windows["training"]
        assert training.isVisible() and training.panel.running()  # progress in the launcher
        # the baseline appears in the open review view before the student is trained
        qtbot.waitUntil(lambda: review.run_combo.findText("baseline") >= 0, timeout=600_000)
        assert review.run_combo.findText("ss") < 0 and len(started) < 5
    assert sig.args == ["finished"], training.panel.state.message
    assert [k for k, _ in started] == [1, 2, 3, 4, 5]
    assert {review.run_combo.itemText(i) for i in range(review.run_combo.count())} >= {
        "baseline", "ss"}
    assert (compare.run_a, compare.run_b) == ("baseline", "ss")  # b moved on to the student
    assert compare.table.rowCount() > 0
    assert "Demo models ready" in driver.label.text()
    with Workspace.open(window.ws.root) as ws:
        assert ws.run("ss")["parent"] == "baseline" and ws.run("baseline-pl")["status"] == "finished"
    again = DemoTraining(window)  # everything done: nothing starts
    with qtbot.waitSignal(again.finished, timeout=5_000) as sig:
        assert not again.start()
    assert sig.args == ["nothing"] and not training.panel.running()
