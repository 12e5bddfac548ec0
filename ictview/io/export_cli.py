"""`ictview export`: write a labelset as NIfTI masks or DICOM SEG objects.

Wired into ictview/cli.py by `add_export_parser(sub)` and COMMANDS["export"] = cmd_export.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ictview.errors import IctviewError

FORMATS = ("nifti", "dicom-seg", "nnunet", "monai")
DATASET_FORMATS = ("nnunet", "monai")


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="write a labelset as NIfTI masks, DICOM SEG, or an nnU-Net / MONAI dataset",
        description="Write the label volumes of one labelset as NIfTI masks (<exam>.nii.gz, "
        "label values 0 bg, 1 EDH, 2 SDH, 3 SAH, 4 IPH, 5 IVH, 255 ignore) or as DICOM "
        "Segmentation objects (<exam>.seg.dcm, one segment per class present; needs the "
        "source DICOM folder recorded at import). Opens in 3D Slicer, ITK-SNAP and OHIF. "
        "nnunet: an nnU-Net v2 raw dataset (imagesTr, labelsTr, imagesTs, dataset.json); "
        "monai: images/, labels/ and datalist.json. NIfTI label files come with a JSON "
        "sidecar, an ITK-SNAP label description and a Slicer colour table.",
    )
    p.add_argument("workspace", type=Path, metavar="WS", help="workspace folder")
    p.add_argument("--labelset", required=True, metavar="NAME", help="labelset to export")
    p.add_argument("--format", required=True, choices=FORMATS, dest="format",
                   help="nifti: <exam>.nii.gz; dicom-seg: <exam>.seg.dcm; nnunet / monai: "
                   "a dataset with the CT images")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created)")
    p.add_argument("--exam", "--exams", dest="exams", nargs="+", action="extend", default=[],
                   metavar="NAME", help="only these exams (default: every exam of the labelset)")
    p.add_argument("--deidentify", action="store_true",
                   help="de-identify (DICOM PS3.15 basic profile with modified dates, see "
                   "ictview/pacs/deid.py); files are named ANON-...; the mapping stays in "
                   "WS/pacs/deid.sqlite")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")
    p.add_argument("--json-progress", action="store_true",
                   help="report progress as one JSON object per line on stdout")
    return p


def cmd_export(args) -> int:
    from ictview.io.export import export_labelset
    from ictview.progress import make_progress
    from ictview.store.workspace import Workspace

    if args.format not in FORMATS:
        raise IctviewError(f"unknown export format '{args.format}'")
    if args.format in DATASET_FORMATS:
        if getattr(args, "deidentify", False):  # never a silently identified export
            raise IctviewError(f"--deidentify works with --format nifti or dicom-seg, not "
                               f"{args.format}")
        return _export_dataset(args)
    with Workspace.open(args.workspace) as ws:
        progress = make_progress("export", args.json_progress)
        try:
            run = export_labelset
            if getattr(args, "deidentify", False):
                from ictview.pacs.deid import export_deidentified as run
            result = run(ws, args.labelset, args.format, args.out, args.exams or None, progress)
            if args.format == "nifti" and not getattr(args, "deidentify", False):
                _nifti_sidecars(ws, args.labelset, args.out, result.written)
            elif args.format == "nifti":  # no per-file sidecar: it would name the exam
                from ictview.io.label_tables import write_label_tables

                result.written += write_label_tables(args.out)
        finally:
            close = getattr(progress, "close", None)
            if close:
                close()
    if args.json:
        print(json.dumps({"written": [str(p) for p in result.written],
                          "skipped": [{"exam": e, "reason": r} for e, r in result.skipped]}))
    else:
        for e, reason in result.skipped:
            print(f"skipped {e}: {reason}", file=sys.stderr)
        print(f"wrote {len(result.written)} {args.format} file(s) to {args.out}")
    return 0


def _nifti_sidecars(ws, labelset: str, out: Path, written: list[Path]) -> None:
    """Per-file JSON sidecars and the folder's ITK-SNAP / Slicer label tables."""
    from ictview.io.export_volumes import load_labels
    from ictview.io.label_tables import write_label_tables, write_sidecar

    for path in list(written):
        exam = path.name[: -len(".nii.gz")]
        written.append(write_sidecar(path, load_labels(ws, labelset, exam), exam=exam,
                                     labelset=labelset))
    written += write_label_tables(out)


def _export_dataset(args) -> int:
    from ictview.progress import close_progress, make_progress
    from ictview.store.workspace import Workspace

    if args.exams:
        raise IctviewError(f"--exam does not apply to --format {args.format} (the dataset "
                           "takes the exams of every role)")
    if getattr(args, "deidentify", False):
        raise IctviewError(f"--deidentify is not available with --format {args.format} "
                           "(case names are exam names): use nifti or dicom-seg")
    if args.format == "nnunet":
        from ictview.io.export_nnunet import export_nnunet as run
    else:
        from ictview.io.export_monai import export_monai as run
    with Workspace.open(args.workspace) as ws:
        progress = make_progress("export", args.json_progress)
        try:
            result = run(ws, args.labelset, args.out, progress)
        finally:
            close_progress(progress)
    summary = {"format": args.format, "root": str(result.root),
               "training": len(result.training), "validation": len(result.validation),
               "test": len(result.test), "ignore_label": result.has_ignore}
    if args.json:
        print(json.dumps(summary))
    else:
        split = f"{len(result.training)} training"
        if result.validation:
            split += f", {len(result.validation)} validation"
        split += f", {len(result.test)} to predict" if args.format == "nnunet" else \
            f", {len(result.test)} test"
        print(f"wrote the {args.format} dataset to {result.root} ({split} exams)")
    return 0
