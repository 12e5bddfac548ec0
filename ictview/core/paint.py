"""Label editing operations on one slice of a (z, y, x) uint8 label volume.

Every operation works on the bounding box of what it may touch (never on the
whole slice unless it must, as flood fill does), writes the labels in place and
returns a `SliceDiff` with just the pixels it changed, or None when nothing
changed. The diff is what undo, redo and the crash journal store.

Shared keyword arguments:
- `hu`, `hu_range`: the CT volume (z, y, x) and an inclusive (lo, hi) HU range;
  pixels outside the range are left untouched (the "HU-limited brush").
  Ignored unless both are given.
- `protect`: label values that must not be overwritten ("protect other
  classes"); pixels holding one of them are left untouched.
- `erase`: write 0 instead of `value`, and only over pixels holding `value`
  (or over any non-zero label when `value` is None); pixels holding a `protect`
  value (a locked class) are not erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from skimage.draw import line as _draw_line
from skimage.segmentation import flood as _flood

Radius = float | tuple[float, float]  # isotropic px, or (ry, rx) px for anisotropic pixels


@dataclass(frozen=True, eq=False)
class SliceDiff:
    """The pixels one operation changed on slice z: a bbox, its mask and old values."""

    z: int
    y0: int
    x0: int
    mask: np.ndarray  # bool (h, w): pixels that changed
    old: np.ndarray  # uint8 (h, w): values before the change (meaningful under mask)
    new_value: int  # value written under mask

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + self.old.nbytes) + 64

    @property
    def n_changed(self) -> int:
        return int(np.count_nonzero(self.mask))

    def _view(self, labels: np.ndarray) -> np.ndarray:
        h, w = self.mask.shape
        return labels[self.z, self.y0 : self.y0 + h, self.x0 : self.x0 + w]

    def apply(self, labels: np.ndarray) -> None:
        """Write new_value under the mask (redo)."""
        self._view(labels)[self.mask] = self.new_value

    def revert(self, labels: np.ndarray) -> None:
        """Restore the old values under the mask (undo)."""
        view = self._view(labels)
        view[self.mask] = self.old[self.mask]


def _radii(radius_px: Radius) -> tuple[float, float]:
    if isinstance(radius_px, (tuple, list)):
        ry, rx = float(radius_px[0]), float(radius_px[1])
    else:
        ry = rx = float(radius_px)
    # a radius under half a pixel still paints the pixel under the cursor
    return max(ry, 0.5), max(rx, 0.5)


@lru_cache(maxsize=64)
def _disk(ry: float, rx: float) -> np.ndarray:
    """Boolean elliptic footprint centred on its middle pixel."""
    hy, hx = int(np.floor(ry)), int(np.floor(rx))
    yy, xx = np.ogrid[-hy : hy + 1, -hx : hx + 1]
    fp = (yy / ry) ** 2 + (xx / rx) ** 2 <= 1.0 + 1e-9
    fp.setflags(write=False)
    return fp


def disk_footprint(radius_px: Radius) -> np.ndarray:
    """The brush footprint for a radius (also what the GUI draws as the cursor)."""
    ry, rx = _radii(radius_px)
    return _disk(round(ry, 3), round(rx, 3))


def _commit(
    labels: np.ndarray,
    z: int,
    y0: int,
    x0: int,
    region: np.ndarray,
    value: int | None,
    *,
    hu: np.ndarray | None,
    hu_range: tuple[float, float] | None,
    protect: Iterable[int],
    erase: bool,
) -> SliceDiff | None:
    """Apply `value` (or erase) to `region` (bool, owned by us) placed at (y0, x0) on slice z."""
    h, w = region.shape
    view = labels[z, y0 : y0 + h, x0 : x0 + w]
    m = region
    if hu is not None and hu_range is not None:
        hs = hu[z, y0 : y0 + h, x0 : x0 + w]
        lo, hi = hu_range
        m &= hs >= lo
        m &= hs <= hi
    if erase:
        new = 0
        m &= (view == value) if value is not None else (view != 0)
        for p in protect:
            if p != value:
                m &= view != p
    else:
        if value is None:
            raise ValueError("painting needs a label value")
        new = int(value)
        m &= view != new
        for p in protect:
            if p != new:
                m &= view != p
    if not m.any():
        return None
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    mask = np.ascontiguousarray(m[r0:r1, c0:c1])
    sub = view[r0:r1, c0:c1]
    old = sub.copy()
    sub[mask] = new
    return SliceDiff(int(z), int(y0 + r0), int(x0 + c0), mask, old, new)


def paint_mask(
    labels: np.ndarray,
    z: int,
    y0: int,
    x0: int,
    region: np.ndarray,
    value: int | None,
    *,
    hu: np.ndarray | None = None,
    hu_range: tuple[float, float] | None = None,
    protect: Iterable[int] = frozenset(),
    erase: bool = False,
) -> SliceDiff | None:
    """Paint (or erase) a bool `region` placed at (y0, x0) on slice z (the region is
    consumed: it may be modified). The building block of the volume operations."""
    return _commit(labels, z, y0, x0, region, value, hu=hu, hu_range=hu_range,
                   protect=protect, erase=erase)


def brush(
    labels_zyx: np.ndarray,
    z: int,
    cy: float,
    cx: float,
    radius_px: Radius,
    value: int | None,
    *,
    hu: np.ndarray | None = None,
    hu_range: tuple[float, float] | None = None,
    protect: Iterable[int] = frozenset(),
    erase: bool = False,
) -> SliceDiff | None:
    """One round dab centred on pixel (round(cy), round(cx)) of slice z.

    radius_px: pixels, or (ry, rx) when the pixel spacing differs along y and x
    (a brush sized in mm). Pixels within the radius (centre to centre) are painted.
    """
    ry, rx = _radii(radius_px)
    fp = _disk(round(ry, 3), round(rx, 3))
    hy, hx = fp.shape[0] // 2, fp.shape[1] // 2
    cy_i, cx_i = int(round(cy)), int(round(cx))
    _, ny, nx = labels_zyx.shape
    y0, y1 = max(cy_i - hy, 0), min(cy_i + hy + 1, ny)
    x0, x1 = max(cx_i - hx, 0), min(cx_i + hx + 1, nx)
    if y0 >= y1 or x0 >= x1 or not 0 <= z < labels_zyx.shape[0]:
        return None
    region = fp[y0 - (cy_i - hy) : y1 - (cy_i - hy), x0 - (cx_i - hx) : x1 - (cx_i - hx)].copy()
    return _commit(labels_zyx, z, y0, x0, region, value, hu=hu, hu_range=hu_range,
                   protect=protect, erase=erase)


def line_brush(
    labels: np.ndarray,
    z: int,
    p0: tuple[float, float],
    p1: tuple[float, float],
    radius_px: Radius,
    value: int | None,
    *,
    hu: np.ndarray | None = None,
    hu_range: tuple[float, float] | None = None,
    protect: Iterable[int] = frozenset(),
    erase: bool = False,
) -> SliceDiff | None:
    """The brush swept from p0 to p1 (y, x): every pixel within the radius of the
    segment, so a fast drag leaves no gaps. One bbox, one diff."""
    ry, rx = _radii(radius_px)
    ya, xa = int(round(p0[0])), int(round(p0[1]))
    yb, xb = int(round(p1[0])), int(round(p1[1]))
    if (ya, xa) == (yb, xb):
        return brush(labels, z, ya, xa, (ry, rx), value, hu=hu, hu_range=hu_range,
                     protect=protect, erase=erase)
    hy, hx = int(np.floor(ry)), int(np.floor(rx))
    _, ny, nx = labels.shape
    y0, y1 = max(min(ya, yb) - hy, 0), min(max(ya, yb) + hy + 1, ny)
    x0, x1 = max(min(xa, xb) - hx, 0), min(max(xa, xb) + hx + 1, nx)
    if y0 >= y1 or x0 >= x1 or not 0 <= z < labels.shape[0]:
        return None
    # distance to the segment in units of the radius (an ellipse becomes a circle)
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] - ya) / ry
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] - xa) / rx
    dy, dx = (yb - ya) / ry, (xb - xa) / rx
    t = np.clip((yy * dy + xx * dx) / (dy * dy + dx * dx), 0.0, 1.0)
    region = (yy - t * dy) ** 2 + (xx - t * dx) ** 2 <= 1.0 + 1e-6
    return _commit(labels, z, y0, x0, region, value, hu=hu, hu_range=hu_range,
                   protect=protect, erase=erase)


def flood_fill(
    labels: np.ndarray,
    z: int,
    y: int,
    x: int,
    value: int | None,
    *,
    hu: np.ndarray,
    hu_range: tuple[float, float],
    protect: Iterable[int] = frozenset(),
    erase: bool = False,
    connectivity: int = 1,
) -> SliceDiff | None:
    """Fill the region of slice z connected to (y, x) whose HU lie in hu_range
    (and that holds no protected label). None when the seed is outside the range.
    connectivity 1 = 4-neighbours (blood does not leak through diagonal gaps), 2 = 8."""
    _, ny, nx = labels.shape
    y, x = int(y), int(x)
    if not (0 <= z < labels.shape[0] and 0 <= y < ny and 0 <= x < nx):
        return None
    lo, hi = hu_range
    hs = hu[z]
    eligible = (hs >= lo) & (hs <= hi)
    protect = [p for p in protect if p != value] if not erase else []
    if protect:
        sl = labels[z]
        for p in protect:
            eligible &= sl != p
    if not eligible[y, x]:
        return None
    region = _flood(eligible, (y, x), connectivity=connectivity)
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return _commit(labels, z, int(r0), int(c0), region[r0:r1, c0:c1].copy(), value,
                   hu=None, hu_range=None, protect=protect, erase=erase)


def polygon_fill(
    labels: np.ndarray,
    z: int,
    points_yx: Sequence[tuple[float, float]],
    value: int | None,
    *,
    hu: np.ndarray | None = None,
    hu_range: tuple[float, float] | None = None,
    protect: Iterable[int] = frozenset(),
    erase: bool = False,
) -> SliceDiff | None:
    """Fill the closed polygon (vertices (y, x) in pixel coordinates) and its outline."""
    pts = np.asarray(points_yx, dtype=float).reshape(-1, 2)
    if len(pts) < 3 or not 0 <= z < labels.shape[0]:
        return None
    _, ny, nx = labels.shape
    y0 = max(int(np.floor(pts[:, 0].min())), 0)
    y1 = min(int(np.ceil(pts[:, 0].max())) + 1, ny)
    x0 = max(int(np.floor(pts[:, 1].min())), 0)
    x1 = min(int(np.ceil(pts[:, 1].max())) + 1, nx)
    if y0 >= y1 or x0 >= x1:
        return None
    region = polygon_mask(pts[:, 0] - y0, pts[:, 1] - x0, (y1 - y0, x1 - x0))
    return _commit(labels, z, y0, x0, region, value, hu=hu, hu_range=hu_range,
                   protect=protect, erase=erase)


def polygon_mask(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (centres) inside the closed polygon (even-odd rule) plus its outline.

    A scanline fill in numpy: O(rows x edges) intersections, then one cumulative
    sum; several times faster than skimage.draw.polygon + polygon_perimeter and
    linear in the vertex count, so a freehand lasso of hundreds of points stays fast.
    """
    h, w = shape
    ys, xs = np.asarray(ys, float), np.asarray(xs, float)
    ya, xa, yb, xb = ys, xs, np.roll(ys, -1), np.roll(xs, -1)
    rows = np.arange(h, dtype=float)[:, None]
    # half-open in y, so a vertex shared by two edges is counted once
    crosses = ((ya <= rows) & (rows < yb)) | ((yb <= rows) & (rows < ya))
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = xa + (rows - ya) * (xb - xa) / (yb - ya)
    xint = np.where(crosses, xint, np.inf)
    xint.sort(axis=1)
    a, b = xint[:, 0::2], xint[:, 1::2]
    if b.shape[1] < a.shape[1]:
        a = a[:, : b.shape[1]]
    r = np.broadcast_to(np.arange(h)[:, None], a.shape)
    keep = np.isfinite(b)
    start = np.clip(np.ceil(a[keep]), 0, w).astype(np.intp)
    stop = np.clip(np.floor(b[keep]) + 1, 0, w).astype(np.intp)
    ok = stop > start
    edges = np.zeros((h, w + 1), np.int32)
    np.add.at(edges, (r[keep][ok], start[ok]), 1)
    np.add.at(edges, (r[keep][ok], stop[ok]), -1)
    mask = np.cumsum(edges[:, :w], axis=1) > 0
    # the outline, so thin polygons and the last row/column of a box are included
    yi, xi = np.round(ys).astype(np.intp), np.round(xs).astype(np.intp)
    for k in range(len(yi)):
        rr, cc = _draw_line(yi[k - 1], xi[k - 1], yi[k], xi[k])
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        mask[rr[inside], cc[inside]] = True
    return mask
