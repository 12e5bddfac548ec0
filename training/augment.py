"""Training augmentation (Noisy Student's "noise"): head size / aspect ratio, crop, flip, contrast.

Works on windowed images in [0, 1] (``training.windows``), shape (C, H, W), and label maps
(H, W) with the workspace values (0..5, 255). Every random decision is drawn from an explicit
``torch.Generator`` on the CPU, in a fixed order and a fixed number of draws per sample, so a
seed gives the same patch on any device and regardless of what the data look like.

One sample goes through two steps:

1. ``plan_sample(labels, cfg, gen)``: draws every random parameter. Only the label map is read
   (for the positive / negative crop balance).
2. ``apply_plans(images, labels, plans)``: deterministic rendering, batched (one
   ``grid_sample`` for the whole batch; runs on the GPU if the tensors are there).

Geometry: the slice is scaled about its centre by ``sx`` (columns, head width) and ``sy``
(rows, head length), drawn independently: that is the paper's "lengths and widths of each head
were independently adjusted", covering head size and aspect ratio at once. The paper does not
give the range: default U(0.9, 1.1) each. A crop window is then chosen on the scaled slice
(padded with background up to the crop size when smaller) and flips mirror it. Scale, crop and
flip compose into one per-axis sampling coordinate, so only the crop's pixels are interpolated:
image bilinear, labels nearest neighbour (an index gather: 255 stays 255, classes stay integers,
outside the slice is 0).

Contrast (the paper's Table 2; refs 12-13 of seed-paper.md), applied after the geometry to the
windowed image, one choice per image, the same on every channel. With x in [0, 1]:

- power law (gamma correction):   y = x ** gamma,          gamma ~ U(0.85, 1.1)
- logarithmic correction:         y = g * log2(1 + x),     g     ~ U(0.7, 1.1)
- none:                           y = x

each with probability 1/3 ("mixed"). These are exactly scikit-image's ``adjust_gamma(x, gamma)``
and ``adjust_log(x, g)`` for float images (the paper's wording, "power law transform" and
"logarithmic correction", is their docstrings'); like them the result is not clipped, so the
log branch reaches at most g = 1.1 at x = 1. Variants for the ablation: "power", "log", "none".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ictview.core.labels import IGNORE

from training.augment_config import (  # noqa: F401 - re-exported
    CONTRAST_LOG,
    CONTRAST_NONE,
    CONTRAST_POWER,
    CONTRAST_VARIANTS,
    AugmentConfig,
)


@dataclass
class AugmentPlan:
    """Every random decision for one sample; ``apply_plans`` renders it."""

    src_y: torch.Tensor  # (out_h,) float64 source row coordinate of each output row
    src_x: torch.Tensor  # (out_w,) float64 source column coordinate of each output column
    contrast_kind: int  # CONTRAST_POWER / CONTRAST_LOG / CONTRAST_NONE
    contrast_param: float  # gamma or g; 1.0 for none
    # for logs and tests
    scale: tuple[float, float]  # (sy, sx)
    origin: tuple[int, int]  # crop origin (row, col) on the scaled, padded canvas
    flip: tuple[bool, bool]  # (rows, cols)
    wanted_positive: bool | None  # which side of the balance was drawn; None: uniform


def _uniform(lo: float, hi: float, gen: torch.Generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))


def sample_contrast(
    n: int, gen: torch.Generator, cfg: AugmentConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws -> kind int64 (n,) and parameter float32 (n,): gamma, g, or 1 for none."""
    cfg = cfg or AugmentConfig()
    kind = torch.multinomial(_contrast_probs(cfg.contrast), n, replacement=True, generator=gen)
    u = torch.rand(n, generator=gen, dtype=torch.float64)  # one uniform drives either parameter
    (g0, g1), (l0, l1) = cfg.gamma_range, cfg.log_gain_range
    param = torch.where(
        kind == CONTRAST_POWER,
        g0 + (g1 - g0) * u,
        torch.where(kind == CONTRAST_LOG, l0 + (l1 - l0) * u, torch.ones_like(u)),
    )
    return kind, param.float()


@functools.cache
def _contrast_probs(variant: str) -> torch.Tensor:
    return torch.tensor(CONTRAST_VARIANTS[variant], dtype=torch.float64)


def _sample_contrast_one(gen: torch.Generator, cfg: AugmentConfig) -> tuple[int, float]:
    """``sample_contrast(1, gen, cfg)`` as Python numbers, the same draws and values: the
    parameter's formula in float64 (Python's float) rounded to float32, as the tensor one."""
    kind = int(torch.multinomial(_contrast_probs(cfg.contrast), 1, replacement=True,
                                 generator=gen))
    u = float(torch.rand(1, generator=gen, dtype=torch.float64))
    (g0, g1), (l0, l1) = cfg.gamma_range, cfg.log_gain_range
    if kind == CONTRAST_POWER:
        return kind, float(np.float32(g0 + (g1 - g0) * u))
    if kind == CONTRAST_LOG:
        return kind, float(np.float32(l0 + (l1 - l0) * u))
    return kind, 1.0


def apply_contrast(image: torch.Tensor, kind: torch.Tensor, param: torch.Tensor,
                   inplace: bool = False) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] with per-image kind and parameter (N,) -> the formulas above.

    The power and the log are computed only on the images that use them (a third of a mixed
    batch each, where computing both on every pixel was most of a CPU batch's rendering),
    with the same values bit for bit as on the whole batch (``_sub_batch``); the result has
    the input's memory layout. ``inplace``: written into ``image`` (a batch being rendered:
    saves a copy of it)."""
    kind = kind.cpu()
    power = torch.nonzero(kind == CONTRAST_POWER).flatten()
    log = torch.nonzero(kind == CONTRAST_LOG).flatten()
    if len(power) == 0 and len(log) == 0:
        # no contrast in the whole batch (the HU pass of rendering always): the image as the
        # formulas below would give it, without computing a power and a log of every pixel
        return image
    out = image if inplace else image.clone()  # clone keeps the strides
    p = param.to(image.device, image.dtype).view(-1, 1, 1, 1)
    for which, f in ((power, _power), (log, _log)):
        if len(which) == len(kind):
            return f(image, p) if not inplace else out.copy_(f(image, p))
        if len(which):
            sub, i = _sub_batch(image, which)
            out.index_copy_(0, which.to(image.device), f(sub, p[i])[: len(which)])
    return out


def _power(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=0.0).pow(p)  # interpolation can leave -1e-8: keep pow real


def _log(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return p * torch.log2(1.0 + x.clamp(min=0.0))


def _sub_batch(image: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``idx`` of a batch, in the batch's memory order, and the index used.

    Why the layout matters: torch's CPU ``pow`` computes each inner loop in vector registers
    and its last few elements one at a time, with results that can differ in the last bit.
    Its inner loops follow the memory layout and the dimensions that merge (the exponent is
    per image), so a sub-batch laid out as the batch has the very same loops; one image alone
    would lose its batch dimension and merge its channels into one loop, so it is taken twice.
    """
    idx = idx.to(image.device)
    if len(idx) == 1:
        idx = idx.repeat(2)
    order = sorted(range(image.dim()), key=lambda d: (-image.stride(d), d))
    sub = image.permute(order).index_select(order.index(0), idx)  # contiguous in that order
    return sub.permute([order.index(d) for d in range(image.dim())]), idx


def _is_positive(labels: torch.Tensor) -> torch.Tensor:
    return (labels > 0) & (labels != IGNORE)


@dataclass(frozen=True)
class Positives:
    """A label slice's positive pixels as ``positive_window_counts`` reads them: the bounding
    box (top, left) and the mask inside it. Small, and a function of the slice only, so a
    batch maker keeps it per slice instead of scanning the label map at every draw."""

    shape: tuple[int, int]  # the slice's (H, W)
    top: int
    left: int
    mask: np.ndarray  # (rows, cols) bool, the bounding box of the positives; (0, 0) if none

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes + 64

    @classmethod
    def of(cls, labels) -> Positives:
        """From a label map (H, W), numpy or torch."""
        lab = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        positive = (lab > 0) & (lab != IGNORE)
        rows, cols = np.flatnonzero(positive.any(1)), np.flatnonzero(positive.any(0))
        if len(rows) == 0:
            return cls(lab.shape, 0, 0, np.zeros((0, 0), bool))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        return cls(lab.shape, r0, c0, positive[r0:r1, c0:c1].copy())


def _canvas_to_source(size: int, canvas: int, scale: float) -> np.ndarray:
    """Source coordinate of each canvas pixel: scaling by ``scale`` about the (shared) centre.
    float64, numpy: the same IEEE operations as in torch, without a tensor's overhead."""
    y = np.arange(canvas, dtype=np.float64)
    return (size - 1) / 2 + (y - (canvas - 1) / 2) / scale


def _nearest(coord: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.floor(coord + 0.5).long()
    valid = (idx >= 0) & (idx < size)
    return idx.clamp(0, size - 1), valid


def positive_window_counts(
    positive, src_y: np.ndarray, src_x: np.ndarray, size: int
) -> np.ndarray | None:
    """Positive pixels in every size x size window of the scaled canvas, or None if there are none.

    positive: (H, W) bool source mask, or its ``Positives``; src_y / src_x: source coordinate
    of each canvas row / column, increasing (before any flip). Only the canvas rows and columns that land in the
    positives' bounding box are rendered (nearest neighbour, as the labels are), then a
    summed-area table gives every window's count: a few hundred microseconds for a 512x512
    slice with a small lesion, where rendering and summing the whole canvas costs several
    milliseconds per sample.
    """
    if not isinstance(positive, Positives):
        positive = Positives.of(positive.astype(np.uint8))
    box = positive.mask
    if box.size == 0:
        return None
    # nearest source row of each canvas row, unclamped: non-decreasing along the canvas, so
    # the canvas rows landing in the box are one run, found by bisection (the box lies inside
    # the slice, so they are valid rows)
    iy = np.floor(src_y + 0.5).astype(np.int64)
    ix = np.floor(src_x + 0.5).astype(np.int64)
    r0, r1 = np.searchsorted(iy, [positive.top, positive.top + box.shape[0]])
    c0, c1 = np.searchsorted(ix, [positive.left, positive.left + box.shape[1]])
    if r0 == r1 or c0 == c1:
        return None  # zoomed in so far that every positive left the canvas
    small = box[(iy[r0:r1] - positive.top)[:, None], (ix[c0:c1] - positive.left)[None, :]]
    sat = np.zeros((small.shape[0] + 1, small.shape[1] + 1), np.int32)
    np.cumsum(small, 0, out=sat[1:, 1:])
    np.cumsum(sat[1:, 1:], 1, out=sat[1:, 1:])
    # every window's first and last row (column) inside the small canvas, clamped
    ys = np.arange(len(src_y) - size + 1) + np.array([[-r0], [size - r0]])
    xs = np.arange(len(src_x) - size + 1) + np.array([[-c0], [size - c0]])
    ya, yb = np.minimum(np.maximum(ys, 0), small.shape[0])
    xa, xb = np.minimum(np.maximum(xs, 0), small.shape[1])
    rows = sat[yb] - sat[ya]  # positives per column of each window's rows
    return rows[:, xb] - rows[:, xa]


def choose_crop(
    counts: np.ndarray | None,
    n_windows: tuple[int, int],
    positive_fraction: float | None,
    gen: torch.Generator,
) -> tuple[int, int, bool | None]:
    """Origin (row, col) of a crop window among n_windows = (rows, cols) possible origins.

    With probability ``positive_fraction`` the window is uniform among those whose positive
    ``counts`` (positive_window_counts) are > 0, otherwise among those with 0; if that side is
    empty (counts None: no positives), uniform over all windows. Always exactly two draws from
    ``gen``, so later draws do not depend on the data.
    """
    u_side = float(torch.rand((), generator=gen, dtype=torch.float64))
    u_pick = float(torch.rand((), generator=gen, dtype=torch.float64))
    n_y, n_x = n_windows
    wanted = None if positive_fraction is None else u_side < positive_fraction
    flat = None
    if wanted is not None and counts is not None:
        flat = np.flatnonzero(counts > 0 if wanted else counts == 0)
    if flat is None or len(flat) == 0:
        pick = min(int(u_pick * n_y * n_x), n_y * n_x - 1)
    else:
        pick = int(flat[min(int(u_pick * len(flat)), len(flat) - 1)])
    return pick // n_x, pick % n_x, wanted


def plan_sample(labels, cfg: AugmentConfig, gen: torch.Generator,
                positives: Positives | None = None) -> AugmentPlan:
    """Draw one sample's augmentation from its label map (H, W) (numpy or torch).

    ``positives``: the label map's ``Positives`` when the caller keeps them (else computed
    here when the crop balance needs them). Draw order (fixed): sy, sx, crop side, crop
    position, flip rows, flip cols, contrast kind, contrast parameter.
    """
    h, w = labels.shape
    sy = _uniform(*cfg.scale_y_range, gen)
    sx = _uniform(*cfg.scale_x_range, gen)
    out_h, out_w = (h, w) if cfg.crop is None else (cfg.crop, cfg.crop)
    canvas_h, canvas_w = max(h, out_h), max(w, out_w)
    cy = _canvas_to_source(h, canvas_h, sy)
    cx = _canvas_to_source(w, canvas_w, sx)
    if cfg.crop is None:
        # keep two draws so the rest of the stream is the same as with a crop
        torch.rand(2, generator=gen, dtype=torch.float64)
        y0, x0, wanted = 0, 0, None
    else:
        counts = None
        if cfg.positive_fraction is not None:
            if positives is None:
                positives = Positives.of(labels)
            counts = positive_window_counts(positives, cy, cx, cfg.crop)
        n_windows = (canvas_h - cfg.crop + 1, canvas_w - cfg.crop + 1)
        y0, x0, wanted = choose_crop(counts, n_windows, cfg.positive_fraction, gen)
    src_y, src_x = cy[y0 : y0 + out_h], cx[x0 : x0 + out_w]
    flip_y = bool(torch.rand((), generator=gen) < cfg.flip_y_prob)
    flip_x = bool(torch.rand((), generator=gen) < cfg.flip_x_prob)
    if flip_y:
        src_y = src_y[::-1]
    if flip_x:
        src_x = src_x[::-1]
    kind, param = _sample_contrast_one(gen, cfg)
    return AugmentPlan(
        src_y=torch.from_numpy(src_y.copy()), src_x=torch.from_numpy(src_x.copy()),
        contrast_kind=kind, contrast_param=param,
        scale=(sy, sx), origin=(y0, x0), flip=(flip_y, flip_x), wanted_positive=wanted,
    )


def _normalize(coord: torch.Tensor, size: int) -> torch.Tensor:
    # grid_sample with align_corners=True: -1 and 1 are the centres of the first and last pixel
    return coord * (2.0 / (size - 1)) - 1.0 if size > 1 else torch.zeros_like(coord)


def apply_plans(
    images: torch.Tensor, labels: torch.Tensor | None, plans: Sequence[AugmentPlan]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Render plans on a batch: images (N, C, H, W) float in [0, 1], labels (N, H, W) or None
    -> (N, C, out_h, out_w) float32, (N, out_h, out_w) same dtype as labels."""
    kind = torch.tensor([p.contrast_kind for p in plans])
    param = torch.tensor([p.contrast_param for p in plans], dtype=torch.float32)
    out, out_labels = apply_geometry(images, labels, plans)
    return apply_contrast(out, kind, param), out_labels


def apply_geometry(
    images: torch.Tensor, labels: torch.Tensor | None, plans: Sequence[AugmentPlan]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``apply_plans`` without the contrast: scale, crop and flip of the whole batch at once
    (one grid_sample, one label gather)."""
    n, _, h, w = images.shape
    dev = images.device
    src_y = torch.stack([torch.as_tensor(p.src_y) for p in plans])  # (N, out_h) float64
    src_x = torch.stack([torch.as_tensor(p.src_x) for p in plans])
    gy = _normalize(src_y, h).to(dev, torch.float32)
    gx = _normalize(src_x, w).to(dev, torch.float32)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    out = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    out_labels = None
    if labels is not None:
        # one gather from the flattened batch with a 0 appended: an output pixel outside its
        # slice (either coordinate) takes that 0, the rest their nearest source pixel
        iy, vy = _nearest(src_y.to(labels.device), h)
        ix, vx = _nearest(src_x.to(labels.device), w)
        zero = n * h * w
        row = torch.where(vy, (torch.arange(n, device=labels.device)[:, None] * h + iy) * w,
                          zero)
        col = torch.where(vx, ix, zero)
        flat = (row[:, :, None] + col[:, None, :]).clamp_(max=zero)
        padded = torch.cat([labels.reshape(-1), labels.new_zeros(1)])
        out_labels = padded[flat]
    return out, out_labels


def augment(
    image: torch.Tensor, labels, cfg: AugmentConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample: image (C, H, W) in [0, 1], labels (H, W) -> augmented patch and labels."""
    labels = torch.as_tensor(labels)
    plan = plan_sample(labels, cfg, gen)
    img, lab = apply_plans(image[None], labels[None], [plan])
    return img[0], lab[0]
