"""`ictview bench assist`: does model-assisted labeling help? (issue 16) A benchmark that
prints figures, never a timed test.

A simulated rater on the synthetic study: the reference masks play the radiologist. Each
"correction" replaces the model's proposal (ictview/study/model_start.py: validation-chosen
threshold, brain mask, components >= min size) by the reference and costs the voxels it
changes (hemorrhage voxels added or removed; subtypes aside). Starting from empty costs
every reference hemorrhage voxel.

Set-up: the `tiny` study (or `--preset`), a teacher trained on `--seed-exams` of the
labeled site's reference masks; the other labeled exams are the pool. For each strategy
(uncertainty, random) and round: the queue (`ictview next`) serves K exams of the pool,
the rater corrects them into its labelset, `ictview-train finetune` continues from the
current model with them, `ictview-train evaluate` predicts validation, test and pool,
and the round's test-site pixel AP and Dice are printed (from metrics.json). Training
runs are `ictview-train` child processes (the core stays torch-free).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ictview.errors import IctviewError

SEED_LABELSET = "bench-seed"
STRATEGIES = ("uncertainty", "random")


def add_bench_assist_parser(bsub) -> None:
    b = bsub.add_parser("assist", help="simulated rater: uncertainty vs random queue, fine-tune "
                        "rounds, voxels to change from the model vs from empty")
    b.add_argument("--preset", default="tiny", help="synthetic preset (default tiny)")
    b.add_argument("--config", default="tiny", help="training config (default tiny)")
    b.add_argument("--k", type=int, default=1, help="exams labeled per round (default 1)")
    b.add_argument("--rounds", type=int, default=2, help="rounds per strategy (default 2)")
    b.add_argument("--seed-exams", type=int, default=2,
                   help="labeled exams the teacher starts with (default 2)")
    b.add_argument("--teacher-steps", type=int, default=160)
    b.add_argument("--finetune-steps", type=int, default=40)
    b.add_argument("--device", default="cpu")
    b.add_argument("--keep", type=Path, default=None,
                   help="build the workspace here and keep it (default: a temp folder)")


def _train(args: list[str], device: str, log) -> None:
    cmd = [sys.executable, "-m", "training.cli", *args, "--quiet", "--device", device]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log(f"  ictview-train {' '.join(args[:1] + args[3:])}: {time.monotonic() - t0:.0f} s")
    if p.returncode != 0:
        raise IctviewError(f"ictview-train {args[0]} failed ({p.returncode}): "
                           f"{(p.stderr.strip().splitlines() or ['no message'])[-1]}")


def _steps(n: int) -> list[str]:
    per = min(n, 40)
    epochs = max(1, round(n / per))
    return ["--set", f"train.epochs={epochs}", "--set", f"train.steps_per_epoch={per}",
            "--set", f"train.val_every_epochs={epochs}", "--set", "evaluate.n_boot=20"]


def _test_pixels(ws, run: str) -> tuple[float | None, float | None]:
    m = json.loads((ws.run_dir(run) / "metrics.json").read_text())
    px = m["roles"].get("test", {}).get("pixel", {})
    return (px.get("ap", {}).get("value"), px.get("dice", {}).get("value"))


def _hem(labels: np.ndarray) -> np.ndarray:
    return (labels > 0) & (labels != 255)


def correction_cost(ws, run: str | None, exam: str) -> tuple[int, int]:
    """(voxels to change starting from `run`'s proposal, from empty) to reach the reference."""
    from ictview.study.model_start import propose

    ref = _hem(ws.load_labels("reference", exam))
    if run is None:
        return int(ref.sum()), int(ref.sum())
    prop = propose(ws, run, exam).components > 0
    return int(np.count_nonzero(prop ^ ref)), int(ref.sum())


def bench_assist(a, log=print) -> dict:
    from ictview.io.synthetic_import import import_synthetic
    from ictview.store.workspace import Workspace
    from ictview.study.active_learning import next_exams
    from ictview.synth import generate

    t_start = time.monotonic()
    tmp = None
    if a.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-assist-")
        base = Path(tmp.name)
    else:
        base = a.keep
    src, root = base / "synth", base / "ws"
    generate(a.preset, src, seed=0, overwrite=True)
    with Workspace.create(root) as ws:
        import_synthetic(ws, src)
        labeled = [e for e in ws.labelset_exams("reference") if ws.exam(e).role == "labeled"]
        if len(labeled) < a.seed_exams + a.k:
            raise IctviewError(f"{a.preset}: {len(labeled)} labeled exams, need more than "
                               f"--seed-exams {a.seed_exams} + --k {a.k}")
        seed, pool = labeled[:a.seed_exams], labeled[a.seed_exams:]
        for e in seed:
            ws.save_labels(SEED_LABELSET, e, ws.load_labels("reference", e), "bench")
    log(f"ictview bench assist: preset {a.preset}, config {a.config}, {len(seed)} seed exams, "
        f"pool of {len(pool)}, K={a.k}, {a.rounds} rounds; teacher {a.teacher_steps} steps, "
        f"fine-tune {a.finetune_steps} steps; {a.device} (a shared machine: times are noisy)")
    common = ["--workspace", str(root), "--config", a.config, "--set",
              f"data.labelset={SEED_LABELSET}"]
    roles = ["--roles", "validation", "test", "labeled"]
    _train(["teacher", *common, "--run", "t0", *_steps(a.teacher_steps)], a.device, log)
    _train(["evaluate", *common, "--run", "t0", *roles, "--set", "evaluate.n_boot=20"],
           a.device, log)
    rows = []
    with Workspace.open(root) as ws:
        ap, dice = _test_pixels(ws, "t0")
        rows.append(("teacher", 0, len(seed), ap, dice, 0))
        from_model = from_empty = 0
        for e in pool:
            m, z = correction_cost(ws, "t0", e)
            from_model, from_empty = from_model + m, from_empty + z
    result = {"rounds": [], "pool_from_model": from_model, "pool_from_empty": from_empty}
    for strategy in STRATEGIES:
        ls = f"sim-{strategy}"
        current, cost, n = "t0", 0, len(seed)
        with Workspace.open(root) as ws:
            for e in seed:  # the rater's own labels start with the seed set (never served)
                ws.save_labels(ls, e, ws.load_labels("reference", e), ls)
        for r in range(1, a.rounds + 1):
            with Workspace.open(root) as ws:
                q = next_exams(ws, current, strategy, roles=("labeled",), n=a.k, rater=ls,
                               labelset=ls, seed=r)
                for s in q.served:
                    m, _ = correction_cost(ws, current, s.exam)
                    cost += m
                    ws.save_labels(ls, s.exam, ws.load_labels("reference", s.exam), ls)
                n += len(q.served)
            run = f"{strategy}-r{r}"
            _train(["finetune", *common, "--from", current, "--labelsets", ls, "--run", run,
                    *_steps(a.finetune_steps)], a.device, log)
            _train(["evaluate", *common, "--run", run, *roles, "--set", "evaluate.n_boot=20"],
                   a.device, log)
            with Workspace.open(root) as ws:
                ap, dice = _test_pixels(ws, run)
            rows.append((strategy, r, n, ap, dice, cost))
            current = run
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    log(f"{'strategy':<12}{'round':>6}{'labeled':>10}{'test pixel AP':>15}{'test Dice':>11}"
        f"{'voxels corrected':>18}")
    for s, r, n, ap, dice, cost in rows:
        log(f"{s:<12}{r:>6}{n:>10}{fmt(ap):>15}{fmt(dice):>11}{cost:>18}")
        result["rounds"].append({"strategy": s, "round": r, "labeled": n, "test_pixel_ap": ap,
                                 "test_dice": dice, "voxels_corrected": cost})
    saved = from_empty - from_model
    pct = 100.0 * saved / from_empty if from_empty else 0.0
    log(f"voxels a rater changes on the pool ({len(pool)} exams, teacher t0's proposals): "
        f"from the model {from_model}, from empty {from_empty}: the model saves {saved} "
        f"({pct:.0f} %)")
    log(f"total {time.monotonic() - t_start:.0f} s")
    if tmp is not None:
        tmp.cleanup()
    return result
