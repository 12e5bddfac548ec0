"""`ictview bench storage`: the codec of the workspace's arrays, chosen by these figures.

Synthetic 512 x 512 exams from the project's generator (one with a skull, one skull-stripped
with lesions and reference labels) are imported through the real importer; then each array
kind (int16 HU, uint8 labels, float16 probabilities) is written with every codec through
`ictview.store.arrays` and read back three ways: one slice (what a sampler or the viewer
needs), one 240 x 240 crop, the whole volume. Printed: bytes per voxel, write ms per volume,
read ms. Then the compact pseudo-labels of a pseudolabel run (thresholded targets of the
slices with any pixel >= k_lo) in bytes per slice against the float16 maps (raw: the upper
bound; compressed with the chosen codec: the previous format's pseudolabel run).

The probability maps are not a network's (the bench trains nothing): a sigmoid of the blurred
reference label plus smooth noise inside the head, quantised to float16 like the network's
output, which puts low-amplitude, not-quite-zero values on every brain pixel, as a teacher's
output has. Their sizes are an estimate; the HU and label figures are the real thing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ictview.store import arrays

CODECS = ("none", "lzf", "shuffle+lzf", "gzip-1", "shuffle+gzip-1", "gzip-4",
          "shuffle+gzip-4", "blosc-zstd-1", "blosc-zstd-5")
CROP = 240


def add_bench_storage_parser(bsub) -> None:
    b = bsub.add_parser("storage", help="HDF5 codecs for volumes, labels and predictions: "
                        "bytes per voxel, write and read ms; compact pseudo-label bytes")
    b.add_argument("--slices", type=int, default=24, help="slices per synthetic exam")
    b.add_argument("--repeats", type=int, default=3)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def synthetic_exams(tmp: Path, slices: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HU, labels) of two 512 x 512 generator exams imported into a workspace."""
    from ictview.io.importers import ImportOptions, MaskSource, import_source
    from ictview.store.workspace import Workspace
    from ictview.synth.generate import plan_site, synth_exam
    from ictview.synth.sites import SITES, Preset

    size = Preset(512, slices, 0, {}, 0)
    out = tmp / "synth"
    plans = {"kaggle": plan_site(SITES["kaggle"], 2, 0)[0],
             "atlantis": next(p for p in plan_site(SITES["atlantis"], 4, 0) if p.subtypes)}
    for plan in plans.values():
        synth_exam(plan, size, 0, out)
    exams = []
    with Workspace.create(tmp / "ws") as ws:
        for site, plan in plans.items():
            masks = [MaskSource("reference", out / site / "masks")] if site == "atlantis" else []
            import_source(ws, [out / site / "dicom" / plan.name],
                          ImportOptions(site, "labeled" if masks else "unlabeled", masks=masks))
        for e in ws.exams():
            hu = ws.read_volume(e.name).hu
            lab = ws.load_labels("reference", e.name)
            exams.append((e.name, hu, np.zeros(hu.shape, np.uint8) if lab is None else lab))
    return exams


def probability_like(hu: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A float16 map shaped like a teacher's output (see the module docstring)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    lesion = ndimage.gaussian_filter(((labels > 0) & (labels != 255)).astype(np.float32),
                                     (0, 2, 2))
    noise = ndimage.gaussian_filter(rng.normal(0, 1, hu.shape).astype(np.float32), (0, 3, 3))
    logit = -7.0 + 14.0 * lesion + 8.0 * noise
    p = 1.0 / (1.0 + np.exp(-logit))
    return np.where(hu > -200, p, 0.0).astype(np.float16)


def _codec_rows(exams, tmp: Path, repeats: int) -> list[dict]:
    from ictview.core.geometry import Geometry

    geometry = Geometry((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 5.0),
                        (0.5, 0.5))
    rows = []
    for codec in CODECS:
        for kind in ("volume", "labels", "prob"):
            row = {"codec": codec, "kind": kind, "bytes": 0, "voxels": 0, "write": [],
                   "slice": [], "crop": [], "whole": []}
            for i, (name, hu, lab) in enumerate(exams):
                path = tmp / f"{codec}-{kind}-{i}.h5"
                if kind == "volume":
                    def write(hu=hu, path=path):
                        arrays.write_volume(path, hu, geometry, [str(k) for k in
                                                                  range(len(hu))], {}, codec)
                    whole, one = arrays.read_volume, arrays.read_slice
                    crop = arrays.read_crop
                elif kind == "labels":
                    def write(lab=lab, path=path):
                        arrays.write_labels(path, lab, {}, codec)
                    whole, one = arrays.read_labels, arrays.read_label_slice

                    def crop(p, k, r, c):
                        return arrays.read_label_slice(p, k, r, c)
                else:
                    prob = probability_like(hu, lab, i)

                    def write(prob=prob, path=path):
                        arrays.write_prediction(path, arrays.Prediction(
                            prob, prob.max((1, 2)).astype(np.float32), 0.5), codec)
                    whole, one = arrays.read_prediction, arrays.read_prob_slice
                    crop = None
                row["write"].append(_median_ms(write, repeats))
                row["bytes"] += path.stat().st_size
                row["voxels"] += hu.size
                ks = range(len(hu))
                row["slice"].append(statistics.median(
                    _median_ms(lambda k=k: one(path, k), repeats) for k in ks))
                y0 = (hu.shape[1] - CROP) // 2
                win = slice(y0, y0 + CROP)
                if crop is not None:
                    row["crop"].append(statistics.median(
                        _median_ms(lambda k=k: crop(path, k, win, win), repeats) for k in ks))
                row["whole"].append(_median_ms(lambda: whole(path), repeats))
            rows.append(row)
    return rows


def bench_storage(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ictview-bench-storage-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        exams = synthetic_exams(tmp, args.slices)
        n_slices = sum(len(hu) for _, hu, _ in exams)
        print(f"{len(exams)} synthetic exams, {n_slices} slices of "
              f"{exams[0][1].shape[1]} x {exams[0][1].shape[2]} (generated and imported in "
              f"{time.perf_counter() - t0:.1f} s); medians of {args.repeats} repeats; "
              f"crop {CROP} x {CROP}; default codec: {arrays.CODEC}")
        rows = _codec_rows(exams, tmp, args.repeats)
        print(f"{'kind':<7} {'codec':<15} {'B/voxel':>8} {'write ms':>9} {'slice ms':>9} "
              f"{'crop ms':>8} {'whole ms':>9}")
        for r in rows:
            crop = f"{statistics.median(r['crop']):8.2f}" if r["crop"] else f"{'-':>8}"
            mark = " <- default" if r["codec"] == arrays.CODEC else ""
            print(f"{r['kind']:<7} {r['codec']:<15} {r['bytes'] / r['voxels']:8.3f} "
                  f"{statistics.mean(r['write']):9.1f} {statistics.median(r['slice']):9.2f} "
                  f"{crop} {statistics.mean(r['whole']):9.1f}{mark}")
        _compact(exams, tmp)
    return 0


def _compact(exams, tmp: Path, k_hi: float = 0.7, k_lo: float = 0.3) -> None:
    """Bytes per slice of a pseudolabel run: compact targets vs float16 probabilities."""
    from ictview.core.labels import IGNORE

    n, compact, f16 = 0, 0, 0
    for i, (name, hu, lab) in enumerate(exams):
        prob = probability_like(hu, lab, i)
        scores = prob.max((1, 2)).astype(np.float32)
        p = prob.astype(np.float32)
        t = np.full(p.shape, IGNORE, np.uint8)
        t[p > k_hi], t[p < k_lo] = 1, 0
        keep = np.flatnonzero(t.reshape(len(t), -1).any(axis=1))
        targets = arrays.CompactTargets(prob.shape, keep, t[keep], k_hi, k_lo)
        a, b = tmp / f"compact-{i}.h5", tmp / f"f16-{i}.h5"
        arrays.write_prediction(a, arrays.Prediction(np.empty((0, 0, 0), np.float16), scores,
                                                     0.5, {}, targets))
        arrays.write_prediction(b, arrays.Prediction(prob, scores, 0.5))
        n += len(prob)
        compact += a.stat().st_size
        f16 += b.stat().st_size
        print(f"compact pseudo-labels, {name}: {len(keep)} of {len(prob)} slices have a "
              f"target that is not all 0")
    raw = 2 * exams[0][1].shape[1] * exams[0][1].shape[2]
    print(f"pseudolabel run, bytes per slice: compact targets {compact / n:,.0f}; float16 "
          f"{arrays.CODEC} {f16 / n:,.0f}; float16 upper bound {raw:,} "
          f"(compact = {100 * compact / n / raw:.2f} % of the upper bound, "
          f"{100 * compact / f16:.1f} % of float16 {arrays.CODEC})")
