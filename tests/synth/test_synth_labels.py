"""What the synthetic images and labels mean: masks on the DICOM grid over blood-density
pixels, skull where it should be, RSNA image labels, CQ500 reads and test-retest."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ictview.core.geometry import affines_match
from ictview.core.labels import BY_VALUE
from ictview.synth import readers
from ictview.synth.writers import rsna_rows

EXPECTED_READS_HEADER = (
    "name,Category,"
    + ",".join(
        f"{r}:{c}"
        for r in ("R1", "R2", "R3")
        for c in ("ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "BleedLocation-Left",
                  "BleedLocation-Right", "ChronicBleed", "Fracture", "CalvarialFracture",
                  "OtherFracture", "MassEffect", "MidlineShift")
    )
)


def _masked_exams(out, manifest):
    for site in ("atlantis", "validation", "cq500"):
        for e in manifest["exams"]:
            if e["site"] == site and (site != "cq500" or e["pixel_labeled"]):
                yield site, e, out / site / "masks" / f"{e['name']}.nii.gz"


def test_masks_lie_on_the_dicom_grid_over_blood(tiny, readback):
    out, manifest, _ = tiny
    pooled: dict[str, list[np.ndarray]] = {}
    for site, e, path in _masked_exams(out, manifest):
        series = readback.load_series(readback.chosen_series_dir(out, site, e["name"]))
        mask, affine = readback.load_mask(path)
        assert mask.dtype == np.uint8 and mask.shape == series.hu.shape
        assert affines_match(affine, series.geometry.affine_ras(), tol_mm=1e-3)
        assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3, 4, 5}
        codes = [BY_VALUE[v].code for v in sorted(set(np.unique(mask).tolist()) - {0})]
        assert codes == e["subtypes"]
        for v in np.unique(mask[mask > 0]):
            hu = series.hu[mask == v]
            pooled.setdefault(site, []).append(hu)
            if hu.size >= 20:  # acute blood, give or take noise and partial volume
                assert 45 <= np.median(hu) <= 95, (e["name"], BY_VALUE[int(v)].code, np.median(hu))
    assert set(pooled) == {"atlantis", "validation", "cq500"}
    for site, parts in pooled.items():
        assert 50 <= np.median(np.concatenate(parts)) <= 90, site


def test_skull_removed_at_atlantis_present_elsewhere(tiny, readback):
    out, manifest, _ = tiny
    for e in manifest["exams"]:
        s = readback.load_series(readback.chosen_series_dir(out, e["site"], e["name"]))
        bone = np.mean(s.hu > 300)
        if e["site"] == "atlantis":
            # skull, scalp and face removed: outside the brain is air, no bone-density pixel
            # survives (the bright rim the stripping leaves stays under blood-to-bone levels)
            assert bone == 0.0, e["name"]
            assert s.hu.max() < 300 and np.mean(s.hu == -1024) > 0.4
        else:
            assert bone > 0.02, e["name"]
            assert s.hu.max() > 1000


def test_slice_zero_is_the_skull_base_the_last_near_the_vertex(tiny, readback):
    out, manifest, _ = tiny
    for e in (e for e in manifest["exams"] if e["site"] == "kaggle"):
        s = readback.load_series(readback.chosen_series_dir(out, "kaggle", e["name"]))
        z = [float(d.ImagePositionPatient[2]) for d in s.datasets]
        assert np.all(np.diff(z) > 0)
        head = (s.hu > -200).sum(axis=(1, 2))
        bone = (s.hu > 300).sum(axis=(1, 2)) / head
        mid = len(z) // 2
        assert bone[0] > bone[mid]  # petrous ridges, clivus, orbital roofs
        assert head[-1] < head[mid]  # the head narrows towards the vertex


def test_rsna_csv_six_rows_per_image_matching_the_truth(tiny, readback):
    out, manifest, _ = tiny
    with open(out / "kaggle/labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["ID", "Label"]
    body = rows[1:]
    entry = manifest["sites"]["kaggle"]
    assert len(body) == 6 * entry["slices"] == 6 * entry["images"]
    per_image: dict[str, dict[str, int]] = {}
    for ident, label in body:
        uid, _, sub = ident.rpartition("_")
        assert ident.startswith("ID_") and label in ("0", "1")
        per_image.setdefault(uid[3:], {})[sub] = int(label)
    order = ["epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any"]
    assert [r[0].rpartition("_")[2] for r in body[:6]] == order
    for labels in per_image.values():
        assert sorted(labels) == sorted(order)
        assert labels["any"] == max(v for k, v in labels.items() if k != "any")
    assert entry["positive_images"] == sum(v["any"] for v in per_image.values())
    # image labels agree with the exams' truth: the SOP UIDs of each exam's files
    rsna = {"EDH": "epidural", "IPH": "intraparenchymal", "IVH": "intraventricular",
            "SAH": "subarachnoid", "SDH": "subdural"}
    for e in (e for e in manifest["exams"] if e["site"] == "kaggle"):
        s = readback.load_series(readback.chosen_series_dir(out, "kaggle", e["name"]))
        labs = [per_image[str(d.SOPInstanceUID)] for d in s.datasets]
        assert any(x["any"] for x in labs) == e["positive"]
        found = {k for k, sub in rsna.items() if any(x[sub] for x in labs)}
        assert found == set(e["subtypes"])
        if e["positive"]:  # lesions span several slices
            assert sum(x["any"] for x in labs) >= 2


def test_rsna_rows_follow_the_mask_slice_by_slice():
    mask = np.zeros((3, 8, 8), np.uint8)
    mask[0, 2:4, 2:4] = 4
    mask[2, 1, 1] = 2
    mask[2, 5, 5] = 5
    rows = dict(rsna_rows(["1.2.1", "1.2.2", "1.2.3"], mask))
    assert len(rows) == 18
    assert rows["ID_1.2.1_intraparenchymal"] == rows["ID_1.2.1_any"] == 1
    assert rows["ID_1.2.1_subdural"] == 0
    assert all(rows[f"ID_1.2.2_{t}"] == 0 for t in ("epidural", "subdural", "any"))
    assert rows["ID_1.2.3_subdural"] == rows["ID_1.2.3_intraventricular"] == 1
    assert rows["ID_1.2.3_any"] == 1


def test_reads_csv_format_and_majority(tiny):
    out, manifest, _ = tiny
    text = (out / "cq500/reads.csv").read_text()
    assert text.splitlines()[0] == EXPECTED_READS_HEADER
    with open(out / "cq500/reads.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    exams = {e["name"]: e for e in manifest["exams"] if e["site"] == "cq500"}
    assert sorted(r["name"] for r in rows) == sorted(exams)
    agree = 0
    for r in rows:
        assert r["Category"] in ("B1", "B2")
        assert all(v in ("0", "1") for k, v in r.items() if k not in ("name", "Category"))
        votes = sum(int(r[f"{x}:ICH"]) for x in ("R1", "R2", "R3"))
        assert exams[r["name"]]["reads_positive"] == (votes >= 2)
        agree += (votes >= 2) == exams[r["name"]]["positive"]
        for x in ("R1", "R2", "R3"):  # a reader calling a subtype calls ICH
            subs = max(int(r[f"{x}:{s}"]) for s in ("IPH", "IVH", "SDH", "EDH", "SAH"))
            assert subs == int(r[f"{x}:ICH"])
    assert agree >= len(rows) - 2
    assert manifest["sites"]["cq500"]["reads_positive_exams"] == sum(
        e["reads_positive"] for e in exams.values())


def test_readers_disagree_realistically():
    """On many exams, the majority vote mostly but not always agrees with the truth: readers
    miss small lesions and over-call mimics, more often the less experienced one."""
    rng = np.random.default_rng(7)
    truth_pos, majority, calls = [], [], {r: [] for r in readers.READER_NAMES}
    for i in range(600):
        positive = rng.random() < 0.42
        findings = ()
        if positive:
            n = int(rng.integers(1, 3))
            findings = tuple(
                readers.Finding(str(rng.choice(readers.SUBTYPES)),
                                float(np.exp(rng.uniform(np.log(0.05), np.log(40.0)))),
                                int(rng.choice([-1, 0, 1])))
                for _ in range(n)
            )
        truth = readers.ExamTruth(findings, float(rng.uniform(0, 1)), False, False)
        reads = readers.read_exam(truth, np.random.default_rng([7, i]))
        truth_pos.append(positive)
        majority.append(readers.majority_ich(reads))
        for r in readers.READER_NAMES:
            calls[r].append(reads[r]["ICH"])
    t, m = np.array(truth_pos), np.array(majority)
    agreement = np.mean(t == m)
    assert 0.85 <= agreement < 0.99
    assert m[t].mean() < 1.0 and m[~t].mean() > 0.0  # misses and over-calls both happen
    sens = {r: np.array(c)[t].mean() for r, c in calls.items()}
    spec = {r: 1 - np.array(c)[~t].mean() for r, c in calls.items()}
    assert sens["R1"] <= sens["R3"] and spec["R1"] <= spec["R3"]


def test_small_lesions_are_missed_more_often():
    rng = np.random.default_rng(3)

    def miss_rate(ml):
        f = (readers.Finding("IPH", ml, 1),)
        truth = readers.ExamTruth(f, 0.0, False, False)
        reads = [readers.read_exam(truth, rng) for _ in range(400)]
        return np.mean([r["R2"]["ICH"] == 0 for r in reads])

    assert miss_rate(0.05) > 0.3 > miss_rate(20.0)


def test_retest_repetitions_vary_plausibly(tiny, readback):
    out, manifest, _ = tiny
    dices = []
    for e in manifest["exams"]:
        if e["site"] != "cq500" or not e["pixel_labeled"]:
            continue
        ref, ref_aff = readback.load_mask(out / "cq500/masks" / f"{e['name']}.nii.gz")
        reps = []
        for i in (1, 2, 3):
            rep, aff = readback.load_mask(out / f"cq500/retest/rep{i}" / f"{e['name']}.nii.gz")
            assert rep.shape == ref.shape and np.allclose(aff, ref_aff)
            assert set(np.unique(rep).tolist()) <= set(np.unique(ref).tolist())
            reps.append(rep)
        if not ref.any():
            assert not any(r.any() for r in reps)
            continue
        assert not np.array_equal(reps[0], reps[1])
        dices += [readers.dice(reps[a], reps[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
        dices += [readers.dice(r, ref) for r in reps]
    assert dices and 0.6 <= np.mean(dices) <= 0.97


@pytest.mark.parametrize("pixel_mm", [0.45, 0.9])
def test_repeat_segmentation_dice_on_a_known_lesion(pixel_mm):
    """A 12 mm blob over 3 slices: repetitions agree with Dice ~0.75-0.95."""
    n = 96
    yy, xx = np.mgrid[:n, :n]
    ref = np.zeros((3, n, n), np.uint8)
    r_px = 6.0 / pixel_mm
    for z, scale in enumerate((0.7, 1.0, 0.7)):
        ref[z][(yy - 48) ** 2 + (xx - 48) ** 2 <= (r_px * scale) ** 2] = 4
    allowed = np.ones_like(ref, bool)
    rng = np.random.default_rng(0)
    d = []
    for _ in range(8):
        a = readers.repeat_segmentation(ref, allowed, rng, pixel_mm)
        b = readers.repeat_segmentation(ref, allowed, rng, pixel_mm)
        assert set(np.unique(a).tolist()) <= {0, 4}
        d.append(readers.dice(a, b))
    assert 0.75 <= np.mean(d) <= 0.97
