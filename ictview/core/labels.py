"""The label table: one definition used by the store, the importers, the GUI and training."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = 255


@dataclass(frozen=True)
class LabelClass:
    value: int
    code: str  # short name used in files, CLI and UI
    name: str
    rsna: str  # column name in RSNA 2019 image labels
    cq500: str  # finding name in CQ500 reads.csv
    color: tuple[int, int, int]


LABEL_CLASSES: tuple[LabelClass, ...] = (
    LabelClass(1, "EDH", "Epidural", "epidural", "EDH", (255, 140, 0)),
    LabelClass(2, "SDH", "Subdural", "subdural", "SDH", (255, 215, 0)),
    LabelClass(3, "SAH", "Subarachnoid", "subarachnoid", "SAH", (0, 200, 255)),
    LabelClass(4, "IPH", "Intraparenchymal (incl. contusion)", "intraparenchymal", "IPH", (255, 50, 50)),
    LabelClass(5, "IVH", "Intraventricular", "intraventricular", "IVH", (170, 80, 255)),
)
BY_CODE = {c.code: c for c in LABEL_CLASSES}
BY_VALUE = {c.value: c for c in LABEL_CLASSES}
# exam- and image-level findings: any hemorrhage plus the five subtypes
FINDINGS: tuple[str, ...] = ("ICH",) + tuple(c.code for c in LABEL_CLASSES)
RSNA_TO_FINDING = {"any": "ICH", **{c.rsna: c.code for c in LABEL_CLASSES}}
