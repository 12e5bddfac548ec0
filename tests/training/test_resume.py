"""Resume after a kill continues the same run; SIGTERM checkpoints and exits 75 (subprocesses).

The CLI runs as a child process, as the GUI runs it: killed with SIGKILL after a checkpoint,
resumed with --resume, its next-step loss equals the uninterrupted run's (CPU, one thread,
batches a function of (seed, step)).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.progress import read_progress

REPO = Path(__file__).resolve().parents[2]
ARGS = ["-c", "tiny", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=40",
        "--set", "train.batch_size=4", "--set", "augment.crop=32",
        "--set", "train.checkpoint_every_steps=3", "--set", "train.log_every_steps=1",
        "--set", "train.val_every_epochs=0"]
STEP_KEYS = {"event", "step", "epoch", "loss", "lr", "patches_per_s", "eta_s"}


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def _cmd(ws: Path, run: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training.cli", "teacher", "-w", str(ws), "--run", run,
            *ARGS, *extra]


def _start_and_signal(ws: Path, run: str, sig: int, min_step: int,
                      *extra: str) -> subprocess.Popen:
    """Start a run and send ``sig`` once a checkpoint at >= min_step is on disk."""
    proc = subprocess.Popen(_cmd(ws, run, "--json-progress", *extra), cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = ws / "runs" / run / "progress.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e["event"] == "checkpoint" and e["step"] >= min_step for e in read_progress(log)):
            proc.send_signal(sig)
            break
        time.sleep(0.05)
    return proc


def _losses(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["event"] == "step"}


@pytest.fixture(scope="module")
def ws(tiny_workspace, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("resume") / "ws"
    shutil.copytree(tiny_workspace, root)
    return root


def test_resume_after_sigkill_gives_the_same_next_step_loss(ws: Path) -> None:
    full = subprocess.run(_cmd(ws, "full", "--json-progress"), cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    # stdout: one JSON object per line, the GUI's contract
    lines = [json.loads(x) for x in full.stdout.splitlines()]
    steps = [e for e in lines if e["event"] == "step"]
    assert len(steps) == 40 and STEP_KEYS <= set(steps[0])
    reference = _losses(lines)

    proc = _start_and_signal(ws, "killed", signal.SIGKILL, min_step=3)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "killed before the end (40 steps)"
    resumed = subprocess.run(_cmd(ws, "killed", "--resume", "--json-progress"), cwd=REPO,
                             env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(x) for x in resumed.stdout.splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["resumed"] and start["step"] >= 3
    after = _losses(events)
    s = start["step"]
    assert after[s + 1] == reference[s + 1]  # bit-identical next step
    assert all(after[k] == reference[k] for k in after)
    assert max(after) == 40


def test_sigterm_saves_a_checkpoint_and_exits_75(ws: Path) -> None:
    import torch

    proc = _start_and_signal(ws, "stopped", signal.SIGTERM, min_step=3)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert len(err.strip().splitlines()) == 1 and "--resume" in err
    events = [json.loads(x) for x in out.splitlines()]
    assert events[-1]["event"] == "interrupted"
    stopped_at = events[-1]["step"]
    ck = torch.load(ws / "runs" / "stopped" / "checkpoints" / "latest.pt", weights_only=False)
    assert ck["step"] == stopped_at and ck["sampler"]["step"] == stopped_at
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config", "fingerprint"} <= set(ck)
    from ictview.store.workspace import Workspace

    with Workspace.open(ws) as w:
        assert w.run("stopped")["status"] == "interrupted"
    # starting again without --resume is refused in one line; --resume finishes the run
    again = subprocess.run(_cmd(ws, "stopped"), cwd=REPO, env=_env(), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 1 and "--resume" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_resume_with_loader_processes_is_bit_identical_to_the_in_process_run(ws: Path) -> None:
    """Two loader processes (spawned, each opening the workspace read-only): killed after a
    checkpoint and resumed, every step's loss equals the run without loader processes."""
    ref = subprocess.run(_cmd(ws, "inproc", "--json-progress", "--loader-workers", "0"),
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    ref_events = [json.loads(x) for x in ref.stdout.splitlines()]
    assert ref_events[0]["loader_workers"] == 0
    reference = _losses(ref_events)

    proc = _start_and_signal(ws, "workers", signal.SIGKILL, 3, "--loader-workers", "2")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "killed before the end (40 steps)"
    before = _losses([json.loads(x) for x in out.splitlines()])
    assert before and all(before[k] == reference[k] for k in before)
    resumed = subprocess.run(_cmd(ws, "workers", "--resume", "--json-progress",
                                  "--loader-workers", "2"),
                             cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(x) for x in resumed.stdout.splitlines()]
    start = events[0]
    assert start["resumed"] and start["step"] >= 3 and start["loader_workers"] == 2
    after = _losses(events)
    assert min(after) == start["step"] + 1 and max(after) == 40
    assert all(after[k] == reference[k] for k in after)
