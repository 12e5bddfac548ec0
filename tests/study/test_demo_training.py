"""The demo's models: the steps `ictview demo` runs, what counts as done, and (slow) the
whole chain for real in the foreground, `ictview demo --no-gui --train`, on the tiny study
with a few-step `demo` config (ICTVIEW_CONFIG_DIR puts it before the shipped one)."""

from __future__ import annotations

import json
import shutil

import pytest

from ictview.cli import main as ictview_main
from ictview.store.workspace import Workspace
from ictview.study.demo_training import demo_steps, foreground_argv, pending_steps, step_done

FAST_DEMO = """
[model]
width = 0.125
blocks = [1, 1, 1, 1, 1, 1, 1, 1]
[augment]
crop = 64
positive_fraction = 0.8
[train]
epochs = 1
steps_per_epoch = 6
batch_size = 4
device = "cpu"
amp = "off"
channels_last = "off"
compile = "off"
log_every_steps = 2
val_every_epochs = 0
torch_threads = 1
[ranker]
k_hi = 0.5
k_lo = 0.2
[inference]
batch_size = 8
[evaluate]
n_boot = 20
"""


@pytest.fixture
def fast_demo_config(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "demo.toml").write_text(FAST_DEMO)
    monkeypatch.setenv("ICTVIEW_CONFIG_DIR", str(folder))
    return folder


def test_steps_fill_the_views_in_order(tmp_path):
    steps = demo_steps(tmp_path / "ws")
    assert [(s.command, s.output_run) for s in steps] == [
        ("teacher", "baseline"), ("evaluate", "baseline"), ("pseudolabel", "baseline-pl"),
        ("student", "ss"), ("evaluate", "ss")]  # fmt: skip
    assert all(s.workspace.is_absolute() and s.config == "demo" for s in steps)
    student = foreground_argv(steps[3])
    assert "--json-progress" not in student and "--resume" not in student
    assert student[student.index("--pseudolabels") + 1] == "baseline-pl"
    assert student[student.index("--teacher") + 1] == "baseline"
    assert student[student.index("--config") + 1] == "demo"


def test_done_steps_are_skipped_until_the_first_missing_one(tiny_workspace_copy):
    root = tiny_workspace_copy
    assert len(pending_steps(root)) == 5
    ckpt = root / "runs" / "baseline" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "latest.pt").write_bytes(b"")  # a training stopped earlier: resumed
    assert foreground_argv(pending_steps(root)[0])[-1] == "--resume"
    (ckpt / "final.pt").write_bytes(b"")
    assert [s.command for s in pending_steps(root)][:2] == ["evaluate", "pseudolabel"]
    (root / "runs" / "baseline" / "metrics.json").write_text("{}")
    pl = pending_steps(root)[0]
    assert pl.command == "pseudolabel" and not step_done(pl)
    with Workspace.open(root) as ws:
        ws.create_run("baseline-pl", "pseudolabel", {}, parent="baseline")
        ws.set_run_status("baseline-pl", "running")
    assert not step_done(pl)  # an interrupted pseudo-labeling is not done
    with Workspace.open(root) as ws:
        ws.set_run_status("baseline-pl", "finished")
    assert [s.output_run for s in pending_steps(root)] == ["ss", "ss"]


@pytest.mark.slow
def test_demo_no_gui_train_makes_both_models(synth_tiny, tmp_path, fast_demo_config, capsys):
    ws = tmp_path / "demo"
    shutil.copytree(synth_tiny, ws / "synth-source")  # the demo's own synth step, done already
    args = ["demo", "--preset", "tiny", "--workspace", str(ws), "--no-gui"]
    assert ictview_main(args) == 0
    assert "demo models: not trained (ictview demo --no-gui --train" in capsys.readouterr().err
    assert ictview_main(args + ["--train"]) == 0
    err = capsys.readouterr().err
    assert "step 1/5: train the baseline" in err and "step 5/5: evaluate 'ss'" in err
    assert "demo models ready" in err
    # the import's progress reporters were closed before training (no heartbeat lines)
    assert "import " not in err.split("step 1/5")[1]
    with Workspace.open(ws) as wsx:
        runs = {r["name"]: r for r in wsx.runs()}
        test = {e.name for e in wsx.exams(role="test")}
        for run in ("baseline", "ss"):
            assert test <= set(wsx.predicted_exams(run)), run
    assert runs["ss"]["kind"] == "student" and runs["ss"]["parent"] == "baseline"
    assert runs["baseline-pl"]["status"] == "finished"
    for run in ("baseline", "ss"):
        metrics = json.loads((ws / "runs" / run / "metrics.json").read_text())
        assert metrics["roles"]["test"]["exam"]["auc"]["value"] is not None
    log = (ws / "runs" / "baseline" / "progress.jsonl").read_text()
    assert ictview_main(args + ["--train"]) == 0  # again: nothing is trained twice
    assert "already trained" in capsys.readouterr().err
    assert (ws / "runs" / "baseline" / "progress.jsonl").read_text() == log
    from ictview.stats.report import run_report

    doc = run_report(ws, None, tmp_path / "report", n_boot=20)
    assert [r["name"] for r in doc["runs"]] == ["baseline", "ss"]
