"""`ictview` command line (DESIGN.md: a contract that scripts and checks rely on).

Every command exits 0 on success and non-zero with a one-line reason on stderr
for bad input. Heavy modules are imported inside the commands so `--help` is fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ictview.cli_support import add_common_options, log_command, positive_int, setup_logging
from ictview.errors import IctviewError, read_error

PRESETS = ("tiny", "demo", "cpu-study", "paper-mini")  # ictview.synth.sites.PRESETS
ROLES = ("labeled", "unlabeled", "validation", "test")
PANELS = ("training", "ranker", "review", "compare", "dashboard")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (no usage block)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")



def _add_json_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json-progress", action="store_true",
                   help="report progress as one JSON object per line on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ictview",
        description="ictview: annotation, review and training for intracranial hemorrhage on "
        "head CT. Without a command, opens the desktop app.",
    )
    add_common_options(parser, "ictview")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("open", help="open a workspace in the desktop app")
    p.add_argument("workspace", type=Path, nargs="?", help="workspace folder (default: the last one)")
    p.add_argument("--exam", help="exam to show first")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="render the main window offscreen to PNG and exit")
    p.add_argument("--view", choices=PANELS,
                   help="open this panel too (with --screenshot: render the panel alone)")
    p.add_argument("--run", help="with --view: the run the panel shows (default: the latest)")
    p.add_argument("--layout", choices=("axial", "mpr", "mpr-2x2"), default=None,
                   help="axial (one view) or mpr (axial + coronal + sagittal, 1x3; mpr-2x2); "
                        "default: the Preferences' (axial)")
    _add_settings_option(p)

    p = sub.add_parser("synth", help="write the synthetic four-site study as DICOM + label files")
    p.add_argument("--preset", choices=PRESETS, required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier `ictview synth` output in --out")
    _add_json_progress(p)

    p = sub.add_parser(
        "import",
        help="import DICOM studies (and their labels) into a workspace",
        description="Import the DICOM studies under SOURCE into WS as exams of one site. "
        "Given an `ictview synth` output folder and no --site, imports all its sites.",
    )
    p.add_argument("source", type=Path, nargs="+", metavar="SOURCE", help="folder(s) or file(s)")
    p.add_argument("--workspace", "-w", type=Path, required=True)
    p.add_argument("--site", help="site name (e.g. atlantis)")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--min-thickness", type=float, default=2.0, metavar="MM",
                   help="thinnest slice thickness read for interpretation (default 2.0 mm)")
    p.add_argument("--rsna-labels", type=Path, metavar="CSV", help="RSNA 2019 image labels (ID,Label)")
    p.add_argument("--cq500-reads", type=Path, metavar="CSV", help="CQ500 reads.csv (R1..R3)")
    p.add_argument("--masks", action="append", default=[], metavar="LABELSET=DIR",
                   help="NIfTI masks named <exam>.nii.gz into labelset LABELSET (repeatable)")
    p.add_argument("--retest-masks", action="append", default=[], metavar="LABELSET=DIR",
                   help="as --masks, for a rater's repeated segmentation (test-retest)")
    p.add_argument("--rater", default=None, help="rater who drew --retest-masks")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, metavar="N",
                   help="read and convert series in N processes (default 1); the catalog is "
                        "written by this process alone, one whole exam at a time")
    p.add_argument("--json", action="store_true", help="print the import report as JSON")
    _add_json_progress(p)

    p = sub.add_parser("info", help="summarise a workspace: exams per site and role, labelsets, runs")
    p.add_argument("workspace", type=Path)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="synthesise the demo study, import it and open it")
    p.add_argument("--workspace", type=Path, default=Path("demo-workspace"))
    p.add_argument("--preset", choices=PRESETS, default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-gui", action="store_true",
                   help="print the workspace summary only (with --train: train, then exit)")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="render the app offscreen with the demo loaded to PNG and exit")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--train", action="store_true",
                   help="train the demo's models (a small baseline and SS, about 3-10 min on "
                        "2 CPU cores): with a window, in the background (the default there); "
                        "with --no-gui or --screenshot, in the foreground first")
    t.add_argument("--no-train", action="store_true",
                   help="open the window without training the demo's models")
    _add_settings_option(p)
    _add_json_progress(p)

    p = sub.add_parser(
        "check", help="verify the catalog, every stored file, the journals and the audit chain",
        description="Exit 0 when everything is what ictview wrote; 1 with one line per problem "
        "(naming the exam or file) on stdout. Notes (not problems) and a summary go to stderr.")
    p.add_argument("workspace", type=Path)
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")

    from ictview.io.export_cli import add_export_parser

    add_export_parser(sub)

    from ictview.study.retest_cli import add_retest_parser

    add_retest_parser(sub)

    from ictview.pacs.cli import add_pacs_parser

    add_pacs_parser(sub)

    p = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = p.add_subparsers(dest="bench", parser_class=_Parser, metavar="WHAT", required=True)
    b = bsub.add_parser("io", help="DICOM series reading vs a plain pydicom loop, and workspace reads")
    b.add_argument("--repeats", type=int, default=15)
    b = bsub.add_parser("import", help="DICOM to workspace in slices/s: ictview import at "
                        "--jobs 1 and 2 vs a plain pydicom + h5py loop")
    b.add_argument("--synth", type=Path, metavar="DIR",
                   help="import this `ictview synth` output's (or this folder's) DICOM instead "
                        "of 24 generated 32-slice 512x512 studies")
    b.add_argument("--jobs", type=positive_int, nargs="+", default=[1, 2], metavar="N",
                   help="--jobs values to time (default 1 2)")
    b.add_argument("--studies", type=positive_int, default=24, metavar="N",
                   help="generated studies (default 24; not with --synth)")
    b.add_argument("--repeats", type=positive_int, default=3)
    bsub.add_parser("gui", help="slice change, brush dab and exam opening, offscreen")
    bsub.add_parser("stats", help="Table 1 bootstrap: fast pixel statistics vs exact AP")
    from ictview.pacs.bench import add_bench_parser as add_bench_pacs

    add_bench_pacs(bsub)
    from ictview.study.bench_assist import add_bench_assist_parser

    add_bench_assist_parser(bsub)
    from ictview.store.bench_storage import add_bench_storage_parser

    add_bench_storage_parser(bsub)

    from ictview.store.relocate import add_relocate_parser

    add_relocate_parser(sub)

    from ictview.io.prediction_import import add_import_predictions_parser

    add_import_predictions_parser(sub)

    from ictview.study.next_cli import add_next_parser

    add_next_parser(sub)

    for name, child in sub.choices.items():  # -v / --log-file after the command too
        add_common_options(child, "ictview", top=False)
    return parser


_OPEN_PROGRESS: list = []  # closed by main(): their heartbeat threads must not outlive a command


def _progress(task: str, args) -> object:
    from ictview.progress import make_progress

    progress = make_progress(task, getattr(args, "json_progress", False))
    _OPEN_PROGRESS.append(progress)
    return progress


def _close_progress() -> None:
    """Close the progress reporters opened so far (main() closes the rest at the end)."""
    from ictview.progress import close_progress

    while _OPEN_PROGRESS:
        close_progress(_OPEN_PROGRESS.pop())


def _labelset_dirs(values: list[str], flag: str) -> list[tuple[str, Path]]:
    out = []
    for v in values:
        name, sep, folder = v.partition("=")
        if not sep or not name or not folder:
            raise IctviewError(f"{flag} '{v}': expected LABELSET=DIR")
        out.append((name, Path(folder)))
    return out


def cmd_synth(args) -> int:
    from ictview.synth import generate

    manifest = generate(args.preset, args.out, seed=args.seed, progress=_progress("synth", args),
                        overwrite=args.overwrite)
    n = sum(s["exams"] for s in manifest["sites"].values())
    print(f"wrote {n} exams ({args.preset}, seed {args.seed}) to {args.out}", file=sys.stderr)
    return 0


def _print_report(site: str, report, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"site": site, **report.to_dict()}))
    else:
        for line in report.summary_lines():
            print(f"{site}: {line}" if not line.startswith(" ") else line)


def cmd_import(args) -> int:
    from ictview.io.importers import ImportOptions, MaskSource, import_source
    from ictview.io.synthetic_import import import_synthetic
    from ictview.store.workspace import Workspace

    whole_synth = (
        args.site is None and len(args.source) == 1 and (args.source[0] / "manifest.json").exists()
    )
    if not whole_synth and (args.site is None or args.role is None):
        raise IctviewError("--site and --role are required (unless SOURCE is an `ictview synth` output)")
    if not whole_synth:
        opts = ImportOptions(
            site=args.site, role=args.role, min_thickness_mm=args.min_thickness,
            rsna_labels=args.rsna_labels, cq500_reads=args.cq500_reads,
            masks=[MaskSource(n, d) for n, d in _labelset_dirs(args.masks, "--masks")]
            + [MaskSource(n, d, "retest", args.rater)
               for n, d in _labelset_dirs(args.retest_masks, "--retest-masks")],
        )
    _refuse_file_as_workspace(args.workspace)
    new_workspace = not (args.workspace / "workspace.sqlite").exists()
    try:
        with Workspace.create(args.workspace) as ws:
            if whole_synth:
                reports = import_synthetic(ws, args.source[0],
                                           lambda s: _progress(f"import {s}", args), args.jobs)
            else:
                reports = {args.site: import_source(ws, args.source, opts,
                                                    _progress("import", args), args.jobs)}
    except BaseException:
        if new_workspace:  # an import that failed leaves no half-made workspace behind
            _remove_new_workspace(args.workspace)
        raise
    for site, report in reports.items():
        _print_report(site, report, args.json)
    return 0


def format_summary(summary: dict) -> str:
    lines = [f"workspace {summary['workspace']} (schema {summary['schema_version']})"]
    lines.append(f"{'site':<12}{'role':<12}{'exams':>6}{'slices':>8}{'img labels':>12}"
                 f"{'pos img':>9}{'reads':>7}{'pos exams':>10}")
    for name, s in summary["sites"].items():
        lines.append(
            f"{name:<12}{s['role']:<12}{s['exams']:>6}{s['slices']:>8}{s['image_labels']:>12}"
            f"{s['positive_images']:>9}{s['read_exams']:>7}{s['positive_exams_by_majority']:>10}"
        )
    if summary["labelsets"]:
        lines.append("labelsets: " + ", ".join(
            f"{l['name']} ({l['kind']}, {l['exams']} exams)" for l in summary["labelsets"]))
    lines.append("runs: " + (", ".join(r["name"] for r in summary["runs"]) or "none"))
    return "\n".join(lines)


def _refuse_file_as_workspace(path: Path) -> None:
    if path.is_file():
        hint = (f" (the workspace is the folder {path.parent})"
                if path.name == "workspace.sqlite" else "")
        raise IctviewError(f"{path}: is a file, not a workspace folder{hint}")


def _remove_new_workspace(root: Path) -> None:
    """Delete what Workspace.create made in a folder that held no workspace before: only its
    own files and empty sub-folders, never anything else that was there."""
    import shutil
    import sqlite3

    try:
        con = sqlite3.connect(root / "workspace.sqlite")
        try:
            if con.execute("SELECT COUNT(*) FROM exams").fetchone()[0]:
                return  # exams committed before the failure stay (re-running finishes the job)
        finally:
            con.close()
    except sqlite3.Error:
        pass
    for name in ("workspace.sqlite", "workspace.sqlite-wal", "workspace.sqlite-shm",
                 ".import.lock"):
        (root / name).unlink(missing_ok=True)
    for sub in ("volumes", "labels", "predictions", "runs"):
        d = root / sub
        if d.is_dir() and not any(d.rglob("*.h5")):
            shutil.rmtree(d, ignore_errors=True)
    try:
        root.rmdir()  # only when empty
    except OSError:
        pass


def cmd_info(args) -> int:
    from ictview.store.workspace import Workspace

    _refuse_file_as_workspace(args.workspace)
    with Workspace.open(args.workspace) as ws:
        summary = ws.summary()
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def cmd_demo(args) -> int:
    from ictview.io.synthetic_import import import_synthetic, read_manifest
    from ictview.store.workspace import Workspace
    from ictview.synth import generate

    source = args.workspace / "synth-source"
    try:
        manifest = read_manifest(source)
        fresh = manifest["preset"] != args.preset or manifest["seed"] != args.seed
    except IctviewError:
        fresh = True
    if fresh:
        generate(args.preset, source, seed=args.seed, progress=_progress("synth", args))
    with Workspace.create(args.workspace) as ws:
        import_synthetic(ws, source, lambda s: _progress(f"import {s}", args))
        summary = ws.summary()
    _close_progress()  # else their heartbeats repeat "import: done" through training and GUI
    print(format_summary(summary))
    screenshot = args.screenshot
    if not args.no_gui and screenshot is None and _no_display():
        screenshot = args.workspace / "demo-screenshot.png"
        print(f"no display here: rendering the app offscreen to {screenshot} instead",
              file=sys.stderr)
    window = not args.no_gui and screenshot is None
    if args.train and not window:  # no window to watch it in: train here, then go on
        rc = _train_demo(args.workspace)
        if rc != 0 or args.no_gui:
            return rc
    elif not window and not args.train:
        print("demo models: not trained (ictview demo --no-gui --train trains a baseline and "
              "SS, about 3-10 min on 2 CPU cores)", file=sys.stderr)
    if args.no_gui:
        return 0
    from ictview.gui.launch import run_gui

    return run_gui(args.workspace, screenshot=screenshot, settings_file=args.settings,
                   demo_training=window and not args.no_train)


def _train_demo(workspace: Path) -> int:
    """The demo's models in the foreground (ictview.study.demo_training), then how to see them."""
    from ictview.study.demo_training import run_foreground

    rc = run_foreground(workspace)
    if rc == 0:
        print(f"demo models ready: ictview open {workspace} (Review menu), or offscreen "
              f"ictview open {workspace} --view review --screenshot review.png", file=sys.stderr)
    return rc


def _add_settings_option(p) -> None:
    p.add_argument("--settings", type=Path, metavar="FILE",
                   help="preferences file to use (and save to) instead of "
                        "$ICTVIEW_SETTINGS or $XDG_CONFIG_HOME/ictview/settings.json")


def _no_display() -> bool:
    """True on a headless Linux machine, where Qt would abort instead of opening a window."""
    import os

    return (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"))


def cmd_open(args) -> int:
    from ictview.gui.launch import run_gui

    if args.workspace is not None and not (args.workspace / "workspace.sqlite").exists():
        raise IctviewError(f"{args.workspace}: not an ictview workspace (no workspace.sqlite)")
    if args.screenshot is None and _no_display():
        raise IctviewError("no display (DISPLAY/WAYLAND_DISPLAY unset): use --screenshot PNG "
                           "to render offscreen")
    if args.view and args.screenshot is not None:
        if args.workspace is None:
            raise IctviewError("--view with --screenshot needs a workspace")
        from ictview.gui.panel_screenshots import render_panel

        return render_panel(args.workspace, args.view, args.screenshot, run=args.run,
                            exam=args.exam, settings=args.settings)
    return run_gui(args.workspace, screenshot=args.screenshot, exam=args.exam, view=args.view,
                   layout=args.layout, settings_file=args.settings)


def cmd_bench(args) -> int:
    if args.bench == "assist":
        from ictview.study.bench_assist import bench_assist

        bench_assist(args)
        return 0
    if args.bench == "pacs":
        from ictview.pacs.bench import bench_pacs

        return bench_pacs(args)
    if args.bench == "stats":
        from ictview.stats.bench import bench_stats

        bench_stats()
        return 0
    if args.bench == "storage":
        from ictview.store.bench_storage import bench_storage

        return bench_storage(args)
    if args.bench == "gui":
        from ictview.gui.bench import bench_gui

        bench_gui()
        return 0
    if args.bench == "import":
        from ictview.io.bench_import import bench_import

        bench_import(args.synth, tuple(args.jobs), args.repeats, studies=args.studies)
        return 0
    from ictview.io.bench_cli import run_bench_io

    run_bench_io(args.repeats)
    return 0


def cmd_check(args) -> int:
    from ictview.store.check import check_workspace, format_report

    report = check_workspace(args.workspace)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.problems:
            print(line)
        for line in report.notes:
            print(f"note: {line}", file=sys.stderr)
        print(format_report(report), file=sys.stderr)
    return 0 if report.ok else 1


def cmd_export(args) -> int:
    from ictview.io.export_cli import cmd_export as run

    return run(args)


def cmd_retest(args) -> int:
    from ictview.study.retest_cli import cmd_retest as run

    return run(args)


def cmd_import_predictions(args) -> int:
    from ictview.io.prediction_import import cmd_import_predictions as run

    return run(args)


def cmd_relocate(args) -> int:
    from ictview.store.relocate import cmd_relocate as run

    return run(args)


def cmd_next(args) -> int:
    from ictview.study.next_cli import cmd_next as run

    return run(args)


def cmd_pacs(args) -> int:
    from ictview.pacs.cli import cmd_pacs as run

    return run(args)


COMMANDS = {"pacs": cmd_pacs, "retest": cmd_retest, "open": cmd_open, "synth": cmd_synth, "import": cmd_import, "info": cmd_info, "demo": cmd_demo,
            "export": cmd_export, "bench": cmd_bench, "relocate": cmd_relocate,
            "check": cmd_check, "import-predictions": cmd_import_predictions,
            "next": cmd_next}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["open"])
    try:
        setup_logging(args)
        log_command("ictview", argv)
        return COMMANDS[args.command](args)
    except Exception as exc:
        e = read_error(exc)  # IctviewError, or a damaged file's h5py / SQLite / numpy error
        if e is None:
            raise
        print(f"ictview {args.command}: error: {e}", file=sys.stderr)
        logging.getLogger("ictview").debug("error: %s", e)  # into --log-file too
        return 2
    except KeyboardInterrupt:
        print(f"ictview {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        _close_progress()


if __name__ == "__main__":
    sys.exit(main())
