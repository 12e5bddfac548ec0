"""`ictview pacs {echo,query,pull,push}`: wired into ictview/cli.py by `add_pacs_parser(sub)`
and COMMANDS["pacs"] = cmd_pacs. The password is never printed: not in messages, not in
--json output, not in errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ictview.errors import IctviewError

ROLES = ("labeled", "unlabeled", "validation", "test")
ADDRESS_HELP = ("server: http(s)://host:port/<dicom-web root> (DICOMweb) or "
                "dimse://AET@host:port (DIMSE)")


def _common(p: argparse.ArgumentParser) -> None:
    from ictview.pacs.target import DEFAULT_CALLING_AET, PASSWORD_ENV, USER_ENV

    p.add_argument("url", metavar="URL", help=ADDRESS_HELP)
    p.add_argument("--calling-aet", default=DEFAULT_CALLING_AET, metavar="AET",
                   help=f"DIMSE: our AE title (default {DEFAULT_CALLING_AET})")
    p.add_argument("--user", default=None, help=f"DICOMweb user (default: ${USER_ENV})")
    p.add_argument("--password", default=None,
                   help=f"DICOMweb password (default: ${PASSWORD_ENV}; prefer the variable: "
                   "an option is visible to other users of this machine)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for the server (default 30)")


def add_pacs_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pacs", help="query, retrieve from and store to a PACS (DICOMweb or DIMSE)",
        description="Talk to a DICOM server. " + ADDRESS_HELP + ".")
    sub = p.add_subparsers(dest="pacs_command", metavar="WHAT", required=True,
                           parser_class=type(p))

    e = sub.add_parser("echo", help="check that the server answers (C-ECHO or a QIDO-RS query)")
    _common(e)

    q = sub.add_parser("query", help="studies with their series (description, slices, thickness)")
    _common(q)
    q.add_argument("--patient-id", default="", metavar="ID")
    q.add_argument("--study-date", default="", metavar="RANGE",
                   help="YYYYMMDD or YYYYMMDD-YYYYMMDD (either end may be left open)")
    q.add_argument("--modality", default="", metavar="MOD", help="e.g. CT")
    q.add_argument("--json", action="store_true", help="print the studies as JSON")

    g = sub.add_parser(
        "pull", help="retrieve studies and import them into a workspace (resumable)",
        description="Retrieve the CT series of each study into WS/pacs/incoming, then import "
        "them like `ictview import` (all or nothing per exam). Run it again after an "
        "interruption: instances already received are not fetched again.")
    _common(g)
    g.add_argument("--study", nargs="+", action="extend", required=True, metavar="UID",
                   help="Study Instance UID(s)")
    g.add_argument("--workspace", "-w", type=Path, required=True)
    g.add_argument("--site", required=True)
    g.add_argument("--role", choices=ROLES, required=True)
    g.add_argument("--seg-labelset", default=None, metavar="NAME",
                   help="also read the study's DICOM SEG into this labelset")
    g.add_argument("--min-thickness", type=float, default=2.0, metavar="MM")
    g.add_argument("--move-aet", default="", metavar="AET",
                   help="DIMSE: retrieve by C-MOVE to this AE title (default: C-GET)")
    g.add_argument("--listen-port", type=int, default=0, metavar="PORT",
                   help="DIMSE C-MOVE: port our storage SCP listens on for --move-aet")
    g.add_argument("--json", action="store_true", help="print the pull report as JSON")
    g.add_argument("--json-progress", action="store_true",
                   help="report progress as one JSON object per line on stdout")

    s = sub.add_parser("push", help="store a labelset's DICOM SEG objects on the server")
    _common(s)
    s.add_argument("--workspace", "-w", type=Path, required=True)
    s.add_argument("--labelset", required=True, metavar="NAME")
    s.add_argument("--exam", "--exams", dest="exams", nargs="+", action="extend", default=[],
                   metavar="NAME", help="only these exams (default: every exam of the labelset)")
    s.add_argument("--deidentify", action="store_true",
                   help="PS3.15 basic profile with modified dates (see ictview/pacs/deid.py); "
                   "the UID mapping stays in WS/pacs/deid.sqlite")
    s.add_argument("--with-images", action="store_true",
                   help="send the exam's CT images too (de-identified alike with --deidentify)")
    s.add_argument("--json", action="store_true", help="print what the server accepted as JSON")
    return p


def _target(args):
    from ictview.pacs.target import parse_target

    return parse_target(args.url, calling_aet=args.calling_aet,
                        move_aet=getattr(args, "move_aet", ""),
                        listen_port=getattr(args, "listen_port", 0), user=args.user,
                        password=args.password, timeout_s=args.timeout)


def format_studies(studies) -> list[str]:
    lines = []
    for st in studies:
        lines.append(f"{st.study_date or '-':<10} {st.patient_id or '-':<16} "
                     f"{st.accession_number or '-':<14} {'/'.join(st.modalities) or '-':<8} "
                     f"{st.study_uid}")
        for se in st.series:
            thick = f"{se.thickness_mm:g} mm" if se.thickness_mm is not None else "? mm"
            n = se.instances if se.instances is not None else "?"
            lines.append(f"    series {se.number if se.number is not None else '-':>3} "
                         f"{se.modality:<4} {se.description[:32]!r:<34} {n:>4} slices "
                         f"{thick:>9}  {se.series_uid}")
    return lines


def cmd_pacs(args) -> int:
    from ictview.pacs.connect import connect

    target = _target(args)
    client = connect(target)
    try:
        return _COMMANDS[args.pacs_command](args, client)
    finally:
        client.close()


def _echo(args, client) -> int:
    print(client.echo())
    return 0


def _query(args, client) -> int:
    from ictview.pacs.query import query_studies

    studies = query_studies(client, patient_id=args.patient_id, study_date=args.study_date,
                            modality=args.modality)
    if args.json:
        print(json.dumps([s.to_dict() for s in studies], indent=1))
    else:
        for line in format_studies(studies) or ["no study matches"]:
            print(line)
    return 0


def _pull(args, client) -> int:
    from ictview.pacs.pull import pull_studies
    from ictview.progress import make_progress
    from ictview.store.workspace import Workspace

    progress = make_progress("pacs pull", args.json_progress)
    try:
        with Workspace.create(args.workspace) as ws:
            report = pull_studies(ws, client, args.study, args.site, args.role,
                                  seg_labelset=args.seg_labelset,
                                  min_thickness_mm=args.min_thickness, progress=progress)
    finally:
        close = getattr(progress, "close", None)
        if close:
            close()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        for s in report.studies:
            if s.status in ("imported", "already present"):
                extra = f", labels into '{s.labels}'" if s.labels else ""
                print(f"{s.study_uid}: {s.status} as exam {s.exam} ({s.slices} slices; "
                      f"{s.fetched} instance(s) fetched, {s.already_had} already here{extra})")
    for s in report.failed:
        print(f"ictview pacs pull: error: {s.reason}", file=sys.stderr)
    return 2 if report.failed else 0


def _push(args, client) -> int:
    from ictview.pacs.push import push_labelset
    from ictview.store.workspace import Workspace

    with Workspace.open(args.workspace) as ws:
        report = push_labelset(ws, client, args.labelset, args.exams or None,
                               deidentify=args.deidentify, with_images=args.with_images)
    if args.json:
        print(json.dumps(report.to_dict()))
    failed = 0
    for e in report.exams:
        if e.skipped:
            print(f"skipped {e.exam}: {e.skipped}", file=sys.stderr)
        elif e.refused:
            failed += 1
            print(f"ictview pacs push: error: {e.exam}: the server refused {len(e.refused)} of "
                  f"{e.sent} instance(s) ({e.refused[0]})", file=sys.stderr)
        elif not args.json:
            print(f"{e.exam}: server accepted {e.accepted} of {e.sent} instance(s) "
                  f"(SEG {e.seg_uid})")
    return 2 if failed else 0


_COMMANDS = {"echo": _echo, "query": _query, "pull": _pull, "push": _push}
