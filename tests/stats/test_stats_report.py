"""The report on a hand-built workspace: numbers against independent exact computations.

The workspace has a test site (readers' reads, a pixel-labeled subset, three
repetitions of one rater), a validation site (masks only) and runs of known
quality: predictions are noise plus a lesion signal whose strength is the run's
quality, so a better run must come out better in every table.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError
from ictview.stats import average_precision, best_dice_threshold, dice_score, exam_auc
from ictview.stats.metrics import isolated_subtype_mask
from ictview.stats.report import run_report
from ictview.stats.report_data import RunInfo
from ictview.stats.report_cli import main as report_main
from ictview.store.arrays import Prediction
from ictview.store.workspace import NewExam, Workspace

SHAPE = (4, 16, 16)
CODES = {"EDH": 1, "SDH": 2, "SAH": 3, "IPH": 4, "IVH": 5}
# test exams: (name, subtypes or () for negative, reads?, in the reference labelset?)
TEST_EXAMS = [
    ("T01", ("IPH",), True, True), ("T02", ("IPH",), True, True), ("T03", ("SDH",), True, True),
    ("T04", ("SDH",), True, False), ("T05", ("SAH",), True, True),
    ("T06", ("IPH", "IVH"), True, False),
    ("T07", ("SAH",), True, False), ("T08", (), True, True), ("T09", (), True, True),
    ("T10", (), True, False), ("T11", (), True, False), ("T12", (), True, False),
    ("T13", (), True, False), ("T14", ("IPH",), False, True), ("T15", (), False, False),
]  # fmt: skip
RETEST_EXAMS = ("T01", "T02", "T03", "T08", "T09")
VAL_EXAMS = [(f"V{i:02d}", ("IPH",) if i % 2 else ()) for i in range(1, 9)]
# run -> (kind, config, quality); quality in (0, 1]: strength of the lesion signal
RUNS = {
    "baseline": ("teacher", {"augment": {"contrast": "none"}, "seed": 0}, 0.35),
    "ss": ("student", {"augment": {"contrast": "mixed"}, "seed": 0,
                       "ranker": {"c": 10, "k_hi": 0.7, "k_lo": 0.3}}, 0.9),
    "power": ("teacher", {"augment": {"contrast": "power"}, "seed": 0}, 0.4),
    "log": ("teacher", {"augment": {"contrast": "log"}, "seed": 0}, 0.3),
    "mixed": ("teacher", {"augment": {"contrast": "mixed"}, "seed": 0}, 0.5),
    "no-ranker": ("student", {"augment": {"contrast": "mixed"}, "seed": 0,
                              "ranker": {"enabled": False, "c": 10, "k_hi": 0.7,
                                         "k_lo": 0.3}}, 0.6),
}  # fmt: skip
N_BOOT = 200


def geometry() -> Geometry:
    return Geometry((-4.0, -4.0, 0.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.5, 0.5))


def lesion_mask(index: int, subtypes: tuple[str, ...]) -> np.ndarray:
    """uint8 labels: one blob per subtype on slices 1-2, position from the exam index."""
    m = np.zeros(SHAPE, np.uint8)
    for k, code in enumerate(subtypes):
        y0, x0 = 3 + (index * 3 + 5 * k) % 8, 3 + (index * 5 + 4 * k) % 8
        m[1:3, y0 : y0 + 4, x0 : x0 + 3] = CODES[code]
        m[1, y0, x0 + 3] = CODES[code]
    return m


def reads_for(index: int, subtypes: tuple[str, ...]) -> dict[tuple[str, str], int]:
    """Three readers; R3 sometimes disagrees, never changing the majority."""
    reads = {}
    for reader in ("R1", "R2", "R3"):
        flip = reader == "R3" and index % 3 == 0
        reads[(reader, "ICH")] = int(bool(subtypes) != flip)
        for code in CODES:
            reads[(reader, code)] = int(code in subtypes)
    return reads


def predict(quality: float, truth: np.ndarray, seed: int) -> Prediction:
    """Noise + quality x lesion, plus a false-positive speck that worse runs believe more."""
    rng = np.random.default_rng(seed)
    lesion = ((truth > 0) & (truth != 255)).astype(np.float32)
    noise = rng.normal(0.2, 0.12 + 0.1 * (1 - quality), SHAPE)
    prob = noise + quality * 0.7 * lesion
    prob[2, 12:14, 1:3] += (1 - quality) * 0.6 * rng.random()  # mimic (calcification)
    prob = np.clip(prob, 0, 1).astype(np.float16)
    slice_scores = prob.reshape(SHAPE[0], -1).max(1).astype(np.float32)
    exam_score = float(np.sort(prob.ravel().astype(np.float64))[-6:].mean())
    return Prediction(prob, slice_scores, exam_score)


def new_exam(name: str, site: str, index: int) -> NewExam:
    rng = np.random.default_rng(index)
    return NewExam(
        name=name, site=site, hu=rng.integers(0, 80, SHAPE, dtype=np.int16), geometry=geometry(),
        sop_uids=[f"1.2.9.{index}.{k}" for k in range(SHAPE[0])],
        positions=[5.0 * k for k in range(SHAPE[0])], patient_id=name,
        study_uid=f"1.2.9.{index}", series_uid=f"1.2.9.{index}.1",
    )  # fmt: skip


def build_workspace(root, *, validation=True, retest=True, runs=RUNS, test_exams=TEST_EXAMS,
                    parents=None):
    """The workspace on disk; returns the truth the test computes its references from."""
    truth = {}
    with Workspace.create(root) as ws:
        ws.ensure_site("cq500", "test")
        for i, (name, subtypes, has_reads, in_ref) in enumerate(test_exams):
            ex = new_exam(name, "cq500", i)
            mask = lesion_mask(i, subtypes)
            truth[name] = mask
            ex.reads = reads_for(i, subtypes) if has_reads else None
            ex.masks = {"reference": mask} if in_ref else None
            ws.add_exam(ex)
        if retest:
            for name in [n for n in RETEST_EXAMS if n in truth]:
                ref = truth[name]
                wider = ref.copy()
                wider[:, :, 1:] |= ref[:, :, :-1]  # one pixel wider
                for k, m in enumerate((ref, wider, np.roll(ref, 1, axis=1)), start=1):
                    ws.save_labels(f"retest-{k}", name, m, rater="rater-1")
        if validation:
            ws.ensure_site("validation", "validation")
            for j, (name, subtypes) in enumerate(VAL_EXAMS):
                ex = new_exam(name, "validation", 100 + j)
                truth[name] = lesion_mask(100 + j, subtypes)
                ex.masks = {"reference": truth[name]}
                ws.add_exam(ex)
        for r, (run, (kind, config, quality)) in enumerate(runs.items()):
            ws.create_run(run, kind, config, (parents or {}).get(run))
            for e, name in enumerate(truth):
                ws.write_prediction(run, name, predict(quality, truth[name], 1000 * r + e))
    return truth


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "ws"
    truth = build_workspace(root)
    return root, truth


@pytest.fixture(scope="module")
def full_report(study, tmp_path_factory):
    root, _ = study
    out = tmp_path_factory.mktemp("out") / "full"
    doc = run_report(root, list(RUNS), out, n_boot=N_BOOT, seed=7)
    return doc, out


def strict_json(path) -> dict:
    def no_nan(token):
        raise AssertionError(f"{path}: {token} is not JSON")

    return json.loads(path.read_text(), parse_constant=no_nan)


def predictions(root, run, names):
    with Workspace.open(root) as ws:
        return {n: ws.read_prediction(run, n) for n in names}


def references(root, truth):
    """Independent reference: exam labels from the truth table (reads / masks as built)."""
    names = [n for n, _, reads, ref in TEST_EXAMS if reads or ref]
    y = np.array([bool(((truth[n] > 0) & (truth[n] != 255)).any()) for n in names])
    return names, y


def test_table1_equals_exact_metrics(study, full_report):
    root, truth = study
    doc, out = full_report
    assert doc == {**strict_json(out / "report.json"), "files": doc["files"]}
    names, y = references(root, truth)
    subset = [n for n, _, _, ref in TEST_EXAMS if ref]
    val = [n for n, _ in VAL_EXAMS]
    rows = {r["run"]: r for r in doc["tables"]["table1"]["rows"]}
    assert list(rows) == list(RUNS)
    for run in RUNS:
        preds = predictions(root, run, names + val)
        auc = exam_auc(y, [preds[n].exam_score for n in names]).value
        ref = np.concatenate([truth[n].ravel() for n in subset]) > 0
        scores = np.concatenate([preds[n].prob.ravel() for n in subset])
        ap = average_precision(ref, scores).value
        thr = best_dice_threshold(
            np.concatenate([truth[n].ravel() for n in val]) > 0,
            np.concatenate([preds[n].prob.ravel() for n in val]),
        ).threshold
        dice = dice_score(ref, scores >= thr).value
        # Dice at the fixed threshold 0.5, by hand: 2 TP / (2 TP + FP + FN) over the subset
        hit = scores >= 0.5
        tp, fp, fn = (ref & hit).sum(), (~ref & hit).sum(), (ref & ~hit).sum()
        row = rows[run]
        assert row["dice_fixed"]["value"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
        assert row["auc"]["value"] == pytest.approx(auc, abs=1e-9)
        assert row["ap"]["value"] == pytest.approx(ap, abs=1e-9)
        assert row["dice"]["value"] == pytest.approx(dice, abs=1e-9)
        assert doc["dice_thresholds"][run]["threshold"] == pytest.approx(thr, abs=1e-12)
        for m in ("auc", "ap", "dice", "dice_fixed"):
            e = row[m]
            assert e["ci_low"] <= e["value"] <= e["ci_high"] and e["n_boot"] == N_BOOT
        assert row["auc"]["n"] == len(names) == 14 and row["ap"]["n"] == len(subset) * SHAPE[0]
    data = doc["data"]["test"]
    assert data["excluded"] == [{"exam": "T15", "reason": "no reads and no reference mask"}]
    assert data["reference_from_mask"] == 1 and data["positive"] == 8


def test_deltas_favour_the_better_run(full_report):
    doc, _ = full_report
    cmp = {(c["run_a"], c["run_b"], c["metric"]): c for c in doc["tables"]["table1"]["comparisons"]}
    assert len(cmp) == 4 * len(RUNS) * (len(RUNS) - 1) // 2
    rows = {r["run"]: r for r in doc["tables"]["table1"]["rows"]}
    for metric in ("dice", "dice_fixed", "ap", "auc"):
        c = cmp[("baseline", "ss", metric)]
        observed = rows["ss"][metric]["value"] - rows["baseline"][metric]["value"]
        assert c["delta"] == pytest.approx(observed)
        assert c["delta"] > 0 and c["z"] > 0 and 0 <= c["p"] < 1
        if metric != "auc":  # thousands of pixels; 14 exams are too few for exam AUC
            assert c["p"] < 0.05
        assert c["ci_low"] <= c["delta"] <= c["ci_high"]
        assert cmp[("ss", "log", metric)]["delta"] < 0  # later minus earlier: worse run second


def test_operating_point_reaches_target(full_report):
    doc, _ = full_report
    for row in doc["tables"]["operating_point"]["rows"]:
        assert row["sensitivity"]["value"] >= 0.92 and row["target_sensitivity"] == 0.92
        assert row["tp"] + row["fn"] == 8 and row["fp"] + row["tn"] == 6
        assert row["specificity"]["value"] == pytest.approx(row["tn"] / 6)


def test_contrast_and_ranker_tables(full_report):
    doc, _ = full_report
    t2 = doc["tables"]["table2"]
    assert "omitted" not in t2 and len(t2["studies"]) == 1
    study = t2["studies"][0]
    assert [r["contrast"] for r in study["rows"]] == ["none", "power", "log", "mixed"]
    assert study["reference_run"] == "baseline"
    assert study["rows"][1]["parameters"] == "gamma ~ U(0.85, 1.1)"
    assert {(c["run_a"], c["run_b"]) for c in study["comparisons"]} == {
        ("baseline", "power"), ("baseline", "log"), ("baseline", "mixed")}
    t3 = doc["tables"]["table3"]
    assert t3["pairs"] == [["no-ranker", "ss"]] and "note" not in t3
    ap = {c["metric"]: c for c in t3["comparisons"]}["ap"]
    assert ap["delta"] > 0  # ss (quality 0.9) beats no-ranker (0.6) on validation
    for row in t2["studies"][0]["rows"] + t3["rows"]:
        assert row["ap"]["n"] == len(VAL_EXAMS) * SHAPE[0] and row["auc"]["n"] == len(VAL_EXAMS)


def test_retest_table_and_agreement(study, full_report):
    root, truth = study
    doc, _ = full_report
    t4 = doc["tables"]["table4"]
    assert t4["repetitions"] == ["retest-1", "retest-2", "retest-3"] and t4["n_boot"] == 50
    assert t4["exam_ids"] == list(RETEST_EXAMS)
    by = {(e["repetition"], e["run"], e["metric"]): e for e in t4["estimates"]}
    with Workspace.open(root) as ws:
        rep2 = np.concatenate([ws.load_labels("retest-2", n).ravel() for n in RETEST_EXAMS]) > 0
        rep3 = [ws.load_labels("retest-3", n) for n in RETEST_EXAMS]
    preds = predictions(root, "ss", RETEST_EXAMS)
    ss = np.concatenate([preds[n].prob.ravel() for n in RETEST_EXAMS])
    assert by[("retest-2", "ss", "ap")]["value"] == pytest.approx(
        average_precision(rep2, ss).value, abs=1e-9)
    t = {(x["repetition"], x["run_a"], x["run_b"], x["metric"]): x for x in t4["tests"]}
    for rep in t4["repetitions"]:
        x = t[(rep, "baseline", "ss", "dice")]
        assert x["df"] == 49 and x["mean_diff"] > 0
    assert t[("all", "baseline", "ss", "ap")]["n"] == 150
    assert "overstate significance" in t4["note"] and "paper" in t4["note"]
    pairs = {(a["rep_a"], a["rep_b"]): a for a in t4["intra_rater"]}
    rep1 = np.concatenate([truth[n].ravel() for n in RETEST_EXAMS]) > 0
    rep3 = np.concatenate([m.ravel() for m in rep3]) > 0
    assert pairs[("retest-1", "retest-3")]["dice"]["value"] == pytest.approx(
        dice_score(rep1, rep3).value)
    # retest-2 is one pixel wider: more volume (voxel 5 x 0.5 x 0.5 mm = 0.00125 mL)
    extra = (rep2.sum() - rep1.sum()) * 0.00125 / len(RETEST_EXAMS)
    assert pairs[("retest-1", "retest-2")]["mean_diff_ml"] == pytest.approx(extra)


def test_subtype_table(study, full_report):
    root, truth = study
    doc, _ = full_report
    rows = {r["subtype"]: r for r in doc["tables"]["supplemental_table1"]["rows"]}
    assert list(rows) == ["SAH", "SDH", "IPH", "EDH", "IVH"]
    read = [(n, s) for n, s, reads, _ in TEST_EXAMS if reads]
    y = np.array([bool(s) for _, s in read])
    flags = {c: np.array([c in s for _, s in read]) for c in CODES}
    scores = [predictions(root, "ss", [n])[n].exam_score for n, _ in read]
    m = isolated_subtype_mask(y, flags, "IPH")
    assert rows["IPH"]["positive"] == 2 and rows["IPH"]["negative"] == 6  # T06 has IVH too
    assert rows["IPH"]["auc"]["ss"]["value"] == pytest.approx(
        exam_auc(y[m], np.array(scores)[m]).value, abs=1e-12)
    edh = rows["EDH"]["auc"]["baseline"]
    assert edh["value"] is None and "no positive" in edh["reason"]


def test_files_markdown_html_and_plots(full_report):
    doc, out = full_report
    for name in ("report.json", "report.md", "report.html", "roc.png", "pr.png"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    for heading in ("Table 1.", "Table 2.", "Table 3.", "Table 4.", "Supplemental Table 1.",
                    "Intra-rater agreement", "operating point"):  # fmt: skip
        assert heading in md, heading
    ss = {r["run"]: r for r in doc["tables"]["table1"]["rows"]}["ss"]["auc"]
    assert "| ss | " in md and f"{ss['value']:.3f} [{ss['ci_low']:.3f}, {ss['ci_high']:.3f}]" in md
    assert "| ss - baseline | Exam AUC |" in md and "| ss - baseline | DSC @ 0.5 |" in md
    assert "Subset DSC (p >= 0.5)" in md
    table4 = md[md.index("## Table 4."):md.index("## Supplemental")]
    assert "overstate significance" in table4
    assert "EDH: AUC undefined: no positive exams" in md  # NaN reasons listed under the table
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<style>" in page and "Table 4." in page
    import matplotlib.image as mpimg

    for png in ("roc.png", "pr.png"):
        raw = (out / png).read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(out / png)
        assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 500
        assert img[..., :3].std() > 0.05  # something is drawn


def test_missing_inputs_are_omitted_with_a_note(tmp_path):
    root = tmp_path / "ws"
    runs = {k: RUNS[k] for k in ("baseline", "ss")}
    build_workspace(root, validation=False, retest=False, runs=runs)
    doc = run_report(root, ["baseline", "ss"], tmp_path / "out", n_boot=20, seed=0)
    tables = doc["tables"]
    for key in ("table2", "table3", "table4"):
        assert "omitted" in tables[key], key
    dice = tables["table1"]["rows"][0]["dice"]
    assert dice["value"] is None and "no validation predictions" in dice["reason"]
    assert tables["table1"]["rows"][0]["auc"]["value"] is not None
    md = (tmp_path / "out" / "report.md").read_text()
    assert "*Omitted: no retest-<k> labelsets on predicted test exams.*" in md
    assert "Table 2 omitted:" in md and "Table 3 omitted:" in md
    assert "baseline DSC: no Dice threshold" in md
    assert doc["tables"]["supplemental_table1"]["rows"]


def test_undefined_metrics_are_nan_with_reasons(tmp_path):
    """A test role without positive exams: no AUC, no pixel AP, no ROC plot; no crash."""
    root = tmp_path / "ws"
    negatives = [e for e in TEST_EXAMS if not e[1]]
    runs = {k: RUNS[k] for k in ("baseline", "ss")}
    build_workspace(root, runs=runs, test_exams=negatives)
    doc = run_report(root, list(runs), tmp_path / "out", n_boot=20)
    row = doc["tables"]["table1"]["rows"][0]
    assert row["auc"]["value"] is None and "no positive exams" in row["auc"]["reason"]
    assert row["ap"]["value"] is None and "no positive" in row["ap"]["reason"]
    assert row["dice"]["value"] == 0.0  # false positives only: defined, and 0
    op = doc["tables"]["operating_point"]["rows"][0]
    assert op["sensitivity"]["value"] is None and op["reason"]
    assert doc["plots"]["roc"]["file"] is None and "no positive" in doc["plots"]["roc"]["omitted"]
    assert not (tmp_path / "out" / "roc.png").exists()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Exam-level ROC curves on the test role: omitted" in md
    strict_json(tmp_path / "out" / "report.json")


def test_two_runs_only_omit_contrast_and_ranker_tables(study, tmp_path):
    root, _ = study
    doc = run_report(root, ["baseline", "ss"], tmp_path / "out", n_boot=20)
    assert "differ only in contrast" in doc["tables"]["table2"]["omitted"]
    assert "no no-ranker run" in doc["tables"]["table3"]["omitted"]
    assert "omitted" not in doc["tables"]["table4"]


def test_bad_input_is_one_line(study, tmp_path):
    root, _ = study
    out = tmp_path / "out"
    cases = [
        (tmp_path / "nowhere", ["ss"], "not an ictview workspace"),
        (root, ["ss", "nope"], "no run named 'nope'"),
        (root, ["ss", "ss"], "given twice"),
    ]
    for ws, runs, msg in cases:
        with pytest.raises(IctviewError, match=msg) as err:
            run_report(ws, runs, out, n_boot=10)
        assert "\n" not in str(err.value)


def test_run_without_test_predictions(tmp_path):
    root = tmp_path / "ws"
    build_workspace(root, validation=False, retest=False, runs={"baseline": RUNS["baseline"]})
    with Workspace.open(root) as ws:
        ws.create_run("empty", "teacher", {})
    with pytest.raises(IctviewError, match="run 'empty' has no predictions on the test role"):
        run_report(root, ["baseline", "empty"], tmp_path / "out", n_boot=10)


def test_cli(study, tmp_path, capsys):
    root, _ = study
    out = tmp_path / "cli"
    assert report_main(["report", "--workspace", str(root), "--runs", "baseline", "ss",
                        "--out", str(out), "--n-boot", "20", "--seed", "3"]) == 0  # fmt: skip
    assert "report written to" in capsys.readouterr().out
    doc = strict_json(out / "report.json")
    assert doc["settings"]["n_boot"] == 20 and doc["settings"]["seed"] == 3
    assert report_main(["report", "--workspace", str(root), "--runs", "ghost",
                        "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith("report: error:") and "ghost" in err and "\n" not in err


def test_same_seed_same_report(study, full_report, tmp_path):
    root, _ = study
    doc, _ = full_report
    again = run_report(root, list(RUNS), tmp_path / "again", n_boot=N_BOOT, seed=7)
    strip = lambda d: {k: v for k, v in d.items() if k not in ("created_at", "files")}  # noqa: E731
    assert strip(again) == strip(doc)
    assert not math.isnan(again["tables"]["table1"]["rows"][0]["auc"]["ci_low"])


def test_run_traits_from_training_configs():
    """Contrast / ranker read from configs shaped like `ictview-train`'s (Config.to_dict())."""
    def cfg(contrast="mixed", enabled=True, top=10.0):
        return {"augment": {"contrast": contrast, "gamma_range": [0.85, 1.1],
                            "log_gain_range": [0.7, 1.1], "crop": 240},
                "ranker": {"top_percent": top, "k_hi": 0.7, "k_lo": 0.3, "enabled": enabled},
                "train": {"device": "cpu", "seed": 0},
                "study": {"contrast_variants": ["none", "power", "log"], "no_ranker": True}}

    def info(name, kind, config):
        return RunInfo.from_row({"name": name, "kind": kind, "config": json.dumps(config)})

    base = info("baseline", "teacher", cfg())
    power = info("baseline-contrast-power", "teacher", cfg("power"))
    ss, no_ranker = info("ss", "student", cfg()), info("no-ranker", "no-ranker", cfg())
    assert (base.contrast, power.contrast) == ("mixed", "power")
    assert base.contrast_signature == power.contrast_signature
    assert base.contrast_signature != info("x", "teacher", cfg(top=20)).contrast_signature
    assert power.contrast_parameters() == "gamma ~ U(0.85, 1.1)"
    assert (ss.ranker, no_ranker.ranker, base.ranker) == (True, False, None)
    assert ss.ranker_signature == no_ranker.ranker_signature
    assert info("a", "student", cfg(enabled=False)).ranker is False
    assert info("b", "student", cfg(top=100)).ranker is False
    assert info("c", "pixel-oracle", cfg(enabled=False)).ranker is None
    assert info("d", "teacher", {}).contrast is None


def study_config(contrast="mixed", enabled=True):
    """A run config shaped like `ictview-train`'s (Config.to_dict()), trimmed."""
    return {"augment": {"contrast": contrast, "gamma_range": [0.85, 1.1],
                        "log_gain_range": [0.7, 1.1], "crop": 64},
            "ranker": {"top_percent": 10.0, "k_hi": 0.5, "k_lo": 0.2, "enabled": enabled},
            "train": {"device": "cpu", "seed": 0, "epochs": 12},
            "study": {"contrast_variants": ["none", "power", "log"], "no_ranker": True,
                      "prefix": ""}}  # fmt: skip


# the runs `ictview-train study` makes (training/study.py), in the order it makes them, with a
# pseudo-label run (predictions, but not a model) and the study's own run (no predictions)
STUDY_RUNS = {
    "baseline": ("teacher", study_config(), 0.5),
    "baseline-contrast-none": ("teacher", study_config("none"), 0.35),
    "baseline-contrast-power": ("teacher", study_config("power"), 0.4),
    "baseline-contrast-log": ("teacher", study_config("log"), 0.3),
    "baseline-pl": ("pseudolabel", {"model_run": "baseline", "role": "unlabeled"}, 0.5),
    "ss": ("student", study_config(), 0.9),
    "no-ranker": ("no-ranker", study_config(), 0.6),
    "image-oracle": ("image-oracle", study_config(), 0.7),
    "pixel-oracle": ("pixel-oracle", study_config(), 0.95),
}  # fmt: skip
STUDY_PARENTS = {r: "baseline" for r in ("baseline-pl", "ss", "no-ranker", "image-oracle",
                                         "pixel-oracle")}  # fmt: skip
STUDY_MODELS = ["baseline", "ss", "no-ranker", "image-oracle", "pixel-oracle",
                "baseline-contrast-none", "baseline-contrast-power", "baseline-contrast-log"]


@pytest.fixture(scope="module")
def study_workspace(tmp_path_factory):
    """Every run of a study, plus runs that are not (or not fully) evaluated."""
    root = tmp_path_factory.mktemp("study") / "ws"
    build_workspace(root, runs=STUDY_RUNS, parents=STUDY_PARENTS)
    with Workspace.open(root) as ws:
        ws.create_run("study", "study", study_config())
        ws.create_run("unevaluated", "student", study_config(), "baseline")
        ws.create_run("half", "teacher", study_config())
        for i, name in enumerate([n for n, *_ in TEST_EXAMS][:5]):
            truth = ws.load_labels("reference", name)
            ws.write_prediction("half", name, predict(0.5, truth if truth is not None else
                                                      np.zeros(SHAPE, np.uint8), 5000 + i))
    return root


def test_report_without_runs_takes_every_model_run(study_workspace, tmp_path):
    doc = run_report(study_workspace, None, tmp_path / "out", n_boot=N_BOOT, seed=1)
    assert [r["name"] for r in doc["runs"]] == STUDY_MODELS  # baseline first, variants last
    assert doc["settings"]["runs_from"].startswith("every model run")
    notes = " ".join(doc["notes"])
    assert "run 'unevaluated' (student) left out: no test predictions" in notes
    assert "run 'half' (teacher) left out: predicted 5 of 15 test exams" in notes
    assert "baseline-pl" not in notes and "'study'" not in notes
    tables = doc["tables"]
    missing = {k: t["omitted"] for k, t in tables.items() if "omitted" in t}
    assert not missing
    assert [r["run"] for r in tables["table1"]["rows"]] == STUDY_MODELS
    pairs = {(c["run_a"], c["run_b"]) for c in tables["table1"]["comparisons"]}
    assert ("baseline", "ss") in pairs and len(pairs) == 28
    (t2,) = tables["table2"]["studies"]
    assert t2["reference_run"] == "baseline-contrast-none"
    assert [r["contrast"] for r in t2["rows"]] == ["none", "power", "log", "mixed"]
    assert tables["table3"]["pairs"] == [["no-ranker", "ss"]] and "note" not in tables["table3"]
    for c in tables["table1"]["comparisons"] + tables["table3"]["comparisons"]:
        assert c["p"] is not None and c["ci_low"] <= c["delta"] <= c["ci_high"]
    t4 = tables["table4"]
    assert t4["runs"] == STUDY_MODELS
    assert {(x["run_a"], x["run_b"]) for x in t4["tests"]} == {("baseline", r)
                                                                for r in STUDY_MODELS[1:]}
    assert set(tables["supplemental_table1"]["rows"][0]["auc"]) == set(STUDY_MODELS)
    md = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Table 1.", "## Table 2.", "## Table 3.", "## Table 4.",
                    "## Supplemental Table 1.", "operating point"):  # fmt: skip
        assert heading in md, heading
    # the same runs given explicitly: the same numbers
    given = run_report(study_workspace, STUDY_MODELS, tmp_path / "given", n_boot=N_BOOT, seed=1)
    assert given["tables"] == doc["tables"]


def test_report_without_runs_needs_an_evaluated_model(tmp_path):
    root = tmp_path / "ws"
    build_workspace(root, validation=False, retest=False,
                    runs={"baseline-pl": STUDY_RUNS["baseline-pl"]})
    with Workspace.open(root) as ws:
        ws.create_run("baseline", "teacher", study_config())
    with pytest.raises(IctviewError, match="no model run has predictions on every test exam") as e:
        run_report(root, None, tmp_path / "out", n_boot=10)
    assert "run 'baseline' (teacher) left out: no test predictions" in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_without_runs(study_workspace, tmp_path, capsys):
    out = tmp_path / "cli"
    assert report_main(["report", "--workspace", str(study_workspace), "--out", str(out),
                        "--n-boot", "20"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "report written to" in printed and "note: run 'half' (teacher) left out" in printed
    doc = strict_json(out / "report.json")
    assert [r["name"] for r in doc["runs"]] == STUDY_MODELS
