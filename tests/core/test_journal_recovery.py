"""A damaged journal costs only the damaged record; a bad one is set aside, never blocks."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.cli import main
from ictview.core.annotation import AnnotationModel
from ictview.store.label_journal import REC_MAGIC, LabelJournal, journal_path
from ictview.store.workspace import Workspace

LABELSET, RATER, EXAM = "rater-a", "a", "EX-1"


def square(z: int, y: int, x: int, value: int):
    mask = np.ones((4, 4), bool)
    return [(z, y, x, mask, value)]


def write_journal(root, n: int = 4) -> tuple[list[int], np.ndarray]:
    """n strokes journaled and never saved (the editor was killed); returns each record's
    start offset and the labels all n would give."""
    with Workspace.open(root) as ws:
        shape = ws.read_volume(EXAM).hu.shape
        j = LabelJournal(journal_path(ws, LABELSET, EXAM), EXAM, LABELSET, shape)
    starts, want = [], np.zeros(shape, np.uint8)
    for seq in range(1, n + 1):
        starts.append(j._fh.tell())
        patches = square(seq, 10 * seq, 10 * seq, seq)
        j.append(seq, 1.0, patches)
        want[seq, 10 * seq : 10 * seq + 4, 10 * seq : 10 * seq + 4] = seq
    j.close()
    return starts, want


def flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


def jpath(root):
    return root / "labels" / LABELSET / f"{EXAM}.journal"


@pytest.mark.parametrize("where", ["payload", "length field"])
def test_damaged_record_drops_only_that_record(small_ws, where, capsys):
    starts, want = write_journal(small_ws)
    offset = starts[1] + (20 if where == "payload" else 5)  # record 2 of 4
    flip(jpath(small_ws), offset)
    want[2] = 0  # stroke 2 is what is lost; 3 and 4, finished after it, are kept
    assert main(["check", str(small_ws)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "EX-1.journal: damaged record at byte" in out[0]

    m = AnnotationModel.open(small_ws, EXAM, LABELSET, RATER)
    try:
        assert np.array_equal(m.labels, want)
        assert m.recovered_steps == 3 and not m.read_only
        assert len(m.journal_notices) == 1
        assert "1 damaged journal record(s) dropped, 3 stroke(s) recovered" in m.journal_notices[0]
        m.begin_stroke()
        m.paint_to(0, 40, 40)
        m.end_stroke()  # still editable: the journal takes new strokes
        assert m.flush(10)
    finally:
        m.close()
    kept = list(jpath(small_ws).parent.glob("EX-1.journal.bad-*"))
    assert len(kept) == 1 and kept[0].name in m.journal_notices[0]
    with Workspace.open(small_ws) as ws:
        saved = ws.load_labels(LABELSET, EXAM)
    assert np.array_equal(saved[1:], want[1:]) and saved[0].any()
    assert main(["check", str(small_ws)]) == 0  # the set-aside copy is a note, not a problem


@pytest.mark.parametrize("damage", ["magic", "header json", "other shape"])
def test_bad_header_moves_the_journal_aside_and_the_exam_stays_editable(small_ws, damage):
    write_journal(small_ws)
    path = jpath(small_ws)
    if damage == "magic":
        flip(path, 0)
    elif damage == "header json":
        flip(path, 13)  # inside the JSON
    else:
        with Workspace.open(small_ws) as ws:
            shape = ws.read_volume(EXAM).hu.shape
        path.unlink()
        LabelJournal(path, EXAM, LABELSET, (shape[0] + 1,) + shape[1:]).close()
    damaged = path.read_bytes()
    m = AnnotationModel.open(small_ws, EXAM, LABELSET, RATER)
    try:
        assert not m.read_only and m.recovered_steps == 0
        assert len(m.journal_notices) == 1 and "moved aside" in m.journal_notices[0]
        m.begin_stroke()
        m.paint_to(1, 30, 30)
        m.end_stroke()
        assert m.flush(10)
        painted = m.labels.copy()
    finally:
        m.close()
    kept = list(path.parent.glob("EX-1.journal.bad-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # kept as found, for inspection
    with Workspace.open(small_ws) as ws:
        assert np.array_equal(ws.load_labels(LABELSET, EXAM), painted)


def test_record_magic_inside_a_payload_does_not_fool_the_resync(small_ws):
    """A stroke whose pixel values spell the record magic: resync needs a valid CRC too."""
    starts, want = write_journal(small_ws, n=2)
    with Workspace.open(small_ws) as ws:
        shape = ws.read_volume(EXAM).hu.shape
    j = LabelJournal(jpath(small_ws), EXAM, LABELSET, shape)
    vals = np.frombuffer(REC_MAGIC.to_bytes(4, "little") * 4, np.uint8).reshape(4, 4).copy()
    j.append(3, 1.0, [(3, 0, 0, np.ones((4, 4), bool), vals)])
    j.append(4, 1.0, square(4, 50, 50, 4))
    j.close()
    want[3, :4, :4] = vals
    want[4, 50:54, 50:54] = 4
    flip(jpath(small_ws), starts[1] + 20)  # record 2
    want[2] = 0
    m = AnnotationModel.open(small_ws, EXAM, LABELSET, RATER)
    try:
        assert np.array_equal(m.labels, want) and m.recovered_steps == 3
    finally:
        m.close()
