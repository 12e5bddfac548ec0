"""`ictview export`: write a labelset as NIfTI masks or DICOM SEG objects.

Wired into ictview/cli.py by `add_export_parser(sub)` and COMMANDS["export"] = cmd_export.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ictview.errors import IctviewError

FORMATS = ("nifti", "dicom-seg")


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="write a labelset as NIfTI masks or DICOM SEG aligned to the source series",
        description="Write the label volumes of one labelset as NIfTI masks (<exam>.nii.gz, "
        "label values 0 bg, 1 EDH, 2 SDH, 3 SAH, 4 IPH, 5 IVH, 255 ignore) or as DICOM "
        "Segmentation objects (<exam>.seg.dcm, one segment per class present; needs the "
        "source DICOM folder recorded at import). Opens in 3D Slicer, ITK-SNAP and OHIF.",
    )
    p.add_argument("workspace", type=Path, metavar="WS", help="workspace folder")
    p.add_argument("--labelset", required=True, metavar="NAME", help="labelset to export")
    p.add_argument("--format", required=True, choices=FORMATS, dest="format",
                   help="nifti: <exam>.nii.gz; dicom-seg: <exam>.seg.dcm")
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
    with Workspace.open(args.workspace) as ws:
        progress = make_progress("export", args.json_progress)
        try:
            run = export_labelset
            if getattr(args, "deidentify", False):
                from ictview.pacs.deid import export_deidentified as run
            result = run(ws, args.labelset, args.format, args.out, args.exams or None, progress)
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
