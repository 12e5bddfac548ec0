"""The whole paper as one command: every model of the study, each a run in the workspace.

Runs (names prefixed by ``study.prefix``):

| run                   | kind         | what                                               |
| --------------------- | ------------ | -------------------------------------------------- |
| baseline              | teacher      | PatchFCN on the labeled role, contrast "mixed"     |
| baseline-contrast-<v> | teacher      | contrast variants (Table 2): none, power, log      |
| baseline-pl           | pseudolabel  | the baseline's predictions on the unlabeled role   |
| ss                    | student      | Noisy Student: ranker, 0.6 : 0.4, baseline weights |
| no-ranker             | no-ranker    | ablation (Table 3): K thresholds on every image    |
| image-oracle          | image-oracle | reference image labels, whole slice as the patch   |
| pixel-oracle          | pixel-oracle | image labels + baseline pseudo pixels, negatives 0 |
| study                 | study        | summary.json: every run's headline metrics         |

With ``student.iterations`` > 1 the student becomes the next teacher: ss-it1 -> ss-it1-pl ->
... -> ss. Every model run is evaluated on ``evaluate.roles`` (metrics.json). The oracles and
the ablation start from the baseline's weights, like the student. A run whose final checkpoint
exists is not trained again, and an interrupted one is resumed, so the command can be rerun
after a stop and continues where it was.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from ictview.errors import IctviewError
from ictview.store.run_lock import RunLock
from ictview.store.workspace import Workspace
from training import distributed as D
from training.config import Config, save_config
from training.evaluate import evaluate
from training.progress import ProgressLog
from training.pseudolabel import pseudolabel
from training.checkpoints import checkpoint_path
from training.trainer import TRAINERS, FitResult


class StudyInterrupted(IctviewError):
    pass


def _train(ws_root: Path, kind: str, run: str, cfg: Config, *, teacher: str | None = None,
           pl_run: str | None = None, json_progress: bool = False,
           quiet: bool = False) -> FitResult | None:
    if checkpoint_path(ws_root, run, "final").is_file():
        return None  # done earlier
    init = None
    if teacher is not None and cfg.student.init == "teacher":
        init = checkpoint_path(ws_root, teacher, "final")
    resume = checkpoint_path(ws_root, run, "latest").is_file()
    trainer = TRAINERS[kind](ws_root, run, cfg, resume=resume, init_checkpoint=init,
                             parent=teacher, pseudolabel_run=pl_run,
                             json_progress=json_progress, quiet=quiet)
    res = trainer.fit()
    if res.status != "finished":
        raise StudyInterrupted(
            f"{run}: interrupted at step {res.step}; rerun the study to continue"
        )
    return res


def _pseudolabel(ws_root: Path, teacher: str, cfg: Config, json_progress: bool, quiet: bool) -> str:
    out = f"{teacher}-pl"

    def finished() -> bool:
        with Workspace.open(ws_root) as ws:
            row = ws.run(out)
            return row is not None and row["status"] == "finished"

    # under torchrun rank 0 alone reads the live catalog (README, shared filesystem)
    if not D.decided_by_main(finished, D.init(cfg.train.device)[0]):
        pseudolabel(ws_root, teacher, out, settings=cfg.inference, device=cfg.train.device,
                    json_progress=json_progress, quiet=quiet, ranker=cfg.ranker)
    return out


def run_student(ws_root: Path, run: str, teacher: str, cfg: Config, *, kind: str = "student",
                pl_run: str | None = None, json_progress: bool = False,
                quiet: bool = False) -> list[str]:
    """Student (or a variant) with ``student.iterations`` rounds; returns the runs made.

    The image-slice oracle uses no pseudo-labels; every other kind pseudo-labels with the
    current teacher (``pl_run`` for the first round when given).
    """
    runs = []
    n = cfg.student.iterations
    current = teacher
    for it in range(1, n + 1):
        name = run if it == n else f"{run}-it{it}"
        pl = None
        if kind != "image-oracle":
            pl = pl_run if (it == 1 and pl_run) else _pseudolabel(ws_root, current, cfg,
                                                                  json_progress, quiet)
            runs.append(pl)
        _train(ws_root, kind, name, cfg, teacher=current, pl_run=pl,
               json_progress=json_progress, quiet=quiet)
        runs.append(name)
        current = name
    return runs


def _headline(metrics: dict) -> dict:
    out = {}
    for role, m in metrics.get("roles", {}).items():
        out[role] = {
            "exam_auc": m.get("exam", {}).get("auc", {}).get("value"),
            "pixel_ap": m.get("pixel", {}).get("ap", {}).get("value"),
            "dice": m.get("pixel", {}).get("dice", {}).get("value"),
        }
    return out


def run_study(ws_root: Path | str, cfg: Config, *, json_progress: bool = False,
              quiet: bool = False) -> dict:
    """The whole study; its run is locked for the duration (each stage locks its own run)."""
    ws_root = Path(ws_root)
    study_run = f"{cfg.study.prefix}study"
    info, _ = D.init(cfg.train.device)
    lock = RunLock(ws_root / "runs" / study_run, study_run, "ictview-train study")
    with lock if info.is_main else nullcontext():
        return _run_study(ws_root, cfg, json_progress=json_progress, quiet=quiet)


def _run_study(ws_root: Path, cfg: Config, *, json_progress: bool, quiet: bool) -> dict:
    p = cfg.study.prefix
    study_run = f"{p}study"
    t0 = time.perf_counter()
    info, _ = D.init(cfg.train.device)  # under torchrun: rank 0 writes the study's files

    def register() -> None:  # rank 0 alone opens the live catalog; its refusal reaches all
        with Workspace.open(ws_root) as ws:
            if not ws.exams(role="labeled"):
                raise IctviewError(f"{ws_root}: no labeled exams: import a labeled site first")
            ws.create_run(study_run, "study", cfg.to_dict())
            ws.set_run_status(study_run, "running")
            save_config(cfg, ws.run_dir(study_run) / "config.toml",
                        f"ictview-train study (from {cfg.source})")

    D.decided_by_main(register, info)
    log = ProgressLog(ws_root / "runs" / study_run / "progress.jsonl" if info.is_main else None,
                      study_run, json_stdout=json_progress, console=info.is_main and not quiet)
    models: list[tuple[str, str]] = []  # (run, kind)

    def stage(name: str, fn, *args, **kw):
        log.event("stage", stage=name, elapsed_s=time.perf_counter() - t0)
        log.message(f"study: {name}")
        return fn(*args, **kw)

    common = {"json_progress": json_progress, "quiet": quiet}
    try:
        baseline = f"{p}baseline"
        stage(baseline, _train, ws_root, "teacher", baseline, cfg, **common)
        models.append((baseline, "teacher"))
        for v in cfg.study.contrast_variants:
            name = f"{p}baseline-contrast-{v}"
            vcfg = replace(cfg, augment=replace(cfg.augment, contrast=v))
            stage(name, _train, ws_root, "teacher", name, vcfg, **common)
            models.append((name, "teacher"))
        pl = stage(f"{baseline}-pl", _pseudolabel, ws_root, baseline, cfg, json_progress, quiet)
        variants = [("student", f"{p}ss")]
        if cfg.study.no_ranker:
            variants.append(("no-ranker", f"{p}no-ranker"))
        if cfg.study.image_oracle:
            variants.append(("image-oracle", f"{p}image-oracle"))
        if cfg.study.pixel_oracle:
            variants.append(("pixel-oracle", f"{p}pixel-oracle"))
        pseudolabel_runs = [pl]
        for kind, name in variants:
            made = stage(name, run_student, ws_root, name, baseline, cfg, kind=kind, pl_run=pl,
                         **common)
            for r in made:
                if r.endswith("-pl"):
                    if r not in pseudolabel_runs:
                        pseudolabel_runs.append(r)
                else:
                    models.append((r, kind))
        summary = {"workspace": str(ws_root), "config": cfg.source, "runs": {}}
        for name, kind in models:
            metrics = stage(f"evaluate {name}", evaluate, ws_root, name, cfg=cfg,
                            device=cfg.train.device, json_progress=json_progress, quiet=quiet)
            summary["runs"][name] = {"kind": kind, **_headline(metrics or {})}
        summary["pseudolabel_runs"] = pseudolabel_runs
        summary["seconds"] = round(time.perf_counter() - t0, 1)
    except BaseException as e:
        if info.is_main:
            with Workspace.open(ws_root) as ws:
                ws.set_run_status(study_run,
                                  "interrupted" if isinstance(e, StudyInterrupted) else "failed")
        log.event("error", message=str(e).splitlines()[0] if str(e) else type(e).__name__)
        log.close()
        raise
    if info.is_main:
        with Workspace.open(ws_root) as ws:
            path = ws.run_dir(study_run) / "summary.json"
            tmp = path.with_name("summary.json.tmp")
            tmp.write_text(json.dumps(summary, indent=1))
            os.replace(tmp, path)
            ws.set_run_status(study_run, "finished")
    log.event("done", seconds=summary["seconds"], runs=list(summary["runs"]))
    log.close()
    return summary
