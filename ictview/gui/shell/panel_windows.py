"""The main window's "Training" and "Review" menus: each opens one panel in its own window
(one instance per panel, on the open workspace). Closing the app with a training run in
progress asks whether to leave it running or stop it (`confirm_close`)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ictview.errors import IctviewError

Qt = QtCore.Qt
PANELS = {
    # key: (menu, action text, shortcut, window title)
    "training": ("&Training", "Training &runs…", "Ctrl+Shift+T", "Training runs"),
    "ranker": ("&Training", "&Threshold inspection (ranker)…", "Ctrl+Shift+K",
               "Threshold inspection"),
    "review": ("Re&view", "&Prediction review…", "Ctrl+Shift+R", "Prediction review"),
    "compare": ("Re&view", "&Compare two runs…", "Ctrl+Shift+C", "Compare runs"),
    "dashboard": ("Re&view", "&Metrics dashboard…", "Ctrl+Shift+M", "Metrics dashboard"),
}


class PanelWindow(QtWidgets.QWidget):
    """A top-level window around one panel; closing it shuts the panel down."""

    closed = QtCore.Signal(str)

    def __init__(self, key: str, panel: QtWidgets.QWidget, title: str, parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.key, self.panel = key, panel
        self.setWindowTitle(f"ictview — {title}")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(panel)
        self.resize(1500, 950)

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        if self.key == "training" and self.panel.running():
            # the window goes, the run goes on: the panel keeps watching it while the app lives
            self.hide()
            ev.ignore()
            return
        self.panel.shutdown()
        self.closed.emit(self.key)
        super().closeEvent(ev)


def make_panel(key: str, root: Path, rater: str = "", *, headless: bool = False):
    """The panel `key` on workspace `root`, as its window shows it. The offscreen
    screenshots (gui/panel_screenshots.py) build theirs here too, so that a screenshot
    shows what the window does (the ranker's 'also below the cut' once differed)."""
    if key == "training":
        from ictview.gui.training.training_panel import TrainingPanel

        return TrainingPanel(root, headless=headless)
    if key == "ranker":
        from ictview.gui.review.ranker_panel import RankerPanel

        return RankerPanel(root, rater, headless=headless)
    if key == "review":
        from ictview.gui.review.review_view import ReviewView

        return ReviewView(root, headless=headless)
    if key == "compare":
        from ictview.gui.review.compare_view import CompareView

        return CompareView(root, headless=headless)
    if key == "dashboard":
        from ictview.gui.review.dashboard import Dashboard

        return Dashboard(root, headless=headless)
    raise ValueError(f"no panel {key!r}")


class PanelsHost(QtCore.QObject):
    def __init__(self, win: QtWidgets.QMainWindow):
        super().__init__(win)
        self.win = win
        self.root: Path | None = None
        self.windows: dict[str, PanelWindow] = {}
        self.actions: dict[str, QtGui.QAction] = {}
        menus: dict[str, QtWidgets.QMenu] = {}
        for key, (menu, text, shortcut, _title) in PANELS.items():
            if menu not in menus:
                menus[menu] = win.menuBar().addMenu(menu)
            a = QtGui.QAction(text, win)
            a.setShortcut(QtGui.QKeySequence(shortcut))
            a.triggered.connect(lambda _=False, k=key: self.open(k))
            win.addAction(a)
            menus[menu].addAction(a)
            self.actions[key] = a
        self._update_actions()

    def set_workspace(self, root: Path | None) -> None:
        """The main window opened another workspace: panels on the old one close (a running
        training job's window stays: it is about its own workspace)."""
        self.root = Path(root) if root else None
        for key in list(self.windows):
            w = self.windows[key]
            if Path(w.panel.ws_root) != self.root and not (key == "training" and w.panel.running()):
                self.close(key)
        self._update_actions()

    def _update_actions(self) -> None:
        for a in self.actions.values():
            a.setEnabled(self.root is not None)

    def open(self, key: str) -> QtWidgets.QWidget | None:
        if self.root is None:
            return None
        w = self.windows.get(key)
        if w is not None and Path(w.panel.ws_root) != self.root and not w.panel.running():
            self.close(key)
            w = None
        if w is None:
            try:
                panel = self._make(key)
            except IctviewError as e:  # e.g. the workspace went away
                self.win.report_error(str(e))
                return None
            w = PanelWindow(key, panel, PANELS[key][3], self.win)
            w.closed.connect(lambda k: self.windows.pop(k, None))
            self.windows[key] = w
        w.show()
        w.raise_()
        w.activateWindow()
        return w.panel

    def _make(self, key: str) -> QtWidgets.QWidget:
        headless = bool(getattr(self.win, "headless", False))
        panel = make_panel(key, self.root, getattr(self.win, "rater", ""), headless=headless)
        if key == "training":
            # a finished command may have made predictions: the open views show them
            panel.job_finished.connect(lambda *_: self.refresh_views())
        return panel

    def refresh_views(self) -> None:
        """Reload the runs of the open ranker / review / compare / dashboard windows, keeping
        what each shows (a new run appears in its lists; an empty view fills in)."""
        for key, w in list(self.windows.items()):
            p = w.panel
            if key in ("ranker", "review"):
                p.load_runs(prefer=p.run)
            elif key == "compare":
                same = p.run_a == p.run_b  # shown while only one run existed: let b move on
                p.load_runs(p.run_a, "" if same else p.run_b)
            elif key == "dashboard" and not p.busy():
                p.load_runs()
                if p.selected_runs():
                    p.compute()

    def close(self, key: str, policy: str = "stop") -> None:
        w = self.windows.pop(key, None)
        if w is None:
            return
        if key == "training":
            w.panel.close_jobs(policy)
        w.panel.shutdown()
        w.hide()
        w.deleteLater()

    def training_running(self) -> bool:
        w = self.windows.get("training")
        return w is not None and w.panel.running()

    def confirm_close(self) -> bool:
        """Before the app closes: False keeps it open. With a training run going, asks
        'leave running' / 'stop' (headless: stop) and applies the answer."""
        if not self.training_running():
            return True
        panel = self.windows["training"].panel
        policy = "stop" if getattr(self.win, "headless", False) else panel.ask_close_policy()
        if policy == "cancel":
            return False
        self.close_policy = policy
        panel.close_jobs(policy)
        return True

    def shutdown(self) -> None:
        for key in list(self.windows):
            self.close(key, getattr(self, "close_policy", "stop"))
