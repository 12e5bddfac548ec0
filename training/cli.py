"""``ictview-train``: the training pipeline's command line (entry point ``main``).

    ictview-train teacher     --workspace WS [--run baseline] [--config paper] [--set k=v ...]
    ictview-train pseudolabel --workspace WS --teacher RUN [--run RUN-pl]
    ictview-train student     --workspace WS --teacher RUN [--pseudolabels RUN-pl]
                              [--variant ss|no-ranker|image-oracle|pixel-oracle] [--run ss]
    ictview-train evaluate    --workspace WS --run RUN [--checkpoint final|best|latest]
    ictview-train finetune    --workspace WS --from RUN --labelsets rater-x [--run RUN-ft]
    ictview-train study       --workspace WS [--config paper]
    ictview-train report      --workspace WS --out DIR [--runs RUN ...]   (default: every model run)
    ictview-train bench       [--workspace WS] [--device auto] [--loader-workers N ...]
    ictview-train bench scale --exams N1 N2 ... [--cache DIR] [--config cpu-study]

Options everywhere: ``--json-progress`` (one JSON object per line on stdout), ``--device``.
Training commands: ``--resume`` continues a stopped run from its latest checkpoint.
Under torchrun every command runs data-parallel: ``torchrun --nproc_per_node N -m training.cli
-- teacher --workspace WS ...`` (the ``--`` keeps torchrun's own parser from reading ``--run``
as an abbreviation of its ``--run-path``).

Exit status: 0 done; 1 bad input or workspace problem (one line on stderr); 2 bad usage;
3 the loss became NaN / inf (the last good checkpoint is kept); 75 stopped by SIGTERM / SIGINT
after saving a checkpoint (continue with ``--resume``, or rerun ``study``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ictview.cli_support import add_common_options, log_command, setup_logging
from ictview.errors import IctviewError, read_error

# torch is imported by the commands, never here: arguments and the config are checked first,
# so a typo is reported in a fraction of a second instead of after torch's 15-20 s import.
DESCRIPTION = ("Train and evaluate the study's models on a workspace: the teacher, pseudo-labels, "
               "students, oracles and ablations, the paper's report.")
EPILOG = """examples:
  ictview-train teacher --workspace ws --config tiny
  ictview-train study --workspace ws --config tiny
  ictview-train report --workspace ws --out report

Under torchrun every command runs data-parallel (put -- before the command):
  torchrun --nproc_per_node 8 -m training.cli -- teacher --workspace ws

exit status: 0 ok, 1 bad input, 2 usage, 3 NaN/inf loss, 75 interrupted (resume with --resume)"""

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
VARIANTS = {"ss": "student", "no-ranker": "no-ranker", "image-oracle": "image-oracle",
            "pixel-oracle": "pixel-oracle"}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (the contract of every ictview command)."""

    def error(self, message: str):  # noqa: D401
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _common(p: argparse.ArgumentParser, workspace: bool = True, config: bool = True) -> None:
    if workspace:
        p.add_argument("--workspace", "-w", required=True, type=Path, help="workspace folder")
    if config:
        p.add_argument("--config", "-c", default="paper",
                       help="TOML config: a path or a preset of ictview/resources/configs (paper, tiny)")
        p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override one config key (repeatable), e.g. --set train.epochs=2")
        p.add_argument("--loader-workers", type=int, default=None, metavar="N",
                       help="processes reading the workspace ahead of the model (training "
                       "batches and inference exams; 0: in this process, -1: auto); sets "
                       "train.loader_workers and inference.loader_workers")
    p.add_argument("--device", default=None,
                   help="auto (CUDA when available), cpu, cuda, cuda:N (default: train.device)")
    p.add_argument("--json-progress", action="store_true",
                   help="progress as one JSON object per line on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    add_common_options(p, "ictview-train", top=False)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="ictview-train", description=DESCRIPTION,
                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    add_common_options(ap, "ictview-train")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser,
                            metavar="COMMAND")

    p = sub.add_parser("teacher", help="train the teacher (baseline) on the labeled role")
    _common(p)
    p.add_argument("--run", default="baseline", help="run name (default baseline)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")

    p = sub.add_parser("pseudolabel", help="teacher predictions over the unlabeled role")
    _common(p)
    p.add_argument("--teacher", required=True, help="the model run to predict with")
    p.add_argument("--run", default=None, help="pseudolabel run name (default <teacher>-pl)")
    p.add_argument("--checkpoint", default="final", choices=("final", "best", "latest"))
    p.add_argument("--role", default="unlabeled", help="role to predict (default unlabeled)")
    p.add_argument("--overwrite", action="store_true", help="predict exams already predicted")

    p = sub.add_parser("student", help="train a student (or an oracle / ablation variant)")
    _common(p)
    p.add_argument("--teacher", required=True, help="teacher run (weights and pseudo-labels)")
    p.add_argument("--pseudolabels", default=None,
                   help="pseudolabel run (default: <teacher>-pl, made when missing)")
    p.add_argument("--variant", default="ss", choices=tuple(VARIANTS),
                   help="ss (default), no-ranker, image-oracle, pixel-oracle")
    p.add_argument("--run", default=None, help="run name (default: the variant's name)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")

    p = sub.add_parser("finetune", help="fine-tune a model with raters' labels added to the "
                       "labeled set (starts from the model's weights)")
    _common(p)
    p.add_argument("--from", dest="from_run", required=True, help="the model run to start from")
    p.add_argument("--labelsets", nargs="+", required=True,
                   help="raters' labelsets whose labeled exams join the labeled set")
    p.add_argument("--run", default=None, help="run name (default <from>-ft)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")

    p = sub.add_parser("evaluate", help="predict validation/test roles and write metrics.json")
    _common(p)
    p.add_argument("--run", required=True, help="the model run to evaluate")
    p.add_argument("--checkpoint", default="final", choices=("final", "best", "latest"))
    p.add_argument("--roles", nargs="+", default=None, help="roles (default: evaluate.roles)")

    p = sub.add_parser("study", help="the whole paper: baseline, SS, oracles, ablations")
    _common(p)
    p.add_argument("--prefix", default=None, help="prefix of every run name")

    p = sub.add_parser("bench", help="training patches/s and inference slices/s; "
                       "'bench scale': memory, disk and time per slice as the workspace grows")
    p.add_argument("what", nargs="?", choices=("scale",), default=None,
                   help="scale: the scale benchmark (training/bench_scale.py)")
    p.add_argument("--exams", type=int, nargs="+", default=None, metavar="N",
                   help="(scale) workspace sizes in exams, e.g. --exams 100 2000")
    p.add_argument("--cache", type=Path, default=None,
                   help="(scale) folder keeping the built workspaces "
                   "(default ~/.cache/ictview/bench-scale)")
    p.add_argument("--config", "-c", default=None,
                   help="(scale) training config of every phase (default cpu-study)")
    p.add_argument("--steps", type=int, default=20,
                   help="(scale) steps of the teacher and student epochs (default 20)")
    p.add_argument("--seed-workspace", type=Path, default=None,
                   help="(scale) workspace whose exams are copied (default: the tiny "
                   "synthetic study, built once into the cache)")
    p.add_argument("--workspace", "-w", type=Path, default=None,
                   help="workspace for the end-to-end rates (default: a small synthetic one)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--full", action="store_true",
                   help="on CPU too, the full-width network at 240 / 512 (slow)")
    p.add_argument("--seconds", type=float, default=None,
                   help="time per measurement (default 10 on CUDA, 3 on CPU)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: torch's choice, one per core)")
    p.add_argument("--loader-workers", type=int, nargs="+", default=None, metavar="N",
                   help="numbers of loader processes to measure end to end "
                   "(default 0 1 2 on a CPU)")
    p.add_argument("--rounds", type=int, default=8,
                   help="interleaved rounds of compute-only and end-to-end training, "
                   "seconds / 2 each (default 8)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    from ictview.stats.report_cli import add_report_parser

    add_report_parser(sub)
    return ap


def _config(args):
    from training.config import load_config

    cfg = load_config(args.config, args.set)
    if args.device:
        from dataclasses import replace

        cfg = replace(cfg, train=replace(cfg.train, device=args.device))
    if cfg.train.torch_threads:  # for inference commands too, not only in the trainer
        import torch

        torch.set_num_threads(cfg.train.torch_threads)
    return cfg


def _ranker_choice(workspace: Path, pl_run: str) -> list[str]:
    """The C, K_hi, K_lo a radiologist chose for this pseudo-label run in the app, as
    `--set` values placed before the user's own (so explicit `--set ranker.*` wins)."""
    from ictview.store.workspace import Workspace
    from ictview.study.ranker_review import chosen_ranker, student_overrides

    if not (Path(workspace) / "workspace.sqlite").exists():
        return []  # reported by the command itself
    with Workspace.open(workspace) as ws:
        choice = chosen_ranker(ws, pl_run)
    if choice:
        print(f"ictview-train: ranker of '{pl_run}' chosen in review: C={choice[0]:g}%, "
              f"K_hi={choice[1]:g}, K_lo={choice[2]:g}", file=sys.stderr)
    return student_overrides(choice)


def _ranker_choice_on_rank0(args) -> list[str]:
    """_ranker_choice; under torchrun asked on rank 0 alone and broadcast, so that no other
    rank opens the live catalog (README, "A workspace on a shared filesystem")."""
    pl_run = args.pseudolabels or f"{args.teacher}-pl"
    from training import distributed as D

    if D.env_world() <= 1:
        return _ranker_choice(args.workspace, pl_run)
    info, _ = D.init(_config(args).train.device)  # the trainer joins this same group
    return D.decided_by_main(lambda: _ranker_choice(args.workspace, pl_run), info)


def _inference_overrides(args) -> list[str]:
    """Predictions use the model run's own [inference] settings; --set inference.* changes
    them for this command."""
    return [s for s in args.set if s.strip().startswith("inference.")]


def _fit(trainer) -> int:
    from training.trainer import EXIT_INTERRUPTED

    res = trainer.fit()
    if res.status == "interrupted":
        print(f"ictview-train: {trainer.run}: stopped at step {res.step}, checkpoint saved; "
              "continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def cmd_teacher(args) -> int:
    from training.trainer import Trainer

    cfg = _config(args)
    return _fit(Trainer(args.workspace, args.run, cfg, resume=args.resume,
                        json_progress=args.json_progress, quiet=args.quiet))


def cmd_pseudolabel(args) -> int:
    from training.pseudolabel import pseudolabel

    cfg = _config(args)
    pseudolabel(args.workspace, args.teacher, args.run, role=args.role, checkpoint=args.checkpoint,
                overrides=_inference_overrides(args), device=cfg.train.device,
                json_progress=args.json_progress, overwrite=args.overwrite, quiet=args.quiet)
    return EXIT_OK


def cmd_student(args) -> int:
    from training.study import StudyInterrupted, _pseudolabel, run_student
    from training.checkpoints import checkpoint_path
    from training.trainer import EXIT_INTERRUPTED, TRAINERS

    kind = VARIANTS[args.variant]
    if kind != "image-oracle":
        args.set = _ranker_choice_on_rank0(args) + args.set
    cfg = _config(args)
    run = args.run or args.variant
    if cfg.student.iterations > 1:  # rounds: each student is the next teacher
        try:
            run_student(args.workspace, run, args.teacher, cfg, kind=kind,
                        pl_run=args.pseudolabels, json_progress=args.json_progress,
                        quiet=args.quiet)
        except StudyInterrupted as e:
            print(f"ictview-train: {e}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return EXIT_OK
    pl = args.pseudolabels
    if pl is None and kind != "image-oracle":
        pl = _pseudolabel(args.workspace, args.teacher, cfg, args.json_progress, args.quiet)
    init = None
    if cfg.student.init == "teacher":
        init = checkpoint_path(args.workspace, args.teacher, "final")
    return _fit(TRAINERS[kind](args.workspace, run, cfg, resume=args.resume,
                               init_checkpoint=init, parent=args.teacher, pseudolabel_run=pl,
                               json_progress=args.json_progress, quiet=args.quiet))


def cmd_finetune(args) -> int:
    from training.finetune import FinetuneTrainer
    from training.checkpoints import checkpoint_path

    cfg = _config(args)
    init = checkpoint_path(args.workspace, args.from_run, "final")
    if not init.exists():
        raise IctviewError(f"{init}: run '{args.from_run}' has no final checkpoint to start from")
    return _fit(FinetuneTrainer(args.workspace, args.run or f"{args.from_run}-ft", cfg,
                                resume=args.resume, init_checkpoint=init, parent=args.from_run,
                                extra_labelsets=args.labelsets,
                                json_progress=args.json_progress, quiet=args.quiet))


def cmd_evaluate(args) -> int:
    from dataclasses import replace

    from training.evaluate import evaluate

    cfg = _config(args)
    if args.roles:
        cfg = replace(cfg, evaluate=replace(cfg.evaluate, roles=list(args.roles)))
    metrics = evaluate(args.workspace, args.run, cfg=cfg, checkpoint=args.checkpoint,
                       overrides=_inference_overrides(args), device=cfg.train.device,
                       json_progress=args.json_progress, quiet=args.quiet)
    if metrics is not None and not args.json_progress and not args.quiet:
        for role, m in metrics["roles"].items():
            auc = m.get("exam", {}).get("auc", {}).get("value")
            ap = m.get("pixel", {}).get("ap", {}).get("value")
            dice = m.get("pixel", {}).get("dice", {}).get("value")
            print(f"{args.run} {role}: exam AUC {_fmt(auc)}, pixel AP {_fmt(ap)}, "
                  f"Dice {_fmt(dice)}")
    return EXIT_OK


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def cmd_study(args) -> int:
    from dataclasses import replace

    from training.study import StudyInterrupted, run_study
    from training.trainer import EXIT_INTERRUPTED

    cfg = _config(args)
    if args.prefix is not None:
        cfg = replace(cfg, study=replace(cfg.study, prefix=args.prefix))
    try:
        summary = run_study(args.workspace, cfg, json_progress=args.json_progress, quiet=args.quiet)
    except StudyInterrupted as e:
        print(f"ictview-train: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.json_progress and not args.quiet:
        print(f"study done in {summary['seconds']} s; runs:")
        for name, r in summary["runs"].items():
            test = r.get("test", {})
            print(f"  {name:32s} {r['kind']:13s} test exam AUC {_fmt(test.get('exam_auc'))}  "
                  f"pixel AP {_fmt(test.get('pixel_ap'))}  Dice {_fmt(test.get('dice'))}")
    return EXIT_OK


def cmd_bench(args) -> int:
    if args.what == "scale":
        from training.bench_scale import main_scale

        return main_scale(args)
    if args.exams:
        raise IctviewError("--exams is an option of 'ictview-train bench scale'")
    from training.bench import main_bench

    return main_bench(args)


def cmd_report(args) -> int:
    from ictview.stats.report_cli import cmd_report as run

    return run(args)


COMMANDS = {"teacher": cmd_teacher, "pseudolabel": cmd_pseudolabel, "student": cmd_student,
            "evaluate": cmd_evaluate, "finetune": cmd_finetune, "study": cmd_study,
            "bench": cmd_bench, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:  # left by some launchers (torchrun ... -m training.cli -- teacher)
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if hasattr(args, "set") and args.loader_workers is not None:  # as --set: checked too
        n = args.loader_workers
        args.set = [*args.set, f"train.loader_workers={n}", f"inference.loader_workers={n}"]
    try:
        setup_logging(args)
        log_command("ictview-train", argv)
        check_before_torch(args)
        return COMMANDS[args.command](args)
    except Exception as exc:
        e = read_error(exc)  # IctviewError, or a damaged file's h5py / SQLite / numpy error
        if e is None:
            raise
        line = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"ictview-train: {line}", file=sys.stderr)
        logging.getLogger("ictview-train").debug("error: %s", line)  # into --log-file too
        trainer = sys.modules.get("training.trainer")  # NonFiniteLoss is an IctviewError
        if trainer is not None and isinstance(e, trainer.NonFiniteLoss):
            return trainer.EXIT_NONFINITE
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ictview-train: interrupted", file=sys.stderr)
        return 130
    finally:
        distributed = sys.modules.get("training.distributed")  # only if a command started it
        if distributed is not None:
            distributed.shutdown()


def check_before_torch(args) -> None:
    """What can be checked without torch: the workspace folder exists and the config (file,
    preset and every --set) is valid. IctviewError (one line) otherwise."""
    ws = getattr(args, "workspace", None)
    if ws is not None and not Path(ws).is_dir():
        raise IctviewError(f"{ws}: workspace folder not found")
    if hasattr(args, "config") and hasattr(args, "set"):
        from training.config import load_config

        load_config(args.config, args.set)


if __name__ == "__main__":
    sys.exit(main())
