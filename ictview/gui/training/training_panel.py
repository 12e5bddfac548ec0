"""Training launcher: start teacher / pseudo-label / student / evaluate / study runs as child
processes and watch them (progress, ETA, loss curves with their legend above the plot, the
validation metric on its own 0..1 axis below, throughput, log tail).

The run is `ictview-train COMMAND --json-progress` in its own process (ictview.study.
training_job): a crash or a CUDA error there cannot take the GUI or unsaved labels with it;
the panel shows the child's last error line. Cancel sends SIGTERM (the trainer writes a
checkpoint and exits 75); Resume relaunches the same command with --resume, also for a run
stopped in an earlier session (from its saved config.toml). Closing the app while a run is
going asks whether to leave it running (it keeps writing its own progress.jsonl) or stop it.

A student launched here uses the ranker C / K_hi / K_lo the radiologist chose for its
pseudolabel run in the threshold inspection (passed as --set ranker.*).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: I001  (before pyqtgraph)

import pyqtgraph as pg

from ictview.errors import IctviewError
from ictview.gui import panel_widgets as pc
from ictview.gui.app import COLORS
from ictview.study import ranker_review as rr
from ictview.study.training_job import (
    COMMANDS,
    RESUMABLE,
    VARIANTS,
    JobProcess,
    JobSpec,
    JobState,
    fmt_duration,
    presets,
    read_config,
    read_history,
    start_job,
    stopped_message,
    toml_value,
)
from ictview.store.workspace import Workspace

Qt = QtCore.Qt
POLL_MS = 150
STOP_WAIT_S = 120.0
KIND_TO_VARIANT = {"student": "ss", "no-ranker": "no-ranker", "image-oracle": "image-oracle",
                   "pixel-oracle": "pixel-oracle"}
MODEL_KINDS = ("teacher", *KIND_TO_VARIANT)
RANKER_KEYS = ("ranker.top_percent", "ranker.k_hi", "ranker.k_lo")
CUDA_PROBE = "import torch; print(torch.cuda.is_available())"
# (JobState field, legend name, colour, width, pen style) of the loss curves
LOSS_CURVES = (
    ("loss", "total", "#5aa9e6", 2.0, Qt.PenStyle.SolidLine),
    ("seg_loss", "segmentation", "#7fc18a", 1.2, Qt.PenStyle.DashLine),
    ("cls_loss", "classification", "#f28e2b", 1.2, Qt.PenStyle.DashLine),
)
VAL_COLOR = "#c27ae0"
VAL_METRICS = {"pixel_ap": "pixel AP", "exam_auc": "exam AUC"}
HELP = {
    "teacher": "PatchFCN from scratch on the labeled role's pixel labels (the baseline).",
    "pseudolabel": "The teacher predicts every unlabeled image (probability maps and image "
                   "probabilities) for the ranker.",
    "student": "Noisy Student from the teacher's weights on labeled + ranker pseudo-labels "
               "(0.6 : 0.4 per batch), or an oracle / ablation variant.",
    "evaluate": "Predict the validation and test roles and write metrics.json.",
    "study": "The whole paper: baseline, contrast variants, pseudo-labels, student, "
             "oracles, ablation, evaluation.",
}


def legend_html() -> str:
    """The loss curves' legend as one line of text (solid / dashed line samples)."""
    parts = []
    for _key, name, color, _w, style in LOSS_CURVES:
        sample = "━━━" if style == Qt.PenStyle.SolidLine else "╍╍╍"
        parts.append(f"<span style='color:{color}; font-weight:600'>{sample}</span>&nbsp;"
                     f"<span style='color:{COLORS['text']}'>{name}</span>")
    return "&nbsp;&nbsp;&nbsp;&nbsp;".join(parts)


class ConfigTree(QtWidgets.QTreeWidget):
    """The preset's TOML as section / key / value rows; edited values become --set overrides."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Key", "Value"])
        self.setRootIsDecorated(True)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked
                             | QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed
                             | QtWidgets.QAbstractItemView.EditTrigger.SelectedClicked)
        self._original: dict[str, str] = {}
        self.itemChanged.connect(self._mark)

    def load(self, data: dict) -> None:
        self.blockSignals(True)
        self.clear()
        self._original = {}
        for section, keys in data.items():
            if not isinstance(keys, dict):
                continue
            top = QtWidgets.QTreeWidgetItem([f"[{section}]", ""])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.addTopLevelItem(top)
            for key, value in keys.items():
                text = toml_value(value)
                it = QtWidgets.QTreeWidgetItem([key, text])
                it.setData(0, Qt.ItemDataRole.UserRole, f"{section}.{key}")
                it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                            | Qt.ItemFlag.ItemIsEditable)
                top.addChild(it)
                self._original[f"{section}.{key}"] = text
            top.setExpanded(section in ("train", "ranker"))
        self.blockSignals(False)

    def items(self):
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            for j in range(top.childCount()):
                yield top.child(j)

    def set_value(self, dotted: str, text: str) -> bool:
        for it in self.items():
            if it.data(0, Qt.ItemDataRole.UserRole) == dotted:
                it.setText(1, text)
                return True
        return False

    def value(self, dotted: str) -> str | None:
        for it in self.items():
            if it.data(0, Qt.ItemDataRole.UserRole) == dotted:
                return it.text(1)
        return None

    def _mark(self, it: QtWidgets.QTreeWidgetItem, _col: int) -> None:
        key = it.data(0, Qt.ItemDataRole.UserRole)
        if key is None:
            return
        changed = it.text(1).strip() != self._original.get(key)
        font = it.font(1)
        font.setBold(changed)
        self.blockSignals(True)
        it.setFont(1, font)
        it.setForeground(1, QtGui.QBrush(QtGui.QColor("#e0b25a" if changed else COLORS["text"])))
        self.blockSignals(False)

    def overrides(self, skip: tuple[str, ...] = ()) -> list[str]:
        out = []
        for it in self.items():
            key = it.data(0, Qt.ItemDataRole.UserRole)
            text = it.text(1).strip()
            if key not in skip and text != self._original.get(key):
                out.append(f"{key}={text}")
        return out


class TrainingPanel(QtWidgets.QWidget):
    job_started = QtCore.Signal(str)  # output run
    job_finished = QtCore.Signal(str, str)  # status, message
    progressed = QtCore.Signal()

    def __init__(self, ws_root: Path, *, headless: bool = False, parent=None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.ws_root = Path(ws_root)
        self.headless = headless
        self.python = sys.executable
        self.job: JobProcess | None = None
        self.spec: JobSpec | None = None
        self.state = JobState()
        self.last_spec: JobSpec | None = None  # the job to resume
        self.cuda_available: bool | None = None
        self._probe: QtCore.QProcess | None = None
        self._runs: list[dict] = []
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._build()
        self.refresh_runs()
        self._load_preset()
        self._command_changed()
        if not headless:
            self._probe_cuda()

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        # left: the form
        self.command = QtWidgets.QComboBox()
        for c in COMMANDS:
            if c == "finetune":  # started by Labels > Train with my labels (gui/annotate/train_my_labels.py)
                continue
            self.command.addItem(c.capitalize() if c != "pseudolabel" else "Pseudo-label", c)
        self.command_help = pc.muted()
        self.run_name = QtWidgets.QLineEdit()
        self.run_name.setPlaceholderText("run name")
        self.teacher = QtWidgets.QComboBox()
        self.pseudolabels = QtWidgets.QComboBox()
        self.variant = QtWidgets.QComboBox()
        self.variant.addItems(VARIANTS)
        self.model_run = QtWidgets.QComboBox()
        self.preset = QtWidgets.QComboBox()
        for name, path in presets().items():
            self.preset.addItem(name, str(path))
        i = self.preset.findText("tiny")
        self.preset.setCurrentIndex(max(i, 0))
        self.device_cpu = QtWidgets.QRadioButton("CPU")
        self.device_cuda = QtWidgets.QRadioButton("CUDA")
        self.device_cpu.setChecked(True)
        self.device_cuda.setEnabled(False)
        self.device_cuda.setToolTip("Checking for a CUDA GPU…" if not self.headless
                                    else "GPU detection is off in this mode")
        dev = QtWidgets.QHBoxLayout()
        dev.addWidget(self.device_cpu)
        dev.addWidget(self.device_cuda)
        self.device_note = pc.muted("", wrap=False)
        dev.addWidget(self.device_note, 1)

        self.form = QtWidgets.QFormLayout()
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.addRow("Command", self.command)
        self.form.addRow("", self.command_help)
        self.form.addRow("Run", self.run_name)
        self.form.addRow("Model run", self.model_run)
        self.form.addRow("Teacher", self.teacher)
        self.form.addRow("Pseudo-labels", self.pseudolabels)
        self.form.addRow("Variant", self.variant)
        self.form.addRow("Preset", self.preset)
        self.form.addRow("Device", dev)

        # the ranker choice the student will use
        self.ranker_box = QtWidgets.QGroupBox("RANKER (STUDENT)")
        self.c_spin, self.khi_spin, self.klo_spin = pc.ranker_spins(c_step=5.0)
        rl = QtWidgets.QGridLayout(self.ranker_box)
        for col, (lab, w) in enumerate((("C", self.c_spin), ("K hi", self.khi_spin),
                                        ("K lo", self.klo_spin))):
            rl.addWidget(QtWidgets.QLabel(lab), 0, 2 * col)
            rl.addWidget(w, 0, 2 * col + 1)
        self.ranker_note = pc.muted()
        rl.addWidget(self.ranker_note, 1, 0, 1, 6)

        self.config_tree = ConfigTree()
        self.config_tree.setMinimumHeight(160)
        self.reset_config = QtWidgets.QPushButton("Reset")
        self.reset_config.setToolTip("Back to the preset's values")

        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.setObjectName("primaryButton")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Ask the run to save a checkpoint and stop (SIGTERM)")
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.resume_button.setToolTip("Continue the stopped run from its last checkpoint")
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        buttons.addWidget(self.resume_button, 1)

        cfg_head = QtWidgets.QHBoxLayout()
        cfg_head.addWidget(pc.title("Config (double-click a value to change it)"), 1)
        cfg_head.addWidget(self.reset_config)

        self.runs_table = pc.table(["Run", "Kind", "Status", "Parent", "Updated"], stretch=3)
        self.runs_table.setMinimumHeight(190)

        left = QtWidgets.QFrame()
        left.setObjectName("sidePanel")
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(10, 4, 10, 10)
        ll.addWidget(pc.title("New run"))
        ll.addLayout(self.form)
        ll.addWidget(self.ranker_box)
        ll.addLayout(cfg_head)
        ll.addWidget(self.config_tree, 3)
        ll.addLayout(buttons)
        ll.addWidget(pc.title("Runs in this workspace"))
        ll.addWidget(self.runs_table, 2)

        # right: progress
        self.status_title = QtWidgets.QLabel("No run")
        self.status_title.setObjectName("examTitle")
        self.status_badge = QtWidgets.QLabel("")
        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.status_title)
        head.addWidget(self.status_badge)
        head.addStretch(1)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumHeight(22)
        self.stats = QtWidgets.QLabel("")
        self.stats.setTextFormat(Qt.TextFormat.RichText)
        self.error = pc.error_banner()
        self.loss_plot = pc.plot_widget("step", "loss", "Training loss")
        self.curves = {
            key: self.loss_plot.plot([], [], pen=pg.mkPen(color, width=width, style=style),
                                     name=name)
            for key, name, color, width, style in LOSS_CURVES
        }
        # the legend is a row of its own above the plot: inside the plot it hid the curves
        self.legend = QtWidgets.QLabel(legend_html())
        self.legend.setObjectName("lossLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        # validation on its own axis (0..1, the loss is not), x linked to the loss plot
        self.val_plot = pc.plot_widget("step", "validation", "Validation")
        self.val_plot.setXLink(self.loss_plot)
        self.val_plot.setYRange(0, 1, padding=0.02)
        self.val_plot.getPlotItem().setMouseEnabled(y=False)
        self.val_plot.setMinimumHeight(140)
        self.val_curve = self.val_plot.plot([], [], pen=pg.mkPen(VAL_COLOR, width=1.5),
                                            symbol="o", symbolSize=6, symbolBrush=VAL_COLOR,
                                            symbolPen=None, name="validation")
        self.log_view = QtWidgets.QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(400)
        self.log_view.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(9.0)
        self.log_view.setFont(font)
        self.log_view.setStyleSheet("background: #0f1113; border: 1px solid #2c3238;")
        self.command_line = pc.muted()
        self.command_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        right = QtWidgets.QWidget()
        rl2 = QtWidgets.QVBoxLayout(right)
        rl2.setContentsMargins(12, 8, 12, 10)
        rl2.addWidget(pc.title("Progress"))
        rl2.addLayout(head)
        rl2.addWidget(self.progress)
        rl2.addWidget(self.stats)
        rl2.addWidget(self.error)
        rl2.addWidget(self.legend)
        rl2.addWidget(self.loss_plot, 3)
        rl2.addWidget(self.val_plot, 2)
        rl2.addWidget(pc.title("Log"))
        rl2.addWidget(self.log_view, 2)
        rl2.addWidget(self.command_line)

        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([610, 990])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.command.currentIndexChanged.connect(self._command_changed)
        self.teacher.currentIndexChanged.connect(self._teacher_changed)
        self.pseudolabels.currentIndexChanged.connect(self._update_ranker_choice)
        self.variant.currentIndexChanged.connect(self._suggest_run_name)
        self.preset.currentIndexChanged.connect(self._load_preset)
        self.reset_config.clicked.connect(self._load_preset)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self.runs_table.itemSelectionChanged.connect(self._run_selected)
        self._update_buttons()

    # ---- workspace runs -------------------------------------------------------------------------

    def _open_ws(self) -> Workspace:
        return Workspace.open(self.ws_root)

    def refresh_runs(self) -> None:
        try:
            with self._open_ws() as ws:
                self._runs = ws.runs()
                finals = {r["name"] for r in self._runs
                          if (ws.run_dir(r["name"]) / "checkpoints" / "final.pt").is_file()}
        except IctviewError as e:
            self.show_error(str(e))
            return
        self._finals = finals
        keep = self._selected_run()
        t = self.runs_table
        # rebuilding the rows is no choice of the reader's: no selection signal, or the run
        # that just ended (its stop line, its log) would be replaced by a row's history
        t.blockSignals(True)
        t.selectionModel().blockSignals(True)
        t.setSortingEnabled(False)
        t.setRowCount(len(self._runs))
        for i, r in enumerate(reversed(self._runs)):
            color = pc.STATUS_COLORS.get(r["status"], COLORS["text"])
            t.setItem(i, 0, pc.cell(r["name"]))
            t.setItem(i, 1, pc.cell(r["kind"]))
            t.setItem(i, 2, pc.cell(r["status"], color=color))
            t.setItem(i, 3, pc.cell(r["parent"] or ""))
            t.setItem(i, 4, pc.cell((r["updated_at"] or "")[5:16].replace("T", " "),
                                    sort=r["updated_at"] or "", tip=r["updated_at"] or ""))
        t.clearSelection()
        if keep is not None:  # the same run, wherever its row went
            self.select_run(keep["name"])
        t.selectionModel().blockSignals(False)
        t.blockSignals(False)
        self._fill_run_combos()

    def _fill_run_combos(self) -> None:
        teachers = [r["name"] for r in self._runs
                    if r["kind"] in MODEL_KINDS and r["name"] in self._finals]
        models = teachers
        for combo, names in ((self.teacher, teachers), (self.model_run, models)):
            keep = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            if keep in names:
                combo.setCurrentText(keep)
            elif combo is self.teacher and "baseline" in names:
                combo.setCurrentText("baseline")
            combo.blockSignals(False)
        self._teacher_changed()

    def _teacher_changed(self) -> None:
        teacher = self.teacher.currentText()
        pls = [r["name"] for r in self._runs if r["kind"] == "pseudolabel"
               and (not teacher or r["parent"] == teacher) and r["status"] == "finished"]
        keep = self.pseudolabels.currentData()
        self.pseudolabels.blockSignals(True)
        self.pseudolabels.clear()
        for name in pls:
            self.pseudolabels.addItem(name, name)
        if teacher and f"{teacher}-pl" not in pls:
            self.pseudolabels.addItem(f"new: {teacher}-pl (made first)", "")
        i = self.pseudolabels.findData(keep)
        self.pseudolabels.setCurrentIndex(max(i, 0))
        self.pseudolabels.blockSignals(False)
        self._update_ranker_choice()
        self._suggest_run_name()

    def _update_ranker_choice(self) -> None:
        pl = self.pseudolabels.currentData() or ""
        choice = None
        if pl:
            try:
                with self._open_ws() as ws:
                    choice = rr.load_choice(ws, pl)
            except IctviewError:
                choice = None
        if choice is not None:
            self.c_spin.setValue(choice.c_percent)
            self.khi_spin.setValue(choice.k_hi)
            self.klo_spin.setValue(choice.k_lo)
            self.ranker_note.setText(
                f"Chosen by {choice.chosen_by} on {choice.chosen_at[:10]} in the threshold "
                f"inspection of {pl}.")
            self.ranker_note.setStyleSheet("color: #7fc18a;")
        else:
            cfg = self._preset_data.get("ranker", {}) if hasattr(self, "_preset_data") else {}
            self.c_spin.setValue(float(cfg.get("top_percent", rr.DEFAULT_C)))
            self.khi_spin.setValue(float(cfg.get("k_hi", rr.DEFAULT_K_HI)))
            self.klo_spin.setValue(float(cfg.get("k_lo", rr.DEFAULT_K_LO)))
            self.ranker_note.setText("No C chosen for these pseudo-labels yet: the paper's C "
                                     "is used (Training ▸ Threshold inspection to choose).")
            self.ranker_note.setStyleSheet("")

    def _load_preset(self) -> None:
        name = self.preset.currentText()
        try:
            self._preset_data = read_config(self.preset.currentData() or name) if name else {}
        except IctviewError as e:
            self._preset_data = {}
            self.show_error(str(e))
        self.config_tree.load(self._preset_data)
        device = str(self._preset_data.get("train", {}).get("device", "auto"))
        if device.startswith("cuda") and self.device_cuda.isEnabled():
            self.device_cuda.setChecked(True)
        elif device == "cpu" or not self.device_cuda.isEnabled():
            self.device_cpu.setChecked(True)
        self._update_ranker_choice()

    def _command_changed(self) -> None:
        c = self.command.currentData()
        self.command_help.setText(HELP.get(c, ""))
        show = {
            "Run": c in ("teacher", "pseudolabel", "student", "study"),
            "Model run": c == "evaluate",
            "Teacher": c in ("pseudolabel", "student"),
            "Pseudo-labels": c == "student",
            "Variant": c == "student",
        }
        for label, visible in show.items():
            self._set_row_visible(label, visible)
        self.ranker_box.setVisible(c == "student")
        self.run_name.setPlaceholderText("prefix of every run name (optional)" if c == "study"
                                         else "run name")
        self._suggest_run_name()

    def _set_row_visible(self, label: str, visible: bool) -> None:
        for row in range(self.form.rowCount()):
            item = self.form.itemAt(row, QtWidgets.QFormLayout.ItemRole.LabelRole)
            if item is not None and item.widget() is not None and item.widget().text() == label:
                self.form.setRowVisible(row, visible)

    def _suggest_run_name(self) -> None:
        c = self.command.currentData()
        names = {r["name"] for r in self._runs}
        if c == "teacher":
            base = "baseline"
        elif c == "student":
            base = self.variant.currentText()
        elif c == "pseudolabel":
            base = f"{self.teacher.currentText()}-pl"
        else:
            self.run_name.setText("")
            return
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        self.run_name.setText(name)

    # ---- the job --------------------------------------------------------------------------------

    def build_spec(self) -> JobSpec:
        c = self.command.currentData()
        skip: tuple[str, ...] = RANKER_KEYS if c == "student" else ()
        overrides = self.config_tree.overrides(skip)
        if c == "student":
            overrides += rr.student_overrides(
                (self.c_spin.value(), self.khi_spin.value(), self.klo_spin.value()))
        spec = JobSpec(
            command=c, workspace=self.ws_root, run=self.run_name.text().strip(),
            config=self.preset.currentData() or self.preset.currentText(),
            overrides=overrides,
            device="cuda" if self.device_cuda.isChecked() else "cpu",
            teacher=self.teacher.currentText() if c in ("pseudolabel", "student") else "",
            pseudolabels=(self.pseudolabels.currentData() or "") if c == "student" else "",
            variant=self.variant.currentText(),
        )
        if c == "evaluate":
            spec.run = self.model_run.currentText()
        return spec

    def start(self, spec: JobSpec | None = None) -> bool:
        """Start `spec` (default: the form). False (with the reason shown) if it cannot."""
        if self.running():
            self.show_error("A run is already going: cancel it first or wait for it to finish.")
            return False
        try:
            spec = spec or self.build_spec()
            spec.check()
            job = start_job(spec, self.python)
        except IctviewError as e:
            self.show_error(str(e))
            return False
        self.job, self.spec, self.last_spec = job, spec, spec
        keep_curves = self.state.loss if spec.resume else {}
        self.state = JobState(command=spec.command, status="running", run=spec.output_run)
        if spec.resume:
            hist = read_history(self.ws_root, spec.output_run)
            self.state.loss = hist.loss or keep_curves
        self.error.hide()
        self.log_view.clear()
        self.command_line.setText("$ ictview-train " + " ".join(job.argv[3:]))
        self._timer.start()
        self._render()
        self._update_buttons()
        self.job_started.emit(spec.output_run)
        return True

    def running(self) -> bool:
        return self.job is not None and self.job.running

    def cancel(self) -> None:
        """Ask the child to checkpoint and stop (it exits 75 a step later)."""
        if self.running() and self.job.terminate():
            self.state.status = "stopping"
            self.state.log.append("stop requested (SIGTERM): saving a checkpoint…")
            self._render()
            self._update_buttons()

    def resume(self) -> bool:
        spec = self._resume_spec()
        if spec is None:
            self.show_error("Nothing to resume: select an interrupted run.")
            return False
        return self.start(spec)

    def _resume_spec(self) -> JobSpec | None:
        if self.running():
            return None
        if self.last_spec is not None and self.state.status in ("interrupted", "failed") and (
                self.last_spec.command in RESUMABLE or self.last_spec.command in ("study",
                                                                                   "pseudolabel")):
            if self.last_spec.command in RESUMABLE and not self._has_latest(self.last_spec.output_run):
                return None
            return self.last_spec.resumed()
        row = self._selected_run()
        if row is None or row["status"] not in ("interrupted", "failed", "running"):
            return None
        return self.spec_from_catalog(row)

    def _has_latest(self, run: str) -> bool:
        return (self.ws_root / "runs" / run / "checkpoints" / "latest.pt").is_file()

    def spec_from_catalog(self, row: dict) -> JobSpec | None:
        """Resume a run stopped in an earlier session: its own saved config.toml, --resume."""
        name, kind = row["name"], row["kind"]
        cfg = self.ws_root / "runs" / name / "config.toml"
        if kind not in MODEL_KINDS or not cfg.is_file() or not self._has_latest(name):
            return None
        spec = JobSpec("teacher" if kind == "teacher" else "student", self.ws_root, run=name,
                       config=str(cfg), resume=True,
                       device="cuda" if self.device_cuda.isChecked() else "cpu")
        if kind != "teacher":
            spec.teacher = row["parent"] or ""
            spec.variant = KIND_TO_VARIANT[kind]
            spec.pseudolabels = self._pseudolabel_run_of(name)
        return spec

    def _pseudolabel_run_of(self, run: str) -> str:
        path = self.ws_root / "runs" / run / "progress.jsonl"
        try:
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if rec.get("event") == "start":
                    for s in rec.get("sources") or []:
                        pl = s.get("pseudolabel_run") if isinstance(s, dict) else None
                        if pl:
                            return str(pl)
        except (OSError, ValueError):
            pass
        return ""

    def poll(self) -> None:
        """Read the child's new lines; on exit, show how it ended."""
        if self.job is None:
            self._timer.stop()
            return
        out, err, rc = self.job.poll()
        started = False
        for line in out:
            rec = self.state.feed_stdout(line)
            started = started or (rec is not None and rec.get("event") == "start")
        for line in err:
            self.state.feed_stderr(line)
        if rc is not None:
            self._timer.stop()
            self.state.finish(rc)
            self._render()
            self.refresh_runs()
            self._update_buttons()
            if self.state.status == "failed":
                self.show_error(self.state.message)
            self.job_finished.emit(self.state.status, self.state.message)
            return
        if started:  # the run is in the catalog now
            self.refresh_runs()
            self._update_buttons()
        if out or err:
            self._render()
            self.progressed.emit()

    def close_jobs(self, policy: str) -> None:
        """The app is closing: "leave" the run going on its own, or "stop" it (checkpoint)."""
        self._timer.stop()
        if not self.running():
            return
        if policy == "leave":
            self.job.detach()
            return
        self.job.terminate()
        if self.job.wait(STOP_WAIT_S) is None:
            self.job.kill()
            self.job.wait(10)
        self.poll()

    def ask_close_policy(self) -> str:
        """'leave', 'stop' or 'cancel' (keep the app open)."""
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("ictview — training in progress")
        box.setText(f"The run '{self.state.run}' is still training.")
        box.setInformativeText("Leave it running in the background (it keeps its own log and "
                               "checkpoints), or stop it now (a checkpoint is saved; Resume "
                               "continues it later)?")
        leave = box.addButton("Leave running", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop run", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(leave)
        box.exec()
        clicked = box.clickedButton()
        return "leave" if clicked is leave else "stop" if clicked is stop else "cancel"

    # ---- view ----------------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        self.error.setText(f"<b>Problem:</b> {message}")
        self.error.show()

    def _run_selected(self) -> None:
        self._update_buttons()
        if self.running():
            return
        row = self._selected_run()
        if row is None:
            return
        self.show_history(row["name"])

    def _selected_run(self) -> dict | None:
        rows = self.runs_table.selectionModel().selectedRows() if self.runs_table.model() else []
        if not rows:
            return None
        name = self.runs_table.item(rows[0].row(), 0).text()
        return next((r for r in self._runs if r["name"] == name), None)

    def select_run(self, name: str) -> bool:
        for i in range(self.runs_table.rowCount()):
            if self.runs_table.item(i, 0).text() == name:
                self.runs_table.selectRow(i)
                return True
        return False

    def show_history(self, run: str) -> None:
        """Show a past run (its progress.jsonl): curve, last progress, log."""
        self.state = read_history(self.ws_root, run)
        row = next((r for r in self._runs if r["name"] == run), None)
        if row is not None:
            self.state.status = row["status"]
            self.state.run = run
            self.state.kind = row["kind"]
            if row["status"] == "interrupted" and self._has_latest(run) and self.state.total:
                # what the run said when it stopped, still true until it is resumed
                self.state.message = stopped_message(self.state.done, self.state.total)
        self.error.hide()
        self.log_view.clear()
        self.command_line.setText("")
        self._render()

    def _render(self) -> None:
        st = self.state
        run = st.run or (self.spec.output_run if self.spec else "")
        kind = st.kind or (self.spec.command if self.spec else "")
        self.status_title.setText(f"{run}" if run else "No run")
        color = pc.STATUS_COLORS.get(st.status, COLORS["text"])
        self.status_badge.setText(f"<span style='color:{COLORS['muted']}'>{kind}</span>"
                                  f"&nbsp;&nbsp;<span style='color:{color}; font-weight:600'>"
                                  f"{st.status}</span>")
        self.progress.setValue(int(round(st.fraction * 1000)))
        if st.total:
            unit = "step" if st.phase == "train" else "exam"
            self.progress.setFormat(f"{unit} {st.done} / {st.total}   ({st.fraction:.0%})")
        else:
            self.progress.setFormat(st.stage or "")
        bits = []
        if st.active:
            bits.append(f"ETA <b>{fmt_duration(st.eta_s)}</b>")
        if math.isfinite(st.rate):
            bits.append(f"{st.rate:,.0f} {st.rate_unit}")
        if st.stage:
            bits.append(f"study stage: {st.stage}")
        if st.last_checkpoint:
            bits.append(f"checkpoint {st.last_checkpoint}")
        if st.message and not st.active:
            bits.append(st.message)
        self.stats.setText("  ·  ".join(bits))
        curve = st.loss.get(st.run) or (next(iter(st.loss.values())) if st.loss else [])
        xs = [p.step for p in curve]
        for key, item in self.curves.items():
            item.setData(xs, [getattr(p, key) for p in curve])
        if curve:
            self.loss_plot.getPlotItem().setTitle(f"Training loss — {st.run}",
                                                  color=COLORS["text"], size="10pt")
        self._render_validation(st)
        text = "\n".join(st.log)
        if text != self.log_view.toPlainText():
            self.log_view.setPlainText(text)
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())

    def _render_validation(self, st: JobState) -> None:
        points = st.validation.get(st.run) or (next(iter(st.validation.values()))
                                               if st.validation else [])
        name = VAL_METRICS.get(st.val_metric, st.val_metric or "validation")
        self.val_curve.setData([p[0] for p in points], [p[1] for p in points])
        ax = self.val_plot.getPlotItem().getAxis("left")
        ax.setLabel(name, color=COLORS["muted"])
        finite = [p for p in points if math.isfinite(p[1])]
        if finite:
            best = max(finite, key=lambda p: p[1])
            text = (f"Validation {name} — last {finite[-1][1]:.3f} at step {finite[-1][0]}, "
                    f"best {best[1]:.3f} at step {best[0]}")
        elif st.records or st.run:
            text = (f"Validation {name} — none logged yet (every train.val_every_epochs "
                    "epochs; 0 turns it off)")
        else:
            text = "Validation"
        self.val_plot.getPlotItem().setTitle(text, color=COLORS["text"], size="10pt")

    def _update_buttons(self) -> None:
        busy = self.running()
        self.start_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and self.state.status == "running")
        self.resume_button.setEnabled(not busy and self._resume_spec() is not None)

    # ---- CUDA detection (in a child: the GUI never imports torch) ---------------------------------

    def _probe_cuda(self) -> None:
        p = QtCore.QProcess(self)
        p.setProgram(self.python)
        p.setArguments(["-c", CUDA_PROBE])
        p.finished.connect(lambda code, _s: self._probe_done(p, code))
        self._probe = p
        self.device_note.setText("checking for a GPU…")
        p.start()

    def _probe_done(self, p: QtCore.QProcess, code: int) -> None:
        out = bytes(p.readAllStandardOutput()).decode(errors="replace").strip()
        self.cuda_available = code == 0 and out.endswith("True")
        self.device_cuda.setEnabled(bool(self.cuda_available))
        self.device_cuda.setToolTip("" if self.cuda_available else "No CUDA GPU found")
        self.device_note.setText("" if self.cuda_available else "no CUDA GPU found")
        self._probe = None
        p.deleteLater()
        self._load_preset()

    def shutdown(self, policy: str = "stop") -> None:
        self.close_jobs(policy)
        if self._probe is not None:
            self._probe.kill()
            self._probe.waitForFinished(2000)
            self._probe = None
