"""report.md and report.html from report.json's content (one layout, two renderers).

`blocks(doc)` turns the JSON document into headings, paragraphs, tables and
images; the renderers only format them. So the Markdown and the HTML always show
the same numbers, and both can be rebuilt from a saved report.json.
Numbers: 3 decimals, "value [CI low, CI high]"; "n/a" where undefined, with the
reason listed under the table; p < 0.001 written as "< 0.001".
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

METRIC_NAMES = {"dice": "DSC", "dice_fixed": "DSC @ 0.5", "ap": "Pixel AP", "auc": "Exam AUC",
                "sensitivity": "Sensitivity", "specificity": "Specificity"}  # fmt: skip


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Image:
    file: str
    alt: str


# ---------------------------------------------------------------------------
# number formatting


def num(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def est(e: Mapping | None) -> str:
    """'0.809 [0.803, 0.812]'; 'n/a' when undefined."""
    if not e or e.get("value") is None:
        return "n/a"
    if e.get("ci_low") is None or e.get("ci_high") is None:
        return f"{e['value']:.3f} [CI n/a]"
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def pval(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def signed(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"


def reasons(items: list[Mapping], label) -> list[str]:
    """One note per undefined estimate or test: '<label>: <reason>'."""
    out = []
    for e in items:
        if e and e.get("reason") and (e.get("value") is None or e.get("ci_low") is None
                                      or e.get("p") is None):  # fmt: skip
            out.append(f"{label(e)}: {e['reason']}")
    return list(dict.fromkeys(out))


def _est_label(e: Mapping) -> str:
    return f"{e['run']} {METRIC_NAMES.get(e['metric'], e['metric'])}"


def _cmp_label(c: Mapping) -> str:
    return f"{c['run_b']} - {c['run_a']} {METRIC_NAMES.get(c['metric'], c['metric'])}"


def comparison_table(comparisons: list[Mapping]) -> Table:
    rows = [
        [f"{c['run_b']} - {c['run_a']}", METRIC_NAMES.get(c["metric"], c["metric"]),
         signed(c.get("delta")),
         "n/a" if c.get("ci_low") is None else f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]",
         num(c.get("z"), 2), pval(c.get("p")), pval(c.get("ks_p")),
         str(c.get("n_valid", 0))]
        for c in comparisons
    ]  # fmt: skip
    header = ["Comparison (b - a)", "Metric", "Delta", "95% CI", "Z", "p", "KS p", "valid boots"]
    return Table(header, rows, grouped_reasons(list(comparisons), _cmp_label))


def grouped_reasons(items: list[Mapping], label, show: int = 6) -> list[str]:
    """Like reasons(), one note per distinct reason listing what it applies to."""
    by: dict[str, list[str]] = {}
    for note in reasons(items, label):
        what, why = note.split(": ", 1)
        by.setdefault(why, []).append(what)
    out = []
    for why, whats in by.items():
        more = f" and {len(whats) - show} more" if len(whats) > show else ""
        out.append(f"{why}: {', '.join(whats[:show])}{more}")
    return out


# ---------------------------------------------------------------------------
# the layout


def _omitted(t: Mapping) -> list:
    return [Heading(t["title"]), Para(f"*Omitted: {t['omitted']}.*")]


def _data_section(doc: Mapping) -> list:
    d = doc["data"]
    s = doc["settings"]
    runs = ", ".join(f"{r['name']} ({r['kind'] or 'kind unknown'})" for r in doc["runs"])
    rows = []
    for name, key in (("Test", "test"), ("Validation", "validation")):
        x = d.get(key)
        if x:
            rows.append([name, ", ".join(x["sites"]), str(x["exams"]), str(x["positive"]),
                         str(x["negative"]), str(len(x["excluded"]))])  # fmt: skip
    out = [
        Para(f"Workspace `{doc['workspace']}`, created {doc['created_at']}. Runs: {runs}."),
        Para(f"{s['n_boot']} bootstraps (seed {s['seed']}), test-retest {s['retest_n_boot']} per "
             f"repetition; 95% CI = {s['ci']}. Exam reference: {s['exam_reference']}."),
        Table(["Role", "Sites", "Exams", "Positive", "Negative", "Excluded"], rows),
    ]  # fmt: skip
    pix = []
    if d.get("test_pixels"):
        p = d["test_pixels"]
        pix.append(f"pixel-labeled test subset: {p['exams']} exams, {p['images']} images")
    if d.get("validation_pixels"):
        p = d["validation_pixels"]
        pix.append(f"pixel-labeled validation exams: {p['exams']} exams, {p['images']} images")
    if d.get("retest"):
        p = d["retest"]
        pix.append(f"test-retest: {', '.join(p['repetitions'])} on {p['exams']} exams")
    if pix:
        out.append(Para("; ".join(pix).capitalize() + "."))
    return out


def _table1(doc: Mapping) -> list:
    t = doc["tables"]["table1"]
    # reports written before the fixed-threshold Dice existed have no "dice_fixed"
    fixed = t.get("fixed_dice_threshold")
    metrics = ("dice", "dice_fixed", "ap", "auc") if fixed is not None else ("dice", "ap", "auc")
    rows = [[r["run"]] + [est(r[m]) for m in metrics] for r in t["rows"]]
    items = [r[m] for r in t["rows"] for m in metrics]
    thr = doc["dice_thresholds"]
    notes = [
        "DSC at each run's threshold chosen on validation: "
        + ", ".join(f"{r} p >= {num(v.get('threshold'), 4)}" for r, v in thr.items())
        + "."
    ]
    header = ["Model", "Subset DSC (validation threshold)"]
    if fixed is not None:
        header.append(f"Subset DSC (p >= {fixed:g})")
        notes.append(f"DSC (p >= {fixed:g}): every run at the same fixed threshold {fixed:g}.")
    header += ["Subset Pixel AP", "Examination AUC"]
    out = [Heading(t["title"]), Table(header, rows, notes + reasons(items, _est_label))]
    if t["comparisons"]:
        out += [Heading("Table 1, paired comparisons", 3), Para(f"*{t['comparison']}.*"),
                comparison_table(t["comparisons"])]  # fmt: skip
    return out


def _operating(doc: Mapping) -> list:
    t = doc["tables"]["operating_point"]
    rows = [[r["run"], num(r.get("threshold"), 4), est(r["sensitivity"]), est(r["specificity"]),
             f"{r['tp']} / {r['fp']} / {r['tn']} / {r['fn']}"] for r in t["rows"]]  # fmt: skip
    items = [r[m] for r in t["rows"] for m in ("sensitivity", "specificity")]
    return [
        Heading(t["title"]),
        Table(["Model", "Exam score threshold", "Sensitivity", "Specificity", "TP / FP / TN / FN"],
              rows, [t["rule"] + "."] + reasons(items, _est_label)),  # fmt: skip
    ]


def _table2(doc: Mapping) -> list:
    t = doc["tables"]["table2"]
    if "omitted" in t:
        return _omitted(t)
    out = [Heading(t["title"])]
    for study in t["studies"]:
        rows = [[r["run"], r["contrast"], r["parameters"], est(r["ap"]), est(r["auc"])]
                for r in study["rows"]]  # fmt: skip
        items = [r[m] for r in study["rows"] for m in ("ap", "auc")]
        out += [
            Para(f"Runs of kind '{study['kind']}' that differ only in contrast augmentation; "
                 f"deltas against {study['reference_run']}."),
            Table(["Model", "Contrast", "Parameters", "Validation Pixel AP",
                   "Validation Examination AUC"], rows, reasons(items, _est_label)),
            comparison_table(study["comparisons"]),
        ]  # fmt: skip
    return out


def _table3(doc: Mapping) -> list:
    t = doc["tables"]["table3"]
    if "omitted" in t:
        return _omitted(t)
    rows = [[r["run"], "yes" if r["ranker"] else "no", est(r["ap"]), est(r["auc"])]
            for r in t["rows"]]  # fmt: skip
    items = [r[m] for r in t["rows"] for m in ("ap", "auc")]
    notes = reasons(items, _est_label) + ([t["note"]] if t.get("note") else [])
    return [
        Heading(t["title"]),
        Table(["Model", "Ranker", "Validation Pixel AP", "Validation Examination AUC"], rows,
              notes),  # fmt: skip
        comparison_table(t["comparisons"]),
    ]


def _table4(doc: Mapping) -> list:
    t = doc["tables"]["table4"]
    if "omitted" in t:
        return _omitted(t)
    runs, reps = t["runs"], t["repetitions"]
    by = {(e["repetition"], e["run"], e["metric"]): e for e in t["estimates"]}
    # one row per run (the paper has one per repetition): the width stays fixed with many runs
    header = ["Model"] + [f"{rep} Pixel AP" for rep in reps] + [f"{rep} DSC" for rep in reps]
    rows = [
        [r] + [est(by.get((rep, r, "ap"))) for rep in reps]
        + [est(by.get((rep, r, "dice"))) for rep in reps]
        for r in runs
    ]
    items = list(by.values())
    out = [
        Heading(t["title"]),
        Para(f"{t['exams']} exams, {t['images']} images; {t['n_boot']} image bootstraps per "
             "repetition (same resamples for every run and repetition)."),
        Table(header, rows, reasons(items, lambda e: f"{e['repetition']} {_est_label(e)}")),
    ]  # fmt: skip
    if t["tests"]:
        tests = {(x["repetition"], x["run_a"], x["run_b"], x["metric"]): x for x in t["tests"]}
        pairs = list(dict.fromkeys((x["run_a"], x["run_b"], x["metric"]) for x in t["tests"]))
        cols = reps + ["all"]

        def cell(x: Mapping | None) -> str:
            if x is None:
                return "n/a"
            return f"{signed(x.get('mean_diff'))} (t {num(x.get('t'), 1)}, p {pval(x.get('p'))})"

        test_rows = [[f"{b} - {a}", METRIC_NAMES[m]] + [cell(tests.get((r, a, b, m))) for r in cols]
                     for a, b, m in pairs]  # fmt: skip
        out += [
            Heading("Table 4, paired t-tests over the bootstraps", 3),
            Table(["Comparison (b - a)", "Metric"] + [f"{r}: mean diff (t, p)" for r in cols[:-1]]
                  + ["pooled: mean diff (t, p)"], test_rows,
                  [f"ttest_rel over the {t['n_boot']} paired bootstraps of each repetition "
                   f"(df {t['n_boot'] - 1}); pooled: all repetitions' bootstraps together."]
                  + ([t["note"]] if t.get("note") else [])
                  + reasons(t["tests"], lambda x: f"{x['repetition']} "
                            f"{x['run_b']} - {x['run_a']} {x['metric']}")),
        ]  # fmt: skip
    if t.get("intra_rater"):
        ag = [[f"{a['rep_a']} vs {a['rep_b']}", num(a["dice"]["value"]),
               signed(a.get("mean_diff_ml")), num(a.get("sd_diff_ml")),
               num(a.get("mean_abs_diff_ml"))] for a in t["intra_rater"]]  # fmt: skip
        out += [
            Heading("Intra-rater agreement", 3),
            Table(["Repetitions", "DSC (all voxels)", "Mean volume diff (mL)",
                   "SD diff (mL)", "Mean |diff| (mL)"], ag,
                  ["Volume differences per exam, second minus first repetition."]),
        ]  # fmt: skip
    return out


def _supplemental(doc: Mapping) -> list:
    t = doc["tables"]["supplemental_table1"]
    if "omitted" in t:
        return _omitted(t)
    runs = [r["name"] for r in doc["runs"]]
    rows = [[r["subtype"], str(r["positive"]), str(r["negative"])]
            + [est(r["auc"][run]) for run in runs] for r in t["rows"]]  # fmt: skip
    notes = [t["rule"] + "."]
    for r in t["rows"]:
        why = reasons([r["auc"][run] for run in runs], lambda e: e["run"])
        same = {w.split(": ", 1)[1] for w in why}
        if len(why) == len(runs) and len(same) == 1:  # one reason for every run: say it once
            notes.append(f"{r['subtype']}: {same.pop()}")
        else:
            notes += [f"{r['subtype']} {w}" for w in why]
    return [
        Heading(t["title"]),
        Table(["Subtype", "Isolated positive", "Negative"] + [f"{r} Exam AUC" for r in runs],
              rows, notes),
    ]  # fmt: skip


def _plots(doc: Mapping) -> list:
    out = [Heading("Figures")]
    for key, alt in (
        ("roc", "Exam-level ROC curves on the test role"),
        ("pr", "Pixel precision-recall curves on the pixel-labeled test subset"),
    ):
        p = doc.get("plots", {}).get(key) or {}
        if p.get("file"):
            out.append(Image(p["file"], alt))
        else:
            out.append(Para(f"*{alt}: omitted: {p.get('omitted', 'not drawn')}.*"))
    return out


def _effort(doc: Mapping) -> list:
    rows = doc.get("assist_effort") or []
    if not rows:
        return []
    return [Heading("Model-assisted labeling: edit effort per run"),
            Table(["Model", "Exams", "Median Dice (proposal vs final)", "Minutes per exam",
                   "Median voxels changed"],
                  [[r["run"], str(r["exams"]), num(r["median_dice"]),
                    f"{r['minutes_per_exam']:.1f}", f"{r['median_voxels_changed']:.0f}"]
                   for r in rows],
                  ["Exams started from the run's proposal (Start from: Model) and saved."])]


def blocks(doc: Mapping) -> list:
    out: list = [Heading("ictview evaluation report", 1)]
    out += _data_section(doc)
    out += _table1(doc) + _operating(doc) + _table2(doc) + _table3(doc) + _table4(doc)
    out += _supplemental(doc) + _effort(doc) + _plots(doc)
    if doc.get("notes"):
        out += [Heading("Notes")] + [Para(f"- {n}") for n in doc["notes"]]
    return out


# ---------------------------------------------------------------------------
# renderers


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Mapping) -> str:
    lines: list[str] = []
    for b in blocks(doc):
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Image):
            lines += [f"![{b.alt}]({b.file})", ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join(" --- " for _ in b.header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
            if b.notes:
                lines += [f"- {_md_cell(n)}" for n in b.notes] + [""]
    return "\n".join(lines).rstrip() + "\n"


CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 4px 9px; text-align: left; white-space: nowrap; }
th { background: #f3f4f6; } tr:nth-child(even) td { background: #fafafa; }
ul.notes { color: #555; font-size: 0.92em; margin-top: 0.2em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; }
figure img { width: 520px; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f3f4f6; padding: 0 3px; }
"""


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the layout uses: *emphasis* and `code`."""
    t = html.escape(text)
    if t.startswith("*") and t.endswith("*") and len(t) > 1:
        t = f"<em>{t[1:-1]}</em>"
    parts = t.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(doc: Mapping, folder: Path | None = None) -> str:
    """Self-contained page: inline CSS; images embedded as base64 when found in `folder`."""
    body: list[str] = []
    for b in blocks(doc):
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Image):
            src = html.escape(b.file)
            path = Path(folder) / b.file if folder else None
            if path is not None and path.is_file():
                src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            body.append(f'<figure><img src="{src}" alt="{html.escape(b.alt)}">'
                        f"<figcaption>{html.escape(b.alt)}</figcaption></figure>")  # fmt: skip
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            if b.notes:
                items = "".join(f"<li>{html.escape(n)}</li>" for n in b.notes)
                body.append(f'<ul class="notes">{items}</ul>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>ictview evaluation report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
