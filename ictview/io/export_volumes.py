"""CT image and label volume as a NIfTI pair on one grid, for nnU-Net and MONAI datasets.

Both files of a pair get the very same affine (the stored `Geometry.affine_ras()`, as qform
and sform, code 1 = scanner) and the same (x, y, z) shape, so tools that insist on identical
geometry (nnU-Net's dataset check, MONAI's `EnsureSameShaped`) accept them without
resampling. The image is the stored int16 HU (slope 1, intercept 0: what the exam holds, no
windowing); the label is uint8 with NIfTI intent "label" and the value table in `descrip`.

Labels are read through `ictview.io.export._load`, the read path every export uses (the
blinding guard, when it lands, sits there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ictview.core.geometry import Geometry, zyx_to_nifti
from ictview.errors import IctviewError
from ictview.io import export as label_export
from ictview.io.label_tables import DESCRIP
from ictview.store.workspace import Workspace

NIFTI_INTENT_LABEL = 1002


@dataclass
class DatasetResult:
    root: Path
    training: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    has_ignore: bool = False
    written: list[Path] = field(default_factory=list)


def _image(data_xyz: np.ndarray, geometry: Geometry):
    import nibabel as nib

    affine = geometry.affine_ras()
    img = nib.Nifti1Image(data_xyz, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    return img


def write_ct(path: Path, hu: np.ndarray, geometry: Geometry) -> Path:
    import nibabel as nib

    img = _image(zyx_to_nifti(hu.astype(np.int16, copy=False)), geometry)
    img.header.set_data_dtype(np.int16)
    img.header.set_slope_inter(1.0, 0.0)
    img.header["descrip"] = b"ictview CT, Hounsfield units"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return Path(path)


def write_labels(path: Path, labels: np.ndarray, geometry: Geometry) -> Path:
    import nibabel as nib

    img = _image(zyx_to_nifti(labels.astype(np.uint8, copy=False)), geometry)
    img.header.set_data_dtype(np.uint8)
    img.header.set_intent(NIFTI_INTENT_LABEL)
    img.header["descrip"] = DESCRIP.encode()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return Path(path)


def read_volume(ws: Workspace, exam: str):
    """The CT an export may read: the same verified read export.py uses."""
    return label_export.read_volume(ws, exam)


def load_labels(ws: Workspace, labelset: str, exam: str) -> np.ndarray:
    """The labels an export may read: the same function export.py reads through."""
    return label_export._load(ws, labelset, exam)


def prepare_folder(out: Path, marker: str) -> Path:
    """An absent or empty folder, or one this exporter wrote before (its `marker` file is
    there): anything else is refused, so an export never mixes into someone's data."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise IctviewError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise IctviewError(f"{out}: folder is not empty and holds no earlier {marker} "
                           "(use a new folder)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def role_exams(ws: Workspace, labelset: str) -> dict[str, list[str]]:
    """Exams per role, and which of them have labels in `labelset`."""
    if not any(ls["name"] == labelset for ls in ws.labelsets()):
        known = ", ".join(ls["name"] for ls in ws.labelsets()) or "none"
        raise IctviewError(f"{ws.root}: no labelset named '{labelset}' (known: {known})")
    labeled = set(ws.labelset_exams(labelset))
    out: dict[str, list[str]] = {}
    for role in ("labeled", "validation", "test", "unlabeled"):
        names = [e.name for e in ws.exams(role=role)]
        out[role] = names
        out[f"{role}+labels"] = [n for n in names if n in labeled]
    return out
