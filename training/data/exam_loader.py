"""Exam loading for inference: HDF5 read + brain extraction, optionally in worker processes.

On a GPU the network predicts a 40-slice exam in a few tens of milliseconds while reading it
and extracting the brain takes a few hundred on one core, so pseudo-labeling a corpus keeps
the GPU fed only with several loader processes working ahead. This module imports no torch
(spawned workers start in a second or so) and reads volume files directly, without the SQLite
catalog (workers open no database connections).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ictview.core.brain_mask import BrainMaskConfig, strip_skull
from ictview.store import arrays


def load_masked(volume_path: str, brain: dict) -> tuple[np.ndarray, np.ndarray]:
    """(brain-masked int16 HU, bool mask) of one stored volume file."""
    hu = arrays.read_volume(Path(volume_path)).hu
    return strip_skull(hu, BrainMaskConfig(**brain))


def auto_workers(requested: int, on_cuda: bool) -> int:
    """-1: several processes feeding a GPU, none on a CPU (they would compete with the model)."""
    if requested >= 0:
        return requested
    return min(8, max(0, (os.cpu_count() or 1) - 1)) if on_cuda else 0


def iter_masked(
    ws_root: Path | str, exams: Sequence[str], brain: BrainMaskConfig, workers: int = 0
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields (exam, masked HU, mask) in order; with workers > 0, up to 2 * workers exams are
    loaded ahead in spawned processes (spawn: safe after CUDA was initialised)."""
    paths = [str(Path(ws_root) / "volumes" / f"{name}.h5") for name in exams]
    cfg = asdict(brain)
    if workers <= 0:
        for name, path in zip(exams, paths):
            yield (name, *load_masked(path, cfg))
        return
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        pending: deque = deque()
        it = iter(zip(exams, paths))
        for name, path in it:
            pending.append((name, pool.submit(load_masked, path, cfg)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            name, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt[0], pool.submit(load_masked, nxt[1], cfg)))
            yield (name, *fut.result())
