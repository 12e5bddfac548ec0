"""The `tiny` preset: layout, manifest counts, determinism, bad input."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from ictview.errors import IctviewError
from ictview.synth import PRESETS, generate
from ictview.synth.sites import SITE_ORDER


def test_manifest_counts_equal_files_on_disk(tiny, readback):
    out, manifest, _ = tiny
    size = PRESETS["tiny"]
    assert manifest["generator"] == "ictview-synth" and manifest["version"] == 1
    assert manifest["preset"] == "tiny" and manifest["seed"] == 0
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert list(manifest["sites"]) == list(SITE_ORDER)
    roles = {s: e["role"] for s, e in manifest["sites"].items()}
    assert roles == {"atlantis": "labeled", "kaggle": "unlabeled", "validation": "validation",
                     "cq500": "test"}
    for site, entry in manifest["sites"].items():
        exams = [e for e in manifest["exams"] if e["site"] == site]
        dicom = out / entry["dicom"]
        assert entry["exams"] == len(exams) == size.exams[site]
        assert sorted(p.name for p in dicom.iterdir()) == sorted(e["name"] for e in exams)
        assert entry["dicom_files"] == len(list(dicom.rglob("*.dcm")))
        assert entry["positive_exams"] == sum(e["positive"] for e in exams)
        assert entry["slices"] == sum(e["slices"] for e in exams)
        for e in exams:
            n = len(list(readback.chosen_series_dir(out, site, e["name"]).glob("*.dcm")))
            assert n == e["slices"] == size.slices
            assert e["positive"] == bool(e["subtypes"])
        if "masks" in entry:
            masks = sorted(p.name for p in (out / entry["masks"]).glob("*.nii.gz"))
            expected = [e["name"] for e in exams if site != "cq500" or e["pixel_labeled"]]
            assert masks == sorted(f"{n}.nii.gz" for n in expected)
    # prevalence: both classes everywhere, atlantis about 27 %, cq500 about 42 %
    sites = manifest["sites"]
    assert sites["atlantis"]["positive_exams"] == 2 and sites["cq500"]["positive_exams"] == 3
    assert all(0 < e["positive_exams"] < e["exams"] for e in sites.values())


def test_cq500_layout_thin_series_and_retest(tiny):
    out, manifest, _ = tiny
    entry = manifest["sites"]["cq500"]
    exams = [e for e in manifest["exams"] if e["site"] == "cq500"]
    assert entry["thin_series"] == len(exams)
    assert entry["pixel_labeled_exams"] == sum(e["pixel_labeled"] for e in exams) == 3
    assert entry["retest"] == ["cq500/retest/rep1", "cq500/retest/rep2", "cq500/retest/rep3"]
    labeled = sorted(f"{e['name']}.nii.gz" for e in exams if e["pixel_labeled"])
    for rel in entry["retest"]:
        assert sorted(p.name for p in (out / rel).glob("*.nii.gz")) == labeled
    thin_files = 0
    for e in exams:
        dirs = sorted(p.name for p in (out / "cq500/dicom" / e["name"]).iterdir())
        assert dirs == ["CT-0.625mm", "CT-5mm"]
        thick = pydicom.dcmread(next((out / "cq500/dicom" / e["name"] / "CT-5mm").glob("*.dcm")))
        thin_paths = list((out / "cq500/dicom" / e["name"] / "CT-0.625mm").glob("*.dcm"))
        thin = pydicom.dcmread(thin_paths[0])
        thin_files += len(thin_paths)
        assert float(thick.SliceThickness) == 5.0 and float(thin.SliceThickness) == 0.625
        assert thick.StudyInstanceUID == thin.StudyInstanceUID
        assert thick.SeriesInstanceUID != thin.SeriesInstanceUID
        assert thick.FrameOfReferenceUID == thin.FrameOfReferenceUID
        assert thick.PatientID == thin.PatientID == e["name"]
    assert entry["thin_series_files"] == thin_files


def test_progress_reports_every_exam(tiny):
    _, manifest, calls = tiny
    total = len(manifest["exams"])
    assert calls[0][:2] == (0, total)
    assert [c[0] for c in calls] == list(range(total + 1))
    assert all(c[1] == total for c in calls)


def test_scanner_and_storage_variety(tiny):
    out, _, _ = tiny
    seen = {"syntax": set(), "pixrep": set(), "intercept": set(), "maker": {}, "padding": 0}
    for site in SITE_ORDER:
        for p in (out / site / "dicom").rglob("*.dcm"):
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            seen["syntax"].add(ds.file_meta.TransferSyntaxUID)
            seen["pixrep"].add(int(ds.PixelRepresentation))
            seen["intercept"].add(float(ds.RescaleIntercept))
            seen["maker"].setdefault(site, set()).add((ds.Manufacturer, ds.ManufacturerModelName))
            seen["padding"] += "PixelPaddingValue" in ds
            assert ds.PatientID == p.relative_to(out / site / "dicom").parts[0]
    assert {pydicom.uid.JPEGLosslessSV1, pydicom.uid.JPEG2000Lossless} <= seen["syntax"]
    assert pydicom.uid.ExplicitVRLittleEndian in seen["syntax"]
    assert seen["pixrep"] == {0, 1} and {0.0, -1024.0} <= seen["intercept"]
    assert seen["padding"] > 0
    # atlantis: one vendor, four scanners; kaggle: many vendors
    assert len({m for m, _ in seen["maker"]["atlantis"]}) == 1
    assert len(seen["maker"]["atlantis"]) == 4
    assert len({m for m, _ in seen["maker"]["kaggle"]}) >= 3


def test_every_file_decodes(tiny):
    out, _, _ = tiny
    for p in out.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        arr = ds.pixel_array
        assert arr.shape == (int(ds.Rows), int(ds.Columns)) == (128, 128)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy not installed")
def test_every_file_passes_dciodvfy(tiny):
    out, _, _ = tiny
    bad = []
    for p in sorted(out.rglob("*.dcm")):
        r = subprocess.run(["dciodvfy", str(p)], capture_output=True, text=True, timeout=60)
        errors = [ln for ln in (r.stdout + r.stderr).splitlines() if "Error" in ln]
        if errors:
            bad.append(f"{p.relative_to(out)}: {errors[0]}")
    assert not bad, "\n".join(bad[:10])


def _sample(out: Path) -> list[Path]:
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    dicom = [p for p in files if p.suffix == ".dcm"]
    other = [p for p in files if p.suffix != ".dcm"]
    return dicom[::7] + other


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    out, manifest, _ = tiny
    # same seed, two worker processes: the same bytes (every exam has its own seeded streams)
    again = generate("tiny", tmp_path / "again", seed=0, workers=2)
    assert again == manifest
    sample = _sample(out)
    names = {p.name for p in sample}
    assert {"labels.csv", "reads.csv", "manifest.json"} <= names
    assert any(str(p).endswith(".nii.gz") for p in sample)
    for rel in sample:
        assert filecmp.cmp(out / rel, tmp_path / "again" / rel, shallow=False), rel
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*"))

    other = generate("tiny", tmp_path / "other", seed=1)
    assert other["seed"] == 1
    csv_a = (out / "kaggle/labels.csv").read_bytes()
    assert csv_a != (tmp_path / "other/kaggle/labels.csv").read_bytes()
    a = pydicom.dcmread(next((out / "atlantis/dicom/ATL-0001").glob("*.dcm")))
    b = pydicom.dcmread(next((tmp_path / "other/atlantis/dicom/ATL-0001").glob("*.dcm")))
    assert a.StudyInstanceUID != b.StudyInstanceUID
    assert a.PixelData != b.PixelData


def test_bad_input_is_one_line_error(tmp_path):
    with pytest.raises(IctviewError, match="unknown"):
        generate("huge", tmp_path / "x")
    with pytest.raises(IctviewError, match="non-negative"):
        generate("tiny", tmp_path / "y", seed=-1)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(IctviewError, match="not empty"):
        generate("tiny", busy)
    assert (busy / "keep.txt").read_text() == "mine"


class _Stop(Exception):
    pass


def test_paper_mini_starts(tmp_path):
    """paper-mini is for the GPU host; here: it plans all its exams and writes the first."""
    size = PRESETS["paper-mini"]
    assert sum(size.exams.values()) >= 400 and size.matrix in (256, 512)
    seen = []

    def stop_after_first(done, total, message):
        seen.append((done, total))
        if done == 1:
            raise _Stop

    with pytest.raises(_Stop):
        generate("paper-mini", tmp_path / "pm", seed=0, progress=stop_after_first)
    assert seen == [(0, sum(size.exams.values())), (1, sum(size.exams.values()))]
    files = list((tmp_path / "pm/atlantis/dicom/ATL-0001").glob("*.dcm"))
    assert len(files) == size.slices
    ds = pydicom.dcmread(files[0])
    assert (int(ds.Rows), int(ds.Columns)) == (size.matrix, size.matrix)
    assert not (tmp_path / "pm/manifest.json").exists()  # written last: an interrupted run has none
