"""Train with my labels (issue 16): fine-tune the current model with the rater's finished
labels (`ictview-train finetune`, student-style from its weights), then predict with it
(`ictview-train evaluate` on every role, so the queue can rank), then hot-swap: the
review overlay shows the new run, "Start from" and the queue use it.

Both steps are child processes started through the launcher (ictview/study/training_job.py),
polled on the GUI thread by a timer: the window never waits on them."""

from __future__ import annotations

from PySide6 import QtCore

from ictview.errors import IctviewError
from ictview.gui.annotate import model_assist as assist
from ictview.study.training_job import JobSpec, start_job

PREDICT_ROLES = ["validation", "test", "labeled", "unlabeled"]


class MyLabelsTraining(QtCore.QObject):
    """One fine-tune + predict chain. `finished(run, status)`: 'finished' (the new run is
    swapped in) or 'failed' (the message in `message`)."""

    finished = QtCore.Signal(str, str)

    def __init__(self, win, overrides: list[str] | None = None, poll_ms: int = 500):
        super().__init__(win)
        self.win = win
        self.overrides = list(overrides or [])
        self.job = None
        self.steps: list[JobSpec] = []
        self.run = ""
        self.message = ""
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)

    def running(self) -> bool:
        return self.job is not None

    def start(self) -> str:
        """Start the chain; returns the new run's name. IctviewError when there is nothing
        to train from or with."""
        win = self.win
        if self.running():
            raise IctviewError("Train with my labels: a fine-tune is already running")
        if win.ws is None or not win.own_labelset:
            raise IctviewError("Train with my labels: open a workspace and name the rater first")
        current = assist.queue_run(win)
        if current is None:
            raise IctviewError("Train with my labels: no model run to start from")
        mine = win.ws.labelset_exams(win.own_labelset)
        if not mine:
            raise IctviewError(f"Train with my labels: labelset '{win.own_labelset}' has no "
                               "labeled exam yet")
        taken = {r["name"] for r in win.ws.runs()}
        base = f"{current}-{win.own_labelset}"
        self.run = next(f"{base}-{i}" for i in range(1, 10**6) if f"{base}-{i}" not in taken)
        config = win.ws.run_dir(current) / "config.toml"
        cfg = str(config) if config.exists() else "tiny"
        root = win.ws.root
        self.steps = [
            JobSpec("finetune", root, run=self.run, config=cfg, overrides=self.overrides,
                    teacher=current, labelsets=[win.own_labelset]),
            JobSpec("evaluate", root, run=self.run, config=cfg, overrides=self.overrides,
                    roles=list(PREDICT_ROLES)),
        ]
        self._next()
        win.status.showMessage(f"Training {self.run} from {current} with {len(mine)} exam(s) "
                               f"of {win.own_labelset}…", 10000)
        return self.run

    def _next(self) -> None:
        spec = self.steps.pop(0)
        self.job = start_job(spec)
        self._timer.start()

    def poll(self) -> None:
        if self.job is None:
            return
        _out, err, rc = self.job.poll()
        if err:
            self.message = err[-1]
        if rc is None:
            return
        self.job = None
        if rc != 0:
            self._timer.stop()
            self.win.report_error(f"Train with my labels: {self.run}: {self.message or rc}")
            self.finished.emit(self.run, "failed")
            return
        if self.steps:
            self._next()
            return
        self._timer.stop()
        hot_swap(self.win, self.run)
        self.finished.emit(self.run, "finished")

    def shutdown(self) -> None:
        self._timer.stop()
        if self.job is not None:
            self.job.terminate()
            self.job.wait(10)
            self.job = None


def hot_swap(win, run: str) -> None:
    """The new run replaces the old one: the queue ranks with it, 'Start from' offers it
    (and keeps a model start on the new model), the review overlay shows it."""
    win.assist_run = run
    if assist.start_run(win.start_from):
        win.start_from = assist.MODEL_PREFIX + run
    win._refresh_labelsets()
    review = win.panels.windows.get("review")
    if review is not None:
        review.panel.load_runs(prefer=run)
        review.panel.set_run(run)
    win.panels.refresh_views()
    win.status.showMessage(f"Now using {run}: review, Start from and the queue re-ranked", 10000)


def install_my_labels(win) -> None:
    win.my_labels = MyLabelsTraining(win)

    def start() -> None:
        try:
            win.my_labels.start()
        except IctviewError as e:
            win.report_error(str(e))

    win._action("train_mine", "&Train with my labels", start,
                tip="Fine-tune the current model with your finished labels, then use it")
