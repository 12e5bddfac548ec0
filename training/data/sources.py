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
from training.data.exam_cache import ConstantSlices, ExamCache, SliceView
from training.ranker import rank_slices, threshold_pixels


@dataclass
class SliceSource:
    name: str
    exams: list[str]
    # per exam (z, y, x) int16, brain-masked: SliceViews (training/data/exam_cache.py) read a
    # slice at a time through the process's ExamCache, or arrays (small in-memory sources)
    hu: Sequence
    labels: Sequence  # per exam (z, y, x) uint8 label maps (0..5, 255): views or arrays
    cls_target: list[np.ndarray] | None  # per exam (z,) float32, -1 = from pixels
    augment: AugmentConfig
    positive_fraction: float | None  # chance to draw among positive slices; None: uniform
    # False: no pixel loss from this source at all (image-slice oracle): rendered label maps
    # are all 255, including the background that scaling pads around the slice
    pixel_loss: bool = True
    # per exam (z,) bool "has a positive pixel", computed by the builder while it read the
    # labels once (views); None: computed here from ``labels`` (arrays)
    pixel_positive: list[np.ndarray] | None = None
    # per exam sha1 of what its labels are made of (the data fingerprint); None: of the arrays
    digests: list[bytes] | None = None
    index: np.ndarray = field(init=False)  # (n, 2) int64 (exam, slice)
    positive: np.ndarray = field(init=False)  # (n,) bool
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pixel_positive is None:
            self.pixel_positive = [
                ((lab > 0) & (lab != IGNORE)).reshape(lab.shape[0], -1).any(axis=1)
                for lab in self.labels]
        if self.digests is None:
            self.digests = [hashlib.sha1(np.ascontiguousarray(lab)).digest()
                            for lab in self.labels]
        idx, pos = [], []
        for e, p in enumerate(self.pixel_positive):
            z = len(p)
            idx.append(np.stack([np.full(z, e), np.arange(z)], axis=1))
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


def _positive(lab: np.ndarray) -> bool:
    return bool(((lab > 0) & (lab != IGNORE)).any())


def labeled_pairs_source(ws: Workspace, cache: ExamCache, cfg,
                         pairs: Sequence[tuple[str, str]]) -> SliceSource | None:
    """(exam, labelset) pairs with a label file -> a source read a slice at a time (None when
    no pair has one). Each label file is read once here, a slice at a time, for the positive
    flags and the digest; training reads the slices again through ``cache``."""
    kept, hu, labels, flags, digests = [], [], [], [], []
    for name, labelset in pairs:
        file = ws.label_slices(labelset, name)
        if file is None:
            continue
        shape = cache.shape(name)
        h, pos = hashlib.sha1(), np.zeros(shape[0], bool)
        for k in range(shape[0]):
            lab = file.read(k)
            h.update(np.ascontiguousarray(lab))  # = the sha1 of the whole volume's bytes
            pos[k] = _positive(lab)
        kept.append(name)
        hu.append(cache.hu_view(name))
        labels.append(cache.file_view(file, shape, ("lab", labelset, name)))
        flags.append(pos)
        digests.append(h.digest())
    if not kept:
        return None
    return SliceSource("labeled", kept, hu, labels, None, cfg.augment,
                       cfg.data.slice_positive_fraction, pixel_positive=flags, digests=digests)


def labeled_source(
    ws: Workspace, cache: ExamCache, cfg, exams: Sequence[str] | None = None
) -> SliceSource:
    """The labeled role with its reference pixel labels (exams without a label file skipped)."""
    labelset = cfg.data.labelset
    names = list(exams) if exams is not None else _exam_names(ws, "labeled")
    src = labeled_pairs_source(ws, cache, cfg, [(n, labelset) for n in names])
    if src is None:
        raise IctviewError(
            f"{ws.root}: no labeled exam has pixel labels in labelset '{labelset}'"
        )
    return src


def _predictions(ws: Workspace, run: str, names: Sequence[str]) -> tuple[list[str], list]:
    """(exams with a prediction of ``run``, their layouts: slice scores, no pixels)."""
    # blinding (ictview/store/read_guard.py): refuse rather than train on fewer exams
    ws.guard.require_unblinded(names, f"pseudo-labels from run '{run}'")
    have = set(ws.predicted_exams(run))
    kept = [n for n in names if n in have]
    if not kept:
        raise IctviewError(f"{ws.root}: pseudolabel run '{run}' has no predictions for these exams")
    return kept, [ws.prediction_layout(run, n) for n in kept]


class PseudoLabels:
    """Pixel pseudo-labels of one exam, a slice at a time: slice k is
    ``threshold_pixels(p_k, K)`` where ``active[k]``, all 0 elsewhere (the ranker's negative
    slices; the pixel oracle's reference-negative ones). Read from the run's compact targets
    (a slice not stored is all 0) or from its float16 probabilities; either way only the
    active slices' pixels are ever read."""

    def __init__(self, cache: ExamCache, layout, active: np.ndarray, k_hi: float, k_lo: float,
                 key: tuple):
        self.cache, self.key = cache, key
        self.layout, self.active = layout, np.asarray(active, bool)
        self.k_hi, self.k_lo = k_hi, k_lo
        self._rows = {int(k): r for r, k in enumerate(layout.target_slices)}
        self.view = SliceView(layout.shape, self, np.uint8)

    def __call__(self, k: int) -> np.ndarray:
        return self.cache.cached((*self.key, int(k)), lambda: self.read(k))

    def read(self, k: int) -> np.ndarray:
        shape = self.layout.shape[1:]
        if not self.active[k]:
            return np.zeros(shape, np.uint8)
        if self.layout.pixels == "float16":
            return threshold_pixels(self.layout.file.read(k), self.k_hi, self.k_lo)
        row = self._rows.get(int(k))
        return np.zeros(shape, np.uint8) if row is None else self.layout.file.read(row)

    def scan(self) -> tuple[np.ndarray, bytes]:
        """Positive flags and digest, from the active slices' pixels (read once, here)."""
        h, pos = hashlib.sha1(), np.zeros(len(self.active), bool)
        h.update(np.packbits(self.active).tobytes())
        for k in np.flatnonzero(self.active):
            lab = self.view[k]
            pos[k] = _positive(lab)
            h.update(int(k).to_bytes(4, "little"))
            h.update(np.ascontiguousarray(lab))
        return pos, h.digest()


def _pseudo_views(cache: ExamCache, cfg, run: str, kept: Sequence[str], layouts,
                  active: Sequence[np.ndarray]) -> tuple[list, list, list]:
    r = cfg.ranker
    views, flags, digests = [], [], []
    for name, layout, act in zip(kept, layouts, active):
        if layout.pixels == "targets" and (layout.k_hi, layout.k_lo) != (r.k_hi, r.k_lo):
            raise IctviewError(
                f"{layout.file.path}: pseudolabel run '{run}' stores targets at k_hi "
                f"{layout.k_hi} / k_lo {layout.k_lo}, the config asks {r.k_hi} / {r.k_lo}: "
                f"pseudo-label again with these K (or store float16 maps)")
        pl = PseudoLabels(cache, layout, act, r.k_hi, r.k_lo, ("pl", run, name))
        pos, digest = pl.scan()
        views.append(pl.view)
        flags.append(pos)
        digests.append(digest)
    return views, flags, digests


def pseudo_source(
    ws: Workspace, cache: ExamCache, cfg, pseudolabel_run: str, *, ranker: bool = True,
    exams: Sequence[str] | None = None,
) -> SliceSource:
    """Unlabeled role + ranker pseudo-labels from a pseudolabel run's predictions: ranked
    from the stored slice scores alone, pixels read only for the slices ranked positive."""
    _check_binary(cfg, "pseudo-labels")
    names = list(exams) if exams is not None else _exam_names(ws, "unlabeled")
    kept, layouts = _predictions(ws, pseudolabel_run, names)
    r = cfg.ranker
    active, summary = rank_slices([lay.slice_scores for lay in layouts], r.top_percent,
                                  ranker and r.enabled, r.k_hi, r.k_lo)
    labels, flags, digests = _pseudo_views(cache, cfg, pseudolabel_run, kept, layouts, active)
    src = SliceSource("pseudo" if ranker and r.enabled else "pseudo-no-ranker", kept,
                      [cache.hu_view(n) for n in kept], labels, None, cfg.augment,
                      cfg.data.pseudo_positive_fraction, pixel_positive=flags, digests=digests)
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
    hu, labels, targets, flags, digests = [], [], [], [], []
    for n in names:
        shape = cache.shape(n)
        hu.append(cache.hu_view(n))
        labels.append(SliceView(shape, ConstantSlices(shape[1:], IGNORE), np.uint8))
        targets.append(_image_labels(ws, n))
        flags.append(np.zeros(shape[0], bool))
        h = hashlib.sha1()  # = the sha1 of the all-255 volume, slice by slice
        ignore = np.full(shape[1:], IGNORE, np.uint8)
        for _ in range(shape[0]):
            h.update(ignore)
        digests.append(h.digest())
    aug = replace(cfg.augment, crop=None, positive_fraction=None)
    return SliceSource("image-oracle", list(names), hu, labels, targets, aug,
                       cfg.data.pseudo_positive_fraction, pixel_loss=False,
                       pixel_positive=flags, digests=digests)


def pixel_oracle_source(ws: Workspace, cache: ExamCache, cfg, pseudolabel_run: str,
                        exams: Sequence[str] | None = None) -> SliceSource:
    """Unlabeled role: K-thresholded pseudo pixels, all 0 on reference-negative images; the
    image label is the patch label."""
    _check_binary(cfg, "pixel-oracle labels")
    names = list(exams) if exams is not None else _exam_names(ws, "unlabeled")
    kept, layouts = _predictions(ws, pseudolabel_run, names)
    targets = [_image_labels(ws, n) for n in kept]
    for n, lay, il in zip(kept, layouts, targets):
        if len(il) != lay.shape[0]:
            raise IctviewError(f"pixel oracle: {len(il)} image labels for '{n}' of shape "
                               f"{lay.shape}")
    labels, flags, digests = _pseudo_views(cache, cfg, pseudolabel_run, kept, layouts,
                                           [il != 0 for il in targets])
    src = SliceSource("pixel-oracle", kept, [cache.hu_view(n) for n in kept], labels, targets,
                      cfg.augment, cfg.data.pseudo_positive_fraction, pixel_positive=flags,
                      digests=digests)
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
        for d in s.digests:
            h.update(d)
    return h.hexdigest()
