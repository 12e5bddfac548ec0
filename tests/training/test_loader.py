"""Loader processes give the batches the training process would have made itself.

Both ways a loader process works: rendering on the CPU (a CPU run) and sending the gathered
slices for the training process to render (a CUDA run; forced here on the CPU). One torch
thread, as the loader processes use, so the arithmetic is the same.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ictview.errors import IctviewError
from ictview.store.workspace import Workspace
from training.config import load_config
from training.data.batches import BatchMaker, InProcessFeed, LoaderFeed
from training.data.exam_cache import ExamCache
from training.data.sources import labeled_source
from training.windows import resolve_windows


def _setup(root):
    cfg = load_config("tiny", ["augment.crop=32"])
    ws = Workspace.open(root)
    src = labeled_source(ws, ExamCache(ws, cfg.preprocess), cfg)
    return ws, BatchMaker([src], [1.0], 4, 7, resolve_windows(cfg.model.windows))


def _same(a, b) -> None:
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        for f in dataclasses.fields(ga):
            x, y = getattr(ga, f.name), getattr(gb, f.name)
            assert x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride()
            assert torch.equal(x, y), f.name


@pytest.mark.parametrize("render", [True, False], ids=["rendered-there", "rendered-here"])
def test_loader_processes_make_the_in_process_batches(tiny_workspace, render: bool) -> None:
    ws, maker = _setup(tiny_workspace)
    steps = range(5, 11)
    here = InProcessFeed(maker, steps, "cpu")
    there = LoaderFeed(maker, steps, 2, "cpu", render=render)
    try:
        for s in steps:
            _same(here.next(s), there.next(s))
    finally:
        here.close()
        there.close()
        ws.close()


def test_a_damaged_file_read_in_a_loader_process_is_one_line(tiny_workspace_copy) -> None:
    """The loader process reads the stored slices itself: a volume damaged after the sources
    were built is reported as the training process reports it, one line naming the file."""
    ws, maker = _setup(tiny_workspace_copy)
    try:
        for name in maker.sources[0].exams:
            path = tiny_workspace_copy / "volumes" / f"{name}.h5"
            path.write_bytes(path.read_bytes()[:2048])  # truncated
        feed = LoaderFeed(maker, range(3), 1, "cpu")
        try:
            with pytest.raises(IctviewError, match=r"volumes/.*\.h5") as e:
                feed.next(0)
            assert len(str(e.value).splitlines()) == 1
        finally:
            feed.close()
    finally:
        ws.close()
