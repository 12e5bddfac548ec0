"""Export a labelset as NIfTI masks and DICOM Segmentation objects aligned to the source series.

NIfTI: `<out>/<exam>.nii.gz`, uint8 label values as stored (0 bg, 1 EDH .. 5 IVH,
255 ignore), data `zyx_to_nifti(labels)` with `Geometry.affine_ras()` as both
qform and sform (scanner coordinates), the layout dcm2niix / 3D Slicer / ITK-SNAP use.

DICOM SEG: `<out>/<exam>.seg.dcm`, written with highdicom from the exam's source
DICOM files (the catalog's `exams.source` folder, the folder of the series read
at import). Using the real source instances (not datasets re-created from the
stored geometry) keeps patient/study identity and every referenced SOP Instance
UID exactly as in PACS, so OHIF/Slicer attach the SEG to the right series; the
price is that the source folder must still exist, otherwise IctviewError.
BINARY segmentation, one segment per class present, algorithm type MANUAL, the
rater who last saved the labels as content creator.

Coded concepts: category SCT 49755003 "Morphologically Abnormal Structure" (CID 7150);
type: each subtype's own SNOMED CT concept (`ictview.io.seg_codes`, with sources); the
subtype is also the SegmentLabel (EDH, SDH, SAH, IPH, IVH) and the Segment Description
(Epidural, ...). The ignore label (255) is not exported to SEG.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ictview.core.geometry import Geometry, nifti_to_zyx, zyx_to_nifti
from ictview.core.labels import BY_VALUE, LABEL_CLASSES
from ictview.errors import IctviewError
from ictview.io.label_tables import DESCRIP
from ictview.io.seg_codes import SEG_CATEGORY, segment_type
from ictview.store.workspace import Workspace

FORMATS = ("nifti", "dicom-seg")
SEG_SERIES_NUMBER = 300
CLASS_VALUES = tuple(c.value for c in LABEL_CLASSES)

Progress = Callable[[int, int, str], None]


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (exam, reason)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ictview")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0"


def labelset_exams(ws: Workspace, labelset: str, exams: Iterable[str] | None = None,
                   hidden: list[tuple[str, str]] | None = None) -> list[str]:
    """The exams to export; IctviewError for an unknown labelset or exam without labels.

    Blinding (the workspace's read guard): a repetition of an unfinished test-retest
    study is exported by its administrators only, audited; exams whose labels are
    hidden from this login are refused when named, else left out and listed in
    `hidden` as (exam, why)."""
    if labelset not in ws.labelset_names():
        known = ", ".join(ls["name"] for ls in ws.labelsets()) or "none"
        raise IctviewError(f"{ws.root}: no labelset named '{labelset}' (known: {known})")
    ws.guard.note_export(labelset)  # BlindingError for a hidden repetition
    have, blinded = ws.guard.labelset_exams(labelset)
    if not exams:
        if hidden is not None:
            hidden.extend(blinded)
        return have
    out = []
    why = dict(blinded)
    for name in exams:
        ws.exam(name)  # unknown exam -> IctviewError
        if name in why:
            ws.guard.require_labels(labelset, name)  # raises BlindingError, audited
        if name not in have or not ws.label_path(labelset, name).exists():
            raise IctviewError(f"{ws.root}: labelset '{labelset}' has no labels for exam '{name}'")
        out.append(name)
    return out


def read_volume(ws: Workspace, exam: str):
    """The volume read every export uses: verified against the catalog's checksum first,
    so a file changed behind ictview's back never leaves the workspace silently."""
    return ws.read_volume(exam, verify=True)


def _load(ws: Workspace, labelset: str, exam: str) -> np.ndarray:
    ws.verify_labels(labelset, exam)  # what leaves the workspace is what was saved
    labels = ws.load_labels(labelset, exam)
    if labels is None:
        raise IctviewError(f"{ws.label_path(labelset, exam)}: label file not found")
    return labels


# ---- NIfTI ------------------------------------------------------------------------------


def write_nifti(path: Path, labels: np.ndarray, geometry: Geometry) -> Path:
    import nibabel as nib

    img = nib.Nifti1Image(zyx_to_nifti(labels.astype(np.uint8, copy=False)), geometry.affine_ras())
    img.set_qform(geometry.affine_ras(), code=1)
    img.set_sform(geometry.affine_ras(), code=1)
    img.header.set_xyzt_units("mm")
    img.header.set_data_dtype(np.uint8)
    img.header.set_intent(1002)  # NIFTI_INTENT_LABEL
    img.header["descrip"] = DESCRIP.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels (z, y, x) uint8, affine) of an exported mask."""
    import nibabel as nib

    img = nib.load(str(path))
    return nifti_to_zyx(np.asarray(img.dataobj).astype(np.uint8)), img.affine


def export_nifti(ws: Workspace, labelset: str, exam: str, out_dir: Path) -> Path:
    labels = _load(ws, labelset, exam)
    geometry = read_volume(ws, exam).geometry
    return write_nifti(Path(out_dir) / f"{exam}.nii.gz", labels, geometry)


# ---- DICOM SEG -------------------------------------------------------------------------


def exam_source(ws: Workspace, exam: str) -> Path:
    row = ws.con.execute("SELECT source FROM exams WHERE name=?", (exam,)).fetchone()
    if row is None:
        raise IctviewError(f"{ws.root}: no exam named '{exam}'")
    if not row[0]:
        raise IctviewError(f"{ws.root}: exam '{exam}' has no recorded source DICOM folder")
    src = Path(row[0])
    return src if src.is_absolute() else (ws.root / src)


def source_datasets(ws: Workspace, exam: str) -> list:
    """The exam's source CT datasets (headers only), in the stored slice order."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    e = ws.exam(exam)
    sops = read_volume(ws, exam).sop_uids
    folder = exam_source(ws, exam)
    if not folder.is_dir():
        raise IctviewError(
            f"{folder}: source DICOM folder of exam '{exam}' not found (needed for DICOM SEG)"
        )
    wanted, found = set(sops), {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError):
            continue
        uid = str(getattr(ds, "SOPInstanceUID", ""))
        if uid in wanted and str(getattr(ds, "SeriesInstanceUID", "")) == e.series_uid:
            found[uid] = ds
    missing = [u for u in sops if u not in found]
    if missing:
        raise IctviewError(
            f"{folder}: {len(missing)} of {len(sops)} source DICOM slices of exam '{exam}' "
            "are missing"
        )
    return [found[u] for u in sops]


def content_creator(ws: Workspace, labelset: str, exam: str) -> str | None:
    """The rater of the labels as a DICOM person name ("name^" = family name only),
    None for imported labels whose author is unknown."""
    row = ws.con.execute(
        """SELECT f.saved_by, l.rater FROM label_files f JOIN labelsets l ON l.name = f.labelset
           JOIN exams e ON e.id = f.exam_id WHERE f.labelset=? AND e.name=?""",
        (labelset, exam),
    ).fetchone()
    who = (row and (row[1] or row[0])) or ""
    if not who or who == "import":
        return None
    who = who.replace("\\", " ")[:60]
    return who if "^" in who else who + "^"


def _segment_descriptions(values: list[int]):
    import highdicom as hd
    from pydicom.sr.coding import Code

    out = []
    for n, v in enumerate(values, start=1):
        c = BY_VALUE[v]
        d = hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=c.code,
            segmented_property_category=Code(*SEG_CATEGORY),
            segmented_property_type=Code(*segment_type(c.code)),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_id=f"{c.code} {c.name}"[:64],
            tracking_uid=hd.UID(),
            display_color=hd.color.CIELabColor.from_rgb(*c.color),
        )
        d.SegmentDescription = c.name
        out.append(d)
    return out


def write_dicom_seg(
    path: Path,
    labels: np.ndarray,
    sources: list,
    *,
    labelset: str,
    creator: str | None,
) -> list[str] | None:
    """Write a BINARY DICOM SEG of `labels` (z, y, x) over `sources` (one dataset per slice,
    same order). Returns the segment labels, or None when no class is present (nothing written)."""
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    values = [v for v in CLASS_VALUES if np.any(labels == v)]
    if not values:
        return None
    # (frames, rows, cols, segments) binary: one plane per class present
    pixels = np.stack([labels == v for v in values], axis=-1).astype(np.uint8)
    series_uid = generate_uid(entropy_srcs=["ictview-seg", sources[0].SeriesInstanceUID, labelset])
    digest = hashlib.sha1(np.ascontiguousarray(labels).tobytes()).hexdigest()
    sop_uid = generate_uid(entropy_srcs=[series_uid, digest])
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segment_descriptions(values),
        series_instance_uid=series_uid,
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer="ictview",
        manufacturer_model_name="ictview",
        software_versions=_version(),
        device_serial_number="ictview",
        content_description=f"ICH labels, labelset {labelset}"[:64],
        content_creator_name=creator,
        content_label="ICH",
        series_description=f"ICH labels {labelset}"[:64],
        transfer_syntax_uid=ExplicitVRLittleEndian,
        omit_empty_frames=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(str(path))
    return [BY_VALUE[v].code for v in values]


def read_dicom_seg(path: Path, sop_uids: list[str]) -> np.ndarray:
    """Label volume (z, y, x) uint8 from an exported SEG, slice k = source SOP sop_uids[k].
    Segments map back to label values through their SegmentLabel."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    by_code = {c.code: c.value for c in LABEL_CLASSES}
    numbers = list(seg.segment_numbers)
    values = [by_code[seg.get_segment_description(n).segment_label] for n in numbers]
    arr = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=sop_uids, segment_numbers=numbers,
        combine_segments=False, assert_missing_frames_are_empty=True,
    )
    out = np.zeros(arr.shape[:3], np.uint8)
    for k, v in enumerate(values):
        out[arr[..., k] > 0] = v
    return out


def export_dicom_seg(ws: Workspace, labelset: str, exam: str, out_dir: Path) -> Path | None:
    labels = _load(ws, labelset, exam)
    sources = source_datasets(ws, exam)
    path = Path(out_dir) / f"{exam}.seg.dcm"
    done = write_dicom_seg(path, labels, sources, labelset=labelset,
                           creator=content_creator(ws, labelset, exam))
    return path if done is not None else None


# ---- whole labelset ----------------------------------------------------------------------


def export_labelset(
    ws: Workspace,
    labelset: str,
    fmt: str,
    out_dir: Path,
    exams: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export every exam of `labelset` (or `exams`) in `fmt` ('nifti' or 'dicom-seg')."""
    if fmt not in FORMATS:
        raise IctviewError(f"unknown export format '{fmt}' (use {' or '.join(FORMATS)})")
    hidden: list[tuple[str, str]] = []
    names = labelset_exams(ws, labelset, exams, hidden)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise IctviewError(f"{out_dir}: exists and is not a folder")
    result = ExportResult(skipped=list(hidden))
    for i, name in enumerate(names):
        if progress:
            progress(i, len(names), "export")
        if fmt == "nifti":
            result.written.append(export_nifti(ws, labelset, name, out_dir))
        else:
            path = export_dicom_seg(ws, labelset, name, out_dir)
            if path is None:
                reason = "no hemorrhage labeled (a DICOM SEG needs a segment)"
                result.skipped.append((name, reason))
            else:
                result.written.append(path)
    if progress:
        progress(len(names), len(names), "export")
    return result
