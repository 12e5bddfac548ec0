from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ictview.errors import IctviewError
from ictview.store.schema import SCHEMA_VERSION
from ictview.store.workspace import Workspace



def test_exam_round_trip(ws, exam_factory):
    new = exam_factory("ATL-1")
    exam = ws.add_exam(new)
    assert exam.role == "labeled" and exam.n_slices == 6 and exam.spacing == (5.0, 0.5, 0.5)
    vol = ws.read_volume("ATL-1")
    np.testing.assert_array_equal(vol.hu, new.hu)
    assert vol.sop_uids == new.sop_uids
    assert vol.geometry == new.geometry
    np.testing.assert_array_equal(ws.load_labels("reference", "ATL-1"), new.masks["reference"])
    assert ws.exam_label("ATL-1") == 1  # 2 of 3 readers
    labels = ws.image_labels("ATL-1")
    assert labels.shape == (6, 6) and labels[2, 0] == 1 and labels[3, 0] == 0 and labels[0, 0] == -1


def test_schema_version_and_wal(ws):
    assert ws.summary()["schema_version"] == SCHEMA_VERSION
    assert ws.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(ws, tmp_path):
    ws.con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(IctviewError, match="newer than this ictview"):
        Workspace.open(tmp_path / "ws")


def test_same_study_cannot_be_added_twice(ws, exam_factory):
    ws.add_exam(exam_factory("ATL-1"))
    dup = exam_factory("ATL-1b")  # same study UID (same seed)
    with pytest.raises(sqlite3.IntegrityError):
        ws.add_exam(dup)
    assert [e.name for e in ws.exams()] == ["ATL-1"]


def test_failed_commit_leaves_no_rows(ws, exam_factory):
    ws.add_exam(exam_factory("ATL-1", seed=1))
    clash = exam_factory("ATL-2", seed=2)
    clash.sop_uids[3] = "1.2.3.1.0"  # a SOP UID that already belongs to ATL-1
    with pytest.raises(sqlite3.IntegrityError):
        ws.add_exam(clash)
    assert [e.name for e in ws.exams()] == ["ATL-1"]
    assert ws.con.execute("SELECT COUNT(*) FROM slices").fetchone()[0] == 6
    # the orphan files are removed by the next import
    assert ws.volume_path("ATL-2").exists()
    with ws.import_lock():
        pass
    assert not ws.volume_path("ATL-2").exists()
    assert not ws.label_path("reference", "ATL-2").exists()
    assert ws.volume_path("ATL-1").exists()


def test_save_labels_revisions_and_audit(ws, exam_factory):
    ws.add_exam(exam_factory("ATL-1"))
    labels = np.zeros((6, 32, 32), np.uint8)
    labels[1, :4, :4] = 2
    ws.save_labels("alice", "ATL-1", labels, rater="alice", seconds_on_task=12.5)
    ws.save_labels("alice", "ATL-1", labels, rater="alice", seconds_on_task=2.5)
    row = ws.con.execute("SELECT * FROM label_files WHERE labelset='alice'").fetchone()
    assert row["revision"] == 2 and row["seconds_on_task"] == 15.0 and row["voxels_labeled"] == 16
    np.testing.assert_array_equal(ws.load_labels("alice", "ATL-1"), labels)
    assert ws.load_labels("alice", "nope") is None
    with pytest.raises(IctviewError, match="shape"):
        ws.save_labels("alice", "ATL-1", labels[:3], rater="alice")
    actions = [r[0] for r in ws.con.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["import_exam", "save_labels", "save_labels"]


def test_audit_log_is_append_only(ws):
    ws.audit("admin", "override", None, "why")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ws.con.execute("UPDATE audit_log SET detail='edited'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ws.con.execute("DELETE FROM audit_log")


def test_site_role_is_fixed(ws):
    with pytest.raises(IctviewError, match="already has role"):
        ws.ensure_site("atlantis", "test")
    with pytest.raises(IctviewError, match="not one of"):
        ws.ensure_site("x", "training")


def test_open_missing_and_corrupt(tmp_path):
    with pytest.raises(IctviewError, match="not found"):
        Workspace.open(tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "workspace.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(IctviewError, match="workspace.sqlite"):
        Workspace.open(tmp_path / "bad")


def test_import_lock_is_exclusive(ws, tmp_path):
    other = Workspace.open(tmp_path / "ws")
    with ws.import_lock():
        with pytest.raises(IctviewError, match="another import"):
            with other.import_lock():
                pass
    other.close()


def test_unique_exam_name(ws, exam_factory):
    ws.add_exam(exam_factory("ATL-1"))
    assert ws.unique_exam_name("ATL-1") == "ATL-1-2"
    assert ws.unique_exam_name("a/b c") == "a_b_c"


def test_runs_and_predictions(ws, exam_factory):
    from ictview.store.arrays import Prediction

    ws.add_exam(exam_factory("ATL-1"))
    d = ws.create_run("teacher-1", "teacher", {"lr": 0.01})
    assert d.is_dir() and ws.run("teacher-1")["status"] == "created"
    assert ws.create_run("teacher-1", "teacher", {}) == d  # resuming reuses it
    with pytest.raises(IctviewError, match="is a teacher run"):
        ws.create_run("teacher-1", "student", {})
    ws.set_run_status("teacher-1", "done")
    prob = np.random.default_rng(0).random((6, 32, 32)).astype(np.float16)
    pred = Prediction(prob, prob.max(axis=(1, 2)).astype(np.float32), 0.9, {"aggregation": "max"})
    ws.write_prediction("teacher-1", "ATL-1", pred)
    back = ws.read_prediction("teacher-1", "ATL-1")
    np.testing.assert_array_equal(back.prob, prob)
    assert back.exam_score == pytest.approx(0.9) and back.attrs["aggregation"] == "max"
    assert ws.read_prediction("teacher-1", "ATL-1", pixels=False).prob.size == 0
    assert ws.predicted_exams("teacher-1") == ["ATL-1"]
    with pytest.raises(IctviewError, match="prediction shape"):
        ws.write_prediction("teacher-1", "ATL-1", Prediction(prob[:2], pred.slice_scores, 0.5))


def test_v1_workspace_is_migrated(tmp_path):
    """A workspace written by schema 1 opens with today's code and keeps its data."""
    from ictview.store.catalog import transaction
    from ictview.store.schema import MIGRATIONS

    db = tmp_path / "old" / "workspace.sqlite"
    db.parent.mkdir()
    con = sqlite3.connect(db, isolation_level=None)
    with transaction(con):
        for stmt in MIGRATIONS[1]:
            con.execute(stmt)
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        con.execute("INSERT INTO sites VALUES ('cq500', 'test', 'then')")
    con.close()
    with Workspace.open(tmp_path / "old") as ws:
        assert ws.summary()["schema_version"] == SCHEMA_VERSION
        assert ws.sites() == {"cq500": "test"}
        ws.con.execute("SELECT * FROM retest_sessions").fetchall()


def test_import_cleanup_leaves_an_editors_label_save_in_flight_alone(ws, exam_factory, tmp_path):
    """An autosave writing its temp file while another process starts an import."""
    from ictview.store import arrays

    ws.add_exam(exam_factory("ATL-1"))
    labels = np.zeros((6, 32, 32), np.uint8)
    labels[1, 3:6, 3:6] = 2
    target = ws.label_path("dr-lee", "ATL-1")
    save = arrays.atomic_h5(target)
    with save as f:
        f.create_dataset("labels", data=labels)
        tmp = save.tmp
        assert tmp.exists() and arrays.TMP_MARK in tmp.name
        with Workspace.open(tmp_path / "ws") as importer, importer.import_lock():
            pass  # the import's orphan cleanup runs here
        assert tmp.exists()
    assert save.sha1 and arrays.read_labels(target)[0].sum() == labels.sum()
    # an old temp file left by a crashed editor is not removed by imports either
    stale = target.with_name(target.name + arrays.TMP_MARK + "999999-dead")
    stale.write_bytes(b"partial")
    with ws.import_lock():
        pass
    assert stale.exists()
