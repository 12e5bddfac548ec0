"""One `tiny` synthetic data set per test session, and helpers that read it back with pydicom
and nibabel only (independent of ictview's own DICOM reader). Tests run with
--import-mode=importlib, so the helpers reach them as the `readback` fixture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pydicom
import pytest

from ictview.core.geometry import Geometry, nifti_to_zyx
from ictview.synth import generate


@dataclass
class Series:
    hu: np.ndarray  # (z, y, x) sorted inferior -> superior
    geometry: Geometry
    datasets: list  # pydicom datasets in the same order


def load_series(folder: Path) -> Series:
    ds = [pydicom.dcmread(p) for p in sorted(Path(folder).glob("*.dcm"))]
    ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds])
    iop = [float(v) for v in ds[0].ImageOrientationPatient]
    p0 = np.array([float(v) for v in ds[0].ImagePositionPatient])
    p1 = np.array([float(v) for v in ds[1].ImagePositionPatient])
    g = Geometry(tuple(p0), tuple(iop[:3]), tuple(iop[3:]), tuple(p1 - p0),
                 tuple(float(v) for v in ds[0].PixelSpacing))
    return Series(hu, g, ds)


def chosen_series_dir(out: Path, site: str, exam: str) -> Path:
    base = out / site / "dicom" / exam
    if site == "cq500":
        return next(d for d in base.iterdir() if d.is_dir() and "0.625" not in d.name)
    return base


def load_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return nifti_to_zyx(np.asarray(img.dataobj)), img.affine




@pytest.fixture(scope="session")
def readback() -> SimpleNamespace:
    return SimpleNamespace(load_series=load_series, chosen_series_dir=chosen_series_dir,
                           load_mask=load_mask)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, dict, list]:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    calls: list[tuple[int, int, str]] = []
    manifest = generate("tiny", out, seed=0, progress=lambda d, t, m: calls.append((d, t, m)))
    return out, manifest, calls
