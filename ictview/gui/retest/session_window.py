"""The blinded test-retest session window: one repetition, one exam at a time.

What the rater sees: a banner ("BLINDED TEST-RETEST SESSION · Repetition 2 of 3 —
exam 4 of 23"), the current exam in the reused SliceView with the reused
ToolPanel, and a "Done, next exam" button. There is no exam list, no labelset or
prediction chooser, no "start from" copy and no way back to a finished exam.
Before a repetition may start, the images are replaced by a page that says when
it opens (washout), or offers to start it.

Blinding: every array the widgets show comes from a `BlindingGuard`
(ictview.study.blinding), which only hands out the current exam's CT and the
session's own labelset and raises on anything else. `given` records what each
widget was given (tests assert on it). Session events (exam open/close/done,
session end) are audited by `RetestSession`; saves by the store.

`run_retest_gui(workspace, study, rater, screenshot=None, clock=None)` is the
entry point (the lead's CLI; `--screenshot` renders offscreen, in memory: nothing
is written).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core.annotation import AnnotationModel
from ictview.core.labels import BY_VALUE
from ictview.core.window import WINDOW_PRESETS
from ictview.errors import IctviewError
from ictview.gui.annotate.annotation_host import AnnotationHost, preset_of
from ictview.gui.annotate.tool_panel import CLASS_KEYS, TOOL_KEYS, ToolPanel
from ictview.gui.retest.session_widgets import RetestBanner, RetestMessagePage, RetestPanel
from ictview.gui.screenshot import SCREENSHOT_SIZE, dispose
from ictview.gui.viewer.slice_view import SliceView
from ictview.gui.viewer.status_bar import StatusBar
from ictview.store.workspace import Workspace
from ictview.study.blinding import BlindingGuard
from ictview.study.clock import Clock, SystemClock, human, human_duration
from ictview.study.retest_plan import load_study
from ictview.study.retest_session import RetestSession, availability

Qt = QtCore.Qt


class _Bridge(QtCore.QObject):
    saved = QtCore.Signal(int)  # from the model's saver thread, queued to the GUI thread


class RetestSessionWindow(AnnotationHost, QtWidgets.QMainWindow):
    error_title = "ictview — test-retest"

    exam_opened = QtCore.Signal(str)

    def __init__(self, workspace: Path | str, study: str, rater: str, *,
                 clock: Clock | None = None, headless: bool = False, preview: bool = False):
        super().__init__()
        self.headless = headless  # no modal dialogs (tests, screenshots)
        self.preview = preview  # screenshot: in-memory model, nothing written
        self.clock = clock or SystemClock()
        self.ws = Workspace.open(Path(workspace))
        self.study_name, self.rater = study, rater.strip()
        self.session: RetestSession | None = None
        self.guard: BlindingGuard | None = None
        self.model: AnnotationModel | None = None
        self.state = ""
        self.last_error = ""
        self.given: list[dict] = []  # what the widgets were handed (see module doc)
        self.guard_history: list = []  # every guard access of this window (all repetitions)
        self._carried: dict = {}
        self._seconds_at_open = 0.0
        self._bridge = _Bridge(self)
        self._bridge.saved.connect(self._on_saved)

        self.setWindowTitle(f"ictview — test-retest session · {study}")
        self.banner = RetestBanner()
        self.slice_view = SliceView()
        self.tool_panel = ToolPanel()
        self.panel = RetestPanel()
        self.page = RetestMessagePage()
        column = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(column)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(4)
        rl.addWidget(self.panel)
        rl.addWidget(self.tool_panel, 1)
        # scrolls on short (laptop) screens instead of forcing the window taller
        right = QtWidgets.QScrollArea()
        right.setWidget(column)
        right.setWidgetResizable(True)
        right.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        right.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # as wide as the tool panel's rows need (name, key, volume, show, lock) beside a
        # vertical scroll bar: a fixed 340-430 px cut the rows off on the right
        extent = right.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        need = column.minimumSizeHint().width() + extent + 2 * right.frameWidth() + 2
        right.setMinimumWidth(need)
        right.setMaximumWidth(max(need, 460))
        work = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        work.setChildrenCollapsible(False)
        work.addWidget(self.slice_view)
        work.addWidget(right)
        work.setStretchFactor(0, 1)
        work.setSizes([SCREENSHOT_SIZE[0] - need, need])
        self.side_scroll = right
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(work)
        self.stack.addWidget(self.page)
        central = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.banner)
        cl.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status = StatusBar()
        self.setStatusBar(self.status)

        self._build_actions()
        self._connect()
        self._timer = QtCore.QTimer(self)  # time on task and washout countdown
        self._timer.setInterval(15_000)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.resize(*SCREENSHOT_SIZE)
        try:
            self.refresh()
        except BaseException:
            self.shutdown()
            raise

    # ---- actions (no exam navigation: the order is the session's) ----------------------------

    def _build_actions(self) -> None:
        self.actions_by_key: dict[str, QtGui.QAction] = {}

        def add(key, slot, shortcuts):
            a = QtGui.QAction(key, self)
            a.setShortcuts([QtGui.QKeySequence(s) for s in shortcuts])
            a.triggered.connect(slot)
            self.addAction(a)
            self.actions_by_key[key] = a

        K = QtGui.QKeySequence.StandardKey
        add("undo", lambda: self._model_call("undo"), [K.Undo])
        add("redo", lambda: self._model_call("redo"), ["Ctrl+Shift+Z", "Ctrl+Y"])
        add("done", self.done_next, ["Ctrl+Return", "Ctrl+Enter"])
        add("fit", self.slice_view.fit, ["Ctrl+0", "Home"])
        add("next_slice", lambda: self.slice_view.step_slice(1), ["Up", "Right"])
        add("prev_slice", lambda: self.slice_view.step_slice(-1), ["Down", "Left"])
        add("page_up", lambda: self.slice_view.step_slice(5), ["PgUp"])
        add("page_down", lambda: self.slice_view.step_slice(-5), ["PgDown"])
        add("grow", lambda: self._model_call("grow_brush"), ["]"])
        add("shrink", lambda: self._model_call("shrink_brush"), ["["])
        for i, name in enumerate(WINDOW_PRESETS, start=1):
            add(f"preset_{name}", lambda _=False, n=name: self.set_preset(n), [str(i)])
        for value, c in BY_VALUE.items():
            add(f"class_{c.code}", lambda _=False, v=value: self._set_model("label_value", v),
                [CLASS_KEYS[c.code]])
        for tool, key in TOOL_KEYS.items():
            add(f"tool_{tool}", lambda _=False, t=tool: self._set_model("tool", t), [key])

    def _connect(self) -> None:
        self._connect_slice_view()
        from ictview.gui.viewer.actions import fill_between_slices

        self.tool_panel.interpolate_requested.connect(lambda: fill_between_slices(self))
        self.panel.done.clicked.connect(self.done_next)
        self.page.start_clicked.connect(self.start_repetition)

    # ---- session state -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Show what the study allows now: the exam in progress, or a message page."""
        st = load_study(self.ws, self.study_name)
        if st.rater != self.rater:
            raise IctviewError(f"{self.ws.root}: study '{st.name}' is segmented by rater "
                               f"'{st.rater}', not '{self.rater or '(no name)'}'")  # fmt: skip
        av = availability(st, self.clock)
        self.state = av.state
        reps = st.repetitions
        who = f"Study {st.name}  ·  rater {st.rater}"
        if av.state == "in progress":
            if self.session is None or self.session.repetition != av.repetition:
                self.session = RetestSession.resume(self.ws, st.name, self.rater, clock=self.clock)
                self.guard = BlindingGuard(self.session, self.clock, accesses=self.guard_history)
            self.stack.setCurrentIndex(0)
            if self.model is None:
                self._open_current()
            return
        self.session = self.guard = None
        k = av.repetition
        if av.state == "ready":
            n = len(st.exams)
            self.banner.show_state(f"Repetition {k} of {reps} — ready to start", who)
            self.page.show_message(
                f"Repetition {k} of {reps} is ready",
                f"{n} exams, one after another, in a new random order. Segment each exam as "
                "you would for a first read; you will not see your earlier repetitions, other "
                "raters' labels or model predictions.",
                "Time on task is recorded per exam. You can close the window and continue later.",
                f"Start repetition {k}",
            )
            self.page.start.setEnabled(not self.preview)
        elif av.state == "washout":
            opens = human(av.opens_at, round_up=True)
            left = human_duration(av.opens_at - self.clock.now())
            self.banner.show_state(f"Repetition {k} of {reps} — opens on {opens}", who)
            prev = st.session(k - 1)
            self.page.show_message(
                f"Repetition {k} of {reps} opens on {opens}",
                f"Washout: at least {st.washout_days:g} days after repetition {k - 1} ended "
                f"({human(prev.ended_at)}). {left} to go.",
                "An administrator can start it earlier with a typed reason, which is recorded "
                "and shown in the analysis:\n"
                f"ictview retest start {self.ws.root} --study {st.name} --rater {st.rater} "
                "--override-reason \"…\" --by NAME",
            )
        else:
            self.banner.show_state(f"All {reps} repetitions finished", who)
            self.page.show_message("Study complete", f"All {reps} repetitions of study "
                                   f"'{st.name}' are finished. Thank you.")  # fmt: skip
        self.stack.setCurrentIndex(1)
        self.status.show_rater(self.rater, f"study {st.name}")

    def start_repetition(self) -> None:
        """The rater starts the next repetition from the app (washout enforced; no override)."""
        if self.preview:
            return
        try:
            RetestSession.start(self.ws, self.study_name, self.rater, clock=self.clock)
        except IctviewError as e:
            self.report_error(str(e))
        self.refresh()

    def _open_current(self) -> bool:
        s, guard = self.session, self.guard
        exam = s.current()
        if exam is None:  # every exam done (e.g. closed right after the last one)
            if not self.preview:
                s.finish()
            self.refresh()
            return False
        try:
            if not self.preview:
                s.open_exam(exam)
            model = guard.open_model(exam, preview=self.preview)
        except IctviewError as e:
            self.report_error(str(e))
            self.slice_view.clear()
            return False
        self._bind(model)
        return True

    def done_next(self) -> None:
        """'Done, next exam': finish the current exam and open the next one in the order."""
        if self.model is None or self.session is None or self.preview:
            return
        s, exam = self.session, self.model.exam
        k, n = s.position()
        if not self.headless:
            answer = QtWidgets.QMessageBox.question(
                self, "Done with this exam?",
                f"Mark exam {k} of {n} done and go on? You cannot come back to it in this "
                "repetition." + ("" if self._labelled() else
                                 "\n\nNothing is painted: it is recorded as no hemorrhage."),
            )  # fmt: skip
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                return
        try:
            self.close_exam()
            s.mark_done(exam)
        except IctviewError as e:
            self.report_error(str(e))
            if self.model is None:
                self._open_current()  # still the current exam: show it again
            return
        if s.current() is None:
            s.finish()
            self.refresh()
            return
        self._open_current()

    def _labelled(self) -> bool:
        m = self.model
        return m is not None and any(0 < v < 255 for v in m.voxel_counts())

    def close_exam(self) -> None:
        """Take the exam off the screen: end a stroke, wait for saves, audit the time."""
        model, self.model = self.model, None
        if model is None:
            return
        self._detach_model(model)
        model.close()
        self.slice_view.clear()
        if model.save_error is not None:
            raise IctviewError(f"{model.exam}: last autosave failed ({model.save_error}); "
                               "the strokes are kept in the journal")  # fmt: skip
        if self.session is not None and not self.preview:
            self.session.close_exam(model.exam, model.seconds_on_task - self._seconds_at_open)

    # ---- model <-> views -------------------------------------------------------------------------

    def _give(self, widget: str, model: AnnotationModel) -> None:
        self.given.append({"widget": widget, "exam": model.exam, "labelset": model.labelset,
                           "labels": model.labels, "hu": model.hu})  # fmt: skip

    def _bind(self, model: AnnotationModel) -> None:
        self._seconds_at_open = model.seconds_on_task
        self._attach_model(model)
        self._give("tool_panel", model)
        self.tool_panel.bind(model)
        self._give("slice_view", model)
        self._show_volume(model)
        self._sync_from_model()
        self._show_progress()
        self._report_journal_notices(model)
        self.slice_view.canvas.setFocus()
        self.exam_opened.emit(model.exam)

    def _show_progress(self) -> None:
        s, m = self.session, self.model
        if s is None or m is None:
            return
        k, n = s.position()
        st = s.study
        self.banner.show_state(
            f"Repetition {s.repetition} of {st.repetitions} — exam {k} of {n}",
            f"Study {st.name}  ·  rater {st.rater}",
        )
        e = self.ws.exam(m.exam)
        self.slice_view.set_info(
            f"<b>Exam {k} of {n}</b><br>{e.name} · {e.n_slices} slices",
            f"{m.labelset}<br><span style='color:#8a939d'>"
            f"{'preview' if self.preview else 'editing'}</span>",
        )
        self._update_meta()
        self.status.show_rater(self.rater, m.labelset)

    def _update_meta(self) -> None:
        m = self.model
        if m is None or self.session is None:
            return
        k, n = self.session.position()
        active = max(m.seconds_on_task - self._seconds_at_open, 0.0)
        if self.preview:
            saved = "Preview (not saved)"
        elif m.save_error is not None:
            saved = "Autosave failed: strokes kept in the journal"
        elif m.dirty:
            saved = "Saving…"
        else:
            saved = "All changes saved" if m.revision else "Nothing painted yet"
        vol = sum(m.volumes_ml().values())
        minutes = "< 1 min" if active < 60 else f"{active / 60:.0f} min"
        self.panel.show_exam(
            m.exam, k, n, f"Hemorrhage {vol:.2f} mL  ·  active time {minutes}\n{saved}"
        )
        self.status.show_save_state(saved, m.dirty)

    def _sync_from_model(self) -> None:
        m, v = self.model, self.slice_view
        if m is None:
            return
        center, width = m.window
        if (center, width) != (v.center, v.width):
            v.set_window(center, width, preset_of(m.window))
        self._sync_view_tools(m)
        self.status.show_window(v.center, v.width, v.preset)
        self.actions_by_key["undo"].setEnabled(m.can_undo and not m.read_only)
        self.actions_by_key["redo"].setEnabled(m.can_redo and not m.read_only)
        self._update_meta()

    def _on_saved(self, _revision: int) -> None:
        self._update_meta()

    def _tick(self) -> None:
        if self.state in ("washout", "ready") and not self.preview:
            self.refresh()  # the washout may have ended; the countdown moves
        else:
            self._update_meta()

    # view gestures -> model calls: AnnotationHost

    def set_preset(self, name: str) -> None:
        if self.model is not None:
            self.model.set_window_preset(name)

    # ---- closing (errors: AnnotationHost.report_error) -----------------------------------

    def shutdown(self) -> None:
        """Close the exam (saves, time on task) and the workspace. Safe to call twice."""
        self._timer.stop()
        try:
            self.close_exam()
        except IctviewError as e:
            self.report_error(str(e))
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(ev)


def run_retest_gui(workspace: Path | str, study: str, rater: str, screenshot: Path | None = None,
                   clock: Clock | None = None) -> int:
    """Run the study's session for `rater` (continue it, start it, or show the washout).

    With `screenshot`: render offscreen at 1600x1000 to that PNG and return, writing
    nothing to the workspace (the exam opens in memory, no audit rows).
    """
    if screenshot is not None:
        from ictview.gui.app import use_offscreen_platform

        use_offscreen_platform()
    from ictview.gui.app import ensure_app

    app = ensure_app()
    win = None
    try:
        if not (Path(workspace) / "workspace.sqlite").exists():
            raise IctviewError(f"{workspace}: not an ictview workspace (no workspace.sqlite)")
        win = RetestSessionWindow(workspace, study, rater, clock=clock,
                                  headless=screenshot is not None, preview=screenshot is not None)
        if screenshot is not None:
            from ictview.gui.launch import save_screenshot

            return save_screenshot(app, win, Path(screenshot))
        from ictview.gui import error_hook

        error_hook.install()  # an exception in a slot: one line in a dialog, the app goes on
        win.show()
        return app.exec()
    except IctviewError as e:
        print(f"ictview retest: {e}", file=sys.stderr)
        return 2
    finally:
        dispose(win)

