"""HU -> network input: one channel per display window, each mapped linearly to [0, 1].

Default (the paper does not fix the input; DESIGN.md asks for a documented default):

- brain    40 / 80     (0 .. 80 HU): the reading window, grey/white matter vs acute blood;
- subdural 75 / 215    (-32.5 .. 182.5 HU): thin extra-axial blood next to the inner table;
- bone     600 / 2800  (-800 .. 2000 HU): bone and calcification (100 HU and up) saturate the
  brain window as acute blood (50-90 HU) nearly does, and the subdural window above 183 HU;
  this channel keeps them apart.

The bone channel is the "input must tell bone from blood" lesson of the probe in DESIGN.md
(Facts), complementary to skull stripping. Mapping: ``clip((hu - (center - width/2)) / width,
0, 1)``, the plain linear window (not DICOM's center-0.5 / width-1 variant: a half-HU shift that
does not matter to a network). Works on numpy arrays and torch tensors alike, so windowing can run
on the GPU from int16 HU (half the bytes of one float32 channel over the bus).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from training.window_spec import (  # noqa: F401 - re-exported
    DEFAULT_WINDOWS,
    WINDOW_PRESETS,
    Window,
    resolve_windows,
)


def apply_windows(hu, windows: Sequence[Window] = DEFAULT_WINDOWS):
    """HU of any shape S -> float32 (len(windows), *S) in [0, 1]; numpy in, numpy out; torch
    in, torch out (same device). For batches (N, H, W) the result is (C, N, H, W): use
    ``apply_windows_batch`` for (N, C, H, W)."""
    if isinstance(hu, torch.Tensor):
        x = hu.float()
        # each window written in place into the result: no stack copy of the channels
        out = x.new_empty((len(windows), *x.shape))
        for c, w in enumerate(windows):
            torch.sub(x, w.low, out=out[c]).div_(w.width).clamp_(0.0, 1.0)
        return out
    x = np.asarray(hu, dtype=np.float32)
    return np.stack([np.clip((x - w.low) / w.width, 0.0, 1.0) for w in windows]).astype(
        np.float32, copy=False
    )


def apply_windows_batch(
    hu: torch.Tensor, windows: Sequence[Window] = DEFAULT_WINDOWS
) -> torch.Tensor:
    """(N, H, W) HU tensor -> (N, C, H, W) float32 in [0, 1]."""
    return apply_windows(hu, windows).transpose(0, 1)
