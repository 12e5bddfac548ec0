"""Fixtures for the annotation core: a CT-like slice stack and a small hand-built workspace."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.core.geometry import Geometry
from ictview.store.workspace import NewExam, Workspace

SHAPE = (6, 64, 64)
SPACING_YX = (0.5, 0.5)


def phantom_hu(shape=SHAPE, seed: int = 0) -> np.ndarray:
    """Brain-like HU (~30) with a blood blob (~65), a dense spot (300) and noise."""
    rng = np.random.default_rng(seed)
    z, y, x = shape
    hu = np.full(shape, 30, np.int16) + rng.integers(-4, 5, shape, dtype=np.int16)
    yy, xx = np.mgrid[:y, :x]
    blob = (yy - y // 2) ** 2 + (xx - x // 2) ** 2 <= (y // 6) ** 2
    hu[:, blob] = 65
    hu[:, 5:9, 5:9] = 300
    return hu


def make_exam(name: str = "EX-1", shape=SHAPE, seed: int = 0) -> NewExam:
    g = Geometry((-16.0, -16.0, 0.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), SPACING_YX)
    return NewExam(
        name=name, site="atlantis", hu=phantom_hu(shape, seed), geometry=g,
        sop_uids=[f"1.2.3.{seed}.{k}" for k in range(shape[0])],
        positions=[5.0 * k for k in range(shape[0])],
        patient_id=name, study_uid=f"1.2.3.{seed}", series_uid=f"1.2.3.{seed}.100",
    )


def build_workspace(root) -> None:
    with Workspace.create(root) as ws:
        ws.ensure_site("atlantis", "labeled")
        ws.add_exam(make_exam())


@pytest.fixture
def hu() -> np.ndarray:
    return phantom_hu()


@pytest.fixture
def small_ws(tmp_path):
    root = tmp_path / "ws"
    build_workspace(root)
    return root
