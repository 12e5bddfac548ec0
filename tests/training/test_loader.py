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
from training.data.batches import InProcessFeed, LoaderFeed
from training.data.exam_cache import ExamCache
from training.data.sources import fingerprint, labeled_source
from training.trainer import MakerRecipe, Trainer
from training.windows import resolve_windows


def _setup(root):
    cfg = load_config("tiny", ["augment.crop=32"])
    ws = Workspace.open(root)
    src = labeled_source(ws, ExamCache(ws, cfg.preprocess), cfg)
    windows = resolve_windows(cfg.model.windows)
    from training.data.batches import BatchMaker

    maker = BatchMaker([src], [1.0], 4, 7, windows)
    recipe = MakerRecipe(Trainer, {"cfg": cfg}, root, ws.login, 4, 7, tuple(windows), 0, 1,
                         fingerprint([src]))
    return ws, maker, recipe


def _same(a, b) -> None:
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        for f in dataclasses.fields(ga):
            x, y = getattr(ga, f.name), getattr(gb, f.name)
            assert x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride()
            assert torch.equal(x, y), f.name


@pytest.mark.parametrize("render", [True, False], ids=["rendered-there", "rendered-here"])
def test_loader_processes_make_the_in_process_batches(tiny_workspace, render: bool) -> None:
    ws, maker, recipe = _setup(tiny_workspace)
    steps = range(5, 11)
    here = InProcessFeed(maker, steps, "cpu")
    there = LoaderFeed(recipe, maker, steps, 2, "cpu", render=render)
    try:
        for s in steps:
            _same(here.next(s), there.next(s))
    finally:
        here.close()
        there.close()
        ws.close()


def test_a_loader_process_reports_changed_data_in_one_line(tiny_workspace) -> None:
    ws, maker, recipe = _setup(tiny_workspace)
    recipe = dataclasses.replace(recipe, fingerprint="not the data")
    feed = LoaderFeed(recipe, maker, range(3), 1, "cpu")
    try:
        with pytest.raises(IctviewError, match="training data changed") as e:
            feed.next(0)
        assert len(str(e.value).splitlines()) == 1
    finally:
        feed.close()
        ws.close()
