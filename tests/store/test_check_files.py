"""`ictview check` and export find a stored file that is not the file ictview wrote."""

from __future__ import annotations

import json
import sqlite3

import h5py
import numpy as np
import pytest

from ictview.cli import main
from ictview.errors import IctviewError
from ictview.store import arrays
from ictview.store.arrays import Prediction


@pytest.fixture
def filled(ws, exam_factory):
    ws.add_exam(exam_factory("ATL-1", seed=1))
    ws.add_exam(exam_factory("ATL-2", seed=2))
    labels = ws.load_labels("reference", "ATL-1")
    labels[3, 5:9, 5:9] = 2
    ws.save_labels("dr-lee", "ATL-1", labels, "dr-lee", 12.0)
    shape = (6, 32, 32)
    ws.write_prediction("teacher", "ATL-2", Prediction(
        np.full(shape, 0.25, np.float16), np.zeros(6, np.float32), 0.25, {}))
    return ws


def run_check(ws, capsys, *extra) -> tuple[int, list[str], str]:
    rc = main(["check", str(ws.root), *extra])
    out = capsys.readouterr()
    return rc, [line for line in out.out.splitlines() if line], out.err


def flip_byte(path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def test_clean_workspace_passes(filled, capsys):
    rc, lines, err = run_check(filled, capsys)
    assert (rc, lines) == (0, [])
    assert "verified 2 volumes, 3 label files, 1 predictions" in err
    rc, lines, _ = run_check(filled, capsys, "--json")
    report = json.loads("\n".join(lines))
    assert rc == 0 and report["ok"] and report["checked"]["audit_rows"] == 3


def test_catalog_records_a_checksum_for_every_file_it_writes(filled):
    rows = filled.con.execute("SELECT sha1 FROM label_files").fetchall()
    assert len(rows) == 3 and all(len(r[0]) == 40 for r in rows)
    sha = filled.con.execute("SELECT sha1 FROM prediction_files").fetchone()[0]
    assert sha == arrays.file_sha1(filled.prediction_path("teacher", "ATL-2"))
    vol = filled.con.execute("SELECT volume_sha1 FROM exams WHERE name='ATL-1'").fetchone()[0]
    assert vol == arrays.file_sha1(filled.volume_path("ATL-1"))


def test_overwritten_voxels_are_found_by_check_and_by_export(filled, capsys, tmp_path):
    with h5py.File(filled.volume_path("ATL-1"), "r+") as f:  # 20 voxels, behind ictview's back
        f["hu"][2, 10, 0:20] = 1000
    rc, lines, _ = run_check(filled, capsys)
    assert rc == 1 and len(lines) == 1
    assert lines[0].startswith("exam ATL-1: volume ") and "volumes/ATL-1.h5" in lines[0]
    assert "checksum mismatch" in lines[0]
    rc = main(["export", str(filled.root), "--labelset", "reference", "--format", "nifti",
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "ATL-1.h5: checksum mismatch" in err[0]
    with pytest.raises(IctviewError, match="checksum mismatch"):
        filled.read_volume("ATL-1", verify=True)


def test_flipped_byte_in_a_label_file_is_found(filled, capsys):
    path = filled.label_path("dr-lee", "ATL-1")
    flip_byte(path, path.stat().st_size - 40)
    rc, lines, _ = run_check(filled, capsys)
    assert rc == 1 and len(lines) == 1
    assert "exam ATL-1: labelset dr-lee:" in lines[0] and str(path) in lines[0]
    with pytest.raises(IctviewError, match="checksum mismatch"):
        filled.verify_labels("dr-lee", "ATL-1")


def test_flipped_byte_in_a_prediction_is_found(filled, capsys):
    path = filled.prediction_path("teacher", "ATL-2")
    flip_byte(path, path.stat().st_size // 2)
    rc, lines, _ = run_check(filled, capsys)
    assert rc == 1 and lines == [
        f"exam ATL-2: prediction of run teacher: {path}: checksum mismatch (file changed "
        f"since ictview wrote it; catalog sha1 "
        f"{filled.con.execute('SELECT sha1 FROM prediction_files').fetchone()[0][:12]}, "
        f"file {arrays.file_sha1(path)[:12]})"
    ]


def test_missing_and_unknown_files_are_found(filled, capsys):
    filled.label_path("reference", "ATL-2").unlink()
    stray = filled.label_path("reference", "ATL-9")
    arrays.write_labels(stray, np.zeros((6, 32, 32), np.uint8), {})
    rc, lines, _ = run_check(filled, capsys)
    assert rc == 1 and len(lines) == 2
    assert f"exam ATL-2: labelset reference: {filled.label_path('reference', 'ATL-2')}: " \
        "file missing" in lines
    assert any(str(stray) in line and "does not record" in line for line in lines)


def test_damaged_catalog_page_is_one_line(filled, capsys):
    filled.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filled.close()
    db = filled.root / "workspace.sqlite"
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as fh:  # garble a page in the middle of the file
        fh.seek(page * 3)
        fh.write(b"\x5a" * page)
    rc = main(["check", str(filled.root)])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert rc == 1 and lines and all("workspace.sqlite" in line for line in lines)
    assert "Traceback" not in out.err


def test_not_a_workspace_is_bad_input(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"ictview check: error: {tmp_path}: not an ictview workspace (no workspace.sqlite)"]


def test_every_stored_file_is_written_through_the_workspace():
    """The catalog records a checksum only for files written by Workspace: no other module
    writes workspace arrays itself (benchmarks write to their own temp folders)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    writer = re.compile(r"arrays\.(write_volume|write_labels|write_prediction|atomic_h5)\(|"
                        r"from ictview\.store\.arrays import[^\n]*\b(write_|atomic_h5)")
    offenders = []
    for path in list((repo / "ictview").rglob("*.py")) + list((repo / "training").rglob("*.py")):
        rel = path.relative_to(repo).as_posix()
        if rel in ("ictview/store/workspace.py", "ictview/store/arrays.py") or "bench" in rel:
            continue
        if writer.search(path.read_text()):
            offenders.append(rel)
    assert offenders == []
