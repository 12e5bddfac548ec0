"""Entry point for `ictview open WS [--screenshot PNG]` and `ictview demo`.

run_gui opens the workspace (remembered in the recent list), asks the rater's
name once (kept in QSettings), selects the given exam or the first labeled one,
and runs the event loop. With `screenshot` it renders the window offscreen at
1600x1000 once the exam is shown, saves the PNG and returns without a dialog
(rater: the stored name or "demo-rater"; exams open in memory, nothing is written).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ictview.errors import IctviewError

DEMO_RATER = "demo-rater"


def run_gui(workspace: Path | None, screenshot: Path | None = None, exam: str | None = None,
            view: str | None = None, layout: str | None = None,
            demo_training: bool = False, settings_file: Path | None = None) -> int:
    """`view`: also open one of the panels (training, ranker, review, compare, dashboard);
    `layout`: axial, mpr (1x3) or mpr-2x2 (None: the preferences' default). `demo_training`:
    once the window is up, train the demo's models in the background
    (gui/training/demo_training.py; not with a screenshot). `settings_file`: the preferences
    file (None: $ICTVIEW_SETTINGS, else the XDG one)."""
    if screenshot is not None:
        from ictview.gui.app import use_offscreen_platform

        use_offscreen_platform()
    from ictview.gui.app import ensure_app, settings
    from ictview.gui.screenshot import dispose
    from ictview.gui.shell.main_window import MainWindow, recent_workspaces

    app = ensure_app()
    problem = load_preferences(settings_file)
    if screenshot is None:
        from ictview.gui import error_hook

        error_hook.install()  # an exception in a slot: one line in a dialog, the app goes on
    win = MainWindow(headless=screenshot is not None)
    win.preview = screenshot is not None
    if layout is not None:
        win.viewer.set_layout(layout)
    if problem:
        win.status.showMessage(problem, 20000)
    try:
        rater = stored_rater()
        if not rater:
            if screenshot is not None:
                rater = DEMO_RATER
            else:
                rater = ask_rater(win)
                if not rater:
                    print("ictview: a rater name is needed to label exams", file=sys.stderr)
                    return 1
                settings().setValue("rater", rater)
        win.set_rater(rater)
        if workspace is None and screenshot is None:
            recent = recent_workspaces()
            workspace = Path(recent[0]) if recent and Path(recent[0]).is_dir() else None
        if workspace is not None:
            if not Path(workspace).is_dir():
                raise IctviewError(f"{workspace}: workspace folder not found")
            if not win.open_workspace(Path(workspace)):
                raise IctviewError(win.last_error or f"{workspace}: cannot open the workspace")
            name = exam or first_labelled_exam(win)
            if exam is not None and exam not in {r.name for r in win.exam_list.model.rows()}:
                raise IctviewError(f"{workspace}: no exam named '{exam}'")
            if name and not win.open_exam(name) and screenshot is not None:
                raise IctviewError(win.last_error or f"{name}: cannot open the exam")
            if screenshot is not None:
                wait_for_exam(app, win)
        if screenshot is not None:
            return save_screenshot(app, win, Path(screenshot))
        win.show()
        if view is not None and win.ws is not None:
            win.panels.open(view)
        if demo_training and win.ws is not None:
            from PySide6 import QtCore

            from ictview.gui.training.demo_training import DemoTraining

            win.demo_training = DemoTraining(win)  # kept: it lives as long as the window
            QtCore.QTimer.singleShot(0, win.demo_training.start)  # once the window is painted
        return app.exec()
    except IctviewError as e:
        print(f"ictview: {e}", file=sys.stderr)
        return 2
    finally:
        dispose(win)


def load_preferences(path: Path | None) -> str:
    """Use the preferences file; a damaged one: one line on stderr (returned), defaults used."""
    from ictview.gui import preferences

    problem = preferences.load_settings(path).problem
    if problem:
        print(f"ictview: {problem}", file=sys.stderr)
    return problem


def wait_for_exam(app, win, timeout_s: float = 120.0) -> None:
    """Let a background exam load land (large exams open off the UI thread)."""
    import time

    deadline = time.monotonic() + timeout_s
    while getattr(win, "_loader", None) is not None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()


def stored_rater() -> str:
    from ictview.gui.app import settings

    return str(settings().value("rater", "") or "").strip()


def ask_rater(parent) -> str:
    from PySide6 import QtWidgets

    name, ok = QtWidgets.QInputDialog.getText(
        parent, "ictview — rater",
        "Your name (recorded with every label you save;\nasked once on this computer):",
    )
    return name.strip() if ok else ""


def first_labelled_exam(win) -> str | None:
    """The first exam with labels in the shown labelset. In preview mode, when the
    rater has none yet, switch to the first labelset that has some (shown read-only,
    so a screenshot shows an overlay). Else the first exam."""
    from ictview.gui.shell.exam_list import STATUS_LABELLED, label_status

    def first(rows) -> str | None:
        return next((r.name for r in rows if r.status == STATUS_LABELLED), None)

    name = first(win.exam_list.model.rows())
    if name is None and win.preview and win.ws is not None:
        for ls in win.ws.labelsets():
            if any(v > 0 for v, _, _ in label_status(win.ws, ls["name"]).values()):
                win.set_labelset(ls["name"])
                name = first(win.exam_list.model.rows())
                break
    rows = win.exam_list.model.rows()
    return name or (rows[0].name if rows else None)


def save_screenshot(app, win, path: Path) -> int:
    """Render a painting window (main or test-retest) with its cursor on the labels."""
    from ictview.gui.screenshot import grab_png

    def prepare() -> None:
        viewer = getattr(win, "viewer", None)
        if viewer is not None:
            viewer.fit_all()
        else:
            win.slice_view.fit()
        show_cursor_on_labels(win)

    return grab_png(app, win, path, prepare)


def show_cursor_on_labels(win) -> None:
    """Put the cursor (crosshair, brush preview, HU readout) on the labeled region."""
    import numpy as np

    view = win.slice_view
    if view.labels is None:
        return
    rows, cols = np.nonzero(view.labels[view.z])
    if rows.size == 0:
        return
    i = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    view._track_cursor(float(rows[i]), float(cols[i]))
