"""`ictview import --jobs N`: the same workspace as --jobs 1, whole exams only after a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pydicom
import pytest

from ictview.cli import main
from ictview.io.bench_import import write_bench_studies
from ictview.store import arrays
from ictview.store.check import check_workspace

# columns that hold a time (or, in the audit chain, a hash over a time): the only ones
# allowed to differ between two imports of the same files
_TIMES = {"at", "hash", "imported_at", "created_at", "saved_at", "written_at", "updated_at"}


def _catalog(ws: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(ws / "workspace.sqlite")
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        out = {}
        for t in tables:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({t})") if r[1] not in _TIMES]
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall()
            out[t] = sorted(rows, key=repr)
        out["meta"] = [r for r in out["meta"] if r[0] not in ("created_at", "audit_head")]
        return out
    finally:
        con.close()


def _arrays(ws: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every dataset of every HDF5 file under volumes/ and labels/, by relative path."""
    out = {}
    for p in sorted((ws / "volumes").glob("*.h5")) + sorted((ws / "labels").glob("*/*.h5")):
        with h5py.File(p, "r") as f:
            out[str(p.relative_to(ws))] = {k: f[k][()] for k in f}
    return out


def _assert_same_arrays(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for path in a:
        assert sorted(a[path]) == sorted(b[path]), path
        for k in a[path]:
            assert np.array_equal(a[path][k], b[path][k]), (path, k)


@pytest.fixture
def studies_with_a_bad_one(tmp_path):
    """Five small studies; the third's RescaleSlope saturates int16, which only decoding
    its pixels shows (so a worker finds it, not the parent's scan)."""
    src = write_bench_studies(tmp_path / "dicom", studies=5, slices=6, size=48)
    for f in sorted((src / "BENCH-0002").iterdir()):
        ds = pydicom.dcmread(f)
        ds.RescaleSlope = 20
        ds.save_as(f)
    return src


def test_jobs2_equals_jobs1_synthetic(synth_tiny, tmp_path, capsys):
    """The four tiny sites (masks, image labels, reads, excluded series): same catalog rows
    but for times, same array contents, same report."""
    reports = {}
    for jobs in (1, 2):
        assert main(["import", str(synth_tiny), "--workspace", str(tmp_path / f"ws{jobs}"),
                     "--jobs", str(jobs)]) == 0
        reports[jobs] = capsys.readouterr().out
    assert reports[1] == reports[2]
    assert _catalog(tmp_path / "ws1") == _catalog(tmp_path / "ws2")
    _assert_same_arrays(_arrays(tmp_path / "ws1"), _arrays(tmp_path / "ws2"))
    assert check_workspace(tmp_path / "ws2").ok


def test_jobs2_bad_series_is_one_line_and_others_import(studies_with_a_bad_one, tmp_path,
                                                        capsys):
    outs = {}
    for jobs in (1, 2):
        assert main(["import", str(studies_with_a_bad_one), "--workspace",
                     str(tmp_path / f"ws{jobs}"), "--site", "s", "--role", "test",
                     "--jobs", str(jobs)]) == 0
        outs[jobs] = capsys.readouterr().out
    assert outs[1] == outs[2]
    failed = [line for line in outs[2].splitlines() if "failed:" in line]
    assert len(failed) == 1
    assert "saturate the int16 HU storage" in failed[0], failed
    assert "imported 4 exam(s), 0 already present, 1 failed" in outs[2]
    con = sqlite3.connect(tmp_path / "ws2" / "workspace.sqlite")
    assert "BENCH-0002" not in {r[0] for r in con.execute("SELECT patient_id FROM exams")}
    con.close()
    assert _catalog(tmp_path / "ws1") == _catalog(tmp_path / "ws2")
    _assert_same_arrays(_arrays(tmp_path / "ws1"), _arrays(tmp_path / "ws2"))
    # no staged file outlives the import
    assert not [p for p in (tmp_path / "ws2" / "volumes").iterdir() if arrays.TMP_MARK in p.name]


def _exam_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=0.1)
        try:
            return con.execute("SELECT COUNT(*) FROM exams").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # created but not yet migrated
        return 0


def test_jobs2_killed_midway_then_rerun_is_consistent(tmp_path):
    n = 24
    src = write_bench_studies(tmp_path / "dicom", studies=n, slices=24, size=128)
    ws = tmp_path / "ws"
    args = [sys.executable, "-m", "ictview.cli", "import", str(src), "--workspace", str(ws),
            "--site", "s", "--role", "test", "--jobs", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    landed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        landed = _exam_count(ws / "workspace.sqlite")
        if landed >= 2:
            break
        time.sleep(0.002)
    assert proc.poll() is None, "the import ended before it could be killed: " + (
        proc.stderr.read().decode(errors="replace"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    killed_at = _exam_count(ws / "workspace.sqlite")
    assert 2 <= killed_at < n, killed_at
    # what the kill left: committed exams, and temporary files check names but never
    # takes for an exam's (a volume renamed but not yet committed would be a problem line)
    before = check_workspace(ws)
    assert all("volume file of no exam" in p for p in before.problems), before.problems
    # the workers die with their parent (PR_SET_PDEATHSIG): the rerun takes the lock
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"imported {n - killed_at} exam(s), {killed_at} already present, 0 failed" \
        in rerun.stdout, rerun.stdout
    report = check_workspace(ws)
    assert report.ok, report.problems
    con = sqlite3.connect(ws / "workspace.sqlite")
    names = [r[0] for r in con.execute("SELECT patient_id FROM exams")]
    con.close()
    assert sorted(names) == [f"BENCH-{i:04d}" for i in range(n)]  # every exam, once
    assert not [p for p in (ws / "volumes").iterdir() if arrays.TMP_MARK in p.name]
    # and the volumes are those an uninterrupted --jobs 1 import stores
    assert main(["import", str(src), "--workspace", str(tmp_path / "ref"), "--site", "s",
                 "--role", "test"]) == 0
    _assert_same_arrays(_arrays(tmp_path / "ref"), _arrays(ws))


def test_headers_read_by_running_workers_scan_the_same(tmp_path):
    """With its workers already up, a parallel import reads every header in them: skipped
    files (not DICOM, a DICOMDIR, a duplicate SOP Instance UID) and series are the same."""
    import shutil

    from ictview.io.importers import ImportOptions, import_source, worker_pool
    from ictview.store.workspace import Workspace

    src = write_bench_studies(tmp_path / "dicom", studies=3, slices=5, size=32)
    (src / "notes.txt").write_text("not a DICOM file")
    (src / "DICOMDIR").write_bytes(b"\0" * 200)
    first = sorted((src / "BENCH-0001").iterdir())[0]
    shutil.copy(first, src / "BENCH-0001" / "copy.dcm")
    reports = {}
    pool = worker_pool(2)
    try:
        pool.ictview_started.result()
        for jobs in (1, 2):
            with Workspace.create(tmp_path / f"ws{jobs}") as ws:
                reports[jobs] = import_source(ws, [src], ImportOptions("s", "test"), jobs=jobs,
                                              pool=pool if jobs > 1 else None).to_dict()
    finally:
        pool.shutdown(wait=True)
    assert reports[1] == reports[2]
    assert len(reports[2]["skipped_files"]) == 3 and len(reports[2]["imported"]) == 3
    assert any("same SOPInstanceUID" in line for line in reports[2]["skipped_files"])
    assert _catalog(tmp_path / "ws1") == _catalog(tmp_path / "ws2")
    _assert_same_arrays(_arrays(tmp_path / "ws1"), _arrays(tmp_path / "ws2"))


def test_jobs_beyond_the_cpus_start_no_more_workers_than_cpus(monkeypatch):
    from ictview.io import importers

    monkeypatch.setattr(importers.os, "cpu_count", lambda: 2)
    pool = importers.worker_pool(1000)
    try:
        assert pool._max_workers == 2
    finally:
        pool.shutdown()
