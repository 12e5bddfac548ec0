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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ictview.store import arrays

CODECS = ("none", "lzf", "shuffle+lzf", "gzip-1", "shuffle+gzip-1", "gzip-4",
          "shuffle+gzip-4", "blosc-zstd-1", "blosc-zstd-3", "blosc-zstd-5")
CROP = 240


def add_bench_storage_parser(bsub) -> None:
    b = bsub.add_parser("storage", help="HDF5 codecs for volumes, labels and predictions: "
                        "bytes per voxel, write and read ms; compact pseudo-label bytes")
    from ictview.cli_support import positive_int

    b.add_argument("--slices", type=positive_int, default=24, help="slices per synthetic exam")
    b.add_argument("--repeats", type=positive_int, default=3)
    b.add_argument("--codecs", default=",".join(CODECS),
                   help=f"comma-separated subset of {', '.join(CODECS)}")


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


def _cases(exams, tmp: Path, codecs: list[str]) -> list[dict]:
    """One case per (codec, array kind, exam): how to write it, read it whole, per slice and
    per crop."""
    from ictview.core.geometry import Geometry

    geometry = Geometry((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 5.0),
                        (0.5, 0.5))
    cases = []
    for i, (_name, hu, lab) in enumerate(exams):
        prob = probability_like(hu, lab, i)
        scores = prob.max((1, 2)).astype(np.float32)
        sops = [str(k) for k in range(len(hu))]
        for codec in codecs:
            base = tmp / f"{codec}-{i}"
            cases += [
                {"codec": codec, "kind": "volume", "path": base.with_suffix(".vol.h5"),
                 "write": lambda p, c=codec, hu=hu: arrays.write_volume(p, hu, geometry, sops,
                                                                        {}, c),
                 "whole": arrays.read_volume, "slice": arrays.read_slice,
                 "crop": arrays.read_crop, "shape": hu.shape},
                {"codec": codec, "kind": "labels", "path": base.with_suffix(".lab.h5"),
                 "write": lambda p, c=codec, lab=lab: arrays.write_labels(p, lab, {}, c),
                 "whole": arrays.read_labels, "slice": arrays.read_label_slice,
                 "crop": arrays.read_label_slice, "shape": hu.shape},
                {"codec": codec, "kind": "prob", "path": base.with_suffix(".prob.h5"),
                 "write": lambda p, c=codec, prob=prob: arrays.write_prediction(
                     p, arrays.Prediction(prob, scores, 0.5), c),
                 "whole": arrays.read_prediction, "slice": arrays.read_prob_slice,
                 "crop": None, "shape": hu.shape},
            ]
    return cases


def _codec_rows(exams, tmp: Path, repeats: int, codecs: list[str]) -> list[dict]:
    """Every timing round goes over every case in turn (interleaved), so that a change of the
    machine's load during the run shifts all codecs alike; medians over the rounds."""
    cases = _cases(exams, tmp, codecs)
    for c in cases:
        c.update(write_ms=[], slice_ms=[], crop_ms=[], whole_ms=[])
    for _ in range(repeats):
        for c in cases:
            path, (z, h, w) = c["path"], c["shape"]
            c["write_ms"].append(_median_ms(lambda: c["write"](path), 1))
            y0 = (h - CROP) // 2
            win = slice(y0, y0 + CROP)
            for k in range(0, z, max(1, z // 8)):
                c["slice_ms"].append(_median_ms(lambda: c["slice"](path, k), 1))
                if c["crop"] is not None:
                    c["crop_ms"].append(_median_ms(lambda: c["crop"](path, k, win, win), 1))
            c["whole_ms"].append(_median_ms(lambda: c["whole"](path), 1))
    rows = []
    for codec in codecs:
        for kind in ("volume", "labels", "prob"):
            mine = [c for c in cases if c["codec"] == codec and c["kind"] == kind]
            rows.append({
                "codec": codec, "kind": kind,
                "bytes": sum(c["path"].stat().st_size for c in mine),
                "voxels": sum(int(np.prod(c["shape"])) for c in mine),
                **{key: [v for c in mine for v in c[f"{key}_ms"]]
                   for key in ("write", "slice", "crop", "whole")}})
    return rows


def bench_storage(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ictview-bench-storage-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        exams = synthetic_exams(tmp, args.slices)
        n_slices = sum(len(hu) for _, hu, _ in exams)
        print(f"{len(exams)} synthetic exams, {n_slices} slices of "
              f"{exams[0][1].shape[1]} x {exams[0][1].shape[2]} (generated and imported in "
              f"{time.perf_counter() - t0:.1f} s); medians of {args.repeats} interleaved rounds "
              f"(write and whole read per volume, slice and crop reads over 8 slices); "
              f"crop {CROP} x {CROP}; default codec: {arrays.CODEC}")
        codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
        for c in codecs:
            try:
                arrays.codec_options(c)
            except ValueError as e:
                print(f"ictview bench storage: error: {e}", file=sys.stderr)
                return 2
        rows = _codec_rows(exams, tmp, args.repeats, codecs)
        print(f"{'kind':<7} {'codec':<15} {'B/voxel':>8} {'write ms':>9} {'slice ms':>9} "
              f"{'crop ms':>8} {'whole ms':>9}")
        for r in rows:
            crop = f"{statistics.median(r['crop']):8.2f}" if r["crop"] else f"{'-':>8}"
            mark = " <- default" if r["codec"] == arrays.CODEC else ""
            print(f"{r['kind']:<7} {r['codec']:<15} {r['bytes'] / r['voxels']:8.3f} "
                  f"{statistics.median(r['write']):9.1f} {statistics.median(r['slice']):9.2f} "
                  f"{crop} {statistics.median(r['whole']):9.1f}{mark}")
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
