"""The paper's report for a set of runs: tables with bootstrap CIs and paired tests, plots.

`run_report(workspace, runs, out)` gathers the runs' predictions (report_data; with no
runs given, every model run of the workspace: report_data.model_runs),
computes every table (`build_report`) and writes into `out`:

    report.json   every number: estimates with CIs, n, thresholds, tests, reasons for NaN
    report.md     the tables, readable (report_render)
    report.html   the same, self-contained (inline CSS, plots embedded as base64 PNG)
    roc.png       exam-level ROC curves on the test role (report_plots)
    pr.png        pixel precision-recall curves on the pixel-labeled test subset

Tables (seed-paper.md), each run against the same resamples so deltas are paired:
- Table 1: per run, subset Dice and pixel AP (images of the pixel-labeled test
  subset resampled) and exam AUC (test exams resampled), each with a percentile
  95% CI from `n_boot` bootstraps; every pair of runs: delta (b - a), its CI, Z, p,
  KS normality check. Dice ("dice") uses each run's threshold chosen on the validation
  role; "dice_fixed" is Dice at the fixed threshold 0.5 beside it (on the same resamples),
  which needs no validation role and does not move with a threshold picked on few exams.
- Operating point: per run, the threshold where test sensitivity reaches 0.92,
  with sensitivity / specificity there (CIs at that fixed threshold).
- Table 2: runs that differ only in contrast augmentation: validation pixel AP and
  exam AUC, deltas against the run without contrast augmentation.
- Table 3: no-ranker runs against the ranker runs they match: validation pixel AP
  and exam AUC, deltas.
- Table 4: each run against each repetition retest-<k> of the rater (50
  bootstraps each), paired t-tests of each run against the first run (the
  baseline) per repetition and pooled; intra-rater agreement. Those t-tests, like the
  paper's, treat bootstrap replicates as independent samples: the table's note says why
  their p values overstate significance.
- Supplemental Table 1: exam AUC per subtype on isolated-subtype test exams.
A table whose inputs are absent is replaced by {"omitted": "<reason>"}.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ictview.errors import IctviewError
from ictview.stats.bootstrap import (
    BootstrapResult,
    bootstrap_exams,
    bootstrap_pixels,
    resample_counts,
)
from ictview.stats.metrics import (
    PrCurve,
    RocCurve,
    dice_values,
    isolated_subtype_mask,
    operating_point,
    roc_curve,
)
from ictview.stats.pixel_stats import PixelStats
from ictview.stats.report_data import (
    MODEL_KINDS,
    Progress,
    ReportData,
    RunInfo,
    gather,
    model_runs,
)
from ictview.stats.results import Estimate
from ictview.stats.retest import intra_rater_agreement, retest_analysis
from ictview.store.catalog import utc_now

FORMAT_VERSION = 1
TARGET_SENSITIVITY = 0.92
RETEST_N_BOOT = 50  # the paper's test-retest bootstraps per repetition
SUBTYPE_ORDER = ("SAH", "SDH", "IPH", "EDH", "IVH")  # Supplemental Table 1's order, then IVH
CONTRAST_ORDER = ("none", "power", "log", "mixed")
FILES = ("report.json", "report.md", "report.html", "roc.png", "pr.png")
FIXED_DICE_THRESHOLD = 0.5
TABLE4_NOTE = (
    "These t-tests, like the paper's, treat the bootstrap replicates as independent "
    "observations. They are not: every replicate resamples the same images, so the t "
    "statistic grows with the square root of the number of bootstraps and p can be made as "
    "small as one likes by drawing more. The p values overstate significance; read them as "
    "a reproduction of the paper's analysis, and the paired bootstrap Z-tests of Table 1 "
    "for the significance of a difference."
)


# ---------------------------------------------------------------------------
# JSON helpers


def jsonable(obj: object) -> object:
    """Plain JSON types: numpy scalars/arrays unwrapped, NaN and infinities as None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def missing(run: str, metric: str, reason: str, unit: str = "", n: int = 0) -> dict:
    """An estimate that could not be made (no data for it), in Estimate.to_dict() form."""
    nan = math.nan
    return Estimate(run, metric, nan, nan, nan, n, unit, 0, 0, reason).to_dict()


def _estimate(boot: BootstrapResult | None, run: str, metric: str, why_not: str) -> dict:
    if boot is None or run not in boot.points or metric not in boot.points[run]:
        return missing(run, metric, why_not, boot.unit if boot else "", boot.n if boot else 0)
    return boot.estimate(run, metric).to_dict()


def _compare(
    boot: BootstrapResult | None, a: str, b: str, metric: str, why_not: str
) -> dict:
    have = boot is not None and all(metric in boot.points.get(r, {}) for r in (a, b))
    if not have:
        return {"metric": metric, "run_a": a, "run_b": b, "reason": why_not}
    return boot.compare(a, b, metric).to_dict()


# ---------------------------------------------------------------------------
# the report


@dataclass
class Report:
    """report.json's content plus the curves behind the plots (not stored in the JSON)."""

    doc: dict
    roc: dict[str, RocCurve] = field(default_factory=dict)
    pr: dict[str, PrCurve] = field(default_factory=dict)


def _dice_thresholds(data: ReportData) -> tuple[dict[str, float], dict[str, dict], dict[str, str]]:
    """Per run: the Dice-maximising threshold on the pixel-labeled validation exams."""
    chosen, record, why_not = {}, {}, {}
    for r in data.run_names:
        if data.val_pixels is None or r not in data.val_pixels.stats:
            reason = (
                f"no Dice threshold: run '{r}' has no validation predictions"
                if data.validation is None or r not in data.validation.scores
                else "no Dice threshold: no pixel-labeled validation exam"
            )
            record[r] = {"threshold": None, "chosen_on": "validation", "reason": reason}
            why_not[r] = reason
            continue
        choice = data.val_pixels.stats[r].best_dice_threshold("validation")
        record[r] = {**choice.to_dict(), "images": data.val_pixels.n_images}
        if math.isnan(choice.threshold):
            why_not[r] = f"no Dice threshold: {choice.dice.reason}"
            record[r]["reason"] = why_not[r]
        else:
            chosen[r] = choice.threshold
    return chosen, record, why_not


def _add_fixed_dice(
    boot: BootstrapResult, stats: dict[str, PixelStats], threshold: float, n_boot: int, seed: int
) -> None:
    """Dice at one fixed threshold for every run, as metric "dice_fixed" of `boot`: on the
    resamples bootstrap_pixels drew (resample_counts depends on n, n_boot and seed only),
    so its CIs and deltas are paired like the other pixel metrics."""
    counts = resample_counts(boot.n, n_boot, seed).astype(np.float64)
    for run, st in stats.items():
        tp, fp, fn = (counts @ st.dice_counts(threshold).astype(np.float64)).T
        boot.add(run, "dice_fixed", st.dice(threshold), dice_values(tp, fp, fn),
                 threshold=threshold)  # fmt: skip


def _table1(data, runs, exam_boot, pix_boot, dice_why) -> dict:
    no_pix = "no pixel-labeled test exam"
    rows = []
    for r in runs:
        dice_reason = dice_why.get(r, no_pix) if pix_boot is not None else no_pix
        rows.append({
            "run": r,
            "dice": _estimate(pix_boot if r not in dice_why else None, r, "dice", dice_reason),
            "dice_fixed": _estimate(pix_boot, r, "dice_fixed", no_pix),
            "ap": _estimate(pix_boot, r, "ap", no_pix),
            "auc": _estimate(exam_boot, r, "auc", "no test exams"),
        })  # fmt: skip
    comparisons = []
    for a, b in itertools.combinations(runs, 2):
        for metric, boot in (("dice", pix_boot), ("dice_fixed", pix_boot), ("ap", pix_boot),
                             ("auc", exam_boot)):  # fmt: skip
            why = (dice_why.get(a) or dice_why.get(b)) if metric == "dice" else None
            comparisons.append(_compare(boot, a, b, metric, why or no_pix))
    return {
        "title": "Table 1. Model performance on the test role",
        "test_sites": data.test.sites,
        "exams": len(data.test.exams),
        "images": data.test_pixels.n_images if data.test_pixels else 0,
        "fixed_dice_threshold": FIXED_DICE_THRESHOLD,
        "rows": rows,
        "comparisons": comparisons,
        "comparison": "b - a on the same resamples; Z = delta / sd(bootstrap deltas); "
        "two-sided normal p; KS test of the standardized deltas against N(0, 1)",
    }


def _operating_points(data: ReportData, runs, ops, exam_boot) -> dict:
    rows = []
    for r in runs:
        op = ops[r]
        why = op.reason or "no operating point"
        rows.append({
            **op.to_dict(),
            "run": r,
            "sensitivity": _estimate(exam_boot, r, "sensitivity", why),
            "specificity": _estimate(exam_boot, r, "specificity", why),
        })  # fmt: skip
    return {
        "title": f"Sensitivity and specificity at the operating point (test sensitivity "
        f">= {TARGET_SENSITIVITY})",
        "rule": "highest exam-score threshold whose sensitivity on the test role reaches the "
        "target; CIs from exam bootstraps at that fixed threshold",
        "rows": rows,
    }


def _validation_boots(data, n_boot, seed) -> tuple[BootstrapResult | None, BootstrapResult | None]:
    val = data.validation
    exam = bootstrap_exams(val.labels, val.scores, n_boot=n_boot, seed=seed) if val else None
    pix = (
        bootstrap_pixels(data.val_pixels.stats, n_boot=n_boot, seed=seed)
        if data.val_pixels
        else None
    )
    return exam, pix


def _val_row(info: RunInfo, val_exam, val_pix, **extra) -> dict:
    return {
        "run": info.name,
        "kind": info.kind,
        **extra,
        "ap": _estimate(val_pix, info.name, "ap", "no pixel-labeled validation exam"),
        "auc": _estimate(val_exam, info.name, "auc", "no validation exams"),
    }


def _val_comparisons(pairs, val_exam, val_pix) -> list[dict]:
    return [
        _compare(boot, a, b, metric, why)
        for a, b in pairs
        for metric, boot, why in (
            ("ap", val_pix, "no pixel-labeled validation exam"),
            ("auc", val_exam, "no validation exams"),
        )
    ]


def _table2(data: ReportData, val_exam, val_pix) -> dict:
    title = "Table 2. Contrast augmentation (validation role)"
    val_runs = set(data.validation.scores) if data.validation else set()
    eligible = [r for r in data.runs if r.contrast is not None and r.name in val_runs]
    groups: dict[str, list[RunInfo]] = {}
    for r in eligible:
        groups.setdefault(r.contrast_signature, []).append(r)
    studies = [g for g in groups.values() if len({r.contrast for r in g}) >= 2]
    if not studies:
        seen = ", ".join(f"{r.name}={r.contrast}" for r in eligible) or "none"
        return {"title": title, "omitted": "no two runs with validation predictions differ only "
                f"in contrast augmentation (runs with a contrast setting: {seen})"}  # fmt: skip
    out = []
    for g in studies:
        rank = {c: i for i, c in enumerate(CONTRAST_ORDER)}
        g = sorted(g, key=lambda r: (rank.get(r.contrast, len(rank)), r.name))
        ref = g[0]  # "none" when present: the baseline without contrast augmentation
        rows = [_val_row(r, val_exam, val_pix, contrast=r.contrast,
                         parameters=r.contrast_parameters()) for r in g]  # fmt: skip
        pairs = [(ref.name, r.name) for r in g[1:]]
        out.append({"kind": g[0].kind, "reference_run": ref.name, "rows": rows,
                    "comparisons": _val_comparisons(pairs, val_exam, val_pix)})  # fmt: skip
    return {"title": title, "studies": out}


def _table3(data: ReportData, val_exam, val_pix) -> dict:
    title = "Table 3. Ranker ablation (validation role)"
    val_runs = set(data.validation.scores) if data.validation else set()
    without = [r for r in data.runs if r.ranker is False and r.name in val_runs]
    with_ = [r for r in data.runs if r.ranker is True and r.name in val_runs]
    if not without or not with_:
        have = "no no-ranker run" if not without else "no run with a ranker (student)"
        return {"title": title, "omitted": f"{have} among the runs with validation predictions"}
    pairs, unmatched = [], []
    for n in without:
        match = [r for r in with_ if r.ranker_signature == n.ranker_signature]
        if not match:
            match = with_
            unmatched.append(n.name)
        pairs += [(n.name, r.name) for r in match]
    names = list(dict.fromkeys(name for p in pairs for name in p))
    rows = [
        _val_row(data.run(n), val_exam, val_pix, ranker=data.run(n).ranker) for n in names
    ]
    doc = {"title": title, "rows": rows, "pairs": pairs,
           "comparisons": _val_comparisons(pairs, val_exam, val_pix)}  # fmt: skip
    if unmatched:
        doc["note"] = (f"{', '.join(unmatched)}: no ranker run with the same configuration; "
                       "compared with every ranker run")  # fmt: skip
    return doc


def _table4(data: ReportData, runs, thresholds, seed, n_boot) -> dict:
    title = "Table 4. Test-retest: each run against each of the rater's repeated segmentations"
    rt = data.retest
    if rt is None:
        return {"title": title, "omitted": "no retest-<k> labelsets on predicted test exams"}
    res = retest_analysis(
        {r: [rt.pixels[rep].stats[r] for rep in rt.repetitions] for r in runs},
        dice_thresholds=thresholds,
        repetitions=rt.repetitions,
        pairs=[(runs[0], b) for b in runs[1:]],  # the first run (the baseline) vs each other
        n_boot=n_boot,
        seed=seed,
    )
    doc = {"title": title, **rt.summary(), "exam_ids": rt.exams, **res.to_dict(),
           "note": TABLE4_NOTE}
    if len(rt.repetitions) >= 2:
        agreement = intra_rater_agreement(rt.union_masks, rt.voxel_ml, rt.exams)
        doc["intra_rater"] = [a.to_dict() for a in agreement]
    else:
        doc["intra_rater_omitted"] = "one repetition only"
    return doc


def _supplemental(data: ReportData, runs, n_boot, seed) -> dict:
    title = "Supplemental Table 1. Exam AUC per subtype on isolated-subtype test exams"
    t = data.test
    keep = t.subtype_exams
    if not keep.any():
        return {"title": title, "omitted": "no test exam has reads of every subtype"}
    y = t.labels[keep]
    flags = {f: v[keep] for f, v in t.subtypes.items()}
    rows = []
    for code in SUBTYPE_ORDER:
        m = isolated_subtype_mask(y, flags, code)
        boot = bootstrap_exams(y[m], {r: t.scores[r][keep][m] for r in runs}, n_boot=n_boot,
                               seed=seed)  # fmt: skip
        rows.append({
            "subtype": code,
            "positive": int((y & m).sum()),
            "negative": int((~y & m).sum()),
            "auc": {r: boot.estimate(r, "auc").to_dict() for r in runs},
        })  # fmt: skip
    return {"title": title, "exams": int(keep.sum()),
            "rule": "all ICH-negative exams + positive exams whose only subtype (readers' "
                    "majority) is the row's", "rows": rows}  # fmt: skip


def build_report(
    data: ReportData,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
    retest_n_boot: int = RETEST_N_BOOT,
) -> Report:
    """Every table and curve from gathered data (see the module doc)."""
    if n_boot < 2:
        raise IctviewError(f"n_boot: need at least 2 bootstraps, got {n_boot}")
    runs = data.run_names
    steps = ["exam bootstrap", "pixel bootstrap", "validation", "test-retest", "subtypes"]

    def step(i: int) -> None:
        if progress:
            progress(i, len(steps), steps[i] if i < len(steps) else "done")

    test = data.test
    step(0)
    ops = {r: operating_point(test.labels, test.scores[r], TARGET_SENSITIVITY) for r in runs}
    exam_boot = bootstrap_exams(
        test.labels, test.scores, n_boot=n_boot, seed=seed,
        thresholds={r: op.threshold for r, op in ops.items() if not math.isnan(op.threshold)},
    )  # fmt: skip
    step(1)
    thresholds, threshold_record, dice_why = _dice_thresholds(data)
    pix_boot = None
    if data.test_pixels is not None:
        pix_boot = bootstrap_pixels(data.test_pixels.stats, dice_thresholds=thresholds,
                                    n_boot=n_boot, seed=seed)  # fmt: skip
        _add_fixed_dice(pix_boot, data.test_pixels.stats, FIXED_DICE_THRESHOLD, n_boot, seed)
    step(2)
    val_exam, val_pix = _validation_boots(data, n_boot, seed)
    step(3)
    table4 = _table4(data, runs, thresholds, seed, retest_n_boot)
    step(4)
    supplemental = _supplemental(data, runs, n_boot, seed)
    step(5)

    tables = {
        "table1": _table1(data, runs, exam_boot, pix_boot, dice_why),
        "operating_point": _operating_points(data, runs, ops, exam_boot),
        "table2": _table2(data, val_exam, val_pix),
        "table3": _table3(data, val_exam, val_pix),
        "table4": table4,
        "supplemental_table1": supplemental,
    }
    notes = list(data.notes)
    for key, t in tables.items():
        if "omitted" in t:
            notes.append(f"{t['title'].split('.')[0]} omitted: {t['omitted']}")
    doc = {
        "report": "ictview evaluation report",
        "format_version": FORMAT_VERSION,
        "created_at": utc_now(),
        "workspace": data.workspace,
        "runs": [r.to_dict() for r in data.runs],
        "settings": {
            "n_boot": n_boot,
            "retest_n_boot": retest_n_boot,
            "seed": seed,
            "ci": "percentile 2.5/97.5 of the bootstrap replicates where the metric is defined",
            "target_sensitivity": TARGET_SENSITIVITY,
            "dice_rule": "p >= threshold; threshold maximising data-set Dice on the validation "
            "role's pixel-labeled exams, per run",
            "fixed_dice_threshold": FIXED_DICE_THRESHOLD,
            "runs_from": data.runs_from,
            "exam_reference": "majority of the readers' ICH reads; exams without reads: "
            "hemorrhage (labels 1..5) in the 'reference' mask",
        },
        "data": {
            "test": test.summary(),
            "validation": data.validation.summary() if data.validation else None,
            "test_pixels": data.test_pixels.summary() if data.test_pixels else None,
            "validation_pixels": data.val_pixels.summary() if data.val_pixels else None,
            "retest": data.retest.summary() if data.retest else None,
        },
        "dice_thresholds": threshold_record,
        "tables": tables,
        "assist_effort": data.effort,
        "notes": notes,
    }
    roc = {r: roc_curve(test.labels, test.scores[r]) for r in runs}
    pr = {r: s.pr_curve() for r, s in data.test_pixels.stats.items()} if data.test_pixels else {}
    return Report(jsonable(doc), roc, pr)


# ---------------------------------------------------------------------------
# files


def _write_text(path: Path, text: str) -> None:
    """Write then rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: Report, out: Path) -> dict[str, str]:
    """report.json, report.md, report.html and the plots into `out` (created)."""
    from ictview.stats.report_plots import plot_pr, plot_roc
    from ictview.stats.report_render import render_html, render_markdown

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise IctviewError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    doc = report.doc
    plots = {}
    plots["roc"] = plot_roc(report.roc, doc, out / "roc.png")
    plots["pr"] = plot_pr(report.pr, doc, out / "pr.png")
    doc["plots"] = {k: (v if isinstance(v, dict) else {"file": v}) for k, v in plots.items()}
    _write_text(out / "report.json", json.dumps(doc, indent=1, allow_nan=False) + "\n")
    _write_text(out / "report.md", render_markdown(doc))
    _write_text(out / "report.html", render_html(doc, out))
    files = {"json": "report.json", "markdown": "report.md", "html": "report.html"}
    files.update({k: v["file"] for k, v in doc["plots"].items() if v.get("file")})
    return {k: str(out / v) for k, v in files.items()}


def run_report(
    workspace: Path,
    runs: Sequence[str] | None,
    out: Path,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict:
    """Gather, compute and write the report; returns report.json's content (+ "files").

    `runs` None (or empty): every model run of the workspace (report_data.model_runs)."""
    from ictview.store.workspace import DB_NAME, Workspace

    workspace = Path(workspace)
    if not (workspace / DB_NAME).is_file():
        raise IctviewError(f"{workspace}: not an ictview workspace (no workspace.sqlite)")
    if n_boot < 2:
        raise IctviewError(f"--n-boot: need at least 2 bootstraps, got {n_boot}")
    with Workspace.open(workspace) as ws:
        left_out: list[str] = []
        if runs:
            runs_from = "given (--runs)"
        else:
            runs, left_out = model_runs(ws)
            runs_from = ("every model run of the workspace that predicted every test exam "
                         "(kinds " + ", ".join(MODEL_KINDS) + ")")
            if not runs:
                why = f" ({'; '.join(left_out)})" if left_out else ""
                raise IctviewError(f"{workspace}: no model run has predictions on every test "
                                   f"exam{why}: train and evaluate first (ictview-train study)")
        data = gather(ws, list(runs), progress)
    data.notes[:0] = left_out
    data.runs_from = runs_from
    report = build_report(data, n_boot=n_boot, seed=seed, progress=progress)
    files = write_report(report, Path(out))
    return {**report.doc, "files": files}

