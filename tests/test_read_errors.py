"""Every read error is one line naming the file: a damaged SQLite catalog or HDF5 volume
at the CLIs (real subprocesses: no traceback, exit != 0) and in the data layer."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ictview.errors import IctviewError, note_file, read_error
from ictview.store import arrays
from ictview.store.workspace import Workspace


def garble_table(db: Path, table: str) -> None:
    """Overwrite the root page of `table` in the SQLite file (a damaged disk page)."""
    con = sqlite3.connect(db)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def garble_sop_uids(volume: Path) -> None:
    """Overwrite the heap address of the volume's first SOP UID string: h5py fails reading it.
    (Its length field stays: a garbled length makes HDF5 allocate gigabytes first.)"""
    with h5py.File(volume, "r") as f:
        offset = f["sop_uids"].id.get_offset()
    with open(volume, "r+b") as f:
        f.seek(offset + 4)
        f.write(b"\xa5" * 8)


def run(module: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def assert_one_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Failed, no traceback, and the last stderr line (after any progress lines) says it all."""
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, proc.stderr
    return last


# ---------------------------------------------------------------- CLIs


def test_info_on_a_garbled_catalog_page_is_one_line(tiny_workspace_copy):
    db = tiny_workspace_copy / "workspace.sqlite"
    garble_table(db, "exams")
    proc = run("ictview.cli", "info", tiny_workspace_copy)
    assert_one_line(proc, str(db), "damaged SQLite database", "malformed")


def test_export_of_a_garbled_volume_is_one_line(tiny_workspace_copy, tmp_path):
    with Workspace.open(tiny_workspace_copy) as ws:
        exam = ws.labelset_exams("reference")[0]
        volume = ws.volume_path(exam)
    garble_sop_uids(volume)
    export = ("ictview.cli", "export", tiny_workspace_copy, "--labelset", "reference",
              "--format", "nifti", "--out")
    # export verifies the volume against the catalog's checksum first
    assert_one_line(run(*export, tmp_path / "a"), str(volume), "checksum mismatch")
    # a volume with no recorded checksum (stored before checksums) fails in h5py itself
    con = sqlite3.connect(tiny_workspace_copy / "workspace.sqlite")
    con.execute("UPDATE exams SET volume_sha1='' WHERE name=?", (exam,))
    con.commit()
    con.close()
    assert_one_line(run(*export, tmp_path / "b"), str(volume), "damaged or unreadable")


def garble_hu_chunks(volume: Path) -> None:
    """Overwrite the start of every slice's compressed chunk: decoding any slice fails."""
    with h5py.File(volume, "r") as f:
        ds = f["hu"]
        chunks = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
    with open(volume, "r+b") as f:
        for info in chunks:
            f.seek(info.byte_offset)
            f.write(b"\xa5" * min(16, info.size))


def test_training_on_a_garbled_volume_is_one_line(tiny_workspace_copy):
    # the teacher reads slices of every labeled exam from its first steps (per-slice chunks:
    # what it reads is the HU, not the SOP UIDs): it fails in seconds
    with Workspace.open(tiny_workspace_copy) as ws:
        exam = ws.exams(role="labeled")[0].name
        volume = ws.volume_path(exam)
    garble_hu_chunks(volume)
    proc = run("training.cli", "teacher", "--workspace", tiny_workspace_copy, "--config", "tiny",
               "--quiet", "--run", "t")
    last = assert_one_line(proc, str(volume), "damaged or unreadable")
    assert last.startswith("ictview-train: ")


def test_training_on_a_garbled_catalog_is_one_line(tiny_workspace_copy):
    db = tiny_workspace_copy / "workspace.sqlite"
    garble_table(db, "exams")
    proc = run("training.cli", "teacher", "--workspace", tiny_workspace_copy, "--config", "tiny",
               "--quiet", "--run", "t")
    assert_one_line(proc, str(db), "damaged SQLite database")


@pytest.mark.slow  # ~10-25 s: the student reads the workspace before loading the teacher
def test_student_from_a_damaged_teacher_checkpoint_is_one_line(tiny_workspace_copy):
    from training.checkpoints import checkpoint_path

    ckpt = checkpoint_path(tiny_workspace_copy, "t", "final")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"PK\x03\x04" + b"\xa5" * 512)  # a torn zip archive
    proc = run("training.cli", "student", "--workspace", tiny_workspace_copy, "--teacher", "t",
               "--variant", "image-oracle", "--config", "tiny", "--quiet")
    assert_one_line(proc, str(ckpt), "not a readable checkpoint")


# ---------------------------------------------------------------- data layer


def test_damaged_volume_bytes_give_only_one_line_errors_naming_the_file(tmp_path):
    """16 garbled bytes at places all over a stored volume's metadata: the read succeeds or
    raises one IctviewError naming the file; never an h5py / numpy / json exception."""
    from ictview.core.geometry import Geometry

    src = tmp_path / "src.h5"
    geometry = Geometry((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 5.0),
                        (0.5, 0.5))
    arrays.write_volume(src, np.zeros((3, 8, 8), np.int16), geometry, ["1.2.3", "1.2.4", "1.2.5"],
                        {"patient_id": "P"})
    with h5py.File(src, "r") as f:
        hu = f["hu"].id  # chunked per slice (format 2): the data starts at its first chunk
        data_start = min(hu.get_chunk_info(i).byte_offset for i in range(hu.get_num_chunks()))
        # the string references are left out: garbled lengths make HDF5 allocate gigabytes
        # (slow); garble_sop_uids damages them in the CLI tests
        refs = f["sop_uids"].id.get_offset() + f["sop_uids"].id.get_storage_size()
    offsets = [*range(0, data_start, 48), *range(refs, src.stat().st_size, 16)]
    target = tmp_path / "v.h5"
    errors = 0
    for off in offsets:
        shutil.copyfile(src, target)
        with open(target, "r+b") as f:
            f.seek(off)
            f.write(b"\xa5" * 16)
        try:
            arrays.read_volume(target)
        except IctviewError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith(str(target)), msg
            errors += 1
    assert errors > 10, (errors, len(offsets))  # the damage was found, not read silently


def test_damaged_label_chunk_is_one_line(tmp_path):
    path = tmp_path / "l.h5"
    labels = np.zeros((4, 64, 64), np.uint8)
    labels[:, 10:50, 10:50] = 3
    arrays.write_labels(path, labels, {"exam": "x"})
    with h5py.File(path, "r") as f:
        info = f["labels"].id.get_chunk_info(1)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        f.write(b"\xa5" * min(16, info.size))
    with pytest.raises(IctviewError) as err:
        arrays.read_labels(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_catalog_errors_name_the_file_and_keep_their_kind(tmp_path):
    with Workspace.create(tmp_path / "ws") as ws:
        # an ordinary SQL error keeps its type (callers may handle it) and names the file
        with pytest.raises(sqlite3.OperationalError) as err:
            ws.con.execute("SELECT nope FROM exams")
        line = str(read_error(err.value))
        assert line.startswith(str(tmp_path / "ws" / "workspace.sqlite"))
        assert "no such column" in line


def test_read_error_only_translates_read_errors(tmp_path):
    missing = tmp_path / "gone.h5"
    try:
        open(missing, "rb")
    except OSError as exc:
        assert str(read_error(exc)) == f"{missing}: No such file or directory"
    assert read_error(KeyError("a bug")) is None  # not raised reading a file: keeps its traceback
    noted = note_file(KeyError("Unable to open object (bad symbol table)"), missing)
    assert str(read_error(noted)) == (f"{missing}: damaged or not the expected file "
                                      "(KeyError: Unable to open object (bad symbol table))")
    err = IctviewError("x: y")
    assert read_error(err) is err
