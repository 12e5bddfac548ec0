"""Another model's NIfTI predictions as an ictview run: geometry checks, scores, the report."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ictview.cli import main
from ictview.core.geometry import zyx_to_nifti
from ictview.store.workspace import Workspace


def _like(image_path: Path, data_zyx: np.ndarray, out: Path, dtype=np.uint8) -> Path:
    """Write data on the grid of an exported image, the way nnU-Net writes its outputs."""
    ref = nib.load(str(image_path))
    img = nib.Nifti1Image(zyx_to_nifti(data_zyx).astype(dtype), ref.affine)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out


@pytest.fixture
def exported(tiny_workspace_copy, tmp_path):
    ds = tmp_path / "Dataset501_ICH"
    assert main(["export", str(tiny_workspace_copy), "--labelset", "reference", "--format",
                 "nnunet", "--out", str(ds)]) == 0
    return tiny_workspace_copy, ds


def _fake_nnunet_output(ws_root: Path, ds: Path, out: Path) -> dict[str, np.ndarray]:
    """A 'model' that predicts the reference labels where they exist, else nothing."""
    truth = {}
    with Workspace.open(ws_root) as ws:
        for image in sorted((ds / "imagesTs").glob("*_0000.nii.gz")):
            exam = image.name[: -len("_0000.nii.gz")]
            e = ws.exam(exam)
            labels = ws.load_labels("reference", exam)
            if labels is None:
                labels = np.zeros((e.n_slices, e.rows, e.cols), np.uint8)
            labels = np.where(labels == 255, 0, labels).astype(np.uint8)
            truth[exam] = labels
            _like(image, labels, out / f"{exam}.nii.gz")
    return truth


def test_nnunet_label_maps_become_a_run_the_report_uses(exported, tmp_path, capsys):
    ws_root, ds = exported
    pred_dir = tmp_path / "nnunet-out"
    truth = _fake_nnunet_output(ws_root, ds, pred_dir)
    assert main(["import-predictions", str(ws_root), "--run", "nnunet", "--from", str(pred_dir),
                 "--kind", "labels", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["imported"]) == sorted(truth) and report["mismatched"] == []
    with Workspace.open(ws_root) as ws:
        assert ws.run("nnunet")["kind"] == "external"
        assert ws.predicted_exams("nnunet") == sorted(truth)
        for exam, labels in truth.items():
            pred = ws.read_prediction("nnunet", exam)
            np.testing.assert_array_equal(pred.prob > 0.5, (labels >= 1) & (labels <= 5))
            per_slice = ((labels >= 1) & (labels <= 5)).reshape(len(labels), -1).max(1)
            np.testing.assert_array_equal(pred.slice_scores, per_slice.astype(np.float32))
            assert pred.exam_score == float(per_slice.max())
    from training.cli import main as train_main

    out = tmp_path / "report"
    assert train_main(["report", "--workspace", str(ws_root), "--runs", "nnunet",
                       "--out", str(out), "--n-boot", "20"]) == 0
    produced = {p.name for p in out.iterdir()}
    assert produced, "the report wrote nothing"
    text = " ".join(p.read_text() for p in out.glob("*") if p.suffix in (".md", ".json",
                                                                          ".csv", ".txt"))
    assert "nnunet" in text


def test_monai_probabilities_in_subfolders_reoriented_and_mismatches_listed(exported, tmp_path,
                                                                            capsys):
    ws_root, ds = exported
    pred_dir = tmp_path / "monai-out"
    images = sorted((ds / "imagesTs").glob("*_0000.nii.gz"))
    good, flipped, shifted = images[0], images[1], images[2]
    with Workspace.open(ws_root) as ws:
        def probs(exam):
            e = ws.exam(exam)
            rng = np.random.default_rng(len(exam))
            return rng.random((e.n_slices, e.rows, e.cols)).astype(np.float32)

        exams = [p.name[: -len("_0000.nii.gz")] for p in (good, flipped, shifted)]
        p0 = probs(exams[0])
        # 4D class probabilities, channel 0 background, in MONAI's <exam>/<exam>_seg layout
        ref = nib.load(str(good))
        four = np.stack([1 - zyx_to_nifti(p0), zyx_to_nifti(p0)], axis=-1)
        (pred_dir / exams[0]).mkdir(parents=True)
        nib.save(nib.Nifti1Image(four, ref.affine), str(pred_dir / exams[0] / f"{exams[0]}_seg.nii.gz"))
        # the same grid stored with the first axis flipped (another orientation, same voxels)
        p1 = probs(exams[1])
        ref1 = nib.load(str(flipped))
        flip = nib.orientations.inv_ornt_aff(np.array([[0, -1], [1, 1], [2, 1]]), ref1.shape)
        nib.save(nib.Nifti1Image(zyx_to_nifti(p1)[::-1], ref1.affine @ flip),
                 str(pred_dir / f"{exams[1]}.nii.gz"))
        # off the grid by 3 mm: must be refused, named, one line
        ref2 = nib.load(str(shifted))
        moved = ref2.affine.copy()
        moved[0, 3] += 3.0
        nib.save(nib.Nifti1Image(zyx_to_nifti(probs(exams[2])), moved),
                 str(pred_dir / f"{exams[2]}.nii.gz"))
        (pred_dir / "notes.nii.gz").write_bytes(b"not an exam")
    capsys.readouterr()
    assert main(["import-predictions", str(ws_root), "--run", "monai", "--from",
                 str(pred_dir)]) == 0
    captured = capsys.readouterr()
    mismatch = [l for l in captured.err.splitlines() if l.startswith("mismatch:")]
    assert len(mismatch) == 1 and exams[2] in mismatch[0] and "origin off by 3" in mismatch[0]
    assert "names no exam" in captured.err
    with Workspace.open(ws_root) as ws:
        assert ws.predicted_exams("monai") == sorted(exams[:2])
        np.testing.assert_allclose(ws.read_prediction("monai", exams[0]).prob, p0, atol=1e-3)
        np.testing.assert_allclose(ws.read_prediction("monai", exams[1]).prob, p1, atol=1e-3)


def test_import_of_nothing_fails_and_creates_no_run(exported, tmp_path, capsys):
    ws_root, _ = exported
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import-predictions", str(ws_root), "--run", "x", "--from", str(empty)]) != 0
    assert "no NIfTI files" in capsys.readouterr().err
    bad = tmp_path / "bad"
    with Workspace.open(ws_root) as ws:
        exam = ws.exams(role="test")[0]
        _like_shape = np.zeros((exam.cols, exam.rows, exam.n_slices), np.float32) + 3.0
    bad.mkdir()
    nib.save(nib.Nifti1Image(_like_shape, np.eye(4)), str(bad / f"{exam.name}.nii.gz"))
    assert main(["import-predictions", str(ws_root), "--run", "x", "--from", str(bad)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "imported no prediction" in err
    with Workspace.open(ws_root) as ws:
        assert ws.run("x") is None and ws.predicted_exams("x") == []
    # a name already taken by an ictview-trained run is refused
    with Workspace.open(ws_root) as ws:
        ws.create_run("baseline", "teacher", {})
    assert main(["import-predictions", str(ws_root), "--run", "baseline", "--from",
                 str(bad)]) != 0
    assert "is a teacher run" in capsys.readouterr().err


def test_nnunet_saved_probabilities_are_used_with_the_grid_of_their_nifti(exported, tmp_path):
    """nnUNetv2_predict --save_probabilities: <case>.nii.gz (labels) + <case>.npz (C, z, y, x)."""
    ws_root, ds = exported
    out = tmp_path / "nnunet-prob"
    truth = _fake_nnunet_output(ws_root, ds, out)
    expected = {}
    for exam, labels in truth.items():
        rng = np.random.default_rng(len(exam))
        fg = rng.random(labels.shape).astype(np.float32)
        probs = np.stack([1 - fg, fg * 0.5, fg * 0.5])  # background + two classes
        np.savez_compressed(out / f"{exam}.npz", probabilities=probs)
        expected[exam] = fg
    assert main(["import-predictions", str(ws_root), "--run", "nnunet-prob", "--from",
                 str(out), "--kind", "probability"]) == 0
    with Workspace.open(ws_root) as ws:
        for exam, fg in expected.items():
            pred = ws.read_prediction("nnunet-prob", exam)
            np.testing.assert_allclose(pred.prob, fg, atol=1e-3)
            np.testing.assert_allclose(pred.slice_scores, fg.reshape(len(fg), -1).max(1),
                                       atol=1e-3)
