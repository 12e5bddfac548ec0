"""Slice sources: the pools of slices a run trains on, with a label map per slice.

A ``SliceSource`` has a label map per slice, an optional explicit patch label
(``cls_target``: -1 = from the pixels), a positive flag per slice for the balance rule, and the
augmentation (crop) to draw with.

- ``labeled``: the labeled role with its reference pixel labels (teacher; every student).
- ``pseudo``: the unlabeled role with ranker pseudo-labels from a pseudolabel run (SS student;
  ``ranker=False``: the no-ranker ablation).
- ``image-oracle``: the unlabeled role, every pixel ignored (255), the whole slice is the
  patch and the reference image label is the patch label.
- ``pixel-oracle``: the unlabeled role, K-thresholded pseudo pixels, zeroed on images whose
  reference label is negative; patch label = the image label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ictview.core.labels import IGNORE
from ictview.errors import IctviewError
from ictview.store.workspace import Workspace
from training.augment import AugmentConfig
from training.data.exam_cache import ExamCache
from training.ranker import oracle_pixel_labels, pseudo_labels


@dataclass
class SliceSource:
    name: str
    exams: list[str]
    hu: list[np.ndarray]  # per exam (z, y, x) int16, brain-masked
    labels: list[np.ndarray]  # per exam (z, y, x) uint8 label maps (0..5, 255)
    cls_target: list[np.ndarray] | None  # per exam (z,) float32, -1 = from pixels
    augment: AugmentConfig
    positive_fraction: float | None  # chance to draw among positive slices; None: uniform
    # False: no pixel loss from this source at all (image-slice oracle): rendered label maps
    # are all 255, including the background that scaling pads around the slice
    pixel_loss: bool = True
    index: np.ndarray = field(init=False)  # (n, 2) int64 (exam, slice)
    positive: np.ndarray = field(init=False)  # (n,) bool
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        idx, pos = [], []
        for e, lab in enumerate(self.labels):
            z = lab.shape[0]
            idx.append(np.stack([np.full(z, e), np.arange(z)], axis=1))
            p = ((lab > 0) & (lab != IGNORE)).reshape(z, -1).any(axis=1)
            if self.cls_target is not None:
                t = self.cls_target[e]
                p = np.where(t >= 0, t > 0.5, p)
            pos.append(p)
        self.index = np.concatenate(idx) if idx else np.zeros((0, 2), np.int64)
        self.positive = np.concatenate(pos) if pos else np.zeros(0, bool)
        self._pos_idx = np.flatnonzero(self.positive)
        self._neg_idx = np.flatnonzero(~self.positive)

    def __len__(self) -> int:
        return len(self.index)

    def pick(self, gen: torch.Generator) -> int:
        """One slice (row of ``index``), balanced by ``positive_fraction``. Always two draws."""
        u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        pool = None
        if self.positive_fraction is not None:
            pool = self._pos_idx if u[0] < self.positive_fraction else self._neg_idx
            if len(pool) == 0:
                pool = None
        if pool is None:
            return min(int(u[1] * len(self.index)), len(self.index) - 1)
        return int(pool[min(int(u[1] * len(pool)), len(pool) - 1)])

    def summary(self) -> dict:
        return {
            "name": self.name, "exams": len(self.exams), "slices": len(self),
            "positive_slices": int(self.positive.sum()), "crop": self.augment.crop,
            "positive_fraction": self.positive_fraction, **self.info,
        }


@dataclass(frozen=True)
class ClsPrior:
    """The patch-label prior of one source: what its sampler draws (``sampled``), what the
    patch head is trained against (``prior``), and the loss weights that turn one into the
    other (E_sampled[w * y] = prior, E_sampled[w] = 1)."""

    sampled: float
    prior: float
    w_pos: float
    w_neg: float

    def to_dict(self) -> dict:
        return asdict(self)


def cls_prior_weights(source: SliceSource, cls_prior: float | str) -> ClsPrior:
    """Importance weights of the classification loss for ``source`` (slice level: exact when
    the crop is the whole slice, as in the cpu-study preset; with smaller crops the patch rate
    also depends on augment.positive_fraction and this re-weights the slice draw only)."""
    n = len(source)
    true = float(source.positive.mean()) if n else 0.0
    f = source.positive_fraction
    both = len(source._pos_idx) > 0 and len(source._neg_idx) > 0
    sampled = float(f) if (f is not None and both) else true
    if cls_prior == "sampled":
        prior = sampled
    elif cls_prior == "true":
        prior = true
    else:
        prior = float(cls_prior)
    if sampled <= 0.0 or sampled >= 1.0:  # one class only: nothing to re-weight
        return ClsPrior(sampled, sampled, 1.0, 1.0)
    return ClsPrior(sampled, prior, prior / sampled, (1.0 - prior) / (1.0 - sampled))


def _exam_names(ws: Workspace, role: str) -> list[str]:
    return [e.name for e in ws.exams(role=role)]


def labeled_source(
    ws: Workspace, cache: ExamCache, cfg, exams: Sequence[str] | None = None
) -> SliceSource:
    """The labeled role with its reference pixel labels (exams without a label file skipped)."""
    labelset = cfg.data.labelset
    names = list(exams) if exams is not None else _exam_names(ws, "labeled")
    kept, hu, labels = [], [], []
    for name in names:
        lab = ws.load_labels(labelset, name)
        if lab is None:
            continue
        kept.append(name)
        hu.append(cache.hu(name))
        labels.append(lab)
    if not kept:
        raise IctviewError(
            f"{ws.root}: no labeled exam has pixel labels in labelset '{labelset}'"
        )
    return SliceSource("labeled", kept, hu, labels, None, cfg.augment,
                       cfg.data.slice_positive_fraction)


def _predictions(ws: Workspace, run: str, names: Sequence[str]) -> tuple[list[str], list, list]:
    # blinding (ictview/store/read_guard.py): refuse rather than train on fewer exams
    ws.guard.require_unblinded(names, f"pseudo-labels from run '{run}'")
    have = set(ws.predicted_exams(run))
    kept = [n for n in names if n in have]
    if not kept:
        raise IctviewError(f"{ws.root}: pseudolabel run '{run}' has no predictions for these exams")
    probs, scores = [], []
    for n in kept:
        p = ws.read_prediction(run, n, pixels=True)
        probs.append(p.prob)
        scores.append(p.slice_scores)
    return kept, probs, scores


def pseudo_source(
    ws: Workspace, cache: ExamCache, cfg, pseudolabel_run: str, *, ranker: bool = True,
    exams: Sequence[str] | None = None,
) -> SliceSource:
    """Unlabeled role + ranker pseudo-labels from a pseudolabel run's predictions."""
    _check_binary(cfg, "pseudo-labels")
    names = list(exams) if exams is not None else _exam_names(ws, "unlabeled")
    kept, probs, scores = _predictions(ws, pseudolabel_run, names)
    r = cfg.ranker
    labels, _, summary = pseudo_labels(probs, scores, r.top_percent, r.k_hi, r.k_lo,
                                       enabled=ranker and r.enabled)
    src = SliceSource("pseudo" if ranker and r.enabled else "pseudo-no-ranker", kept,
                      [cache.hu(n) for n in kept], labels, None, cfg.augment,
                      cfg.data.pseudo_positive_fraction)
    src.info = {"pseudolabel_run": pseudolabel_run, "ranker": summary.to_dict()}
    return src


def _image_labels(ws: Workspace, name: str) -> np.ndarray:
    il = ws.image_labels(name)
    if il is None:
        raise IctviewError(f"{ws.root}: exam '{name}' has no image labels (oracles need them)")
    return il[:, 0].astype(np.float32)  # FINDINGS[0] = ICH; -1 unknown


def image_oracle_source(ws: Workspace, cache: ExamCache, cfg,
                        exams: Sequence[str] | None = None) -> SliceSource:
    """Unlabeled role: whole slice as the patch, reference image label as the patch label,
    every pixel ignored (no pixel loss on this set)."""
    names = list(exams) if exams is not None else _exam_names(ws, "unlabeled")
    hu, labels, targets = [], [], []
    for n in names:
        v = cache.hu(n)
        hu.append(v)
        labels.append(np.full(v.shape, IGNORE, np.uint8))
        targets.append(_image_labels(ws, n))
    aug = replace(cfg.augment, crop=None, positive_fraction=None)
    return SliceSource("image-oracle", list(names), hu, labels, targets, aug,
                       cfg.data.pseudo_positive_fraction, pixel_loss=False)


def pixel_oracle_source(ws: Workspace, cache: ExamCache, cfg, pseudolabel_run: str,
                        exams: Sequence[str] | None = None) -> SliceSource:
    """Unlabeled role: K-thresholded pseudo pixels, all 0 on reference-negative images; the
    image label is the patch label."""
    _check_binary(cfg, "pixel-oracle labels")
    names = list(exams) if exams is not None else _exam_names(ws, "unlabeled")
    kept, probs, _ = _predictions(ws, pseudolabel_run, names)
    r = cfg.ranker
    labels, targets = [], []
    for n, p in zip(kept, probs):
        il = _image_labels(ws, n)
        labels.append(oracle_pixel_labels(p, il, r.k_hi, r.k_lo))
        targets.append(il)
    src = SliceSource("pixel-oracle", kept, [cache.hu(n) for n in kept], labels, targets,
                      cfg.augment, cfg.data.pseudo_positive_fraction)
    src.info = {"pseudolabel_run": pseudolabel_run}
    return src


def _check_binary(cfg, what: str) -> None:
    if cfg.model.num_classes != 2:
        raise IctviewError(f"{cfg.source}: {what} are binary: set model.num_classes = 2")


def fingerprint(sources: Sequence[SliceSource]) -> str:
    """What the run trains on: exam lists, label digests and source settings."""
    h = hashlib.sha1()
    for s in sources:
        h.update(json.dumps({"name": s.name, "exams": s.exams, "info": s.info}, sort_keys=True,
                            default=str).encode())
        for lab in s.labels:
            h.update(hashlib.sha1(np.ascontiguousarray(lab)).digest())
    return h.hexdigest()
