"""Export round trips: NIfTI and DICOM SEG read back voxel by voxel, SEG valid per dciodvfy."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess

import numpy as np
import pydicom
import pytest

from ictview.core.annotation import AnnotationModel
from ictview.errors import IctviewError
from ictview.io import export as ex
from ictview.io.export_cli import add_export_parser, cmd_export
from ictview.io.seg_codes import SEG_TYPE_BY_CODE
from ictview.store.workspace import Workspace

DCIODVFY = shutil.which("dciodvfy")


def parse(argv):
    parser = argparse.ArgumentParser(prog="ictview")
    add_export_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["export", *argv])


def dciodvfy_errors(path) -> list[str]:
    out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if "Error" in line]


@pytest.fixture
def rater_ws(tiny_workspace_copy):
    """A rater labelset painted through the model on a positive exam."""
    root = tiny_workspace_copy
    with Workspace.open(root) as ws:
        exam = next(n for n in ws.labelset_exams("reference")
                    if {2, 4} <= set(np.unique(ws.load_labels("reference", n))))
    m = AnnotationModel.open(root, exam, "rater-alice", "alice", start_from="reference")
    m.label_value = 5
    m.brush_radius_mm = 6
    m.begin_stroke()
    m.paint_to(3, 40, 40)
    m.paint_to(3, 60, 50)
    m.end_stroke()
    m.label_value = 1
    m.polygon_fill(5, [(10, 10), (10, 30), (25, 20)])
    labels = m.labels.copy()
    m.close()
    return root, exam, labels


def test_nifti_and_dicom_seg_round_trip_voxel_by_voxel(rater_ws, tmp_path):
    root, exam, labels = rater_ws
    assert set(np.unique(labels)) == {0, 1, 2, 4, 5}
    with Workspace.open(root) as ws:
        vol = ws.read_volume(exam)
        nii = ex.export_nifti(ws, "rater-alice", exam, tmp_path)
        seg_path = ex.export_dicom_seg(ws, "rater-alice", exam, tmp_path)
        sources = ex.source_datasets(ws, exam)
    back, affine = ex.read_nifti(nii)
    assert np.array_equal(back, labels)
    np.testing.assert_allclose(affine, vol.geometry.affine_ras(), atol=1e-4)
    import nibabel as nib

    hdr = nib.load(str(nii)).header
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1
    assert hdr.get_data_dtype() == np.uint8

    assert np.array_equal(ex.read_dicom_seg(seg_path, vol.sop_uids), labels)
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.PatientID == sources[0].PatientID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert str(seg.ContentCreatorName) == "alice^"
    segs = {s.SegmentLabel: s for s in seg.SegmentSequence}
    assert list(segs) == ["EDH", "SDH", "IPH", "IVH"]
    for s in seg.SegmentSequence:
        assert s.SegmentAlgorithmType == "MANUAL"
        assert s.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
        # each subtype's own SNOMED CT concept (ictview.io.seg_codes)
        assert s.SegmentedPropertyTypeCodeSequence[0].CodeValue == \
            SEG_TYPE_BY_CODE[s.SegmentLabel][0]
        assert s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    # each frame sits at the position of the source slice it references
    number_of = {s.SegmentNumber: s.SegmentLabel for s in seg.SegmentSequence}
    z_of = {u: k for k, u in enumerate(vol.sop_uids)}
    for f in seg.PerFrameFunctionalGroupsSequence:
        uid = f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = z_of[uid]
        ipp = [float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(ipp, vol.geometry.slice_position(k), atol=1e-3)
        label = number_of[f.SegmentIdentificationSequence[0].ReferencedSegmentNumber]
        assert label in segs
    if DCIODVFY is None:
        pytest.skip("dciodvfy (dicom3tools) not installed: SEG validation not run")
    assert dciodvfy_errors(seg_path) == []


def test_export_cli_writes_every_exam_of_a_labelset(tiny_workspace, tmp_path, capsys):
    args = parse([str(tiny_workspace), "--labelset", "reference", "--format", "nifti",
                  "--out", str(tmp_path / "nii")])
    assert cmd_export(args) == 0
    with Workspace.open(tiny_workspace) as ws:
        exams = ws.labelset_exams("reference")
        written = sorted(p.name for p in (tmp_path / "nii").glob("*.nii.gz"))
        assert written == sorted(f"{e}.nii.gz" for e in exams)
        for e in exams[:3]:
            back, _ = ex.read_nifti(tmp_path / "nii" / f"{e}.nii.gz")
            assert np.array_equal(back, ws.load_labels("reference", e))
        positive = [e for e in exams if ws.load_labels("reference", e).any()]
        negative = [e for e in exams if not ws.load_labels("reference", e).any()]
    args = parse([str(tiny_workspace), "--labelset", "reference", "--format", "dicom-seg",
                  "--out", str(tmp_path / "seg"), "--exam", positive[0], negative[0]])
    assert cmd_export(args) == 0
    assert [p.name for p in (tmp_path / "seg").iterdir()] == [f"{positive[0]}.seg.dcm"]
    assert f"skipped {negative[0]}" in capsys.readouterr().err
    seg = pydicom.dcmread(tmp_path / "seg" / f"{positive[0]}.seg.dcm")
    assert "ContentCreatorName" not in seg  # imported labels: author unknown


def test_export_bad_input_is_one_line(tiny_workspace_copy, tmp_path):
    root = tiny_workspace_copy
    cases = [
        (["--labelset", "nope", "--format", "nifti"], "no labelset named 'nope'"),
        (["--labelset", "reference", "--format", "nifti", "--exam", "NOPE"],
         "no exam named 'NOPE'"),
        (["--labelset", "retest-1", "--format", "nifti", "--exam", "ATL-0001"],
         "has no labels for exam"),
    ]
    for extra, message in cases:
        with pytest.raises(IctviewError, match=message) as e:
            cmd_export(parse([str(root), "--out", str(tmp_path / "o"), *extra]))
        assert "\n" not in str(e.value)
    with pytest.raises(SystemExit):
        parse([str(root), "--labelset", "reference", "--format", "png", "--out", str(tmp_path)])
    with Workspace.open(root) as ws:
        exam = next(
            n for n in ws.labelset_exams("reference") if ws.load_labels("reference", n).any()
        )
    con = sqlite3.connect(root / "workspace.sqlite")
    with con:
        con.execute("UPDATE exams SET source=? WHERE name=?", (str(tmp_path / "gone"), exam))
    con.close()
    with pytest.raises(IctviewError, match="source DICOM folder .* not found") as e:
        cmd_export(parse([str(root), "--labelset", "reference", "--format", "dicom-seg",
                          "--out", str(tmp_path / "o"), "--exam", exam]))
    assert "\n" not in str(e.value)
