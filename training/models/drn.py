"""DRN-D-38: the dilated residual network under PatchFCN (Yu et al., CVPR 2017; fyu/drn).

Layout (DESIGN.md), stage by stage, with the resolution after each for a 240x240 input:

| stage | kind                        | channels | blocks | stride | dilation | size |
| ----- | --------------------------- | -------- | ------ | ------ | -------- | ---- |
| 0     | 7x7 conv (stem)             | 16       | -      | 1      | 1        | 240  |
| 1     | plain 3x3 convs             | 16       | 1      | 1      | 1        | 240  |
| 2     | plain 3x3 convs             | 32       | 1      | 2      | 1        | 120  |
| 3     | BasicBlocks                 | 64       | 3      | 2      | 1        | 60   |
| 4     | BasicBlocks                 | 128      | 4      | 2      | 1        | 30   |
| 5     | BasicBlocks                 | 256      | 6      | 1      | 2        | 30   |
| 6     | BasicBlocks                 | 512      | 3      | 1      | 4        | 30   |
| 7     | plain 3x3 convs, no residual| 512      | 1      | 1      | 2        | 30   |
| 8     | plain 3x3 convs, no residual| 512      | 1      | 1      | 1        | 30   |

Output stride 8. This is fyu/drn's `DRN(BasicBlock, [1,1,3,4,6,3,1,1], arch='D')` without its
ImageNet classifier; parameter names differ (``stages.N`` instead of ``layerN``) but shapes match.
Stages 7 and 8 "de-grid" the dilated features; they are plain convs so no residual carries the
gridding artifacts of stage 6 through.

Everything that varies (width, depth, input channels) is decided in ``__init__``; ``forward`` is
a straight chain of modules, so torch.compile traces it without graph breaks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from training.drn_layout import DRN_D_38_BLOCKS  # noqa: F401 - re-exported

DRN_D_38_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 512, 512)
# per stage: (stride, dilation, residual); stages 1-2 and 7-8 are plain conv stacks
_STAGE_LAYOUT: tuple[tuple[int, int, bool], ...] = (
    (1, 1, False),
    (2, 1, False),
    (2, 1, True),
    (2, 1, True),
    (1, 2, True),
    (1, 4, True),
    (1, 2, False),
    (1, 1, False),
)
OUTPUT_STRIDE = 8


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    # padding = dilation keeps the size at stride 1 (and gives ceil(H/2) at stride 2)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet BasicBlock with DRN's dilations)."""

    def __init__(
        self, cin: int, cout: int, stride: int = 1, dilation: tuple[int, int] = (1, 1)
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride, dilation[0])
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout, 1, dilation[1])
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


def _conv_stage(cin: int, cout: int, convs: int, stride: int, dilation: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            _conv3x3(cin if i == 0 else cout, cout, stride if i == 0 else 1, dilation),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def _residual_stage(cin: int, cout: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    # fyu/drn with new_level=False: the first block of a dilated stage already uses the full
    # dilation (stages 5 and 6 keep the resolution, so there is no level to halve into)
    layers = [BasicBlock(cin, cout, stride, (dilation, dilation))]
    layers += [BasicBlock(cout, cout, 1, (dilation, dilation)) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def scaled_channels(width: float, channels: Sequence[int] = DRN_D_38_CHANNELS) -> tuple[int, ...]:
    """Channels times the width multiplier, rounded, at least 1."""
    return tuple(max(1, int(round(c * width))) for c in channels)


class DRN(nn.Module):
    """DRN-D backbone: image (N, in_channels, H, W) -> features (N, out_channels, H/8, W/8).

    ``width`` scales every stage's channels (tests use 1/8 or 1/4); ``blocks`` overrides the
    per-stage depth. Stages 1-4 carry the strides and must keep at least one block; stages 5-8
    may be 0 (dropped, as fyu/drn does for DRN-D-22's short stages).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: float = 1.0,
        blocks: Sequence[int] = DRN_D_38_BLOCKS,
        channels: Sequence[int] = DRN_D_38_CHANNELS,
    ) -> None:
        super().__init__()
        blocks = tuple(int(b) for b in blocks)
        if len(blocks) != 8 or len(channels) != 8:
            raise ValueError(f"DRN needs 8 stages, got blocks={blocks} channels={tuple(channels)}")
        if min(blocks[:4]) < 1 or min(blocks) < 0:
            raise ValueError(f"DRN stages 1-4 need >= 1 block and none < 0, got {blocks}")
        if width <= 0:
            raise ValueError(f"DRN width must be > 0, got {width}")
        chans = scaled_channels(width, channels)
        self.channels = chans
        self.blocks = blocks
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, chans[0], 7, padding=3, bias=False),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        cin = chans[0]
        for cout, n, (stride, dilation, residual) in zip(chans, blocks, _STAGE_LAYOUT):
            if n == 0:
                continue
            make = _residual_stage if residual else _conv_stage
            stages.append(make(cin, cout, n, stride, dilation))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_channels = cin
        self.output_stride = OUTPUT_STRIDE
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # fyu/drn's initialization: He normal over fan-out, BN gamma 1 beta 0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


def drn_d_38(in_channels: int = 3, width: float = 1.0, blocks: Sequence[int] | None = None) -> DRN:
    return DRN(in_channels, width, DRN_D_38_BLOCKS if blocks is None else blocks)
