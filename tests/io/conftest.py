"""Fixtures for the DICOM tests: small real CT series written with ictview's writer.

Helpers are handed out as fixtures (not imported) so they work whatever module
name pytest gives this folder's conftest."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ictview.core.geometry import Geometry
from ictview.io.dicom_write import CTSeriesSpec, deterministic_uid, write_ct_series


def _axial_geometry(step=(0.0, 0.0, 5.0), origin=(-60.0, -50.0, 10.0), row=(1.0, 0.0, 0.0),
                    col=(0.0, 1.0, 0.0), spacing=(0.5, 0.6)) -> Geometry:  # fmt: skip
    return Geometry(tuple(origin), tuple(row), tuple(col), tuple(step), tuple(spacing))


def _phantom(n: int, shape: tuple[int, int], seed: int = 0, lo: int = -1024, hi: int = 2000) -> np.ndarray:
    """Random HU with the slice index in a corner, so a wrong slice order cannot pass."""
    rng = np.random.default_rng(seed)
    hu = rng.integers(lo, hi, size=(n, *shape)).astype(np.int16)
    hu[:, 0, 0] = np.arange(n) * 7 + lo
    return hu


@pytest.fixture
def axial_geometry():
    return _axial_geometry


@pytest.fixture
def phantom():
    return _phantom


@dataclass
class Written:
    paths: list[Path]
    hu: np.ndarray
    geometry: Geometry
    spec: CTSeriesSpec
    folder: Path


@pytest.fixture
def write_series(tmp_path: Path):
    """write_series(hu=None, n=6, shape=(20, 24), geometry=None, folder=None, **spec fields).

    Each call is a new series (its own SeriesInstanceUID) of one study, in its own folder
    unless `folder` is given (then file names carry the call number)."""
    counter = itertools.count()

    def _write(hu: np.ndarray | None = None, *, n: int = 6, shape=(20, 24), seed: int = 0,
               geometry: Geometry | None = None, folder: Path | None = None,
               instance_numbers=None, file_names=None, **spec_kw) -> Written:  # fmt: skip
        i = next(counter)
        if hu is None:
            hu = _phantom(n, shape, seed)
        geometry = geometry or _axial_geometry()
        spec_kw.setdefault("patient_id", "TEST-0001")
        spec_kw.setdefault("study_uid", deterministic_uid(tmp_path.name, "study"))
        spec_kw.setdefault("series_uid", deterministic_uid(tmp_path.name, "series", i))
        spec_kw.setdefault("frame_of_reference_uid", deterministic_uid(tmp_path.name, "for"))
        spec_kw.setdefault("series_number", i + 1)
        spec_kw.setdefault("sop_uids", [deterministic_uid(tmp_path.name, "sop", i, k) for k in range(len(hu))])
        spec = CTSeriesSpec(**spec_kw)
        if file_names is None and folder is not None:
            file_names = [f"S{i:02d}_{k:04d}.dcm" for k in range(len(hu))]
        folder = folder or tmp_path / f"series{i}"
        paths = write_ct_series(folder, hu, geometry, spec, instance_numbers=instance_numbers,
                                file_names=file_names)  # fmt: skip
        return Written(paths, hu, geometry, spec, folder)

    return _write
