"""The main window tells the rater when the opened exam is damaged: a journal record
dropped, a journal set aside, a volume that fails its checksum (verified in the background)."""

from __future__ import annotations

import h5py
import numpy as np

from ictview.store.label_journal import LabelJournal, journal_path
from ictview.store.workspace import Workspace

EXAM = "ATL-0002"


def _journal_with_damage(root, labelset: str) -> None:
    with Workspace.open(root) as ws:
        shape = ws.read_volume(EXAM).hu.shape
        path = journal_path(ws, labelset, EXAM)
    j = LabelJournal(path, EXAM, labelset, shape)
    starts = []
    for seq in (1, 2, 3):
        starts.append(j._fh.tell())
        j.append(seq, 1.0, [(seq, 8 * seq, 8 * seq, np.ones((3, 3), bool), 1)])
    j.close()
    data = bytearray(path.read_bytes())
    data[starts[1] + 20] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_journal_record_is_reported_when_the_exam_opens(window, qtbot):
    win = window
    _journal_with_damage(win.ws.root, win.labelset)
    assert win.open_exam(EXAM), win.last_error
    assert not win.model.read_only and win.model.recovered_steps == 2
    assert "1 damaged journal record(s) dropped, 2 stroke(s) recovered" in win.last_error
    assert "kept as ATL-0002.journal.bad-" in win.last_error
    win.verifier.join(10)
    qtbot.waitUntil(lambda: EXAM in win.verifier.results, timeout=5000)
    assert win.verifier.results[EXAM] == []  # the files themselves are fine


def test_opened_exam_failing_its_checksum_is_reported(window, qtbot):
    win = window
    with h5py.File(win.ws.volume_path(EXAM), "r+") as f:  # behind ictview's back
        f["hu"][1, 5, 0:20] = 1000
    assert win.open_exam(EXAM), win.last_error
    qtbot.waitUntil(lambda: "failed verification" in win.last_error, timeout=10000)
    assert win.last_error.startswith(f"{EXAM} failed verification: ")
    assert "ATL-0002.h5: checksum mismatch" in win.last_error
    assert "failed verification" in win.status.currentMessage()
    assert "⚠ failed verification" in win.slice_view.info()[0]  # stays on the image
