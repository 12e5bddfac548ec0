"""Header values no CT scanner writes: a series carrying one is excluded, never stored wrong.

Each bound is wide enough for every real head CT we know of and narrow enough that a
value beyond it would silently corrupt HU or millilitres (README, "DICOM reading",
explains each choice). The reason is one line naming the tag and the value.
"""

from __future__ import annotations

import math

from ictview.errors import IctviewError
from ictview.io.dicom_header import FileHeader

# HU = stored * slope + intercept. Below 0.03, 16 stored bits (65536 values) cannot span
# air to dense bone (~2000 HU); above 20 a stored step is coarser than the 20-40 HU between
# blood and brain. Siemens' extended CT scale (slope 10, intercept -10240) is inside.
SLOPE_RANGE = (0.03, 20.0)
# mm per pixel. 0.05 mm is finer than any clinical CT (photon-counting ~0.1 mm); 10 mm
# over a 64-pixel matrix is already a 64 cm field of view, wider than any gantry bore.
PIXEL_SPACING_RANGE_MM = (0.05, 10.0)
# Distance between slice positions (median step along the normal) and SliceThickness:
# reconstructions go from ~0.1 mm to 10 mm; 20 mm leaves room for sparse sampling.
SLICE_SPACING_RANGE_MM = (0.1, 20.0)
# Voxels whose rescaled value does not fit int16 (the workspace's HU storage) are clipped.
# One or two (a corrupt pixel, a metal artefact) are a warning; more than this fraction
# of the series means the rescale is wrong, and the series is excluded.
SATURATED_MAX_FRACTION = 0.001
INT16_MIN, INT16_MAX = -32768, 32767


class SeriesExcluded(IctviewError):
    """A series the reader refuses. `reason` is the one-line why (the import report lists
    it with the series' other exclusions); the message adds where."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.reason = reason


def _in(value: float, bounds: tuple[float, float]) -> bool:
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]


def _files(n: int, total: int) -> str:
    return "" if n == total else f" in {n} of {total} files"


def header_problem(hs: list[FileHeader], slice_spacing_mm: float | None) -> str | None:
    """The first implausible value among a series' headers, as a one-line reason; else None.

    `slice_spacing_mm`: the median step between slice positions (None: fewer than 2)."""
    total = len(hs)
    checks = (
        ("RescaleSlope", lambda h: h.slope, lambda v: _in(v, SLOPE_RANGE),
         f"plausible {SLOPE_RANGE[0]:g} to {SLOPE_RANGE[1]:g}"),
        ("RescaleIntercept", lambda h: h.intercept, math.isfinite, "not a finite number"),
        ("PixelSpacing", lambda h: h.pixel_spacing,
         lambda v: all(_in(x, PIXEL_SPACING_RANGE_MM) for x in v),
         f"plausible {PIXEL_SPACING_RANGE_MM[0]:g} to {PIXEL_SPACING_RANGE_MM[1]:g} mm"),
        ("SliceThickness", lambda h: h.slice_thickness,
         lambda v: v is None or v <= 0 or _in(v, SLICE_SPACING_RANGE_MM),  # 0 / absent: unknown
         f"plausible up to {SLICE_SPACING_RANGE_MM[1]:g} mm"),
    )  # fmt: skip
    for tag, get, ok, why in checks:
        bad = [get(h) for h in hs if not ok(get(h))]
        if bad:
            return f"{tag} {_show(bad[0])}{_files(len(bad), total)} ({why})"
    if slice_spacing_mm is not None and not _in(slice_spacing_mm, SLICE_SPACING_RANGE_MM):
        lo, hi = SLICE_SPACING_RANGE_MM
        return (f"slice spacing {slice_spacing_mm:g} mm between ImagePositionPatient values "
                f"(plausible {lo:g} to {hi:g} mm)")
    return None


def saturation_problem(clipped: int, voxels: int, h: FileHeader) -> tuple[str | None, str | None]:
    """(exclusion reason, warning) for `clipped` of `voxels` rescaled values clipped to int16."""
    if clipped == 0:
        return None, None
    rescale = f"RescaleSlope {_show(h.slope)}, RescaleIntercept {_show(h.intercept)}"
    if clipped > SATURATED_MAX_FRACTION * voxels:
        return (f"rescaled values saturate the int16 HU storage: {clipped} of {voxels} voxels "
                f"outside {INT16_MIN}..{INT16_MAX} ({rescale})"), None
    return None, (f"{clipped} voxel(s) clipped to {INT16_MIN}..{INT16_MAX} HU after rescale "
                  f"({rescale})")


def _show(v) -> str:
    if isinstance(v, tuple):
        return "\\".join(_show(x) for x in v)
    return f"{v:g}"
