"""The per-sample reference of batch planning and rendering (``training.data.batches``).

This is the implementation the batched code replaced, one sample at a time: torch
coordinates, the label map scanned at every draw, the positive-window counts by a
summed-area table of the positives' box, one label gather per sample, power and log of every
pixel of the batch, windows stacked. Kept for two uses: tests/training/
test_render_reference.py asserts that the batch makers' plans equal it field for field and
their batches bit for bit, and ``ictview-train bench`` times it against the batched code in
the same run. Training never calls it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ictview.core.brain_mask import AIR_HU
from ictview.core.labels import IGNORE
from training.augment import CONTRAST_LOG, CONTRAST_POWER, AugmentConfig
from training.augment_config import CONTRAST_VARIANTS
from training.data.batches import BatchMaker, mix_counts, sample_generator


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
    r0, c0 = ry[0], rx[0]
    small = positive[np.ix_(iy[ry], ix[rx])]
    sat = np.zeros((small.shape[0] + 1, small.shape[1] + 1), np.int32)
    np.cumsum(small, 0, out=sat[1:, 1:])
    np.cumsum(sat[1:, 1:], 1, out=sat[1:, 1:])
    y0, x0 = np.arange(len(src_y) - size + 1), np.arange(len(src_x) - size + 1)
    ya, yb = np.clip(y0 - r0, 0, small.shape[0]), np.clip(y0 + size - r0, 0, small.shape[0])
    xa, xb = np.clip(x0 - c0, 0, small.shape[1]), np.clip(x0 + size - c0, 0, small.shape[1])
    return (
        sat[np.ix_(yb, xb)] - sat[np.ix_(ya, xb)] - sat[np.ix_(yb, xa)] + sat[np.ix_(ya, xa)]
    )


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


def reference_raw(maker: BatchMaker, step: int) -> list[tuple]:
    """(source, exam, slice, plan as a dict of AugmentPlan's fields) of each of the rank's
    samples of batch ``step``."""
    counts = mix_counts(maker.weights, maker.batch_size, step)
    comp = [j for j, c in enumerate(counts) for _ in range(c)]
    out = []
    for i in range(maker.rank, maker.batch_size, maker.world):
        src = maker.sources[comp[i]]
        gen = sample_generator(maker.seed, step, i)
        e, z = (int(v) for v in src.index[src.pick(gen)])
        out.append((comp[i], e, z, _ref_plan(src.labels[e][z], src.augment, gen)))
    return out


def reference_contrast(image, kind, param):
    k, p = kind.view(-1, 1, 1, 1), param.view(-1, 1, 1, 1)
    x = image.clamp(min=0.0)
    return torch.where(k == CONTRAST_POWER, x.pow(p),
                       torch.where(k == CONTRAST_LOG, p * torch.log2(1.0 + x), image))


def reference_render_group(maker: BatchMaker, members: list[tuple]) -> tuple:
    """(images, labels) of one shape group of ``reference_raw`` samples: the slices read,
    each sample's labels gathered alone, contrast on every pixel."""
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
    return reference_contrast(images, kind, param), torch.stack(labels)


def reference_batch(maker: BatchMaker, step: int) -> list[tuple]:
    """Batch ``step`` as ``BatchMaker.batch`` groups it (by input and output shape, in order
    of first sample): (images, labels) per group."""
    groups: dict[tuple, list[tuple]] = {}
    for r in reference_raw(maker, step):
        j, e, _, plan = r
        key = (maker.sources[j].hu[e].shape[1:], len(plan["src_y"]), len(plan["src_x"]))
        groups.setdefault(key, []).append(r)
    return [reference_render_group(maker, members) for members in groups.values()]
