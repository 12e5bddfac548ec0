"""Models: the DRN-D-38 backbone and PatchFCN."""

from __future__ import annotations

from training.models.drn import DRN, DRN_D_38_BLOCKS, DRN_D_38_CHANNELS, BasicBlock, drn_d_38
from training.models.patchfcn import (
    FlopCount,
    PatchFCN,
    PatchFCNConfig,
    PatchFCNOutput,
    count_flops,
    count_parameters,
)

__all__ = [
    "DRN",
    "DRN_D_38_BLOCKS",
    "DRN_D_38_CHANNELS",
    "BasicBlock",
    "FlopCount",
    "PatchFCN",
    "PatchFCNConfig",
    "PatchFCNOutput",
    "count_flops",
    "count_parameters",
    "drn_d_38",
]
