"""`generate(preset, out_dir, seed)`: the four sites written as real DICOM plus label files.

Everything random comes from numpy Generators seeded by (seed, site, exam,
stream), and every UID from `deterministic_uid`, so the same seed writes the
same bytes, whatever the number of worker processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from ictview.core.geometry import Geometry
from ictview.core.labels import BY_VALUE
from ictview.errors import IctviewError
from ictview.io.dicom_write import CTSeriesSpec, deterministic_uid, write_ct_series
from ictview.synth import anatomy, imaging, lesions, mimics, readers, writers
from ictview.synth.sites import (
    ELE, SITE_ORDER, SITES, THIN_THICKNESS_MM, Preset, Scanner, SiteProfile, exam_name,
)
from ictview.synth.sites import preset as get_preset

Progress = Callable[[int, int, str], None]
SITE_ID = {name: i for i, name in enumerate(SITE_ORDER)}
STREAM_PLAN, STREAM_EXAM, STREAM_NOISE, STREAM_THIN, STREAM_READS, STREAM_RETEST = range(6)
HU_MIN, HU_MAX = -1024, 3071


@dataclass(frozen=True)
class ExamPlan:
    site: str
    index: int  # 1-based within the site
    name: str
    subtypes: tuple[str, ...]  # planned (the truth is re-read from the rendered mask)
    pixel_labeled: bool = False
    category: str = ""  # cq500 batch B1 / B2


@dataclass
class ExamResult:
    name: str
    site: str
    subtypes: list[str]
    slices: int
    files: int
    thin_files: int = 0
    sop_uids: list[str] = field(default_factory=list)
    image_rows: list[tuple[str, int]] = field(default_factory=list)
    reads: dict | None = None
    category: str = ""
    pixel_labeled: bool = False
    retest_dice: list[float] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _seq(seed: int, site: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, SITE_ID[site], index, stream])


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def plan_site(site: SiteProfile, n: int, seed: int, n_pixel: int = 0) -> list[ExamPlan]:
    """Which exams are positive, with which subtypes; the cq500 pixel-labeled subset."""
    rng = _seq(seed, site.name, 0, STREAM_PLAN)
    n_pos = _round_half_up(n * site.positive_rate)
    if n >= 2:
        n_pos = min(n - 1, max(1, n_pos))  # every preset has positives and negatives
    order = rng.permutation(n)
    positive = set(int(i) for i in order[:n_pos])
    codes = list(site.subtype_rates)
    rates = np.array([site.subtype_rates[c] for c in codes])
    cond = np.clip(rates / site.positive_rate, 0, 0.95)
    # scale so the mean number of subtypes per positive exam is about subtypes_per_exam
    cond = np.clip(cond * site.subtypes_per_exam / max(cond.sum(), 1e-9), 0, 0.95)
    plans = []
    n_pix_pos = min(n_pos, math.ceil(n_pixel * site.positive_rate)) if n_pixel else 0
    pix_pos = [i for i in order[:n_pos]][:n_pix_pos]
    pix_neg = [i for i in order[n_pos:]][: max(0, n_pixel - n_pix_pos)]
    pixel = set(int(i) for i in pix_pos + pix_neg)
    for i in range(n):
        subtypes: tuple[str, ...] = ()
        if i in positive:
            pick = [c for c, p in zip(codes, cond) if rng.random() < p]
            if not pick:
                pick = [str(rng.choice(codes, p=rates / rates.sum()))]
            subtypes = tuple(c for c in codes if c in pick)
        category = ("B1" if rng.random() < 214 / 491 else "B2") if site.name == "cq500" else ""
        plans.append(
            ExamPlan(site.name, i + 1, exam_name(site, i + 1), subtypes, i in pixel, category)
        )
    return plans


# ---- one exam -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ExamSetup:
    head: anatomy.HeadParams
    scan: imaging.ScanParams
    mim: mimics.MimicParams
    scanner: Scanner
    kernel: str
    pixel_mm: float
    thickness_mm: float


def _render(setup: _ExamSetup, grid: anatomy.Grid, les: list[lesions.Lesion], with_labels: bool,
            renderer: anatomy.HeadRenderer | None = None):
    """Ideal HU of the head's box, labels and intracranial fraction (full matrix) of every
    slice of `grid`, and the box. A renderer of the same head and in-plane grid may be passed
    in (its per-head textures are costly to set up): retries and the thin series reuse it."""
    n = grid.matrix
    if renderer is None:
        renderer = anatomy.HeadRenderer(setup.head, grid)
    crop = renderer.crop
    ideal = np.empty((grid.slices, *renderer.shape), dtype=np.float32)
    labels = np.zeros((grid.slices, n, n), dtype=np.uint8) if with_labels else None
    ic = np.zeros((grid.slices, n, n), dtype=np.float32)
    for k, t in enumerate(grid.t):
        f = renderer.fields(t)
        mimics.paint_dura(f, setup.mim)
        lesions.paint_lesions(f, les, setup.head, grid.pixel_mm,
                              labels[k][crop] if with_labels else None)
        mimics.paint_calcifications(f, setup.mim, setup.head, grid)
        streak = mimics.streak_field(f, setup.mim, setup.head)
        if streak is not None:
            f.hu += streak
        ideal[k] = f.hu
        ic[k][crop] = f.intracranial
    return ideal, labels, ic, crop


def strip_mask(hu: np.ndarray, ic: np.ndarray) -> np.ndarray:
    """What atlantis' de-identification keeps: the intracranial content, minus the bone
    partial-volumed into its outer two pixels (a stripping tool cuts what looks like bone)."""
    keep = ic >= 0.5
    ring = np.zeros((1, 3, 3), dtype=bool)
    ring[0, 1, :] = ring[0, :, 1] = True
    inner = ndimage.binary_erosion(keep, structure=ring, iterations=2)
    keep &= ~(~inner & (hu > 100))
    return keep


def _to_stored_hu(img: np.ndarray, ic: np.ndarray, site: SiteProfile, scanner: Scanner,
                  labels: np.ndarray | None) -> np.ndarray:
    """Float HU -> int16 HU as the scanner (and, at atlantis, the de-identification) leaves it."""
    out = np.clip(np.rint(img), HU_MIN, HU_MAX)
    if not site.skull:
        keep = strip_mask(out, ic)
        out[~keep] = HU_MIN
        if labels is not None:
            labels[~keep] = 0
    fov = imaging.fov_mask(img.shape[-1])
    if scanner.pixel_padding_value is not None:
        pad_hu = scanner.pixel_padding_value + scanner.rescale_intercept
        out[:, ~fov] = pad_hu
    else:
        out[:, ~fov] = HU_MIN
    return out.astype(np.int16)


def _draw_lesions(plan: ExamPlan, rng: np.random.Generator, setup: _ExamSetup,
                  grid: anatomy.Grid, size: float) -> list[lesions.Lesion]:
    return [lesions.draw_lesion(k, rng, setup.head, grid, size) for k in plan.subtypes]


def _min_pixels(matrix: int) -> int:
    return max(4, int(4 * (matrix / 128) ** 2))


def _study_meta(rng: np.random.Generator, site: SiteProfile) -> dict:
    y0, y1 = site.years
    year = int(rng.integers(y0, y1 + 1))
    day = int(rng.integers(0, 365))
    date = np.datetime64(f"{year}-01-01") + np.timedelta64(day, "D")
    mean, sd = site.age
    age = int(np.clip(rng.normal(mean, sd), 18, 95))
    return {
        "study_date": str(date).replace("-", ""),
        "study_time": "".join(f"{int(rng.integers(0, m)):02d}" for m in (24, 60, 60)),
        "patient_age": f"{age:03d}Y",
        "patient_sex": "F" if rng.random() < site.female_rate else "M",
        "accession_number": f"{site.name[:3].upper()}{int(rng.integers(10**6, 10**7))}",
        "institution": str(rng.choice(list(site.institutions))),
    }


def _file_names(site: SiteProfile, sops: list[str], instances: list[int]) -> list[str]:
    if site.name == "kaggle":  # RSNA style: ID_<hash>.dcm, unrelated to slice order
        return [f"ID_{hashlib.sha1(u.encode()).hexdigest()[:9]}.dcm" for u in sops]
    if site.name == "atlantis":
        return [f"IM-0001-{i:04d}.dcm" for i in instances]
    return [f"CT{i - 1:06d}.dcm" for i in instances]


def synth_exam(plan: ExamPlan, size: Preset, seed: int, out: Path) -> ExamResult:
    site = SITES[plan.site]
    rng = _seq(seed, site.name, plan.index, STREAM_EXAM)
    head = anatomy.draw_head(rng, site)
    scan = imaging.draw_scan(rng, site)
    mim = mimics.draw_mimics(rng, site, head)
    # scanners cycle with the exam index like transfer syntaxes: every preset shows them all
    scanner = site.scanners[(plan.index - 1) % len(site.scanners)]
    kernel = str(rng.choice(list(scanner.kernels)))
    fov = rng.uniform(*site.fov_mm)
    pixel_mm = round(fov / size.matrix, 4)
    thickness = float(rng.choice(list(site.slice_thickness)))
    setup = _ExamSetup(head, scan, mim, scanner, kernel, pixel_mm, thickness)
    meta = _study_meta(rng, site)
    grid = anatomy.thick_grid(head, size.matrix, pixel_mm, size.slices, thickness)

    # lesions: redraw any that does not show on the grid (too small, or outside the stack)
    # a quarter of the positive exams only have subtle (small) lesions
    les_size = float(rng.uniform(0.3, 0.6)) if rng.random() < 0.25 else 1.0
    les = _draw_lesions(plan, rng, setup, grid, les_size)
    min_px = _min_pixels(size.matrix)
    renderer = anatomy.HeadRenderer(head, grid)
    for attempt in range(6):
        ideal, labels, ic, crop = _render(setup, grid, les, True, renderer)
        if not site.skull:  # the stripped edge may still cut a lesion: checked again below
            labels[ic < 0.5] = 0
        counts = np.bincount(labels.ravel(), minlength=6)
        missing = [i for i, l in enumerate(les) if counts[l.label] < min_px]
        if not missing:
            break
        for i in missing:
            kind = les[i].kind
            if attempt >= 3 and kind in ("SAH", "IVH", "EDH", "SDH"):
                kind = "IPH" if not any(l.kind == "IPH" for l in les) else kind
            les[i] = lesions.draw_lesion(kind, rng, head, grid, les_size if attempt < 2 else 1.0)

    img = imaging.reconstruct_fov(ideal, crop, size.matrix, grid.t, scan, pixel_mm, thickness,
                                  _seq(seed, site.name, plan.index, STREAM_NOISE))
    hu = _to_stored_hu(img, ic, site, scanner, labels)
    present = [BY_VALUE[v].code for v in sorted(set(np.unique(labels).tolist()) & set(BY_VALUE))]

    # ---- DICOM -------------------------------------------------------------------------------
    n = size.matrix
    ox = round(float(rng.normal(0, 2.0)), 2)
    oy = round(float(rng.normal(0, 2.0)), 2)
    z0 = round(float(rng.uniform(-60.0, 20.0)), 1)
    x0 = round(-(n - 1) / 2 * pixel_mm + ox, 3)
    y0 = round(-(n - 1) / 2 * pixel_mm + oy, 3)
    geom = Geometry((x0, y0, z0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, thickness),
                    (pixel_mm, pixel_mm))
    uid = lambda *p: deterministic_uid("ictview-synth", seed, plan.name, *p)  # noqa: E731
    study_uid, frame_uid = uid("study"), uid("frame")
    ts = site.transfer_syntaxes[(plan.index - 1) % len(site.transfer_syntaxes)]

    def spec(series_uid: str, number: int, desc: str, thick: float, sops: list[str],
             ts: str = ts) -> CTSeriesSpec:
        return CTSeriesSpec(
            patient_id=plan.name, study_uid=study_uid, series_uid=series_uid,
            frame_of_reference_uid=frame_uid, accession_number=meta["accession_number"],
            study_id=str(plan.index), study_date=meta["study_date"], study_time=meta["study_time"],
            series_number=number, series_description=desc, manufacturer=scanner.manufacturer,
            model_name=scanner.model, institution_name=meta["institution"],
            convolution_kernel=kernel, kvp=scanner.kvp, slice_thickness=thick,
            rescale_intercept=scanner.rescale_intercept,
            pixel_representation=scanner.pixel_representation, transfer_syntax=ts,
            window_center=scanner.window[0], window_width=scanner.window[1],
            patient_sex=meta["patient_sex"], patient_age=meta["patient_age"],
            pixel_padding_value=scanner.pixel_padding_value, sop_uids=sops,
        )

    def instances(count: int) -> list[int]:
        up = list(range(1, count + 1))
        return up[::-1] if scanner.instance_order_down else up

    series_uid = uid("series", 2)
    sops = [deterministic_uid(series_uid, k) for k in range(size.slices)]
    inst = instances(size.slices)
    thick_label = f"{thickness:g}mm"
    if site.name == "cq500":
        exam_dir = out / site.name / "dicom" / plan.name / f"CT-{thick_label}"
        desc = f"CT {thick_label}"
    else:
        exam_dir = out / site.name / "dicom" / plan.name
        desc = f"HEAD {thick_label}" + (" BRAIN ONLY" if not site.skull else "")
    write_ct_series(exam_dir, hu, geom, spec(series_uid, 2, desc, thickness, sops),
                    instance_numbers=inst, file_names=_file_names(site, sops, inst))
    result = ExamResult(plan.name, site.name, present, size.slices, size.slices, sop_uids=sops,
                        category=plan.category, pixel_labeled=plan.pixel_labeled)

    if site.role in ("labeled", "validation") or plan.pixel_labeled:
        writers.write_mask(out / site.name / "masks" / f"{plan.name}.nii.gz", labels, geom)
    if site.name == "kaggle":
        result.image_rows = writers.rsna_rows(sops, labels)

    # ---- cq500: thin series, reads, retest ----------------------------------------------------
    if site.thin_series and size.thin_slices:
        tgrid = anatomy.thin_grid(grid, size.thin_slices, THIN_THICKNESS_MM)
        t_ideal, _, t_ic, t_crop = _render(setup, tgrid, les, False, renderer)
        t_img = imaging.reconstruct_fov(t_ideal, t_crop, size.matrix, tgrid.t, scan, pixel_mm,
                                        THIN_THICKNESS_MM,
                                        _seq(seed, site.name, plan.index, STREAM_THIN))
        t_hu = _to_stored_hu(t_img, t_ic, site, scanner, None)
        zmid = z0 + (size.slices - 1) / 2 * thickness
        tz0 = round(zmid - (size.thin_slices - 1) / 2 * THIN_THICKNESS_MM, 4)
        tgeom = Geometry((x0, y0, tz0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                         (0.0, 0.0, THIN_THICKNESS_MM), (pixel_mm, pixel_mm))
        t_uid = uid("series", 3)
        t_sops = [deterministic_uid(t_uid, k) for k in range(size.thin_slices)]
        t_inst = instances(size.thin_slices)
        write_ct_series(out / site.name / "dicom" / plan.name / "CT-0.625mm", t_hu, tgeom,
                        spec(t_uid, 3, "CT 0.625mm", THIN_THICKNESS_MM, t_sops, ELE),
                        instance_numbers=t_inst, file_names=_file_names(site, t_sops, t_inst))
        result.thin_files = size.thin_slices
        result.files += size.thin_slices
    if site.name == "cq500":
        voxel_ml = pixel_mm * pixel_mm * thickness / 1000.0
        midline = (n - 1) / 2 + head.cx / pixel_mm
        findings = readers.findings_from_mask(labels, voxel_ml, midline)
        r_rng = _seq(seed, site.name, plan.index, STREAM_READS)
        fracture_p = 0.7 if "EDH" in present else 0.3 if present else 0.03
        fracture = bool(r_rng.random() < fracture_p)
        truth = readers.ExamTruth(findings, mim.score, fracture, bool(r_rng.random() < 0.7))
        result.reads = readers.read_exam(truth, r_rng)
        if plan.pixel_labeled:
            allowed = ic >= 0.5
            rt_rng = _seq(seed, site.name, plan.index, STREAM_RETEST)
            reps = [readers.repeat_segmentation(labels, allowed, rt_rng, pixel_mm)
                    for _ in range(3)]
            for i, rep in enumerate(reps, start=1):
                writers.write_mask(out / site.name / "retest" / f"rep{i}" / f"{plan.name}.nii.gz",
                                   rep, geom)
            if labels.any():
                result.retest_dice = [readers.dice(reps[a], reps[b])
                                      for a, b in ((0, 1), (0, 2), (1, 2))]

    result.info = {
        "manufacturer": scanner.manufacturer, "model": scanner.model, "kernel": kernel,
        "transfer_syntax": str(ts), "pixel_mm": pixel_mm, "slice_thickness": thickness,
        "noise_hu": round(scan.noise_hu, 2), "hu_offset": round(scan.hu_offset, 2),
        "mimic_score": round(mim.score, 3), "lesion_pixels": int((labels > 0).sum()),
    }
    return result


def _synth_exam_job(args: tuple) -> ExamResult:
    return synth_exam(*args)


# ---- the whole data set ------------------------------------------------------------------------


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise IctviewError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        manifest = out / "manifest.json"
        is_ours = False
        if manifest.exists():
            try:
                is_ours = json.loads(manifest.read_text()).get("generator") == "ictview-synth"
            except (OSError, ValueError):
                is_ours = False
        if not (overwrite and is_ours):
            raise IctviewError(
                f"{out}: folder is not empty (use a new folder"
                + (", or --overwrite (overwrite=True) to replace this earlier synth output)" if is_ours else ")")
            )
        manifest.unlink()
        for name in SITE_ORDER:
            if (out / name).exists():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)


def generate(preset: str, out_dir: str | Path, seed: int = 0, progress: Progress | None = None,
             *, workers: int = 1, overwrite: bool = False) -> dict:
    """Writes the synthetic multi-site data set under out_dir and returns its manifest.

    workers > 1 renders exams in parallel processes (same bytes as workers = 1)."""
    size = get_preset(preset)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise IctviewError(f"seed {seed!r}: must be a non-negative integer")
    seed = int(seed)
    out = Path(out_dir)
    _prepare_out(out, overwrite)

    plans: list[ExamPlan] = []
    for name in SITE_ORDER:
        n_pix = size.cq500_pixel_labeled if name == "cq500" else 0
        plans += plan_site(SITES[name], size.exams[name], seed, n_pix)
    total = len(plans)
    if progress:
        progress(0, total, "planning")
    jobs = [(p, size, seed, out) for p in plans]
    results: list[ExamResult] = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, res in enumerate(pool.map(_synth_exam_job, jobs), start=1):
                results.append(res)
                if progress:
                    progress(i, total, f"{res.site} {res.name}")
    else:
        for i, job in enumerate(jobs, start=1):
            res = _synth_exam_job(job)
            results.append(res)
            if progress:
                progress(i, total, f"{res.site} {res.name}")

    manifest = _write_labels_and_manifest(out, preset, seed, size, results)
    return manifest


def _write_labels_and_manifest(out: Path, preset: str, seed: int, size: Preset,
                               results: list[ExamResult]) -> dict:
    by_site = {s: [r for r in results if r.site == s] for s in SITE_ORDER}
    sites: dict[str, dict] = {}
    for name in SITE_ORDER:
        site, rs = SITES[name], by_site[name]
        entry: dict = {"role": site.role, "dicom": f"{name}/dicom"}
        if name in ("atlantis", "validation"):
            entry["masks"] = f"{name}/masks"
        if name == "kaggle":
            rows = [row for r in rs for row in r.image_rows]
            writers.write_rsna_csv(out / name / "labels.csv", rows)
            entry["labels_csv"] = f"{name}/labels.csv"
            entry["images"] = len(rows) // 6
            entry["positive_images"] = sum(v for k, v in rows if k.endswith("_any"))
        if name == "cq500":
            header = readers.reads_header()
            table = []
            for r in rs:
                row: list[object] = [r.name, r.category]
                for reader in readers.READER_NAMES:
                    row += [r.reads[reader][c] for c in readers.CQ500_COLUMNS]
                table.append(row)
            writers.write_reads_csv(out / name / "reads.csv", header, table)
            entry["reads_csv"] = f"{name}/reads.csv"
            entry["masks"] = f"{name}/masks"
            entry["retest"] = [f"{name}/retest/rep{i}" for i in (1, 2, 3)]
            entry["pixel_labeled_exams"] = sum(r.pixel_labeled for r in rs)
            entry["thin_series"] = sum(1 for r in rs if r.thin_files)
            entry["thin_series_files"] = sum(r.thin_files for r in rs)
            entry["reads_positive_exams"] = sum(readers.majority_ich(r.reads) for r in rs)
            dices = [d for r in rs for d in r.retest_dice]
            if dices:
                entry["retest_dice_mean"] = round(float(np.mean(dices)), 4)
        entry["exams"] = len(rs)
        entry["slices"] = sum(r.slices for r in rs)
        entry["positive_exams"] = sum(bool(r.subtypes) for r in rs)
        entry["dicom_files"] = sum(r.files for r in rs)
        sites[name] = entry

    exams = []
    for r in results:
        e = {"name": r.name, "site": r.site, "positive": bool(r.subtypes), "subtypes": r.subtypes,
             "slices": r.slices}
        if r.site == "cq500":
            e["reads_positive"] = readers.majority_ich(r.reads)
            e["category"] = r.category
            e["pixel_labeled"] = r.pixel_labeled
        e.update(r.info)
        exams.append(e)
    manifest = {"generator": "ictview-synth", "version": 1, "preset": preset, "seed": seed,
                "matrix": size.matrix, "sites": sites, "exams": exams}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
