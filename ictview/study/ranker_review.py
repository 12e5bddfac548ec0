"""The radiologist's ranker threshold inspection (paper 2.2: C chosen by looking), Qt-free.

A pseudolabel run holds, per unlabeled exam, an image probability per slice. The ranker
sorts all images of all exams together and keeps the top C% positive (training/ranker.py,
same count rule and tie order here, so what the reader sees at C is what the student gets).
For a candidate C the panel shows images just above the cut (and optionally just below);
the reader marks each one a true or false positive. Per C this module estimates the
precision of the images ranked positive from those marks, with a Wilson 95% interval.

Storage (workspace schema v2): `ranker_judgments` (one row per run, exam, slice and rater;
marking again replaces the mark, clearing deletes it) and `ranker_choices` (the C, K_hi and
K_lo chosen for a pseudolabel run; the next student run of that run uses them:
`chosen_ranker` + `student_overrides`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ictview.errors import IctviewError
from ictview.store.catalog import transaction, utc_now
from ictview.store.workspace import Workspace

C_CHOICES = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)  # the paper's candidates
DEFAULT_C, DEFAULT_K_HI, DEFAULT_K_LO = 10.0, 0.7, 0.3
TRUE_POSITIVE, FALSE_POSITIVE = 1, 0


def n_top(n_images: int, c_percent: float) -> int:
    """Images ranked positive at C: round-half-up of n * C / 100 (training/ranker.n_top)."""
    if not 0 < c_percent <= 100:
        raise IctviewError(f"ranker: C must be in (0, 100], got {c_percent}")
    return min(n_images, int(math.floor(n_images * c_percent / 100.0 + 0.5)))


@dataclass(frozen=True)
class RankedImage:
    rank: int  # 0 = highest image probability
    exam: str
    slice_idx: int
    score: float


@dataclass
class RankedImages:
    """Every image of a pseudolabel run, highest image probability first."""

    run: str
    exams: list[str]  # per image, ranked order
    slices: np.ndarray  # int (N,)
    scores: np.ndarray  # float64 (N,), non-increasing

    @property
    def n(self) -> int:
        return int(self.scores.size)

    def image(self, rank: int) -> RankedImage:
        return RankedImage(rank, self.exams[rank], int(self.slices[rank]), float(self.scores[rank]))

    def n_positive(self, c_percent: float) -> int:
        return n_top(self.n, c_percent)

    def cut_score(self, c_percent: float) -> float:
        """Image probability of the last image kept positive at C (nan when none)."""
        k = self.n_positive(c_percent)
        return float(self.scores[k - 1]) if k else math.nan

    def near_cut(self, c_percent: float, above: int, below: int = 0) -> list[RankedImage]:
        """The `above` lowest-ranked positives at C and the `below` images just under the cut,
        in rank order."""
        k = self.n_positive(c_percent)
        lo, hi = max(0, k - max(above, 0)), min(self.n, k + max(below, 0))
        return [self.image(r) for r in range(lo, hi)]

    def ranks(self) -> dict[tuple[str, int], int]:
        return {(e, int(s)): i for i, (e, s) in enumerate(zip(self.exams, self.slices))}


def ranked_exams(ws: Workspace, run: str) -> list[str]:
    """The exams the student's ranker ranks, in its order: the unlabeled role's exams that the
    run predicted (catalog name order, as training/data/sources.py reads them); a run over another
    role: all its predicted exams."""
    have = set(ws.predicted_exams(run))
    names = [e.name for e in ws.exams(role="unlabeled") if e.name in have]
    return names or sorted(have)


def load_ranked(ws: Workspace, run: str) -> RankedImages:
    """Read the run's slice scores (no pixel maps) and rank them like training/ranker.py:
    a stable sort on the negated scores, so ties keep (exam, slice) order."""
    if ws.run(run) is None:
        raise IctviewError(f"{ws.root}: no run named '{run}'")
    names = ranked_exams(ws, run)
    if not names:
        raise IctviewError(f"{ws.root}: run '{run}' has no predictions")
    exams, slices, scores = [], [], []
    for name in names:
        s = np.asarray(ws.read_prediction(run, name, pixels=False).slice_scores, np.float64)
        exams.extend([name] * s.size)
        slices.append(np.arange(s.size))
        scores.append(s)
    flat = np.concatenate(scores)
    if not np.isfinite(flat).all():
        raise IctviewError(f"{ws.root}: run '{run}' has NaN or infinite image probabilities")
    order = np.argsort(-flat, kind="stable")
    return RankedImages(run, [exams[i] for i in order], np.concatenate(slices)[order], flat[order])


# ---- judgments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgment:
    run: str
    exam: str
    slice_idx: int
    rater: str
    judgment: int  # 1 true positive, 0 false positive
    c_percent: float | None
    judged_at: str


def record_judgment(ws: Workspace, run: str, exam: str, slice_idx: int, rater: str,
                    judgment: int | None, c_percent: float | None = None) -> None:
    """Store (replace) one rater's mark on one image; judgment None clears it."""
    rater = rater.strip()
    if not rater:
        raise IctviewError(f"{ws.root}: a rater name is needed to record a judgment")
    if judgment not in (None, TRUE_POSITIVE, FALSE_POSITIVE):
        raise IctviewError(f"{ws.root}: judgment must be 1 (true) or 0 (false), got {judgment}")
    with transaction(ws.con) as con:
        if judgment is None:
            con.execute("DELETE FROM ranker_judgments WHERE run=? AND exam=? AND slice_idx=? "
                        "AND rater=?", (run, exam, int(slice_idx), rater))
            action = "ranker_unjudge"
        else:
            con.execute(
                """INSERT OR REPLACE INTO ranker_judgments(run, exam, slice_idx, rater, judgment,
                   c_percent, judged_at) VALUES (?,?,?,?,?,?,?)""",
                (run, exam, int(slice_idx), rater, int(judgment), c_percent, utc_now()),
            )
            action = "ranker_judge"
    ws.audit(rater, action, exam, f"run={run} slice={int(slice_idx)} judgment={judgment} "
             f"C={c_percent}")


def load_judgments(ws: Workspace, run: str, rater: str | None = None) -> list[Judgment]:
    sql, args = "SELECT * FROM ranker_judgments WHERE run=?", [run]
    if rater:
        sql, args = sql + " AND rater=?", args + [rater]
    rows = ws.con.execute(sql + " ORDER BY judged_at", args)
    return [Judgment(r["run"], r["exam"], int(r["slice_idx"]), r["rater"], int(r["judgment"]),
                     r["c_percent"], r["judged_at"]) for r in rows]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at small n and at 0 or n)."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


@dataclass(frozen=True)
class CutSummary:
    """What the reader's marks say about one C."""

    c_percent: float
    n_positive: int  # images the ranker keeps positive at C
    cut_score: float  # image probability at the cut
    judged: int  # marked images among the positives at C
    true_positive: int
    precision: float  # true_positive / judged (nan when nothing judged)
    ci_low: float
    ci_high: float
    judged_below: int  # marked images below the cut (would be dropped at C)
    true_below: int  # of which true positives (hemorrhage the cut throws away)

    @property
    def precision_text(self) -> str:
        if not self.judged:
            return "–"
        return f"{self.precision:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]"


def summarize_cut(ranked: RankedImages, judgments: list[Judgment], c_percent: float) -> CutSummary:
    """Precision of the top C% estimated from the marked images ranked inside it (each marked
    (image, rater) counts once), with the Wilson interval; marks below the cut counted apart."""
    ranks = ranked.ranks()
    k = ranked.n_positive(c_percent)
    above = [j.judgment for j in judgments if ranks.get((j.exam, j.slice_idx), ranked.n) < k]
    below = [j.judgment for j in judgments
             if k <= ranks.get((j.exam, j.slice_idx), -1) < ranked.n]
    tp = int(sum(above))
    lo, hi = wilson_interval(tp, len(above))
    return CutSummary(float(c_percent), k, ranked.cut_score(c_percent), len(above), tp,
                      tp / len(above) if above else math.nan, lo, hi, len(below), int(sum(below)))


def cut_table(ranked: RankedImages, judgments: list[Judgment],
              cs: tuple[float, ...] = C_CHOICES) -> list[CutSummary]:
    return [summarize_cut(ranked, judgments, c) for c in cs]


# ---- the choice used by the next student run -----------------------------------------------


@dataclass(frozen=True)
class RankerChoice:
    run: str
    c_percent: float
    k_hi: float
    k_lo: float
    chosen_by: str
    chosen_at: str


def save_choice(ws: Workspace, run: str, c_percent: float, k_hi: float, k_lo: float,
                chosen_by: str) -> RankerChoice:
    """Record C, K_hi, K_lo for a pseudolabel run (replacing an earlier choice)."""
    if not 0 < c_percent <= 100:
        raise IctviewError(f"{ws.root}: C must be in (0, 100], got {c_percent}")
    if not 0 <= k_lo <= k_hi <= 1:
        raise IctviewError(f"{ws.root}: need 0 <= K_lo <= K_hi <= 1, got {k_lo}, {k_hi}")
    if not chosen_by.strip():
        raise IctviewError(f"{ws.root}: a rater name is needed to choose C")
    if ws.run(run) is None:
        raise IctviewError(f"{ws.root}: no run named '{run}'")
    now = utc_now()
    with transaction(ws.con) as con:
        con.execute(
            """INSERT OR REPLACE INTO ranker_choices(run, c_percent, k_hi, k_lo, chosen_by,
               chosen_at) VALUES (?,?,?,?,?,?)""",
            (run, float(c_percent), float(k_hi), float(k_lo), chosen_by.strip(), now),
        )
    ws.audit(chosen_by.strip(), "ranker_choose", None,
             f"run={run} C={c_percent:g} K_hi={k_hi:g} K_lo={k_lo:g}")
    return RankerChoice(run, float(c_percent), float(k_hi), float(k_lo), chosen_by.strip(), now)


def load_choice(ws: Workspace, run: str) -> RankerChoice | None:
    r = ws.con.execute("SELECT * FROM ranker_choices WHERE run=?", (run,)).fetchone()
    if r is None:
        return None
    return RankerChoice(r["run"], float(r["c_percent"]), float(r["k_hi"]), float(r["k_lo"]),
                        r["chosen_by"], r["chosen_at"])


def chosen_ranker(ws: Workspace, pseudolabel_run: str) -> tuple[float, float, float] | None:
    """(C, K_hi, K_lo) the radiologist chose for this pseudolabel run, or None.

    The hook for training: a student built on `pseudolabel_run` should use these instead of
    the config's [ranker] top_percent / k_hi / k_lo when they exist."""
    c = load_choice(ws, pseudolabel_run)
    return None if c is None else (c.c_percent, c.k_hi, c.k_lo)


def student_overrides(choice: tuple[float, float, float] | None) -> list[str]:
    """`--set` values that make `ictview-train student` use a chosen (C, K_hi, K_lo)."""
    if choice is None:
        return []
    c, k_hi, k_lo = choice
    return [f"ranker.top_percent={c:g}", f"ranker.k_hi={k_hi:g}", f"ranker.k_lo={k_lo:g}"]
