"""Catalog snapshots: what ranks > 0 of a multi-node run read instead of the live catalog."""

from __future__ import annotations

import sqlite3
import stat

import numpy as np
import pytest

from ictview.errors import IctviewError
from ictview.store.arrays import Prediction
from ictview.store.snapshot import SNAPSHOT_NAME, open_snapshot, write_snapshot
from ictview.store.workspace import Workspace


def _pred(shape) -> Prediction:
    prob = np.linspace(0, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return Prediction(prob.astype(np.float16), prob.max(axis=(1, 2)), float(prob.max()))


def test_snapshot_is_a_complete_read_only_copy(ws, exam_factory):
    ws.add_exam(exam_factory("A", seed=1))
    ws.add_exam(exam_factory("B", seed=2))  # still in the WAL: no checkpoint has run
    dest = ws.run_dir("r") / SNAPSHOT_NAME
    write_snapshot(ws.con, dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o444
    assert sorted(p.name for p in dest.parent.iterdir()) == [SNAPSHOT_NAME]
    con = open_snapshot(dest)
    try:
        assert [r[0] for r in con.execute("SELECT name FROM exams ORDER BY name")] == ["A", "B"]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        with pytest.raises(sqlite3.Error):
            con.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    finally:
        con.close()
    assert sorted(p.name for p in dest.parent.iterdir()) == [SNAPSHOT_NAME]  # no -wal, -shm
    # a later snapshot replaces it whole (rename over the read-only file)
    ws.add_exam(exam_factory("C", seed=3))
    write_snapshot(ws.con, dest)
    with Workspace.open_snapshot(ws.root, dest) as snap:
        assert [e.name for e in snap.exams()] == ["A", "B", "C"]


def test_snapshot_workspace_writes_files_not_rows(ws, exam_factory):
    ws.add_exam(exam_factory("A", seed=1))
    dest = write_snapshot(ws.con, ws.run_dir("r") / SNAPSHOT_NAME)
    with Workspace.open_snapshot(ws.root, dest, login=ws.login) as snap:
        assert snap.read_only and snap.exam("A").n_slices == 6
        with pytest.raises(sqlite3.Error):
            snap.write_prediction("r", "A", _pred((6, 32, 32)))
        sha1 = snap.write_prediction_file("r", "A", _pred((6, 32, 32)))
    assert ws.predicted_exams("r") == ["A"]
    assert ws.record_unrecorded_predictions("r", ["A"]) == ["A"]  # hashed by rank 0
    row = ws.con.execute("SELECT sha1 FROM prediction_files WHERE run='r'").fetchone()
    assert row[0] == sha1
    assert ws.record_unrecorded_predictions("r", ["A"]) == []


def test_missing_or_damaged_snapshot_is_one_line(tmp_path):
    with pytest.raises(IctviewError, match="catalog snapshot not found"):
        open_snapshot(tmp_path / SNAPSHOT_NAME)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(IctviewError, match="bad.sqlite: not a usable catalog snapshot"):
        open_snapshot(bad)
