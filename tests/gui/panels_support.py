"""Test data for the training / review panels: real workspace files, predictions made with
numpy (fast) where a trained model is not the point, and a real tiny teacher where it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PySide6 import QtWidgets

from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
# the exam whose reference the review tests replace with known squares (tiny: 8 x 128 x 128)
KNOWN_EXAM = "CQ500-CT-6"
Z = 4
MISSED = (slice(30, 42), slice(30, 42))  # reference only on slice Z: red
FOUND = (slice(30, 42), slice(70, 82))  # both: yellow
FALSE_POS = (slice(80, 92), slice(50, 62))  # prediction only: green
FN_SLICE, FP_SLICE = 2, 6  # one more missed region and one more false positive elsewhere


def known_reference(shape: tuple[int, int, int]) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[(Z, *MISSED)] = 2  # SDH
    lab[(Z, *FOUND)] = 4  # IPH
    lab[FN_SLICE, 100:106, 100:106] = 3
    return lab


def known_prediction(shape: tuple[int, int, int], strength: float) -> np.ndarray:
    p = np.full(shape, 0.02, np.float32)
    p[(Z, *FOUND)] = strength
    p[(Z, *FALSE_POS)] = 0.8
    p[FP_SLICE, 10:16, 10:16] = 0.8
    return p.astype(np.float16)


def add_runs(root: Path, runs=(("baseline", "teacher", 0.9), ("ss", "student", 0.95))) -> None:
    """Model runs with predictions on every test and validation exam: the reference blurred
    into probabilities (plus the known squares on KNOWN_EXAM), exam score = max."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    with Workspace.open(root) as ws:
        e = ws.exam(KNOWN_EXAM)
        ws.save_labels("reference", KNOWN_EXAM, known_reference((e.n_slices, e.rows, e.cols)),
                       "test-setup")
        for name, kind, strength in runs:
            ws.create_run(name, kind, {"ranker": {"top_percent": 10.0}},
                          parent=None if kind == "teacher" else "baseline")
            for ex in ws.exams(role="test") + ws.exams(role="validation"):
                shape = (ex.n_slices, ex.rows, ex.cols)
                if ex.name == KNOWN_EXAM:
                    prob = known_prediction(shape, strength)
                else:
                    lab = ws.load_labels("reference", ex.name)
                    ref = np.zeros(shape, np.float32) if lab is None else (
                        ((lab > 0) & (lab < 255)).astype(np.float32))
                    if lab is None and ws.exam_label(ex.name):
                        ref[shape[0] // 2, 60:70, 40:50] = 1.0  # a lesion the reads imply
                    prob = ndimage.gaussian_filter(ref, (0, 1.5, 1.5)) * strength
                    prob += rng.random(shape, np.float32) * 0.05
                    prob = np.clip(prob, 0, 1).astype(np.float16)
                scores = prob.reshape(shape[0], -1).max(1).astype(np.float32)
                ws.write_prediction(name, ex.name,
                                    Prediction(prob, scores, float(scores.max()), {"exam": ex.name}))
            ws.set_run_status(name, "finished")


def run_train(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`ictview-train ...` as a real child process (one torch thread)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    res = subprocess.run([sys.executable, "-m", "training.cli", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, check=False, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


QUICK = ["--config", "tiny", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=6",
         "--set", "train.val_every_epochs=0", "--set", "train.log_every_steps=2"]


def train_teacher_and_pseudolabel(root: Path) -> None:
    run_train("teacher", "--workspace", str(root), "--run", "baseline", *QUICK)
    run_train("pseudolabel", "--workspace", str(root), "--teacher", "baseline",
              "--config", "tiny")


def wait_until(predicate, timeout: float = 120.0, step: float = 0.05) -> None:
    """Process Qt events until predicate() is true (the panels poll their child on a timer)."""
    app = QtWidgets.QApplication.instance()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        app.processEvents()
        time.sleep(step)


def progress_records(root: Path, run: str) -> list[dict]:
    path = Path(root) / "runs" / run / "progress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
