"""Training data: exact mixing, deterministic batches by (seed, step), rank sharding, balance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ictview.store.workspace import Workspace
from training.config import load_config
from training.data.batches import BatchMaker, mix_counts
from training.data.exam_cache import ExamCache
from training.data.sources import SliceSource, labeled_source
from training.windows import DEFAULT_WINDOWS


@pytest.mark.parametrize("batch", [16, 10, 7])
def test_mixing_ratio_is_exact_over_many_batches(batch: int) -> None:
    total_labeled = 0
    for step in range(2000):
        lab, pseudo = mix_counts([0.6, 0.4], batch, step)
        assert lab + pseudo == batch
        assert lab in (math.floor(0.6 * batch), math.ceil(0.6 * batch))
        total_labeled += lab
        # after any number of batches the labeled count is floor(0.6 * B * k): no drift
        assert total_labeled == math.floor(0.6 * batch * (step + 1) + 1e-9)
    assert total_labeled / (2000 * batch) == pytest.approx(0.6, abs=1 / (2000 * batch))


def test_mixing_three_sources_and_degenerate_weights() -> None:
    counts = np.array([mix_counts([1, 1, 2], 8, s) for s in range(100)])
    assert (counts.sum(1) == 8).all()
    assert counts.sum(0).tolist() == [200, 200, 400]
    assert mix_counts([1.0, 0.0], 16, 3) == [16, 0]


def _toy_source(name: str, n_exams: int, positive_slices: set[int], seed: int) -> SliceSource:
    rng = np.random.default_rng(seed)
    hu, labels = [], []
    for e in range(n_exams):
        hu.append(rng.integers(-50, 90, (4, 40, 40), dtype=np.int16))
        lab = np.zeros((4, 40, 40), np.uint8)
        for z in range(4):
            if e * 4 + z in positive_slices:
                lab[z, 10:14, 10:14] = 2
        labels.append(lab)
    cfg = load_config("tiny", ["augment.crop=24"])
    return SliceSource(name, [f"{name}{e}" for e in range(n_exams)], hu, labels, None,
                       cfg.augment, 0.5)


def test_batches_depend_only_on_seed_and_step() -> None:
    srcs = [_toy_source("a", 3, {1, 5}, 0), _toy_source("b", 2, {2}, 1)]
    m1 = BatchMaker(srcs, [0.6, 0.4], 8, seed=3, windows=DEFAULT_WINDOWS)
    m2 = BatchMaker(srcs, [0.6, 0.4], 8, seed=3, windows=DEFAULT_WINDOWS)
    for step in (0, 7, 5, 0):  # any order, repeated
        a, b = m1.batch(step), m2.batch(step)
        assert len(a) == len(b) == 1
        assert torch.equal(a[0].images, b[0].images) and torch.equal(a[0].labels, b[0].labels)
    other = BatchMaker(srcs, [0.6, 0.4], 8, seed=4, windows=DEFAULT_WINDOWS).batch(0)
    assert not torch.equal(other[0].images, m1.batch(0)[0].images)
    g = m1.batch(2)[0]
    assert g.images.shape == (8, 3, 24, 24) and g.labels.dtype == torch.uint8
    assert g.sources.tolist().count(0) == mix_counts([0.6, 0.4], 8, 2)[0]


def test_ranks_render_disjoint_parts_of_the_same_global_batch() -> None:
    srcs = [_toy_source("a", 3, {1, 5}, 0), _toy_source("b", 2, {2}, 1)]
    single = BatchMaker(srcs, [0.6, 0.4], 8, seed=1, windows=DEFAULT_WINDOWS).raw(4)
    parts = [BatchMaker(srcs, [0.6, 0.4], 8, seed=1, windows=DEFAULT_WINDOWS, rank=r, world=2)
             .raw(4) for r in range(2)]
    key = lambda s: (s.source, s.exam, s.slice, tuple(s.plan.src_y.tolist()))  # noqa: E731
    whole = [key(s) for s in single.samples]
    assert [key(s) for s in parts[0].samples] == whole[0::2]
    assert [key(s) for s in parts[1].samples] == whole[1::2]


def test_positive_slice_balance() -> None:
    src = _toy_source("a", 5, {3}, 0)  # one positive slice out of 20
    gen = torch.Generator().manual_seed(0)
    picks = [src.pick(gen) for _ in range(4000)]
    assert abs(np.mean([src.positive[p] for p in picks]) - 0.5) < 0.03
    src.positive_fraction = None
    picks = [src.pick(gen) for _ in range(4000)]
    assert abs(np.mean([src.positive[p] for p in picks]) - 1 / 20) < 0.015


def test_labeled_source_from_the_workspace_is_brain_masked(tiny_workspace) -> None:
    cfg = load_config("tiny")
    with Workspace.open(tiny_workspace) as ws:
        cache = ExamCache(ws, cfg.preprocess)
        src = labeled_source(ws, cache, cfg)
        names = [e.name for e in ws.exams(role="labeled")]
        assert src.exams == names
        for name, view, lab in zip(src.exams, src.hu, src.labels):
            assert np.array_equal(np.asarray(lab), ws.load_labels("reference", name))
            raw = ws.read_volume(name).hu
            hu = np.asarray(view)
            assert view.shape == raw.shape and hu.dtype == np.int16
            assert ((hu == raw) | (hu == -1024)).all()
        assert src.positive.sum() > 0
