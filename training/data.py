"""Training data from the workspace: exam cache, slice sources, the mixing batch maker.

Pipeline of one sample: stored HU (int16) -> brain extraction (``ictview.core.brain_mask``,
HU outside the brain = -1024) -> [cache] -> pick a slice -> augmentation plan (seeded) ->
scale / crop / flip of the HU (``training.augment.apply_plans``) -> windows (HU -> channels in
[0, 1]) -> contrast (``training.augment.apply_contrast``).

The cache keeps brain-masked HU as int16 (2 bytes a voxel; three float32 windows would be
six times that). The geometry is rendered on HU, one channel, before windowing: the windows
are then computed on the crop only (a 240 crop of a 512 slice is a fifth of its pixels) and
interpolation mixes HU like a rescaled scan would. HU is shifted so that air is 0 while it is
resampled, so the zero padding outside the slice is air.

Sources (``SliceSource``): a pool of slices with a label map per slice, an optional explicit
patch label (``cls_target``: -1 = from the pixels), a positive flag per slice for the balance
rule, and the augmentation (crop) to draw with.

- ``labeled``: the labeled role with its reference pixel labels (teacher; every student).
- ``pseudo``: the unlabeled role with ranker pseudo-labels from a pseudolabel run (SS student;
  ``ranker=False``: the no-ranker ablation).
- ``image-oracle``: the unlabeled role, every pixel ignored (255), the whole slice is the
  patch and the reference image label is the patch label.
- ``pixel-oracle``: the unlabeled role, K-thresholded pseudo pixels, zeroed on images whose
  reference label is negative; patch label = the image label.

Determinism and resume: a batch depends only on (seed, step). Sample i of the global batch at
step s draws every random number from its own generator seeded with (seed, s, i), and the
batch composition (how many samples from each source) is a function of s. So a resumed run
gets exactly the batches it would have had, no sampler state is needed beyond the step, and
DDP ranks take disjoint positions i of the same global batch (data sharded by rank).

Mixing: with weights (0.6, 0.4) and batch 16 the labeled count of batch s is
floor(0.6*16*(s+1)) - floor(0.6*16*s), i.e. 9 or 10, so that after any k batches the labeled
total is floor(9.6 k): the ratio is exact over batches, within one sample in each.
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

import numpy as np
import torch

from ictview.core.brain_mask import AIR_HU, BrainMaskConfig, strip_skull
from ictview.core.labels import IGNORE
from ictview.errors import IctviewError
from ictview.store.workspace import Workspace
from training.augment import (
    CONTRAST_NONE,
    AugmentConfig,
    AugmentPlan,
    apply_contrast,
    apply_plans,
    plan_sample,
)
from training.ranker import oracle_pixel_labels, pseudo_labels
from training.windows import Window, apply_windows_batch

Progress = Callable[[int, int, str], None]


# ---- exam cache ------------------------------------------------------------------------------


class ExamCache:
    """Brain-masked int16 HU volumes by exam name, loaded once per process."""

    def __init__(self, ws: Workspace, brain: BrainMaskConfig):
        self.ws = ws
        self.brain = brain
        self._hu: dict[str, np.ndarray] = {}

    def hu(self, exam: str) -> np.ndarray:
        if exam not in self._hu:
            raw = self.ws.read_volume(exam).hu
            self._hu[exam], _ = strip_skull(raw, self.brain)
        return self._hu[exam]

    def load(self, exams: Sequence[str], progress: Progress | None = None, what: str = "") -> None:
        for i, name in enumerate(exams):
            self.hu(name)
            if progress:
                progress(i + 1, len(exams), f"loading {what}".strip())


# ---- sources ---------------------------------------------------------------------------------


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


# ---- mixing -------------------------------------------------------------------------------


def mix_counts(weights: Sequence[float], batch_size: int, step: int) -> list[int]:
    """Samples per source in batch ``step``: cumulative quotas floor(W_j * B * (step + 1)).

    Exact rationals (weights limited to denominator 10^6), so rounding never drifts: over
    any k batches source j gets floor(S_j B k) - floor(S_{j-1} B k) samples (S = cumulative
    weights), i.e. its share to within one sample.
    """
    w = [Fraction(x).limit_denominator(10**6) for x in weights]
    total = sum(w)
    if total <= 0 or any(x < 0 for x in w):
        raise IctviewError(f"mixing weights must be >= 0 with a positive sum, got {list(weights)}")
    cum, acc = [], Fraction(0)
    for x in w:
        acc += x / total
        cum.append(acc)

    def quota(c: Fraction, k: int) -> int:
        return math.floor(c * batch_size * k)

    out, prev_hi, prev_lo = [], 0, 0
    for c in cum:
        hi, lo = quota(c, step + 1), quota(c, step)
        out.append((hi - prev_hi) - (lo - prev_lo))
        prev_hi, prev_lo = hi, lo
    return out


def sample_generator(seed: int, step: int, index: int) -> torch.Generator:
    """The generator of sample ``index`` of the global batch at ``step``."""
    state = np.random.SeedSequence([int(seed), int(step), int(index)]).generate_state(2, np.uint32)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g


@dataclass
class RawSample:
    source: int
    exam: int
    slice: int
    plan: AugmentPlan


@dataclass
class RawBatch:
    step: int
    samples: list[RawSample]
    counts: list[int]  # per source, in the global batch


@dataclass
class Group:
    """Samples of one batch that share an output shape (one forward pass)."""

    images: torch.Tensor  # (n, C, h, w) float32 in [0, 1]
    labels: torch.Tensor  # (n, h, w) uint8
    cls_target: torch.Tensor  # (n,) float32, -1 = from pixels
    sources: torch.Tensor  # (n,) int64 source index


class BatchMaker:
    """Global minibatches mixing sources; each DDP rank renders only its own positions."""

    def __init__(
        self,
        sources: Sequence[SliceSource],
        weights: Sequence[float],
        batch_size: int,
        seed: int,
        windows: Sequence[Window],
        rank: int = 0,
        world: int = 1,
    ):
        if len(sources) != len(weights):
            raise ValueError("one weight per source")
        for s in sources:
            if len(s) == 0:
                raise IctviewError(f"training source '{s.name}' has no slices")
        if batch_size % world:
            raise IctviewError(f"train.batch_size {batch_size} must be divisible by {world} ranks")
        self.sources = list(sources)
        self.weights = list(weights)
        self.batch_size = batch_size
        self.seed = seed
        self.windows = tuple(windows)
        self.rank, self.world = rank, world

    def composition(self, step: int) -> list[int]:
        """Source index of each position of the global batch."""
        counts = mix_counts(self.weights, self.batch_size, step)
        return [j for j, c in enumerate(counts) for _ in range(c)]

    def raw(self, step: int) -> RawBatch:
        comp = self.composition(step)
        samples = []
        for i in range(self.rank, self.batch_size, self.world):
            j = comp[i]
            src = self.sources[j]
            gen = sample_generator(self.seed, step, i)
            row = src.pick(gen)
            e, z = (int(v) for v in src.index[row])
            plan = plan_sample(src.labels[e][z], src.augment, gen)
            samples.append(RawSample(j, e, z, plan))
        counts = [comp.count(j) for j in range(len(self.sources))]
        return RawBatch(step, samples, counts)

    def render(self, raw: RawBatch, device: torch.device | str = "cpu") -> list[Group]:
        """Windows + augmentation on ``device``; samples grouped by input and output shape."""
        keys: dict[tuple, list[RawSample]] = {}
        for s in raw.samples:
            hu = self.sources[s.source].hu[s.exam]
            key = (hu.shape[1:], len(s.plan.src_y), len(s.plan.src_x))
            keys.setdefault(key, []).append(s)
        groups = []
        for members in keys.values():
            hu = np.stack([self.sources[s.source].hu[s.exam][s.slice] for s in members])
            lab = np.stack([self.sources[s.source].labels[s.exam][s.slice] for s in members])
            hu_t = torch.from_numpy(hu).to(device, non_blocking=True)
            lab_t = torch.from_numpy(lab).to(device, non_blocking=True)
            plans = [s.plan for s in members]
            geometry_only = [replace(p, contrast_kind=CONTRAST_NONE, contrast_param=1.0)
                             for p in plans]
            shifted = (hu_t.float() - AIR_HU)[:, None]  # air -> 0 = grid_sample's padding
            hu_out, labels = apply_plans(shifted, lab_t, geometry_only)
            images = apply_windows_batch(hu_out[:, 0] + AIR_HU, self.windows)
            kind = torch.tensor([p.contrast_kind for p in plans])
            param = torch.tensor([p.contrast_param for p in plans], dtype=torch.float32)
            images = apply_contrast(images, kind, param)
            no_pixels = torch.tensor([not self.sources[s.source].pixel_loss for s in members],
                                     device=labels.device)
            if no_pixels.any():
                labels = torch.where(no_pixels[:, None, None], torch.full_like(labels, IGNORE),
                                     labels)
            cls = []
            for s in members:
                t = self.sources[s.source].cls_target
                cls.append(-1.0 if t is None else float(t[s.exam][s.slice]))
            groups.append(Group(
                images, labels, torch.tensor(cls, dtype=torch.float32, device=device),
                torch.tensor([s.source for s in members], dtype=torch.int64, device=device),
            ))
        return groups

    def batch(self, step: int, device: torch.device | str = "cpu") -> list[Group]:
        return self.render(self.raw(step), device)


class Prefetcher:
    """Plans (CPU) the next batches in a background thread while the model trains.

    Planning reads only label maps and numpy arrays and releases the GIL in numpy and torch,
    so one thread keeps ahead of a GPU step; rendering runs on the device in the caller.
    """

    def __init__(self, maker: BatchMaker, steps: Iterable[int], depth: int = 4):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(maker, list(steps)), daemon=True)
        self._thread.start()

    def _run(self, maker: BatchMaker, steps: list[int]) -> None:
        try:
            for s in steps:
                if self._stop.is_set():
                    return
                item = maker.raw(s)
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # surfaced in get()
            self._q.put(e)

    def get(self) -> RawBatch:
        item = self._q.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
