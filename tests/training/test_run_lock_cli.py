"""Two `ictview-train` processes on the same --run: the second is refused in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ictview.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
HOLDER = textwrap.dedent("""
    import sys, time
    from ictview.store.run_lock import RunLock
    lock = RunLock(sys.argv[1], "baseline", "ictview-train teacher").acquire()
    print("held", flush=True)
    time.sleep(120)
""")


def hold_in_child(run_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_trainer_on_a_run_in_use_gets_one_line(tmp_path):
    root = tmp_path / "ws"
    Workspace.create(root).close()
    holder = hold_in_child(root / "runs" / "baseline")  # a live process owns the run
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        r = subprocess.run(
            [sys.executable, "-m", "training.cli", "teacher", "--workspace", str(root),
             "--run", "baseline", "--config", "tiny", "--device", "cpu", "--quiet"],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"run 'baseline' is in use by pid {holder.pid}" in lines[0]
    assert not (root / "runs" / "baseline" / "checkpoints").exists()  # nothing of the run touched


@pytest.mark.slow  # three torch processes and a gloo group: about a minute on 2 loaded cores
def test_under_torchrun_every_rank_stops_on_the_refusal(tmp_path):
    """Rank 0 is refused; rank 1 must not wait at the barrier for it (it used to hang)."""
    root = tmp_path / "ws"
    Workspace.create(root).close()
    holder = hold_in_child(root / "runs" / "baseline")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        r = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
             "2", "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "training.cli",
             "--", "teacher", "-w", str(root), "-c", "tiny", "--run", "baseline", "--quiet",
             "--device", "cpu"],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=240)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert r.returncode != 0
    assert f"run 'baseline' is in use by pid {holder.pid}" in r.stderr
    assert "refused on rank 0" in r.stderr  # rank 1 left too, with its own line
