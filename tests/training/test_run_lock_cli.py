"""Two `ictview-train` processes on the same --run: the second is refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
