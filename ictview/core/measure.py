"""Measurements on a displayed plane, without Qt: ruler length and ROI statistics.

Points are display (row, col) pixel coordinates of one plane (pixel centres at
integers) and `pixel_mm` is that plane's (height, width) of a pixel in mm, so a
ruler on a coronal reslice of a 5 mm exam measures true millimetres.

ROI statistics are over the pixels whose centres lie inside the shape; the area
is that pixel count times the pixel area (what was measured, not the analytic
area of the drawn shape). The standard deviation is the sample one (n - 1), as
ImageJ and most PACS report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ictview.core.paint import polygon_mask


def distance_mm(p0: tuple[float, float], p1: tuple[float, float],
                pixel_mm: tuple[float, float]) -> float:
    """Length of the segment p0-p1 (display (row, col)) in mm."""
    dy = (float(p1[0]) - float(p0[0])) * float(pixel_mm[0])
    dx = (float(p1[1]) - float(p0[1])) * float(pixel_mm[1])
    return float(np.hypot(dy, dx))


def ellipse_mask(shape: tuple[int, int], p0: tuple[float, float],
                 p1: tuple[float, float]) -> np.ndarray:
    """Pixels whose centres lie in the ellipse inscribed in the box with corners p0, p1."""
    cy, cx = (p0[0] + p1[0]) / 2.0, (p0[1] + p1[1]) / 2.0
    ry, rx = max(abs(p1[0] - p0[0]) / 2.0, 0.5), max(abs(p1[1] - p0[1]) / 2.0, 0.5)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0 + 1e-9


def freehand_mask(shape: tuple[int, int], points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Pixels inside a closed freehand outline (vertices (row, col)) and on it."""
    pts = np.asarray(points, float).reshape(-1, 2)
    if len(pts) < 3:
        return np.zeros(shape, bool)
    return polygon_mask(pts[:, 0], pts[:, 1], shape)


@dataclass(frozen=True)
class RoiStats:
    n: int
    mean: float
    sd: float
    min: float
    max: float
    area_mm2: float

    def text(self) -> str:
        if self.n == 0:
            return "empty ROI"
        return (f"mean {self.mean:.1f} HU  sd {self.sd:.1f}\n"
                f"min {self.min:.0f}  max {self.max:.0f}  area {self.area_mm2:.1f} mm²")


def roi_stats(image: np.ndarray, mask: np.ndarray, pixel_mm: tuple[float, float]) -> RoiStats:
    """HU statistics of `image` (2D) under the bool `mask` (same shape)."""
    values = np.asarray(image)[np.asarray(mask, bool)].astype(np.float64)
    n = int(values.size)
    area = n * float(pixel_mm[0]) * float(pixel_mm[1])
    if n == 0:
        return RoiStats(0, float("nan"), float("nan"), float("nan"), float("nan"), 0.0)
    sd = float(values.std(ddof=1)) if n > 1 else 0.0
    return RoiStats(n, float(values.mean()), sd, float(values.min()), float(values.max()), area)


@dataclass
class Measurement:
    """A ruler or ROI drawn on one slice of one plane (display coordinates)."""

    kind: str  # "ruler", "ellipse", "freehand"
    plane: str
    index: int
    points: list[tuple[float, float]]
    text: str = ""

    def compute(self, image: np.ndarray, pixel_mm: tuple[float, float]) -> str:
        """Fill `text` from the plane's display image of slice `index`."""
        if self.kind == "ruler":
            self.text = f"{distance_mm(self.points[0], self.points[-1], pixel_mm):.1f} mm"
        else:
            mask = (ellipse_mask(image.shape, self.points[0], self.points[-1])
                    if self.kind == "ellipse" else freehand_mask(image.shape, self.points))
            self.text = roi_stats(image, mask, pixel_mm).text()
        return self.text
