"""Metrics dashboard: pick runs; exam-level ROC and pixel-level precision-recall curves on
the test role (pyqtgraph); Table 1 with bootstrap 95% CIs and the paired tests (p values)
from ictview.stats; export of the full report (report.md / .html / .json, plots).

Computing runs on a worker thread (gather + build_report: bootstraps take seconds); the
export writes the report already computed for the same runs and settings, or runs
`run_report` when the selection changed.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets  # noqa: I001  (before pyqtgraph)

import pyqtgraph as pg

from ictview.errors import IctviewError
from ictview.gui import panel_widgets as pc
from ictview.gui.app import COLORS
from ictview.gui.workers import Worker
from ictview.stats.effort import effort_by_run
from ictview.store.workspace import Workspace

Qt = QtCore.Qt
MODEL_KINDS = ("teacher", "student", "no-ranker", "image-oracle", "pixel-oracle",
               "external", "finetune")  # external: `ictview import-predictions`; finetune: issue 16
DEFAULT_N_BOOT = 200
METRICS = (("dice", "Dice (subset)"), ("dice_fixed", "Dice @ 0.5 (subset)"),
           ("ap", "Pixel AP (subset)"), ("auc", "Exam AUC"))


def est_text(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    if e.get("ci_low") is None or e.get("ci_high") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f}  [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def compute(ws_root: Path, runs: list[str], n_boot: int, emit) -> object:
    """Worker: gather + build_report; progress through `emit((i, n, text))`."""
    from ictview.stats.report import build_report
    from ictview.stats.report_data import gather

    def progress(i: int, n: int, text: str) -> None:
        emit((i, n, text))

    with Workspace.open(ws_root) as ws:
        data = gather(ws, runs, progress)
    return build_report(data, n_boot=n_boot, seed=0, progress=progress)


def export(ws_root: Path, runs: list[str], n_boot: int, out: Path, report, emit) -> dict:
    """Worker: write the computed report, or compute and write it (run_report)."""
    from ictview.stats.report import run_report, write_report

    if report is not None:
        return write_report(report, out)

    def progress(i: int, n: int, text: str) -> None:
        emit((i, n, text))

    return run_report(ws_root, runs, out, n_boot=n_boot, seed=0, progress=progress)["files"]


class Dashboard(QtWidgets.QWidget):
    computed = QtCore.Signal(object)
    exported = QtCore.Signal(object)
    _progress = QtCore.Signal(object)

    def __init__(self, ws_root: Path, *, headless: bool = False, parent=None):
        super().__init__(parent)
        self.ws_root = Path(ws_root)
        self.headless = headless
        self.report = None
        self.report_key: tuple | None = None
        self.worker: Worker | None = None
        self.last_files: dict = {}
        self._build()
        self.load_runs()

    def _build(self) -> None:
        self.run_list = QtWidgets.QListWidget()
        self.run_list.setMinimumHeight(160)
        self.n_boot = QtWidgets.QSpinBox(minimum=10, maximum=10000, singleStep=100,
                                         value=DEFAULT_N_BOOT)
        self.n_boot.setToolTip("Bootstrap resamples for the CIs and paired tests (the paper: "
                               "1000; fewer is faster while exploring)")
        self.compute_button = QtWidgets.QPushButton("Compute")
        self.export_button = QtWidgets.QPushButton("Export report…")
        self.export_button.setEnabled(False)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = pc.muted()
        self.error = pc.error_banner()
        self.notes = pc.muted()
        left = QtWidgets.QFrame()
        left.setObjectName("sidePanel")
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(10, 4, 6, 10)
        ll.addWidget(pc.title("Runs"))
        ll.addWidget(pc.muted("Tick the runs to compare; table order is list order, "
                              "deltas are later − earlier."))
        ll.addWidget(self.run_list, 1)
        form = QtWidgets.QFormLayout()
        form.addRow("Bootstrap samples", self.n_boot)
        ll.addLayout(form)
        ll.addWidget(self.compute_button)
        ll.addWidget(self.export_button)
        ll.addWidget(self.progress)
        ll.addWidget(self.status)
        ll.addWidget(self.error)
        ll.addWidget(pc.title("Notes"))
        ll.addWidget(self.notes)
        # model-assisted labeling (issue 16): per run, median Dice of its proposals vs the
        # saved labels and minutes per exam
        self.effort = pc.muted()
        self.effort.setTextFormat(Qt.TextFormat.RichText)
        ll.addWidget(pc.title("Model-assisted labeling"))
        ll.addWidget(self.effort)
        ll.addStretch(1)
        left.setMinimumWidth(300)
        left.setMaximumWidth(380)

        self.roc_plot = pc.plot_widget("1 − specificity (false-positive rate)",
                                       "sensitivity", "Exam-level ROC — test role")
        self.pr_plot = pc.plot_widget("recall", "precision",
                                      "Pixel precision–recall — pixel-labeled test subset")
        for p in (self.roc_plot, self.pr_plot):
            p.setXRange(0, 1, padding=0.02)
            p.setYRange(0, 1, padding=0.02)
            p.setAspectLocked(False)
            p.setMinimumHeight(300)
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen("#4a535d", style=Qt.PenStyle.DotLine))
        self.roc_legend = self.roc_plot.addLegend(offset=(-10, -10), labelTextColor=COLORS["text"])
        self.pr_legend = self.pr_plot.addLegend(offset=(-10, 10), labelTextColor=COLORS["text"])
        plots = QtWidgets.QHBoxLayout()
        plots.addWidget(self.roc_plot)
        plots.addWidget(self.pr_plot)

        self.table1 = pc.table(["Run", "Dice (subset)", "Dice @ 0.5", "Pixel AP (subset)",
                                "Exam AUC",
                                "Sensitivity @ op", "Specificity @ op"], stretch=0)
        self.table1.setMinimumHeight(60)
        self.table1_title = pc.title("Table 1. Performance on the test role (95% bootstrap CI)")
        self.cmp = pc.table(["Comparison (b − a)", "Metric", "Δ  [95% CI]", "Z", "p"], stretch=0)
        self.cmp.setMinimumHeight(120)
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(10, 6, 10, 10)
        rl.addLayout(plots, 3)
        rl.addWidget(self.table1_title)
        rl.addWidget(self.table1)
        rl.addWidget(pc.title("Paired bootstrap tests (Z = Δ / sd of bootstrap Δ, two-sided p)"))
        rl.addWidget(self.cmp, 2)

        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([340, 1260])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.compute_button.clicked.connect(self.compute)
        self.export_button.clicked.connect(lambda: self.export())
        self._progress.connect(self._on_progress)

    # ---- runs -------------------------------------------------------------------------------

    def load_runs(self) -> None:
        try:
            with Workspace.open(self.ws_root) as ws:
                test = {e.name for e in ws.exams(role="test")}
                rows = [r for r in ws.runs() if r["kind"] in MODEL_KINDS
                        and set(ws.predicted_exams(r["name"])) & test]
                self.show_effort(effort_by_run(ws))
        except IctviewError as e:
            self.show_error(str(e))
            return
        self.run_list.clear()
        for r in rows:
            it = QtWidgets.QListWidgetItem(f"{r['name']}   ({r['kind']})")
            it.setData(Qt.ItemDataRole.UserRole, r["name"])
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            default = r["name"] in ("baseline", "ss") or len(rows) <= 3
            it.setCheckState(Qt.CheckState.Checked if default else Qt.CheckState.Unchecked)
            self.run_list.addItem(it)
        if not rows:
            self.status.setText("No run has test-role predictions yet: evaluate a model first "
                                "(Training ▸ Training runs, command Evaluate).")
        self.compute_button.setEnabled(bool(rows))

    def show_effort(self, rows: list[dict]) -> None:
        if not rows:
            self.effort.setText("No exam started from a model yet (Start from: Model: RUN).")
            return
        cells = "".join(
            f"<tr><td>{r['run']}</td><td align=right>{r['exams']}</td>"
            f"<td align=right>{r['median_dice']:.2f}</td>"
            f"<td align=right>{r['minutes_per_exam']:.1f}</td></tr>" for r in rows)
        self.effort.setText(
            "<table cellspacing=0 cellpadding=2><tr><th align=left>Run</th><th>Exams</th>"
            f"<th>Median Dice</th><th>Min/exam</th></tr>{cells}</table>")

    def selected_runs(self) -> list[str]:
        return [self.run_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.run_list.count())
                if self.run_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_runs(self, runs: list[str]) -> None:
        for i in range(self.run_list.count()):
            it = self.run_list.item(i)
            on = it.data(Qt.ItemDataRole.UserRole) in runs
            it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    # ---- compute and export -------------------------------------------------------------------

    def compute(self) -> bool:
        runs = self.selected_runs()
        if not runs:
            self.show_error("Tick at least one run.")
            return False
        if self.busy():
            return False
        self.error.hide()
        key = (tuple(runs), self.n_boot.value())
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"Computing {len(runs)} run(s), {self.n_boot.value()} bootstraps…")
        self.compute_button.setEnabled(False)
        self.worker = Worker(compute, self.ws_root, runs, self.n_boot.value(),
                             self._progress.emit, name="dashboard-compute")
        self.worker.done.connect(lambda rep, k=key: self._computed(rep, k))
        self.worker.failed.connect(self._failed)
        self.worker.start()
        return True

    def busy(self) -> bool:
        return self.worker is not None and self.worker.running()

    def wait(self) -> None:
        if self.worker is not None:
            self.worker.wait()
            QtCore.QCoreApplication.sendPostedEvents()
            QtWidgets.QApplication.processEvents()

    def _on_progress(self, item) -> None:
        i, n, text = item
        self.progress.setRange(0, max(n, 1))
        self.progress.setValue(min(i, n))
        self.progress.setFormat(text)

    def _failed(self, message: str) -> None:
        self.progress.hide()
        self.compute_button.setEnabled(True)
        self.status.setText("")
        self.show_error(message)

    def _computed(self, report, key) -> None:
        self.progress.hide()
        self.compute_button.setEnabled(True)
        self.export_button.setEnabled(True)
        self.report, self.report_key = report, key
        self.show_report(report)
        self.status.setText(f"{len(key[0])} run(s), {key[1]} bootstrap samples, seed 0, "
                            f"{time.strftime('%H:%M:%S')}")
        self.computed.emit(report)

    def show_report(self, report) -> None:
        doc = report.doc
        for legend in (self.roc_legend, self.pr_legend):
            legend.clear()
        for p in (self.roc_plot, self.pr_plot):
            for item in list(p.listDataItems())[(1 if p is self.roc_plot else 0):]:
                p.removeItem(item)
        t1 = doc["tables"]["table1"]
        rows = {r["run"]: r for r in t1.get("rows", [])}
        ops = {r["run"]: r for r in doc["tables"]["operating_point"].get("rows", [])}
        for i, run in enumerate(report.roc):
            color = pc.RUN_COLORS[i % len(pc.RUN_COLORS)]
            pen = pg.mkPen(color, width=2.2)
            roc = report.roc[run]
            auc = rows.get(run, {}).get("auc")
            if roc.fpr.size and not roc.reason:
                self.roc_plot.plot(roc.fpr, roc.tpr, pen=pen,
                                   name=f"{run}  AUC {est_text(auc)}")
            op = ops.get(run, {})
            sens, spec = op.get("sensitivity") or {}, op.get("specificity") or {}
            if sens.get("value") is not None and spec.get("value") is not None:
                self.roc_plot.plot([1 - spec["value"]], [sens["value"]], pen=None,
                                   symbol="o", symbolBrush=color, symbolPen="#000", symbolSize=9)
            pr = report.pr.get(run)
            ap = rows.get(run, {}).get("ap")
            if pr is not None and not pr.reason:
                self.pr_plot.plot(pr.recall, pr.precision, pen=pen,
                                  name=f"{run}  AP {est_text(ap)}")
        self.table1_title.setText(
            f"TABLE 1. PERFORMANCE ON THE TEST ROLE ({t1.get('exams', 0)} EXAMS, "
            f"{t1.get('images', 0)} PIXEL-LABELED IMAGES; 95% BOOTSTRAP CI)")
        t = self.table1
        t.setRowCount(len(rows))
        for i, (run, r) in enumerate(rows.items()):
            color = pc.RUN_COLORS[i % len(pc.RUN_COLORS)]
            op = ops.get(run, {})
            shown = [r.get("dice"), r.get("dice_fixed"), r.get("ap"), r.get("auc"),
                     op.get("sensitivity"), op.get("specificity")]
            t.setItem(i, 0, pc.cell(run, color=color))
            for j, e in enumerate(shown, start=1):
                t.setItem(i, j, pc.cell(est_text(e), tip=(e or {}).get("reason", "") or ""))
        # Table 1 as tall as its rows: the room goes to the comparisons below
        t.setFixedHeight(t.horizontalHeader().height() + 24 * max(len(rows), 1) + 6)
        cmps = t1.get("comparisons", [])
        c = self.cmp
        c.setRowCount(len(cmps))
        names = dict(METRICS)
        for i, m in enumerate(cmps):
            delta = m.get("delta")
            ci = ("" if m.get("ci_low") is None
                  else f"  [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]")
            dtext = "n/a" if delta is None else f"{delta:+.3f}{ci}"
            p = m.get("p")
            sig = p is not None and p < 0.05
            c.setItem(i, 0, pc.cell(f"{m['run_b']} − {m['run_a']}"))
            c.setItem(i, 1, pc.cell(names.get(m["metric"], m["metric"])))
            c.setItem(i, 2, pc.cell(dtext, tip=m.get("reason", "") or ""))
            z = m.get("z")
            c.setItem(i, 3, pc.cell("n/a" if z is None else f"{z:.2f}", align_right=True))
            c.setItem(i, 4, pc.cell(p_text(p), align_right=True,
                                    color="#e0b25a" if sig else None,
                                    tip="p < 0.05" if sig else ""))
        notes = doc.get("notes", [])
        self.notes.setText("\n".join(f"• {n}" for n in notes[:8]) if notes else "–")

    def default_out(self) -> Path:
        return self.ws_root / "reports" / time.strftime("report-%Y%m%d-%H%M%S")

    def export(self, out: Path | None = None) -> bool:
        runs = self.selected_runs()
        if not runs or self.busy():
            return False
        if out is None:
            out = self.default_out()
            if not self.headless:
                path = QtWidgets.QFileDialog.getExistingDirectory(
                    self, "Export the report to", str(out.parent))
                if not path:
                    return False
                out = Path(path) / out.name
        key = (tuple(runs), self.n_boot.value())
        report = self.report if key == self.report_key else None
        self.error.hide()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"Writing the report to {out}…")
        self.export_button.setEnabled(False)
        self.worker = Worker(export, self.ws_root, runs, self.n_boot.value(), Path(out), report,
                             self._progress.emit, name="dashboard-export")
        self.worker.done.connect(lambda files, o=out: self._exported(files, o))
        self.worker.failed.connect(self._failed)
        self.worker.start()
        return True

    def _exported(self, files: dict, out: Path) -> None:
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.last_files = files
        names = ", ".join(Path(f).name for f in files.values())
        self.status.setText(f"Report written to {out}: {names}")
        self.exported.emit(files)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait()
            self.worker = None
