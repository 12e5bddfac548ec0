"""Label files in the real datasets' formats: NIfTI masks, RSNA 2019 labels.csv, CQ500 reads.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ictview.core.geometry import Geometry, zyx_to_nifti
from ictview.core.labels import LABEL_CLASSES

RSNA_ORDER = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
_RSNA_VALUE = {c.rsna: c.value for c in LABEL_CLASSES}


def write_mask(path: Path, labels_zyx: np.ndarray, geometry: Geometry) -> Path:
    """uint8 NIfTI on the series' voxel grid (affine = geometry.affine_ras())."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(zyx_to_nifti(labels_zyx.astype(np.uint8)), geometry.affine_ras())
    img.set_qform(geometry.affine_ras(), code=1)
    img.set_sform(geometry.affine_ras(), code=1)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))  # nibabel's gzip writer stores no timestamp: same bytes every run
    return path


def rsna_rows(sop_uids: list[str], labels_zyx: np.ndarray) -> list[tuple[str, int]]:
    """6 rows per image, from the true mask of that slice."""
    rows = []
    for uid, sl in zip(sop_uids, labels_zyx):
        present = set(np.unique(sl).tolist())
        for name in RSNA_ORDER:
            if name == "any":
                v = int(any(1 <= p <= 5 for p in present))
            else:
                v = int(_RSNA_VALUE[name] in present)
            rows.append((f"ID_{uid}_{name}", v))
    return rows


def write_rsna_csv(path: Path, rows: list[tuple[str, int]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["ID", "Label"])
        w.writerows(rows)
    return path


def write_reads_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path
