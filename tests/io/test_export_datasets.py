"""nnU-Net and MONAI dataset exports, label tables next to NIfTI labels, SEG segment codes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ictview.cli import main
from ictview.core.geometry import nifti_to_zyx
from ictview.store.workspace import Workspace


@pytest.fixture(scope="module")
def nnunet_dir(tiny_workspace, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nnunet") / "Dataset501_ICH"
    assert main(["export", str(tiny_workspace), "--labelset", "reference", "--format", "nnunet",
                 "--out", str(out)]) == 0
    return out


def test_nnunet_dataset_pairs_share_geometry_and_hold_the_stored_data(nnunet_dir, tiny_workspace):
    meta = json.loads((nnunet_dir / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"} and meta["file_ending"] == ".nii.gz"
    assert meta["labels"]["background"] == 0
    assert [meta["labels"][k] for k in ("EDH", "SDH", "SAH", "IPH", "IVH")] == [1, 2, 3, 4, 5]
    labels_tr = sorted((nnunet_dir / "labelsTr").glob("*.nii.gz"))
    images_tr = sorted((nnunet_dir / "imagesTr").glob("*_0000.nii.gz"))
    assert meta["numTraining"] == len(labels_tr) == len(images_tr) > 0
    assert {p.name[: -len("_0000.nii.gz")] for p in images_tr} == \
        {p.name[: -len(".nii.gz")] for p in labels_tr}
    any_ignore = False
    with Workspace.open(tiny_workspace) as ws:
        assert {p.name[: -len(".nii.gz")] for p in labels_tr} == \
            {e.name for e in ws.exams(role="labeled")} & set(ws.labelset_exams("reference"))
        to_predict = {e.name for r in ("validation", "test") for e in ws.exams(role=r)}
        assert {p.name[: -len("_0000.nii.gz")]
                for p in (nnunet_dir / "imagesTs").glob("*.nii.gz")} == to_predict
        for label_path in labels_tr:
            exam = label_path.name[: -len(".nii.gz")]
            img = nib.load(str(nnunet_dir / "imagesTr" / f"{exam}_0000.nii.gz"))
            lab = nib.load(str(label_path))
            assert img.shape == lab.shape
            np.testing.assert_array_equal(img.affine, lab.affine)
            np.testing.assert_array_equal(img.header.get_qform(), lab.header.get_sform())
            vol = ws.read_volume(exam)
            np.testing.assert_allclose(img.affine, vol.geometry.affine_ras())
            hu = nifti_to_zyx(np.asarray(img.dataobj))
            assert hu.dtype == np.int16
            np.testing.assert_array_equal(hu, vol.hu)
            stored = ws.load_labels("reference", exam)
            # nnU-Net's ignore label must be the highest label + 1: ictview's 255 becomes 6
            expected = np.where(stored == 255, 6, stored)
            np.testing.assert_array_equal(nifti_to_zyx(np.asarray(lab.dataobj)), expected)
            any_ignore |= bool((stored == 255).any())
    assert ("ignore" in meta["labels"]) == any_ignore
    if any_ignore:
        assert meta["labels"]["ignore"] == 6
    for name in ("labels.json", "labels.itksnap.txt", "labels.ctbl"):
        assert (nnunet_dir / name).is_file()


def test_nnunet_export_refuses_a_foreign_folder_but_reruns_in_place(nnunet_dir, tiny_workspace,
                                                                    tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    argv = ["export", str(tiny_workspace), "--labelset", "reference", "--format", "nnunet"]
    assert main(argv + ["--out", str(foreign)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep"
    assert main(argv + ["--out", str(nnunet_dir)]) == 0


def test_monai_datalist_loads_and_every_path_exists(tiny_workspace, tmp_path):
    out = tmp_path / "monai"
    assert main(["export", str(tiny_workspace), "--labelset", "reference", "--format", "monai",
                 "--out", str(out), "--json"]) == 0
    datalist = json.loads((out / "datalist.json").read_text())
    with Workspace.open(tiny_workspace) as ws:
        roles = {r: {e.name for e in ws.exams(role=r)} for r in ("labeled", "validation", "test")}
        labeled = set(ws.labelset_exams("reference"))
    assert {e["exam"] for e in datalist["training"]} == roles["labeled"] & labeled
    assert {e["exam"] for e in datalist["validation"]} == roles["validation"] & labeled
    assert {e["exam"] for e in datalist["test"]} == roles["test"]
    assert any("label" in e for e in datalist["test"])
    for key in ("training", "validation", "test"):
        for entry in datalist[key]:
            image = out / entry["image"]
            assert image.is_file()
            if key != "test":
                assert "label" in entry
            if "label" in entry:
                label = out / entry["label"]
                assert label.is_file()
                a, b = nib.load(str(image)), nib.load(str(label))
                assert a.shape == b.shape
                np.testing.assert_array_equal(a.affine, b.affine)


def test_nifti_labels_carry_sidecar_itksnap_and_slicer_tables(tiny_workspace, tmp_path):
    out = tmp_path / "nifti"
    assert main(["export", str(tiny_workspace), "--labelset", "reference", "--format", "nifti",
                 "--out", str(out)]) == 0
    files = sorted(out.glob("*.nii.gz"))
    assert files
    for f in files:
        side = json.loads(f.with_name(f.name[: -len(".nii.gz")] + ".json").read_text())
        assert side["ignore"] == 255
        table = {row["value"]: row for row in side["labels"]}
        assert table[2]["code"] == "SDH" and table[255]["code"] == "ignore"
        assert len(table[4]["color"]) == 3
        labels = np.asarray(nib.load(str(f)).dataobj)
        assert side["values_present"] == sorted(int(v) for v in np.unique(labels))
        hdr = nib.load(str(f)).header
        assert b"1 EDH" in hdr["descrip"].tobytes() and int(hdr["intent_code"]) == 1002
    itk = (out / "labels.itksnap.txt").read_text().splitlines()
    rows = [line.split() for line in itk if line.strip() and not line.startswith("#")]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 4, 5, 255]
    assert rows[2][1:4] == ["255", "215", "0"] and '"SDH' in " ".join(rows[2])
    ctbl = [line.split() for line in (out / "labels.ctbl").read_text().splitlines()
            if not line.startswith("#")]
    assert [int(r[0]) for r in ctbl] == [0, 1, 2, 3, 4, 5, 255]
    assert all(len(r) == 6 for r in ctbl) and ctbl[3][1] == "SAH"


def test_seg_segments_carry_each_subtypes_code(tiny_workspace, tmp_path):
    import highdicom as hd

    from ictview.io.seg_codes import SEG_TYPE_BY_CODE

    with Workspace.open(tiny_workspace) as ws:
        exam = max(ws.labelset_exams("reference"),
                   key=lambda e: len(set(np.unique(ws.load_labels("reference", e))) - {0, 255}))
    out = tmp_path / "seg"
    assert main(["export", str(tiny_workspace), "--labelset", "reference", "--format",
                 "dicom-seg", "--out", str(out), "--exam", exam]) == 0
    seg = hd.seg.segread(str(out / f"{exam}.seg.dcm"))
    seen = {}
    for n in seg.segment_numbers:
        d = seg.get_segment_description(n)
        seen[d.segment_label] = d.segmented_property_type.value
    assert len(seen) >= 2
    for label, value in seen.items():
        assert value == SEG_TYPE_BY_CODE[label][0]
    assert len(set(seen.values())) == len(seen) or "EDH" in seen


def test_nnunet_ignore_label_is_the_highest_plus_one(tiny_workspace_copy, tmp_path):
    """255 (not annotated) in a training label becomes nnU-Net's ignore label 6, declared."""
    with Workspace.open(tiny_workspace_copy) as ws:
        exam = sorted(set(e.name for e in ws.exams(role="labeled"))
                      & set(ws.labelset_exams("reference")))[0]
        labels = ws.load_labels("reference", exam)
        labels[:1] = 255
        ws.save_labels("reference", exam, labels, "tester")
    out = tmp_path / "Dataset502_ICH"
    assert main(["export", str(tiny_workspace_copy), "--labelset", "reference", "--format",
                 "nnunet", "--out", str(out)]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"]["ignore"] == 6
    values = sorted(meta["labels"].values())
    assert values == list(range(7))  # consecutive, ignore last: what nnU-Net checks
    back = nifti_to_zyx(np.asarray(nib.load(str(out / "labelsTr" / f"{exam}.nii.gz")).dataobj))
    assert (back[:1] == 6).all() and not (back == 255).any()
    assert json.loads((out / "labels.json").read_text())["ignore"] == 6
