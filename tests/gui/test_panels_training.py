"""Training launcher: real `ictview-train` child processes on the tiny workspace (the tiny
preset with few steps, one torch thread): completion with progress, cancel then resume,
a failing child reported in the panel, and what closing the app does to a running job."""

from __future__ import annotations

import os
import signal

import pytest
from PySide6 import QtWidgets

from ictview.store.workspace import Workspace

from .panels_support import progress_records, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def panel(qtbot, tiny_workspace_copy):
    from ictview.gui.app import ensure_app
    from ictview.gui.training.training_panel import TrainingPanel

    ensure_app()
    p = TrainingPanel(tiny_workspace_copy, headless=True)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    yield p
    p.shutdown("stop")
    p.close()


def configure(p, command: str, run: str, **values) -> None:
    p.command.setCurrentIndex(p.command.findData(command))
    p.preset.setCurrentText("tiny")
    p.run_name.setText(run)
    base = {"train.val_every_epochs": "0", "train.epochs": "1"}
    for key, v in {**base, **values}.items():
        assert p.config_tree.set_value(key, str(v)), key


def test_tiny_run_reaches_completion_with_progress_updates(panel, qtbot, tiny_workspace_copy):
    configure(panel, "teacher", "baseline", **{"train.steps_per_epoch": 12,
                                               "train.log_every_steps": 2})
    argv = panel.build_spec().argv()
    assert "--json-progress" in argv and "train.steps_per_epoch=12" in argv
    seen: list[tuple[int, int]] = []
    panel.progressed.connect(lambda: seen.append((panel.state.done, panel.progress.value())))
    with qtbot.waitSignal(panel.job_finished, timeout=120_000) as sig:
        panel.start_button.click()
        assert panel.running() and not panel.start_button.isEnabled()
    assert sig.args[0] == "finished", panel.state.message
    steps = [s for s, _ in seen]
    assert len(set(steps)) >= 3 and steps == sorted(steps)  # several updates, in order
    assert panel.progress.value() == 1000 and "12 / 12" in panel.progress.format()
    curve = panel.curves["loss"].getData()
    assert list(curve[0]) == [2, 4, 6, 8, 10, 12] and all(v > 0 for v in curve[1])
    assert "patches/s" in panel.stats.text()
    assert any("checkpoint final" in line for line in panel.state.log)
    with Workspace.open(tiny_workspace_copy) as ws:
        assert ws.run("baseline")["status"] == "finished"
    assert panel.select_run("baseline")
    assert panel.runs_table.item(panel.runs_table.currentRow(), 2).text() == "finished"


def test_cancel_checkpoints_and_resume_continues(panel, qtbot, tiny_workspace_copy):
    configure(panel, "teacher", "long", **{"train.steps_per_epoch": 200,
                                           "train.log_every_steps": 1})
    assert panel.start()
    wait_until(lambda: panel.state.done >= 1)
    with qtbot.waitSignal(panel.job_finished, timeout=60_000) as sig:
        panel.cancel_button.click()
        assert panel.state.status == "stopping"
    assert sig.args[0] == "interrupted"
    stopped_at = panel.state.done
    assert 1 <= stopped_at < 200
    assert "checkpoint saved" in panel.state.message
    ckpt = tiny_workspace_copy / "runs" / "long" / "checkpoints"
    assert (ckpt / "latest.pt").is_file() and not (ckpt / "final.pt").exists()
    with Workspace.open(tiny_workspace_copy) as ws:
        assert ws.run("long")["status"] == "interrupted"
    assert panel.resume_button.isEnabled()

    with qtbot.waitSignal(panel.job_finished, timeout=120_000) as sig:
        panel.resume_button.click()
        assert "--resume" in panel.job.argv
    assert sig.args[0] == "finished", panel.state.message
    assert (ckpt / "final.pt").is_file()
    starts = [r for r in progress_records(tiny_workspace_copy, "long") if r["event"] == "start"]
    assert [s["resumed"] for s in starts] == [False, True]
    assert starts[1]["step"] == stopped_at  # continued from the checkpoint, not from 0
    steps = list(panel.curves["loss"].getData()[0])
    assert steps[0] == 1 and steps[-1] == 200 and steps == sorted(set(steps))  # one curve


def test_failing_child_is_reported_and_the_panel_carries_on(panel, qtbot):
    configure(panel, "teacher", "bad", **{"train.epochs": "many"})
    with qtbot.waitSignal(panel.job_finished, timeout=60_000) as sig:
        assert panel.start()
    assert sig.args[0] == "failed"
    assert "train.epochs must be an integer" in sig.args[1]
    assert panel.error.isVisible() and "train.epochs must be an integer" in panel.error.text()
    assert panel.start_button.isEnabled() and not panel.running()

    # a child killed from outside (out of memory, kill -9) is reported the same way
    configure(panel, "teacher", "killed", **{"train.steps_per_epoch": 300,
                                             "train.log_every_steps": 1})
    assert panel.start()
    wait_until(lambda: panel.state.done >= 1)
    with qtbot.waitSignal(panel.job_finished, timeout=30_000) as sig:
        os.kill(panel.job.pid, signal.SIGKILL)
    assert sig.args[0] == "failed" and "SIGKILL" in sig.args[1]
    assert "SIGKILL" in panel.error.text()


def test_closing_the_app_stops_or_leaves_the_run(window, qtbot, tiny_workspace_copy):
    """Through the main window's Training menu: closing with a run going stops it (headless
    answer) with a checkpoint; 'leave running' lets the child outlive the panel."""
    panel = window.panels.open("training")
    assert panel is not None and window.panels.windows["training"].isVisible()
    configure(panel, "teacher", "closing", **{"train.steps_per_epoch": 300,
                                              "train.log_every_steps": 1})
    assert panel.start()
    wait_until(lambda: panel.state.done >= 1)
    job = panel.job
    window.close()  # headless: the 'stop' answer
    assert job.returncode == 75 and panel.state.status == "interrupted"
    with Workspace.open(tiny_workspace_copy) as ws:
        assert ws.run("closing")["status"] == "interrupted"

    from ictview.gui.training.training_panel import TrainingPanel

    p2 = TrainingPanel(tiny_workspace_copy, headless=True)
    qtbot.addWidget(p2)
    assert p2.select_run("closing") and p2.resume_button.isEnabled()  # from the catalog
    assert p2.resume()
    assert "--resume" in p2.job.argv
    wait_until(lambda: p2.state.done > 0)
    pid = p2.job.pid
    p2.shutdown("leave")
    p2.close()
    try:
        os.kill(pid, 0)  # still running without the panel
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_chart_plots_validation_ap_apart_and_keeps_the_stop_line(panel, qtbot):
    """Validation pixel AP on its own 0..1 axis; the legend is outside the plot; after a run
    stopped with a checkpoint, the 'stopped at step N ... --resume' lines stay on screen,
    also when a row of the runs table was selected (the table refresh must not replace the
    run's state by a row's history)."""
    configure(panel, "teacher", "baseline", **{
        "train.epochs": 2, "train.steps_per_epoch": 3, "train.val_every_epochs": 1,
        "train.log_every_steps": 1})
    with qtbot.waitSignal(panel.job_finished, timeout=120_000) as sig:
        assert panel.start()
    assert sig.args[0] == "finished", panel.state.message
    xs, _ys = panel.curves["loss"].getData()
    assert list(xs) == [1, 2, 3, 4, 5, 6]
    vx, vy = panel.val_curve.getData()
    assert list(vx) == [3, 6] and all(0.0 <= v <= 1.0 for v in vy)
    assert panel.val_plot.getPlotItem().getAxis("left").labelText == "pixel AP"
    assert "pixel AP" in panel.val_plot.getPlotItem().titleLabel.text
    assert panel.loss_plot.getPlotItem().legend is None  # nothing drawn over the curves
    legend = panel.legend.geometry()
    assert legend.height() > 0 and not legend.intersects(panel.loss_plot.geometry())
    assert all(name in panel.legend.text() for name in ("total", "segmentation",
                                                        "classification"))

    assert panel.select_run("baseline")  # the reader looked at a run, then starts another
    configure(panel, "teacher", "long", **{"train.steps_per_epoch": 200,
                                           "train.log_every_steps": 1})
    assert panel.start()
    wait_until(lambda: panel.state.done >= 1)
    with qtbot.waitSignal(panel.job_finished, timeout=60_000) as sig:
        panel.cancel_button.click()
    assert sig.args[0] == "interrupted"
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    n = panel.state.done
    assert panel.state.run == "long" and panel.status_title.text() == "long"
    assert f"stopped at step {n} of 200" in panel.stats.text()
    log = panel.log_view.toPlainText()
    assert f"long: stopped at step {n}" in log and "--resume" in log
    # shown again later from the catalog, the stopped run still says how to continue
    assert panel.select_run("baseline") and panel.select_run("long")
    assert f"stopped at step {n} of 200" in panel.stats.text()
