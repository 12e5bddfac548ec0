"""Label operations on the whole (z, y, x) volume: 3D region grow, fill between slices and
hole filling.

Like the slice operations of `ictview.core.paint` they write the labels in place
and return what changed, as one SliceDiff per axial slice touched, so one call is
one undo step and one crash-journal record whatever its extent.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage
from skimage.segmentation import flood as _flood

from ictview.core.brain_mask import fill_holes_inplane
from ictview.core.mpr import AXIAL, PLANE_AXES, axial_diffs, native_view
from ictview.core.paint import SliceDiff, paint_mask
from ictview.errors import IctviewError

CONNECTIVITY = {6: 1, 26: 3}  # neighbours -> skimage/scipy connectivity rank
DEFAULT_MAX_VOXELS = 2_000_000


class RegionTooLarge(IctviewError):
    """The grown region exceeds the voxel cap (it has most likely leaked)."""


def _write_volume(labels: np.ndarray, region: np.ndarray, value: int | None, *,
                  protect: Iterable[int], erase: bool) -> list[SliceDiff]:
    """Paint a bool (z, y, x) region slice by slice, each on its own bounding box."""
    diffs = []
    protect = tuple(protect)
    for z in np.flatnonzero(region.reshape(region.shape[0], -1).any(axis=1)):
        sl = region[z]
        rows = np.flatnonzero(sl.any(axis=1))
        cols = np.flatnonzero(sl.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        d = paint_mask(labels, int(z), int(r0), int(c0), sl[r0:r1, c0:c1].copy(), value,
                       protect=protect, erase=erase)
        if d is not None:
            diffs.append(d)
    return diffs


def grow_region(hu: np.ndarray, seed_zyx: tuple[int, int, int], hu_range: tuple[float, float],
                *, connectivity: int = 6, eligible: np.ndarray | None = None) -> np.ndarray:
    """The voxels connected to the seed (6- or 26-neighbours) whose HU lie in hu_range
    (and where `eligible`, if given). Empty when the seed itself is outside."""
    if connectivity not in CONNECTIVITY:
        raise ValueError(f"connectivity must be 6 or 26, got {connectivity}")
    lo, hi = hu_range
    inside = (hu >= lo) & (hu <= hi)
    if eligible is not None:
        inside &= eligible
    seed = tuple(int(v) for v in seed_zyx)
    if not all(0 <= s < n for s, n in zip(seed, hu.shape)) or not inside[seed]:
        return np.zeros(hu.shape, bool)
    return _flood(inside, seed, connectivity=CONNECTIVITY[connectivity])


def region_grow(
    labels: np.ndarray,
    hu: np.ndarray,
    seed_zyx: tuple[int, int, int],
    value: int | None,
    hu_range: tuple[float, float],
    *,
    connectivity: int = 6,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    voxel_ml: float | None = None,
    protect: Iterable[int] = frozenset(),
    erase: bool = False,
) -> list[SliceDiff]:
    """3D flood fill from a seed inside hu_range. Raises RegionTooLarge (nothing written)
    when the region has more than max_voxels voxels. [] when the seed is outside the range."""
    protect = [p for p in protect if p != value] if not erase else []
    eligible = None
    if protect:
        eligible = ~np.isin(labels, protect)
    region = grow_region(hu, seed_zyx, hu_range, connectivity=connectivity, eligible=eligible)
    n = int(np.count_nonzero(region))
    if n > max_voxels:
        size = f" ({n * voxel_ml:.0f} mL)" if voxel_ml else ""
        raise RegionTooLarge(
            f"3D fill stopped: the region has {n:,} voxels{size}, over the cap of "
            f"{max_voxels:,}; narrow the HU range or use 2D fill"
        )
    if n == 0:
        return []
    return _write_volume(labels, region, value, protect=protect, erase=erase)


def _signed_distance(mask: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """Positive inside, negative outside (mm), zero nowhere: the shape for interpolation."""
    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    return inside - outside


def fill_between_slices(
    labels: np.ndarray,
    value: int,
    *,
    plane: str = AXIAL,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    only_empty: bool = True,
) -> list[SliceDiff]:
    """Interpolate class `value` across the slices (of `plane`) between labeled ones.

    Between two slices k1 < k2 that hold the class with only empty slices between,
    each slice k gets the shape-based interpolation of the two outlines: pixels where
    the signed distances, blended by (k - k1) / (k2 - k1), are inside. By default only
    unlabeled pixels are written (only_empty=False: other classes are overwritten too).
    """
    native = native_view(labels, plane)
    _, ra, ca = PLANE_AXES[plane]
    sampling = (float(spacing[ra]), float(spacing[ca]))
    has = np.flatnonzero((native == value).reshape(native.shape[0], -1).any(axis=1))
    diffs: list[SliceDiff] = []
    for k1, k2 in zip(has[:-1], has[1:]):
        if k2 - k1 < 2:
            continue
        a, b = native[k1] == value, native[k2] == value
        # work on the union bounding box of both outlines plus a margin
        both = a | b
        rows = np.flatnonzero(both.any(axis=1))
        cols = np.flatnonzero(both.any(axis=0))
        r0, r1 = max(rows[0] - 2, 0), min(rows[-1] + 3, both.shape[0])
        c0, c1 = max(cols[0] - 2, 0), min(cols[-1] + 3, both.shape[1])
        da = _signed_distance(a[r0:r1, c0:c1], sampling)
        db = _signed_distance(b[r0:r1, c0:c1], sampling)
        for k in range(int(k1) + 1, int(k2)):
            t = (k - k1) / float(k2 - k1)
            region = ((1.0 - t) * da + t * db) > 0
            if only_empty:
                region &= native[k, r0:r1, c0:c1] == 0
            d = paint_mask(native, k, int(r0), int(c0), region, value)
            diffs.extend(axial_diffs(d, plane))
    return diffs


def fill_holes(
    labels: np.ndarray,
    value: int,
    *,
    plane: str = AXIAL,
    index: int | None = None,
    max_hole_px: int | None = None,
) -> list[SliceDiff]:
    """Fill the holes of class `value`: the pockets of other pixels that the class encloses
    within a slice of `plane` (4-connected pockets not reaching the slice border, at most
    `max_hole_px` pixels each when given), on slice `index` of the plane, or on every slice
    when index is None. Only unlabeled pixels of a pocket change: another class, or the
    ignore label, inside the class stays what it is.

    Every slice (index None) also fills every 3D cavity: a pocket enclosed in 3D is
    enclosed within each slice through it. It fills more: the noise holes of a flood fill
    are open through the slices above and below, and are holes to the reader all the same.
    """
    native = native_view(labels, plane)
    if index is not None and not 0 <= int(index) < native.shape[0]:
        raise ValueError(f"slice {index} outside 0..{native.shape[0] - 1}")
    k0 = 0 if index is None else int(index)
    sub = native if index is None else native[k0:k0 + 1]
    mask = sub == value
    if not mask.any():
        return []
    region = fill_holes_inplane(mask, max_hole_px) & ~mask & (sub == 0)
    diffs: list[SliceDiff] = []
    for k in np.flatnonzero(region.reshape(region.shape[0], -1).any(axis=1)):
        sl = region[k]
        rows = np.flatnonzero(sl.any(axis=1))
        cols = np.flatnonzero(sl.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        d = paint_mask(native, k0 + int(k), int(r0), int(c0), sl[r0:r1, c0:c1].copy(), value)
        diffs.extend(axial_diffs(d, plane))
    return diffs
