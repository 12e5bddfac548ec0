"""`ictview pacs push`: store a labelset's DICOM SEG objects (optionally with their images).

The SEG is the very object `ictview export --format dicom-seg` writes
(`ictview.io.export.export_dicom_seg`, which also does the label read), written to a
temporary folder and sent; with `deidentify` it goes through `deid.Deidentifier` first,
and so do the images sent with `with_images`, with the same UID mapping, so the SEG
still points at the right (de-identified) slices.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pydicom

from ictview.errors import IctviewError
from ictview.pacs.records import PacsClient
from ictview.store.workspace import Workspace

Progress = Callable[[int, int, str], None]


@dataclass
class ExamPush:
    exam: str
    seg_uid: str = ""
    study_uid: str = ""  # as sent (de-identified when deidentify)
    sent: int = 0
    accepted: int = 0
    refused: list[str] = field(default_factory=list)  # "<SOP>: reason"
    skipped: str = ""  # why nothing was sent


@dataclass
class PushReport:
    exams: list[ExamPush] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"exams": [asdict(e) for e in self.exams]}


def source_images(ws: Workspace, exam: str) -> list[pydicom.Dataset]:
    """The exam's source CT instances with pixels, in slice order."""
    from ictview.io.export import exam_source, source_datasets

    wanted = [str(d.SOPInstanceUID) for d in source_datasets(ws, exam)]  # checks all present
    found = {}
    for path in sorted(p for p in exam_source(ws, exam).rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # noqa: BLE001 - non-DICOM files next to the series
            continue
        found.setdefault(str(getattr(ds, "SOPInstanceUID", "")), ds)
    return [found[u] for u in wanted]


def push_labelset(
    ws: Workspace,
    client: PacsClient,
    labelset: str,
    exams: list[str] | None = None,
    *,
    deidentify: bool = False,
    with_images: bool = False,
    progress: Progress | None = None,
) -> PushReport:
    from ictview.io.export import export_dicom_seg, labelset_exams

    names = labelset_exams(ws, labelset, exams)
    if not names:
        raise IctviewError(f"{ws.root}: labelset '{labelset}' has no labeled exams to send")
    deid = None
    if deidentify:
        from ictview.pacs.deid import Deidentifier

        deid = Deidentifier(ws)
    report = PushReport()
    try:
        with tempfile.TemporaryDirectory(prefix="ictview-push-") as tmp:
            for i, exam in enumerate(names):
                if progress:
                    progress(i, len(names), f"send {exam}")
                item = ExamPush(exam)
                report.exams.append(item)
                path = export_dicom_seg(ws, labelset, exam, Path(tmp))
                if path is None:
                    item.skipped = "no hemorrhage labeled (a DICOM SEG needs a segment)"
                    continue
                datasets = [pydicom.dcmread(path)]
                if with_images:
                    datasets += source_images(ws, exam)
                if deid is not None:
                    datasets = [deid.apply(d) for d in datasets]
                item.seg_uid = str(datasets[0].SOPInstanceUID)
                item.study_uid = str(datasets[0].StudyInstanceUID)
                item.sent = len(datasets)
                outcomes = client.store(datasets)
                item.accepted = sum(o.accepted for o in outcomes)
                item.refused = [f"{o.sop_uid}: {o.reason}" for o in outcomes if not o.accepted]
                if len(outcomes) < len(datasets):
                    item.refused.append(f"{len(datasets) - len(outcomes)} instance(s) without an "
                                        "answer from the server")
            if progress:
                progress(len(names), len(names), "sent")
    finally:
        if deid is not None:
            deid.close()
    return report
