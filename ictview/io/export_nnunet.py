"""`ictview export WS --labelset L --format nnunet --out nnUNet_raw/Dataset501_ICH`.

An nnU-Net v2 raw dataset (nnU-Net's documentation, "dataset format"):

    imagesTr/<exam>_0000.nii.gz   CT (HU int16), channel 0 "CT" (nnU-Net's CT normalisation)
    labelsTr/<exam>.nii.gz        uint8 labels, same affine and shape as the image
    imagesTs/<exam>_0000.nii.gz   the exams to predict
    dataset.json                  channel_names, labels, numTraining, file_ending
    labels.json, labels.itksnap.txt, labels.ctbl   the label table for other viewers

Which exams go where (ictview's roles; nnU-Net makes its own 5-fold split of imagesTr):
imagesTr / labelsTr = the `labeled` role's exams with labels in the labelset; imagesTs =
every exam of the `validation` and `test` roles, labeled or not, so that nnU-Net's
predictions come back with `ictview import-predictions` for the report (validation for
the Dice threshold, test for the tables) without ever having been trained on.

`labels` is {"background": 0, "EDH": 1, "SDH": 2, "SAH": 3, "IPH": 4, "IVH": 5}, plus
"ignore": 6 when a training label volume holds ictview's ignore value 255: in labelsTr those
voxels are written as 6, because nnU-Net v2 requires the ignore label to be exactly the
highest label + 1 with consecutive labels (`LabelManager`: "If you use the ignore label it
must have the highest label value"; measured: 255 fails `nnUNetv2_plan_and_preprocess
--verify_dataset_integrity`, 6 passes). nnU-Net then leaves those voxels out of the loss.
The dataset's labels.json / ITK-SNAP / Slicer tables say 6 too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ictview.core.labels import IGNORE, LABEL_CLASSES
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

FILE_ENDING = ".nii.gz"
NNUNET_IGNORE = max(c.value for c in LABEL_CLASSES) + 1  # 6: nnU-Net's rule, see above
CHANNEL = "0000"


def dataset_json(n_training: int, has_ignore: bool, name: str) -> dict:
    labels = {"background": 0, **{c.code: c.value for c in LABEL_CLASSES}}
    if has_ignore:
        labels["ignore"] = NNUNET_IGNORE
    return {
        "channel_names": {"0": "CT"},
        "labels": labels,
        "numTraining": n_training,
        "file_ending": FILE_ENDING,
        "name": name,
        "description": "Intracranial hemorrhage on non-contrast head CT, exported by ictview "
                       "(labels: 1 EDH, 2 SDH, 3 SAH, 4 IPH, 5 IVH)",
    }


def export_nnunet(ws: Workspace, labelset: str, out: Path, progress=None) -> DatasetResult:
    roles = role_exams(ws, labelset)
    train, test = roles["labeled+labels"], roles["validation"] + roles["test"]
    if not train:
        raise IctviewError(f"{ws.root}: labelset '{labelset}' has no labels on the 'labeled' "
                           "role (nnU-Net needs training cases)")
    root = prepare_folder(out, "dataset.json")
    result = DatasetResult(root, training=train, test=test)
    total = len(train) + len(test)
    for i, exam in enumerate(train + test):
        if progress:
            progress(i, total, "nnunet")
        volume = read_volume(ws, exam)
        folder = "imagesTr" if i < len(train) else "imagesTs"
        result.written.append(write_ct(root / folder / f"{exam}_{CHANNEL}{FILE_ENDING}",
                                       volume.hu, volume.geometry))
        if i < len(train):
            labels = load_labels(ws, labelset, exam)
            ignore = labels == IGNORE
            if ignore.any():
                result.has_ignore = True
                labels = np.where(ignore, np.uint8(NNUNET_IGNORE), labels)
            result.written.append(write_labels(root / "labelsTr" / f"{exam}{FILE_ENDING}",
                                               labels, volume.geometry))
    if progress:
        progress(total, total, "nnunet")
    result.written += write_label_tables(root, NNUNET_IGNORE if result.has_ignore else IGNORE)
    meta = dataset_json(len(train), result.has_ignore, root.name)
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    result.written.append(root / "dataset.json")
    return result
