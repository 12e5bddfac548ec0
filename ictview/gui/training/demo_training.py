"""`ictview demo` with a display: the demo's models train in the background while the app is
used, through the training launcher (its window shows progress, loss curve and log).

The steps (ictview.study.demo_training) run one after the other as training-launcher jobs;
when one finishes, the open ranker / review / compare / dashboard windows reload their runs
(PanelsHost.refresh_views), so they fill in as the models arrive. A step that fails or is
cancelled stops the chain: the launcher shows why, and `ictview demo` continues from that
step next time.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from ictview.study.demo_training import (
    EXPECTED_MINUTES,
    demo_steps,
    describe,
    step_done,
)


class DemoTraining(QtCore.QObject):
    """Chains the demo's steps through the main window's training panel."""

    step_started = QtCore.Signal(int, int, str)  # step (1-based), steps, what it makes
    finished = QtCore.Signal(str)  # "finished", "stopped" (failed / cancelled) or "nothing"

    def __init__(self, win, device: str = "cpu"):
        super().__init__(win)
        self.win = win
        self.steps = demo_steps(win.ws.root, device)
        self.index = 0
        self.panel = None
        self.active = False
        # a permanent label: QStatusBar.showMessage would hide the HU / position readouts
        self.label = QtWidgets.QLabel()
        self.label.setObjectName("demoTraining")
        status = getattr(win, "status", None)
        if status is not None:
            status.addPermanentWidget(self.label)

    def start(self) -> bool:
        """Open the training window and start the first step not done; False if none is left."""
        self._skip_done()
        if self.index >= len(self.steps):
            self._say("Demo models already trained: Review ▸ Prediction review, Compare, "
                      "Metrics dashboard; Training ▸ Threshold inspection.")
            self.finished.emit("nothing")
            return False
        self.panel = self.win.panels.open("training")
        if self.panel is None:
            return False
        self.panel.job_finished.connect(self._job_finished)
        self.active = True
        return self._start_current()

    def _skip_done(self) -> None:
        while self.index < len(self.steps) and step_done(self.steps[self.index]):
            self.index += 1

    def _start_current(self) -> bool:
        spec = self.steps[self.index]
        k, n = self.index + 1, len(self.steps)
        if not self.panel.start(spec):  # e.g. the reader started another run meanwhile
            self._stop(f"Demo training paused at step {k} of {n}: the launcher is busy.")
            return False
        self._say(f"Demo models ({EXPECTED_MINUTES} min on 2 CPU cores), step {k} of {n}: "
                  f"{describe(spec)}…")
        self.step_started.emit(k, n, describe(spec))
        return True

    def _job_finished(self, status: str, message: str) -> None:
        if not self.active:
            return
        if status != "finished":
            k = self.index + 1
            self._stop(f"Demo training stopped at step {k} of {len(self.steps)} ({message}); "
                       "`ictview demo` continues from there.")
            return
        self.index += 1
        self._skip_done()
        if self.index >= len(self.steps):
            self.active = False
            self._say("Demo models ready (baseline, ss): Review ▸ Prediction review, Compare, "
                      "Metrics dashboard; Training ▸ Threshold inspection.")
            self.finished.emit("finished")
            return
        # after the panel's own handling of this job's end
        QtCore.QTimer.singleShot(0, self._start_current)

    def _stop(self, text: str) -> None:
        self.active = False
        self._say(text)
        self.finished.emit("stopped")

    def _say(self, text: str) -> None:
        self.label.setText(text)
        self.label.setToolTip(text)
