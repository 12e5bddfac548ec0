"""Augmentation: seeded, label-preserving, the paper's contrast law and ranges, crop balance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import exposure

from training.augment import (
    CONTRAST_LOG,
    CONTRAST_NONE,
    CONTRAST_POWER,
    AugmentConfig,
    apply_contrast,
    apply_plans,
    augment,
    plan_sample,
    sample_contrast,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _slice(h: int = 96, w: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((2, h, w), dtype=np.float32))
    labels = np.zeros((h, w), np.uint8)
    labels[20:26, 60:70] = 2
    labels[50:53, 10:30] = 3
    labels[70:80, 40:44] = 255
    return image, torch.from_numpy(labels)


def test_same_seed_same_patch_other_seed_other_patch() -> None:
    image, labels = _slice()
    cfg = AugmentConfig(crop=48)
    a = augment(image, labels, cfg, _gen(7))
    b = augment(image, labels, cfg, _gen(7))
    c = augment(image, labels, cfg, _gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_scaling_keeps_label_values_and_dtype() -> None:
    image, labels = _slice()
    cfg = AugmentConfig(crop=64, scale_x_range=(0.6, 1.5), scale_y_range=(0.6, 1.5))
    gen = _gen(0)
    seen: set[int] = set()
    for _ in range(40):
        _, out = augment(image, labels, cfg, gen)
        assert out.dtype == torch.uint8
        seen |= set(out.unique().tolist())
    assert seen <= set(labels.unique().tolist())
    assert {2, 3, 255} <= seen


def test_scaling_about_the_centre_is_independent_per_axis() -> None:
    labels = torch.zeros(64, 64, dtype=torch.uint8)
    labels[28:36, 28:36] = 4  # 8x8 square centred on the image centre (31.5, 31.5)
    image = (labels > 0).float()[None]
    cfg = AugmentConfig.disabled()
    cfg.scale_x_range, cfg.scale_y_range = (2.0, 2.0), (1.0, 1.0)
    img, out = augment(image, labels, cfg, _gen(0))
    rows, cols = np.nonzero(out.numpy())
    assert (rows.min(), rows.max()) == (28, 35)  # length unchanged
    assert (cols.min(), cols.max()) == (24, 39)  # width doubled about the centre
    assert img.shape == (1, 64, 64)


def test_identity_plan_and_flips() -> None:
    image, labels = _slice()
    ident = AugmentConfig.disabled()
    img, lab = augment(image, labels, ident, _gen(0))
    assert torch.allclose(img, image, atol=1e-4) and torch.equal(lab, labels)
    flip = AugmentConfig.disabled()
    flip.flip_x_prob = flip.flip_y_prob = 1.0
    img, lab = augment(image, labels, flip, _gen(0))
    assert torch.allclose(img, image.flip(-1, -2), atol=1e-4)
    assert torch.equal(lab, labels.flip(-1, -2))


def test_slice_smaller_than_crop_is_padded_with_background() -> None:
    image, labels = _slice(32, 32)
    cfg = AugmentConfig.disabled(crop=48)
    img, lab = augment(image, labels, cfg, _gen(0))
    assert img.shape == (2, 48, 48) and lab.shape == (48, 48)
    assert torch.allclose(img[:, 8:40, 8:40], image, atol=1e-4)
    assert img[:, :8].abs().max() == 0 and lab[:8].max() == 0


def test_batch_rendering_matches_per_sample() -> None:
    image, labels = _slice()
    cfg = AugmentConfig(crop=40)
    gen = _gen(3)
    plans = [plan_sample(labels, cfg, gen) for _ in range(4)]
    batch = image[None].expand(4, -1, -1, -1), labels[None].expand(4, -1, -1)
    imgs, labs = apply_plans(*batch, plans)
    for i, p in enumerate(plans):
        one_img, one_lab = apply_plans(image[None], labels[None], [p])
        assert torch.allclose(imgs[i], one_img[0]) and torch.equal(labs[i], one_lab[0])


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_crop_positive_negative_balance(fraction: float) -> None:
    image, labels = _slice()
    cfg = AugmentConfig(crop=32, positive_fraction=fraction)
    gen = _gen(11)
    n, hits = 300, 0
    for _ in range(n):
        plan = plan_sample(labels, cfg, gen)
        _, lab = apply_plans(image[None], labels[None], [plan])
        positive = bool(((lab > 0) & (lab != 255)).any())
        assert positive == plan.wanted_positive  # the crop honours the drawn side exactly
        hits += positive
    assert abs(hits / n - fraction) < 0.08


def test_contrast_choice_is_a_third_each_with_parameters_in_range() -> None:
    kind, param = sample_contrast(30_000, _gen(0), AugmentConfig())
    freq = torch.bincount(kind, minlength=3).double() / len(kind)
    print(f"\ncontrast frequencies (power, log, none): {freq.tolist()}")
    assert torch.all((freq - 1 / 3).abs() < 0.015)  # ~5 binomial standard deviations
    gamma, gain = param[kind == CONTRAST_POWER], param[kind == CONTRAST_LOG]
    assert 0.85 <= gamma.min() and gamma.max() <= 1.1 and gamma.max() - gamma.min() > 0.24
    assert 0.7 <= gain.min() and gain.max() <= 1.1 and gain.max() - gain.min() > 0.39
    assert torch.all(param[kind == CONTRAST_NONE] == 1.0)
    only_log, _ = sample_contrast(1000, _gen(0), AugmentConfig(contrast="log"))
    assert torch.all(only_log == CONTRAST_LOG)


def test_contrast_formulas_are_scikit_image_gamma_and_log() -> None:
    x = torch.linspace(0, 1, 101).reshape(1, 1, 1, 101).repeat(3, 2, 1, 1)
    kind = torch.tensor([CONTRAST_POWER, CONTRAST_LOG, CONTRAST_NONE])
    param = torch.tensor([0.9, 0.8, 1.0])
    out = apply_contrast(x, kind, param).numpy()
    xs = x[0].numpy()
    assert np.allclose(out[0], exposure.adjust_gamma(xs, gamma=0.9), atol=1e-6)
    assert np.allclose(out[1], exposure.adjust_log(xs, gain=0.8), atol=1e-6)
    assert np.array_equal(out[2], xs)
