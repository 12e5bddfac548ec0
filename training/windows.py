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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ictview.errors import IctviewError


@dataclass(frozen=True)
class Window:
    name: str
    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2


WINDOW_PRESETS: dict[str, Window] = {
    w.name: w
    for w in (
        Window("brain", 40.0, 80.0),
        Window("subdural", 75.0, 215.0),
        Window("bone", 600.0, 2800.0),
        Window("stroke", 32.0, 8.0),
        Window("soft", 40.0, 380.0),
    )
}
DEFAULT_WINDOWS: tuple[Window, ...] = tuple(
    WINDOW_PRESETS[n] for n in ("brain", "subdural", "bone")
)


def resolve_windows(
    spec: Sequence[str | Mapping | Window] | None, source: str = "config"
) -> tuple[Window, ...]:
    """Config -> windows. Each item: a preset name, a {name?, center, width} table, or a Window.

    ``source`` names the file in the one-line error for a bad entry.
    """
    if spec is None:
        return DEFAULT_WINDOWS
    if isinstance(spec, (str, Mapping)) or len(spec) == 0:
        raise IctviewError(f"{source}: windows must be a non-empty list, got {spec!r}")
    out = []
    for i, item in enumerate(spec):
        if isinstance(item, Window):
            w = item
        elif isinstance(item, str):
            if item not in WINDOW_PRESETS:
                raise IctviewError(
                    f"{source}: unknown window {item!r} (presets: {', '.join(WINDOW_PRESETS)})"
                )
            w = WINDOW_PRESETS[item]
        elif isinstance(item, Mapping):
            try:
                name = str(item.get("name", f"w{i}"))
                w = Window(name, float(item["center"]), float(item["width"]))
            except (KeyError, TypeError, ValueError):
                raise IctviewError(
                    f"{source}: window {i} needs numeric 'center' and 'width', got {dict(item)!r}"
                ) from None
        else:
            raise IctviewError(f"{source}: window {i} must be a name or a table, got {item!r}")
        if not w.width > 0:
            raise IctviewError(f"{source}: window {w.name!r} needs width > 0, got {w.width}")
        out.append(w)
    return tuple(out)


def apply_windows(hu, windows: Sequence[Window] = DEFAULT_WINDOWS):
    """HU of any shape S -> float32 (len(windows), *S) in [0, 1]; numpy in, numpy out; torch
    in, torch out (same device). For batches (N, H, W) the result is (C, N, H, W): use
    ``apply_windows_batch`` for (N, C, H, W)."""
    if isinstance(hu, torch.Tensor):
        x = hu.float()
        return torch.stack([((x - w.low) / w.width).clamp_(0.0, 1.0) for w in windows])
    x = np.asarray(hu, dtype=np.float32)
    return np.stack([np.clip((x - w.low) / w.width, 0.0, 1.0) for w in windows]).astype(
        np.float32, copy=False
    )


def apply_windows_batch(
    hu: torch.Tensor, windows: Sequence[Window] = DEFAULT_WINDOWS
) -> torch.Tensor:
    """(N, H, W) HU tensor -> (N, C, H, W) float32 in [0, 1]."""
    return apply_windows(hu, windows).transpose(0, 1)
