"""Batched planning and rendering against a plain per-sample reference.

The reference below is the straightforward implementation the batched code replaced (one
sample at a time: torch coordinates, the label map scanned at every draw, a full summed-area
table over the positives' box, one label gather per sample, power and log of every pixel of
the batch, windows stacked). The batch makers' plans must be equal to it field for field and
their rendered batches bit for bit, memory layout included: runs stay deterministic and a
resumed run gets the very batches it would have had.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ictview.core.brain_mask import AIR_HU
from ictview.core.labels import IGNORE
from training.augment import CONTRAST_LOG, CONTRAST_POWER, AugmentConfig
from training.augment_config import CONTRAST_VARIANTS
from training.data.batches import BatchMaker, mix_counts, sample_generator
from training.data.sources import SliceSource
from training.windows import DEFAULT_WINDOWS

# ---- the per-sample reference -------------------------------------------------------------


def _ref_uniform(lo, hi, gen):
    return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _ref_contrast_draw(gen, cfg):
    probs = torch.tensor(CONTRAST_VARIANTS[cfg.contrast], dtype=torch.float64)
    kind = torch.multinomial(probs, 1, replacement=True, generator=gen)
    u = torch.rand(1, generator=gen, dtype=torch.float64)
    (g0, g1), (l0, l1) = cfg.gamma_range, cfg.log_gain_range
    param = torch.where(kind == CONTRAST_POWER, g0 + (g1 - g0) * u,
                        torch.where(kind == CONTRAST_LOG, l0 + (l1 - l0) * u,
                                    torch.ones_like(u))).float()
    return int(kind[0]), float(param[0])


def _ref_canvas(size, canvas, scale):
    y = torch.arange(canvas, dtype=torch.float64)
    return (size - 1) / 2 + (y - (canvas - 1) / 2) / scale


def _ref_nearest_np(coord, size):
    idx = np.floor(coord + 0.5).astype(np.int64)
    return np.clip(idx, 0, size - 1), (idx >= 0) & (idx < size)


def _ref_window_counts(positive, src_y, src_x, size):
    rows, cols = np.flatnonzero(positive.any(1)), np.flatnonzero(positive.any(0))
    if len(rows) == 0:
        return None
    iy, vy = _ref_nearest_np(src_y, positive.shape[0])
    ix, vx = _ref_nearest_np(src_x, positive.shape[1])
    ry = np.flatnonzero(vy & (iy >= rows[0]) & (iy <= rows[-1]))
    rx = np.flatnonzero(vx & (ix >= cols[0]) & (ix <= cols[-1]))
    if len(ry) == 0 or len(rx) == 0:
        return None
    small = positive[np.ix_(iy[ry], ix[rx])]
    sat = np.zeros((small.shape[0] + 1, small.shape[1] + 1), np.int64)
    sat[1:, 1:] = small.cumsum(0).cumsum(1)
    counts = np.zeros((len(src_y) - size + 1, len(src_x) - size + 1), np.int64)
    for y0 in range(counts.shape[0]):  # every window by its corners, one at a time
        for x0 in range(counts.shape[1]):
            ya, yb = (int(np.clip(v - ry[0], 0, small.shape[0])) for v in (y0, y0 + size))
            xa, xb = (int(np.clip(v - rx[0], 0, small.shape[1])) for v in (x0, x0 + size))
            counts[y0, x0] = sat[yb, xb] - sat[ya, xb] - sat[yb, xa] + sat[ya, xa]
    return counts


def _ref_plan(labels, cfg: AugmentConfig, gen):
    labels = torch.as_tensor(labels)
    h, w = labels.shape
    sy, sx = _ref_uniform(*cfg.scale_y_range, gen), _ref_uniform(*cfg.scale_x_range, gen)
    out_h, out_w = (h, w) if cfg.crop is None else (cfg.crop, cfg.crop)
    canvas_h, canvas_w = max(h, out_h), max(w, out_w)
    cy, cx = _ref_canvas(h, canvas_h, sy), _ref_canvas(w, canvas_w, sx)
    u_side = float(torch.rand((), generator=gen, dtype=torch.float64))
    u_pick = float(torch.rand((), generator=gen, dtype=torch.float64))
    y0 = x0 = 0
    wanted = None
    if cfg.crop is not None:
        n_y, n_x = canvas_h - cfg.crop + 1, canvas_w - cfg.crop + 1
        counts = None
        if cfg.positive_fraction is not None:
            wanted = u_side < cfg.positive_fraction
            positive = ((labels > 0) & (labels != IGNORE)).numpy()
            counts = _ref_window_counts(positive, cy.numpy(), cx.numpy(), cfg.crop)
        flat = None if counts is None else np.flatnonzero(counts > 0 if wanted else counts == 0)
        if flat is None or len(flat) == 0:
            pick = min(int(u_pick * n_y * n_x), n_y * n_x - 1)
        else:
            pick = int(flat[min(int(u_pick * len(flat)), len(flat) - 1)])
        y0, x0 = pick // n_x, pick % n_x
    src_y, src_x = cy[y0:y0 + out_h], cx[x0:x0 + out_w]
    flip_y = bool(torch.rand((), generator=gen) < cfg.flip_y_prob)
    flip_x = bool(torch.rand((), generator=gen) < cfg.flip_x_prob)
    src_y = src_y.flip(0) if flip_y else src_y
    src_x = src_x.flip(0) if flip_x else src_x
    kind, param = _ref_contrast_draw(gen, cfg)
    return dict(src_y=src_y, src_x=src_x, contrast_kind=kind, contrast_param=param,
                scale=(sy, sx), origin=(y0, x0), flip=(flip_y, flip_x), wanted_positive=wanted)


def _ref_raw(maker: BatchMaker, step: int) -> list[tuple]:
    counts = mix_counts(maker.weights, maker.batch_size, step)
    comp = [j for j, c in enumerate(counts) for _ in range(c)]
    out = []
    for i in range(maker.rank, maker.batch_size, maker.world):
        src = maker.sources[comp[i]]
        gen = sample_generator(maker.seed, step, i)
        e, z = (int(v) for v in src.index[src.pick(gen)])
        out.append((comp[i], e, z, _ref_plan(src.labels[e][z], src.augment, gen)))
    return out


def _ref_contrast(image, kind, param):
    k, p = kind.view(-1, 1, 1, 1), param.view(-1, 1, 1, 1)
    x = image.clamp(min=0.0)
    return torch.where(k == CONTRAST_POWER, x.pow(p),
                       torch.where(k == CONTRAST_LOG, p * torch.log2(1.0 + x), image))


def _ref_render_group(maker: BatchMaker, members: list[tuple]) -> tuple:
    """One shape group, each sample's labels gathered alone, contrast on every pixel."""
    src = maker.sources
    hu = torch.from_numpy(np.stack([src[j].hu[e][z] for j, e, z, _ in members]))
    lab = torch.from_numpy(np.stack([src[j].labels[e][z] for j, e, z, _ in members]))
    plans = [p for *_, p in members]
    n, h, w = hu.shape

    def norm(c, size):
        return c * (2.0 / (size - 1)) - 1.0

    gy = torch.stack([norm(p["src_y"], h) for p in plans]).float()
    gx = torch.stack([norm(p["src_x"], w) for p in plans]).float()
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    out = F.grid_sample((hu.float() - AIR_HU)[:, None], grid, mode="bilinear",
                        padding_mode="zeros", align_corners=True)
    labels = []
    for i, p in enumerate(plans):
        iy = torch.floor(p["src_y"] + 0.5).long()
        ix = torch.floor(p["src_x"] + 0.5).long()
        g = lab[i][iy.clamp(0, h - 1)[:, None], ix.clamp(0, w - 1)[None, :]]
        inside = ((iy >= 0) & (iy < h))[:, None] & ((ix >= 0) & (ix < w))[None, :]
        g = torch.where(inside, g, torch.zeros_like(g))
        labels.append(g if src[members[i][0]].pixel_loss else torch.full_like(g, IGNORE))
    x = out[:, 0] + AIR_HU
    images = torch.stack([((x - wd.low) / wd.width).clamp_(0.0, 1.0)
                          for wd in maker.windows]).transpose(0, 1)
    kind = torch.tensor([p["contrast_kind"] for p in plans])
    param = torch.tensor([p["contrast_param"] for p in plans], dtype=torch.float32)
    return _ref_contrast(images, kind, param), torch.stack(labels)


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
            ref = _ref_raw(maker, step)
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
                images, labels = _ref_render_group(maker, members)
                assert g.images.stride() == images.stride()
                assert g.images.dtype == images.dtype and torch.equal(g.images, images)
                assert g.labels.dtype == labels.dtype and torch.equal(g.labels, labels)
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
        ref = _ref_contrast(x, kind, param)
        got = apply_contrast(x, kind, param)
        assert got.stride() == ref.stride() and torch.equal(got, ref), kinds
        inplace = apply_contrast(x.clone(), kind, param, inplace=True)
        assert torch.equal(inplace, ref), kinds
