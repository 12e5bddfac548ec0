"""Multi-planar reformatting of a (z, y, x) volume, without Qt.

Three orthogonal planes of the voxel grid (no oblique resampling: a reader's
axial / coronal / sagittal are the stored slices and the two reslices through
them). Each plane has a *native* form, the volume transposed so the plane's
normal axis comes first, which the paint operations of `ictview.core.paint`
work on unchanged (a transposed numpy view writes through to the volume), and a
*display* form, what a view draws: rows top to bottom, columns left to right,
with the slice axis flipped on coronal and sagittal so the head's top is up.

Display pixels are not square for thick slices (0.45 mm columns, 5 mm rows on a
coronal reslice of a 5 mm exam): `Plane.aspect` says how much taller than wide a
display pixel must be drawn for the anatomy to keep its true shape.

`Crosshair` is the linked point of the three views, a voxel index (z, y, x) with
its patient position (LPS mm) from the exam's Geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ictview.core.paint import SliceDiff

if TYPE_CHECKING:
    from ictview.core.geometry import Geometry

AXIAL, CORONAL, SAGITTAL = "axial", "coronal", "sagittal"
PLANES = (AXIAL, CORONAL, SAGITTAL)
# (normal axis, display row axis, display column axis) of each plane, in (z, y, x) axes
PLANE_AXES: dict[str, tuple[int, int, int]] = {
    AXIAL: (0, 1, 2),
    CORONAL: (1, 0, 2),
    SAGITTAL: (2, 0, 1),
}

_LPS = ("L", "P", "S")  # DICOM patient axes; the negative directions are R, A, I
OPPOSITE = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}


def direction_letter(v) -> str:
    """Patient direction a vector points to, by its dominant LPS axis ((1, 0, 0) -> 'L')."""
    v = np.asarray(v, float)
    i = int(np.argmax(np.abs(v)))
    return _LPS[i] if v[i] >= 0 else OPPOSITE[_LPS[i]]


def native_view(volume: np.ndarray, plane: str) -> np.ndarray:
    """The volume with the plane's normal axis first (a view: writes go to `volume`)."""
    n, r, c = PLANE_AXES[plane]
    return volume.transpose(n, r, c)


def to_native(plane: str, zyx) -> tuple:
    """Voxel (z, y, x) -> (index, row, col) in the plane's native (unflipped) order."""
    n, r, c = PLANE_AXES[plane]
    return (zyx[n], zyx[r], zyx[c])


def from_native(plane: str, index, row, col) -> tuple:
    """(index, row, col) in the plane's native order -> voxel (z, y, x)."""
    out = [0.0, 0.0, 0.0]
    n, r, c = PLANE_AXES[plane]
    out[n], out[r], out[c] = index, row, col
    return tuple(out)


def axial_diffs(diff: SliceDiff | None, plane: str) -> list[SliceDiff]:
    """A diff made on a plane's native view -> the same change as per-axial-slice diffs
    (what the undo history, the volume counts and the crash journal store)."""
    if diff is None:
        return []
    if plane == AXIAL:
        return [diff]
    out = []
    fixed = diff.z  # the coronal row y or the sagittal column x
    for i in np.flatnonzero(diff.mask.any(axis=1)):
        cols = np.flatnonzero(diff.mask[i])
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        m = np.ascontiguousarray(diff.mask[i, c0:c1])
        o = np.ascontiguousarray(diff.old[i, c0:c1])
        z = diff.y0 + int(i)
        if plane == CORONAL:  # native rows = z, columns = x, fixed y
            out.append(SliceDiff(z, fixed, diff.x0 + c0, m[None, :], o[None, :], diff.new_value))
        else:  # sagittal: native rows = z, columns = y, fixed x
            out.append(SliceDiff(z, diff.x0 + c0, fixed, m[:, None], o[:, None], diff.new_value))
    return out


@dataclass(frozen=True)
class Plane:
    """One of the three planes of a volume of `shape` (z, y, x) and `spacing` (z, y, x) mm."""

    name: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    flip_rows: bool = False  # display row 0 is the last native row (head top up)
    directions: tuple = field(default=((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)))
    # patient (LPS) unit vectors of increasing z, y, x

    @property
    def axes(self) -> tuple[int, int, int]:
        return PLANE_AXES[self.name]

    @property
    def n_slices(self) -> int:
        return int(self.shape[self.axes[0]])

    @property
    def image_shape(self) -> tuple[int, int]:
        _, r, c = self.axes
        return (int(self.shape[r]), int(self.shape[c]))

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """(height, width) of one display pixel in mm."""
        _, r, c = self.axes
        return (float(self.spacing[r]), float(self.spacing[c]))

    @property
    def aspect(self) -> float:
        """Display pixel height / width: rows are drawn this much taller than columns."""
        h, w = self.pixel_mm
        return h / w if w > 0 else 1.0

    @property
    def slice_mm(self) -> float:
        """Distance between consecutive slices of this plane (mm)."""
        return float(self.spacing[self.axes[0]])

    def image(self, volume: np.ndarray, index: int) -> np.ndarray:
        """The display image of slice `index` (a view; copy it for pyqtgraph)."""
        img = native_view(volume, self.name)[int(index)]
        return img[::-1] if self.flip_rows else img

    def to_voxel(self, index: float, row: float, col: float) -> tuple[float, float, float]:
        """Display (index, row, col) -> voxel (z, y, x) (floats kept: the brush rounds)."""
        if self.flip_rows:
            row = self.image_shape[0] - 1 - row
        return from_native(self.name, index, row, col)  # type: ignore[return-value]

    def from_voxel(self, zyx) -> tuple[float, float, float]:
        """Voxel (z, y, x) -> display (index, row, col)."""
        index, row, col = to_native(self.name, zyx)
        if self.flip_rows:
            row = self.image_shape[0] - 1 - row
        return (index, row, col)

    def edge_letters(self) -> dict[str, str]:
        """Patient direction at each edge of the display: keys left, right, top, bottom."""
        _, r, c = self.axes
        right = direction_letter(self.directions[c])
        down = np.asarray(self.directions[r], float) * (-1.0 if self.flip_rows else 1.0)
        bottom = direction_letter(down)
        return {"right": right, "left": OPPOSITE[right], "bottom": bottom, "top": OPPOSITE[bottom]}

    def position_mm(self, index: int, geometry: "Geometry | None") -> tuple[str, float]:
        """Where slice `index` lies along the plane's normal, as a patient direction and mm
        (e.g. ('S', 35.0) for an axial slice 35 mm superior of the scanner origin)."""
        n = self.axes[0]
        if geometry is None:
            return ("", float(index) * float(self.spacing[n]))
        p = geometry.affine_lps() @ np.array([*_voxel_xyz1(n, index)])
        axis = int(np.argmax(np.abs(self.directions[n])))
        value = float(p[axis])
        letter = _LPS[axis] if value >= 0 else OPPOSITE[_LPS[axis]]
        return (letter, abs(value))

    def position_text(self, index: int, geometry: "Geometry | None") -> str:
        letter, mm = self.position_mm(index, geometry)
        return f"{letter} {mm:.1f} mm" if letter else f"{mm:.1f} mm"


def _voxel_xyz1(axis_zyx: int, index: float) -> tuple[float, float, float, float]:
    """(x, y, z, 1) of the voxel at `index` along one axis (0 along the others)."""
    xyz = [0.0, 0.0, 0.0]
    xyz[2 - axis_zyx] = float(index)
    return (xyz[0], xyz[1], xyz[2], 1.0)


def voxel_directions(geometry: "Geometry | None") -> tuple:
    """Patient unit vectors of increasing z, y, x (default: axial stack, z towards S)."""
    if geometry is None:
        return ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))
    step = np.asarray(geometry.slice_step, float)
    norm = np.linalg.norm(step)
    z = step / norm if norm > 0 else np.asarray(geometry.normal, float)
    return (tuple(map(float, z)), tuple(map(float, geometry.col_dir)),
            tuple(map(float, geometry.row_dir)))


def planes_for(shape, spacing, geometry: "Geometry | None" = None) -> dict[str, Plane]:
    """The three planes of a volume. Coronal and sagittal flip their rows when needed so
    the superior end of the slice axis is at the top of the screen."""
    dirs = voxel_directions(geometry)
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in spacing)
    # rows of coronal/sagittal run along z: flip when increasing z points up (S)
    z_up = direction_letter(dirs[0]) == "S"
    return {
        AXIAL: Plane(AXIAL, shape, spacing, False, dirs),
        CORONAL: Plane(CORONAL, shape, spacing, z_up, dirs),
        SAGITTAL: Plane(SAGITTAL, shape, spacing, z_up, dirs),
    }


@dataclass
class Crosshair:
    """The point the three views share, a voxel (z, y, x) inside `shape`."""

    shape: tuple[int, int, int]
    zyx: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.zyx == (0, 0, 0):
            self.zyx = tuple(int(s) // 2 for s in self.shape)  # type: ignore[assignment]

    def set_voxel(self, zyx) -> bool:
        """Move to the nearest voxel inside the volume; True when it moved."""
        new = tuple(int(np.clip(round(float(v)), 0, n - 1)) for v, n in zip(zyx, self.shape))
        moved = new != self.zyx
        self.zyx = new  # type: ignore[assignment]
        return moved

    def set_from_plane(self, plane: Plane, index: float, row: float, col: float) -> bool:
        """A click at display (row, col) on slice `index` of `plane`."""
        return self.set_voxel(plane.to_voxel(index, row, col))

    def index_in(self, plane: Plane) -> int:
        """The slice of `plane` through the point."""
        return int(self.zyx[plane.axes[0]])

    def point_in(self, plane: Plane) -> tuple[float, float]:
        """Display (row, col) of the point on `plane`."""
        _, row, col = plane.from_voxel(self.zyx)
        return (float(row), float(col))

    def patient_mm(self, geometry: "Geometry | None", spacing=(1.0, 1.0, 1.0)) -> tuple:
        """LPS mm of the point (voxel * spacing without a geometry)."""
        z, y, x = self.zyx
        if geometry is None:
            return tuple(float(v * s) for v, s in zip((x, y, z), spacing[::-1]))
        p = geometry.affine_lps() @ np.array([x, y, z, 1.0])
        return (float(p[0]), float(p[1]), float(p[2]))


# ---- scale bar -------------------------------------------------------------------------------

_NICE = (1.0, 2.0, 5.0)


def scale_bar(mm_per_px: float, max_px: float = 120.0) -> tuple[float, float]:
    """The longest 1/2/5 x 10^k mm bar that fits in `max_px` screen pixels:
    (length in mm, length in screen pixels). (0, 0) when the scale is unknown."""
    if not np.isfinite(mm_per_px) or mm_per_px <= 0 or max_px <= 0:
        return (0.0, 0.0)
    limit = mm_per_px * max_px
    exp = int(np.floor(np.log10(limit)))
    best = 0.0
    for e in (exp - 1, exp):
        for n in _NICE:
            v = n * 10.0**e
            if v <= limit * (1 + 1e-9):
                best = max(best, v)
    return (best, best / mm_per_px)


def scale_text(mm: float) -> str:
    if mm >= 10 and mm % 10 == 0:
        return f"{mm / 10:g} cm"
    return f"{mm:g} mm"
