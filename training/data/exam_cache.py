"""The training working set: brain-masked HU slices and label slices, LRU by bytes.

Nothing here holds an exam: a sampler asks for slice k of exam e, which is read alone from its
per-slice chunk (ictview/store/arrays.py, format 2), brain-masked, kept while the byte budget
(``data.cache_mb``) allows, and evicted least recently used first. So a process's memory is
the budget plus a few slices, whatever the number of exams (25,000 at the paper's scale).

Brain extraction makes one decision per exam, whether it has a skull (a median over its
slices, ``ictview.core.brain_mask.skull_decision``); every other step is per slice. The first
slice asked of an exam reads that exam's slices one at a time to count bone and tissue (one
pass, one slice in memory) and keeps the decision, a bool per exam; from then on a slice is one
chunk read. A slice masked this way equals that slice of the exam masked whole (tested).

HU are int16 (2 bytes a voxel; three float32 windows would be six times that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from ictview.core.brain_mask import (
    BrainMaskConfig,
    skull_areas,
    skull_decision,
    strip_skull,
)
from ictview.core.byte_lru import ByteLRU
from ictview.store import arrays
from ictview.store.workspace import Workspace

Progress = Callable[[int, int, str], None]
DEFAULT_CACHE_MB = 256


class ExamCache:
    """Brain-masked int16 HU slices and label slices, shared by a process's sources.

    Picklable (for loader processes): the copy starts with an empty cache and the skull
    decisions made so far; it holds file paths, no open file and no database connection."""

    def __init__(self, ws: Workspace | None, brain: BrainMaskConfig,
                 max_bytes: int = DEFAULT_CACHE_MB << 20):
        self.root = Path(ws.root) if ws is not None else None
        self.brain = brain
        self.max_bytes = int(max_bytes)
        self._lru: ByteLRU[np.ndarray] = ByteLRU(self.max_bytes, lambda a: a.nbytes)
        self._skull: dict[str, bool] = {}
        self._shape: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        del d["_lru"], d["_lock"]
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._lru = ByteLRU(self.max_bytes, lambda a: a.nbytes)
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

    def _volume(self, exam: str) -> Path:
        # Workspace.volume_path's layout, from the root alone: no catalog connection to pickle
        return self.root / "volumes" / f"{exam}.h5"

    def shape(self, exam: str) -> tuple[int, int, int]:
        s = self._shape.get(exam)
        if s is None:
            s = self._shape[exam] = tuple(arrays.array_shape(self._volume(exam)))
        return s

    def skull(self, exam: str) -> bool:
        """The exam's skull decision, from its slices read one at a time (made once)."""
        s = self._skull.get(exam)
        if s is None:
            path = self._volume(exam)
            z, y, x = self.shape(exam)
            bone, tissue = np.zeros(z, np.int64), np.zeros(z, np.int64)
            for k in range(z):
                b, t = skull_areas(arrays.read_slice(path, k), self.brain)
                bone[k], tissue[k] = b[0], t[0]
            s = self._skull[exam] = skull_decision(bone, tissue, y * x,
                                                   self.brain.skull_min_ratio)
        return s

    def cached(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The array under ``key``, loaded and kept (LRU) on a miss. Shared: callers copy
        before writing (left writeable because torch.as_tensor warns on read-only arrays)."""
        a = self._lru.get(key)
        if a is None:
            a = load()
            self._lru.put(key, a)
        return a

    def hu_slice(self, exam: str, k: int) -> np.ndarray:
        """Slice k of the exam, brain-masked, int16 (y, x)."""
        def load() -> np.ndarray:
            raw = arrays.read_slice(self._volume(exam), k)
            skull = self.skull(exam) if self.brain.enabled else None
            return strip_skull(raw, self.brain, skull)[0][0]
        return self.cached(("hu", exam, int(k)), load)

    def hu_view(self, exam: str) -> SliceView:
        return SliceView(self.shape(exam), HuSlices(self, exam), np.int16)

    def file_view(self, file: arrays.SliceFile, shape: Sequence[int], key: tuple) -> SliceView:
        """A stored (z, y, x) dataset read a slice at a time through the cache."""
        return SliceView(shape, CachedSlices(self, file, key), file.dtype)

    def hu(self, exam: str) -> np.ndarray:
        """The whole masked exam (tests, single-exam tools; training never asks for it)."""
        return np.asarray(self.hu_view(exam))

    def load(self, exams: Sequence[str], progress: Progress | None = None, what: str = "") -> None:
        """Warm the skull decisions (the one per-exam pass) of ``exams``."""
        for i, name in enumerate(exams):
            if self.brain.enabled:
                self.skull(name)
            if progress:
                progress(i + 1, len(exams), f"loading {what}".strip())


class HuSlices:
    """slice k of an exam, masked (a class, not a closure: sources pickle into loaders)."""

    def __init__(self, cache: ExamCache, exam: str):
        self.cache, self.exam = cache, exam

    def __call__(self, k: int) -> np.ndarray:
        return self.cache.hu_slice(self.exam, k)


class CachedSlices:
    def __init__(self, cache: ExamCache, file: arrays.SliceFile, key: tuple):
        self.cache, self.file, self.key = cache, file, key

    def __call__(self, k: int) -> np.ndarray:
        return self.cache.cached((*self.key, int(k)), lambda: self.file.read(k))


class ConstantSlices:
    def __init__(self, shape: Sequence[int], value: int, dtype=np.uint8):
        self.slice = np.full(tuple(shape), value, dtype)

    def __call__(self, k: int) -> np.ndarray:
        return self.slice


class SliceView:
    """A (z, y, x) volume read a slice at a time: ``view[k]`` is slice k, ``view.shape`` its
    shape; ``np.asarray(view)`` stacks every slice (small volumes and tests only)."""

    def __init__(self, shape: Sequence[int], read: Callable[[int], np.ndarray], dtype):
        self.shape = tuple(int(n) for n in shape)
        self._read = read
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, k) -> np.ndarray:
        k = int(k)
        if not 0 <= k < self.shape[0]:
            raise IndexError(f"slice {k} outside 0..{self.shape[0] - 1}")
        return self._read(k)

    def __iter__(self):
        return (self[k] for k in range(self.shape[0]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        for k in range(self.shape[0]):
            out[k] = self._read(k)
        return out if dtype is None else out.astype(dtype)
