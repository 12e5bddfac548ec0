"""`ictview import-predictions WS --run NAME --from DIR [--kind probability|labels]`.

Brings another model's output (nnU-Net, MONAI, anything writing NIfTI) into the workspace as
a run of kind "external", stored exactly like ictview's own runs (WS/predictions/<run>/
<exam>.h5 through `Workspace.write_prediction`), so review, compare, the dashboard and
`ictview-train report` read it like any other run.

Files: every `*.nii.gz` / `*.nii` under DIR (subfolders too: MONAI's SaveImage writes
`<exam>/<exam>_seg.nii.gz`). A file belongs to the exam whose name is its name without the
extension and without one of the suffixes `_seg`, `_pred`, `_prob`, `_trans`, `_0000`
(nnU-Net names outputs `<case>.nii.gz`, cases being exam names in `ictview export --format
nnunet`). Files naming no exam are listed and skipped.

Geometry: a file must lie on its exam's grid: the same shape and the same voxel-to-world
affine (within 0.05 mm, `affines_match`) as the stored volume's `Geometry.affine_ras()`. A
file stored in another axis order or orientation (e.g. MONAI's `Orientationd(axcodes="RAS")`
saved without inverting) is reoriented first (nibabel orientation transforms: a permutation
and flips, no resampling); whatever still differs is a mismatch, reported one line per file
naming the file, the exam and what differs. Mismatched files are not imported.

Kinds:
- probability: floats in [0, 1]. nnU-Net's `--save_probabilities` output is used as is:
  for `<case>.nii.gz` with a `<case>.npz` beside it, P(hemorrhage) = 1 - the npz's
  background channel, the grid being checked on the .nii.gz (the .pkl is never unpickled).
  Otherwise: A 3D map is P(hemorrhage); a 4D map (x, y, z, C) holds
  class probabilities with channel 0 background, and P(hemorrhage) = 1 - P(background), the
  same reduction ictview's own inference uses (`training.inference.hemorrhage_probability`).
- labels: an integer label map (nnU-Net's default output, MONAI's argmax): P = 1 where the
  label is a hemorrhage class (1..5), 0 elsewhere (0, and an ignore value 6 or 255).

Scores (as ictview derives them for its own runs with `inference.slice_score = max_pixel`,
`inference.exam_score = max`, see training/inference.py): the slice score is the highest
pixel probability in the slice, the exam score the highest slice score. (ictview's default
slice score comes from its patch classification head, which an external model does not
have.) Unlike ictview's own inference, pixels outside the brain are kept as the model gave
them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ictview.core.geometry import Geometry, affines_match, nifti_to_zyx
from ictview.core.labels import LABEL_CLASSES
from ictview.errors import IctviewError
from ictview.store import arrays
from ictview.store.workspace import Workspace

KINDS = ("probability", "labels")
RUN_KIND = "external"
SUFFIXES = ("_seg", "_pred", "_prob", "_trans", "_0000")
CLASS_VALUES = tuple(c.value for c in LABEL_CLASSES)
_EXT = re.compile(r"\.nii(\.gz)?$")


@dataclass
class PredictionImportReport:
    run: str
    imported: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # one line each: file: problem
    unmatched_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def exam_for(path: Path, exams: set[str]) -> str | None:
    stem = _EXT.sub("", path.name)
    if stem in exams:
        return stem
    for suffix in SUFFIXES:
        if stem.endswith(suffix) and stem[: -len(suffix)] in exams:
            return stem[: -len(suffix)]
    return None


def _reorient(data: np.ndarray, affine: np.ndarray, target: np.ndarray):
    """(data, affine) in the target's axis order and directions (no resampling)."""
    import nibabel as nib

    src = nib.orientations.io_orientation(affine)
    dst = nib.orientations.io_orientation(target)
    if np.array_equal(src, dst):
        return data, affine
    transform = nib.orientations.ornt_transform(src, dst)
    out = nib.orientations.apply_orientation(data, transform)
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, data.shape[:3])
    return out, new_affine


def _geometry_problem(shape, affine, geometry: Geometry, want_xyz) -> str | None:
    if tuple(shape[:3]) != tuple(want_xyz):
        return f"shape {tuple(shape[:3])} (x, y, z) != exam {tuple(want_xyz)}"
    target = geometry.affine_ras()
    if not affines_match(affine, target):
        off = float(np.abs(np.asarray(affine)[:3, 3] - target[:3, 3]).max())
        spacing = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
        want = np.linalg.norm(target[:3, :3], axis=0)
        return (f"affine differs from the exam's (origin off by {off:.3g} mm; voxel size "
                f"{np.round(spacing, 3).tolist()} vs {np.round(want, 3).tolist()} mm)")
    return None


def _probability(data: np.ndarray, kind: str) -> tuple[np.ndarray | None, str | None]:
    """(x, y, z[, C]) data -> P(hemorrhage) (x, y, z) float32, or a problem."""
    if kind == "labels":
        if data.ndim != 3:
            return None, f"a label map must be 3D, got shape {data.shape}"
        if not np.allclose(data, np.round(data)):
            return None, "not an integer label map (use --kind probability)"
        return np.isin(np.round(data).astype(np.int64), CLASS_VALUES).astype(np.float32), None
    data = np.asarray(data, np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        data = 1.0 - data[..., 0]  # channel 0 = background
    elif data.ndim != 3:
        return None, f"expected a 3D map or 4D class probabilities, got shape {data.shape}"
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    if not np.isfinite(data).all() or lo < -1e-3 or hi > 1 + 1e-3:
        hint = " (an integer label map? use --kind labels)" if hi > 1 else ""
        return None, f"values in [{lo:.3g}, {hi:.3g}] are not probabilities{hint}"
    return np.clip(data, 0.0, 1.0), None


def _nnunet_probabilities(npz: Path, shape_zyx) -> tuple[np.ndarray | None, str | None]:
    """nnU-Net's `--save_probabilities` output: `probabilities` (C, z, y, x), in the array
    order nnU-Net's SimpleITK reader gives the NIfTI it predicted, i.e. ictview's (z, y, x);
    channel 0 is background. (The .pkl beside it is never unpickled: the grid is checked on
    the .nii.gz nnU-Net writes with it.)"""
    try:
        with np.load(npz, allow_pickle=False) as f:
            probs = f["probabilities"]
    except (OSError, ValueError, KeyError) as e:
        return None, f"not an nnU-Net probability file ({e.__class__.__name__})"
    if probs.ndim != 4 or tuple(probs.shape[1:]) != tuple(shape_zyx):
        return None, f"probabilities of shape {probs.shape} do not fit (C, {shape_zyx})"
    p = 1.0 - np.asarray(probs[0], np.float32)
    if not np.isfinite(p).all() or p.min() < -1e-3 or p.max() > 1 + 1e-3:
        return None, "channel 0 is not a probability map"
    return np.clip(p, 0.0, 1.0), None


def prediction_from(prob_zyx: np.ndarray, attrs: dict) -> arrays.Prediction:
    """Scores as for ictview's own runs with slice_score=max_pixel, exam_score=max."""
    prob = prob_zyx.astype(np.float16)
    slice_scores = prob.reshape(prob.shape[0], -1).max(axis=1).astype(np.float32)
    exam = float(slice_scores.max()) if slice_scores.size else 0.0
    return arrays.Prediction(prob, slice_scores, exam, attrs)


def import_predictions(ws: Workspace, run: str, folder: Path, kind: str = "probability",
                       progress=None) -> PredictionImportReport:
    import nibabel as nib

    if kind not in KINDS:
        raise IctviewError(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise IctviewError(f"{folder}: folder not found")
    existing = ws.run(run)
    if existing and existing["kind"] != RUN_KIND:
        raise IctviewError(f"{ws.root}: run '{run}' exists and is a {existing['kind']} run "
                           "(choose another --run name)")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _EXT.search(p.name))
    if not files:
        raise IctviewError(f"{folder}: no NIfTI files (*.nii.gz, *.nii) found")
    names = {e.name for e in ws.exams()}
    report = PredictionImportReport(run)
    todo = []
    for p in files:
        exam = exam_for(p, names)
        if exam is None:
            report.unmatched_files.append(str(p))
        else:
            todo.append((p, exam))
    if not todo:
        raise IctviewError(f"{folder}: none of the {len(files)} NIfTI file(s) is named after "
                           f"an exam of {ws.root} (e.g. {files[0].name})")
    config = {"source": str(folder.resolve()), "prediction_kind": kind,
              "inference": {"slice_score": "max_pixel", "exam_score": "max"},
              "imported_by": "ictview import-predictions"}
    created = False
    for i, (path, exam) in enumerate(todo):
        if progress:
            progress(i, len(todo), "import predictions")
        try:
            img = nib.load(str(path))
            data = np.asanyarray(img.dataobj)
        except Exception as e:  # noqa: BLE001 - a torn or foreign file: one line, go on
            report.mismatched.append(f"{path}: unreadable NIfTI ({e.__class__.__name__})")
            continue
        e = ws.exam(exam)
        geometry = ws.read_volume(exam).geometry
        data, affine = _reorient(data, img.affine, geometry.affine_ras())
        problem = _geometry_problem(data.shape, affine, geometry, (e.cols, e.rows, e.n_slices))
        prob_zyx, source = None, path
        npz = path.with_name(_EXT.sub("", path.name) + ".npz")
        if problem is None and kind == "probability" and npz.is_file():
            prob_zyx, problem = _nnunet_probabilities(npz, (e.n_slices, e.rows, e.cols))
            source = npz
        elif problem is None:
            prob, problem = _probability(data, kind)
            prob_zyx = None if prob is None else nifti_to_zyx(prob)
        if problem is not None:
            report.mismatched.append(f"{source}: exam '{exam}': {problem}")
            continue
        if not created:  # the run exists only once something is in it
            ws.create_run(run, RUN_KIND, config)
            created = True
        ws.write_prediction(run, exam, prediction_from(
            prob_zyx, {"exam": exam, "source_file": str(source.resolve()),
                       "prediction_kind": kind}))
        report.imported.append(exam)
    if progress:
        progress(len(todo), len(todo), "import predictions")
    if not report.imported:
        first = report.mismatched[0] if report.mismatched else "nothing to import"
        raise IctviewError(f"imported no prediction: {len(report.mismatched)} file(s) "
                           f"mismatched (first: {first})")
    ws.set_run_status(run, "finished", config)
    ws.audit("import-predictions", "import_predictions", None,
             f"run {run}: {len(report.imported)} exam(s) from {folder.resolve()}")
    return report


def add_import_predictions_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "import-predictions",
        help="bring another model's NIfTI predictions (nnU-Net, MONAI) in as a run",
        description="Import NIfTI predictions named after the exams (<exam>.nii.gz, also "
        "<exam>_seg.nii.gz, in subfolders too) as run NAME of kind 'external'. Each file "
        "must lie on its exam's grid (mismatches are listed, one line each). Slice score = "
        "the highest pixel probability, exam score = the highest slice score.",
    )
    p.add_argument("workspace", type=Path, metavar="WS", help="workspace folder")
    p.add_argument("--run", required=True, metavar="NAME", help="run name for the predictions")
    p.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR",
                   help="folder of NIfTI predictions")
    p.add_argument("--kind", choices=KINDS, default="probability",
                   help="probability: float maps in [0, 1] (4D: channel 0 background); "
                   "labels: integer label maps (default probability)")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")
    p.add_argument("--json-progress", action="store_true",
                   help="report progress as one JSON object per line on stdout")
    return p


def cmd_import_predictions(args) -> int:
    from ictview.progress import close_progress, make_progress

    with Workspace.open(args.workspace) as ws:
        progress = make_progress("import-predictions", args.json_progress)
        try:
            report = import_predictions(ws, args.run, args.source, args.kind, progress)
        finally:
            close_progress(progress)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        for line in report.mismatched:
            print(f"mismatch: {line}", file=sys.stderr)
        for f in report.unmatched_files:
            print(f"skipped {f}: names no exam", file=sys.stderr)
        print(f"run {report.run}: imported {len(report.imported)} exam(s), "
              f"{len(report.mismatched)} mismatched, {len(report.unmatched_files)} file(s) "
              "naming no exam")
    return 0
