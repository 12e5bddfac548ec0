"""Format 2 of the workspace's arrays: per-slice chunks, the chosen codec, slice and crop
reads equal to slicing the whole volume, compact pseudo-label targets, and format 1 files
(written below exactly as format 1 wrote them) still read."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError
from ictview.store import arrays

GEOMETRY = Geometry((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 5.0),
                    (0.5, 0.5))


def _data(seed=0, shape=(5, 40, 36)):
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1024, 2000, shape).astype(np.int16)
    lab = rng.choice(np.array([0, 0, 0, 1, 3, 255], np.uint8), shape)
    prob = rng.random(shape).astype(np.float16)
    return hu, lab, prob


def _write_format_1(tmp_path, hu, lab, prob):
    """The format 1 writers (ictview/store/arrays.py before format 2), verbatim in effect."""
    v, l, p = tmp_path / "v1-vol.h5", tmp_path / "v1-lab.h5", tmp_path / "v1-pred.h5"
    with h5py.File(v, "w", libver="latest") as f:
        f.create_dataset("hu", data=hu)  # contiguous, uncompressed
        f.create_dataset("sop_uids", data=np.array([f"1.2.{k}" for k in range(len(hu))],
                                                   dtype=h5py.string_dtype()))
        f.attrs["format_version"] = 1
        f.attrs["geometry"] = json.dumps(GEOMETRY.to_dict())
        f.attrs["meta"] = json.dumps({"a": 1})
    with h5py.File(l, "w", libver="latest") as f:
        f.create_dataset("labels", data=lab, chunks=(1,) + lab.shape[1:], compression="lzf")
        f.attrs["format_version"] = 1
    with h5py.File(p, "w", libver="latest") as f:
        f.create_dataset("prob", data=prob, chunks=(1,) + prob.shape[1:], compression="lzf")
        f.create_dataset("slice_scores", data=prob.max((1, 2)).astype(np.float32))
        f.attrs["exam_score"] = 0.25
        f.attrs["format_version"] = 1
    return v, l, p


def _write_format_2(tmp_path, hu, lab, prob):
    v, l, p = tmp_path / "v2-vol.h5", tmp_path / "v2-lab.h5", tmp_path / "v2-pred.h5"
    arrays.write_volume(v, hu, GEOMETRY, [f"1.2.{k}" for k in range(len(hu))], {"a": 1})
    arrays.write_labels(l, lab, {})
    arrays.write_prediction(p, arrays.Prediction(prob, prob.max((1, 2)).astype(np.float32),
                                                 0.25))
    return v, l, p


@pytest.mark.parametrize("writer", [_write_format_1, _write_format_2])
def test_both_formats_read_whole_per_slice_and_per_crop(tmp_path, writer):
    hu, lab, prob = _data()
    v, l, p = writer(tmp_path, hu, lab, prob)
    vol = arrays.read_volume(v)
    assert np.array_equal(vol.hu, hu) and vol.geometry == GEOMETRY and vol.attrs == {"a": 1}
    assert np.array_equal(arrays.read_labels(l)[0], lab)
    pred = arrays.read_prediction(p)
    assert np.array_equal(pred.prob, prob) and pred.targets is None and pred.exam_score == 0.25
    assert arrays.read_prediction(p, pixels=False).prob.size == 0
    layout = arrays.read_prediction_layout(p)
    assert layout.pixels == "float16" and layout.shape == prob.shape
    assert np.array_equal(layout.slice_scores, prob.max((1, 2)).astype(np.float32))
    assert arrays.array_shape(v) == hu.shape
    rng = np.random.default_rng(1)
    for _ in range(20):
        k = int(rng.integers(len(hu)))
        y0, x0 = (int(a) for a in rng.integers(0, 30, 2))
        rows, cols = slice(y0, y0 + int(rng.integers(1, 11))), slice(x0, x0 + 6)
        assert np.array_equal(arrays.read_slice(v, k), hu[k])
        assert np.array_equal(arrays.read_crop(v, k, rows, cols), hu[k, rows, cols])
        assert np.array_equal(arrays.read_label_slice(l, k), lab[k])
        assert np.array_equal(arrays.read_label_slice(l, k, rows, cols), lab[k, rows, cols])
        assert np.array_equal(arrays.read_prob_slice(p, k), prob[k])


def test_format_2_is_chunked_per_slice_and_compressed(tmp_path):
    hu, lab, prob = _data(shape=(4, 128, 128))
    hu[:] = np.where(np.arange(128)[None, :, None] < 64, -1024, 40)  # compressible
    for path, name in zip(_write_format_2(tmp_path, hu, lab, prob), ("hu", "labels", "prob")):
        with h5py.File(path, "r") as f:
            ds = f[name]
            assert ds.chunks == (1, 128, 128)
            filters = ds.id.get_create_plist()
            ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
            assert ids == [32001]  # blosc (hdf5plugin), shuffle and zstd inside it
            assert f.attrs["format_version"] == arrays.FORMAT_VERSION == 2
    raw = tmp_path / "raw.h5"
    arrays.write_volume(raw, hu, GEOMETRY, ["1"] * len(hu), {}, codec="none")
    assert (tmp_path / "v2-vol.h5").stat().st_size < raw.stat().st_size / 4


def test_a_slice_outside_the_volume_is_one_line_naming_the_file(tmp_path):
    hu, lab, prob = _data()
    v, l, p = _write_format_2(tmp_path, hu, lab, prob)
    for fn, path in ((arrays.read_slice, v), (arrays.read_label_slice, l),
                     (arrays.read_prob_slice, p)):
        with pytest.raises(IctviewError, match=rf"{path.name}: cannot read slice 9"):
            fn(path, 9)
        with pytest.raises(IctviewError, match="cannot read slice -1"):
            fn(path, -1)  # numpy would wrap around: refused instead


def test_compact_targets_round_trip_and_scores_alone_skip_them(tmp_path):
    z, y, x = 6, 20, 24
    keep = np.array([1, 4], np.int32)
    t = np.zeros((2, y, x), np.uint8)
    t[0, 3:5, 3:9], t[1, 10, 10], t[1, 11, 11] = 1, 255, 1
    scores = np.linspace(0, 1, z).astype(np.float32)
    pred = arrays.Prediction(np.empty((0, 0, 0), np.float16), scores, 0.9, {"model_run": "m"},
                             arrays.CompactTargets((z, y, x), keep, t, 0.7, 0.3))
    path = tmp_path / "c.h5"
    arrays.write_prediction(path, pred)
    with pytest.raises(IctviewError, match=r"c.h5: this pseudolabel run stores compact "
                                           r"targets at k_hi 0.7 / k_lo 0.3, not probabilities"):
        arrays.read_prediction(path)  # a view that needs probabilities: one line, no empty map
    back = arrays.read_prediction(path, targets_ok=True)
    assert back.pixels == "targets" and back.prob.size == 0 and back.attrs == {
        "model_run": "m", "format_version": 2}
    assert np.array_equal(back.targets.slices, keep) and np.array_equal(back.targets.targets, t)
    assert (back.targets.shape, back.targets.k_hi, back.targets.k_lo) == ((z, y, x), 0.7, 0.3)
    lean = arrays.read_prediction(path, pixels=False)
    assert lean.targets.targets.shape == (0, y, x) and np.array_equal(lean.slice_scores, scores)
    layout = arrays.read_prediction_layout(path)
    assert layout.pixels == "targets" and layout.shape == (z, y, x)
    assert np.array_equal(layout.target_slices, keep) and (layout.k_hi, layout.k_lo) == (0.7, 0.3)
    assert np.array_equal(arrays.read_target_slice(path, 1), t[1])


def test_compact_targets_refuse_inconsistent_rows():
    with pytest.raises(ValueError, match="ascending"):
        arrays.CompactTargets((4, 2, 2), [2, 1], np.zeros((2, 2, 2), np.uint8), 0.7, 0.3)
    with pytest.raises(ValueError, match="uint8"):
        arrays.CompactTargets((4, 2, 2), [1], np.zeros((2, 2, 2), np.uint8), 0.7, 0.3)
