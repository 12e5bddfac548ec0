"""Import of the synthetic four-site study through the real DICOM and label paths."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from ictview.cli import main
from ictview.io.synthetic_import import read_manifest
from ictview.store import arrays
from ictview.store.workspace import Workspace


def _info(ws_path, capsys) -> dict:
    capsys.readouterr()
    assert main(["info", str(ws_path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_counts_match_manifest(synth_tiny, tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["import", str(synth_tiny), "--workspace", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "imported" in out
    manifest = read_manifest(synth_tiny)
    info = _info(ws, capsys)
    for site, entry in manifest["sites"].items():
        got = info["sites"][site]
        assert got["role"] == entry["role"]
        assert got["exams"] == entry["exams"], site
        assert got["slices"] == entry["slices"], site
    kaggle = info["sites"]["kaggle"]
    assert kaggle["image_labels"] == manifest["sites"]["kaggle"]["slices"]
    cq = info["sites"]["cq500"]
    assert cq["read_exams"] == manifest["sites"]["cq500"]["exams"]
    labelsets = {l["name"]: l for l in info["labelsets"]}
    n_ref = sum(e["exams"] for s, e in manifest["sites"].items() if e.get("masks") and s != "cq500")
    assert labelsets["reference"]["exams"] == n_ref + manifest["sites"]["cq500"]["pixel_labeled_exams"]
    for i in (1, 2, 3):
        assert labelsets[f"retest-{i}"]["kind"] == "retest"
        assert labelsets[f"retest-{i}"]["exams"] == manifest["sites"]["cq500"]["pixel_labeled_exams"]

    # importing again adds nothing
    assert main(["import", str(synth_tiny), "--workspace", str(ws), "--json"]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(not r["imported"] for r in reports)
    assert sum(len(r["already_present"]) for r in reports) == sum(
        e["exams"] for e in manifest["sites"].values()
    )
    assert _info(ws, capsys)["sites"] == info["sites"]


def test_thin_series_excluded_and_recorded(tiny_workspace):
    with Workspace.open(tiny_workspace) as ws:
        rows = ws.con.execute(
            """SELECT s.chosen, s.slice_thickness, s.reason FROM series s JOIN exams e
               ON e.id = s.exam_id WHERE e.site='cq500'"""
        ).fetchall()
    chosen = [r for r in rows if r[0]]
    excluded = [r for r in rows if not r[0]]
    assert chosen and all(r[1] >= 2.0 for r in chosen)
    assert excluded and all(r[1] < 2.0 and r[2] for r in excluded)


def test_labels_line_up_with_volumes(synth_tiny, tiny_workspace):
    """The imported reference mask, the RSNA image labels and the HU agree."""
    manifest = read_manifest(synth_tiny)
    with Workspace.open(tiny_workspace) as ws:
        truth = {e["name"]: e for e in manifest["exams"]}
        for exam in ws.exams(site="atlantis"):
            labels = ws.load_labels("reference", exam.name)
            assert labels is not None
            assert bool(labels.any()) == truth[exam.name]["positive"]
            # the stored mask is exactly the NIfTI's voxels on the volume grid
            img = nib.load(str(synth_tiny / "atlantis" / "masks" / f"{exam.name}.nii.gz"))
            np.testing.assert_array_equal(labels, np.asarray(img.dataobj).transpose(2, 1, 0))
            if labels.any():
                hu = ws.read_volume(exam.name).hu
                assert 40 < hu[(labels > 0) & (labels < 255)].mean() < 100  # acute blood
        for exam in ws.exams(site="kaggle"):
            il = ws.image_labels(exam.name)
            assert il is not None and (il >= 0).all()
            assert bool(il[:, 0].any()) == truth[exam.name]["positive"]


def test_mismatched_labels_are_reported(synth_tiny, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(synth_tiny / "validation", src)
    masks = sorted((src / "masks").glob("*.nii.gz"))
    victim = masks[0]
    img = nib.load(str(victim))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, :-1], img.affine), str(victim))
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), str(src / "masks" / "NOPE-1.nii.gz"))
    (src / "labels.csv").write_text("ID,Label\nID_1.2.999_any,1\n")
    from ictview.io.importers import ImportOptions, MaskSource, import_source

    with Workspace.create(tmp_path / "ws") as ws:
        report = import_source(
            ws, [src / "dicom"],
            ImportOptions("validation", "validation", rsna_labels=src / "labels.csv",
                          masks=[MaskSource("reference", src / "masks")]),
        )
        problems = "\n".join(report.label_problems)
        assert "mask shape" in problems and victim.name in problems
        assert "NOPE-1" in problems
        assert "1 image label(s) for images not in this import" in problems
        # the exam with the bad mask is imported, without that mask
        name = victim.name[: -len(".nii.gz")]
        assert name in report.imported and ws.load_labels("reference", name) is None
        assert len(report.imported) == len(masks)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["import", "/nonexistent", "--workspace", "{ws}", "--site", "a", "--role", "test"],
         "/nonexistent: no such file or folder"),
        (["import", "{src}", "--workspace", "{ws}", "--site", "a"], "--site and --role are required"),
        (["import", "{src}", "--workspace", "{ws}", "--site", "a", "--role", "test", "--masks", "x"],
         "expected LABELSET=DIR"),
        (["import", "{src}", "--workspace", "{ws}", "--site", "a b", "--role", "test"],
         "site name 'a b'"),
        (["import", "{src}", "--workspace", "{ws}", "--site", "a", "--role", "test",
          "--rsna-labels", "{src}/missing.csv"], "missing.csv: cannot open"),
        (["info", "{ws}/none"], "workspace folder not found"),
        (["import", "{src}", "--workspace", "{ws}", "--role", "boss"], "invalid choice"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, synth_tiny, tmp_path):
    argv = [a.format(ws=tmp_path / "ws", src=synth_tiny / "kaggle" / "dicom") for a in argv]
    proc = subprocess.run([sys.executable, "-m", "ictview.cli", *argv], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def _catalog_consistent(ws_path) -> int:
    """Every exam row has a whole, matching volume file; no rows without an exam."""
    con = sqlite3.connect(ws_path / "workspace.sqlite")
    try:
        exams = con.execute("SELECT id, name, n_slices, volume_sha1 FROM exams").fetchall()
        for exam_id, name, n_slices, sha1 in exams:
            path = ws_path / "volumes" / f"{name}.h5"
            assert arrays.file_sha1(path) == sha1, name
            assert arrays.read_volume(path).hu.shape[0] == n_slices
            assert con.execute("SELECT COUNT(*) FROM slices WHERE exam_id=?", (exam_id,)).fetchone()[0] == n_slices
        orphans = con.execute(
            "SELECT COUNT(*) FROM slices WHERE exam_id NOT IN (SELECT id FROM exams)"
        ).fetchone()[0]
        assert orphans == 0
        return len(exams)
    finally:
        con.close()


def test_kill9_during_import_then_reimport(synth_tiny, tmp_path):
    ws_path = tmp_path / "ws"
    src = synth_tiny / "kaggle" / "dicom"
    args = [sys.executable, "-m", "ictview.cli", "import", str(src), "--workspace", str(ws_path),
            "--site", "kaggle", "--role", "unlabeled",
            "--rsna-labels", str(synth_tiny / "kaggle" / "labels.csv")]
    expected = read_manifest(synth_tiny)["sites"]["kaggle"]["exams"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # kill as soon as at least one exam is committed: mid-way through the import
    while time.monotonic() < deadline and proc.poll() is None:
        db = ws_path / "workspace.sqlite"
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=0.1)
                n = con.execute("SELECT COUNT(*) FROM exams").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = 0
            if n >= 1:
                break
        time.sleep(0.005)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    partial = _catalog_consistent(ws_path)
    assert partial < expected, "import finished before the kill; the test did not interrupt it"

    assert subprocess.run(args, capture_output=True).returncode == 0
    assert _catalog_consistent(ws_path) == expected
    assert not list((ws_path / "volumes").glob("*.tmp-*"))
    with Workspace.open(ws_path) as ws:
        labelled = ws.con.execute("SELECT COUNT(DISTINCT exam_id) FROM image_labels").fetchone()[0]
        assert labelled == expected  # labels of the exams imported before the kill are there too
