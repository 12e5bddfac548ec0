"""ROC and precision-recall plots of the report, as PNG (matplotlib, Agg canvas).

The figures are drawn on an explicit Agg canvas (`FigureCanvasAgg`), never through
pyplot: no global backend is selected, so nothing here touches Qt or a display,
and a GUI process that imports this module keeps its own matplotlib state.
Legends carry each run's point estimate with its 95% bootstrap CI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ictview.stats.metrics import PrCurve, RocCurve

DPI = 200
WIDTH_IN, AXES_IN, LEGEND_LINE_IN = 6.0, 5.3, 0.16  # square axes + the legend below them
# colour and dash both change from run to run, so curves that coincide stay visible
STYLES = ("-", "--", "-.", ":")


def _style(i: int) -> dict:
    return {"color": f"C{i % 10}", "linestyle": STYLES[i % len(STYLES)], "linewidth": 1.6}


def _marker_proxy(marker: str, label: str) -> Line2D:
    """A neutral legend entry for per-run markers (each drawn in its run's colour)."""
    return Line2D([], [], marker=marker, linestyle="none", markerfacecolor="white",
                  markeredgecolor="black", markersize=6, label=label)  # fmt: skip


def _legend(fig: Figure, ax, extra: list) -> None:
    handles, _ = ax.get_legend_handles_labels()
    fig.legend(handles=handles + extra, loc="outside lower center", ncols=1, fontsize=7.5,
               title="95% bootstrap CI in brackets", title_fontsize=7.5, frameon=False)  # fmt: skip


def _ci_label(run: str, metric: str, est: Mapping | None) -> str:
    if not est or est.get("value") is None:
        why = (est or {}).get("reason") or "undefined"
        return f"{run}: {metric} n/a ({why})"
    lo, hi = est.get("ci_low"), est.get("ci_high")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else " [CI n/a]"
    return f"{run}: {metric} {est['value']:.3f}{ci}"


def _new_axes(legend_lines: int) -> tuple[Figure, object]:
    height = AXES_IN + LEGEND_LINE_IN * (legend_lines + 1)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(True, color="0.9", linewidth=0.6)
    return fig, ax


def _save(fig: Figure, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=DPI)
    tmp.replace(path)
    return path.name


def _omitted(path: Path, reason: str) -> dict:
    path.unlink(missing_ok=True)  # no stale plot from an earlier report in the same folder
    return {"file": None, "omitted": reason}


def plot_roc(curves: Mapping[str, RocCurve], doc: Mapping, path: Path) -> str | dict:
    """Exam-level ROC of every run on the test role, operating points marked."""
    t1 = {row["run"]: row for row in doc["tables"]["table1"]["rows"]}
    ops = {row["run"]: row for row in doc["tables"]["operating_point"]["rows"]}
    drawable = {r: c for r, c in curves.items() if not c.reason}
    if not drawable:
        reasons = {c.reason for c in curves.values()} or {"no runs"}
        return _omitted(path, "; ".join(sorted(reasons)))
    fig, ax = _new_axes(len(drawable) + 2)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=0.8, label="chance")
    extra = []
    for i, (run, c) in enumerate(drawable.items()):
        style = _style(i)
        ax.plot(c.fpr, c.tpr, **style, label=_ci_label(run, "AUC", t1.get(run, {}).get("auc")))
        op = ops.get(run, {})
        sens = (op.get("sensitivity") or {}).get("value")
        spec = (op.get("specificity") or {}).get("value")
        if sens is not None and spec is not None:
            ax.plot([1 - spec], [sens], marker="o", markersize=6, color=style["color"],
                    linestyle="none", markeredgecolor="black", markeredgewidth=0.6)  # fmt: skip
            if not extra:
                target = op["target_sensitivity"]
                label = f"operating point (test sensitivity >= {target:g})"
                extra.append(_marker_proxy("o", label))
    test = doc["data"]["test"]
    sites = ", ".join(test.get("sites") or []) or "test role"
    ax.set_title(f"Exam-level ROC, {sites}: {test['exams']} exams, {test['positive']} positive",
                 fontsize=10)  # fmt: skip
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("Sensitivity (true positive rate)")
    _legend(fig, ax, extra)
    return _save(fig, path)


def _point_at(curve: PrCurve, threshold: float | None) -> tuple[float, float] | None:
    """(recall, precision) of 'p >= threshold' on a PR curve."""
    if threshold is None or math.isnan(threshold) or curve.thresholds.size == 0:
        return None
    k = int(np.searchsorted(curve.thresholds, threshold, side="left"))
    if k >= curve.thresholds.size:
        return None
    return float(curve.recall[k]), float(curve.precision[k])


def plot_pr(curves: Mapping[str, PrCurve], doc: Mapping, path: Path) -> str | dict:
    """Pixel PR curve of every run on the pixel-labeled test subset, Dice thresholds marked."""
    if not curves:
        return _omitted(path, "no pixel-labeled test exam")
    drawable = {r: c for r, c in curves.items() if not c.reason}
    if not drawable:
        return _omitted(path, "; ".join(sorted({c.reason for c in curves.values()})))
    t1 = {row["run"]: row for row in doc["tables"]["table1"]["rows"]}
    thresholds = doc.get("dice_thresholds", {})
    fig, ax = _new_axes(len(drawable) + 2)
    prevalence = float(next(iter(drawable.values())).precision[0])  # all pixels predicted
    ax.axhline(prevalence, linestyle="--", color="0.6", linewidth=0.8,
               label=f"chance (pixel prevalence {prevalence:.3g})")  # fmt: skip
    extra = []
    for i, (run, c) in enumerate(drawable.items()):
        style = _style(i)
        ax.plot(c.recall, c.precision, drawstyle="steps-post", **style,
                label=_ci_label(run, "AP", t1.get(run, {}).get("ap")))  # fmt: skip
        pt = _point_at(c, (thresholds.get(run) or {}).get("threshold"))
        if pt is not None:
            ax.plot([pt[0]], [pt[1]], marker="s", markersize=5, color=style["color"],
                    linestyle="none", markeredgecolor="black", markeredgewidth=0.6)  # fmt: skip
            if not extra:
                extra.append(_marker_proxy("s", "Dice threshold (chosen on validation)"))
    pix = doc["data"]["test_pixels"] or {}
    ax.set_title(f"Pixel precision-recall, pixel-labeled test subset: {pix.get('images', 0)} "
                 f"images ({pix.get('exams', 0)} exams)", fontsize=10)  # fmt: skip
    ax.set_xlabel("Recall (pixel sensitivity)")
    ax.set_ylabel("Precision (pixel positive predictive value)")
    _legend(fig, ax, extra)
    return _save(fig, path)
