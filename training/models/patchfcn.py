"""PatchFCN (Kuo et al., PNAS 2019): a DRN-D-38 backbone with a segmentation and a patch head.

- segmentation head: 1x1 conv to ``num_classes`` on the stride-8 features, bilinear upsampling
  (x8) back to the input size -> ``seg_logits`` (N, C, H, W);
- patch classification head: global pooling of the same features + linear -> ``cls_logits``
  (N,), trained on "the patch contains any positive pixel".

``forward`` returns a ``PatchFCNOutput`` NamedTuple: attribute access for readers, and a plain
tuple of tensors for torch.compile and DistributedDataParallel (which both walk tuples natively).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from training.models.drn import DRN, DRN_D_38_BLOCKS

CLS_POOLS = ("avg", "max")


@dataclass
class PatchFCNConfig:
    in_channels: int = 3  # one per input window (training.windows)
    num_classes: int = 2  # 2 = background / hemorrhage; 6 = background + five subtypes
    width: float = 1.0  # channel multiplier; 1.0 is the paper's DRN-D-38
    blocks: tuple[int, ...] = field(default=DRN_D_38_BLOCKS)
    cls_pool: str = "avg"  # global pooling for the patch head: "avg" or "max"

    def __post_init__(self) -> None:
        self.blocks = tuple(int(b) for b in self.blocks)
        if self.cls_pool not in CLS_POOLS:
            raise ValueError(f"cls_pool must be one of {CLS_POOLS}, got {self.cls_pool!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")

    def to_dict(self) -> dict:
        return {**asdict(self), "blocks": list(self.blocks)}

    @classmethod
    def from_dict(cls, d: dict) -> PatchFCNConfig:
        return cls(**d)


class PatchFCNOutput(NamedTuple):
    seg_logits: torch.Tensor  # (N, num_classes, H, W)
    cls_logits: torch.Tensor  # (N,)


class PatchFCN(nn.Module):
    def __init__(self, config: PatchFCNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or PatchFCNConfig()
        self.backbone = DRN(config.in_channels, config.width, config.blocks)
        c = self.backbone.out_channels
        self.seg_head = nn.Conv2d(c, config.num_classes, 1)
        self.cls_head = nn.Linear(c, 1)
        self._max_pool = config.cls_pool == "max"  # fixed at build time: no branching on data
        # Heads keep PyTorch's fan-in init: fyu/drn's fan-out init (std 1 for a 1x1 conv to 2
        # classes) gives initial logits of tens over 512 channels, fine for its ImageNet
        # fine-tuning, a loss spike when training from scratch as here.

    def forward(self, x: torch.Tensor) -> PatchFCNOutput:
        feats = self.backbone(x)
        seg = self.seg_head(feats)
        # to the input size, i.e. exactly x8 for sides divisible by 8 (240, 512)
        seg = F.interpolate(seg, size=x.shape[-2:], mode="bilinear", align_corners=False)
        pooled = feats.amax(dim=(2, 3)) if self._max_pool else feats.mean(dim=(2, 3))
        cls = self.cls_head(pooled).squeeze(1)
        return PatchFCNOutput(seg, cls)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class FlopCount:
    macs: int  # multiply-accumulates of conv and linear layers, per image
    flops: int  # 2 * macs (the convention behind DESIGN.md's 48.5 GFLOP per 240x240 patch)
    by_layer: dict[str, int]  # MACs per conv/linear module name


def count_flops(model: nn.Module, h: int, w: int, in_channels: int | None = None) -> FlopCount:
    """Conv + linear cost of one forward pass on an (h, w) image, measured with forward hooks.

    Runs on a meta-device copy of the model: no memory for activations, no compute, instant
    even for 512x512. BatchNorm, ReLU, the residual adds and the upsampling are not counted
    (together well under 1% of the convs).
    """
    if in_channels is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        in_channels = first.in_channels
    meta = copy.deepcopy(model).to("meta")
    by_layer: dict[str, int] = {}

    def hook(name: str):
        def record(mod: nn.Module, _inp, out: torch.Tensor) -> None:
            if isinstance(mod, nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
                by_layer[name] = out[0].numel() * k
            else:
                by_layer[name] = out[0].numel() * mod.in_features

        return record

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in meta.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            meta(torch.empty(1, in_channels, h, w, device="meta"))
    finally:
        for hd in handles:
            hd.remove()
    macs = sum(by_layer.values())
    return FlopCount(macs=macs, flops=2 * macs, by_layer=by_layer)
