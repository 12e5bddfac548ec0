"""Every reader of labels and predictions goes through the read guard (issue 11).

Two halves:
1. a scan of the source (ictview/ and training/): the low-level readers (HDF5 label
   and prediction reads, the catalog's label tables, paths into labels/ and
   predictions/) are used only inside the store, whose public readers ask the guard
   first; anywhere else a label or prediction path may only be named in a message,
   tested for existence, or written. A new reader that bypasses the guard fails here.
2. each public reader, called by a blinded login, is refused (or leaves the hidden
   items out), and called by an administrator, is not: the guard is really asked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from ictview.store.arrays import Prediction
from ictview.store.read_guard import BlindingError
from ictview.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "ictview").rglob("*.py"), *(REPO / "training").rglob("*.py")])

# the store: its public readers call the guard before these (checked in half 2)
STORE = {"ictview/store/workspace.py", "ictview/store/arrays.py", "ictview/store/read_guard.py"}
# byte-level integrity (`ictview check`, its benchmark): files are hashed and journals
# scanned for damage; no label or prediction value is decoded or shown
INTEGRITY = {"ictview/store/check.py", "ictview/store/bench_checksum.py",
             # the storage format's benchmark: synthetic arrays in its own temporary folder
             "ictview/store/bench_storage.py"}
# `ictview bench import`'s plain pydicom + h5py reference loop: HDF5 files of its own, in a
# temporary folder, never a workspace's
H5PY_OK = {"ictview/io/bench_import.py"}
# arrays.* (Workspace has guarded ones: load_labels, label_slices, read_prediction,
# prediction_layout)
LOW_LEVEL_READS = {"read_labels", "read_prediction", "read_label_slice", "read_prob_slice",
                   "read_target_slice", "read_prediction_layout"}
LABEL_TABLES = ("label_files", "image_labels", "exam_reads", "label_effort")
# SQL on the label tables outside the store, each with why it reveals no label
SQL_ALLOWED = {
    # seconds on task of the labelset being opened, after the guard allowed it
    ("ictview/store/label_journal.py", "label_files"),
    # the session's own labelset: is the current exam saved, seconds on task
    ("ictview/study/retest_session.py", "label_files"),
    # who saved an exam being exported, after the export's guard check
    ("ictview/io/export.py", "label_files"),
}
# uses of a label/prediction path that read nothing: f-string messages, .exists(),
# the journal's file name, writes
PATH_USES_OK = {"exists", "with_suffix", "parent", "unlink", "mkdir"}
WRITERS = {"write_labels", "write_prediction", "write_nifti"}


def _rel(p: Path, root: Path = REPO) -> str:
    return p.relative_to(root).as_posix()


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _path_use_reads_nothing(node: ast.Call, parents: dict) -> bool:
    up = parents.get(node)
    if isinstance(up, ast.FormattedValue):  # in an error message
        return True
    if isinstance(up, ast.Attribute) and up.attr in PATH_USES_OK:
        return True
    if isinstance(up, ast.Call) and _call_name(up) in WRITERS:
        return True
    return False


def violations(sources: list[Path] = SOURCES, root: Path = REPO) -> list[str]:
    out = []
    for path in sources:
        rel = _rel(path, root)
        if rel in STORE or rel in INTEGRITY:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = _parents(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                f = node.func
                if name in LOW_LEVEL_READS and not (
                        isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                        and f.value.id == "ws"):  # ws.read_prediction is the guarded one
                    if not (isinstance(f, ast.Attribute) and _is_workspace_call(f)):
                        out.append(f"{rel}:{node.lineno}: {name}() bypasses the read guard")
                if name == "File" and isinstance(f, ast.Attribute) and getattr(
                        f.value, "id", "") == "h5py" and rel not in H5PY_OK:
                    out.append(f"{rel}:{node.lineno}: h5py.File outside the store")
                if name in ("label_path", "prediction_path") and not _path_use_reads_nothing(
                        node, parents):
                    out.append(f"{rel}:{node.lineno}: {name}() used to read a file")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                for table in LABEL_TABLES:
                    if (f"FROM {table}" in text or f"JOIN {table}" in text) and (
                            rel, table) not in SQL_ALLOWED:
                        out.append(f"{rel}:{node.lineno}: SQL on {table} outside the store")
                if text in ("labels", "predictions") and isinstance(
                        parents.get(node), ast.BinOp) and isinstance(parents[node].op, ast.Div):
                    out.append(f"{rel}:{node.lineno}: builds a path into {text}/ by hand")
    return out


def _is_workspace_call(f: ast.Attribute) -> bool:
    """`self.ws.read_prediction`, `w.read_prediction`, `s.ws.load_labels`: a Workspace
    method (guarded), not `arrays.read_prediction`."""
    return not (isinstance(f.value, ast.Name) and f.value.id == "arrays")


# paths into labels/ / predictions/ built by hand that only list or test existence
HAND_PATHS_OK = {
    "ictview/store/label_journal.py",  # `.exists()` of the label file next to the journal
    "ictview/study/run_review.py",  # which runs have any prediction file (names only)
    "ictview/study/retest_analysis.py",  # run folder names for an error message
}


def test_no_reader_bypasses_the_read_guard():
    found = [v for v in violations() if not any(v.startswith(p + ":") and "by hand" in v
                                                  for p in HAND_PATHS_OK)]
    assert found == []


def test_the_scan_finds_a_bypass(tmp_path):
    """The scan is not vacuous: a reader written the forbidden ways is reported."""
    bad = tmp_path / "ictview" / "probe.py"
    bad.parent.mkdir()
    bad.write_text(
        "from ictview.store import arrays\n"
        "def leak(ws, ls, e):\n"
        "    a = arrays.read_labels(ws.label_path(ls, e))\n"
        "    b = ws.con.execute('SELECT voxels_labeled FROM label_files').fetchall()\n"
        "    c = open(ws.root / 'predictions' / 'run' / e).read()\n"
        "    return a, b, c\n",
        encoding="utf-8",
    )
    found = violations([bad], tmp_path)
    assert len(found) == 4, found
    assert any("read_labels() bypasses" in v for v in found)
    assert any("label_path() used to read" in v for v in found)
    assert any("SQL on label_files" in v for v in found)
    assert any("into predictions/ by hand" in v for v in found)


# ---- half 2: each public reader asks the guard ---------------------------------------------


@pytest.fixture
def blinded(tiny_workspace_copy):
    """A study on two test exams (administrator 'kim', rater login unknown: every other
    login is possibly the rater), with reference labels, reads and a prediction."""
    from ictview.study.retest_plan import ExamSelection, plan_study

    with Workspace.open(tiny_workspace_copy, login="kim") as ws:
        exams = [e.name for e in ws.exams(role="test")][:2]
        plan_study(ws, "s", "dr-lee", ExamSelection(exams=tuple(exams)), seed=1, admins=("kim",))
        for e in exams:
            x = ws.exam(e)
            prob = np.full((x.n_slices, x.rows, x.cols), 0.5, np.float16)
            ws.create_run("r", "teacher", {})
            ws.write_prediction("r", e, Prediction(prob, prob.max((1, 2)).astype(np.float32),
                                                   0.5))
            ws.save_labels("reference", e, np.ones(prob.shape, np.uint8), "import")
            ws.start_effort("reference", e, "r", 0.5, 10, 1, "kim")
    return tiny_workspace_copy, exams


READERS = {
    "load_labels": lambda ws, e: ws.load_labels("reference", e),
    "load_labels(repetition)": lambda ws, e: ws.load_labels("retest-s-1", e),
    "read_prediction": lambda ws, e: ws.read_prediction("r", e),
    "read_prediction(scores)": lambda ws, e: ws.read_prediction("r", e, pixels=False),
    "label_slices": lambda ws, e: ws.label_slices("reference", e).read(0),
    "prediction_layout": lambda ws, e: ws.prediction_layout("r", e).file.read(0),
    "exam_reads": lambda ws, e: ws.exam_reads(e),
    "exam_label": lambda ws, e: ws.exam_label(e),
    "image_labels": lambda ws, e: ws.image_labels(e),
    "AnnotationModel.open(read_only)": lambda ws, e: _model(ws, e, read_only=True),
    "AnnotationModel.open(edit)": lambda ws, e: _model(ws, e, start_from="reference"),
    "export": lambda ws, e: _export(ws, e),
    "run_review.reference_mask": lambda ws, e: _run_review(ws, e),
    "run_review.load_probability": lambda ws, e: _run_review(ws, e, "load_probability"),
    "model_start.propose": lambda ws, e: __import__(
        "ictview.study.model_start", fromlist=["x"]).propose(ws, "r", e),
}
LISTINGS = {
    "labelset_exams": lambda ws, exams: set(exams) & set(ws.labelset_exams("reference")),
    "predicted_exams": lambda ws, exams: set(exams) & set(ws.predicted_exams("r")),
    "label_status": lambda ws, exams: set(exams) & set(ws.label_status("reference")),
    "effort": lambda ws, exams: set(exams) & {r["exam"] for r in ws.effort()},
    "labelsets": lambda ws, exams: {ls["name"] for ls in ws.labelsets()} & {"retest-s-1"},
    "run_review.exam_rows": lambda ws, exams: set(exams) & {
        r.exam for r in __import__("ictview.study.run_review", fromlist=["x"]).exam_rows(
            ws, ["r"])},
}


def _model(ws, exam, **kw):
    from ictview.core.annotation import AnnotationModel

    m = AnnotationModel.open(ws, exam, "reference" if kw.get("read_only") else "rater-x", "x",
                             **kw)
    m.close()
    return m


def _export(ws, exam):
    import tempfile

    from ictview.io.export import export_labelset

    with tempfile.TemporaryDirectory() as d:
        return export_labelset(ws, "reference", "nifti", Path(d), [exam])


def _run_review(ws, exam, what="reference_mask"):
    from ictview.study import run_review

    if what == "load_probability":
        return run_review.load_probability(ws, "r", exam)
    return run_review.reference_mask(ws, exam)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_each_reader_is_refused_to_a_blinded_login_and_not_to_the_administrator(
        blinded, reader):
    root, exams = blinded
    with Workspace.open(root, login="someone") as ws:
        with pytest.raises(BlindingError):
            READERS[reader](ws, exams[0])
    with Workspace.open(root, login="kim") as ws:
        READERS[reader](ws, exams[0])  # the administrator reads it


@pytest.mark.parametrize("listing", sorted(LISTINGS))
def test_each_listing_leaves_hidden_items_out(blinded, listing):
    root, exams = blinded
    with Workspace.open(root, login="someone") as ws:
        assert LISTINGS[listing](ws, exams) == set()
    with Workspace.open(root, login="kim") as ws:
        assert LISTINGS[listing](ws, exams)


def test_the_active_learning_queue_never_serves_a_study_exam(blinded):
    """`ictview next` (ictview/study/active_learning.py) reads predictions through the
    guard and serves no exam of an unfinished study, to the administrator either."""
    from ictview.study.active_learning import next_exams

    root, exams = blinded
    for login in ("someone", "kim"):
        with Workspace.open(root, login=login) as ws:
            for strategy in ("uncertainty", "random"):
                q = next_exams(ws, "r", strategy, roles=("test",), n=100)
                assert not set(exams) & {s.exam for s in q.served}
                assert q.excluded["in_unfinished_study"] == len(exams)
