"""Find CT series in folders, choose the one to interpret, read it as an HU volume.

scan() reads headers only (dicom_header's fast parser) and keeps what it parsed
on each SeriesHeader, so read_series() does not parse the same headers again.
read_series() sorts slices by ImagePositionPatient projected on the slice
normal (never InstanceNumber or file names), checks the geometry and says what
it found in `warnings` instead of failing: gantry tilt, missing slices, uneven
spacing, duplicate positions, mixed matrix sizes, mixed orientations.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError
from ictview.io.dicom_header import FileHeader, Skip, one_line, read_file_header
from ictview.io.dicom_pixels import read_slice_into
from ictview.io.dicom_plausible import SeriesExcluded, header_problem, saturation_problem

# |normal . z| at or above this is axial: tolerates gantry tilt and tilted reformats (<= 45 deg)
AXIAL_MIN_COS = float(np.cos(np.radians(45.0)))
LOCALIZER_TYPES = {"LOCALIZER", "SCOUT", "TOPOGRAM", "SCANOGRAM"}
TILT_WARN_DEG = 0.5
POSITION_TOL_MM = 0.01
ORIENTATION_TOL = 1e-3


@dataclass
class SkippedFile:
    path: str
    reason: str  # one line


@dataclass
class SeriesHeader:
    """One series found by scan(), before pixel decoding."""

    study_uid: str
    series_uid: str
    patient_id: str
    accession_number: str
    study_date: str
    modality: str
    series_number: int | None
    series_description: str
    slice_thickness: float | None
    image_type: tuple[str, ...]
    is_axial: bool
    is_localizer: bool
    files: list[str]  # file paths (any order)
    sop_uids: list[str]  # same order as files
    # files with this SeriesInstanceUID left out for their modality: {"MR": 5}
    other_modalities: dict[str, int] = field(default_factory=dict)

    # scan() also leaves `_headers` (a plain attribute, not a field, so asdict() and
    # equality ignore it): the parsed FileHeader per file, which read_series reuses.

    @property
    def n_files(self) -> int:
        return len(self.files)


@dataclass
class ScanResult:
    series: list[SeriesHeader]
    skipped: list[SkippedFile]

    def studies(self) -> dict[str, list[SeriesHeader]]:
        """Series grouped by StudyInstanceUID."""
        out: dict[str, list[SeriesHeader]] = {}
        for s in self.series:
            out.setdefault(s.study_uid, []).append(s)
        return out


@dataclass
class SeriesChoice:
    chosen: SeriesHeader | None
    excluded: list[tuple[SeriesHeader, str]]  # (series, reason)


@dataclass
class SeriesVolume:
    hu: np.ndarray  # int16 (z, y, x), sorted along the normal
    geometry: Geometry
    sop_uids: list[str]  # per slice, same order as hu
    header: SeriesHeader
    warnings: list[str]  # gantry tilt, uneven spacing / missing slices, duplicates, mixed sizes
    meta: dict  # manufacturer, model, kernel, kvp, slice_thickness, institution ...


# ---------------------------------------------------------------- scan


def _list_files(paths: Iterable[str | Path]) -> tuple[list[str], list[SkippedFile]]:
    files: list[str] = []
    missing: list[SkippedFile] = []
    seen: set[str] = set()
    for root in paths:
        root = os.fspath(root)
        if os.path.isfile(root):
            found = [root]
        elif os.path.isdir(root):
            found = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                found.extend(os.path.join(dirpath, f) for f in sorted(filenames))
        else:
            missing.append(SkippedFile(root, "no such file or folder"))
            continue
        for f in found:
            # the same path given twice; other aliases (links) meet the SOPInstanceUID check
            key = os.path.abspath(f)
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, missing


def header_result(path: str) -> tuple:
    """One file's header as a picklable result: ("h", FileHeader) or ("s", reason,
    series_uid, modality) for a file the scan leaves out (what a worker process hands
    back; a Skip itself would lose its series and modality through pickle)."""
    try:
        if os.path.basename(path).upper() == "DICOMDIR":
            raise Skip("DICOMDIR (media directory), not an image")
        return ("h", read_file_header(path))
    except Skip as exc:
        return ("s", str(exc), exc.series_uid, exc.modality)
    except Exception as exc:  # last resort: a file must never stop the scan
        return ("s", one_line(f"unexpected error: {type(exc).__name__}: {exc}"), "", "")


HeaderReader = Callable[[list[str]], Iterable[tuple]]


def scan(
    paths: Iterable[str | Path], progress: Callable[[int, int], None] | None = None,
    headers: HeaderReader | None = None,
) -> ScanResult:
    """Headers of every file under `paths` (files or folders), grouped by SeriesInstanceUID.

    Files the CT reader cannot use are listed in `skipped` with a one-line reason.
    `headers(files)`: header_result of each file, in order (a parallel import reads them
    in worker processes); default: read here, one by one."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, skipped = _list_files(paths)
    groups: dict[str, list[FileHeader]] = {}
    other_modalities: dict[str, Counter] = {}
    sop_seen: dict[str, str] = {}
    total = len(files)
    results = headers(files) if headers is not None else map(header_result, files)
    for i, (path, result) in enumerate(zip(files, results)):
        try:
            if result[0] != "h":
                raise Skip(result[1], result[2], result[3])
            h = result[1]
            first = sop_seen.get(h.sop_uid)
            if first is not None:
                raise Skip(f"same SOPInstanceUID as {first}")
            sop_seen[h.sop_uid] = path
            groups.setdefault(h.series_uid, []).append(h)
        except Skip as exc:
            skipped.append(SkippedFile(path, str(exc)))
            if exc.series_uid:
                other_modalities.setdefault(exc.series_uid, Counter())[exc.modality] += 1
        if progress is not None:
            progress(i + 1, total)
    series = [_series_header(hs) for hs in groups.values()]
    for s in series:
        s.other_modalities = dict(sorted(other_modalities.get(s.series_uid, {}).items()))
    series.sort(key=lambda s: (s.study_uid, s.series_number if s.series_number is not None else -1, s.series_uid))
    return ScanResult(series, skipped)


def _series_header(hs: list[FileHeader]) -> SeriesHeader:
    hs = sorted(hs, key=lambda h: h.path)
    first = hs[0]
    image_type = first.image_type
    normal = _normal(first.iop)
    is_axial = abs(float(normal[2])) >= AXIAL_MIN_COS
    is_localizer = bool(LOCALIZER_TYPES & set(image_type))
    if len(hs) == 1 and not is_axial:
        is_localizer = True  # a lone non-axial image: a scout
    thickness = first.slice_thickness
    s = SeriesHeader(
        study_uid=first.study_uid,
        series_uid=first.series_uid,
        patient_id=first.patient_id,
        accession_number=first.accession_number,
        study_date=first.study_date,
        modality=first.modality,
        series_number=first.series_number,
        series_description=first.series_description,
        slice_thickness=thickness,
        image_type=image_type,
        is_axial=is_axial,
        is_localizer=is_localizer,
        files=[h.path for h in hs],
        sop_uids=[h.sop_uid for h in hs],
    )
    s._headers = hs
    return s


def _normal(iop: tuple[float, ...]) -> np.ndarray:
    n = np.cross(np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float))
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else n


# ---------------------------------------------------------------- choose


def _estimated_spacing(s: SeriesHeader) -> float | None:
    """Median distance between slice positions along the normal (when scan() parsed them)."""
    hs = getattr(s, "_headers", None) or []
    if len(hs) < 2:
        return None
    n = _normal(hs[0].iop)
    d = np.unique(np.round([float(np.dot(h.ipp, n)) for h in hs], 3))
    if len(d) < 2:
        return None
    return float(np.median(np.diff(d)))


def _header_problem(s: SeriesHeader) -> str | None:
    """Implausible rescale or geometry values among scan()'s headers (read_series checks
    again whatever the headers came from)."""
    hs = getattr(s, "_headers", None)
    return header_problem(hs, _estimated_spacing(s)) if hs else None


def choose_series(series: list[SeriesHeader], min_thickness_mm: float = 2.0) -> SeriesChoice:
    """Pick the series to interpret among one study's series; every other one gets a reason.

    Axial, not a localizer, at least 2 slices, slice thickness >= min_thickness_mm (the
    study excluded 0.625 mm series); then ORIGINAL before DERIVED, then more slices."""
    excluded: list[tuple[SeriesHeader, str]] = []
    candidates: list[tuple[SeriesHeader, float | None]] = []
    for s in series:
        thickness = s.slice_thickness
        if thickness is None or thickness <= 0:
            thickness = _estimated_spacing(s)
        if s.is_localizer:
            why = "localizer (ImageType " + "\\".join(s.image_type) + ")"
            if not LOCALIZER_TYPES & set(s.image_type):
                why = "localizer (single non-axial image)"
            excluded.append((s, why))
        elif s.modality != "CT":
            excluded.append((s, f"modality {s.modality}, not CT"))
        elif not s.is_axial:
            excluded.append((s, "not axial (slice normal far from the z axis)"))
        elif len(s.files) < 2:
            excluded.append((s, "only 1 slice"))
        elif (problem := _header_problem(s)) is not None:
            excluded.append((s, problem))
        elif thickness is not None and thickness < min_thickness_mm - 1e-6:
            excluded.append((s, f"slice thickness {thickness:g} mm < {min_thickness_mm:g} mm"))
        else:
            candidates.append((s, thickness))

    def rank(item: tuple[SeriesHeader, float | None]) -> tuple:
        s, thickness = item
        original = "ORIGINAL" in s.image_type
        return (
            not original,
            -len(s.files),
            thickness is None,
            s.series_number if s.series_number is not None else 1 << 30,
            s.series_uid,
        )

    candidates.sort(key=rank)
    if not candidates:
        return SeriesChoice(None, excluded)
    chosen = candidates[0][0]
    for s, _ in candidates[1:]:
        excluded.append((s, f"another series preferred: {_describe(chosen)} over {_describe(s)}"))
    return SeriesChoice(chosen, excluded)


def _describe(s: SeriesHeader) -> str:
    kind = "ORIGINAL" if "ORIGINAL" in s.image_type else "DERIVED"
    num = f"series {s.series_number}" if s.series_number is not None else "series ?"
    return f"{num} ({kind}, {len(s.files)} slices)"


# ---------------------------------------------------------------- read


def read_series(header: SeriesHeader) -> SeriesVolume:
    """Decode one series to an int16 HU volume sorted along the slice normal.

    Problems that leave a usable volume go to `warnings`; IctviewError when nothing
    usable remains, SeriesExcluded (an IctviewError) when a rescale or geometry value
    would make the HU or the millilitres wrong (dicom_plausible)."""
    where = os.path.dirname(header.files[0]) if header.files else header.series_uid
    warnings: list[str] = []
    hs = _file_headers(header, warnings)
    if not hs:
        raise IctviewError(one_line(f"{where}: series {header.series_uid}: no readable CT slices{_why(warnings)}", 500))

    hs = _keep_majority(hs, warnings)
    row = np.asarray(hs[0].iop[:3], dtype=float)
    col = np.asarray(hs[0].iop[3:], dtype=float)
    row /= np.linalg.norm(row)
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)

    hs = _sorted_unique(hs, normal, warnings)
    steps = np.diff([float(np.dot(h.ipp, normal)) for h in hs])
    problem = header_problem(hs, float(np.median(steps)) if len(steps) else None)
    if problem is not None:
        raise SeriesExcluded(f"{where}: series {header.series_uid}", problem)
    rows, cols = hs[0].rows, hs[0].cols
    hu = np.empty((len(hs), rows, cols), dtype=np.int16)
    ok = np.ones(len(hs), dtype=bool)
    failures: list[str] = []
    clipped = 0
    for k, h in enumerate(hs):
        try:
            clipped += read_slice_into(hu[k], h)
        except Skip as exc:
            ok[k] = False
            failures.append(f"{os.path.basename(h.path)}: {exc}")
        except Exception as exc:  # a decoder bug must cost one slice, not the series
            ok[k] = False
            failures.append(f"{os.path.basename(h.path)}: {type(exc).__name__}: {exc}"[:200])
    if failures:
        warnings.append(
            f"unreadable pixel data: dropped {len(failures)} slice(s) ({'; '.join(failures[:3])}"
            + (" ..." if len(failures) > 3 else "")
            + ")"
        )
        if not ok.any():
            raise IctviewError(
                one_line(f"{where}: series {header.series_uid}: no decodable slices{_why(warnings)}", 500)
            )
        hu = hu[ok]
        hs = [h for h, keep in zip(hs, ok) if keep]

    saturated, clip_warning = saturation_problem(clipped, hu.size, hs[0])
    if saturated is not None:
        raise SeriesExcluded(f"{where}: series {header.series_uid}", saturated)
    if clip_warning is not None:
        warnings.append(clip_warning)
    if any(h.rescale_missing for h in hs):
        warnings.append("RescaleSlope/RescaleIntercept missing: stored values taken as HU")
    geometry = _geometry(hs, row, col, normal, warnings)
    if header.other_modalities:
        others = ", ".join(f"{n} {m}" for m, n in header.other_modalities.items())
        step = float(np.linalg.norm(geometry.slice_step))
        warnings.append(
            f"mixed modalities under one SeriesInstanceUID: {others} file(s) left out; the volume "
            f"holds the {len(hs)} CT slices only ({step:.2f} mm apart)"
        )
    first = hs[0]
    meta = dict(first.meta)
    meta.update(
        slice_thickness=first.slice_thickness,
        series_description=first.series_description,
        series_number=first.series_number,
        study_date=first.study_date,
        patient_id=first.patient_id,
        accession_number=first.accession_number,
        transfer_syntax=first.transfer_syntax,
        gantry_detector_tilt=first.gantry_tilt,
        rows=rows,
        columns=cols,
        pixel_spacing=list(first.pixel_spacing),
        files=len(header.files),
        slices=len(hs),
    )
    warnings = [one_line(m, 500) for m in warnings]
    return SeriesVolume(hu, geometry, [h.sop_uid for h in hs], header, warnings, meta)


def _why(warnings: list[str]) -> str:
    return f" ({'; '.join(warnings)})" if warnings else ""


def _file_headers(header: SeriesHeader, warnings: list[str]) -> list[FileHeader]:
    """scan()'s parsed headers when they match the file list, else parse the files again."""
    cached = getattr(header, "_headers", None)
    if cached and [h.path for h in cached] == list(header.files):
        return list(cached)
    out: list[FileHeader] = []
    bad: list[str] = []
    for path in header.files:
        try:
            h = read_file_header(path)
        except Skip as exc:
            bad.append(f"{os.path.basename(path)}: {exc}")
            continue
        except Exception as exc:
            bad.append(f"{os.path.basename(path)}: {type(exc).__name__}")
            continue
        if h.series_uid != header.series_uid:
            bad.append(f"{os.path.basename(path)}: belongs to series {h.series_uid}")
            continue
        out.append(h)
    if bad:
        warnings.append(f"unusable files: dropped {len(bad)} ({'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})")
    return out


def _keep_majority(hs: list[FileHeader], warnings: list[str]) -> list[FileHeader]:
    """One orientation and one matrix size per volume: keep the most common, say what went."""
    ref_iop = Counter(tuple(round(v, 3) for v in h.iop) for h in hs).most_common(1)[0][0]
    same = [h for h in hs if max(abs(a - b) for a, b in zip(h.iop, ref_iop)) <= ORIENTATION_TOL + 5e-4]
    if len(same) < len(hs):
        warnings.append(
            f"inconsistent orientation: dropped {len(hs) - len(same)} of {len(hs)} slices whose "
            f"ImageOrientationPatient differs from the majority {list(ref_iop)}"
        )
        hs = same
    sizes = Counter((h.rows, h.cols) for h in hs)
    if len(sizes) > 1:
        (r, c), n = sizes.most_common(1)[0]
        dropped = ", ".join(f"{cnt} of {rr}x{cc}" for (rr, cc), cnt in sizes.items() if (rr, cc) != (r, c))
        warnings.append(f"mixed matrix sizes: kept {n} slices of {r}x{c}, dropped {dropped}")
        hs = [h for h in hs if (h.rows, h.cols) == (r, c)]
    spacings = Counter(tuple(round(v, 4) for v in h.pixel_spacing) for h in hs)
    if len(spacings) > 1:
        (ref, n) = spacings.most_common(1)[0]
        warnings.append(f"mixed pixel spacing: {dict(spacings)}; using {list(ref)} mm")
    return hs


def _sorted_unique(hs: list[FileHeader], normal: np.ndarray, warnings: list[str]) -> list[FileHeader]:
    """Sort along the normal; of slices at the same position keep the first (lowest InstanceNumber)."""
    keyed = sorted(
        ((float(np.dot(h.ipp, normal)), h.instance_number if h.instance_number is not None else 0, h.path, h) for h in hs),
        key=lambda t: t[:3],
    )
    out: list[FileHeader] = []
    last = None
    dups: list[float] = []
    for d, _, _, h in keyed:
        if last is not None and abs(d - last) <= POSITION_TOL_MM:
            dups.append(d)
            continue
        out.append(h)
        last = d
    if dups:
        where = ", ".join(f"{d:.2f}" for d in sorted(set(round(x, 2) for x in dups))[:5])
        warnings.append(
            f"duplicate positions: dropped {len(dups)} slice(s) at positions already present "
            f"(along the normal: {where} mm)"
        )
    return out


def _geometry(
    hs: list[FileHeader], row: np.ndarray, col: np.ndarray, normal: np.ndarray, warnings: list[str]
) -> Geometry:
    ipp = np.asarray([h.ipp for h in hs], dtype=float)
    first = hs[0]
    if len(hs) == 1:
        spacing = first.spacing_between_slices or first.slice_thickness or 1.0
        step = normal * abs(spacing)
    else:
        step = (ipp[-1] - ipp[0]) / (len(hs) - 1)  # mean step: with tilt it is not along the normal
        _check_spacing(ipp, normal, warnings)
    norm = float(np.linalg.norm(step))
    tilt = float(np.degrees(np.arccos(np.clip(abs(np.dot(step, normal)) / norm, 0.0, 1.0)))) if norm else 0.0
    header_tilt = first.gantry_tilt or 0.0
    if tilt > TILT_WARN_DEG:
        warnings.append(
            f"gantry tilt {tilt:.1f} degrees: slice positions step off the normal (volume is sheared; "
            f"GantryDetectorTilt {header_tilt:g})"
        )
    elif abs(header_tilt) > TILT_WARN_DEG:
        warnings.append(
            f"gantry tilt {header_tilt:g} degrees in GantryDetectorTilt; slice positions are not sheared"
        )
    return Geometry(
        origin=(float(ipp[0, 0]), float(ipp[0, 1]), float(ipp[0, 2])),
        row_dir=(float(row[0]), float(row[1]), float(row[2])),
        col_dir=(float(col[0]), float(col[1]), float(col[2])),
        slice_step=(float(step[0]), float(step[1]), float(step[2])),
        pixel_spacing=(float(first.pixel_spacing[0]), float(first.pixel_spacing[1])),
    )


def _check_spacing(ipp: np.ndarray, normal: np.ndarray, warnings: list[str]) -> None:
    d = ipp @ normal
    steps = np.diff(d)
    median = float(np.median(steps))
    if median <= 0:
        return
    tol = max(0.05, 0.1 * median)
    gaps = []
    uneven = []
    for k, s in enumerate(steps):
        s = float(s)
        if s > 1.5 * median:
            missing = max(1, round(s / median) - 1)
            gaps.append(
                f"{s:.2f} mm between {d[k]:.2f} and {d[k + 1]:.2f} mm "
                f"(slices {k} and {k + 1}; about {missing} slice(s) missing)"
            )
        elif abs(s - median) > tol:
            uneven.append(s)
    if gaps:
        warnings.append(f"missing slices: expected steps of {median:.2f} mm, gap of " + "; gap of ".join(gaps[:5]))
    if uneven:
        warnings.append(
            f"uneven spacing: {len(uneven)} step(s) differ from {median:.2f} mm "
            f"(from {min(uneven):.2f} to {max(uneven):.2f} mm)"
        )
