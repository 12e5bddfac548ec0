"""HDF5 array files of the workspace, always written by atomic replace.

A file is written under a temporary name in its final folder, flushed to disk,
then renamed over the old one. A reader that opened the old file keeps reading
the old inode; a new reader sees the new file whole. Nothing ever writes into a
file another process may be reading, so no HDF5 locking is needed to read.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import h5py
import hdf5plugin  # noqa: F401  registers the blosc filter CODEC writes and readers decode
import numpy as np

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError, first_line, read_error

TMP_MARK = ".tmp-"
# 1: volumes contiguous and uncompressed, labels and predictions lzf per slice.
# 2: every array chunked per slice (1, y, x) and compressed with CODEC; predictions may hold
#    compact pseudo-label targets instead of float16 probabilities. Readers take both: the
#    chunk layout and the filter are properties of the dataset, not of the reading code.
FORMAT_VERSION = 2

# The codec of every array written, chosen by `ictview bench storage` (README, "Storage
# format"; 40 x 512 x 512 synthetic CT, medians of interleaved rounds): blosc/zstd level 1 +
# byte shuffle stores HU at 0.39 B/voxel (lzf 0.67, gzip-1 0.48, uncompressed 2.0), writes a
# volume fastest of the compressed codecs (43 ms; lzf 79, gzip-1 128) and reads a slice in
# 0.7 ms (lzf 1.2, gzip-1 1.5). zstd levels 3 / 5 store 9 / 13 % less and read a slice
# 0.1-0.2 ms sooner but write 2-4x slower; an evaluation on a GPU writes its float16 maps as
# fast as it predicts them, so the write speed decides.
CODEC = "blosc-zstd-1"


def codec_options(name: str) -> dict:
    """h5py create_dataset keywords of a codec as `ictview bench storage` names it: "none",
    "lzf", "gzip-<level>", "blosc-zstd-<level>" (hdf5plugin, byte shuffle built in); a
    "shuffle+" prefix adds HDF5's byte shuffle (the high bytes of int16 HU are nearly all
    alike, so grouped they compress)."""
    shuffle = name.startswith("shuffle+")
    base = name.removeprefix("shuffle+")
    extra = {"shuffle": True} if shuffle else {}
    if base == "none":
        return extra
    if base == "lzf":
        return {"compression": "lzf", **extra}
    if base.startswith("gzip-") and base[5:].isdigit():
        return {"compression": "gzip", "compression_opts": int(base[5:]), **extra}
    if base.startswith("blosc-zstd-") and base[11:].isdigit() and not shuffle:
        return dict(hdf5plugin.Blosc(cname="zstd", clevel=int(base[11:]),
                                     shuffle=hdf5plugin.Blosc.SHUFFLE))
    raise ValueError(f"unknown codec '{name}'")


def _slice_chunked(f: h5py.File, name: str, data: np.ndarray, codec: str | None = None) -> None:
    """One chunk per slice: a slice or a crop of it decodes one chunk, never the volume."""
    chunks = (1,) + data.shape[1:] if data.ndim == 3 and data.size else None
    opts = codec_options(codec or CODEC) if chunks else {}
    f.create_dataset(name, data=data, chunks=chunks, **opts)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (the directory entry itself is flushed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class atomic_h5:
    """`with atomic_h5(path) as f:` fill an HDF5 file; on success it replaces `path`
    atomically and `.sha1` is the checksum of exactly the bytes renamed into place
    (hashed from the temp file, so a concurrent writer cannot slip in between)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(
            f"{self.path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        self.sha1 = ""
        self._f: h5py.File | None = None

    def __enter__(self) -> h5py.File:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = h5py.File(self.tmp, "w", libver="latest", locking=False)
        return self._f

    def __exit__(self, exc_type, exc, tb) -> None:
        replaced = False
        try:
            self._f.close()
            if exc_type is None:
                # the hash reads the pages just written, still in the page cache
                digest = file_sha1(self.tmp, fsync=True)
                os.replace(self.tmp, self.path)
                replaced, self.sha1 = True, digest
                fsync_dir(self.path.parent)
        finally:
            if not replaced:
                self.tmp.unlink(missing_ok=True)


@contextmanager
def open_h5(path: Path) -> Iterator[h5py.File]:
    """`with open_h5(path) as f:` the one way the workspace reads HDF5: whatever h5py or
    numpy raise opening or reading it (a damaged file) becomes one IctviewError naming it."""
    try:
        f = h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise IctviewError(f"{path}: file not found") from None
    except OSError as e:
        raise IctviewError(f"{path}: not a readable HDF5 file ({first_line(e)})") from None
    with f:
        try:
            yield f
        except Exception as exc:
            err = read_error(exc, path)
            if err is None:
                raise
            raise err from None


def file_sha1(path: Path, fsync: bool = False) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        if fsync:
            os.fsync(f.fileno())
    return h.hexdigest()


def verify_file(path: Path, sha1: str | None) -> None:
    """IctviewError naming the file when it is not the file the catalog recorded."""
    if not sha1:
        return  # saved before checksums were recorded: nothing to compare with
    try:
        actual = file_sha1(path)
    except FileNotFoundError:
        raise IctviewError(f"{path}: file not found") from None
    except OSError as e:
        raise IctviewError(f"{path}: unreadable ({e.strerror or e})") from None
    if actual != sha1:
        raise IctviewError(
            f"{path}: checksum mismatch (file changed since ictview wrote it; "
            f"catalog sha1 {sha1[:12]}, file {actual[:12]})"
        )


# ---- volumes -------------------------------------------------------------------------


@dataclass
class StoredVolume:
    hu: np.ndarray  # int16 (z, y, x)
    geometry: Geometry
    sop_uids: list[str]
    attrs: dict = field(default_factory=dict)


def write_volume(
    path: Path, hu: np.ndarray, geometry: Geometry, sop_uids: list[str], attrs: dict,
    codec: str | None = None,
) -> str:
    """Write the volume; returns the sha1 of the file."""
    if hu.dtype != np.int16 or hu.ndim != 3:
        raise ValueError(f"volume must be int16 (z, y, x), got {hu.dtype} {hu.shape}")
    if len(sop_uids) != hu.shape[0]:
        raise ValueError("one SOP Instance UID per slice is required")
    out = atomic_h5(path)
    with out as f:
        _slice_chunked(f, "hu", hu, codec)
        f.create_dataset("sop_uids", data=np.array(sop_uids, dtype=h5py.string_dtype()))
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["geometry"] = json.dumps(geometry.to_dict())
        f.attrs["meta"] = json.dumps(attrs, default=str)
    return out.sha1


def read_volume(path: Path) -> StoredVolume:
    with open_h5(path) as f:
        try:
            ds = f["hu"]
            hu = np.empty(ds.shape, dtype=np.int16)
            ds.read_direct(hu)
            sops = [s.decode() if isinstance(s, bytes) else s for s in f["sop_uids"][()]]
            geometry = Geometry.from_dict(json.loads(f.attrs["geometry"]))
            meta = json.loads(f.attrs.get("meta", "{}"))
        except (KeyError, ValueError) as e:
            raise IctviewError(f"{path}: not an ictview volume file ({e})") from None
    return StoredVolume(hu, geometry, sops, meta)


def _region(path: Path, name: str, dtype, k: int, rows: slice | None = None,
            cols: slice | None = None) -> np.ndarray:
    """Slice k (or its rows x cols crop) of dataset `name`: one chunk read in both formats."""
    with open_h5(path) as f:
        try:
            ds = f[name]
            if not 0 <= int(k) < ds.shape[0]:
                raise IndexError(f"slice {k} outside 0..{ds.shape[0] - 1}")
            key = (int(k), rows if rows is not None else slice(None),
                   cols if cols is not None else slice(None))
            return np.asarray(ds[key], dtype=dtype)
        except (KeyError, ValueError, IndexError) as e:
            raise IctviewError(f"{path}: cannot read slice {k} of '{name}' ({e})") from None


@dataclass(frozen=True)
class SliceFile:
    """One dataset of one file, read a slice (or a crop) at a time. Holds no open handle, so
    it pickles into loader processes; the Workspace hands these out after its read guard
    allowed the file."""

    path: Path
    dataset: str  # "hu", "labels", "prob" or "targets"
    dtype: str

    def read(self, k: int, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
        return _region(self.path, self.dataset, np.dtype(self.dtype), k, rows, cols)


def read_slice(path: Path, k: int) -> np.ndarray:
    """Slice k of a volume file alone (int16 (y, x)): what a viewer paints first."""
    return _region(path, "hu", np.int16, k)


def read_crop(path: Path, k: int, rows: slice, cols: slice) -> np.ndarray:
    """rows x cols of slice k of a volume file (int16): the chunk of slice k is decoded, no
    other slice is read."""
    return _region(path, "hu", np.int16, k, rows, cols)


def array_shape(path: Path, name: str = "hu") -> tuple[int, ...]:
    """Shape of dataset `name` ("hu", "labels", "prob") without reading it."""
    with open_h5(path) as f:
        if name not in f:
            raise IctviewError(f"{path}: no '{name}' dataset")
        return tuple(int(n) for n in f[name].shape)


# ---- label volumes ---------------------------------------------------------------------


def write_labels(path: Path, labels: np.ndarray, attrs: dict, codec: str | None = None) -> str:
    """Write the label volume; returns the sha1 of the file."""
    if labels.dtype != np.uint8 or labels.ndim != 3:
        raise ValueError(f"labels must be uint8 (z, y, x), got {labels.dtype} {labels.shape}")
    out = atomic_h5(path)
    with out as f:
        # a mostly-empty 512x512x40 label volume compresses to a few kB
        _slice_chunked(f, "labels", labels, codec)
        f.attrs["format_version"] = FORMAT_VERSION
        for k, v in attrs.items():
            f.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=str)
    return out.sha1


def read_labels(path: Path) -> tuple[np.ndarray, dict]:
    with open_h5(path) as f:
        if "labels" not in f:
            raise IctviewError(f"{path}: not an ictview label file (no 'labels' dataset)")
        ds = f["labels"]
        labels = np.empty(ds.shape, dtype=np.uint8)
        ds.read_direct(labels)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return labels, attrs


def read_label_slice(path: Path, k: int, rows: slice | None = None,
                     cols: slice | None = None) -> np.ndarray:
    """Slice k (or a crop of it) of a label file, uint8."""
    return _region(path, "labels", np.uint8, k, rows, cols)


# ---- predictions -----------------------------------------------------------------------


@dataclass
class CompactTargets:
    """What a student trains on from a pseudo-label run, without the probabilities: the
    ranker's thresholded pixel targets (uint8 1 where p > k_hi, 0 where p < k_lo, 255 in
    between) of the slices where any pixel is not 0. Every other slice's target is all 0, at
    any top C%, in the no-ranker ablation and the pixel oracle alike, so the slices stored
    serve every ranker setting with these K."""

    shape: tuple[int, int, int]  # the exam's (z, y, x)
    slices: np.ndarray  # int32 (n,) ascending slice indices stored
    targets: np.ndarray  # uint8 (n, y, x)
    k_hi: float
    k_lo: float

    def __post_init__(self) -> None:
        self.slices = np.asarray(self.slices, np.int32)
        z, y, x = self.shape
        if self.targets.dtype != np.uint8 or self.targets.shape != (len(self.slices), y, x):
            raise ValueError(f"targets must be uint8 ({len(self.slices)}, {y}, {x}), got "
                             f"{self.targets.dtype} {self.targets.shape}")
        if len(self.slices) and (np.any(np.diff(self.slices) <= 0) or self.slices[0] < 0
                                 or self.slices[-1] >= z):
            raise ValueError("target slices must be ascending indices inside the exam")


@dataclass
class Prediction:
    prob: np.ndarray  # float16 (z, y, x) pixel probability of hemorrhage; (0, 0, 0) if none
    slice_scores: np.ndarray  # float32 (z,) image probability per slice
    exam_score: float
    attrs: dict = field(default_factory=dict)
    # compact pseudo-labels stored instead of `prob` (a pseudolabel run's default)
    targets: CompactTargets | None = None

    @property
    def pixels(self) -> str:
        return "targets" if self.targets is not None else "float16"


def write_prediction(path: Path, pred: Prediction, codec: str | None = None) -> str:
    """Write the prediction; returns the sha1 of the file. Either the float16 probabilities
    (evaluation: exact values for the report's AP) or compact targets (pseudo-labels)."""
    out = atomic_h5(path)
    with out as f:
        if pred.targets is None:
            _slice_chunked(f, "prob", pred.prob.astype(np.float16, copy=False), codec)
        else:
            t = pred.targets
            _slice_chunked(f, "targets", t.targets, codec)
            f.create_dataset("target_slices", data=t.slices)
            f.attrs["shape"] = json.dumps(list(t.shape))
            f.attrs["k_hi"], f.attrs["k_lo"] = float(t.k_hi), float(t.k_lo)
        f.create_dataset("slice_scores", data=pred.slice_scores.astype(np.float32, copy=False))
        f.attrs["exam_score"] = float(pred.exam_score)
        f.attrs["format_version"] = FORMAT_VERSION
        for k, v in pred.attrs.items():
            f.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=str)
    return out.sha1


_TARGET_ATTRS = ("shape", "k_hi", "k_lo")


def _read_targets(f: h5py.File, pixels: bool) -> CompactTargets:
    shape = tuple(json.loads(f.attrs["shape"]))
    slices = f["target_slices"][()]
    targets = (f["targets"][()] if pixels
               else np.zeros((0,) + shape[1:], np.uint8))
    return CompactTargets(shape, slices if pixels else np.zeros(0, np.int32), targets,
                          float(f.attrs["k_hi"]), float(f.attrs["k_lo"]))


def read_prediction(path: Path, pixels: bool = True, targets_ok: bool = False) -> Prediction:
    """pixels=False reads only the scores (ranking a whole corpus needs no pixel maps). A file
    of compact targets has no probabilities: with pixels=True it is refused in one line
    unless the caller takes targets (``targets_ok``), so no view shows an empty map."""
    with open_h5(path) as f:
        if "slice_scores" not in f:
            raise IctviewError(f"{path}: not an ictview prediction file")
        if pixels and "targets" in f and not targets_ok:
            raise IctviewError(
                f"{path}: this pseudolabel run stores compact targets at k_hi "
                f"{float(f.attrs['k_hi']):g} / k_lo {float(f.attrs['k_lo']):g}, not "
                f"probabilities (pseudo-label with inference.pseudo_store = \"float16\")")
        targets = _read_targets(f, pixels) if "targets" in f else None
        prob = f["prob"][()] if pixels and "prob" in f else np.empty((0, 0, 0), np.float16)
        scores = f["slice_scores"][()]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
                 if k not in _TARGET_ATTRS or targets is None}
    return Prediction(prob, scores, float(attrs.pop("exam_score")), attrs, targets)


@dataclass(frozen=True)
class PredictionLayout:
    """What a prediction file holds, read without its pixels: the ranker's first pass."""

    pixels: str  # "float16" or "targets"
    file: SliceFile  # the pixels: "prob" slice k, or "targets" row of slice target_slices[row]
    shape: tuple[int, int, int]
    slice_scores: np.ndarray
    target_slices: np.ndarray  # int32, the slices with stored targets ("targets" only)
    k_hi: float | None
    k_lo: float | None


def read_prediction_layout(path: Path) -> PredictionLayout:
    with open_h5(path) as f:
        if "slice_scores" not in f:
            raise IctviewError(f"{path}: not an ictview prediction file")
        scores = f["slice_scores"][()]
        if "targets" in f:
            return PredictionLayout("targets", SliceFile(path, "targets", "uint8"),
                                    tuple(json.loads(f.attrs["shape"])), scores,
                                    f["target_slices"][()].astype(np.int32),
                                    float(f.attrs["k_hi"]), float(f.attrs["k_lo"]))
        if "prob" not in f:
            raise IctviewError(f"{path}: prediction file holds neither 'prob' nor 'targets'")
        return PredictionLayout("float16", SliceFile(path, "prob", "float16"),
                                tuple(int(n) for n in f["prob"].shape), scores,
                                np.zeros(0, np.int32), None, None)


def read_prob_slice(path: Path, k: int) -> np.ndarray:
    """Slice k of a float16 prediction (one chunk)."""
    return _region(path, "prob", np.float16, k)


def read_target_slice(path: Path, row: int) -> np.ndarray:
    """Row `row` of a compact prediction's stored targets (not the slice index: the row of
    that slice in `target_slices`)."""
    return _region(path, "targets", np.uint8, row)
