"""`ictview export WS --labelset L --format monai --out DIR`: images, labels and a datalist.

    images/<exam>.nii.gz    CT (HU int16)
    labels/<exam>.nii.gz    uint8 labels on the image's grid (same affine and shape)
    datalist.json           {"training": [...], "validation": [...], "test": [...]}
    labels.json, labels.itksnap.txt, labels.ctbl

The datalist is MONAI's decathlon layout: each entry {"image": ..., "label": ...} with paths
relative to the datalist's folder, which is what `monai.data.load_decathlon_datalist(path,
data_list_key="training")` resolves them against. Keys follow ictview's roles: `training` =
the labeled role's exams with labels, `validation` = the validation role's exams with
labels, `test` = every exam of the test role (with "label" where the labelset has one, so
the same list scores a model on the pixel-labeled subset). Unlabeled-role exams are left
out (a semi-supervised MONAI recipe can list them from images/ itself).
"""

from __future__ import annotations

import json
from pathlib import Path

from ictview.errors import IctviewError
from ictview.io.export_volumes import (
    DatasetResult,
    load_labels,
    prepare_folder,
    read_volume,
    role_exams,
    write_ct,
    write_labels,
)
from ictview.io.label_tables import write_label_tables
from ictview.store.workspace import Workspace

DATALIST = "datalist.json"


def export_monai(ws: Workspace, labelset: str, out: Path, progress=None) -> DatasetResult:
    roles = role_exams(ws, labelset)
    keys = {"training": roles["labeled+labels"], "validation": roles["validation+labels"],
            "test": roles["test"]}
    if not keys["training"]:
        raise IctviewError(f"{ws.root}: labelset '{labelset}' has no labels on the 'labeled' "
                           "role (a MONAI datalist needs training cases)")
    labeled = set(ws.labelset_exams(labelset))
    root = prepare_folder(out, DATALIST)
    result = DatasetResult(root, training=keys["training"], validation=keys["validation"],
                           test=keys["test"])
    datalist: dict[str, list[dict]] = {k: [] for k in keys}
    todo = [(k, e) for k, names in keys.items() for e in names]
    for i, (key, exam) in enumerate(todo):
        if progress:
            progress(i, len(todo), "monai")
        volume = read_volume(ws, exam)
        entry = {"image": f"images/{exam}.nii.gz", "exam": exam,
                 "site": ws.exam(exam).site}
        result.written.append(write_ct(root / entry["image"], volume.hu, volume.geometry))
        if exam in labeled:
            entry["label"] = f"labels/{exam}.nii.gz"
            result.written.append(write_labels(root / entry["label"],
                                               load_labels(ws, labelset, exam),
                                               volume.geometry))
        datalist[key].append(entry)
    if progress:
        progress(len(todo), len(todo), "monai")
    result.written += write_label_tables(root)
    datalist_meta = {"name": root.name, "labelset": labelset, "generator": "ictview",
                     **datalist}
    (root / DATALIST).write_text(json.dumps(datalist_meta, indent=2) + "\n")
    result.written.append(root / DATALIST)
    return result
