"""Batched planning and rendering against the plain per-sample reference
(training/data/reference_batches.py, the implementation the batched code replaced).

The batch makers' plans must be equal to it field for field and their rendered batches bit
for bit, memory layout included: runs stay deterministic and a resumed run gets the very
batches it would have had.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ictview.core.labels import IGNORE
from training.augment import AugmentConfig
from training.data.batches import BatchMaker
from training.data.reference_batches import (
    reference_batch,
    reference_contrast,
    reference_raw,
    reference_render_group,
)
from training.data.sources import SliceSource
from training.windows import DEFAULT_WINDOWS

# ---- sources with the cases the batched code must get right ----------------------------------


def _source(name, shape, n, seed, aug: AugmentConfig, positive_fraction=0.5, pixel_loss=True,
            cls=False) -> SliceSource:
    rng = np.random.default_rng(seed)
    hu = [rng.integers(-1024, 1500, (n, *shape), dtype=np.int16)]
    lab = np.zeros((n, *shape), np.uint8)
    for z in range(n):
        kind = z % 4
        if kind == 1:  # a small lesion anywhere, edges included
            y, x = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
            lab[z, y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = rng.integers(1, 6)
        elif kind == 2:  # scattered positives and ignore pixels
            lab[z][rng.random(shape) < 0.02] = rng.integers(1, 6)
            lab[z][rng.random(shape) < 0.05] = IGNORE
        elif kind == 3:  # ignore only: no positives
            lab[z, : shape[0] // 3] = IGNORE
    targets = [rng.random(n).astype(np.float32)] if cls else None
    return SliceSource(name, [f"{name}0"], hu, [lab], targets, aug, positive_fraction,
                       pixel_loss=pixel_loss)


def _makers(world: int = 1, rank: int = 0) -> BatchMaker:
    wide = AugmentConfig(scale_x_range=(0.6, 1.6), scale_y_range=(0.7, 1.5), flip_y_prob=0.5,
                         crop=20)
    srcs = [
        _source("crop", (40, 36), 12, 0, wide),
        _source("other-shape", (30, 30), 8, 1, replace(wide, contrast="power", crop=20)),
        _source("crop-larger-than-slice", (18, 24), 8, 2, replace(wide, contrast="log")),
        _source("uniform", (40, 36), 8, 3, wide, positive_fraction=None, cls=True),
        _source("whole-slice", (40, 36), 8, 4, replace(wide, crop=None), pixel_loss=False),
    ]
    return BatchMaker(srcs, [0.3, 0.2, 0.2, 0.15, 0.15], 16, seed=11, windows=DEFAULT_WINDOWS,
                      rank=rank, world=world)


@pytest.mark.parametrize("threads", [1, 2])
def test_plans_and_renders_equal_the_per_sample_reference(threads: int) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        maker = _makers()
        for step in range(12):
            raw = maker.raw(step)
            ref = reference_raw(maker, step)
            assert len(raw.samples) == len(ref)
            for s, (j, e, z, plan) in zip(raw.samples, ref):
                assert (s.source, s.exam, s.slice) == (j, e, z)
                for key, value in plan.items():
                    got = getattr(s.plan, key)
                    if isinstance(value, torch.Tensor):
                        assert got.dtype == value.dtype and torch.equal(got, value), key
                    else:
                        assert got == value, key
            groups = maker.render(raw)
            gathered = maker.gather(raw)
            assert len(groups) == len(gathered)
            for g, gath in zip(groups, gathered):
                # a group's members are the batch's own samples, in batch order
                members = [ref[next(i for i, s in enumerate(raw.samples) if s is m)]
                           for m in gath.members]
                images, labels = reference_render_group(maker, members)
                assert g.images.stride() == images.stride()
                assert g.images.dtype == images.dtype and torch.equal(g.images, images)
                assert g.labels.dtype == labels.dtype and torch.equal(g.labels, labels)
            # the reference's own grouping (what the benchmark times) gives the same batch
            for g, (images, labels) in zip(groups, reference_batch(maker, step), strict=True):
                assert torch.equal(g.images, images) and torch.equal(g.labels, labels)
    finally:
        torch.set_num_threads(before)


def test_positives_are_computed_once_per_slice_and_not_pickled() -> None:
    import pickle

    maker = _makers()
    for step in range(20):
        maker.raw(step)
    kept = len(maker._positives)
    assert 0 < kept <= sum(len(s) for s in maker.sources)
    copy = pickle.loads(pickle.dumps(maker))
    assert len(copy._positives) == 0
    for step in (3, 17):  # a loader process's fresh copy plans the same batches
        assert [(s.source, s.exam, s.slice, s.plan.origin) for s in copy.raw(step).samples] \
            == [(s.source, s.exam, s.slice, s.plan.origin) for s in maker.raw(step).samples]


@pytest.mark.parametrize("channel_major", [True, False])
def test_contrast_on_sub_batches_equals_contrast_on_the_whole_batch(channel_major) -> None:
    # planes of 20 x 20: not a multiple of the vector width, so pow's element-at-a-time
    # tails would land on other pixels if a sub-batch's loops differed from the batch's
    from training.augment import apply_contrast

    gen = torch.Generator().manual_seed(0)
    for kinds in ([0, 2, 2, 1], [2, 0, 1], [0, 0, 2, 1, 0], [1, 1], [0], [2, 2], [1, 0]):
        n = len(kinds)
        x = torch.rand(3, n, 20, 20, generator=gen).transpose(0, 1) if channel_major \
            else torch.rand(n, 3, 20, 20, generator=gen)
        kind = torch.tensor(kinds)
        param = (0.7 + 0.4 * torch.rand(n, generator=gen)).float()
        ref = reference_contrast(x, kind, param)
        got = apply_contrast(x, kind, param)
        assert got.stride() == ref.stride() and torch.equal(got, ref), kinds
        inplace = apply_contrast(x.clone(), kind, param, inplace=True)
        assert torch.equal(inplace, ref), kinds


def test_positive_window_counts_equal_the_reference() -> None:
    from training.augment import Positives, _canvas_to_source, positive_window_counts
    from training.data.reference_batches import _ref_window_counts

    rng = np.random.default_rng(5)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(8, 40, 2))
        lab = np.zeros((h, w), np.uint8)
        if rng.random() < 0.9:
            y, x = rng.integers(0, h), rng.integers(0, w)
            lab[y:y + rng.integers(1, 8), x:x + rng.integers(1, 8)] = 3
        if rng.random() < 0.3:
            lab[rng.random((h, w)) < 0.05] = 1
        size = int(rng.integers(1, max(h, w) + 6))
        sy, sx = (float(v) for v in rng.uniform(0.3, 3.0, 2))
        cy = _canvas_to_source(h, max(h, size), sy)
        cx = _canvas_to_source(w, max(w, size), sx)
        ref = _ref_window_counts((lab > 0) & (lab != IGNORE), cy, cx, size)
        got = positive_window_counts(Positives.of(lab), cy, cx, size)
        if ref is None:
            assert got is None
        else:
            assert got is not None and np.array_equal(got, ref)
