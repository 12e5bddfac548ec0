"""What the catalog's checksums cost: `python -m ictview.store.bench_checksum [--repeats N]`.

Prints medians for one 40 x 512 x 512 exam (the size DESIGN.md budgets for), each
against the operation it is part of, measured in the same run: the volume write of an
import (temp file, fsync, rename) with its sha1, the sha1 alone, crc32 of the same
bytes for comparison, a label save (journal-era autosave) and its share of hashing,
and a volume read plain vs verified (export's read).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from ictview.core.geometry import Geometry
from ictview.store import arrays
from ictview.store.workspace import NewExam, Workspace


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run(repeats: int = 9, shape=(40, 512, 512)) -> list[str]:
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 1500, size=shape, dtype=np.int16)
    g = Geometry((-128.0, -128.0, 0.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.5, 0.5))
    sops = [f"1.2.3.{k}" for k in range(shape[0])]
    labels = np.zeros(shape, np.uint8)
    labels[10:20, 200:260, 200:260] = 4
    out = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        ws = Workspace.create(root / "ws")
        ws.ensure_site("s", "labeled")
        ws.add_exam(NewExam(name="EX", site="s", hu=hu, geometry=g, sop_uids=sops,
                            positions=[5.0 * k for k in range(shape[0])], patient_id="P",
                            study_uid="1.2", series_uid="1.2.1"))
        vpath = root / "v.h5"
        t_write = _median_ms(lambda: arrays.write_volume(vpath, hu, g, sops, {}), repeats)
        t_sha = _median_ms(lambda: arrays.file_sha1(vpath), repeats)
        data = vpath.read_bytes()
        t_crc = _median_ms(lambda: zlib.crc32(data), repeats)
        mb = len(data) / 1e6
        out.append(f"volume {shape[0]}x{shape[1]}x{shape[2]} int16 ({mb:.1f} MB): atomic write "
                   f"incl. sha1 {t_write:.1f} ms; sha1 alone {t_sha:.1f} ms "
                   f"({100 * t_sha / t_write:.0f}% of the write, {mb / t_sha:.2f} GB/s); "
                   f"crc32 of the same bytes {t_crc:.1f} ms")
        t_save = _median_ms(lambda: ws.save_labels("r", "EX", labels, "bench"), repeats)
        lpath = ws.label_path("r", "EX")
        t_lsha = _median_ms(lambda: arrays.file_sha1(lpath), repeats)
        out.append(f"label save (lzf, {lpath.stat().st_size / 1e3:.0f} kB file, catalog commit): "
                   f"{t_save:.1f} ms; its sha1 {t_lsha:.2f} ms "
                   f"({100 * t_lsha / t_save:.1f}%)")
        t_read = _median_ms(lambda: ws.read_volume("EX"), repeats)
        t_vread = _median_ms(lambda: ws.read_volume("EX", verify=True), repeats)
        out.append(f"volume read: plain {t_read:.1f} ms, verified against the catalog "
                   f"{t_vread:.1f} ms (export's read; the GUI verifies in the background)")
        ws.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ictview.store.bench_checksum")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    for line in run(args.repeats):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
