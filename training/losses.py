"""PatchFCN's losses: pixel cross-entropy that honours the ignore label, patch BCE, weighted sum.

Label maps carry the workspace values (0 background, 1..5 subtypes, 255 ignore; see
``ictview.core.labels``). With two classes they are folded to background / hemorrhage here, so
callers pass label maps as stored. Everything is tensor arithmetic (no ``.item()``, no branching
on values): the loss compiles together with the model and never syncs the GPU.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ictview.core.labels import IGNORE

NO_CLS_TARGET = -1.0  # in an explicit cls_target: "derive this sample's label from its pixels"


def is_positive(labels: torch.Tensor) -> torch.Tensor:
    """Hemorrhage pixels: any label but background and ignore."""
    return (labels > 0) & (labels != IGNORE)


def seg_target(labels: torch.Tensor, num_classes: int = 2) -> torch.Tensor:
    """Label map -> class indices for cross-entropy (int64); ignore stays ``IGNORE``.

    Two classes: 1..5 -> 1. More classes: values are already class indices.
    """
    labels = labels.long()
    if num_classes == 2:
        labels = torch.where(is_positive(labels), torch.ones_like(labels), labels)
    return labels


def patch_target(labels: torch.Tensor) -> torch.Tensor:
    """(N, H, W) label maps -> (N,) float: 1 where the patch contains any positive pixel."""
    return is_positive(labels).flatten(1).any(dim=1).float()


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE
) -> torch.Tensor:
    """Mean cross-entropy over the non-ignored pixels of the whole batch.

    Summed then divided by max(count, 1): ignored pixels add neither loss nor gradient, and an
    all-ignored batch gives exactly 0 with zero gradients (``reduction="mean"`` would give 0/0 =
    NaN there). Computed in float32 whatever the autocast dtype of the logits.
    """
    target = target.long()
    total = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum")
    count = (target != ignore_index).sum()
    return total / count.clamp(min=1)


def classification_loss(logits: torch.Tensor, target: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean binary cross-entropy of the patch logits (N,) against 0/1 targets (N,); ``weight``
    (N,) multiplies each sample's term (the mean stays over N: importance weights)."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), weight=weight)


class LossTerms(NamedTuple):
    total: torch.Tensor  # seg_weight * seg + cls_weight * cls: what backward() runs on
    seg: torch.Tensor
    cls: torch.Tensor


def patchfcn_loss(
    seg_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    labels: torch.Tensor,
    cls_target: torch.Tensor | None = None,
    *,
    seg_weight: float = 1.0,
    cls_weight: float = 1.0,
    prior_weights: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LossTerms:
    """PatchFCN's training loss for one minibatch.

    labels: (N, H, W) label maps as stored (0..5, 255). The patch label is "any positive pixel"
    (the paper's rule). ``cls_target`` (N,) overrides it per sample where it is 0 or 1 and defers
    to the pixels where it is ``NO_CLS_TARGET``; the image-slice oracle uses that with all-255
    label maps: image label on the patch head, no pixel loss. ``prior_weights`` (w_pos, w_neg),
    each (N,): the patch term of a positive sample is weighted w_pos, of a negative w_neg
    (training/data/sources.py, ``cls_prior_weights``: the head trained against a chosen prior).
    """
    num_classes = seg_logits.shape[1]
    seg = segmentation_loss(seg_logits, seg_target(labels, num_classes))
    derived = patch_target(labels)
    if cls_target is not None:
        cls_target = cls_target.to(derived.device, derived.dtype)
        derived = torch.where(cls_target >= 0, cls_target, derived)
    weight = None
    if prior_weights is not None:
        w_pos, w_neg = prior_weights
        weight = torch.where(derived > 0.5, w_pos.to(derived), w_neg.to(derived))
    cls = classification_loss(cls_logits, derived, weight)
    return LossTerms(seg_weight * seg + cls_weight * cls, seg, cls)
