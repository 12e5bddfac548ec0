"""Patient-space geometry of a CT volume: the one convention shared by the DICOM
reader, the synthetic generator, the workspace and the NIfTI/DICOM SEG exporters.

Volumes are numpy arrays indexed (z, y, x) = (slice, row, column). Slice 0 is the
slice with the smallest position along the slice normal, so the order never
depends on InstanceNumber or on file names.

DICOM patient coordinates are LPS. NIfTI files use RAS with the data array
indexed (x, y, z) = (column, row, slice), as dcm2niix and 3D Slicer write them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Geometry:
    origin: tuple[float, float, float]  # ImagePositionPatient of slice 0 (mm, LPS)
    row_dir: tuple[float, float, float]  # direction of increasing column index (IOP[0:3])
    col_dir: tuple[float, float, float]  # direction of increasing row index (IOP[3:6])
    slice_step: tuple[float, float, float]  # vector from slice k to slice k+1 (mm, LPS)
    pixel_spacing: tuple[float, float]  # (between rows, between columns) = (dy, dx) mm

    @property
    def normal(self) -> np.ndarray:
        return np.cross(np.asarray(self.row_dir), np.asarray(self.col_dir))

    @property
    def slice_spacing(self) -> float:
        """Distance between consecutive slices along the normal (mm)."""
        return float(abs(np.dot(self.slice_step, self.normal)))

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        return (self.slice_spacing, float(self.pixel_spacing[0]), float(self.pixel_spacing[1]))

    @property
    def tilt_degrees(self) -> float:
        """Angle between the slice step and the normal: non-zero for gantry tilt."""
        step = np.asarray(self.slice_step, dtype=float)
        norm = np.linalg.norm(step)
        if norm == 0:
            return 0.0
        cos = abs(np.dot(step / norm, self.normal))
        return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping (x=column, y=row, z=slice, 1) to LPS mm."""
        dy, dx = self.pixel_spacing
        a = np.eye(4)
        a[:3, 0] = np.asarray(self.row_dir) * dx
        a[:3, 1] = np.asarray(self.col_dir) * dy
        a[:3, 2] = np.asarray(self.slice_step)
        a[:3, 3] = np.asarray(self.origin)
        return a

    def affine_ras(self) -> np.ndarray:
        """NIfTI affine for an array laid out (x, y, z): see zyx_to_nifti."""
        return LPS_TO_RAS @ self.affine_lps()

    def slice_position(self, k: int) -> tuple[float, float, float]:
        """ImagePositionPatient of slice k."""
        p = np.asarray(self.origin) + k * np.asarray(self.slice_step)
        return (float(p[0]), float(p[1]), float(p[2]))

    def to_dict(self) -> dict:
        return {
            "origin": list(self.origin),
            "row_dir": list(self.row_dir),
            "col_dir": list(self.col_dir),
            "slice_step": list(self.slice_step),
            "pixel_spacing": list(self.pixel_spacing),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Geometry":
        return cls(
            origin=tuple(float(v) for v in d["origin"]),
            row_dir=tuple(float(v) for v in d["row_dir"]),
            col_dir=tuple(float(v) for v in d["col_dir"]),
            slice_step=tuple(float(v) for v in d["slice_step"]),
            pixel_spacing=tuple(float(v) for v in d["pixel_spacing"]),
        )


def zyx_to_nifti(volume: np.ndarray) -> np.ndarray:
    """(z, y, x) array -> (x, y, z) array for a NIfTI image with Geometry.affine_ras()."""
    return np.ascontiguousarray(volume.transpose(2, 1, 0))


def nifti_to_zyx(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(data).transpose(2, 1, 0))


def affines_match(a: np.ndarray, b: np.ndarray, tol_mm: float = 0.05) -> bool:
    """True when two voxel-to-world matrices agree within tol_mm per column."""
    return bool(np.allclose(np.asarray(a)[:3, :], np.asarray(b)[:3, :], atol=tol_mm))
