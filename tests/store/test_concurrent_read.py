"""A reader in another process never sees a torn label file while a writer replaces it."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from ictview.store import arrays


def _writer(path, n, ready):
    rng = np.random.default_rng(0)
    ready.set()
    for i in range(n):
        value = i % 250
        labels = np.full((8, 128, 128), value, np.uint8)
        labels[:, rng.integers(0, 128), :] = value  # same value, different write pattern
        arrays.write_labels(path, labels, {"value": value})


def test_reader_never_sees_torn_file(tmp_path):
    path = tmp_path / "labels" / "exam.h5"
    arrays.write_labels(path, np.zeros((8, 128, 128), np.uint8), {"value": 0})
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    writer = ctx.Process(target=_writer, args=(path, 300, ready))
    writer.start()
    ready.wait(30)
    reads, seen = 0, set()
    deadline = time.monotonic() + 60
    while writer.is_alive() and time.monotonic() < deadline:
        labels, attrs = arrays.read_labels(path)  # raises on a torn file
        assert labels.shape == (8, 128, 128)
        assert labels.min() == labels.max() == attrs["value"], "mixed contents: torn read"
        seen.add(int(attrs["value"]))
        reads += 1
    writer.join(30)
    assert writer.exitcode == 0
    assert reads > 10 and len(seen) > 1  # we really read while it was writing
    assert not list(path.parent.glob("*.tmp-*"))
