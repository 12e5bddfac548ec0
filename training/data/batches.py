"""Minibatches: sources mixed into global batches, split over DDP ranks, rendered on the device.

The geometry is rendered on HU, one channel, before windowing: the windows are then computed
on the crop only (a 240 crop of a 512 slice is a fifth of its pixels) and interpolation mixes
HU like a rescaled scan would. HU is shifted so that air is 0 while it is resampled, so the
zero padding outside the slice is air.

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

import functools
import math
import os
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import torch

from ictview.core.brain_mask import AIR_HU
from ictview.core.byte_lru import ByteLRU
from ictview.core.labels import IGNORE
from ictview.errors import IctviewError
from training.augment import (
    AugmentPlan,
    Positives,
    apply_contrast,
    apply_geometry,
    plan_sample,
)
from training.data.sources import SliceSource
from training.windows import Window, apply_windows_batch


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
class Gathered:
    """One shape group of a batch as stored (before rendering): the slices, label maps and
    per-sample targets its samples read. Plain numpy: cheap to send from a loader process."""

    members: list[RawSample]
    hu: np.ndarray  # (n, y, x) int16, brain-masked
    labels: np.ndarray  # (n, y, x) uint8
    cls: list[float]  # -1 = from pixels
    no_pixels: list[bool]  # True: no pixel loss from this sample's source


@dataclass
class Group:
    """Samples of one batch that share an output shape (one forward pass)."""

    images: torch.Tensor  # (n, C, h, w) float32 in [0, 1]
    labels: torch.Tensor  # (n, h, w) uint8
    cls_target: torch.Tensor  # (n,) float32, -1 = from pixels
    sources: torch.Tensor  # (n,) int64 source index


def _positives_cache() -> ByteLRU:
    # a few hundred bytes a slice (the positives' bounding box): 16 MB keep tens of thousands
    return ByteLRU(16 << 20, lambda p: p.nbytes)


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
        self._positives = _positives_cache()

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        del d["_positives"]  # a loader process starts with an empty one
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._positives = _positives_cache()

    def positives(self, source: int, exam: int, k: int) -> Positives:
        """The positives of a label slice, kept per slice (the label map is scanned once,
        not at every draw of the slice)."""
        key = (source, exam, k)
        p = self._positives.get(key)
        if p is None:
            p = Positives.of(self.sources[source].labels[exam][k])
            self._positives.put(key, p)
        return p

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
            aug = src.augment
            need = aug.crop is not None and aug.positive_fraction is not None
            plan = plan_sample(src.labels[e][z], aug, gen,
                               self.positives(j, e, z) if need else None)
            samples.append(RawSample(j, e, z, plan))
        counts = [comp.count(j) for j in range(len(self.sources))]
        return RawBatch(step, samples, counts)

    def gather(self, raw: RawBatch) -> list[Gathered]:
        """The stored arrays of each shape group of a batch: what a loader process reads."""
        keys: dict[tuple, list[RawSample]] = {}
        for s in raw.samples:
            hu = self.sources[s.source].hu[s.exam]
            key = (hu.shape[1:], len(s.plan.src_y), len(s.plan.src_x))
            keys.setdefault(key, []).append(s)
        out = []
        for members in keys.values():
            hu = np.stack([self.sources[s.source].hu[s.exam][s.slice] for s in members])
            lab = np.stack([self.sources[s.source].labels[s.exam][s.slice] for s in members])
            cls = []
            for s in members:
                t = self.sources[s.source].cls_target
                cls.append(-1.0 if t is None else float(t[s.exam][s.slice]))
            no_pixels = [not self.sources[s.source].pixel_loss for s in members]
            out.append(Gathered(members, hu, lab, cls, no_pixels))
        return out

    def render_gathered(self, gathered: Sequence[Gathered],
                        device: torch.device | str = "cpu") -> list[Group]:
        """Windows + augmentation of gathered arrays on ``device`` (needs no source data)."""
        groups = []
        for g in gathered:
            members = g.members
            hu_t = torch.from_numpy(g.hu).to(device, non_blocking=True)
            lab_t = torch.from_numpy(g.labels).to(device, non_blocking=True)
            plans = [s.plan for s in members]
            shifted = (hu_t.float() - AIR_HU)[:, None]  # air -> 0 = grid_sample's padding
            hu_out, labels = apply_geometry(shifted, lab_t, plans)
            images = apply_windows_batch(hu_out[:, 0] + AIR_HU, self.windows)
            kind = torch.tensor([p.contrast_kind for p in plans])
            param = torch.tensor([p.contrast_param for p in plans], dtype=torch.float32)
            images = apply_contrast(images, kind, param, inplace=True)
            if any(g.no_pixels):
                no_pixels = torch.tensor(g.no_pixels, device=labels.device)
                labels = torch.where(no_pixels[:, None, None], torch.full_like(labels, IGNORE),
                                     labels)
            groups.append(Group(
                images, labels, torch.tensor(g.cls, dtype=torch.float32, device=device),
                torch.tensor([s.source for s in members], dtype=torch.int64, device=device),
            ))
        return groups

    def render(self, raw: RawBatch, device: torch.device | str = "cpu") -> list[Group]:
        """Windows + augmentation on ``device``; samples grouped by input and output shape."""
        return self.render_gathered(self.gather(raw), device)

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



class InProcessFeed:
    """``loader_workers = 0``: planning in the prefetch thread, reading and rendering in the
    training process (the path without loader processes)."""

    workers = 0

    def __init__(self, maker: BatchMaker, steps: Iterable[int], device: torch.device | str,
                 depth: int = 4):
        self.maker, self.device = maker, device
        self.ahead = depth + 1  # queued + the one the thread holds while the queue is full
        self._prefetch = Prefetcher(maker, steps, depth)

    def pids(self) -> list[int]:
        return []  # the planning thread's CPU time is this process's

    def next(self, step: int) -> list[Group]:
        raw = self._prefetch.get()
        return self.maker.render(raw, self.device)

    def close(self) -> None:
        self._prefetch.close()


def _identity(x):
    return x


def _die_with_parent_of(parent: int, _worker_id: int) -> None:
    """A loader process ends when the training process does, even by SIGKILL (Linux).

    Without this it could outlive it: a batch larger than the pipe's buffer, sent after the
    training process died, blocks its queue's feeder thread, and the process waits for that
    thread at exit, forever (and holds the dead process's stdout open meanwhile)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the DataLoader's own watchdog only
        return
    if os.getppid() != parent:
        os._exit(1)  # the parent died before the line above


def _pack(t: torch.Tensor) -> tuple[np.ndarray, list[int]]:
    """A CPU tensor as a numpy array in its memory order + the permutation back.

    Sent by value through the DataLoader's pipe: torch's own tensor sharing passes a file
    descriptor per tensor over a socket, several milliseconds a batch here. The permutation
    keeps the tensor's strides (a rendered batch is a channel-major view), so the training
    process gets the very layout an in-process render has."""
    order = sorted(range(t.dim()), key=lambda d: (-t.stride(d), d))
    return t.permute(order).contiguous().numpy(), order


def _unpack(packed: tuple[np.ndarray, list[int]]) -> torch.Tensor:
    arr, order = packed
    inverse = [0] * len(order)
    for i, d in enumerate(order):
        inverse[d] = i
    return torch.from_numpy(arr).permute(inverse)


def _plans_as(gathered: Sequence[Gathered], convert) -> list[Gathered]:
    """Gathered groups with every plan's source coordinates converted (numpy for the pipe:
    a tensor would travel as a descriptor of its own, two per sample)."""
    out = []
    for g in gathered:
        members = [replace(m, plan=replace(m.plan, src_y=convert(m.plan.src_y),
                                           src_x=convert(m.plan.src_x)))
                   for m in g.members]
        out.append(replace(g, members=members))
    return out


def _pack_groups(groups: list[Group]) -> list[tuple]:
    return [tuple(_pack(t) for t in (g.images, g.labels, g.cls_target, g.sources))
            for g in groups]


def _unpack_groups(packed: list[tuple]) -> list[Group]:
    return [Group(*(_unpack(p) for p in g)) for g in packed]


class _StepBatches(torch.utils.data.Dataset):
    """Item i = the batch of ``steps[i]``, made in a loader process by its copy of the
    training process's BatchMaker. The maker pickles as paths and plain arrays (its sources'
    slices are ``SliceFile``s and exam caches that hold no open HDF5 file and no catalog
    connection; training/data/exam_cache.py), so each loader process opens the stored files
    itself, read-only, and needs no database. A batch is a function of (seed, step) only, so
    which process makes it changes nothing.

    ``render``: True renders on the CPU in the loader process (a CPU run: the windows and
    the augmentation leave the training process); False sends the gathered slices and the
    training process renders them on its device (CUDA)."""

    def __init__(self, maker: BatchMaker, steps: Sequence[int], render: bool):
        self.maker, self.steps, self.render = maker, list(steps), render

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int):
        from ictview.errors import read_error

        step = self.steps[i]
        try:
            raw = self.maker.raw(step)
            gathered = self.maker.gather(raw)
            if self.render:
                return step, "groups", _pack_groups(self.maker.render_gathered(gathered, "cpu"))
            return step, "gathered", _plans_as(gathered, lambda t: t.numpy())
        except Exception as e:
            # the one-line reason, not the DataLoader's re-raised traceback text: a damaged
            # file or a changed workspace is bad input, reported as such by the CLI
            known = read_error(e)
            if known is None:
                raise
            return step, "error", str(known).splitlines()[0] if str(known) else type(e).__name__


class LoaderFeed:
    """``loader_workers = N > 0``: batches planned, read and (on a CPU run) rendered in N
    torch DataLoader processes, in step order, ``depth`` batches ahead per process.

    Processes are spawned, not forked: a fork would inherit the training process's open
    HDF5 files and SQLite connection, which neither library supports across processes; a
    spawned process gets a pickled copy of the maker (paths and arrays) and opens files
    itself.
    Each loader process uses one torch thread (the DataLoader's setting); rendering is the
    same elementwise and grid-sampling arithmetic as in the training process, so on a CPU
    the batches are bit-identical to ``InProcessFeed``'s when the training process also uses
    one thread (with more threads torch's vectorised kernels may round a few pixels
    differently)."""

    def __init__(self, maker: BatchMaker, steps: Iterable[int], workers: int,
                 device: torch.device | str, depth: int = 2, render: bool | None = None):
        self.maker, self.device, self.workers = maker, torch.device(device), workers
        self.ahead = depth * workers  # batches requested from the processes at any time
        if render is None:  # render where the model is when it is a CPU
            render = self.device.type == "cpu"
        self._loader = torch.utils.data.DataLoader(
            _StepBatches(maker, list(steps), render), batch_size=None, shuffle=False,
            num_workers=workers, collate_fn=_identity, prefetch_factor=depth,
            multiprocessing_context="spawn",
            worker_init_fn=functools.partial(_die_with_parent_of, os.getpid()),
        )
        self._it = iter(self._loader)

    def next(self, step: int) -> list[Group]:
        got, kind, payload = next(self._it)
        if kind == "error":
            raise IctviewError(payload)
        if got != step:  # the order is the DataLoader's contract; a slip would be silent
            raise RuntimeError(f"loader returned step {got}, expected {step}")
        if kind == "gathered":
            return self.maker.render_gathered(_plans_as(payload, torch.from_numpy), self.device)
        return _unpack_groups(payload)

    def pids(self) -> list[int]:
        """The loader processes' ids (benchmarks account their CPU time)."""
        workers = getattr(self._it, "_workers", None) or []
        return [w.pid for w in workers if w.pid is not None]

    def close(self) -> None:
        it, self._it = self._it, None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()


def open_feed(maker: BatchMaker, steps: Iterable[int], workers: int,
              device: torch.device | str):
    """The batches of ``steps``: in this process (``workers`` = 0) or from loader processes."""
    if workers <= 0:
        return InProcessFeed(maker, steps, device)
    return LoaderFeed(maker, steps, workers, device)
