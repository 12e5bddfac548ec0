"""`ictview retest plan|start|status|analyze`: test-retest studies from the command line.

Wiring into `ictview/cli.py` (two lines):
    add_retest_parser(sub)                 # in build_parser()
    COMMANDS["retest"] = cmd_retest        # (or an entry in the COMMANDS dict)

Every subcommand takes the workspace first, exits 0 on success and raises
IctviewError (printed by `ictview` as one line) for bad input; `start` before the
washout has passed fails with the date it opens, unless an administrator gives
`--override-reason`.

Identity: who runs a command is the OS login (ictview.identity), never a typed
name: `--rater` is the display name of the study's labelsets; `--admins` names
the logins that administer the study (default: the planner's login). Exam orders
are printed only to an administrator who asks (`--show-orders`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ictview.errors import IctviewError

EPILOG = """examples:
  ictview retest plan WS --name cq500-tr --rater dr-lee --role test --labelset reference \
      --rater-login lee --admins kim
  ictview retest plan WS --name pilot --rater dr-lee --role test --sample 10 --seed 7
  ictview retest start WS --study cq500-tr --rater dr-lee
  ictview retest start WS --study cq500-tr --rater dr-lee --override-reason "on leave"  # admin
  ictview retest status WS --json
  ictview retest status WS --study cq500-tr --show-orders          # administrators only
  ictview retest abort WS --study cq500-tr --reason "rater left"     # administrators only
  ictview retest analyze WS --study cq500-tr --runs baseline ss --out table4.md
  ictview retest analyze WS --labelsets retest-1 retest-2 retest-3 --runs baseline ss --json
"""


def add_retest_parser(subparsers) -> argparse.ArgumentParser:
    """Adds `retest` with its subcommands to an argparse subparsers object."""
    p = subparsers.add_parser(
        "retest",
        help="test-retest studies: plan, start a repetition, status, analyze (Table 4)",
        description="Blinded test-retest segmentation studies: one rater segments the same exams "
        "several times, in a new random order each time, with a minimum washout between "
        "repetitions. Sessions are run in the app (`ictview retest start` records the start).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="retest_command", metavar="SUBCOMMAND", required=True,
                           parser_class=type(p))  # fmt: skip

    q = sub.add_parser("plan", help="create a study: exams, repetitions, washout, seeded orders")
    q.add_argument("workspace", type=Path)
    q.add_argument("--name", required=True, help="study name (letters, digits, . _ -)")
    q.add_argument("--rater", required=True, help="the rater who segments every repetition")
    q.add_argument("--role", help="exams of this role (labeled, unlabeled, validation, test)")
    q.add_argument("--labelset", help="only exams with labels in this labelset (e.g. reference)")
    q.add_argument("--exams", nargs="+", metavar="EXAM", help="an explicit list of exams")
    q.add_argument("--exams-file", type=Path, metavar="TXT",
                   help="a saved list of exams, one name per line ('#' comments)")
    q.add_argument("--sample", type=int, metavar="N", help="a random sample of N of those exams")
    q.add_argument("--repetitions", type=int, default=3, help="default 3")
    q.add_argument("--washout-days", type=float, default=7.0, help="default 7")
    q.add_argument("--seed", type=int, help="seed of the sample and the orders (default: random, "
                   "recorded)")
    q.add_argument("--admins", nargs="+", metavar="LOGIN",
                   help="OS logins that administer the study: override washouts, unblind, "
                   "abort, export repetitions (default: your login)")
    q.add_argument("--rater-login", metavar="LOGIN",
                   help="the rater's OS login (default: bound when the rater opens the first "
                   "session; until then every login but the administrators is blinded)")
    q.add_argument("--show-orders", action="store_true",
                   help="print every repetition's exam order (administrators only)")
    q.add_argument("--json", action="store_true")

    q = sub.add_parser("start", help="start the study's next repetition (refused before washout)")
    q.add_argument("workspace", type=Path)
    q.add_argument("--study", required=True)
    q.add_argument("--rater", required=True, help="must be the study's rater")
    q.add_argument("--override-reason", metavar="TEXT",
                   help="administrator override of the washout (your login must administer "
                   "the study): the reason, recorded and audited")
    q.add_argument("--by", default=None, help=argparse.SUPPRESS)  # refused: see _start
    q.add_argument("--json", action="store_true")

    q = sub.add_parser("status", help="studies, their sessions, progress and washout dates")
    q.add_argument("workspace", type=Path)
    q.add_argument("--study", help="one study (default: all)")
    q.add_argument("--show-orders", action="store_true",
                   help="include the exam orders (administrators only)")
    q.add_argument("--json", action="store_true")

    for verb, what in (("abort", "stop the study for good"),
                       ("unblind", "lift the blinding before the last repetition ends")):
        q = sub.add_parser(verb, help=f"{what} (administrators only; audited)")
        q.add_argument("workspace", type=Path)
        q.add_argument("--study", required=True)
        q.add_argument("--reason", required=True, metavar="TEXT", help="recorded and audited")

    q = sub.add_parser("analyze", help="intra-rater agreement and Table 4 for chosen runs")
    q.add_argument("workspace", type=Path)
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--study", help="a study's repetitions (exams done in every session)")
    src.add_argument("--labelsets", nargs="+", metavar="LABELSET",
                     help="repetitions given as labelsets (e.g. retest-1 retest-2 retest-3)")
    q.add_argument("--runs", nargs="+", default=[], metavar="RUN",
                   help="model runs for Table 4; the first is the baseline of the t-tests")
    q.add_argument("--n-boot", type=int, default=50, help="bootstraps per repetition (default 50)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--dice-threshold", type=float,
                   help="fixed Dice threshold for every run (default: chosen on validation, "
                   "else 0.5)")
    q.add_argument("--json", action="store_true", help="print the analysis as JSON")
    q.add_argument("--out", type=Path, help="also write it here (.json: JSON, else Markdown)")

    q = sub.add_parser("session", help="open the rater's current session in the app (blinded)")
    q.add_argument("workspace", type=Path)
    q.add_argument("--study", required=True)
    q.add_argument("--rater", required=True, help="must be the study's rater")
    q.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="render the session window offscreen to PNG and exit (writes nothing)")
    p.set_defaults(func=cmd_retest)
    return p


def _session(args) -> int:
    # the only retest command that needs Qt: imported here so the study package stays Qt-free
    from ictview.gui.retest.session_window import run_retest_gui

    if not (args.workspace / "workspace.sqlite").exists():
        raise IctviewError(f"{args.workspace}: not an ictview workspace (no workspace.sqlite)")
    return run_retest_gui(args.workspace, args.study, args.rater, screenshot=args.screenshot)


def cmd_retest(args) -> int:
    handlers = {"plan": _plan, "start": _start, "status": _status, "analyze": _analyze,
                "session": _session, "abort": _close, "unblind": _close}
    return handlers[args.retest_command](args)


def _open(path: Path):
    from ictview.store.workspace import Workspace

    return Workspace.open(path)


def _read_exam_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise IctviewError(f"{path}: cannot read the exam list ({e.strerror})") from None
    names = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        raise IctviewError(f"{path}: the exam list is empty")
    return names


def _plan(args) -> int:
    from ictview.study.retest_plan import ExamSelection, plan_study

    if args.exams and args.exams_file:
        raise IctviewError("give --exams or --exams-file, not both")
    listed = args.exams or (_read_exam_list(args.exams_file) if args.exams_file else None)
    if listed is None and not args.role and not args.labelset:
        raise IctviewError("choose the exams: --role, --labelset, --exams or --exams-file")
    sel = ExamSelection(role=args.role, exams=tuple(listed) if listed else None,
                        labelset=args.labelset, sample=args.sample)  # fmt: skip
    with _open(args.workspace) as ws:
        if args.show_orders and args.admins and ws.login not in args.admins:
            raise IctviewError(f"--show-orders: login '{ws.login}' is not among the study's "
                               f"administrators ({', '.join(args.admins)})")  # fmt: skip
        st = plan_study(ws, args.name, args.rater, sel, repetitions=args.repetitions,
                        washout_days=args.washout_days, seed=args.seed, admins=args.admins,
                        rater_login=args.rater_login)  # fmt: skip
    show = args.show_orders  # the planner is an administrator (checked above)
    if args.json:
        print(json.dumps(st.to_dict(show_orders=show), indent=2))
    else:
        print(f"study '{st.name}': rater {st.rater}, {len(st.exams)} exams, {st.repetitions} "
              f"repetitions, washout {st.washout_days:g} days, seed {st.seed}; "
              f"administrators {', '.join(sorted(st.admins))}")  # fmt: skip
        for s in st.sessions:
            order = f", order {', '.join(s.exam_order)}" if show else ""
            print(f"  repetition {s.repetition}: labelset {s.labelset}{order}")
        if not show:
            print("  (exam orders are recorded, not shown: an administrator can print them with "
                  "`ictview retest status --show-orders`)")
        if st.rater_login is None:
            print("  note: no --rater-login: until the rater opens the first session, every "
                  "login but the administrators is blinded to the study's exams")
    return 0


def _start(args) -> int:
    from ictview.study.retest_session import RetestSession

    with _open(args.workspace) as ws:
        if args.by is not None and args.by != ws.login:
            raise IctviewError(
                f"--by is not accepted: who acts is your OS login ('{ws.login}'), not a typed "
                "name; an administrator of the study runs the override under their own login"
            )
        s = RetestSession.start(ws, args.study, args.rater, override_reason=args.override_reason)
        out = {"study": args.study, "repetition": s.repetition, "labelset": s.labelset,
               "exams": len(s.order), "overridden": s.overridden,
               "started_at": s.plan.to_dict()["started_at"]}  # fmt: skip
    if args.json:
        print(json.dumps(out))
    else:
        over = " (washout overridden; recorded in the audit log)" if s.overridden else ""
        print(f"study '{args.study}': repetition {s.repetition} of {s.study.repetitions} started"
              f"{over}; {len(s.order)} exams in labelset {s.labelset}. Continue in the app.")
        if args.override_reason and not s.overridden:
            print("note: the washout was already over; no override was needed or recorded",
                  file=sys.stderr)
    return 0


def study_status(ws, name: str, clock=None, show_orders: bool = False) -> dict:
    """A study's plan, sessions (progress, time on task) and what comes next. The exam
    orders only with show_orders, for an administrator of the study."""
    from ictview.study.clock import SystemClock
    from ictview.study.retest_plan import load_study
    from ictview.study.retest_session import RetestSession, availability

    clock = clock or SystemClock()
    if show_orders:
        ws.guard.require_admin(name, "printing the exam orders")
    st = load_study(ws, name)
    doc = st.to_dict(show_orders=show_orders)
    for s_doc, s in zip(doc["sessions"], st.sessions):
        run = RetestSession(ws, st, s.repetition, clock)
        done = run.done_exams()
        s_doc["exams_done"] = len(done)
        s_doc["current"] = (run.current() if s.status == "in progress" and show_orders
                            else None)  # the current exam is part of the order
        tot = run.time_on_task()
        s_doc["active_seconds"] = round(sum(v["active_s"] for v in tot.values()), 1)
    doc["next"] = availability(st, clock).to_dict()
    return doc


def _status(args) -> int:
    from ictview.study.retest_plan import study_names

    with _open(args.workspace) as ws:
        names = [args.study] if args.study else study_names(ws)
        docs = [study_status(ws, n, show_orders=args.show_orders) for n in names]
    if args.json:
        print(json.dumps(docs if not args.study else docs[0], indent=2))
        return 0
    if not docs:
        print("no test-retest studies (create one with `ictview retest plan`)")
    for d in docs:
        print(f"study '{d['name']}': rater {d['rater']}, {len(d['exams'])} exams, "
              f"{d['repetitions']} repetitions, washout {d['washout_days']:g} days")
        for s in d["sessions"]:
            when = ""
            if s["started_at"]:
                when = f", started {s['started_at'][:16].replace('T', ' ')} UTC"
            if s["ended_at"]:
                when += f", ended {s['ended_at'][:16].replace('T', ' ')} UTC"
            over = (f"  [washout override by {s['override_by']}: {s['override_reason']}]"
                    if s["overridden"] else "")  # fmt: skip
            print(f"  {s['repetition']}. {s['labelset']}: {s['status']}, "
                  f"{s['exams_done']}/{s['exams']} exams, "
                  f"{s['active_seconds'] / 60:.1f} min on task{when}{over}")
        if args.show_orders:
            for s in d["sessions"]:
                print(f"  order {s['repetition']}: {', '.join(s['exam_order'])}")
        print(f"  next: {d['next']['message']}")
    return 0


def _close(args) -> int:
    from ictview.study.retest_plan import close_study

    how = "aborted" if args.retest_command == "abort" else "unblinded"
    with _open(args.workspace) as ws:
        st = close_study(ws, args.study, how, args.reason)
    print(f"study '{st.name}': {how} by {st.closed_by}; recorded in the audit log")
    return 0


def _analyze(args) -> int:
    from ictview.study.retest_analysis import analyze, render_markdown

    with _open(args.workspace) as ws:
        doc = analyze(ws, study=args.study, labelsets=args.labelsets, runs=args.runs,
                      n_boot=args.n_boot, seed=args.seed, dice_threshold=args.dice_threshold)
    text = json.dumps(doc, indent=2) if args.json else render_markdown(doc)
    if args.out:
        body = json.dumps(doc, indent=2) if args.out.suffix == ".json" else render_markdown(doc)
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(body, encoding="utf-8")
        except OSError as e:
            raise IctviewError(f"{args.out}: cannot write ({e.strerror})") from None
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m ictview.study.retest_cli ...` (until `ictview retest` is wired)."""
    parser = argparse.ArgumentParser(prog="ictview")
    add_retest_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return cmd_retest(args)
    except IctviewError as e:
        print(f"ictview retest: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
