"""A workspace on a shared filesystem: under torchrun only rank 0 opens the live catalog.

Two gloo ranks on CPU train a 2-step teacher, pseudo-label with it and train a student;
rank 1 runs with a tripwire on sqlite3.connect that refuses anything but a read-only,
immutable open, so it can only read the catalog snapshots rank 0 wrote (chmod 0444). The
prediction files equal those of a single-process pseudo-label run array by array, and
rank 0 recorded rank 1's files in the catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np

from ictview.store import arrays
from ictview.store.check import check_workspace
from ictview.store.snapshot import SNAPSHOT_NAME
from ictview.store.workspace import Workspace
from training.pseudolabel import pseudolabel

REPO = Path(__file__).resolve().parents[2]
SETS = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=2", "augment.crop=32",
        "train.val_every_epochs=0", "train.log_every_steps=1"]

# what each rank runs: the real CLI, with every sqlite3.connect logged and, on ranks > 0,
# refused unless it is a read-only immutable URI open (the snapshot)
ENTRY = '''
import json, os, sqlite3, sys
from pathlib import Path

rank = os.environ["RANK"]
opened = []
_connect = sqlite3.connect


def guarded(database, *args, **kwargs):
    target = str(database)
    opened.append(target)
    ro = kwargs.get("uri") and "mode=ro" in target and "immutable=1" in target
    if rank != "0" and not ro:
        raise RuntimeError(f"rank {rank} opened {target} (not a read-only snapshot)")
    return _connect(database, *args, **kwargs)


sqlite3.connect = guarded
from training.cli import main

rc = main(sys.argv[1:])
Path(os.environ["OPENED_LOG"] + rank).write_text(json.dumps(opened))
sys.exit(rc)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path: Path, log: str, *args: str) -> dict[int, list[str]]:
    """2 gloo ranks running `ictview-train ARGS` behind the tripwire -> what each opened."""
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               OPENED_LOG=str(tmp_path / f"{log}-"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
           str(_free_port()), str(entry), "--", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r: json.loads((tmp_path / f"{log}-{r}").read_text()) for r in (0, 1)}


def test_two_ranks_rank1_read_only_catalog_equal_single_process(tiny_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(tiny_workspace, ws)
    sets = [a for s in SETS for a in ("--set", s)]

    def torchrun(log: str, *args: str) -> None:
        _torchrun(tmp_path, log, *args)

    torchrun("teacher", "teacher", "-w", str(ws), "-c", "tiny", "--run", "t", "--quiet", *sets)
    pseudolabel(ws, "t", "single-pl", quiet=True)
    torchrun("pl", "pseudolabel", "-w", str(ws), "--teacher", "t", "--run", "ddp-pl", "--quiet")
    # the student looks up the ranker choice made in review: on rank 0 alone
    torchrun("student", "student", "-w", str(ws), "-c", "tiny", "--teacher", "t",
             "--pseudolabels", "ddp-pl", "--run", "s", "--quiet", *sets)

    for log, run in (("teacher", "t"), ("pl", "ddp-pl"), ("student", "s")):
        snapshot = ws / "runs" / run / SNAPSHOT_NAME
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o444  # read-only for everyone
        assert not list(snapshot.parent.glob(f"{SNAPSHOT_NAME}-*"))  # no -wal, -shm, -journal
        opened = {r: json.loads((tmp_path / f"{log}-{r}").read_text()) for r in (0, 1)}
        assert opened[1] and all("immutable=1" in t and f"/{run}/{SNAPSHOT_NAME}" in t
                                 for t in opened[1]), opened[1]
        assert any(t.endswith("workspace.sqlite") for t in opened[0])

    with Workspace.open(ws) as w:
        names = [e.name for e in w.exams(role="unlabeled")]
        assert len(names) >= 2  # both ranks had exams
        assert w.predicted_exams("ddp-pl") == w.predicted_exams("single-pl") == names
        for n in names:
            a = arrays.read_prediction(w.prediction_path("ddp-pl", n))
            b = arrays.read_prediction(w.prediction_path("single-pl", n))
            assert a.prob.dtype == b.prob.dtype == np.float16
            assert np.array_equal(a.prob, b.prob), n
            assert np.array_equal(a.slice_scores, b.slice_scores), n
            assert a.exam_score == b.exam_score and a.attrs == b.attrs, n
        # rank 0 recorded every rank's file, with the sha1 the writing rank computed
        rows = dict(w.con.execute(
            """SELECT e.name, p.sha1 FROM prediction_files p JOIN exams e ON e.id = p.exam_id
               WHERE p.run = 'ddp-pl'""").fetchall())
        assert sorted(rows) == sorted(names)
        assert all(rows[n] == arrays.file_sha1(w.prediction_path("ddp-pl", n)) for n in names)
        assert w.run("ddp-pl")["status"] == "finished"
    report = check_workspace(ws)
    assert report.ok, report.problems


def test_study_under_torchrun_rank1_reads_snapshots_only(tiny_workspace, tmp_path):
    """The orchestrator (baseline, pseudo-labels, SS student, evaluations) on 2 ranks: the
    stage decisions are rank 0's, rank 1 opens nothing but the runs' snapshots."""
    ws = tmp_path / "ws"
    shutil.copytree(tiny_workspace, ws)
    sets = SETS + ["study.no_ranker=false", "study.image_oracle=false",
                   "study.pixel_oracle=false", "study.contrast_variants=[]"]
    opened = _torchrun(tmp_path, "study", "study", "-w", str(ws), "-c", "tiny", "--quiet",
                       *[a for s in sets for a in ("--set", s)])
    runs = {t.split("/runs/")[1].split("/")[0] for t in opened[1]}
    assert runs == {"baseline", "baseline-pl", "ss"}, opened[1]
    assert all("mode=ro&immutable=1" in t for t in opened[1])
    with Workspace.open(ws) as w:
        assert w.run("study")["status"] == "finished"
        assert w.run("ss")["status"] == "finished"
    assert check_workspace(ws).ok
