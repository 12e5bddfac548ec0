"""Input windows: linear HU -> [0, 1] per channel, numpy and torch alike; config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ictview.errors import IctviewError
from training.windows import (
    DEFAULT_WINDOWS,
    Window,
    apply_windows,
    apply_windows_batch,
    resolve_windows,
)


def test_default_windows_map_hu_linearly() -> None:
    assert [w.name for w in DEFAULT_WINDOWS] == ["brain", "subdural", "bone"]
    hu = np.array([-1024, 0, 40, 80, 75, 1000, 3000], dtype=np.int16)
    out = apply_windows(hu)
    assert out.dtype == np.float32 and out.shape == (3, 7)
    assert np.allclose(out[0], [0, 0, 0.5, 1, 75 / 80, 1, 1])
    assert np.isclose(out[1, 4], 0.5)  # subdural centre 75
    assert np.isclose(out[2, 0], 0.0) and np.isclose(out[2, 5], 0.6428571)  # bone (1000+800)/2800
    # blood (70 HU) and bone (1000 HU) both saturate the brain window; the bone window splits them
    assert out[0, 3] == out[0, 5] == 1.0 and out[2, 5] - apply_windows(np.array([70]))[2, 0] > 0.3


def test_numpy_and_torch_agree() -> None:
    hu = np.random.default_rng(0).integers(-1024, 2000, (2, 8, 8)).astype(np.int16)
    ref = apply_windows(hu)
    t = apply_windows(torch.from_numpy(hu))
    assert isinstance(t, torch.Tensor) and torch.allclose(t, torch.from_numpy(ref))
    assert apply_windows_batch(torch.from_numpy(hu)).shape == (2, 3, 8, 8)


def test_resolve_windows_from_config() -> None:
    wide = {"name": "wide", "center": 100, "width": 400}
    ws = resolve_windows(["brain", wide, Window("x", 0, 10)])
    assert [(w.name, w.center, w.width) for w in ws] == [
        ("brain", 40, 80), ("wide", 100, 400), ("x", 0, 10)
    ]
    assert resolve_windows(None) == DEFAULT_WINDOWS
    for bad in (["nope"], [{"center": 1}], [{"center": 1, "width": 0}], "brain", []):
        with pytest.raises(IctviewError, match="^run.toml: "):
            resolve_windows(bad, source="run.toml")
