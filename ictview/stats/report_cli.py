"""`report` subcommand, for `ictview-train report` (the training CLI wires it in):

    from ictview.stats.report_cli import add_report_parser, cmd_report
    add_report_parser(subparsers)          # then dispatch "report" to cmd_report(args)

Runs standalone too: `python -m ictview.stats.report_cli report --workspace WS ...`.
cmd_report raises IctviewError for bad input (one line); main() prints it and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ictview.errors import IctviewError


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="the paper's tables (CIs, paired tests) and ROC/PR plots for a set of runs",
        description="Write report.json, report.md, report.html, roc.png and pr.png to DIR: "
        "Table 1 (subset DSC at the validation threshold and at 0.5, pixel AP, exam AUC on "
        "the test role, pairwise deltas), "
        "operating point at sensitivity 0.92, Tables 2-3 (validation), Table 4 "
        "(test-retest), Supplemental Table 1 (per-subtype AUC).",
    )
    p.add_argument("--workspace", "-w", type=Path, required=True, metavar="WS")
    p.add_argument("--runs", nargs="+", default=None, metavar="RUN",
                   help="runs in table order; deltas are later minus earlier (default: every "
                        "model run that predicted every test exam: the baseline first, then "
                        "students, the no-ranker ablation, oracles, other teachers; pseudo-"
                        "label runs are not models)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for the CIs and tests (default 1000)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    if not any(a.dest == "json_progress" for a in p._actions):
        p.add_argument("--json-progress", action="store_true",
                       help="report progress as one JSON object per line on stdout")  # fmt: skip
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from ictview.progress import make_progress
    from ictview.stats.report import run_report

    json_lines = bool(getattr(args, "json_progress", False))
    progress = make_progress("report", json_lines)
    try:
        doc = run_report(args.workspace, args.runs, args.out, n_boot=args.n_boot,
                         seed=args.seed, progress=progress)  # fmt: skip
    finally:
        close = getattr(progress, "close", None)
        if close:
            close()
    files = doc["files"]
    if json_lines:
        print(json.dumps({"event": "done", "task": "report", "files": files,
                          "notes": doc["notes"]}))  # fmt: skip
    else:
        print(f"report written to {args.out}: " + ", ".join(Path(f).name for f in files.values()))
        for note in doc["notes"]:
            print(f"note: {note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ictview-report")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_report_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except IctviewError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
