"""The active-learning queue: which exam a rater should label next (issue 16).

Scores come from the stored prediction files only (pixel probabilities and the
exam score the run wrote; never recomputed from a model), read through the
workspace's read guard (`ws.read_prediction`, `ws.label_status`).

Strategies, highest score served first (ties by exam name):
- uncertainty, measure 'pixel' (default): mean binary entropy (bits) of the pixel
  probabilities inside the exam's brain mask, H(p) = -p log2 p - (1-p) log2(1-p);
  an exam whose map is everywhere near 0 or 1 teaches little;
  measure 'exam': closeness of the exam score s to the run's operating threshold t
  (validation-chosen, `run_thresholds`), 1 - |s - t| / max(t, 1 - t);
- disagreement (needs a second run): 'pixel': 1 - Dice of the two runs' masks
  (each at its own validation-chosen pixel threshold, inside the brain; two empty
  masks agree: 0); 'exam': |s1 - s2|;
- random: a seeded permutation (the same seed serves the same order).

Never served: exams labeled by this rater (a label file in the rater's labelset,
or saved by the rater in any labelset this login may read), and every exam of an
unfinished test-retest study (its facts come from the read guard), whoever asks.
By default only the 'labeled' and 'unlabeled' roles are served: labeling a
validation or test exam for training would leak it into the evaluation (ask for
those with role=...).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ictview.errors import IctviewError

STRATEGIES = ("uncertainty", "disagreement", "random")
MEASURES = ("pixel", "exam")
DEFAULT_ROLES = ("labeled", "unlabeled")
DEFAULT_PIXEL_THRESHOLD = 0.5  # a run without metrics.json (no validation choice)


@dataclass(frozen=True)
class RunThresholds:
    pixel: float
    exam: float
    source: str  # 'validation' or 'default'


def run_thresholds(ws, run: str) -> RunThresholds:
    """The run's validation-chosen thresholds from WS/runs/<run>/metrics.json: the
    Dice-maximising pixel threshold and the exam operating point (0.5 when absent)."""
    if ws.run(run) is None:
        raise IctviewError(f"{ws.root}: no run named '{run}'")
    path = ws.run_dir(run) / "metrics.json"
    pixel = exam = None
    if path.exists():
        try:
            val = json.loads(path.read_text()).get("roles", {}).get("validation", {})
        except (OSError, ValueError) as e:
            raise IctviewError(f"{path}: unreadable metrics ({e})") from None
        pixel = (val.get("pixel") or {}).get("dice_threshold")
        exam = ((val.get("exam") or {}).get("operating_point") or {}).get("threshold")
    ok = lambda v: isinstance(v, (int, float)) and math.isfinite(v)  # noqa: E731
    return RunThresholds(
        pixel=float(pixel) if ok(pixel) else DEFAULT_PIXEL_THRESHOLD,
        exam=float(exam) if ok(exam) else DEFAULT_PIXEL_THRESHOLD,
        source="validation" if ok(pixel) else "default",
    )


def binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty (they agree)."""
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s


@dataclass(frozen=True)
class Served:
    exam: str
    score: float
    site: str
    role: str


@dataclass
class Queue:
    run: str
    strategy: str
    measure: str
    served: list[Served]
    excluded: dict[str, int] = field(default_factory=dict)
    against: str | None = None
    seed: int = 0

    def to_dict(self) -> dict:
        return {"run": self.run, "against": self.against, "strategy": self.strategy,
                "measure": self.measure, "seed": self.seed,
                "served": [asdict(s) for s in self.served], "excluded": self.excluded}


def labeled_by(ws, rater_login: str, labelset: str | None) -> set[str]:
    """Exams this rater already labeled: a file in `labelset`, or saved by them in any
    labelset this login may read (through the guard's listings)."""
    out: set[str] = set()
    for ls in ws.labelsets():
        for exam, (_, saved_by, _) in ws.label_status(ls["name"]).items():
            if ls["name"] == labelset or saved_by == rater_login:
                out.add(exam)
    return out


def study_exams(ws) -> set[str]:
    """Exams of every unfinished test-retest study (the guard's facts): never served."""
    return {e for st in ws.guard.studies() for e in st.exams}


def _brain(ws, exam: str, cache: dict) -> np.ndarray:
    if exam not in cache:
        from ictview.core.brain_mask import brain_mask

        cache[exam] = brain_mask(ws.read_volume(exam).hu)
    return cache[exam]


def score_exam(ws, exam: str, strategy: str, measure: str, run: str, against: str | None,
               thr: RunThresholds, thr2: RunThresholds | None, brains: dict) -> float:
    pixels = measure == "pixel"
    p = ws.read_prediction(run, exam, pixels=pixels)
    if strategy == "uncertainty":
        if pixels:
            brain = _brain(ws, exam, brains)
            return float(binary_entropy(p.prob[brain]).mean()) if brain.any() else 0.0
        t = thr.exam
        return 1.0 - abs(float(p.exam_score) - t) / max(t, 1.0 - t)
    q = ws.read_prediction(against, exam, pixels=pixels)
    if pixels:
        brain = _brain(ws, exam, brains)
        return 1.0 - dice((p.prob > thr.pixel) & brain, (q.prob > thr2.pixel) & brain)
    return abs(float(p.exam_score) - float(q.exam_score))


def next_exams(ws, run: str, strategy: str, *, against: str | None = None,
               roles: tuple[str, ...] | None = None, n: int = 1, rater: str | None = None,
               labelset: str | None = None, measure: str = "pixel", seed: int = 0) -> Queue:
    """The `n` exams to label next (module doc). `rater`: the rater's OS login (default
    the workspace's login); `labelset`: the labelset they label into."""
    if strategy not in STRATEGIES:
        raise IctviewError(f"strategy '{strategy}' is not one of {', '.join(STRATEGIES)}")
    if measure not in MEASURES:
        raise IctviewError(f"measure '{measure}' is not one of {', '.join(MEASURES)}")
    if strategy == "disagreement" and not against:
        raise IctviewError("strategy 'disagreement' needs a second run (--against RUN2)")
    if n < 1:
        raise IctviewError(f"--n must be at least 1, got {n}")
    thr = run_thresholds(ws, run)
    thr2 = run_thresholds(ws, against) if against else None
    roles = tuple(roles) if roles else DEFAULT_ROLES
    exams = [e for e in ws.exams() if e.role in roles]
    done = labeled_by(ws, rater or ws.login, labelset)
    hidden = study_exams(ws)
    excluded = {"labeled_by_rater": 0, "in_unfinished_study": 0, "not_predicted": 0}
    pool = []
    predicted = set(ws.predicted_exams(run))
    if against:
        predicted &= set(ws.predicted_exams(against))
    for e in exams:
        if e.name in hidden:
            excluded["in_unfinished_study"] += 1
        elif e.name in done:
            excluded["labeled_by_rater"] += 1
        elif strategy != "random" and e.name not in predicted:
            excluded["not_predicted"] += 1
        else:
            pool.append(e)
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(len(pool))
        served = [Served(pool[i].name, 0.0, pool[i].site, pool[i].role) for i in order[:n]]
    else:
        brains: dict = {}
        scored = [(score_exam(ws, e.name, strategy, measure, run, against, thr, thr2, brains), e)
                  for e in pool]
        scored.sort(key=lambda t: (-t[0], t[1].name))
        served = [Served(e.name, round(s, 6), e.site, e.role) for s, e in scored[:n]]
    return Queue(run=run, strategy=strategy, measure=measure, served=served, excluded=excluded,
                 against=against, seed=seed)
