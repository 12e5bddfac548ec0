"""Prediction review and run comparison data, Qt-free: which runs have predictions, the
per-exam scores and references the exam tables show, and the one-line difference summary
of two runs on one exam.

Exam-level reference (what "positive exam" means in the tables): the readers' majority ICH
read where there are reads (CQ500), else hemorrhage in the 'reference' label volume, else
any positive image label (RSNA), else unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ictview.core.overlay import hemorrhage
from ictview.errors import IctviewError
from ictview.stats.report_data import MODEL_KINDS
from ictview.store.workspace import Workspace

REFERENCE_LABELSET = "reference"
_STRUCTURE = np.ones((3, 3, 3), bool)


def prediction_runs(ws: Workspace) -> list[dict]:
    """Catalog rows of the model runs that have prediction files, oldest first. A pseudolabel
    run (`<teacher>-pl`) is not a model: its files are the teacher's predictions on the
    unlabeled role, the student's training targets, and reviewing it would review the teacher
    on exams without a reference."""
    root = ws.root / "predictions"
    return [r for r in ws.runs()
            if r["kind"] in MODEL_KINDS and any((root / r["name"]).glob("*.h5"))]


def default_run(rows: list[dict]) -> str:
    """The run a review opens on: the study's semi-supervised model (the latest student run,
    `ss` after `ictview-train study`), else the latest teacher, else the latest run; never
    an oracle or ablation just because it was trained last. "" when there is none."""
    for kind in ("student", "teacher"):
        named = [r["name"] for r in rows if r["kind"] == kind]
        if named:
            return named[-1]
    return rows[-1]["name"] if rows else ""


@dataclass
class ExamRow:
    exam: str
    site: str
    role: str
    reference: bool | None  # exam-level: True positive, False negative, None unknown
    reference_source: str  # "reads", "mask", "image labels" or ""
    pixel_reference: bool  # has a 'reference' label volume (pixel-level review possible)
    scores: dict[str, float] = field(default_factory=dict)  # run -> exam score

    def score(self, run: str) -> float:
        return self.scores.get(run, math.nan)

    def disagreement(self, a: str, b: str) -> float:
        d = abs(self.score(a) - self.score(b))
        return d if math.isfinite(d) else -1.0


def exam_reference(ws: Workspace, exam: str, has_mask: bool) -> tuple[bool | None, str]:
    vote = ws.exam_label(exam, "ICH")
    if vote is not None:
        return bool(vote), "reads"
    if has_mask:
        labels = ws.load_labels(REFERENCE_LABELSET, exam)
        if labels is not None:
            return bool(hemorrhage(labels).any()), "mask"
    il = ws.image_labels(exam)
    if il is not None and (il[:, 0] >= 0).any():
        return bool((il[:, 0] == 1).any()), "image labels"
    return None, ""


def exam_rows(ws: Workspace, runs: list[str], roles: tuple[str, ...] | None = None) -> list[ExamRow]:
    """One row per exam predicted by any of `runs` (restricted to `roles` when given)."""
    predicted = {r: set(ws.predicted_exams(r)) for r in runs}
    wanted = set().union(*predicted.values()) if predicted else set()
    masks = set(ws.labelset_exams(REFERENCE_LABELSET))
    rows = []
    for e in ws.exams():
        if e.name not in wanted or (roles and e.role not in roles):
            continue
        ref, src = exam_reference(ws, e.name, e.name in masks)
        row = ExamRow(e.name, e.site, e.role, ref, src, e.name in masks)
        for r in runs:
            if e.name in predicted[r]:
                row.scores[r] = float(ws.read_prediction(r, e.name, pixels=False).exam_score)
        rows.append(row)
    return rows


def reference_mask(ws: Workspace, exam: str) -> np.ndarray | None:
    """bool (z, y, x) hemorrhage of the 'reference' labelset, None when there is no file."""
    labels = ws.load_labels(REFERENCE_LABELSET, exam)
    return None if labels is None else hemorrhage(labels)


def load_probability(ws: Workspace, run: str, exam: str) -> np.ndarray:
    ws.guard.require_prediction(run, exam)  # hidden says so, rather than "no prediction"
    if exam not in set(ws.predicted_exams(run)):
        raise IctviewError(f"{ws.root}: run '{run}' has no prediction for exam '{exam}'")
    return ws.read_prediction(run, exam, pixels=True).prob


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    inter = np.count_nonzero(reference & prediction)
    total = np.count_nonzero(reference) + np.count_nonzero(prediction)
    return 2.0 * inter / total if total else math.nan


# ---- difference of two runs on one exam ---------------------------------------------------------


def _slices(zs: list[int], limit: int = 3) -> str:
    zs = sorted({z + 1 for z in zs})
    text = ", ".join(str(z) for z in zs[:limit]) + ("…" if len(zs) > limit else "")
    return ("slice " if len(zs) == 1 else "slices ") + text


def _components(mask: np.ndarray, min_voxels: int = 1) -> list[tuple[np.ndarray, tuple]]:
    lab, _n = ndimage.label(mask, structure=_STRUCTURE)
    comps = [(lab[sl] == i, sl) for i, sl in enumerate(ndimage.find_objects(lab), start=1)]
    return [(c, sl) for c, sl in comps if int(c.sum()) >= min_voxels]


def _peak(comp: np.ndarray, sl: tuple) -> int:
    return int(sl[0].start + np.argmax(comp.reshape(comp.shape[0], -1).sum(1)))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def difference_summary(name_a: str, name_b: str, reference: np.ndarray | None,
                       pred_a: np.ndarray, pred_b: np.ndarray,
                       spacing_zyx: tuple[float, float, float],
                       score_a: float = math.nan, score_b: float = math.nan,
                       min_voxels: int = 1) -> str:
    """One line on where two thresholded predictions differ on an exam: lesions one finds and
    the other misses, false-positive regions only one has (regions of at least `min_voxels`),
    Dice (when the exam has reference blood) and exam scores."""
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    parts = []

    def found_only(x: str, px: np.ndarray, y: str, py: np.ndarray) -> None:
        if reference is None:
            only = [(c, sl) for c, sl in _components(px, min_voxels) if not py[sl][c].any()]
            if only:
                ml = sum(int(c.sum()) for c, _ in only) * voxel_ml
                parts.append(f"{x} marks {_plural(len(only), 'region')} {y} does not "
                             f"({_slices([_peak(c, sl) for c, sl in only])}, {ml:.2f} mL)")
            return
        lesions = [(c, sl) for c, sl in _components(reference, min_voxels)
                   if px[sl][c].any() and not py[sl][c].any()]
        if lesions:
            ml = sum(int(c.sum()) for c, _ in lesions) * voxel_ml
            parts.append(f"{x} finds {_plural(len(lesions), 'lesion')} {y} misses "
                         f"({_slices([_peak(c, sl) for c, sl in lesions])}, {ml:.2f} mL)")
        fps = [(c, sl) for c, sl in _components(px, min_voxels)
               if not reference[sl][c].any() and not py[sl][c].any()]
        if fps:
            parts.append(f"{x} alone has {_plural(len(fps), 'false-positive region')} "
                         f"({_slices([_peak(c, sl) for c, sl in fps])})")

    found_only(name_a, pred_a, name_b, pred_b)
    found_only(name_b, pred_b, name_a, pred_a)
    if not parts:
        n = len(_components(pred_a | pred_b, min_voxels))
        parts.append(f"{name_a} and {name_b} mark the same "
                     f"{_plural(n, 'region')}" if n else f"neither {name_a} nor {name_b} marks "
                     "anything at this threshold")
    if reference is not None and reference.any():
        da, db = dice(reference, pred_a), dice(reference, pred_b)
        parts.append(f"Dice {da:.2f} vs {db:.2f}")
    if math.isfinite(score_a) and math.isfinite(score_b):
        parts.append(f"exam score {score_a:.3f} vs {score_b:.3f}")
    return "; ".join(parts)
