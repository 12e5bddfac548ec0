"""Preset sizes: the cpu-study preset is sized for the statistics issue 10 asks of it.

Planning only (which exams are positive, which are pixel-labeled): no image is rendered.
"""

from __future__ import annotations

import pytest

from ictview.synth.generate import plan_site
from ictview.synth.sites import PRESETS, SITES


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpu_study_is_sized_for_significance(seed: int) -> None:
    size = PRESETS["cpu-study"]
    plans = {name: plan_site(SITES[name], size.exams[name], seed,
                             size.cq500_pixel_labeled if name == "cq500" else 0)
             for name in SITES}
    test = plans["cq500"]
    assert len(test) >= 120
    assert sum(bool(p.subtypes) for p in test) / len(test) == pytest.approx(0.42, abs=0.02)
    assert sum(p.pixel_labeled for p in test) >= 24  # each segmented 3x (Table 4)
    val = plans["validation"]
    assert len(val) >= 40 and sum(bool(p.subtypes) for p in val) >= 10  # all pixel-labeled
    assert len(plans["kaggle"]) >= 10 * len(plans["atlantis"])
    assert size.matrix <= 128, "small images: the whole study runs on 2 CPU cores"
