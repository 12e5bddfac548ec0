"""Losses: the ignore label adds no loss and no gradient; all-ignored is 0, not NaN."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.losses import (
    NO_CLS_TARGET,
    classification_loss,
    patch_target,
    patchfcn_loss,
    seg_target,
    segmentation_loss,
)


def _labels() -> torch.Tensor:
    labels = torch.zeros(2, 16, 16, dtype=torch.uint8)
    labels[0, 4:8, 4:8] = 2
    labels[0, 8:12, 4:12] = 255
    labels[1, 0:16:3, :] = 255
    labels[1, 10:12, 10:14] = 5
    return labels


def _loss_and_grad(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = logits.clone().requires_grad_(True)
    loss = segmentation_loss(logits, seg_target(labels))
    loss.backward()
    return loss.detach(), logits.grad


def test_ignored_pixels_add_no_loss_and_no_gradient() -> None:
    labels = _labels()
    ignored = (labels == 255)[:, None].expand(-1, 2, -1, -1)
    logits = torch.randn(2, 2, 16, 16)
    changed = torch.where(ignored, logits + 50 * torch.randn_like(logits), logits)
    loss_a, grad_a = _loss_and_grad(logits, labels)
    loss_b, grad_b = _loss_and_grad(changed, labels)
    assert torch.equal(loss_a, loss_b)
    assert torch.equal(grad_a, grad_b)
    assert torch.all(grad_a[ignored] == 0)
    assert torch.all(grad_a[~ignored] != 0)


def test_mean_over_non_ignored_pixels() -> None:
    labels = _labels()
    logits = torch.randn(2, 2, 16, 16)
    target = seg_target(labels)
    keep = target != 255
    logp = F.log_softmax(logits, dim=1)
    per_pixel = -logp.gather(1, target.clamp(max=1)[:, None])[:, 0]
    assert torch.allclose(segmentation_loss(logits, target), per_pixel[keep].mean())


def test_all_ignored_batch_gives_zero_loss_and_finite_gradients() -> None:
    labels = torch.full((2, 8, 8), 255, dtype=torch.uint8)
    seg = torch.randn(2, 2, 8, 8, requires_grad=True)
    cls = torch.randn(2, requires_grad=True)
    terms = patchfcn_loss(seg, cls, labels)
    assert float(terms.seg.detach()) == 0.0
    assert torch.isfinite(terms.total)
    terms.total.backward()
    assert torch.all(seg.grad == 0)
    assert torch.isfinite(cls.grad).all()


def test_targets_binary_and_multiclass() -> None:
    labels = torch.tensor([[[0, 1, 2, 3], [4, 5, 255, 0]]], dtype=torch.uint8)
    assert seg_target(labels).tolist() == [[[0, 1, 1, 1], [1, 1, 255, 0]]]
    assert seg_target(labels, num_classes=6).tolist() == labels.long().tolist()
    maps = torch.zeros(3, 4, 4, dtype=torch.uint8)
    maps[1, 2, 2] = 3
    maps[2] = 255  # ignore only: no positive pixel
    assert patch_target(maps).tolist() == [0.0, 1.0, 0.0]


def test_weighted_sum_and_explicit_patch_labels() -> None:
    labels = torch.zeros(3, 8, 8, dtype=torch.uint8)
    labels[0, 1, 1] = 4
    labels[2] = 255  # image-slice oracle sample: no pixel loss, image label on the patch head
    seg = torch.randn(3, 2, 8, 8)
    cls = torch.randn(3)
    cls_target = torch.tensor([NO_CLS_TARGET, NO_CLS_TARGET, 1.0])
    terms = patchfcn_loss(seg, cls, labels, cls_target, seg_weight=0.5, cls_weight=2.0)
    expected_cls = classification_loss(cls, torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(terms.cls, expected_cls)
    assert torch.allclose(terms.seg, segmentation_loss(seg[:2], seg_target(labels[:2])))
    assert torch.allclose(terms.total, 0.5 * terms.seg + 2.0 * terms.cls)


def test_low_precision_logits_give_float32_loss() -> None:
    labels = _labels()
    seg = torch.randn(2, 2, 16, 16)
    terms = patchfcn_loss(seg.bfloat16(), torch.zeros(2).bfloat16(), labels)
    assert terms.total.dtype == torch.float32
    ref = patchfcn_loss(seg.bfloat16().float(), torch.zeros(2), labels)
    assert torch.allclose(terms.total, ref.total)


def test_loss_traces_without_graph_breaks() -> None:
    explained = torch._dynamo.explain(patchfcn_loss)(
        torch.randn(2, 2, 16, 16), torch.randn(2), _labels(), torch.tensor([-1.0, 1.0])
    )
    assert explained.graph_break_count == 0
