"""What augmentation to do, as plain data (no torch): the config layer validates it without
importing torch, so ``ictview-train`` reports a bad config in well under a second.
The rendering is ``training.augment`` (see its docstring for the transforms)."""

from __future__ import annotations

from dataclasses import dataclass

CONTRAST_POWER, CONTRAST_LOG, CONTRAST_NONE = 0, 1, 2
# probabilities of (power, log, none)
CONTRAST_VARIANTS: dict[str, tuple[float, float, float]] = {
    "mixed": (1 / 3, 1 / 3, 1 / 3),
    "power": (1.0, 0.0, 0.0),
    "log": (0.0, 1.0, 0.0),
    "none": (0.0, 0.0, 1.0),
}


@dataclass
class AugmentConfig:
    contrast: str = "mixed"  # a key of CONTRAST_VARIANTS
    gamma_range: tuple[float, float] = (0.85, 1.1)
    log_gain_range: tuple[float, float] = (0.7, 1.1)
    scale_x_range: tuple[float, float] = (0.9, 1.1)  # head width
    scale_y_range: tuple[float, float] = (0.9, 1.1)  # head length (anterior-posterior)
    flip_x_prob: float = 0.5  # left-right: hemorrhage occurs on either side
    flip_y_prob: float = 0.0  # anterior-posterior: off, front and back of a head differ
    crop: int | None = 240  # square patch side; None keeps the whole slice (image-slice oracle)
    # chance that a patch is drawn among windows containing a positive pixel (when the slice has
    # any; otherwise among windows without one); None: uniform over all windows
    positive_fraction: float | None = 0.5

    def __post_init__(self) -> None:
        if self.contrast not in CONTRAST_VARIANTS:
            raise ValueError(
                f"contrast must be one of {', '.join(CONTRAST_VARIANTS)}, got {self.contrast!r}"
            )
        for name in ("gamma_range", "log_gain_range", "scale_x_range", "scale_y_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
            setattr(self, name, (float(lo), float(hi)))
        if self.crop is not None and self.crop < 1:
            raise ValueError(f"crop must be >= 1 or None, got {self.crop}")

    @classmethod
    def disabled(cls, crop: int | None = None) -> AugmentConfig:
        """No augmentation (evaluation, or an ablation): identity geometry and contrast."""
        return cls(
            contrast="none", scale_x_range=(1.0, 1.0), scale_y_range=(1.0, 1.0),
            flip_x_prob=0.0, flip_y_prob=0.0, crop=crop, positive_fraction=None,
        )
