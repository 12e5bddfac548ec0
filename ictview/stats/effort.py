"""Edit effort of model-assisted labeling, per run (issue 16): how close each run's
proposals were to the labels the raters saved, and how long the exams took.

From the catalog's label_effort rows (one per labelset and exam started from a model,
updated on each save; read through the read guard by `Workspace.effort`)."""

from __future__ import annotations

import statistics


def effort_by_run(ws) -> list[dict]:
    """[{run, exams, median_dice, minutes_per_exam, median_voxels_changed, steps}] sorted by
    run: median Dice of proposal vs final labels, mean minutes on task per exam."""
    by: dict[str, list[dict]] = {}
    for r in ws.effort():
        if r["saved_at"]:  # opened, never saved: no final labels to compare
            by.setdefault(r["run"], []).append(r)
    out = []
    for run, rows in sorted(by.items()):
        out.append({
            "run": run, "exams": len(rows),
            "median_dice": statistics.median(r["dice"] for r in rows),
            "minutes_per_exam": sum(r["seconds"] for r in rows) / 60.0 / len(rows),
            "median_voxels_changed": statistics.median(r["changed"] for r in rows),
            "median_steps": statistics.median(r["strokes"] for r in rows),
        })  # fmt: skip
    return out


def effort_lines(rows: list[dict]) -> list[str]:
    """A plain text table (ictview-train report's markdown, the dashboard)."""
    if not rows:
        return []
    out = [f"{'run':<16}{'exams':>6}{'median Dice':>13}{'min/exam':>10}{'voxels changed':>16}"]
    for r in rows:
        out.append(f"{r['run']:<16}{r['exams']:>6}{r['median_dice']:>13.3f}"
                   f"{r['minutes_per_exam']:>10.1f}{r['median_voxels_changed']:>16.0f}")
    return out
