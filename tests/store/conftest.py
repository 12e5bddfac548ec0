from __future__ import annotations

import numpy as np
import pytest

from ictview.core.geometry import Geometry
from ictview.store.workspace import NewExam, Workspace


def make_exam(name: str, site: str = "atlantis", shape=(6, 32, 32), seed: int = 0) -> NewExam:
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1024, 1500, size=shape, dtype=np.int16)
    g = Geometry((-16.0, -16.0, 0.0), (1, 0, 0), (0, 1, 0), (0, 0, 5.0), (0.5, 0.5))
    mask = np.zeros(shape, np.uint8)
    mask[2, 10:14, 10:14] = 4
    return NewExam(
        name=name, site=site, hu=hu, geometry=g,
        sop_uids=[f"1.2.3.{seed}.{k}" for k in range(shape[0])],
        positions=[5.0 * k for k in range(shape[0])],
        patient_id=name, study_uid=f"1.2.3.{seed}", series_uid=f"1.2.3.{seed}.100",
        reads={("R1", "ICH"): 1, ("R2", "ICH"): 0, ("R3", "ICH"): 1},
        image_labels={2: {"ICH": 1, "IPH": 1}, 3: {"ICH": 0}},
        masks={"reference": mask},
    )


@pytest.fixture
def exam_factory():
    return make_exam


@pytest.fixture
def ws(tmp_path):
    w = Workspace.create(tmp_path / "ws")
    w.ensure_site("atlantis", "labeled")
    yield w
    w.close()
