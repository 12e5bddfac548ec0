import numpy as np

from ictview.core.annotation import _label_counts
from ictview.core.byte_lru import ByteLRU


def test_evicts_least_recently_used_by_bytes():
    c = ByteLRU(100, size_of=len)
    c.put("a", b"x" * 40)
    c.put("b", b"x" * 40)
    assert c.get("a") is not None  # a is now the most recent
    c.put("c", b"x" * 40)  # 120 > 100: b goes
    assert "b" not in c and "a" in c and "c" in c and c.nbytes == 80
    c.put("huge", b"x" * 101)  # over the whole budget: not kept, nothing evicted
    assert "huge" not in c and len(c) == 2
    c.put("a", b"x" * 10)  # replacing re-counts
    assert c.nbytes == 50
    assert c.get("zz") is None and c.misses == 1 and c.hits == 1


def test_label_counts_match_a_full_bincount():
    rng = np.random.default_rng(0)
    labels = np.zeros((6, 20, 20), np.uint8)
    labels[2] = rng.integers(0, 6, (20, 20))
    labels[4, 3:9, 3:9] = 255
    assert np.array_equal(_label_counts(labels), np.bincount(labels.ravel(), minlength=256))
