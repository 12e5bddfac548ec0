"""Import DICOM studies and their labels into a workspace, one exam at a time.

Every label file is parsed and validated before the first exam is touched. Each
exam (volume, slices, series choice, reads, image labels, masks) is committed in
one transaction after its files are on disk, so an interrupted import leaves only
whole exams, and running it again finishes the job without duplicates.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ictview.errors import IctviewError
from ictview.io import dicom_series
from ictview.io.dicom_plausible import SeriesExcluded
from ictview.io.label_formats import (
    find_mask,
    mask_exam_name,
    parse_cq500_reads,
    parse_rsna_labels,
    read_nifti_mask,
    rsna_key_for,
    rsna_key_sop,
)
from ictview.store.workspace import NewExam, Workspace, stage_volume, volume_attrs

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
MAX_LISTED = 5  # problems of one kind listed by name before "... and N more"
# files per task when workers read headers: enough to amortise a task's pickling, small
# enough that the parent's grouping keeps pace
HEADER_CHUNK = 64


@dataclass
class MaskSource:
    labelset: str
    folder: Path
    kind: str = "reference"  # reference | retest | rater
    rater: str | None = None


@dataclass
class ImportOptions:
    site: str
    role: str
    min_thickness_mm: float = 2.0
    rsna_labels: Path | None = None
    cq500_reads: Path | None = None
    masks: list[MaskSource] = field(default_factory=list)


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<study>: reason"
    skipped_files: list[str] = field(default_factory=list)  # "<path>: reason"
    excluded_series: list[str] = field(default_factory=list)
    exam_warnings: list[str] = field(default_factory=list)
    label_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}

    def summary_lines(self) -> list[str]:
        lines = [
            f"imported {len(self.imported)} exam(s), {len(self.already_present)} already present, "
            f"{len(self.failed)} failed, {len(self.skipped_files)} file(s) skipped, "
            f"{len(self.excluded_series)} series excluded"
        ]
        for title, items in (
            ("failed", self.failed),
            ("skipped file", self.skipped_files),
            ("label problem", self.label_problems),
            ("warning", self.exam_warnings),
        ):
            for item in items[:MAX_LISTED]:
                lines.append(f"  {title}: {item}")
            if len(items) > MAX_LISTED:
                lines.append(f"  ... and {len(items) - MAX_LISTED} more {title}(s)")
        return lines


def _validate_options(opts: ImportOptions) -> tuple[dict, dict]:
    rsna = parse_rsna_labels(opts.rsna_labels) if opts.rsna_labels else {}
    reads = parse_cq500_reads(opts.cq500_reads) if opts.cq500_reads else {}
    for m in opts.masks:
        if not Path(m.folder).is_dir():
            raise IctviewError(f"{m.folder}: mask folder not found")
    return rsna, reads


def import_source(
    ws: Workspace,
    sources: list[Path],
    opts: ImportOptions,
    progress: Progress | None = None,
    jobs: int = 1,
    pool: ProcessPoolExecutor | None = None,
) -> ImportReport:
    """Import `sources` into `ws`. jobs > 1 reads and converts the chosen series in that
    many processes (see _read_studies); the catalog is still written here, one exam at a
    time, so the result and the all-or-nothing guarantee per exam are those of jobs = 1.
    `pool` (from worker_pool(jobs)) reuses running workers."""
    if jobs < 1:
        raise IctviewError(f"--jobs {jobs}: must be 1 or more")
    for s in sources:
        if not Path(s).exists():
            raise IctviewError(f"{s}: no such file or folder")
    rsna, reads = _validate_options(opts)
    report = ImportReport()
    own_pool = jobs > 1 and pool is None
    if own_pool:  # started before the scan, so that the workers start up while it runs
        pool = worker_pool(jobs)
    try:
        with ws.import_lock():
            return _import_locked(ws, sources, opts, progress, jobs, pool, rsna, reads, report)
    finally:
        if own_pool:
            pool.shutdown(wait=True)


def _import_locked(ws, sources, opts, progress, jobs, pool, rsna, reads, report) -> ImportReport:
    """import_source under the import lock (the orphan sweep has just run)."""
    try:
        scan = dicom_series.scan(
            sources, progress=(lambda d, t: progress(d, t, "scanning")) if progress else None,
            headers=_parallel_headers(pool) if pool is not None else None,
        )
    except BrokenProcessPool:
        raise IctviewError(f"{ws.root}: an import worker process died (out of memory or "
                           "killed) while reading headers: run the import again") from None
    report.skipped_files = [f"{s.path}: {s.reason}" for s in scan.skipped]
    studies = scan.studies()
    if not studies:  # before any catalog row: an empty or foreign folder leaves no site
        raise IctviewError(_nothing_found(sources, report.skipped_files))
    new_site = opts.site not in ws.sites()
    ws.ensure_site(opts.site, opts.role)
    for m in opts.masks:
        ws.ensure_labelset(m.labelset, m.kind, m.rater)
    matched_rsna: set[str] = set()
    matched_reads: set[str] = set()
    matched_masks: dict[str, set[str]] = {m.labelset: set() for m in opts.masks}

    ordered = sorted(studies.items())
    reader = _read_studies(ws, ordered, opts.site, opts.min_thickness_mm, jobs, pool)
    try:
        for n, (study_uid, series, existing, choice, vol, error) in enumerate(reader):
            if progress:
                progress(n, len(studies), "importing")
            for s, reason in choice.excluded:
                report.excluded_series.append(
                    f"{s.patient_id} {s.series_description!r}: {reason}")
            if error is not None:
                report.failed.append(f"{choice.chosen.patient_id} ({study_uid}): {error}")
                continue
            if choice.chosen is None:
                why = _why_none(choice)
                report.failed.append(f"study {study_uid}: no series to interpret{why}")
                continue
            header = choice.chosen
            keys = [header.patient_id]  # labels are keyed by exam name = PatientID
            if existing:
                report.already_present.append(existing)
                _attach_to_existing(ws, existing, header, keys, opts, rsna, reads, report,
                                    matched_rsna, matched_reads, matched_masks)
                continue
            name = ws.unique_exam_name(header.patient_id or study_uid)
            keys.append(name)
            new = _new_exam(name, opts, vol, choice, report)
            new.reads = _reads_for(keys, reads, matched_reads)
            new.reads_source = str(opts.cq500_reads or "")
            new.image_labels = _image_labels_for(vol.sop_uids, rsna, matched_rsna)
            new.image_labels_source = str(opts.rsna_labels or "")
            new.masks = _masks_for(keys, vol.geometry, new.shape, opts.masks, report,
                                   matched_masks)
            ws.add_exam(new)
            report.imported.append(name)
            for w in vol.warnings:
                report.exam_warnings.append(f"{name}: {w}")
    finally:
        reader.close()  # now, under the lock: cancels pending reads, removes unused staged files
    if progress:
        progress(len(studies), len(studies), "done")
    if not report.imported and not report.already_present:
        if new_site:
            ws.drop_empty_site(opts.site)
        first = report.failed[0] if report.failed else "no series to interpret"
        raise IctviewError(f"imported nothing: {len(report.failed)} of {len(studies)} "
                           f"studies failed (first: {first})")

    _report_unmatched(ws, opts, rsna, reads, report, matched_rsna, matched_reads, matched_masks)
    return report


def _nothing_found(sources: list[Path], skipped: list[str]) -> str:
    where = ", ".join(str(s) for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
    if not skipped:
        return f"{where}: no files found (nothing imported)"
    return (f"{where}: no DICOM CT series found, nothing imported ({len(skipped)} file(s) "
            f"skipped; first: {skipped[0]})")


def _read_chosen(series, choice, min_thickness_mm):
    """Read the chosen series -> (choice, volume, error line). A series found implausible
    only once its pixels are decoded (values saturating int16) is excluded and the next
    choice read instead."""
    refused: list[tuple[object, str]] = []
    vol = error = None
    while choice.chosen is not None:
        try:
            vol = dicom_series.read_series(choice.chosen)
        except SeriesExcluded as e:
            refused.append((choice.chosen, e.reason))
            rest = [s for s in series if all(s is not r for r, _ in refused)]
            choice = dicom_series.choose_series(rest, min_thickness_mm)
            continue
        except IctviewError as e:
            error = str(e)
        break
    choice.excluded[:0] = refused
    return choice, vol, error


# ---- reading the studies, in this process or in worker processes -----------------------


@dataclass
class StagedVolume:
    """What a worker hands back for a series it converted: everything of SeriesVolume
    but the voxels, which are already in `path` (a complete volume file, fsync'd)."""

    path: str
    sha1: str
    shape: tuple[int, int, int]
    geometry: object
    sop_uids: list[str]
    header: object
    warnings: list[str]
    meta: dict


def _stage_study(series, choice, min_thickness_mm: float, root: str, site: str):
    """Worker: read the chosen series (falling back as _read_chosen does) and write its
    volume file under a staged name -> (choice, StagedVolume | None, error line)."""
    choice, vol, error = _read_chosen(series, choice, min_thickness_mm)
    if vol is None:
        return choice, None, error
    h = vol.header
    path, sha1 = stage_volume(Path(root), h.study_uid, vol.hu, vol.geometry, vol.sop_uids,
                              volume_attrs(h.patient_id, h.study_uid, h.series_uid, site))
    staged = StagedVolume(path, sha1, tuple(vol.hu.shape), vol.geometry, vol.sop_uids,
                          vol.header, vol.warnings, vol.meta)
    return choice, staged, None


def _worker_init(parent_pid: int) -> None:
    """Die with the parent (Linux): a killed import must not leave workers writing."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # best effort: a surviving worker only leaves a staged file the next sweep removes
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _read_studies(ws: Workspace, ordered, site: str, min_thickness_mm: float, jobs: int,
                  pool: ProcessPoolExecutor | None = None):
    """Yield (study_uid, series, existing exam, choice, volume, error) in study order.

    jobs = 1 reads each series here, just before its exam is committed (today's path).
    jobs > 1 reads them in worker processes which write each volume to a staged file;
    at most 2 x jobs studies are ahead of the parent, which bounds the staged files on
    disk. The parent alone writes the catalog (Workspace.add_exam renames the staged
    file into place, then commits the exam's rows), in the same order as jobs = 1."""
    if jobs == 1:
        for study_uid, series in ordered:
            existing = ws.find_study(study_uid)
            choice = dicom_series.choose_series(series, min_thickness_mm)
            vol = error = None
            if choice.chosen is not None and not existing:
                choice, vol, error = _read_chosen(series, choice, min_thickness_mm)
            yield study_uid, series, existing, choice, vol, error
        return
    pending: deque = deque()
    todo = iter(ordered)
    root = str(ws.root)

    def submit_next() -> bool:
        for study_uid, series in todo:
            existing = ws.find_study(study_uid)
            choice = dicom_series.choose_series(series, min_thickness_mm)
            fut = None
            if choice.chosen is not None and not existing:
                fut = pool.submit(_stage_study, series, choice, min_thickness_mm, root, site)
            pending.append((study_uid, series, existing, choice, fut))
            if fut is not None:
                return True
        return False

    try:
        ahead = 0
        while ahead < 2 * jobs and submit_next():
            ahead += 1
        while pending:
            study_uid, series, existing, choice, fut = pending.popleft()
            vol = error = None
            if fut is not None:
                try:
                    choice, vol, error = fut.result()
                except BrokenProcessPool:
                    raise IctviewError(
                        f"{ws.root}: an import worker process died (out of memory or killed) "
                        f"while reading study {study_uid}: run the import again (with fewer "
                        "--jobs if memory is short)") from None
                submit_next()
            yield study_uid, series, existing, choice, vol, error
    finally:
        # an error or a stop before the end: cancel what has not started, wait for what
        # has, and remove the staged files never committed (the next sweep would too)
        futures = [p[4] for p in pending if p[4] is not None]
        for fut in futures:
            fut.cancel()
        wait(futures)
        for fut in futures:
            if not fut.cancelled() and fut.exception() is None and fut.result()[1]:
                Path(fut.result()[1].path).unlink(missing_ok=True)


def _parallel_headers(pool: ProcessPoolExecutor):
    """The scan's header reader for a parallel import: this process reads headers itself
    until a worker is up (spawning takes a second or two), then the workers read the rest
    in chunks; results come back in file order either way."""

    def read(files: list[str]):
        started = getattr(pool, "ictview_started", None)
        i = 0
        while i < len(files) and started is not None and not started.done():
            yield dicom_series.header_result(files[i])
            i += 1
        if i < len(files):
            yield from pool.map(dicom_series.header_result, files[i:], chunksize=HEADER_CHUNK)

    return read


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """The processes of a parallel import; one pool can serve several import_source calls
    (import_synthetic's sites), which saves starting the workers again for each. The first
    starts now, in the background, the others as tasks arrive (Python starts them from the
    thread that submits). Create and use the pool in a thread that outlives the import: on
    Linux a worker dies when the thread that started it ends (PR_SET_PDEATHSIG follows the
    creating thread, not the process)."""
    # Each worker holds a whole decoded series (~20-100 MB at 512 x 512) and its own
    # numpy/pydicom, and more workers than CPUs only compete: `--jobs 1000` on a large
    # import would exhaust memory. Two are always allowed so the parallel path runs anywhere.
    most = max(2, os.cpu_count() or 1)
    if jobs > most:
        log.info("import --jobs %d: using %d worker processes (the machine's CPUs)", jobs, most)
        jobs = most
    # spawn: no inherited catalog connection, import lock or heartbeat thread in a worker
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    pool.ictview_started = pool.submit(os.getpid)  # done once a worker is up
    return pool


def _why_none(choice) -> str:
    """Why no series of a study is usable, in the one line of the text report."""
    if not choice.excluded:
        return ""
    shown = "; ".join(f"series {s.series_number if s.series_number is not None else '?'}: {r}"
                      for s, r in choice.excluded[:3])
    more = f"; and {len(choice.excluded) - 3} more" if len(choice.excluded) > 3 else ""
    return f" ({shown}{more})"


def _new_exam(name, opts, vol, choice, report) -> NewExam:
    h, g, meta = vol.header, vol.geometry, vol.meta
    normal = g.normal
    staged = isinstance(vol, StagedVolume)
    shape = vol.shape if staged else vol.hu.shape
    positions = [float(np.dot(g.slice_position(k), normal)) for k in range(shape[0])]
    series_rows = [(h.series_uid, h.series_description, h.slice_thickness, len(h.files), True, "")]
    series_rows += [
        (s.series_uid, s.series_description, s.slice_thickness, len(s.files), False, reason)
        for s, reason in choice.excluded
    ]
    return NewExam(
        name=name, site=opts.site, hu=None if staged else vol.hu, geometry=g,
        staged=(vol.path, vol.sha1, vol.shape) if staged else None, sop_uids=list(vol.sop_uids),
        positions=positions, patient_id=h.patient_id, study_uid=h.study_uid,
        series_uid=h.series_uid, accession_number=h.accession_number or "",
        study_date=h.study_date or "", series_description=h.series_description or "",
        slice_thickness=h.slice_thickness, manufacturer=str(meta.get("manufacturer", "")),
        kernel=str(meta.get("kernel", "")), warnings=tuple(vol.warnings),
        # absolute: DICOM SEG export re-reads the source from wherever it is run later
        source=str(Path(h.files[0]).parent.resolve()), series_rows=tuple(series_rows),
    )


def _reads_for(keys, reads, matched):
    for k in keys:
        if k in reads:
            matched.add(k)
            return reads[k]
    return None


def _image_labels_for(sop_uids, rsna, matched):
    if not rsna:
        return None
    out = {}
    for idx, uid in enumerate(sop_uids):
        key = rsna_key_for(rsna, uid)
        if key is not None:
            matched.add(key)
            out[idx] = rsna[key]
    return out or None


def _masks_for(keys, geometry, shape, masks, report, matched) -> dict[str, np.ndarray] | None:
    out = {}
    for m in masks:
        path = next((p for p in (find_mask(m.folder, k) for k in keys) if p), None)
        if path is None:
            continue
        matched[m.labelset].add(mask_exam_name(path))
        check = read_nifti_mask(path, geometry, shape)
        report.label_problems.extend(check.problems)
        report.notes.extend(check.notes)
        if check.labels is not None:
            out[m.labelset] = check.labels
    return out or None


def _attach_to_existing(ws, name, header, keys, opts, rsna, reads, report,
                        matched_rsna, matched_reads, matched_masks) -> None:
    """Re-running an import adds labels an existing exam lacks; it never re-reads volumes."""
    keys = keys + [name]
    r = _reads_for(keys, reads, matched_reads)
    if r:
        ws.attach_reads(name, r, str(opts.cq500_reads))
    if rsna:
        exam = ws.exam(name)
        sops = [row[0] for row in ws.con.execute(
            "SELECT sop_uid FROM slices WHERE exam_id=? ORDER BY idx", (exam.id,))]
        labels = _image_labels_for(sops, rsna, matched_rsna)
        if labels:
            ws.attach_image_labels(name, labels, str(opts.rsna_labels))
    pending = [m for m in opts.masks if not ws.label_path(m.labelset, name).exists()]
    for m in opts.masks:
        if m not in pending:
            path = next((p for p in (find_mask(m.folder, k) for k in keys) if p), None)
            if path:
                matched_masks[m.labelset].add(mask_exam_name(path))
    if pending:
        stored = ws.read_volume(name)
        found = _masks_for(keys, stored.geometry, stored.hu.shape, pending, report, matched_masks)
        for labelset, labels in (found or {}).items():
            ws.save_labels(labelset, name, labels, rater="import")


def _report_unmatched(ws, opts, rsna, reads, report, matched_rsna, matched_reads, matched_masks):
    if rsna:
        missing = [u for u in rsna if u not in matched_rsna]
        if missing:
            known = ws.sop_index()
            missing = [k for k in missing if k not in known and rsna_key_sop(k) not in known]
        if missing:
            report.label_problems.append(
                f"{opts.rsna_labels}: {len(missing)} image label(s) for images not in this import "
                f"or the workspace (e.g. {', '.join(missing[:3])})"
            )
    if reads:
        missing = sorted(set(reads) - matched_reads)
        if missing:
            report.label_problems.append(
                f"{opts.cq500_reads}: {len(missing)} read(s) for exams not found "
                f"(e.g. {', '.join(missing[:3])})"
            )
    for m in opts.masks:
        files = {mask_exam_name(p) for p in Path(m.folder).iterdir()
                 if p.name.endswith((".nii", ".nii.gz"))}
        missing = sorted(files - matched_masks[m.labelset])
        if missing:
            report.label_problems.append(
                f"{m.folder}: {len(missing)} mask(s) for exams not found (e.g. {', '.join(missing[:3])})"
            )
