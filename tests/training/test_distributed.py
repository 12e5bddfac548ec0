"""DDP on CPU: a 2-process gloo torchrun training run, its checkpoint and predictions.

Runs in CI (a few steps of the width-1/8 net; about 15 s, most of it two interpreters
starting): the checkpoint written by rank 0 loads, matches the single-process run's model
layout and step count, and the pseudo-labels sharded over the two ranks cover every exam with
the single-process shapes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ictview.store.workspace import Workspace
from training.inference import Predictor
from training.pseudolabel import pseudolabel
from training.checkpoints import checkpoint_path

REPO = Path(__file__).resolve().parents[2]
SETS = ["train.epochs=1", "train.steps_per_epoch=4", "train.batch_size=4", "augment.crop=32",
        "train.val_every_epochs=0", "train.log_every_steps=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
           "2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "training.cli", "--", *args]  # "--": torchrun would take --run as --run-path
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_two_process_gloo_run_matches_single_process(tiny_workspace, tmp_path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(tiny_workspace, ws)
    sets = [a for s in SETS for a in ("--set", s)]
    ddp = _torchrun("teacher", "-w", str(ws), "-c", "tiny", "--run", "ddp", "--quiet", *sets)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    pl = _torchrun("pseudolabel", "-w", str(ws), "--teacher", "ddp", "--quiet")
    assert pl.returncode == 0, pl.stderr[-2000:]

    from training.cli import main

    assert main(["teacher", "-w", str(ws), "-c", "tiny", "--run", "single", "--quiet", *sets]) == 0
    pseudolabel(ws, "single", quiet=True)

    a = torch.load(checkpoint_path(ws, "ddp", "final"), weights_only=False)
    b = torch.load(checkpoint_path(ws, "single", "final"), weights_only=False)
    assert a["world"] == 2 and b["world"] == 1
    assert a["step"] == b["step"] == 4
    assert a["model"].keys() == b["model"].keys()
    assert all(a["model"][k].shape == b["model"][k].shape for k in a["model"])
    assert not any(k.startswith("module.") for k in a["model"])
    assert Predictor.from_checkpoint(checkpoint_path(ws, "ddp", "final")) is not None

    with Workspace.open(ws) as w:
        names = [e.name for e in w.exams(role="unlabeled")]
        assert w.predicted_exams("ddp-pl") == w.predicted_exams("single-pl") == names
        for n in names:
            pa, pb = w.read_prediction("ddp-pl", n), w.read_prediction("single-pl", n)
            assert pa.prob.shape == pb.prob.shape and pa.prob.dtype == np.float16
            assert pa.slice_scores.shape == pb.slice_scores.shape
        assert w.run("ddp")["status"] == "finished" and w.run("ddp-pl")["status"] == "finished"
    events = (ws / "runs" / "ddp" / "progress.jsonl").read_text().splitlines()
    assert sum('"event": "start"' in e for e in events) == 1, "rank 0 alone writes the log"
