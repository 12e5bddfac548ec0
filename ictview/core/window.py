"""CT display windows (center/width in HU) shared by the viewer, screenshots and exports."""

from __future__ import annotations

import numpy as np

# (center, width) in HU; key order = keyboard shortcuts 1..4
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "stroke": (40, 40),
    "bone": (600, 2800),
}
PRESET_KEYS: tuple[str, ...] = tuple(WINDOW_PRESETS)  # "1" -> brain, "2" -> subdural, ...
# the values above as shipped: the user's preferences (core/prefs.py) may change the ones in
# WINDOW_PRESETS for a running app (set_preset_values); these stay what "default" means
BUILTIN_PRESETS: dict[str, tuple[float, float]] = dict(WINDOW_PRESETS)
MIN_WIDTH = 1.0


def window_levels(center: float, width: float) -> tuple[float, float]:
    """(lo, hi) display levels in HU for a window; width is clamped to >= 1 HU."""
    w = max(float(width), MIN_WIDTH)
    return (float(center) - w / 2.0, float(center) + w / 2.0)


def apply_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """HU -> float32 in [0, 1] under the window (for screenshots and thumbnails)."""
    lo, hi = window_levels(center, width)
    out = (np.asarray(hu, dtype=np.float32) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def set_preset_values(values: dict[str, tuple[float, float]]) -> None:
    """Give the presets the user's (center, width) values (the app applies its preferences
    here so that every view, menu and model reading WINDOW_PRESETS agrees). Names stay."""
    for name in WINDOW_PRESETS:
        c, w = values.get(name, BUILTIN_PRESETS[name])
        WINDOW_PRESETS[name] = (c, max(w, MIN_WIDTH))
