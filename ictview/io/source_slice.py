"""The source DICOM file of one stored slice (for the viewer's tag browser).

The workspace keeps each slice's SOP Instance UID and the folder the series was
imported from (`exams.source`), not file names: the file is found by reading the
headers in that folder (SOPInstanceUID only, no pixels) until the UID matches.
A folder that has gone (moved, unmounted, de-identified copy deleted) is a clear
one-line error, never an empty browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ictview.errors import IctviewError
from ictview.store.workspace import Workspace


@dataclass(frozen=True)
class TagRow:
    tag: str  # "(0010,0010)"
    keyword: str
    vr: str
    value: str
    depth: int  # nesting inside sequences


def find_slice_file(ws: Workspace, exam: str, index: int) -> Path:
    """Path of the source DICOM file of slice `index` (0-based, stored order)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from ictview.io.export import exam_source

    row = ws.con.execute(
        "SELECT s.sop_uid FROM slices s JOIN exams e ON e.id = s.exam_id "
        "WHERE e.name = ? AND s.idx = ?", (exam, int(index)),
    ).fetchone()
    if row is None:
        raise IctviewError(f"{ws.root}: exam '{exam}' has no slice {index + 1}")
    sop = row[0]
    folder = exam_source(ws, exam)
    if not folder.is_dir():
        raise IctviewError(f"{folder}: the source DICOM folder of exam '{exam}' is gone; "
                           "its tags cannot be shown")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if str(getattr(ds, "SOPInstanceUID", "")) == sop:
            return path
    raise IctviewError(f"{folder}: no file of slice {index + 1} of exam '{exam}' "
                       f"(SOP Instance UID {sop}) is left in the source folder")


def read_tags(path: Path, max_value_chars: int = 120) -> list[TagRow]:
    """Every header element of a DICOM file, sequences flattened with their depth."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise IctviewError(f"{path}: cannot read the DICOM header ({err})") from None
    rows: list[TagRow] = []

    def walk(dataset, depth: int) -> None:
        for el in dataset:
            tag = f"({el.tag.group:04X},{el.tag.element:04X})"
            if el.VR == "SQ":
                rows.append(TagRow(tag, el.keyword or el.name, "SQ",
                                   f"{len(el.value)} item(s)", depth))
                for item in el.value:
                    walk(item, depth + 1)
                continue
            value = str(el.value) if el.VR not in ("OB", "OW", "OF", "UN") else \
                f"<{len(el.value or b'')} bytes>"
            if len(value) > max_value_chars:
                value = value[: max_value_chars - 1] + "…"
            rows.append(TagRow(tag, el.keyword or el.name, str(el.VR), value, depth))

    walk(ds.file_meta, 0) if getattr(ds, "file_meta", None) else None
    walk(ds, 0)
    return rows
