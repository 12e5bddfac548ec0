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
import numpy as np

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError, first_line, read_error

TMP_MARK = ".tmp-"
FORMAT_VERSION = 1


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
    path: Path, hu: np.ndarray, geometry: Geometry, sop_uids: list[str], attrs: dict
) -> str:
    """Write the volume; returns the sha1 of the file."""
    if hu.dtype != np.int16 or hu.ndim != 3:
        raise ValueError(f"volume must be int16 (z, y, x), got {hu.dtype} {hu.shape}")
    if len(sop_uids) != hu.shape[0]:
        raise ValueError("one SOP Instance UID per slice is required")
    out = atomic_h5(path)
    with out as f:
        # contiguous and uncompressed: whole-volume reads are a single memcpy
        f.create_dataset("hu", data=hu)
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


def read_slice(path: Path, k: int) -> np.ndarray:
    """Slice k of a volume file alone (int16 (y, x)): what a viewer paints first."""
    with open_h5(path) as f:
        try:
            return np.asarray(f["hu"][int(k)], dtype=np.int16)
        except (KeyError, ValueError, IndexError) as e:
            raise IctviewError(f"{path}: cannot read slice {k} ({e})") from None


# ---- label volumes ---------------------------------------------------------------------


def write_labels(path: Path, labels: np.ndarray, attrs: dict) -> str:
    """Write the label volume; returns the sha1 of the file."""
    if labels.dtype != np.uint8 or labels.ndim != 3:
        raise ValueError(f"labels must be uint8 (z, y, x), got {labels.dtype} {labels.shape}")
    out = atomic_h5(path)
    with out as f:
        # per-slice chunks + lzf: a mostly-empty 512x512x40 label volume is a few kB and
        # compresses faster than it would take to write raw
        f.create_dataset(
            "labels", data=labels, chunks=(1,) + labels.shape[1:], compression="lzf"
        )
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


# ---- predictions -----------------------------------------------------------------------


@dataclass
class Prediction:
    prob: np.ndarray  # float16 (z, y, x) pixel probability of hemorrhage
    slice_scores: np.ndarray  # float32 (z,) image probability per slice
    exam_score: float
    attrs: dict = field(default_factory=dict)


def write_prediction(path: Path, pred: Prediction) -> str:
    """Write the prediction; returns the sha1 of the file."""
    out = atomic_h5(path)
    with out as f:
        f.create_dataset(
            "prob", data=pred.prob.astype(np.float16, copy=False),
            chunks=(1,) + pred.prob.shape[1:], compression="lzf",
        )
        f.create_dataset("slice_scores", data=pred.slice_scores.astype(np.float32, copy=False))
        f.attrs["exam_score"] = float(pred.exam_score)
        f.attrs["format_version"] = FORMAT_VERSION
        for k, v in pred.attrs.items():
            f.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=str)
    return out.sha1


def read_prediction(path: Path, pixels: bool = True) -> Prediction:
    """pixels=False reads only the scores (ranking a whole corpus needs no pixel maps)."""
    with open_h5(path) as f:
        if "slice_scores" not in f:
            raise IctviewError(f"{path}: not an ictview prediction file")
        prob = f["prob"][()] if pixels else np.empty((0, 0, 0), np.float16)
        scores = f["slice_scores"][()]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return Prediction(prob, scores, float(attrs.pop("exam_score")), attrs)
