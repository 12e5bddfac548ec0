"""Training jobs without Qt: command lines, the progress state built from JSON lines, and
the file-backed child process (real processes: a small Python script stands in for
ictview-train where a trained model is not the point)."""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path

import pytest

from ictview.errors import IctviewError
from ictview.study.training_job import (
    JobProcess,
    JobSpec,
    JobState,
    fmt_duration,
    presets,
    read_config,
    read_history,
    toml_value,
)


def test_command_lines(tmp_path):
    ws = tmp_path / "ws"
    t = JobSpec("teacher", ws, run="baseline", overrides=["train.epochs=2"], device="cpu")
    a = t.argv("py")
    assert a[:4] == ["py", "-m", "training.cli", "teacher"]
    assert a[a.index("--set") + 1] == "train.epochs=2" and "--json-progress" in a
    assert a[-2:] == ["--run", "baseline"] and "--resume" not in a
    assert t.resumed().argv("py")[-1] == "--resume"
    s = JobSpec("student", ws, teacher="baseline", pseudolabels="baseline-pl", variant="no-ranker")
    assert s.output_run == "no-ranker"
    a = s.argv("py")
    assert a[a.index("--pseudolabels") + 1] == "baseline-pl" and "--variant" in a
    assert JobSpec("pseudolabel", ws, teacher="baseline").output_run == "baseline-pl"
    assert JobSpec("study", ws, run="p1-").output_run == "p1-study"
    assert "--resume" not in JobSpec("study", ws).resumed().argv("py")  # reruns continue
    for bad in (JobSpec("student", ws), JobSpec("evaluate", ws), JobSpec("frob", ws),
                JobSpec("teacher", ws, run="a b"), JobSpec("teacher", ws, overrides=["x=1"])):
        with pytest.raises(IctviewError):
            bad.argv("py")


def test_presets_and_values():
    names = presets()
    assert {"tiny", "paper"} <= set(names)
    assert read_config("tiny")["train"]["device"] == "cpu"
    with pytest.raises(IctviewError):
        read_config("no-such-preset")
    assert [toml_value(v) for v in (True, 3, 0.5, [1, 2], ["a"], "x")] == [
        "true", "3", "0.5", "[1, 2]", '["a"]', "x"]
    assert fmt_duration(75) == "1 min 15 s" and fmt_duration(math.nan) == "–"


def rec(event: str, **kw) -> str:
    return json.dumps({"event": event, "run": kw.pop("run", "baseline"), "time": 0.0, **kw})


def test_state_from_progress_records():
    st = JobState(command="teacher", status="running")
    st.feed_stdout(rec("start", step=0, total_steps=40, kind="teacher", device="cpu",
                       parameters=1000, resumed=False))
    for s in (10, 20):
        st.feed_stdout(rec("step", step=s, loss=1.0 / s, seg_loss=0.1, cls_loss=0.2, lr=0.1,
                           patches_per_s=120.0, eta_s=30.0))
    st.feed_stdout("not json: kept in the log")
    st.feed_stdout(rec("checkpoint", step=20, name="latest", path="x"))
    assert (st.done, st.total, st.fraction) == (20, 40, 0.5)
    assert st.eta_s == 30.0 and st.rate == 120.0 and st.rate_unit == "patches/s"
    assert [p.step for p in st.loss["baseline"]] == [10, 20]
    assert "not json: kept in the log" in st.log and st.last_checkpoint == "latest at step 20"
    # a resumed run starts at its checkpoint and does not duplicate steps on the curve
    st.feed_stdout(rec("start", step=10, total_steps=40, kind="teacher", resumed=True))
    st.feed_stdout(rec("step", step=20, loss=0.3, seg_loss=0, cls_loss=0, lr=0, eta_s=1))
    assert st.resumed and [p.step for p in st.loss["baseline"]] == [10, 20]
    st.feed_stdout(rec("predict", run="baseline-pl", done=3, total=8, slices_per_s=50.0, eta_s=2))
    assert st.run == "baseline-pl" and st.phase == "predict" and st.rate_unit == "slices/s"
    st.finish(0)
    assert st.status == "finished" and st.done == st.total


@pytest.mark.parametrize("code, status, needle", [
    (75, "interrupted", "Resume"),
    (1, "failed", "my.toml: train.epochs must be an integer"),
    (3, "failed", "loss became nan"),
    (-signal.SIGKILL, "failed", "SIGKILL"),
])
def test_how_a_child_ended(code, status, needle):
    st = JobState(command="teacher")
    st.feed_stdout(rec("start", step=0, total_steps=10, kind="teacher"))
    if code == 1:
        st.feed_stderr("ictview-train: my.toml: train.epochs must be an integer, got 'x'")
    if code == 3:
        st.feed_stdout(rec("error", message="baseline: loss became nan between steps 2 and 4"))
    st.finish(code)
    assert st.status == status and needle in st.message


def test_traceback_reports_its_last_line():
    st = JobState()
    for line in ("Traceback (most recent call last):", '  File "x.py", line 1',
                 "    boom()", "RuntimeError: CUDA error: out of memory"):
        st.feed_stderr(line)
    st.finish(1)
    assert st.message == "RuntimeError: CUDA error: out of memory"


CHILD = r"""
import json, signal, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
print(json.dumps({"event": "start", "run": "r", "step": 0, "total_steps": 100}), flush=True)
sys.stdout.write('{"event": "step", "run": "r", "st'); sys.stdout.flush()
time.sleep(0.3)
sys.stdout.write('ep": 1, "loss": 0.5}\n'); sys.stdout.flush()
print("warming up", file=sys.stderr, flush=True)
for i in range(2, 1000):
    if stop:
        print(json.dumps({"event": "interrupted", "run": "r", "step": i}), flush=True)
        sys.exit(75)
    time.sleep(0.02)
sys.stdout.write("no newline at the end")
"""


def wait_for(job: JobProcess, st: JobState, until, timeout: float = 20.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out, err, rc = job.poll()
        for line in out:
            st.feed_stdout(line)
        for line in err:
            st.feed_stderr(line)
        if rc is not None or until(st):
            return rc
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_child_process_lines_and_sigterm(tmp_path):
    job = JobProcess([sys.executable, "-c", CHILD], tmp_path / "logs", "job")
    job.start()
    st = JobState(status="running")
    wait_for(job, st, lambda s: s.done == 1)  # the split line arrived whole
    assert st.loss["r"][0].loss == 0.5
    assert job.running and job.terminate()
    rc = wait_for(job, st, lambda s: False)
    assert rc == 75 and not job.running
    st.finish(rc)
    assert st.status == "interrupted"
    assert "warming up" in st.log
    assert json.loads((tmp_path / "logs" / "job.json").read_text())["argv"][1] == "-c"
    assert (tmp_path / "logs" / "job.out").read_text().count("\n") == 3


def test_child_final_line_without_newline_and_exit_code(tmp_path):
    script = ("import sys; print('a'); sys.stdout.write('b'); sys.stderr.write('oops'); "
              "sys.exit(4)")
    job = JobProcess([sys.executable, "-c", script], tmp_path, "x")
    job.start()
    st = JobState()
    rc = wait_for(job, st, lambda s: False)
    assert rc == 4 and list(st.log) == ["a", "b", "oops"]
    st.finish(rc)
    assert st.message == "oops"
    assert job.poll() == ([], [], None)  # the exit is reported once


def test_history_from_progress_file(tmp_path):
    run_dir = tmp_path / "runs" / "baseline"
    run_dir.mkdir(parents=True)
    lines = [rec("start", step=0, total_steps=4, kind="teacher"),
             rec("step", step=2, loss=0.9, seg_loss=0.1, cls_loss=0.8, eta_s=1),
             rec("step", step=4, loss=0.7, seg_loss=0.1, cls_loss=0.6, eta_s=0), "{torn"]
    (run_dir / "progress.jsonl").write_text("\n".join(lines))
    st = read_history(tmp_path, "baseline")
    assert [p.loss for p in st.loss["baseline"]] == [0.9, 0.7] and st.done == 4
    assert read_history(tmp_path, "none").records == 0
    assert Path(run_dir / "progress.jsonl").exists()
