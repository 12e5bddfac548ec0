"""`ictview bench io`: the project's series reader against a plain pydicom loop.

Both read the same synthetic 40-slice 512x512 uncompressed CT series in the same
process, warm cache, median of `repeats` runs after one warm-up. Prints a table,
returns the figures. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

from ictview.core.geometry import Geometry
from ictview.io.dicom_series import read_series, scan
from ictview.io.dicom_write import CTSeriesSpec, deterministic_uid, write_ct_series

SLICES, SIZE = 40, 512


def bench_series(out_dir: Path, slices: int = SLICES, size: int = SIZE) -> list[Path]:
    """A head-like phantom: air, skull ring, brain with noise; unsigned, intercept -1024."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, (xx - size / 2) * 1.15) / (size / 2)
    base = np.where(r < 0.8, 30, -1000).astype(np.int16)
    base[(r >= 0.8) & (r < 0.88)] = 1200
    hu = np.repeat(base[None], slices, axis=0)
    hu += rng.normal(0, 8, size=hu.shape).astype(np.int16)
    np.clip(hu, -1024, 3071, out=hu)  # unsigned pixels with intercept -1024 hold -1024..
    geometry = Geometry((-125.0, -125.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 5.0), (250 / size, 250 / size))
    spec = CTSeriesSpec(
        patient_id="BENCH-0001",
        study_uid=deterministic_uid("bench", "study"),
        series_uid=deterministic_uid("bench", "series"),
        frame_of_reference_uid=deterministic_uid("bench", "for"),
    )
    # file names in shuffled order so neither reader can rely on them
    order = rng.permutation(slices)
    names = [f"IM{int(i):05d}.dcm" for i in order]
    return write_ct_series(out_dir, hu, geometry, spec, file_names=names)


def ictview_read(folder: Path) -> np.ndarray:
    result = scan([folder])
    return read_series(result.series[0]).hu


def plain_pydicom_read(folder: Path) -> np.ndarray:
    """What a straightforward script does: read every file, sort by position, rescale."""
    datasets = [pydicom.dcmread(os.path.join(folder, f)) for f in os.listdir(folder)]
    iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float), normal)))
    out = np.empty((len(datasets), datasets[0].Rows, datasets[0].Columns), dtype=np.int16)
    for k, ds in enumerate(datasets):
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        out[k] = np.clip(np.rint(hu), -32768, 32767)
    return out


def read_bytes(folder: Path) -> int:
    """The floor: open and read every file."""
    total = 0
    for f in os.listdir(folder):
        with open(os.path.join(folder, f), "rb") as fp:
            total += len(fp.read())
    return total


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: page cache, imports, plugin discovery
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def bench_io(
    repeats: int = 15,
    workdir: Path | None = None,
    extra: dict[str, Callable[[], object]] | None = None,
) -> dict:
    """Time scan+read_series against a plain pydicom loop on one synthetic series."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="ictview-bench-io-") as tmp:
        folder = Path(tmp) / "series"
        bench_series(folder)
        a = ictview_read(folder)
        b = plain_pydicom_read(folder)
        identical = bool(np.array_equal(a, b))
        header = scan([folder]).series[0]
        times = {
            "ictview scan + read_series": _median_ms(lambda: ictview_read(folder), repeats),
            "  scan only": _median_ms(lambda: scan([folder]), repeats),
            "  read_series only": _median_ms(lambda: read_series(header), repeats),
            "plain pydicom loop": _median_ms(lambda: plain_pydicom_read(folder), repeats),
            "read file bytes only": _median_ms(lambda: read_bytes(folder), repeats),
        }
        for name, fn in (extra or {}).items():
            times[name] = _median_ms(fn, repeats)
    ours = times["ictview scan + read_series"]
    plain = times["plain pydicom loop"]
    result = {
        "series": f"{SLICES} slices {SIZE}x{SIZE} explicit VR little endian, uncompressed",
        "repeats": repeats,
        "times_ms": {k.strip(): round(v, 2) for k, v in times.items()},
        "ictview_ms": round(ours, 2),
        "pydicom_ms": round(plain, 2),
        "speedup": round(plain / ours, 2) if ours > 0 else None,
        "identical_volumes": identical,
    }
    print(f"bench io: {result['series']}; median of {repeats} after a warm-up")
    width = max(len(k) for k in times) + 2
    print(f"{'reader':<{width}}{'median ms':>10}  {'vs plain':>9}")
    for name, ms in times.items():
        print(f"{name:<{width}}{ms:>10.1f}  {plain / ms if ms > 0 else float('nan'):>8.1f}x")
    print(f"plain / ictview: {result['speedup']}x; same volume: {identical}")
    return result


if __name__ == "__main__":
    bench_io()
