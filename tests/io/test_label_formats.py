from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ictview.core.geometry import Geometry, zyx_to_nifti
from ictview.errors import IctviewError
from ictview.io.label_formats import (
    findings_present,
    majority,
    parse_cq500_reads,
    parse_rsna_labels,
    read_nifti_mask,
    rsna_key_for,
)

SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")


def test_rsna_labels(tmp_path):
    rows = ["ID,Label"]
    for key, pos in (("ID_1.2.3.4", "subdural"), ("ID_12cadc6af", None)):
        for t in SUBTYPES:
            rows.append(f"{key}_{t},{int(t == pos or (pos is not None and t == 'any'))}")
    p = tmp_path / "labels.csv"
    p.write_text("\n".join(rows) + "\n")
    labels = parse_rsna_labels(p)
    assert rsna_key_for(labels, "1.2.3.4") == "ID_1.2.3.4"
    assert rsna_key_for(labels, "ID_12cadc6af") == "ID_12cadc6af"  # the released data's UIDs
    assert rsna_key_for(labels, "9.9") is None
    assert labels["ID_1.2.3.4"] == {"EDH": 0, "IPH": 0, "IVH": 0, "SAH": 0, "SDH": 1, "ICH": 1}
    # real RSNA UIDs contain '_': the subtype is split from the right
    assert labels["ID_12cadc6af"]["ICH"] == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("Id,Value\n", "header must be 'ID,Label'"),
        ("ID,Label\nID_1.2_any,2\n", ":2: label '2' is not 0 or 1"),
        ("ID,Label\nID_1.2_headache,1\n", ":2: ID 'ID_1.2_headache'"),
        ("ID,Label\n1.2_any,1\n", ":2: ID '1.2_any'"),
        ("ID,Label\nID_1.2_any\n", ":2: expected 'ID,Label'"),
    ],
)
def test_rsna_labels_bad(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(IctviewError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_rsna_labels(p)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(IctviewError, match="cannot open"):
        parse_rsna_labels(tmp_path / "nope.csv")


FINDINGS14 = ("ICH,IPH,IVH,SDH,EDH,SAH,BleedLocation-Left,BleedLocation-Right,ChronicBleed,"
              "Fracture,CalvarialFracture,OtherFracture,MassEffect,MidlineShift").split(",")


def _reads_csv(tmp_path, rows):
    header = ["name", "Category"] + [f"R{r}:{f}" for r in (1, 2, 3) for f in FINDINGS14]
    lines = [",".join(header)]
    for name, ich in rows:
        vals = []
        for r in range(3):
            vals += [str(ich[r])] + ["0"] * 13
        lines.append(",".join([name, "B1"] + vals))
    p = tmp_path / "reads.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_cq500_reads_majority(tmp_path):
    p = _reads_csv(tmp_path, [("CQ500-CT-1", (1, 1, 0)), ("CQ500-CT-2", (0, 1, 0))])
    reads = parse_cq500_reads(p)
    assert majority(reads["CQ500-CT-1"]) == 1 and majority(reads["CQ500-CT-2"]) == 0
    assert reads["CQ500-CT-1"][("R3", "ICH")] == 0
    assert majority({}) is None


def test_cq500_reads_bad(tmp_path):
    p = tmp_path / "reads.csv"
    p.write_text("name,R1:ICH\nX,1\n")
    with pytest.raises(IctviewError, match="missing R1:IPH"):
        parse_cq500_reads(p)
    p = _reads_csv(tmp_path, [("A", (1, 1, 0)), ("A", (0, 0, 0))])
    with pytest.raises(IctviewError, match="listed twice"):
        parse_cq500_reads(p)


GEOM = Geometry((-10.0, -12.0, 30.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.8, 0.9))


def _save(tmp_path, data_xyz, affine, name="m.nii.gz"):
    p = tmp_path / name
    nib.save(nib.Nifti1Image(data_xyz, affine), str(p))
    return p


def test_mask_round_trip_and_flip(tmp_path):
    mask = np.zeros((4, 6, 5), np.uint8)
    mask[1, 2, 3] = 2
    mask[3, 0, 0] = 255
    ok = read_nifti_mask(_save(tmp_path, zyx_to_nifti(mask), GEOM.affine_ras()), GEOM, mask.shape)
    assert not ok.problems
    np.testing.assert_array_equal(ok.labels, mask)
    # the same mask written with the slice axis reversed (another tool's convention)
    aff = GEOM.affine_ras().copy()
    aff[:3, 3] += aff[:3, 2] * 3
    aff[:3, 2] *= -1
    flipped = read_nifti_mask(_save(tmp_path, zyx_to_nifti(mask[::-1]), aff, "f.nii.gz"), GEOM, mask.shape)
    assert not flipped.problems and flipped.notes
    np.testing.assert_array_equal(flipped.labels, mask)


def test_mask_mismatches_are_reported(tmp_path):
    mask = np.zeros((4, 6, 5), np.uint8)
    wrong_shape = read_nifti_mask(_save(tmp_path, zyx_to_nifti(mask[:3]), GEOM.affine_ras()), GEOM, mask.shape)
    assert wrong_shape.labels is None and "mask shape" in wrong_shape.problems[0]
    shifted = GEOM.affine_ras().copy()
    shifted[0, 3] += 3.0
    moved = read_nifti_mask(_save(tmp_path, zyx_to_nifti(mask), shifted), GEOM, mask.shape)
    assert moved.labels is None and "affine differs" in moved.problems[0]
    bad = mask.copy()
    bad[0, 0, 0] = 7
    values = read_nifti_mask(_save(tmp_path, zyx_to_nifti(bad), GEOM.affine_ras()), GEOM, mask.shape)
    assert values.labels is None and "[7]" in values.problems[0]
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"\x00garbage" * 50)
    broken = read_nifti_mask(junk, GEOM, mask.shape)
    assert broken.labels is None and "not a readable NIfTI" in broken.problems[0]


def test_findings_present():
    m = np.zeros((3, 3), np.uint8)
    assert findings_present(m)["ICH"] == 0
    m[0, 0] = 5
    f = findings_present(m)
    assert f["ICH"] == 1 and f["IVH"] == 1 and f["SDH"] == 0
    m[:] = 255  # ignore is not hemorrhage
    assert findings_present(m)["ICH"] == 0
