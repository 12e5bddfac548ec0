"""Parsers for the real datasets' label formats.

- RSNA 2019 image labels: `ID,Label` rows like `ID_<SOPInstanceUID>_epidural,1`.
- CQ500 reads: `reads.csv`, one row per exam, `R1:ICH`-style columns for three readers.
- Pixel masks: NIfTI aligned to the series (see ictview.core.geometry).

Parsers validate the whole file before anything is imported, so a malformed file
stops the import with one line naming the file, row and problem.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ictview.core.geometry import Geometry, affines_match, nifti_to_zyx
from ictview.core.labels import BY_CODE, FINDINGS, IGNORE, RSNA_TO_FINDING
from ictview.errors import IctviewError


def _open_csv(path: Path):
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise IctviewError(f"{path}: cannot open ({e.strerror})") from None
    return fh


def _binary(path: Path, line: int, text: str) -> int:
    t = text.strip()
    if t in ("0", "1"):
        return int(t)
    try:
        v = float(t)
    except ValueError:
        raise IctviewError(f"{path}:{line}: label '{text}' is not 0 or 1") from None
    if v not in (0.0, 1.0):
        raise IctviewError(f"{path}:{line}: label '{text}' is not 0 or 1")
    return int(v)


# ---- RSNA 2019 --------------------------------------------------------------------------


def parse_rsna_labels(path: Path) -> dict[str, dict[str, int]]:
    """Image key -> {finding: 0/1} (findings as in ictview.core.labels.FINDINGS).

    Rows are `<key>_<subtype>,<0|1>`. In the released RSNA data the key *is* the
    SOPInstanceUID (`ID_12cadc6af`); elsewhere it is `ID_` + a dotted UID. The
    subtype is split off from the right; `rsna_key_for` matches both forms.
    """
    path = Path(path)
    out: dict[str, dict[str, int]] = {}
    with _open_csv(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ID", "Label"]:
            raise IctviewError(f"{path}: not an RSNA label file (header must be 'ID,Label')")
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise IctviewError(f"{path}:{line}: expected 'ID,Label', got '{','.join(row)}'")
            ident, _, subtype = row[0].strip().rpartition("_")
            if not ident.startswith("ID_") or subtype not in RSNA_TO_FINDING:
                raise IctviewError(
                    f"{path}:{line}: ID '{row[0]}' is not ID_<SOPInstanceUID>_<subtype>"
                )
            out.setdefault(ident, {})[RSNA_TO_FINDING[subtype]] = _binary(path, line, row[1])
    return out


def rsna_key_for(labels: dict[str, dict[str, int]], sop_uid: str) -> str | None:
    """The key under which an image's RSNA labels are filed, if any."""
    for key in (sop_uid, "ID_" + sop_uid):
        if key in labels:
            return key
    return None


def rsna_key_sop(key: str) -> str:
    """The SOP UID a key names when it is `ID_` + a dotted UID."""
    return key[3:] if key[3:4].isdigit() else key


# ---- CQ500 reads ----------------------------------------------------------------------------

CQ500_FINDINGS = ("ICH", "IPH", "IVH", "SDH", "EDH", "SAH")


def parse_cq500_reads(path: Path) -> dict[str, dict[tuple[str, str], int]]:
    """Exam name -> {(reader, finding): 0/1} for every `Rn:Finding` column present."""
    path = Path(path)
    out: dict[str, dict[tuple[str, str], int]] = {}
    with _open_csv(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or header[0].strip() != "name":
            raise IctviewError(f"{path}: not a CQ500 reads file (first column must be 'name')")
        cols = []
        for i, h in enumerate(header):
            reader_name, sep, finding = h.strip().partition(":")
            if sep and reader_name[:1] == "R" and reader_name[1:].isdigit():
                cols.append((i, reader_name, finding))
        readers = {c[1] for c in cols}
        missing = [f"{r}:{f}" for r in sorted(readers) for f in CQ500_FINDINGS
                   if not any(c[1] == r and c[2] == f for c in cols)]
        if not cols or missing:
            raise IctviewError(
                f"{path}: CQ500 reads need R<n>:ICH..SAH columns; missing {', '.join(missing) or 'all'}"
            )
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < len(header):
                raise IctviewError(f"{path}:{line}: {len(row)} columns, header has {len(header)}")
            name = row[0].strip()
            if name in out:
                raise IctviewError(f"{path}:{line}: exam '{name}' listed twice")
            out[name] = {(r, f): _binary(path, line, row[i]) for i, r, f in cols}
    return out


def majority(reads: dict[tuple[str, str], int], finding: str = "ICH") -> int | None:
    votes = [v for (_, f), v in reads.items() if f == finding]
    return int(2 * sum(votes) > len(votes)) if votes else None


# ---- NIfTI masks ------------------------------------------------------------------------------

VALID_LABELS = frozenset([0, *(c.value for c in BY_CODE.values()), IGNORE])


@dataclass
class MaskCheck:
    labels: np.ndarray | None  # uint8 (z, y, x) when usable
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_mask(folder: Path, exam: str) -> Path | None:
    for ext in (".nii.gz", ".nii"):
        p = Path(folder) / f"{exam}{ext}"
        try:
            if p.exists():
                return p
        except OSError:  # a key too long for a file name (e.g. a 300-character PatientID)
            continue
    return None


def mask_exam_name(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def read_nifti_mask(path: Path, geometry: Geometry, shape_zyx: tuple[int, int, int]) -> MaskCheck:
    """Load a mask and check it lies on the series' voxel grid.

    A mask whose slice axis runs the other way (k reversed) is flipped and noted;
    any other disagreement (shape, spacing, orientation, origin, label values) is
    a problem and the mask is not used.
    """
    import nibabel as nib  # imported here: only the importers need it

    path = Path(path)
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises many types for damaged files
        return MaskCheck(None, [f"{path}: not a readable NIfTI file ({e.__class__.__name__}: {e})"])
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    expected_xyz = tuple(reversed(shape_zyx))
    if data.ndim != 3 or tuple(data.shape) != expected_xyz:
        return MaskCheck(
            None, [f"{path}: mask shape {tuple(data.shape)} != series shape (x,y,z) {expected_xyz}"]
        )
    notes = []
    ours = geometry.affine_ras()
    theirs = img.affine
    if not affines_match(ours, theirs):
        flipped = ours.copy()
        flipped[:3, 3] = ours[:3, 3] + ours[:3, 2] * (shape_zyx[0] - 1)
        flipped[:3, 2] = -ours[:3, 2]
        if affines_match(flipped, theirs):
            data = data[:, :, ::-1]
            notes.append(f"{path}: slice axis reversed relative to the series; flipped")
        else:
            return MaskCheck(None, [f"{path}: mask geometry does not match the series (affine differs)"])
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.mod(data, 1) == 0):
            return MaskCheck(None, [f"{path}: mask has non-integer values"])
    values = set(np.unique(data).astype(int).tolist())
    bad = sorted(values - VALID_LABELS)
    if bad:
        return MaskCheck(
            None, [f"{path}: label values {bad[:5]} are not in 0..5 or 255 (EDH SDH SAH IPH IVH)"]
        )
    return MaskCheck(nifti_to_zyx(data.astype(np.uint8)), [], notes)


def findings_present(labels: np.ndarray) -> dict[str, int]:
    """Image-level findings of one slice or volume from its pixel labels."""
    present = {c.code: int(np.any(labels == c.value)) for c in BY_CODE.values()}
    present["ICH"] = int(any(present.values()))
    return {f: present[f] for f in FINDINGS}
