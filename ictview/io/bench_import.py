"""`ictview bench import`: DICOM to workspace, end to end, in slices per second.

In one run, on the same DICOM files (page cache warmed by reading every file once):
- the project's import (scan, series choice, decode, volume files, catalog) at each
  --jobs value (default 1 and 2), each into a fresh workspace;
- a plain pydicom + h5py loop: read every file's header, group by SeriesInstanceUID,
  read the series the project imported, sort along the normal, rescale, one HDF5 file
  per series. It checks nothing and writes no catalog: the floor a script would reach.

Median of `repeats` runs for each, each starting after os.sync() (no dirty pages left by
the run before). Prints a table, returns the figures. Not a test: nothing here asserts
a time.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pydicom

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError, first_line
from ictview.io.dicom_write import CTSeriesSpec, deterministic_uid, write_ct_series
from ictview.io.importers import ImportOptions, import_source, worker_pool
from ictview.store.workspace import Workspace

STUDIES, SLICES, SIZE = 24, 32, 512


def write_bench_studies(out: Path, studies: int = STUDIES, slices: int = SLICES,
                        size: int = SIZE, seed: int = 0) -> Path:
    """`studies` head-like phantoms of one uncompressed series each under out/<patient>/."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, (xx - size / 2) * 1.15) / (size / 2)
    base = np.where(r < 0.8, 30, -1000).astype(np.int16)
    base[(r >= 0.8) & (r < 0.88)] = 1200
    mm = 250 / size
    geometry = Geometry((-125.0, -125.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                        (0.0, 0.0, 5.0), (mm, mm))
    for i in range(studies):
        hu = np.repeat(base[None], slices, axis=0)
        hu += rng.normal(0, 8, size=hu.shape).astype(np.int16)
        np.clip(hu, -1024, 3071, out=hu)
        pid = f"BENCH-{i:04d}"
        spec = CTSeriesSpec(
            patient_id=pid, study_uid=deterministic_uid("bench-import", pid, "study"),
            series_uid=deterministic_uid("bench-import", pid, "series"),
            frame_of_reference_uid=deterministic_uid("bench-import", pid, "for"),
        )
        write_ct_series(out / pid, hu, geometry, spec)
    return out


def _dicom_sources(folder: Path) -> list[Path]:
    """An `ictview synth` output's DICOM folders (labels are not part of this bench),
    else the folder itself."""
    import json

    manifest = folder / "manifest.json"
    if manifest.exists():
        try:
            sites = json.loads(manifest.read_text())["sites"]
            return [folder / entry["dicom"] for entry in sites.values()]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise IctviewError(f"{manifest}: unreadable synth manifest ({e})") from None
    return [folder]


def _files(sources: list[Path]) -> list[str]:
    out = []
    for src in sources:
        for dirpath, _, names in os.walk(src):
            out.extend(os.path.join(dirpath, n) for n in sorted(names))
    return out


def project_import(sources: list[Path], root: Path, jobs: int) -> int:
    """DICOM to a fresh workspace with `ictview import --jobs`; returns the slices stored.
    The worker pool starts inside the timed part: a user's import pays for it too."""
    with Workspace.create(root) as ws:
        pool = worker_pool(jobs) if jobs > 1 else None
        try:
            import_source(ws, sources, ImportOptions("bench", "test"), jobs=jobs, pool=pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return sum(e.n_slices for e in ws.exams())


def worker_startup(jobs: int) -> float:
    """Seconds to start a parallel import's workers (spawn: fresh interpreters importing the
    reader), run one task each and stop them: the fixed cost --jobs N adds to an import."""
    t0 = time.perf_counter()
    pool = worker_pool(jobs)
    try:
        for fut in [pool.submit(os.getpid) for _ in range(jobs)]:
            fut.result()
    finally:
        pool.shutdown(wait=True)
    return time.perf_counter() - t0


def plain_import(files: list[str], wanted: set[str], out: Path) -> tuple[int, list[str]]:
    """The plain pydicom + h5py loop -> (slices written, series it could not decode)."""
    by_series: dict[str, list[str]] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # a non-DICOM file: a plain script skips it too
            continue
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(f)
    out.mkdir(parents=True, exist_ok=True)
    n, failed = 0, []
    for i, uid in enumerate(sorted(u for u in by_series if u in wanted)):
        try:
            datasets = [pydicom.dcmread(f) for f in by_series[uid]]
            iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
            normal = np.cross(iop[:3], iop[3:])
            datasets.sort(key=lambda d: float(np.dot(
                np.asarray(d.ImagePositionPatient, dtype=float), normal)))
            hu = np.empty((len(datasets), datasets[0].Rows, datasets[0].Columns), np.int16)
            for k, d in enumerate(datasets):
                v = d.pixel_array.astype(np.float32) * float(d.RescaleSlope)
                hu[k] = np.clip(np.rint(v + float(d.RescaleIntercept)), -32768, 32767)
        except Exception as e:  # e.g. a compressed syntax this pydicom has no decoder for
            failed.append(f"{uid}: {first_line(e)}")
            continue
        with h5py.File(out / f"{i:05d}.h5", "w") as h:
            h.create_dataset("hu", data=hu)
        n += hu.shape[0]
    return n, failed


def _median_s(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        # outside the timing: write back what earlier runs left dirty, or the next run
        # pays for the previous one's writes (the order of the rows would decide them)
        os.sync()
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def bench_import(synth: Path | None = None, jobs: tuple[int, ...] = (1, 2), repeats: int = 3,
                 workdir: Path | None = None, studies: int = STUDIES, slices: int = SLICES,
                 size: int = SIZE) -> dict:
    with tempfile.TemporaryDirectory(dir=workdir, prefix="ictview-bench-import-") as tmp:
        tmp = Path(tmp)
        if synth is None:
            sources = [write_bench_studies(tmp / "dicom", studies, slices, size)]
            what = f"{studies} studies x {slices} slices {size}x{size}, uncompressed"
        else:
            if not Path(synth).is_dir():
                raise IctviewError(f"{synth}: folder not found")
            sources = _dicom_sources(Path(synth))
            what = f"DICOM under {synth}"
        files = _files(sources)
        read_bytes_total = sum(os.path.getsize(f) for f in files)
        for f in files:  # warm the page cache: every reader below starts from the same state
            with open(f, "rb") as fh:
                fh.read()
        rows: dict[str, tuple[float, int]] = {}
        run = iter(range(1 << 30))
        for j in jobs:
            secs, slices = _median_s(
                lambda: project_import(sources, tmp / f"ws-{j}-{next(run)}", j), repeats)
            rows[f"ictview import --jobs {j}"] = (secs, slices)
        startup = {j: round(_median_s(lambda: worker_startup(j), repeats)[0], 3)
                   for j in jobs if j > 1}
        with Workspace.open(tmp / f"ws-{jobs[0]}-0") as ws:
            wanted = {e.series_uid for e in ws.exams()}
            stored = {e.series_uid: ws.read_volume(e.name).hu for e in ws.exams()}
        secs, (slices, failed) = _median_s(
            lambda: plain_import(files, wanted, tmp / f"plain-{next(run)}"), repeats)
        rows["plain pydicom + h5py loop"] = (secs, slices)
        same, difference = _same_as_plain(tmp, stored, failed)
    plain_rate = rows["plain pydicom + h5py loop"][1] / rows["plain pydicom + h5py loop"][0]
    result = {
        "data": what, "files": len(files), "bytes": read_bytes_total, "repeats": repeats,
        "cpus": os.cpu_count(),
        "rates": {k: {"seconds": round(s, 3), "slices": n, "slices_per_s": round(n / s, 1)}
                  for k, (s, n) in rows.items()},
        "plain_failed_series": failed, "same_volumes": same, "difference": difference,
        "worker_startup_s": startup,
    }
    print(f"bench import: {what}; {len(files)} files, {read_bytes_total / 1e6:.0f} MB; "
          f"median of {repeats}, warm cache, {os.cpu_count()} CPUs")
    width = max(len(k) for k in rows) + 2
    print(f"{'importer':<{width}}{'seconds':>9}{'slices':>8}{'slices/s':>10}{'vs plain':>10}")
    for name, (s, n) in rows.items():
        print(f"{name:<{width}}{s:>9.2f}{n:>8}{n / s:>10.1f}{n / s / plain_rate:>9.2f}x")
    for j, secs in startup.items():
        print(f"--jobs {j}: starting the workers alone takes {secs:.2f} s (included above)")
    if failed:
        print(f"plain loop could not decode {len(failed)} series (first: {failed[0]})")
    print(f"plain loop wrote the same volumes as ictview: {same}"
          + (f" ({difference})" if difference else ""))
    return result


def _same_as_plain(tmp: Path, stored: dict, failed: list[str]) -> tuple[bool, str]:
    """Whether the plain loop's last output holds, series by series in UID order, the
    volumes the project stored (checked once, outside the timing), and where not, how."""
    last = max(tmp.glob("plain-*"), key=lambda p: int(p.name.split("-")[1]))
    ok_uids = sorted(u for u in stored if not any(f.startswith(f"{u}:") for f in failed))
    files = sorted(last.glob("*.h5"))
    if len(files) != len(ok_uids):
        return False, f"{len(files)} volumes written for {len(ok_uids)} series"
    differ, voxels, example = 0, 0, ""
    for uid, path in zip(ok_uids, files):
        with h5py.File(path, "r") as h:
            plain = h["hu"][()]
        ours = stored[uid]
        if plain.shape != ours.shape:
            differ += 1
            example = example or f"shape {plain.shape} vs ictview {ours.shape}"
            continue
        mask = plain != ours
        if mask.any():
            differ += 1
            voxels += int(mask.sum())
            # e.g. pixel padding outside the field of view: ictview stores air there
            example = example or f"plain {plain[mask][0]} where ictview has {ours[mask][0]}"
    if not differ:
        return True, ""
    return False, f"{differ} of {len(files)} volumes differ ({voxels} voxels; e.g. {example})"
