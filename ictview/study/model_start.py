"""Start labeling an exam from a model's prediction (issue 16; the rules are in
ictview/core/proposal.py). Predictions are read through the read guard
(`ws.read_prediction`); the threshold is the run's validation-chosen one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ictview.core.proposal import DEFAULT_MIN_VOXELS, UNCLASSIFIED, proposal_components
from ictview.errors import IctviewError
from ictview.study.active_learning import run_thresholds


@dataclass
class Proposal:
    run: str
    exam: str
    threshold: float
    threshold_source: str  # 'validation' or 'default'
    min_voxels: int
    components: np.ndarray  # int32 (z, y, x), 1..n
    n: int

    @property
    def voxels(self) -> int:
        return int(np.count_nonzero(self.components))


def propose(ws, run: str, exam: str, min_voxels: int = DEFAULT_MIN_VOXELS,
            threshold: float | None = None, hu: np.ndarray | None = None) -> Proposal:
    """The run's proposal for `exam`: threshold (validation-chosen unless given), brain
    mask, components of at least `min_voxels`."""
    from ictview.core.brain_mask import brain_mask

    thr = run_thresholds(ws, run)
    if exam not in set(ws.predicted_exams(run)):
        ws.guard.require_prediction(run, exam)  # a hidden exam: say so, not "no prediction"
        raise IctviewError(f"{ws.root}: run '{run}' has no prediction for exam '{exam}'")
    prob = ws.read_prediction(run, exam).prob
    t = thr.pixel if threshold is None else float(threshold)
    brain = brain_mask(ws.read_volume(exam).hu if hu is None else hu)
    comps, n = proposal_components(prob, brain, t, min_voxels)
    return Proposal(run, exam, t, thr.source if threshold is None else "given", int(min_voxels),
                    comps, n)


def start_from_model(model, ws, run: str, min_voxels: int = DEFAULT_MIN_VOXELS) -> Proposal:
    """Apply `run`'s proposal to an open AnnotationModel (its own undo step) and record it
    in the catalog (label_effort). Only an exam with no labels yet in this labelset: the
    effort is measured against the proposal alone."""
    if model.read_only:
        raise IctviewError(f"{model.exam}: read-only labels cannot start from a model")
    if np.any(model.labels):
        raise IctviewError(f"{model.exam}: labelset '{model.labelset}' already has labels for "
                           "this exam; start from a model on an unlabeled exam")
    p = propose(ws, run, model.exam, min_voxels, hu=model.hu)
    ws.start_effort(model.labelset, model.exam, run, p.threshold, p.min_voxels, p.voxels,
                    model.rater)
    model.apply_proposal(p.components, run)
    return p


def resume_proposal(model, ws) -> Proposal | None:
    """On reopening an exam started from a model: recompute its proposal from the recorded
    run, threshold and size, so components stay clickable and effort keeps being measured."""
    rows = [r for r in ws.effort(model.labelset) if r["exam"] == model.exam]
    if not rows:
        return None
    r = rows[0]
    p = propose(ws, r["run"], model.exam, r["min_voxels"], threshold=r["threshold"], hu=model.hu)
    base = np.where(p.components > 0, UNCLASSIFIED, 0).astype(np.uint8)
    model.proposal_components, model.proposal_labels = p.components, base
    model.proposal_run = r["run"]
    model.proposal_revision = model.revision - int(r["strokes"])
    if model._saver is not None:
        model._saver.effort_base = (base, model.proposal_revision)
    return p
