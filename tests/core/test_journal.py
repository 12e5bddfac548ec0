"""Autosave with a journal: kill -9 loses at most the stroke in progress."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ictview.core import paint
from ictview.core.annotation import AnnotationModel
from ictview.errors import IctviewError
from ictview.store import arrays
from ictview.store.label_journal import LabelJournal, encode_record, journal_path
from ictview.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_paint_child.py")
_spec = importlib.util.spec_from_file_location("ictview_test_paint_child", CHILD)
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)


def expected_labels(ws_root: Path, n_strokes: int) -> tuple[np.ndarray, int]:
    """The labels after the child's first n strokes, computed in this process,
    and how many of the strokes changed something (the others are not journaled)."""
    with Workspace.open(ws_root) as ws:
        hu = ws.read_volume(child.EXAM).hu
    m = AnnotationModel(hu, spacing=(5.0, 0.5, 0.5))
    for i in range(n_strokes):
        child.do_stroke(m, i)
        m.end_stroke()
    return m.labels, m.revision


def run_child_and_kill(ws_root: Path, n_done: int, block_after: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(ws_root), str(n_done), str(block_after)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "mid":
                break
        assert lines and lines[-1] == "mid", f"child failed: {lines} {proc.stderr.read()[-2000:]}"
        assert lines[:-1] == [f"done {i}" for i in range(n_done)]
        os.kill(proc.pid, signal.SIGKILL)  # during stroke n_done, after stroke n_done-1 ended
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize(
    "n_done, block_after",
    [(12, -1), (9, 0), (10, 4)],
    ids=["saves-kept-up", "nothing-saved-journal-only", "file-plus-journal"],
)
def test_kill9_mid_stroke_keeps_every_finished_stroke(small_ws, n_done, block_after):
    run_child_and_kill(small_ws, n_done, block_after)
    want, n_steps = expected_labels(small_ws, n_done)
    unfinished, _ = expected_labels(small_ws, n_done + 1)
    assert not np.array_equal(want, unfinished)  # the unfinished stroke would be visible
    assert want.any()
    m = AnnotationModel.open(small_ws, child.EXAM, child.LABELSET, child.RATER)
    try:
        assert np.array_equal(m.labels, want)
        if block_after >= 0:  # the strokes after the first block_after come from the journal
            assert m.recovered_steps == n_steps - expected_labels(small_ws, block_after)[1] > 0
        assert m.flush(30) and m.save_error is None
    finally:
        m.close()
    with Workspace.open(small_ws) as ws:
        assert np.array_equal(ws.load_labels(child.LABELSET, child.EXAM), want)
        row = ws.con.execute(
            "SELECT saved_by FROM label_files WHERE labelset=?", (child.LABELSET,)
        ).fetchone()
        assert row[0] == child.RATER
        jpath = journal_path(ws, child.LABELSET, child.EXAM)
    # the journal is trimmed once the label file holds everything
    j = LabelJournal(jpath, child.EXAM, child.LABELSET, want.shape)
    assert len(j) == 0
    j.close()


def test_autosave_records_rater_time_on_task_and_events(small_ws):
    now = [100.0]
    saved = []
    m = AnnotationModel.open(small_ws, "EX-1", "rater-b", "b", idle_cap_s=60, clock=lambda: now[0])
    m.on_saved.append(saved.append)
    now[0] += 20
    m.label_value = 4
    m.flood_fill(2, 32, 32)
    now[0] += 5000  # idle: counts as 60 s
    m.begin_stroke()
    m.paint_to(3, 10, 10)
    now[0] += 3
    m.paint_to(3, 10, 20)
    m.end_stroke()
    assert m.flush(30)
    assert saved and saved[-1] == m.revision == 2 and not m.dirty
    now[0] += 7
    labels = m.labels.copy()
    m.close()
    with Workspace.open(small_ws) as ws:
        row = ws.con.execute(
            "SELECT saved_by, seconds_on_task, revision FROM label_files WHERE labelset='rater-b'"
        ).fetchone()
        assert row["saved_by"] == "b"
        assert row["seconds_on_task"] == pytest.approx(20 + 60 + 3 + 7)
        assert np.array_equal(ws.load_labels("rater-b", "EX-1"), labels)
        _, attrs = arrays.read_labels(ws.label_path("rater-b", "EX-1"))
        assert attrs["saved_by"] == "b"
        assert ws.labelsets()[-1]["rater"] == "b"
    # time accumulates over sessions
    m = AnnotationModel.open(small_ws, "EX-1", "rater-b", "b", clock=lambda: now[0])
    assert m.seconds_on_task == pytest.approx(90)
    assert np.array_equal(m.labels, labels) and m.recovered_steps == 0
    now[0] += 4
    m.close()
    with Workspace.open(small_ws) as ws:
        row = ws.con.execute(
            "SELECT seconds_on_task FROM label_files WHERE labelset='rater-b'"
        ).fetchone()
        assert row[0] == pytest.approx(94)


def test_open_refuses_a_second_editor_and_other_raters(small_ws):
    m = AnnotationModel.open(small_ws, "EX-1", "rater-a", "a")
    try:
        with pytest.raises(IctviewError, match="open for editing"):
            AnnotationModel.open(small_ws, "EX-1", "rater-a", "a")
        m.paint_to(0, 5, 5)
        m.end_stroke()
        m.flush(30)
    finally:
        m.close()
    with pytest.raises(IctviewError, match="belongs to rater 'a'"):
        AnnotationModel.open(small_ws, "EX-1", "rater-a", "someone-else")
    with pytest.raises(IctviewError, match="no exam named"):
        AnnotationModel.open(small_ws, "NOPE", "rater-a", "a")
    # closing released the lock
    AnnotationModel.open(small_ws, "EX-1", "rater-a", "a").close()


def test_reference_is_copied_not_edited_and_read_only_view(small_ws):
    ref = np.zeros((6, 64, 64), np.uint8)
    ref[1, 5:9, 5:9] = 2
    with Workspace.open(small_ws) as ws:
        ws.ensure_labelset("reference")
        arrays.write_labels(ws.label_path("reference", "EX-1"), ref, {})
    with pytest.raises(IctviewError, match="belongs to no rater"):
        AnnotationModel.open(small_ws, "EX-1", "reference", "a")
    view = AnnotationModel.open(small_ws, "EX-1", "reference", "", read_only=True)
    assert np.array_equal(view.labels, ref)
    assert view.paint_to(0, 30, 30) is None and not view.labels[0].any()
    view.close()
    m = AnnotationModel.open(small_ws, "EX-1", "rater-c", "c", start_from="reference")
    assert np.array_equal(m.labels, ref)
    m.close()
    with Workspace.open(small_ws) as ws:
        assert np.array_equal(ws.load_labels("rater-c", "EX-1"), ref)


def _patches_of(diffs):
    return [(d.z, d.y0, d.x0, d.mask, d.new_value) for d in diffs if d is not None]


def test_replay_is_idempotent_when_the_file_already_has_the_records(small_ws):
    """A crash between the label file replace and the journal trim."""
    with Workspace.open(small_ws) as ws:
        hu = ws.read_volume("EX-1").hu
        shape = hu.shape
        scratch = np.zeros(shape, np.uint8)
        j = LabelJournal(journal_path(ws, "rater-a", "EX-1"), "EX-1", "rater-a", shape)
        steps = [
            [paint.brush(scratch, 1, 20, 20, 6, 2)],
            [paint.brush(scratch, 1, 22, 22, 6, 4)],
            [paint.flood_fill(scratch, 1, 32, 32, 3, hu=hu, hu_range=(40, 90))],
        ]
        middle = None
        for seq, diffs in enumerate(steps, 1):
            j.append(seq, 1.0, _patches_of(diffs))
            if seq == 2:
                middle = scratch.copy()
        # an undo of step 2 as per-pixel values
        d = steps[1][0]
        d.revert(scratch)
        j.append(4, 1.0, [(d.z, d.y0, d.x0, d.mask, d.old)])
        j.close()
        ws.save_labels("rater-a", "EX-1", middle, "a", 0.0)  # the file has steps 1-2 only
    m = AnnotationModel.open(small_ws, "EX-1", "rater-a", "a")
    assert np.array_equal(m.labels, scratch) and m.recovered_steps == 4 and m.revision == 4
    m.close()
    with Workspace.open(small_ws) as ws:
        ws.save_labels("rater-a", "EX-1", scratch, "a", 0.0)  # now the file has everything
        j = LabelJournal(journal_path(ws, "rater-a", "EX-1"), "EX-1", "rater-a", shape)
        assert len(j) == 0  # the reopen above trimmed it after saving
        for seq, diffs in enumerate(steps, 1):
            j.append(seq, 0.0, _patches_of(diffs))
        j.close()
    m = AnnotationModel.open(small_ws, "EX-1", "rater-a", "a")
    assert not np.array_equal(m.labels, scratch)  # replaying 1-3 without the undo redoes step 2
    m.close()


def test_torn_record_is_dropped_and_trim_keeps_newer_records(tmp_path):
    path = tmp_path / "EX.journal"
    shape = (2, 16, 16)
    j = LabelJournal(path, "EX", "ls", shape)
    mask = np.zeros((3, 3), bool)
    mask[1] = True
    vals = np.full((3, 3), 7, np.uint8)
    for seq in (1, 2, 3):
        j.append(seq, 0.5, [(0, seq, seq, mask, seq), (1, 0, 0, mask, vals)])
    j.discard_through(1)  # 2 and 3 stay
    j.close()
    with open(path, "ab") as fh:  # kill -9 in the middle of appending record 4
        fh.write(encode_record(4, 0.5, [(0, 0, 0, mask, 4)])[:-5])
    j = LabelJournal(path, "EX", "ls", shape)
    assert [r.seq for r in j.records] == [2, 3]
    p = j.records[1].patches
    assert p[0][:3] == (0, 3, 3) and p[0][4] == 3 and np.array_equal(p[0][3], mask)
    assert np.array_equal(p[1][4][mask], vals[mask])
    j.append(5, 0.5, [(0, 0, 0, mask, 5)])
    j.close()
    j = LabelJournal(path, "EX", "ls", shape)
    assert [r.seq for r in j.records] == [2, 3, 5]
    j.discard_through(5)
    j.close()
    header = json.loads(path.read_bytes()[12:])
    assert header == {"exam": "EX", "labelset": "ls", "shape": [2, 16, 16]}
    # a journal of another shape is set aside (kept), not replayed and not blocking
    j = LabelJournal(path, "EX", "ls", (3, 16, 16))
    assert j.records == [] and "shape" in j.notices[0] and "moved aside" in j.notices[0]
    j.close()
    assert len(list(tmp_path.glob("EX.journal.bad-*"))) == 1


def test_copy_labels_fills_only_unlabeled_voxels_in_one_undo_step(small_ws):
    m = AnnotationModel.open(small_ws, "EX-1", "rater-d", "d")
    first = np.zeros(m.labels.shape, np.uint8)
    first[2, 10:20, 10:20] = 1
    second = np.zeros_like(first)
    second[2, 15:25, 15:25] = 3  # overlaps `first`
    second[4, 1:3, 1:3] = 5
    m.copy_labels(first)
    stroke = m.copy_labels(second)
    assert stroke.kind == "copy" and len(m.history) == 2
    want = first.copy()
    want[(first == 0) & (second > 0)] = second[(first == 0) & (second > 0)]
    assert np.array_equal(m.labels, want)  # what was labeled stays
    m.undo()
    assert np.array_equal(m.labels, first)
    with pytest.raises(ValueError, match="shape"):
        m.copy_labels(first[:1])
    m.close()
    with Workspace.open(small_ws) as ws:
        assert np.array_equal(ws.load_labels("rater-d", "EX-1"), first)
