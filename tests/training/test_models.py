"""DRN-D-38 / PatchFCN: the paper's size and cost, shapes, stride, training step, traceability."""

from __future__ import annotations

import pytest
import torch

from training.losses import patchfcn_loss
from training.models import (
    DRN,
    DRN_D_38_BLOCKS,
    DRN_D_38_CHANNELS,
    PatchFCN,
    PatchFCNConfig,
    count_flops,
    count_parameters,
    drn_d_38,
)

SMALL = PatchFCNConfig(width=0.125)


def expected_drn_d_38_parameters(in_channels: int = 3) -> int:
    """Closed form from the stage table in drn.py (3x3 convs without bias, BN = 2 per channel)."""
    c, b = DRN_D_38_CHANNELS, DRN_D_38_BLOCKS
    n = 7 * 7 * in_channels * c[0] + 2 * c[0]  # stem
    conv = lambda cin, cout: 9 * cin * cout + 2 * cout  # noqa: E731
    n += conv(c[0], c[0]) + conv(c[0], c[1])  # stages 1-2
    cin = c[1]
    for s in range(2, 6):  # residual stages 3-6: first block has a 1x1 projection
        cout = c[s]
        n += 9 * cin * cout + 9 * cout * cout + 4 * cout + cin * cout + 2 * cout
        n += (b[s] - 1) * (2 * 9 * cout * cout + 4 * cout)
        cin = cout
    n += conv(c[5], c[6]) + conv(c[6], c[7])  # stages 7-8
    return n


def test_full_drn_d_38_parameter_count() -> None:
    with torch.device("meta"):  # shapes only: no memory, no init cost
        backbone = drn_d_38(in_channels=3)
        model = PatchFCN()
    n = count_parameters(backbone)
    # + fyu/drn's ImageNet classifier (1x1 conv 512 -> 1000 with bias) = the DRN paper's 26.5M
    print(f"\nDRN-D-38 backbone parameters: {n:,} (+ImageNet fc: {n + 513_000:,})")
    print(f"PatchFCN parameters: {count_parameters(model):,}")
    assert n == expected_drn_d_38_parameters(3) == 25_988_912
    assert 25.5e6 < n < 26.5e6  # "about 26M" (DESIGN.md)
    # heads: 1x1 conv 512 -> 2 with bias, linear 512 -> 1 with bias
    assert count_parameters(model) == n + (512 * 2 + 2) + (512 + 1)


def test_flops_match_design_figures() -> None:
    with torch.device("meta"):
        model = PatchFCN()
    f240, f512 = count_flops(model, 240, 240), count_flops(model, 512, 512)
    print(f"\nPatchFCN forward: {f240.flops / 1e9:.2f} GFLOP per 240x240 patch, "
          f"{f512.flops / 1e9:.2f} GFLOP per 512x512 slice (FLOP = 2 x MAC, conv + linear)")
    assert f240.by_layer["backbone.stem.0"] == 240 * 240 * 16 * 7 * 7 * 3
    assert 47.5e9 < f240.flops < 49.5e9  # DESIGN.md: about 48.5
    assert 216e9 < f512.flops < 226e9  # DESIGN.md: 221


@pytest.mark.parametrize("hw", [(64, 64), (48, 80)])
def test_output_stride_8_and_head_shapes(hw: tuple[int, int]) -> None:
    model = PatchFCN(SMALL)
    x = torch.randn(2, 3, *hw)
    feats = model.backbone(x)
    assert feats.shape == (2, model.backbone.out_channels, hw[0] // 8, hw[1] // 8)
    out = model(x)
    assert out.seg_logits.shape == (2, 2, *hw)
    assert out.cls_logits.shape == (2,)


def test_num_classes_and_input_channels_configurable() -> None:
    model = PatchFCN(PatchFCNConfig(in_channels=1, num_classes=6, width=0.125, cls_pool="max"))
    out = model(torch.randn(3, 1, 32, 32))
    assert out.seg_logits.shape == (3, 6, 32, 32) and out.cls_logits.shape == (3,)


def test_width_and_depth_override_use_the_same_code() -> None:
    small = DRN(width=0.25, blocks=(1, 1, 1, 1, 1, 1, 0, 0))
    assert small.channels == (4, 8, 16, 32, 64, 128, 128, 128)
    assert small.out_channels == 128  # stages 7-8 dropped
    assert small(torch.randn(1, 3, 32, 32)).shape == (1, 128, 4, 4)
    with pytest.raises(ValueError):
        DRN(blocks=(1, 0, 1, 1, 1, 1, 1, 1))  # stage 2 carries a stride
    with pytest.raises(ValueError):
        PatchFCNConfig(cls_pool="median")


def test_config_round_trip() -> None:
    cfg = PatchFCNConfig(width=0.5, blocks=(1, 1, 2, 2, 2, 2, 1, 1))
    assert PatchFCNConfig.from_dict(cfg.to_dict()) == cfg
    a, b = PatchFCN(cfg), PatchFCN(PatchFCNConfig.from_dict(cfg.to_dict()))
    b.load_state_dict(a.state_dict())  # same architecture, same parameter names


def test_forward_backward_trains_on_cpu() -> None:
    model = PatchFCN(PatchFCNConfig(width=0.25))
    x = torch.rand(4, 3, 64, 64)
    labels = torch.zeros(4, 64, 64, dtype=torch.uint8)
    labels[0, 20:30, 20:34] = 2
    labels[1, 40:50, 8:16] = 4
    labels[1, 0:4] = 255
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(6):
        out = model(x)
        loss = patchfcn_loss(out.seg_logits, out.cls_logits, labels).total
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        opt.step()
        losses.append(float(loss.detach()))
    print(f"\nlosses on a fixed batch: {[round(v, 3) for v in losses]}")
    assert losses[-1] < losses[0]


def test_forward_traces_without_graph_breaks() -> None:
    """torch.export fails on data-dependent Python control flow, .item() and graph breaks:
    the model stays compile-friendly (bf16 channels_last torch.compile on the GPU)."""
    model = PatchFCN(SMALL)
    exported = torch.export.export(model, (torch.randn(2, 3, 64, 64),))
    out = exported.module()(torch.randn(2, 3, 64, 64))
    assert out[0].shape == (2, 2, 64, 64) and out[1].shape == (2,)
