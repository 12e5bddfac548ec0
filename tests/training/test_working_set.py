"""The training data path holds a bounded working set (issue 13): slices read one at a time
through an LRU by bytes, the ranker from slice scores alone, pixels read only for the kept
slices, and compact pseudo-labels giving the student exactly what float16 maps give it."""

from __future__ import annotations

import shutil
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import torch

from ictview.core.brain_mask import strip_skull
from ictview.core.geometry import Geometry
from ictview.store import arrays
from ictview.store.arrays import Prediction
from ictview.store.workspace import NewExam, Workspace
from training.checkpoints import checkpoint_path
from training.config import load_config
from training.data.batches import BatchMaker
from training.data.exam_cache import ExamCache
from training.data.sources import labeled_source, pseudo_source
from training.pseudolabel import pseudolabel
from training.ranker import compact_prediction, pseudo_labels
from training.trainer import StudentTrainer, Trainer
from training.windows import DEFAULT_WINDOWS

MICRO = ["train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=4", "augment.crop=32",
         "train.val_every_epochs=0", "train.log_every_steps=1"]


def test_a_slice_masked_alone_equals_that_slice_of_the_exam_masked_whole(tiny_workspace):
    """Every site (with skull and skull-stripped): the per-slice path changes no voxel."""
    cfg = load_config("tiny")
    with Workspace.open(tiny_workspace) as ws:
        cache = ExamCache(ws, cfg.preprocess)
        sites = set()
        for e in ws.exams():
            whole, _ = strip_skull(ws.read_volume(e.name).hu, cfg.preprocess)
            assert np.array_equal(np.asarray(cache.hu_view(e.name)), whole), e.name
            sites.add((e.site, cache.skull(e.name)))
    assert {s for s, _ in sites} == {"atlantis", "kaggle", "validation", "cq500"}
    assert {skull for _, skull in sites} == {True, False}, "both decisions exercised"


def test_the_cache_keeps_its_byte_budget_and_returns_the_same_slices(tiny_workspace):
    cfg = load_config("tiny")
    with Workspace.open(tiny_workspace) as ws:
        names = [e.name for e in ws.exams(role="labeled")]
        slice_bytes = 2 * ws.exam(names[0]).rows * ws.exam(names[0]).cols
        small = ExamCache(ws, cfg.preprocess, max_bytes=3 * slice_bytes)
        big = ExamCache(ws, cfg.preprocess, max_bytes=1 << 30)
        for n in names:
            for k in range(ws.exam(n).n_slices):
                assert np.array_equal(small.hu_slice(n, k), big.hu_slice(n, k))
                assert small.nbytes <= 3 * slice_bytes
        assert len(small._lru) == 3 and big.nbytes == sum(
            2 * ws.exam(n).n_slices * ws.exam(n).rows * ws.exam(n).cols for n in names)


# ---- many small exams --------------------------------------------------------------------

SHAPE = (4, 64, 64)


def _head(rng) -> np.ndarray:
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    r = np.hypot(yy - 32, xx - 32) / 30
    hu = np.where(r < 0.85, 35, -1024) + np.where((r >= 0.85) & (r < 1.0), 1200, 0)
    return (hu[None] + rng.integers(-5, 6, SHAPE)).astype(np.int16)


def _many_exams(root, n: int) -> None:
    """n labeled exams (reference labels) and n unlabeled ones with a teacher prediction in
    both pseudolabel stores, written through the real workspace."""
    g = Geometry((0.0, 0.0, 0.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.5, 0.5))
    with Workspace.create(root) as ws:
        ws.ensure_site("lab", "labeled")
        ws.ensure_site("unl", "unlabeled")
        ws.create_run("pl16", "pseudolabel", {})
        ws.create_run("plc", "pseudolabel", {})
        for i in range(2 * n):
            rng = np.random.default_rng(i)
            site, name = ("lab", f"L{i:04d}") if i < n else ("unl", f"U{i:04d}")
            mask = np.zeros(SHAPE, np.uint8)
            mask[1, 20 + i % 20:28 + i % 20, 30:36] = 1
            ws.add_exam(NewExam(
                name=name, site=site, hu=_head(rng), geometry=g,
                sop_uids=[f"1.{i}.{k}" for k in range(SHAPE[0])],
                positions=[5.0 * k for k in range(SHAPE[0])], patient_id=name,
                study_uid=f"1.{i}", series_uid=f"1.{i}.1",
                masks={"reference": mask} if site == "lab" else None))
            if site == "unl":
                prob = (0.15 * rng.random(SHAPE)).astype(np.float16)  # below k_lo ...
                if i % 3 == 0:  # ... but a lesion, with an ignored rim, on every third exam
                    prob[2, 29:35, 29:35] = 0.3
                    prob[2, 30:34, 30:34] = 0.9
                pred = Prediction(prob, prob.max((1, 2)).astype(np.float32), 0.5)
                ws.write_prediction("pl16", name, pred)
                r = load_config("tiny").ranker  # the K the tests' students ask for
                ws.write_prediction("plc", name, compact_prediction(pred, r.k_hi, r.k_lo))


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    roots = {}
    for n in (50, 200):
        roots[n] = tmp_path_factory.mktemp(f"many{n}") / "ws"
        _many_exams(roots[n], n)
    return roots


def _cfg():
    cfg = load_config("tiny")
    cfg.augment = replace(cfg.augment, crop=32)
    return cfg


def _peak_bytes(root, max_bytes: int, draws: int = 400) -> int:
    """tracemalloc peak of building the labeled and pseudo sources over every exam and drawing
    ``draws`` samples from them (the sampler's reads: HU and label slices)."""
    cfg = _cfg()
    with Workspace.open(root) as ws:
        tracemalloc.start()
        try:
            cache = ExamCache(ws, cfg.preprocess, max_bytes=max_bytes)
            srcs = [labeled_source(ws, cache, cfg), pseudo_source(ws, cache, cfg, "pl16")]
            maker = BatchMaker(srcs, [0.6, 0.4], 10, 0, DEFAULT_WINDOWS)
            for step in range(draws // 10):
                for s in maker.raw(step).samples:
                    src = srcs[s.source]
                    src.hu[s.exam][s.slice], src.labels[s.exam][s.slice]
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_number_of_exams(many):
    """Peak = the cache budget + bookkeeping: 4x the exams (100 -> 400, half of them with a
    teacher prediction) adds a name, per-slice flags and a file handle per exam (~2.5 kB),
    against 80 kB of pixels (HU + labels + probabilities) per exam that the former path held."""
    budget = 2 << 20  # 256 masked 64 x 64 slices: less than either workspace's data
    _peak_bytes(many[50], budget, draws=20)  # one-time allocations (lazy imports) first
    small, large = _peak_bytes(many[50], budget), _peak_bytes(many[200], budget)
    assert large < 1.6 * small, (small, large)
    per_exam = (large - small) / 300  # 150 more labeled and 150 more unlabeled exams
    assert per_exam < 4096, f"{per_exam:.0f} B per exam (an exam's HU alone: 32 kB)"
    # the bound can fail: without the byte budget the same kind of draws keep what they read
    unbounded = _peak_bytes(many[200], 1 << 34, draws=3000)
    assert unbounded > 2 * large, (large, unbounded)


def test_the_ranker_reads_pixels_of_the_kept_slices_only(many, monkeypatch):
    cfg = _cfg()
    read = []
    original = arrays._region

    def spy(path, name, dtype, k, rows=None, cols=None):  # counts, then reads as always
        if name in ("prob", "targets"):
            read.append((path.stem, name, k))
        return original(path, name, dtype, k, rows, cols)

    monkeypatch.setattr(arrays, "_region", spy)
    with Workspace.open(many[50]) as ws:
        cache = ExamCache(ws, cfg.preprocess)
        src = pseudo_source(ws, cache, cfg, "pl16")
        kept = src.info["ranker"]["n_positive"]
        slices = len(src)
        assert 0 < kept < slices / 5
        assert len(read) == kept, "one pixel read per ranked-positive slice, none for the rest"
        read.clear()
        compact = pseudo_source(ws, ExamCache(ws, cfg.preprocess), cfg, "plc")
        assert 0 < len(read) <= kept, "compact: only kept slices that have a stored target"
        assert compact.positive.tolist() == src.positive.tolist()


def test_compact_pseudo_labels_equal_the_float16_path_slice_for_slice(many):
    cfg = _cfg()
    r = cfg.ranker
    with Workspace.open(many[50]) as ws:
        names = [e.name for e in ws.exams(role="unlabeled")]
        preds = [ws.read_prediction("pl16", n) for n in names]
        expected, _, _ = pseudo_labels([p.prob for p in preds], [p.slice_scores for p in preds],
                                       r.top_percent, r.k_hi, r.k_lo)
        for run in ("pl16", "plc"):
            src = pseudo_source(ws, ExamCache(ws, cfg.preprocess), cfg, run)
            assert all(np.array_equal(np.asarray(v), e) for v, e in zip(src.labels, expected))
        a = pseudo_source(ws, ExamCache(ws, cfg.preprocess), cfg, "pl16", ranker=False)
        b = pseudo_source(ws, ExamCache(ws, cfg.preprocess), cfg, "plc", ranker=False)
        assert all(np.array_equal(np.asarray(x), np.asarray(y))
                   for x, y in zip(a.labels, b.labels))
        assert a.digests == b.digests, "the data fingerprint does not depend on the store"
        c = compact_prediction(preds[0], r.k_hi, r.k_lo)
        assert c.targets.targets.nbytes < preds[0].prob.nbytes / 4


def test_compact_targets_at_other_k_are_refused_in_one_line(many):
    cfg = _cfg()
    cfg.ranker = replace(cfg.ranker, k_hi=0.8)
    from ictview.errors import IctviewError

    with Workspace.open(many[50]) as ws:
        with pytest.raises(IctviewError, match=r"plc/U0050.h5: pseudolabel run 'plc' stores "
                                               r"targets at k_hi 0.5 / k_lo 0.2, the config "
                                               r"asks 0.8 / 0.2"):
            pseudo_source(ws, ExamCache(ws, cfg.preprocess), cfg, "plc")
        assert pseudo_source(ws, ExamCache(ws, cfg.preprocess), cfg, "pl16") is not None


def test_a_student_from_compact_pseudo_labels_is_bit_identical(tiny_workspace, tmp_path):
    """A real teacher pseudo-labels the unlabeled role into both stores (float16 maps, compact
    targets); students seeded alike train on each and end with the same weights on CPU."""
    root = tmp_path / "ws"
    shutil.copytree(tiny_workspace, root)
    cfg = load_config("tiny", MICRO)
    assert Trainer(root, "t", cfg, quiet=True).fit().status == "finished"
    pseudolabel(root, "t", "t-pl16", settings=cfg.inference, ranker=cfg.ranker, quiet=True)
    pseudolabel(root, "t", "t-plc", settings=replace(cfg.inference, pseudo_store="targets"),
                ranker=cfg.ranker, quiet=True)
    with Workspace.open(root) as ws:
        n = ws.exams(role="unlabeled")[0].name
        assert ws.read_prediction("t-pl16", n).pixels == "float16"
        assert ws.read_prediction("t-plc", n, targets_ok=True).pixels == "targets"
        sizes = {run: sum(p.stat().st_size for p in (root / "predictions" / run).glob("*.h5"))
                 for run in ("t-pl16", "t-plc")}
    assert sizes["t-plc"] < sizes["t-pl16"] / 2, sizes
    weights = {}
    for run in ("t-pl16", "t-plc"):
        t = StudentTrainer(root, f"s-{run}", cfg, parent="t", pseudolabel_run=run,
                           init_checkpoint=checkpoint_path(root, "t", "final"), quiet=True)
        assert t.fit().status == "finished"
        weights[run] = torch.load(checkpoint_path(root, f"s-{run}", "final"),
                                  weights_only=False)["model"]
    a, b = weights["t-pl16"], weights["t-plc"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sources_pickle_into_loader_processes_with_an_empty_cache(many):
    """Loader workers get the sources by pickling: paths and flags travel, cached slices do
    not (each process has its own budget), and the copy reads the same slices."""
    import pickle

    cfg = _cfg()
    with Workspace.open(many[50]) as ws:
        cache = ExamCache(ws, cfg.preprocess)
        srcs = [labeled_source(ws, cache, cfg), pseudo_source(ws, cache, cfg, "plc")]
        srcs[0].hu[0][1]
        assert cache.nbytes > 0
        copies = pickle.loads(pickle.dumps(srcs))
        assert copies[0].hu[0]._read.cache.nbytes == 0
        for a, b in zip(srcs, copies):
            assert np.array_equal(a.positive, b.positive) and a.digests == b.digests
            for e in (0, len(a.exams) - 1):
                assert np.array_equal(np.asarray(a.hu[e]), np.asarray(b.hu[e]))
                assert np.array_equal(np.asarray(a.labels[e]), np.asarray(b.labels[e]))
