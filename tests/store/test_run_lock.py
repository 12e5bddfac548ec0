"""One process per run: a live holder refuses the next one; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ictview.errors import IctviewError
from ictview.store.run_lock import LOCK_NAME, RunLock, _start_time

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


@pytest.fixture
def holder(tmp_path):
    proc = hold_in_child(tmp_path / "runs" / "baseline")
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_second_process_is_refused_while_the_first_holds_the_run(tmp_path, holder):
    with pytest.raises(IctviewError) as err:
        RunLock(tmp_path / "runs" / "baseline", "baseline").acquire()
    msg = str(err.value)
    assert "\n" not in msg
    assert f"run 'baseline' is in use by pid {holder.pid} on {socket.gethostname()}" in msg
    assert "ictview-train teacher" in msg and "use another --run" in msg


def test_the_lock_does_not_survive_a_killed_process(tmp_path, holder):
    run_dir = tmp_path / "runs" / "baseline"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (run_dir / LOCK_NAME).exists()  # kill -9: nothing cleaned up
    with RunLock(run_dir, "baseline") as lock:
        owner = json.loads((run_dir / LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["token"] == lock.token
    assert not (run_dir / LOCK_NAME).exists()  # released on exit
    assert list(run_dir.iterdir()) == []


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path):
    """The pid in the file is alive but is another process (started at another time)."""
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    live = os.getppid()
    started = _start_time(live)
    assert started is not None
    (run_dir / LOCK_NAME).write_text(json.dumps(
        {"pid": live, "host": socket.gethostname(), "started": str(int(started) + 1)}))
    with RunLock(run_dir, "r"):
        pass
    (run_dir / LOCK_NAME).write_text(json.dumps(
        {"pid": live, "host": socket.gethostname(), "started": started}))
    with pytest.raises(IctviewError, match=f"in use by pid {live}"):
        RunLock(run_dir, "r").acquire()


def test_a_lock_from_another_host_is_refused_with_what_to_do(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": 1234, "host": "gpu-node-7"}))
    with pytest.raises(IctviewError, match=f"pid 1234 on gpu-node-7.*delete {run_dir / LOCK_NAME}"):
        RunLock(run_dir, "r").acquire()


def test_the_same_process_cannot_take_a_run_twice(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    with RunLock(run_dir, "r"):
        with pytest.raises(IctviewError, match=f"in use by pid {os.getpid()}"):
            RunLock(run_dir, "r").acquire()
    with RunLock(run_dir, "r"):  # free again
        pass
