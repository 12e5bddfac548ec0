"""The analysis on the synthetic test site's three simulated repetitions: Table 4 and
intra-rater agreement, checked against independent computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from ictview.study.retest_analysis import analyze, render_markdown
from ictview.study.retest_cli import main as retest_main
from ictview.study.retest_plan import ExamSelection, load_study, plan_study
from ictview.study.retest_session import RetestSession

from ._retest_helpers import RATER, hemorrhage, write_run
from ._retest_helpers import clock, ws  # noqa: F401  (fixtures)

REPS = ["retest-1", "retest-2", "retest-3"]


@pytest.fixture
def runs(ws):
    exams = ws.labelset_exams("retest-1")
    val = [e.name for e in ws.exams(role="validation")]
    write_run(ws, "baseline", exams + val, 0.35, seed=1)
    write_run(ws, "ss", exams + val, 0.9, seed=2)
    return exams


def test_table4_on_the_three_simulated_repetitions(ws, runs):
    doc = analyze(ws, labelsets=REPS, runs=["baseline", "ss"])
    assert doc["exams"] == runs and len(runs) == 3
    t4 = doc["table4"]
    assert t4["repetitions"] == REPS and t4["runs"] == ["baseline", "ss"]
    assert t4["n_boot"] == 50 and t4["images"] == sum(ws.exam(e).n_slices for e in runs)
    est = {(e["repetition"], e["run"], e["metric"]): e for e in t4["estimates"]}
    assert len(est) == 3 * 2 * 2
    for rep in REPS:
        # the point estimate is pixel AP over all images against that repetition
        truth = np.concatenate([hemorrhage(ws.load_labels(rep, e)).ravel() for e in runs])
        for run in ("baseline", "ss"):
            prob = np.concatenate([ws.read_prediction(run, e).prob.ravel() for e in runs])
            ap = average_precision_score(truth, prob.astype(np.float64))
            assert est[(rep, run, "ap")]["value"] == pytest.approx(ap, abs=1e-9)
            e = est[(rep, run, "dice")]
            assert e["ci_low"] <= e["value"] <= e["ci_high"]
        # the better run wins on every repetition, AP and Dice
        assert est[(rep, "ss", "ap")]["value"] > est[(rep, "baseline", "ap")]["value"]
        assert est[(rep, "ss", "dice")]["value"] > est[(rep, "baseline", "dice")]["value"]
    tests = {(t["repetition"], t["metric"]): t for t in t4["tests"]}
    assert set(tests) == {(r, m) for r in REPS + ["all"] for m in ("ap", "dice")}
    for t in tests.values():
        assert (t["run_a"], t["run_b"]) == ("baseline", "ss") and t["mean_diff"] > 0
        assert t["p"] < 0.001
    assert all(v["chosen_on"] == "validation" for v in doc["dice_thresholds"].values())
    md = render_markdown(doc)
    assert "Table 4. Test-retest" in md and "retest-2 Pixel AP" in md
    assert "paired t-tests" in md and "Intra-rater agreement" in md


def test_intra_rater_agreement_matches_a_direct_computation(ws, runs):
    doc = analyze(ws, labelsets=REPS)
    assert "omitted" in doc["table4"]
    pairs = {(p["rep_a"], p["rep_b"]): p for p in doc["agreement"]["pairs"]}
    assert set(pairs) == {("retest-1", "retest-2"), ("retest-1", "retest-3"),
                          ("retest-2", "retest-3")}
    masks = {r: [hemorrhage(ws.load_labels(r, e)) for e in runs] for r in REPS}
    ml = [ws.exam(e).voxel_ml for e in runs]
    for (a, b), p in pairs.items():
        inter = sum(int((x & y).sum()) for x, y in zip(masks[a], masks[b]))
        total = sum(int(x.sum() + y.sum()) for x, y in zip(masks[a], masks[b]))
        assert p["dice"]["value"] == pytest.approx(2 * inter / total)
        diffs = [(y.sum() - x.sum()) * v for x, y, v in zip(masks[a], masks[b], ml)]
        assert p["mean_diff_ml"] == pytest.approx(float(np.mean(diffs)))
    for j, row in enumerate(doc["agreement"]["per_exam"]):
        for r in REPS:
            assert row["volume_ml"][r] == pytest.approx(masks[r][j].sum() * ml[j])
        x, y = masks["retest-1"][j], masks["retest-3"][j]
        d = row["dice"]["retest-1 vs retest-3"]
        if x.any() or y.any():
            assert d == pytest.approx(2 * (x & y).sum() / (x.sum() + y.sum()))
        else:
            assert d is None


def test_a_study_analysis_marks_the_overridden_session(ws, runs, clock):
    """A study whose rater 'segments' by saving the simulated repetitions; repetition 2
    starts early with an override, repetition 3 only half done."""
    plan_study(ws, "s", RATER, ExamSelection(exams=tuple(runs)), seed=5, clock=clock)
    for k in (1, 2, 3):
        reason = "scanner room closes" if k == 2 else None
        s = RetestSession.start(ws, "s", RATER, clock=clock, override_reason=reason)
        for i, exam in enumerate(s.order):
            if k == 3 and i == 2:
                break  # repetition 3 still in progress: its last exam is not done
            ws.save_labels(s.labelset, exam, ws.load_labels(REPS[k - 1], exam), RATER, 30.0)
            s.advance()
        clock.advance(days=3 if k == 1 else 8)
    doc = analyze(ws, study="s", runs=["baseline", "ss"])
    assert doc["overridden"] == ["retest-s-2"]
    assert [s["status"] for s in doc["sessions"]] == ["ended", "ended", "in progress"]
    order3 = load_study(ws, "s").session(3).exam_order
    # each repetition's washout as the audit log measured it, next to the planned one
    washout = {s["repetition"]: s.get("washout_audit_days") for s in doc["sessions"]}
    assert washout == {1: None, 2: pytest.approx(3.0), 3: pytest.approx(8.0)}
    assert [s.get("washout_short") for s in doc["sessions"]] == [None, True, False]
    assert doc["excluded"] == [{"exam": order3[2], "reason": "not segmented in retest-s-3"}]
    assert len(doc["exams"]) == 2
    assert doc["table4"]["repetitions"] == ["retest-s-1", "retest-s-2", "retest-s-3"]
    md = render_markdown(doc)
    assert "retest-s-2 † Pixel AP" in md
    assert "† by lee: scanner room closes" in md  # the planner's login administers
    assert "retest-s-1 Pixel AP" in md and "retest-s-1 † " not in md
    assert "| 3.00 d (planned 7 d) |" in md and "| 8.00 d (planned 7 d) |" in md


def test_cli_analyze_json_and_markdown(ws, runs, tmp_path, capsys):
    root = str(ws.root)
    out = tmp_path / "t4.md"
    assert retest_main(["retest", "analyze", root, "--labelsets", *REPS, "--runs", "baseline",
                        "ss", "--n-boot", "20", "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["table4"]["n_boot"] == 20 and "Table 4" in out.read_text()
    assert all(math.isfinite(e["value"]) for e in doc["table4"]["estimates"])
    assert retest_main(["retest", "analyze", root, "--labelsets", *REPS, "--runs", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ictview retest: error:") and "run 'nope' has no predictions" in err
    assert "\n" not in err
