"""The main window: exam list | slice view | tool panel, menus, tool bar, status bar.

It owns the open Workspace and the AnnotationModel of the current exam, and wires
the views to the model: view gestures -> model calls, model events -> view updates.
Edits go to the rater's own labelset (`rater_labelset`); other labelsets can be
viewed read-only. The model autosaves at the end of every stroke; closing the
exam or the window waits for pending saves.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core.annotation import AnnotationModel, rater_labelset
from ictview.core.labels import BY_VALUE
from ictview.core.window import WINDOW_PRESETS
from ictview.errors import IctviewError, read_error
from ictview.gui.annotate import existing_labels as existing
from ictview.gui.annotate import model_assist as assist
from ictview.gui.annotate.annotation_host import AnnotationHost, preset_of
from ictview.gui.annotate.tool_panel import CLASS_KEYS, TOOL_KEYS, ToolPanel
from ictview.gui.app import settings
from ictview.gui.error_hook import error_line
from ictview.gui.shell.exam_list import ExamListPanel
from ictview.gui.shell.exam_verifier import ExamVerifier
from ictview.gui.shell.panel_windows import PanelsHost
from ictview.gui.shell.preferences_dialog import install_preferences
from ictview.gui.viewer.actions import install_viewer_actions
from ictview.gui.viewer.exam_cache import read_volume as cached_volume
from ictview.gui.viewer.exam_cache import show_first_slice
from ictview.gui.viewer.mpr_viewer import MprViewer
from ictview.gui.viewer.plane_view import PlaneView
from ictview.gui.viewer.status_bar import StatusBar
from ictview.store.workspace import Workspace

Qt = QtCore.Qt
MAX_RECENT = 8
EMPTY_START = "Empty"

def labelled_voxels(model: AnnotationModel) -> int:
    """Voxels holding a hemorrhage class (the model keeps the counts: no volume scan)."""
    return sum(n for v, n in model.voxel_counts().items() if 0 < v < 255)


class _Bridge(QtCore.QObject):
    """Carries events from worker threads (saver, loader) to the GUI thread (queued)."""

    saved = QtCore.Signal(int)
    loaded = QtCore.Signal(object, object)  # (token, model or exception)


class MainWindow(AnnotationHost, QtWidgets.QMainWindow):
    # exams with more voxels than this open on a worker thread, their first slice painted
    # at once (read alone from the volume file); small ones (tests) stay synchronous
    sync_open_max_voxels = 4 * 512 * 512

    exam_opened = QtCore.Signal(str)

    def __init__(self, *, headless: bool = False):
        super().__init__()
        # headless: no modal dialogs (screenshots, tests); errors go to the status bar
        self.headless = headless
        self.ws: Workspace | None = None
        self.model: AnnotationModel | None = None
        self.rater = ""
        self.labelset = ""  # the labelset shown (own = editable)
        self.start_from = EMPTY_START
        self.preview = False  # screenshot mode: exams open in memory, nothing written
        self.last_error = ""
        self._carried: dict = {}
        self._loader: threading.Thread | None = None
        self._loader_result = None
        self._load_token = 0
        self._bridge = _Bridge(self)
        self._bridge.saved.connect(self._on_saved)
        self._bridge.loaded.connect(self._on_loaded)
        self.verifier = ExamVerifier(self)  # checksums of the opened exam, in the background
        self.verifier.verified.connect(self._on_verified)

        self.setWindowTitle("ictview")
        self.exam_list = ExamListPanel()
        self.slice_view = PlaneView()  # the axial view; the MPR layout adds coronal + sagittal
        self.viewer = MprViewer(self, self.slice_view)
        self.tool_panel = ToolPanel()
        self.exam_list.setMinimumWidth(420)
        # class rows: name, key, volume, show, lock; as wide as the rows ask for, so that no
        # class name is elided ('Int…renchymal' at a fixed 390)
        need = max(390, self.tool_panel.sizeHint().width())
        self.tool_panel.setMinimumWidth(need)
        self.tool_panel.setMaximumWidth(max(440, need))

        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self.exam_list)
        split.addWidget(self.viewer)
        split.addWidget(self.tool_panel)
        split.setStretchFactor(1, 1)
        split.setSizes([450, 810, 340])
        self.setCentralWidget(split)
        self.status = StatusBar()
        self.setStatusBar(self.status)

        self._build_actions()
        self._build_menus()
        install_viewer_actions(self)  # layouts, crosshair, measurements, tags, interpolation
        assist.install_assist(self)  # start from a model, classify components, the queue
        existing.install_existing_labels(self)
        self._build_assist_menu()
        self.panels = PanelsHost(self)  # Training / Review menus and their panel windows
        self._build_toolbar()
        install_preferences(self)  # Edit > Preferences…, F1; the user's keys and colours
        self._connect()
        self._update_actions()
        self.resize(1600, 1000)

    # ---- actions, menus, tool bar ---------------------------------------------------------

    def _action(self, key: str, text: str, slot, shortcut=None, checkable=False,
                tip: str = "") -> QtGui.QAction:
        a = QtGui.QAction(text, self)
        if shortcut is not None:
            seqs = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            a.setShortcuts([QtGui.QKeySequence(s) for s in seqs])
        a.setCheckable(checkable)
        if tip:
            a.setToolTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work wherever the focus is in the window
        self.actions_by_key[key] = a
        return a

    def _build_actions(self) -> None:
        self.actions_by_key: dict[str, QtGui.QAction] = {}
        A = self._action
        K = QtGui.QKeySequence.StandardKey
        A("open", "&Open workspace…", self._choose_workspace, K.Open)
        A("export", "&Export labels…", self._export_labels, "Ctrl+E")
        A("pacs", "&PACS…", self._open_pacs)
        A("quit", "&Quit", self.close, K.Quit)
        A("undo", "&Undo", self.undo, [K.Undo])
        A("redo", "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        for i, name in enumerate(WINDOW_PRESETS, start=1):
            c, w = WINDOW_PRESETS[name]
            A(f"preset_{name}", f"{name.capitalize()}  (W {w} / L {c})",
              lambda _=False, n=name: self.set_preset(n), str(i), checkable=True)
        A("fit", "&Fit to window", lambda: self.viewer.fit_all(), ["Ctrl+0", "Home"])
        A("zoom_in", "Zoom &in", lambda: self.slice_view.zoom(1.25), [K.ZoomIn, "Ctrl+="])
        A("zoom_out", "Zoom &out", lambda: self.slice_view.zoom(0.8), K.ZoomOut)
        A("crosshair", "Hover &crosshair (axial)", self.slice_view.set_crosshair_visible, "C",
          checkable=True)
        self.actions_by_key["crosshair"].setChecked(self.slice_view.crosshair_visible)
        A("outline", "Label &outline", self._toggle_outline, "O", checkable=True)
        A("labels_visible", "Show &labels", self._toggle_labels_visible, "T", checkable=True)
        self.actions_by_key["labels_visible"].setChecked(True)
        A("next_slice", "Next slice", lambda: self.slice_view.step_slice(1), ["Up", "Right"])
        A("prev_slice", "Previous slice", lambda: self.slice_view.step_slice(-1), ["Down", "Left"])
        A("page_up", "Five slices up", lambda: self.slice_view.step_slice(5), "PgUp")
        A("page_down", "Five slices down", lambda: self.slice_view.step_slice(-5), "PgDown")
        A("grow", "Larger brush", lambda: self._model_call("grow_brush"), "]")
        A("shrink", "Smaller brush", lambda: self._model_call("shrink_brush"), "[")
        A("hu_limit", "Limit brush to HU range", lambda: self._toggle("hu_limited"), "H")
        A("protect", "Protect other classes", lambda: self._toggle("protect_others"), "L")
        for value, c in BY_VALUE.items():
            A(f"class_{c.code}", f"{c.code} ({c.name})",
              lambda _=False, v=value: self._set_model("label_value", v), CLASS_KEYS[c.code])
        for tool, key in TOOL_KEYS.items():
            A(f"tool_{tool}", tool.capitalize(),
              lambda _=False, t=tool: self._set_model("tool", t), key)
        A("next_exam", "Next exam", lambda: self._step_exam(1), "Ctrl+Down")
        A("prev_exam", "Previous exam", lambda: self._step_exam(-1), "Ctrl+Up")

    def _build_menus(self) -> None:
        a = self.actions_by_key
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(a["open"])
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addSeparator()
        m.addAction(a["export"])
        m.addAction(a["pacs"])
        m.addSeparator()
        m.addAction(a["quit"])
        m = mb.addMenu("&Edit")
        m.addAction(a["undo"])
        m.addAction(a["redo"])
        m.addSeparator()
        for tool in TOOL_KEYS:
            m.addAction(a[f"tool_{tool}"])
        m.addSeparator()
        m.addAction(a["grow"])
        m.addAction(a["shrink"])
        m.addAction(a["hu_limit"])
        m.addAction(a["protect"])
        m = mb.addMenu("&View")
        wm = m.addMenu("&Window preset")
        for name in WINDOW_PRESETS:
            wm.addAction(a[f"preset_{name}"])
        m.addSeparator()
        for key in ("fit", "zoom_in", "zoom_out", "crosshair"):
            m.addAction(a[key])
        m.addSeparator()
        m.addAction(a["labels_visible"])
        m.addAction(a["outline"])
        m.addSeparator()
        for key in ("next_slice", "prev_slice", "next_exam", "prev_exam"):
            m.addAction(a[key])

    def _build_assist_menu(self) -> None:
        a = self.actions_by_key
        m = self.menuBar().addMenu("&Labels")
        m.addAction(a["queue_next"])
        m.addAction(a["cycle_class"])
        m.addAction(a["start_existing"])
        m.addSeparator()
        m.addAction(a["train_mine"])

    def _build_toolbar(self) -> None:
        tb = QtWidgets.QToolBar("Main")
        tb.setObjectName("mainToolBar")
        tb.setMovable(False)
        tb.setFloatable(False)
        tb.setIconSize(QtCore.QSize(16, 16))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.exam_title = QtWidgets.QLabel("No workspace")
        self.exam_title.setObjectName("examTitle")
        self.exam_meta = QtWidgets.QLabel("File ▸ Open workspace…")
        self.exam_meta.setObjectName("examMeta")
        tb.addWidget(self.exam_title)
        tb.addWidget(self.exam_meta)
        spacer = QtWidgets.QWidget()
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                             QtWidgets.QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        tb.addWidget(QtWidgets.QLabel("Window"))
        self.preset_buttons: dict[str, QtWidgets.QToolButton] = {}
        for i, name in enumerate(WINDOW_PRESETS, start=1):
            b = QtWidgets.QToolButton()
            a = self.actions_by_key[f"preset_{name}"]
            a.setIconText(f"{name.capitalize()}  {i}")  # a tool button shows the icon text
            a.setToolTip(f"{a.text()}  [{i}]")
            b.setDefaultAction(a)
            tb.addWidget(b)
            self.preset_buttons[name] = b
        self.labelset_combo = QtWidgets.QComboBox()
        self.labelset_combo.setToolTip(
            "Your own labelset is edited; the others are shown read-only"
        )
        self.start_combo = QtWidgets.QComboBox()
        self.start_combo.setToolTip(
            "Labels copied into your labelset when you open an exam you have not labeled yet"
        )
        self.exam_list.add_header_row("Labelset", self.labelset_combo)
        self.exam_list.add_header_row("Start from", self.start_combo)
        tb.addSeparator()
        for key, text, tip in (("undo", "Undo", "Undo the last stroke [Ctrl+Z]"),
                               ("redo", "Redo", "Redo [Ctrl+Shift+Z]"),
                               ("fit", "Fit", "Fit the slice to the view [Ctrl+0]")):
            a = self.actions_by_key[key]
            a.setIconText(text)
            a.setToolTip(tip)
            b = QtWidgets.QToolButton()
            b.setDefaultAction(a)
            tb.addWidget(b)

    def _connect(self) -> None:
        self._connect_slice_view()
        self.exam_list.exam_activated.connect(self.open_exam)
        self.labelset_combo.activated.connect(
            lambda i: self.set_labelset(self.labelset_combo.itemData(i))
        )
        self.start_combo.activated.connect(
            lambda i: self._set_start_from(self.start_combo.itemText(i))
        )

    # ---- workspace, rater, labelset ---------------------------------------------------------

    @property
    def own_labelset(self) -> str:
        return rater_labelset(self.rater) if self.rater else ""

    @property
    def editable(self) -> bool:
        return bool(self.rater) and self.labelset == self.own_labelset and not self.preview

    def set_rater(self, rater: str) -> None:
        self.rater = rater.strip()
        if self.ws is not None:
            self.set_labelset(self.own_labelset)
        self.status.show_rater(self.rater, self.labelset)

    def open_workspace(self, path: Path | str) -> bool:
        try:
            ws = Workspace.open(Path(path))
        except IctviewError as e:
            self.report_error(str(e))
            return False
        self.close_exam()
        if self.ws is not None:
            self.ws.close()
        self.ws = ws
        self.panels.set_workspace(ws.root)
        remember_recent(ws.root)
        self.setWindowTitle(f"ictview — {ws.root}")
        self.labelset = self.own_labelset or "reference"
        self._refresh_labelsets()
        self.exam_list.load(ws, self.labelset)
        self.exam_title.setText(ws.root.name)
        self.exam_meta.setText(f"{self.exam_list.model.rowCount()} exams")
        self.status.show_rater(self.rater, self.labelset)
        return True

    def _refresh_labelsets(self) -> None:
        # the read guard leaves out what this login may not see (test-retest blinding)
        names = [ls["name"] for ls in self.ws.labelsets()] if self.ws else []
        own = self.own_labelset
        self.labelset_combo.blockSignals(True)
        self.labelset_combo.clear()
        if own:
            self.labelset_combo.addItem(f"{own}  (yours)", own)
        for n in names:
            if n != own:
                self.labelset_combo.addItem(f"{n}  (read-only)", n)
        i = self.labelset_combo.findData(self.labelset)
        self.labelset_combo.setCurrentIndex(max(i, 0))
        self.labelset_combo.blockSignals(False)
        self.start_combo.blockSignals(True)
        self.start_combo.clear()
        self.start_combo.addItem(EMPTY_START)
        self.start_combo.addItems([n for n in names if n != own])
        if self.ws is not None:  # a run's prediction as starting labels (issue 16)
            self.start_combo.addItems([assist.MODEL_PREFIX + r for r in assist.model_runs(self.ws)])
        i = self.start_combo.findText(self.start_from)
        self.start_combo.setCurrentIndex(max(i, 0))
        self.start_combo.setEnabled(not self.preview)
        self.start_combo.blockSignals(False)

    def set_labelset(self, labelset: str) -> None:
        if not labelset or self.ws is None:
            return
        exam = self.model.exam if self.model else None
        self.close_exam()
        self.labelset = labelset
        self._refresh_labelsets()
        self.exam_list.load(self.ws, labelset)
        self.status.show_rater(self.rater, labelset)
        if exam:
            self.open_exam(exam)

    def _set_start_from(self, name: str) -> None:
        self.start_from = name or EMPTY_START

    # ---- exams ----------------------------------------------------------------------------------

    def open_exam(self, exam: str) -> bool:
        """Open `exam` (synchronously unless it is large). Returns False on error."""
        if self.ws is None:
            return False
        if self.model is not None and self.model.exam == exam:
            return True
        self.close_exam()
        self.exam_list.select(exam)
        try:
            e = self.ws.exam(exam)
        except IctviewError as err:
            self.report_error(str(err))
            return False
        self._load_token += 1
        token = self._load_token
        if e.n_slices * e.rows * e.cols > self.sync_open_max_voxels:
            self._show_loading(e.name)
            show_first_slice(self, e)
            root, login = self.ws.root, self.ws.login
            self._loader_result = None

            def load() -> None:
                self._loader_result = self._load_model(root, exam, login)
                self._bridge.loaded.emit(token, self._loader_result)

            self._loader = threading.Thread(target=load, name=f"load-{exam}", daemon=True)
            self._loader.start()
            return True
        result = self._load_model(self.ws, exam)
        return self._on_loaded(token, result)

    def _load_model(self, ws: Workspace | Path, exam: str, login: str | None = None
                    ) -> AnnotationModel | Exception:
        """Runs on the GUI thread or a loader thread (then with its own Workspace, opened
        for the same login)."""
        own = not isinstance(ws, Workspace)
        try:
            w = Workspace.open(ws, login=login) if own else ws
            try:
                # the read guard decides by the OS login, whatever rater name is typed
                start = None if self.start_from == EMPTY_START else self.start_from
                model_run = assist.start_run(self.start_from)
                if model_run:
                    start = None  # the proposal is applied after opening (one undo step)
                hidden = w.guard.why_not_labels(self.labelset, exam)
                if not hidden and start and self.editable and not self.preview:
                    hidden = w.guard.why_not_labels(start, exam)
                if hidden:
                    return self._blinded_model(w, exam, hidden)
                if self.preview:
                    return self._preview_model(w, exam)
                if self.editable:
                    if start and not w.label_path(start, exam).exists():
                        start = None  # nothing to start from for this exam
                    vol = cached_volume(w, exam)
                    try:
                        model = AnnotationModel.open(w, exam, self.labelset, self.rater,
                                                     start_from=start, volume=vol)
                    except IctviewError as err:
                        # e.g. open for editing in another ictview: still let the rater look
                        model = AnnotationModel.open(w, exam, self.labelset, self.rater,
                                                     read_only=True, volume=vol)
                        model.open_error = str(err)
                        return model
                    if model_run:
                        try:
                            model.assist_note = assist.attach_proposal(model, w, model_run)
                        except IctviewError as err:
                            model.assist_note = f"Start from {model_run}: {err}"
                    return model
                return AnnotationModel.open(w, exam, self.labelset, self.rater, read_only=True,
                                            volume=cached_volume(w, exam))
            finally:
                if own:
                    w.close()
        except Exception as exc:  # shown as one line by _on_loaded; the window keeps working
            return read_error(exc) or RuntimeError(error_line(exc))

    def _blinded_model(self, ws: Workspace, exam: str, why: str) -> AnnotationModel:
        """The CT alone, read-only: a rater in a test-retest study must not see (or add to)
        labels of the study's exams outside the session."""
        e = ws.exam(exam)
        vol = cached_volume(ws, exam)
        model = AnnotationModel(vol.hu, None, e.spacing, exam=exam, labelset=self.labelset,
                                rater=self.rater, geometry=vol.geometry)
        model.read_only = True
        model.open_error = why
        return model

    def _preview_model(self, ws: Workspace, exam: str) -> AnnotationModel:
        """In-memory model of the shown labelset: looks editable, saves nothing (screenshots)."""
        e = ws.exam(exam)
        vol = cached_volume(ws, exam)
        labels = ws.load_labels(self.labelset, exam) if self.labelset else None
        return AnnotationModel(vol.hu, labels, e.spacing, exam=exam, labelset=self.labelset,
                               rater=self.rater, geometry=vol.geometry)

    def _on_loaded(self, token: int, result) -> bool:
        self._loader = None
        if isinstance(result, AnnotationModel) and token != self._load_token:
            result.close()  # the user moved on while it loaded
            return False
        if token != self._load_token:
            return False
        if isinstance(result, Exception):
            self.report_error(str(result))
            self.slice_view.clear()
            # no stale header of the previous exam above an empty view
            self.exam_title.setText(self.ws.root.name if self.ws else "ictview")
            self.exam_meta.setText("exam not opened")
            self._update_actions()
            return False
        self._bind(result)
        return True

    def _show_loading(self, exam: str) -> None:
        self.slice_view.clear()
        self.slice_view.placeholder.setText(f"Loading {exam}…")

    def _bind(self, model: AnnotationModel) -> None:
        self._attach_model(model)
        self.tool_panel.bind(model)
        self.tool_panel.setEnabled(not model.read_only)
        self.slice_view.set_editable(not model.read_only)
        e = self.ws.exam(model.exam) if self.ws else None
        self._show_volume(model)
        self.viewer.bind(model)
        self._sync_from_model()
        if e is not None:
            sz, sy, sx = e.spacing
            self.exam_title.setText(e.name)
            self.exam_meta.setText(
                f"{e.site} · {e.role} · {e.n_slices} slices · {e.cols}×{e.rows} · "
                f"{sx:.2f}×{sy:.2f}×{sz:.1f} mm"
            )
            warn = ""
            if e.warnings:
                warn = f"<br><span style='color:#d9b45a'>⚠ {'; '.join(e.warnings)}</span>"
            mode = "read-only" if model.read_only else ("preview" if self.preview else "editing")
            self.slice_view.set_info(
                f"<b>{e.name}</b><br>{e.site} · {e.role}{warn}",
                f"{model.labelset or '—'}<br><span style='color:#8a939d'>{mode}</span>",
            )
        if getattr(model, "open_error", ""):
            self.report_error(f"{model.open_error} (shown read-only)", once_key=model.exam)
        if getattr(model, "assist_note", ""):
            self.status.showMessage(model.assist_note, 15000)
            if model.proposal_components is not None:
                model.tool = "fill"  # a click classifies a component
        if model.recovered_steps:
            self.status.showMessage(
                f"Recovered {model.recovered_steps} unsaved stroke(s) from the journal", 8000
            )
        self._report_journal_notices(model)
        existing.offer(self, model)
        if self.ws is not None and not self.preview:
            shown = model.labelset if model.labelset and not getattr(model, "open_error", "") \
                else None
            self.verifier.start(self.ws.root, model.exam, shown)
        self._update_save_state()
        self._update_actions()
        self.slice_view.canvas.setFocus()
        self.exam_opened.emit(model.exam)

    def _on_verified(self, exam: str, problems: list) -> None:
        if problems and self.model is not None and self.model.exam == exam:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            # on the image for as long as the exam is shown, not only in a passing message
            tl, tr = self.slice_view.info()
            self.slice_view.set_info(
                tl + "<br><span style='color:#e5534b'>⚠ failed verification: a file changed "
                "since ictview wrote it (see ictview check)</span>", tr)
            self.report_error(f"{exam} failed verification: {problems[0]}{more}")

    def close_exam(self) -> None:
        """Finish the current exam: ends a stroke in progress and waits for its saves."""
        self._load_token += 1  # a load in flight is dropped when it lands
        if self._loader is not None:
            self._loader.join()
            self._loader = None
            stale = self._loader_result
            if isinstance(stale, AnnotationModel):
                stale.close()  # its queued `loaded` signal will find a stale token
        model, self.model = self.model, None
        if model is None:
            return
        self._detach_model(model)
        try:
            model.close()
        except Exception as err:  # noqa: BLE001 - the journal still holds the work
            self.report_error(f"{model.exam}: could not finish saving ({err})")
        if model.save_error is not None:
            self.report_error(f"{model.exam}: last autosave failed ({model.save_error})")
        elif self.ws is not None and not model.read_only and model.revision > 0:
            self.exam_list.model.set_status(model.exam, labelled_voxels(model), self.rater)
        self.slice_view.clear()
        self.viewer.clear()
        self._update_actions()

    def _fill_clicked(self, z: float, y: float, x: float, plane: str = "axial") -> None:
        # a click on a model's proposal component gives it the current class (issue 16)
        if not assist.classify_click(self, tuple(int(round(v)) for v in (z, y, x))):
            super()._fill_clicked(z, y, x, plane)

    def _step_exam(self, delta: int) -> None:
        names = self.exam_list.visible_exams()
        if not names:
            return
        cur = self.model.exam if self.model else None
        i = names.index(cur) + delta if cur in names else 0
        self.open_exam(names[int(np.clip(i, 0, len(names) - 1))])

    # ---- view -> model (gestures: AnnotationHost) ----------------------------------------------

    def _show_window(self, center: float, width: float, preset: str) -> None:
        self.status.show_window(center, width, preset)
        for name in WINDOW_PRESETS:
            self.actions_by_key[f"preset_{name}"].setChecked(name == preset)

    def set_preset(self, name: str) -> None:
        if self.model is not None:
            self.model.set_window_preset(name)
        else:
            self.slice_view.set_preset(name)
        # pressing the current preset again must leave its (checkable) action checked
        v = self.slice_view
        self._show_window(v.center, v.width, v.preset)

    def undo(self) -> None:
        if self.model is not None:
            self.model.undo()

    def redo(self) -> None:
        if self.model is not None:
            self.model.redo()

    def _toggle(self, attr: str) -> None:
        if self.model is not None:
            setattr(self.model, attr, not getattr(self.model, attr))

    def _toggle_outline(self, on: bool) -> None:
        if self.model is not None:
            self.model.fill_mode = "outline" if on else "fill"
        else:
            self.slice_view.set_outline_mode(on)

    def _toggle_labels_visible(self, on: bool) -> None:
        if self.model is not None:
            self.model.labels_visible = on
        else:
            self.slice_view.label_item.setVisible(on)

    # ---- model -> views -------------------------------------------------------------------------

    def _sync_from_model(self) -> None:
        m, v = self.model, self.slice_view
        if m is None:
            return
        center, width = m.window
        if (center, width) != (v.center, v.width):
            v.set_window(center, width, preset_of(m.window))
        else:
            self._show_window(center, width, preset_of(m.window))
        self._sync_view_tools(m)
        self.actions_by_key["outline"].setChecked(m.fill_mode == "outline")
        self.actions_by_key["labels_visible"].setChecked(m.labels_visible)
        self.actions_by_key["hu_limit"].setChecked(m.hu_limited)
        self._update_actions()
        self._update_save_state()

    def _on_saved(self, revision: int) -> None:
        m = self.model
        if m is None:
            return
        self._update_save_state()
        self.exam_list.model.set_status(m.exam, labelled_voxels(m), self.rater)
        if m.proposal_labels is not None and self.ws is not None:  # started from a model
            rows = [r for r in self.ws.effort(m.labelset) if r["exam"] == m.exam]
            self.exam_list.model.set_effort(m.exam, rows[0] if rows else None)

    def _update_save_state(self) -> None:
        m = self.model
        if m is None:
            self.status.show_save_state("", False)
        elif m.read_only:
            self.status.show_save_state("Read-only", False)
        elif self.preview:
            self.status.show_save_state("Preview (not saved)", False)
        elif getattr(m, "save_error", None) is not None:
            self.status.show_save_state("Autosave failed: edits kept in the journal", True)
        elif m.dirty:
            self.status.show_save_state("Saving…", True)
        else:
            self.status.show_save_state("All changes saved" if m.revision else "Saved", False)

    def _update_actions(self) -> None:
        m = self.model
        has = m is not None
        edit = has and not m.read_only
        self.actions_by_key["undo"].setEnabled(edit and m.can_undo)
        self.actions_by_key["redo"].setEnabled(edit and m.can_redo)
        self.actions_by_key["export"].setEnabled(self.ws is not None)
        for key in ("fit", "zoom_in", "zoom_out"):
            self.actions_by_key[key].setEnabled(has)

    # ---- files ----------------------------------------------------------------------------------

    def _choose_workspace(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open workspace")
        if path:
            self.open_workspace(Path(path))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = recent_workspaces()
        for p in paths:
            self.recent_menu.addAction(p, lambda p=p: self.open_workspace(Path(p)))
        if not paths:
            a = self.recent_menu.addAction("No recent workspaces")
            a.setEnabled(False)

    def _export_labels(self) -> None:
        if self.ws is None:
            return
        if self.model is not None:
            self.model.flush()  # export what the rater sees
        dialog = ExportDialog(self, self.ws, self.labelset, self.model.exam if self.model else None)
        dialog.exec()
        dialog.deleteLater()

    def _open_pacs(self) -> None:
        from ictview.gui.pacs.pacs_dialog import PacsDialog

        if self.model is not None:
            self.model.flush()  # send what the rater sees
        ws = self.ws
        # the labelsets this rater may see (the combo already applies test-retest blinding)
        shown = [self.labelset_combo.itemData(i) for i in range(self.labelset_combo.count())]
        dialog = PacsDialog(self, ws.root if ws else None, self.labelset, shown,
                            ws.sites() if ws else {})
        dialog.imported.connect(lambda _names: self.ws and self.exam_list.load(self.ws,
                                                                               self.labelset))
        dialog.exec()
        dialog.deleteLater()

    # ---- closing (errors: AnnotationHost.report_error) ---------------------------------------

    def shutdown(self) -> None:
        """Close the exam (waiting for saves) and the workspace. Safe to call twice."""
        self.my_labels.shutdown()  # a Train with my labels child process stops
        self.panels.shutdown()
        self.verifier.join()
        self.close_exam()
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        if not self.panels.confirm_close():  # a training run going: leave it, stop it, or stay
            ev.ignore()
            return
        self.shutdown()
        super().closeEvent(ev)


# ---- export dialog ---------------------------------------------------------------------------


class ExportDialog(QtWidgets.QDialog):
    """Labelset + format + folder, then ictview.io.export on a worker thread (DICOM SEG reads
    the source series: seconds per exam); the result is shown in the dialog, not a popup."""

    finished_export = QtCore.Signal(object)  # ExportResult or Exception (queued from the worker)
    progressed = QtCore.Signal(int, int)

    def __init__(self, parent: QtWidgets.QWidget | None, ws: Workspace, labelset: str,
                 exam: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export labels")
        self.ws_root = ws.root
        self.exam = exam
        self.result = None
        self._thread: threading.Thread | None = None
        self.labelset = QtWidgets.QComboBox()
        names = [ls["name"] for ls in ws.labelsets() if ls["exams"]]
        self.labelset.addItems(names or [labelset])
        if labelset in names:
            self.labelset.setCurrentText(labelset)
        self.format = QtWidgets.QComboBox()
        self.format.addItem("NIfTI masks (.nii.gz)", "nifti")
        self.format.addItem("DICOM SEG (.seg.dcm)", "dicom-seg")
        self.only_current = QtWidgets.QCheckBox(f"Only the open exam ({exam})" if exam else "")
        self.only_current.setVisible(bool(exam))
        self.out = QtWidgets.QLineEdit(str(ws.root / "exports"))
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form = QtWidgets.QFormLayout()
        form.addRow("Labelset", self.labelset)
        form.addRow("Format", self.format)
        form.addRow("Folder", row)
        form.addRow("", self.only_current)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setVisible(False)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        SB = QtWidgets.QDialogButtonBox.StandardButton
        self.buttons = QtWidgets.QDialogButtonBox(SB.Ok | SB.Close)
        self.export_button = self.buttons.button(SB.Ok)
        self.export_button.setText("Export")
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.message)
        lay.addWidget(self.buttons)
        self.finished_export.connect(self._done)
        self.progressed.connect(self._progress)
        self.resize(560, self.sizeHint().height())

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Export to", self.out.text())
        if path:
            self.out.setText(path)

    def start(self) -> None:
        if self._thread is not None:
            return
        labelset, fmt = self.labelset.currentText(), self.format.currentData()
        out = Path(self.out.text()).expanduser()
        exams = [self.exam] if self.exam and self.only_current.isChecked() else None
        root = self.ws_root

        def work() -> None:
            try:
                with Workspace.open(root) as ws:  # sqlite: this thread's own connection
                    res = export_labelset(ws, labelset, fmt, out, exams,
                                          lambda i, n, _msg: self.progressed.emit(i, n))
            except (IctviewError, OSError, ValueError) as err:
                res = err
            self.finished_export.emit(res)

        self.export_button.setEnabled(False)
        self.message.setText("Exporting…")
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self._thread = threading.Thread(target=work, name="export-labels", daemon=True)
        self._thread.start()

    def _progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(n, 1))
        self.progress.setValue(i)

    def _done(self, result) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.result = result
        self.export_button.setEnabled(True)
        self.progress.setVisible(False)
        if isinstance(result, Exception):
            self.message.setText(f"<span style='color:#e07a6a'>{result}</span>")
            return
        text = f"Wrote {len(result.written)} file(s) to {self.out.text()}"
        if result.skipped:
            text += f"; skipped {len(result.skipped)}: " + "; ".join(
                f"{e} ({why})" for e, why in result.skipped[:5]
            )
        self.message.setText(text)

    def wait(self) -> None:
        """Block until a running export is done (closing the dialog, tests)."""
        if self._thread is not None:
            self._thread.join()
            QtCore.QCoreApplication.sendPostedEvents(self)

    def done(self, code: int) -> None:  # noqa: D401 - Qt API: closing waits for the worker
        self.wait()
        super().done(code)


def export_labelset(ws: Workspace, labelset: str, fmt: str, out: Path,
                    exams: list[str] | None, progress=None):
    """The core exporter, imported lazily (DICOM SEG pulls in highdicom)."""
    from ictview.io.export import export_labelset as run

    return run(ws, labelset, fmt, out, exams=exams, progress=progress)


# ---- recent workspaces (QSettings) -------------------------------------------------------


def recent_workspaces() -> list[str]:
    value = settings().value("recent_workspaces", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def remember_recent(path: Path) -> None:
    p = str(Path(path).resolve())
    items = [p] + [r for r in recent_workspaces() if r != p]
    s = settings()
    s.setValue("recent_workspaces", items[:MAX_RECENT])
    s.sync()
