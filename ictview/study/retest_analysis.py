"""Test-retest analysis: intra-rater agreement and the paper's Table 4.

Inputs: the repetitions of one rater's segmentation, either a study's sessions
(`retest-<study>-<k>`, only the exams each session marked done) or named
labelsets (e.g. the imported `retest-1..3` of the synthetic test site).
Outputs (one JSON-able document, rendered to Markdown by `render_markdown`):

- intra-rater agreement between every pair of repetitions: Dice over all voxels
  and per exam, hemorrhage volume per exam and repetition, volume differences
  (mean, SD, mean absolute), via `ictview.stats.retest.intra_rater_agreement`;
- Table 4 for chosen runs: each run's pixel AP and Dice against each repetition
  with percentile CIs from 50 image bootstraps, and paired t-tests of each run
  against the first (the baseline) per repetition and pooled, via the report's
  own Table 4 code (`ictview.stats.report`), so both give the same numbers;
- the sessions behind the repetitions, with washout overrides marked (the JSON's
  `sessions[].overridden`, a dagger in the Markdown) and each repetition's washout
  as measured from the audit log (`sessions[].washout_audit_days`: its
  `retest_session_start` minus the previous repetition's `retest_session_end`),
  next to the planned one, so a moved clock or a forgotten override shows.

Dice needs a threshold per run: the Dice-maximising one on the run's
pixel-labeled validation exams ('reference' labelset, as the report does), else
`dice_threshold` (default 0.5), recorded with the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ictview.errors import IctviewError
from ictview.store.workspace import Workspace
from ictview.study.clock import parse_time
from ictview.study.retest_plan import events, load_study, study_of_labelset

RETEST_N_BOOT = 50  # the paper's bootstraps per repetition
DEFAULT_DICE_THRESHOLD = 0.5
OVERRIDE_MARK = "†"


@dataclass(frozen=True)
class Repetition:
    labelset: str
    exams: tuple[str, ...]  # exams this repetition has segmented (done, for a session)
    session: dict | None  # the study session behind it (SessionPlan.to_dict()), if any

    @property
    def overridden(self) -> bool:
        return bool(self.session and self.session.get("overridden"))

    @property
    def display(self) -> str:
        return f"{self.labelset} {OVERRIDE_MARK}" if self.overridden else self.labelset


def audit_washouts(ws: Workspace, study: str) -> dict[int, dict]:
    """Per repetition k >= 2 that started: the washout measured from the audit times
    (start of k minus end of k-1), the planned one and who started it."""
    st = load_study(ws, study)
    out = {}
    for s in st.sessions[1:]:
        starts = events(ws, ("retest_session_start",), s.labelset)
        ends = events(ws, ("retest_session_end",), st.session(s.repetition - 1).labelset)
        if not starts:
            continue
        start = parse_time(starts[0]["at"])
        days = (start - parse_time(ends[-1]["at"])).total_seconds() / 86400 if ends else None
        out[s.repetition] = {
            "washout_audit_days": None if days is None else round(days, 4),
            "washout_planned_days": st.washout_days,
            "washout_short": days is None or days < st.washout_days,
            "started_by": starts[0]["actor"],
        }
    return out


def clock_reversals(ws: Workspace, since_id: int = 0, tolerance_s: float = 60.0) -> list[dict]:
    """Audit rows (from row `since_id` on) written at a time earlier than an earlier row's,
    by more than `tolerance_s`: the clock was moved back at some point, so a washout
    measured across it may have been faked by moving the clock ahead first."""
    out, latest = [], None
    for r in ws.con.execute("SELECT id, at, action FROM audit_log WHERE id >= ? ORDER BY id",
                            (since_id,)):
        try:
            at = parse_time(r["at"])
        except IctviewError:
            continue
        if latest is not None and (latest - at).total_seconds() > tolerance_s:
            out.append({"id": r["id"], "at": r["at"], "action": r["action"],
                        "back_by_days": round((latest - at).total_seconds() / 86400, 4)})
        latest = at if latest is None or at > latest else latest
    return out


def study_repetitions(ws: Workspace, study: str) -> list[Repetition]:
    """The study's started sessions, each with the exams it marked done."""
    st = load_study(ws, study)
    washouts = audit_washouts(ws, study)
    out = []
    for s in st.sessions:
        if s.started_at is None:
            continue
        done = {e["exam"] for e in events(ws, ("retest_exam_done",), s.labelset)}
        out.append(Repetition(s.labelset, tuple(e for e in st.exams if e in done),
                              {**s.to_dict(), **washouts.get(s.repetition, {})}))
    return out


def labelset_repetitions(ws: Workspace, labelsets: Sequence[str]) -> list[Repetition]:
    """Named labelsets as repetitions (a session's labelset still gets its session)."""
    known = {ls["name"] for ls in ws.labelsets()}
    out = []
    for ls in labelsets:
        if ls not in known:
            raise IctviewError(f"{ws.root}: no labelset named '{ls}'")
        found = study_of_labelset(ws, ls)
        session = None
        if found:
            session = {**load_study(ws, found[0]).session(found[1]).to_dict(),
                       **audit_washouts(ws, found[0]).get(found[1], {})}
        out.append(Repetition(ls, tuple(ws.labelset_exams(ls)), session))
    if len(set(labelsets)) != len(labelsets):
        raise IctviewError(f"{ws.root}: a labelset is given twice")
    return out


def _dice_thresholds(ws: Workspace, runs: Sequence[str], fallback: float
                     ) -> tuple[dict[str, float], dict[str, dict]]:
    """Per run: threshold maximising Dice on its pixel-labeled validation exams, else fallback."""
    from ictview.stats.report_data import REFERENCE_LABELSET, _pixel_sets

    val = {e.name for e in ws.exams(role="validation")}
    ref = set(ws.labelset_exams(REFERENCE_LABELSET))
    chosen, record = {}, {}
    for r in runs:
        exams = sorted(val & ref & set(ws.predicted_exams(r)))
        choice = None
        if exams:
            sets, _ = _pixel_sets(ws, {e: [REFERENCE_LABELSET] for e in exams}, [r], None, "")
            choice = sets[REFERENCE_LABELSET].stats[r].best_dice_threshold("validation")
        if choice is not None and not math.isnan(choice.threshold):
            chosen[r] = float(choice.threshold)
            record[r] = {**choice.to_dict(), "exams": len(exams)}
        else:
            chosen[r] = float(fallback)
            why = ("no pixel-labeled validation exam predicted" if not exams
                   else "Dice undefined on the validation exams")  # fmt: skip
            record[r] = {"threshold": float(fallback), "chosen_on": "fixed",
                         "rule": "p >= threshold",
                         "reason": f"{why}: fixed threshold {fallback:g}"}  # fmt: skip
    return chosen, record


def analyze(
    ws: Workspace,
    *,
    study: str | None = None,
    labelsets: Sequence[str] | None = None,
    runs: Sequence[str] = (),
    n_boot: int = RETEST_N_BOOT,
    seed: int = 0,
    dice_threshold: float | None = None,
) -> dict:
    """The analysis document (see the module doc). Give a study or labelsets (>= 2)."""
    from ictview.stats.report import _table4, jsonable
    from ictview.stats.report_data import RetestData, _pixel_sets
    from ictview.stats.retest import intra_rater_agreement

    if (study is None) == (labelsets is None):
        raise IctviewError(f"{ws.root}: give a study or labelsets to analyse (one of them)")
    reps = study_repetitions(ws, study) if study else labelset_repetitions(ws, labelsets or [])
    if len(reps) < 2:
        raise IctviewError(f"{ws.root}: the analysis needs at least 2 repetitions with "
                           f"segmentations, found {len(reps)}")  # fmt: skip
    if n_boot < 2:
        raise IctviewError(f"n_boot: need at least 2 bootstraps, got {n_boot}")
    runs = list(dict.fromkeys(runs))
    notes: list[str] = []
    predicted = {r: set(ws.predicted_exams(r)) for r in runs}
    for r in runs:
        if not predicted[r]:
            known = ", ".join(sorted(p.name for p in (ws.root / "predictions").iterdir()
                                     if p.is_dir())) or "none"  # fmt: skip
            raise IctviewError(f"{ws.root}: run '{r}' has no predictions (runs with "
                               f"predictions: {known})")  # fmt: skip
    # exams every repetition segmented, in the study's (or name) order
    candidates = list(dict.fromkeys(e for rep in reps for e in rep.exams))
    exams, excluded = [], []
    for e in sorted(candidates):
        missing = [rep.labelset for rep in reps if e not in rep.exams]
        if missing:
            excluded.append({"exam": e, "reason": f"not segmented in {', '.join(missing)}"})
            continue
        no_pred = [r for r in runs if e not in predicted[r]]
        if no_pred:
            excluded.append({"exam": e, "reason": f"no prediction from {', '.join(no_pred)}"})
            continue
        exams.append(e)
    if not exams:
        raise IctviewError(f"{ws.root}: no exam is segmented in every repetition"
                           + (" and predicted by every run" if runs else ""))  # fmt: skip
    for rep in reps:
        s = rep.session
        if s and s["status"] != "ended":
            notes.append(f"{rep.labelset}: session {s['status']} ({len(rep.exams)} of "
                         f"{s['exams']} exams done); only exams done in every "
                         "repetition are analysed")  # fmt: skip
        if rep.overridden:
            notes.append(f"{rep.display}: started before the washout ended (override by "
                         f"{s['override_by']}: \"{s['override_reason']}\")")  # fmt: skip
        if s and s.get("washout_short") and not rep.overridden:
            notes.append(f"{rep.labelset}: the audit log shows a washout of "
                         f"{_days(s.get('washout_audit_days'))}, shorter than the planned "
                         f"{s['washout_planned_days']:g} days")  # fmt: skip

    reversals = []
    if study:
        first = ws.con.execute(
            """SELECT MIN(id) FROM audit_log WHERE action='retest_plan' AND
               CASE WHEN json_valid(detail) THEN json_extract(detail, '$.study') END = ?""",
            (study,)).fetchone()[0] or 0
        reversals = clock_reversals(ws, first)
        if reversals:
            worst = max(reversals, key=lambda x: x["back_by_days"])
            notes.append(f"the audit log's times go back {len(reversals)} time(s) during the "
                         f"study (at most {worst['back_by_days']:.2f} days, at row {worst['id']}, "
                         f"{worst['action']}): the clock was moved, so the washouts above may "
                         "not be real")  # fmt: skip
    names = [rep.labelset for rep in reps]
    plan = {e: list(names) for e in exams}
    sets, unions = _pixel_sets(ws, plan, runs, None, "test-retest exams", agreement=names)
    union_masks = {ls: [unions[e][i] for e in exams] for i, ls in enumerate(names)}
    voxel_ml = [ws.exam(e).voxel_ml for e in exams]

    agreement = intra_rater_agreement(union_masks, voxel_ml, exams)
    per_exam = []
    for j, e in enumerate(exams):
        per_exam.append({
            "exam": e,
            "volume_ml": {ls: float(np.count_nonzero(union_masks[ls][j]) * voxel_ml[j])
                          for ls in names},
            "dice": {f"{a.rep_a} vs {a.rep_b}": a.exam_dice[j] for a in agreement},
        })  # fmt: skip
    doc = {
        "title": "Test-retest analysis",
        "workspace": str(ws.root),
        "study": study,
        "repetitions": names,
        "sessions": [{"labelset": rep.labelset, "exams_done": len(rep.exams),
                      **(rep.session or {"study": None})} for rep in reps],  # fmt: skip
        "overridden": [rep.labelset for rep in reps if rep.overridden],
        "exams": exams,
        "excluded": excluded,
        "agreement": {"pairs": [a.to_dict() for a in agreement], "per_exam": per_exam},
        "settings": {"n_boot": n_boot, "seed": seed},
        "notes": notes,
        "clock_reversals": reversals,
    }
    if runs:
        thresholds, record = _dice_thresholds(
            ws, runs, DEFAULT_DICE_THRESHOLD if dice_threshold is None else dice_threshold
        )
        if dice_threshold is not None:  # an explicit threshold wins over validation
            thresholds = {r: float(dice_threshold) for r in runs}
            record = {r: {"threshold": float(dice_threshold), "chosen_on": "given",
                          "rule": "p >= threshold"} for r in runs}  # fmt: skip
        rt = RetestData(exams, names, {ls: sets[ls] for ls in names}, union_masks, voxel_ml)
        table4 = _table4(SimpleNamespace(retest=rt), runs, thresholds, seed, n_boot)
        table4.pop("intra_rater", None)  # the agreement section holds it, per exam too
        doc["runs"] = runs
        doc["dice_thresholds"] = record
        doc["table4"] = table4
    else:
        doc["table4"] = {"title": "Table 4", "omitted": "no runs given (--runs A B)"}
    return jsonable(doc)


# ---------------------------------------------------------------------------
# Markdown


def render_markdown(doc: dict) -> str:
    from ictview.stats.report_render import Heading, Para, Table, _table4, num, signed

    marks = {s["labelset"]: f"{s['labelset']} {OVERRIDE_MARK}" for s in doc["sessions"]
             if s.get("overridden")}  # fmt: skip
    shown = lambda ls: marks.get(ls, ls)  # noqa: E731
    blocks: list = [Heading(doc["title"] + (f": study {doc['study']}" if doc["study"] else ""), 1)]
    rows = []
    for s in doc["sessions"]:
        over = "—"
        if s.get("overridden"):
            over = f"{OVERRIDE_MARK} by {s['override_by']}: {s['override_reason']}"
        washout = "—"
        if "washout_audit_days" in s:
            washout = (f"{_days(s['washout_audit_days'])} "
                       f"(planned {s['washout_planned_days']:g} d)")  # fmt: skip
        rows.append([shown(s["labelset"]), str(s.get("repetition") or "—"),
                     s.get("status") or "imported", _day(s.get("started_at")),
                     _day(s.get("ended_at")), str(s["exams_done"]), washout, over])  # fmt: skip
    blocks += [
        Heading("Repetitions", 2),
        Table(["Labelset", "Repetition", "Status", "Started", "Ended", "Exams",
               "Washout (audit log)", "Washout override"],
              rows, [f"{OVERRIDE_MARK}: session started before its washout ended "
                     "(administrator override)."] if marks else []),
        Para(f"{len(doc['exams'])} exams analysed"
             + (f"; {len(doc['excluded'])} excluded: " + "; ".join(
                 f"{x['exam']} ({x['reason']})" for x in doc["excluded"][:8])
                if doc["excluded"] else "") + "."),
    ]  # fmt: skip
    pairs = doc["agreement"]["pairs"]
    blocks += [
        Heading("Intra-rater agreement", 2),
        Table(["Repetitions", "DSC (all voxels)", "Mean volume diff (mL)", "SD diff (mL)",
               "Mean |diff| (mL)"],
              [[f"{shown(a['rep_a'])} vs {shown(a['rep_b'])}", num(a["dice"]["value"]),
                signed(a.get("mean_diff_ml")), num(a.get("sd_diff_ml")),
                num(a.get("mean_abs_diff_ml"))] for a in pairs],
              ["Volume differences per exam, second minus first repetition; DSC over the "
               "hemorrhage voxels (labels 1-5) of all exams together."]),
    ]  # fmt: skip
    reps = doc["repetitions"]
    pair_keys = [f"{a['rep_a']} vs {a['rep_b']}" for a in pairs]
    blocks += [
        Heading("Per exam", 3),
        Table(["Exam"] + [f"{shown(r)} (mL)" for r in reps]
              + [f"DSC {k.replace(' vs ', '/')}" for k in pair_keys],
              [[x["exam"]] + [num(x["volume_ml"][r], 2) for r in reps]
               + [num(x["dice"][k]) for k in pair_keys] for x in doc["agreement"]["per_exam"]],
              ["DSC n/a: both repetitions empty on that exam."]),
    ]  # fmt: skip
    t4 = dict(doc["table4"])
    if "omitted" in t4:
        blocks += [Heading("Table 4", 2), Para(f"*Omitted: {t4['omitted']}.*")]
    else:
        t4["repetitions"] = [shown(r) for r in t4["repetitions"]]
        for e in t4["estimates"]:
            e["repetition"] = shown(e["repetition"])
        for t in t4["tests"]:
            t["repetition"] = shown(t["repetition"])
        blocks += _table4({"tables": {"table4": t4}})
        thr = doc.get("dice_thresholds", {})
        blocks.append(Para("Dice thresholds (p >= t): " + ", ".join(
            f"{r} {v['threshold']:.3f} ({v['chosen_on']})" for r, v in thr.items()) + "."))
    if doc["notes"]:
        blocks += [Heading("Notes", 2)] + [Para(f"- {n}") for n in doc["notes"]]
    return _markdown(blocks)


def _days(days: float | None) -> str:
    return "unknown (no end of the previous repetition in the audit log)" if days is None \
        else f"{days:.2f} d"


def _day(text: str | None) -> str:
    return text[:16].replace("T", " ") + " UTC" if text else "—"


def _markdown(blocks: list) -> str:
    from ictview.stats.report_render import Heading, Para, Table, _md_cell

    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join(" --- " for _ in b.header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
            lines += [f"- {_md_cell(n)}" for n in b.notes] + ([""] if b.notes else [])
    return "\n".join(lines).rstrip() + "\n"
