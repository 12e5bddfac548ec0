"""The demo's models: a small baseline and its Noisy Student on the demo workspace, Qt-free.

`ictview demo` trains them so that the ranker, review, compare and dashboard views have real
content. The steps are ordinary `ictview-train` commands (the `demo` config,
ictview/resources/configs/demo.toml), in the order that fills the views soonest:

    teacher baseline -> evaluate baseline -> pseudolabel baseline-pl -> student ss -> evaluate ss

(review, compare and the dashboard show the baseline after step 2, the ranker after step 3).
The GUI runs them one after the other through the training launcher (gui/training/demo_training.py);
`ictview demo --no-gui --train` runs them here in the foreground (`run_foreground`). A step
already done (a final checkpoint, a finished pseudo-label run, a metrics.json) is skipped,
so the demo can be stopped and started again and continues where it was.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ictview.store.workspace import DB_NAME, Workspace
from ictview.study.training_job import REPO_ROOT, JobSpec

DEMO_CONFIG = "demo"
BASELINE, PSEUDOLABELS, STUDENT = "baseline", "baseline-pl", "ss"
# measured 2026-12 on this project's shared 2-core machine: 146 s of CPU, 9.6 min wall at load ~10
EXPECTED_MINUTES = "3-10"


def demo_steps(ws_root: Path | str, device: str = "cpu") -> list[JobSpec]:
    """The five commands, in order (the workspace made absolute: children run elsewhere)."""
    ws = Path(ws_root).resolve()
    common = {"workspace": ws, "config": DEMO_CONFIG, "device": device}

    def stopped(run: str) -> bool:  # a training stopped earlier continues from its checkpoint
        return (ws / "runs" / run / "checkpoints" / "latest.pt").is_file()

    return [
        JobSpec("teacher", run=BASELINE, resume=stopped(BASELINE), **common),
        JobSpec("evaluate", run=BASELINE, **common),
        JobSpec("pseudolabel", teacher=BASELINE, run=PSEUDOLABELS, **common),
        JobSpec("student", teacher=BASELINE, pseudolabels=PSEUDOLABELS, variant="ss",
                run=STUDENT, resume=stopped(STUDENT), **common),
        JobSpec("evaluate", run=STUDENT, **common),
    ]  # fmt: skip


def describe(spec: JobSpec) -> str:
    """One line for the reader: what the step makes."""
    return {
        "teacher": f"train the baseline '{spec.run}' on the labeled site",
        "evaluate": f"evaluate '{spec.run}' on the validation and test sites",
        "pseudolabel": f"pseudo-label the unlabeled site with '{spec.teacher}'",
        "student": f"train the Noisy Student '{spec.run}' from '{spec.teacher}'",
    }.get(spec.command, spec.command)


def step_done(spec: JobSpec) -> bool:
    """Whether the step's result is already in the workspace."""
    root = Path(spec.workspace)
    run_dir = root / "runs" / spec.output_run
    if spec.command in ("teacher", "student"):
        return (run_dir / "checkpoints" / "final.pt").is_file()
    if spec.command == "evaluate":
        return (run_dir / "metrics.json").is_file()
    if spec.command == "pseudolabel":
        if not (root / DB_NAME).is_file():
            return False
        with Workspace.open(root) as ws:
            row = ws.run(spec.output_run)
        return row is not None and row["status"] == "finished"
    return False


def pending_steps(ws_root: Path | str, device: str = "cpu") -> list[JobSpec]:
    """The steps still to run. The first undone step and every step after it: a step's
    inputs come from the steps before, so nothing after a missing step is trusted."""
    steps = demo_steps(ws_root, device)
    for i, spec in enumerate(steps):
        if not step_done(spec):
            return steps[i:]
    return []


def foreground_argv(spec: JobSpec, python: str | None = None) -> list[str]:
    """The step's command with the human progress bar instead of JSON lines."""
    return [a for a in spec.argv(python) if a != "--json-progress"]


def run_foreground(ws_root: Path | str, *, python: str | None = None, device: str = "cpu",
                   say: Callable[[str], None] | None = None) -> int:
    """Run the pending steps here, one child process each (its output on this terminal).
    Returns 0 when all are done, else the exit status of the step that failed."""
    say = say or (lambda text: print(text, file=sys.stderr))
    todo = pending_steps(ws_root, device)
    total = len(demo_steps(ws_root, device))
    if not todo:
        say("demo models: already trained (baseline, ss)")
        return 0
    for spec in todo:
        k = total - len(todo) + todo.index(spec) + 1
        say(f"demo models, step {k}/{total}: {describe(spec)}")
        try:
            rc = subprocess.run(foreground_argv(spec, python), cwd=str(REPO_ROOT),
                                stdin=subprocess.DEVNULL).returncode
        except OSError as e:
            say(f"demo models: cannot start {python or sys.executable} ({e.strerror or e})")
            return 1
        if rc != 0:
            say(f"demo models: step {k} stopped (exit status {rc}); run the demo again to "
                "continue from it")
            return rc
    return 0
