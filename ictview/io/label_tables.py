"""What the label values mean, in the files other tools read next to a NIfTI label volume.

One source, `ictview.core.labels`, rendered three ways:

- `labels.json` (and per-file `<exam>.json` sidecars): values, codes, names, RGB colours and
  the ignore value (255: "not annotated here", excluded from training losses and metrics);
- `labels.itksnap.txt`: ITK-SNAP's label description file (Segmentation > Import Label
  Descriptions);
- `labels.ctbl`: a 3D Slicer colour table (load it, then pick it as the label map's colour
  node; Slicer's segment editor then names the segments).

The NIfTI header's `descrip` (80 bytes) carries the short version of the same table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ictview.core.labels import IGNORE, LABEL_CLASSES

IGNORE_COLOR = (128, 128, 128)
DESCRIP = "ictview labels 0 bg 1 EDH 2 SDH 3 SAH 4 IPH 5 IVH 255 ignore"  # < 80 bytes


def label_table(include_ignore: bool = True, ignore: int = IGNORE) -> list[dict]:
    rows = [{"value": 0, "code": "background", "name": "Background", "color": [0, 0, 0]}]
    rows += [{"value": c.value, "code": c.code, "name": c.name, "color": list(c.color)}
             for c in LABEL_CLASSES]
    if include_ignore:
        rows.append({"value": ignore, "code": "ignore", "name": "Not annotated (ignore)",
                     "color": list(IGNORE_COLOR)})
    return rows


def sidecar(values_present: list[int] | None = None, ignore: int = IGNORE, **extra) -> dict:
    out = {"generator": "ictview", "labels": label_table(ignore=ignore), "ignore": ignore,
           "description": f"uint8 label map on the CT grid; {ignore} = not annotated (ignore)"}
    if values_present is not None:
        out["values_present"] = sorted(int(v) for v in values_present)
    out.update(extra)
    return out


def values_present(labels: np.ndarray) -> list[int]:
    return [int(v) for v in np.unique(labels)]


def itksnap_text(ignore: int = IGNORE) -> str:
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File (written by ictview)",
        "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
        "################################################",
    ]
    for row in label_table(ignore=ignore):
        r, g, b = row["color"]
        alpha, vis = (0, 0) if row["value"] == 0 else (1, 1)
        label = "Clear Label" if row["value"] == 0 else f"{row['code']} {row['name']}"
        lines.append(f"{row['value']:5d} {r:5d} {g:4d} {b:4d} {alpha:8d} {vis:2d} {vis:2d}"
                     f"    \"{label}\"")
    return "\n".join(lines) + "\n"


def slicer_ctbl_text(ignore: int = IGNORE) -> str:
    """3D Slicer colour table: `value name R G B A` per line, names without spaces."""
    lines = ["# Color table file written by ictview", f"# {len(label_table())} values"]
    for row in label_table(ignore=ignore):
        r, g, b = row["color"]
        alpha = 0 if row["value"] == 0 else 255
        lines.append(f"{row['value']} {row['code']} {r} {g} {b} {alpha}")
    return "\n".join(lines) + "\n"


def write_label_tables(folder: Path, ignore: int = IGNORE) -> list[Path]:
    """labels.json, labels.itksnap.txt and labels.ctbl in `folder` (`ignore`: the value the
    folder's label files use for "not annotated", 255 except in nnU-Net datasets)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in (("labels.json", json.dumps(sidecar(ignore=ignore), indent=2) + "\n"),
                       ("labels.itksnap.txt", itksnap_text(ignore)),
                       ("labels.ctbl", slicer_ctbl_text(ignore))):
        path = folder / name
        path.write_text(text)
        out.append(path)
    return out


def write_sidecar(nifti_path: Path, labels: np.ndarray, **extra) -> Path:
    """<name>.json next to <name>.nii.gz (the BIDS-style sidecar convention)."""
    name = Path(nifti_path).name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else Path(name).stem
    path = Path(nifti_path).with_name(stem + ".json")
    path.write_text(json.dumps(sidecar(values_present(labels), **extra), indent=2) + "\n")
    return path
