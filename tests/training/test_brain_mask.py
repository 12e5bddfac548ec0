"""Brain extraction on the synthetic sites: lesions kept, skull removed, skull-free site intact."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
import pytest

from ictview.core.brain_mask import (
    AIR_HU,
    BrainMaskConfig,
    brain_mask,
    fill_holes_inplane,
    skull_present,
    strip_skull,
)
from ictview.errors import IctviewError
from ictview.store.workspace import Workspace


@pytest.fixture(scope="module")
def volumes(tiny_workspace):
    out = {}
    with Workspace.open(tiny_workspace) as ws:
        for e in ws.exams():
            out[e.name] = (e.site, ws.read_volume(e.name).hu, ws.load_labels("reference", e.name))
    return out


def test_skull_detected_everywhere_but_the_stripped_site(volumes) -> None:
    for name, (site, hu, _) in volumes.items():
        bone = hu >= 300
        present = skull_present(bone, (hu > -100) & ~bone)
        assert present == (site != "atlantis"), name


def test_skull_removed_at_skull_sites(volumes) -> None:
    for name, (site, hu, _) in volumes.items():
        if site == "atlantis":
            continue
        m = brain_mask(hu)
        skull = hu >= 500
        assert skull.sum() > 1000, name  # the site really has a skull
        assert (m & skull).sum() <= 0.002 * skull.sum(), name
        # the scalp (soft tissue outside the skull) is gone: the mask is a minority of the head
        head = hu > -100
        assert m.sum() < 0.8 * head.sum(), name
        assert m.sum() > 0.3 * head.sum(), name


def test_skull_free_site_keeps_its_brain(volumes) -> None:
    for name, (site, hu, _) in volumes.items():
        if site != "atlantis":
            continue
        m = brain_mask(hu)
        tissue = (hu > -100) & (hu < 300)
        assert m[tissue].mean() > 0.99, name


def test_lesions_are_kept_at_every_site(volumes) -> None:
    kept, total = {}, {}
    for name, (site, hu, lab) in volumes.items():
        if lab is None:
            continue
        les = (lab > 0) & (lab != 255)
        if not les.any():
            continue
        m = brain_mask(hu)
        kept[site] = kept.get(site, 0) + int((m & les).sum())
        total[site] = total.get(site, 0) + int(les.sum())
        # blood in a pixel touching bone is partial-volumed with it (1.8 mm pixels in tiny):
        # stripping may take that rim; everything else must stay
        rim = ndimage.binary_dilation(hu > 300, structure=np.ones((1, 3, 3), bool))
        inner = les & ~rim
        assert (m & inner).sum() >= 0.95 * inner.sum(), name
    assert total, "the tiny study has pixel-labeled lesions"
    assert len(total) >= 2, "lesions at the stripped site and at a skull site"
    assert sum(kept.values()) >= 0.9 * sum(total.values())


def test_strip_skull_fills_outside_with_air_and_keeps_dtype(volumes) -> None:
    _, hu, _ = next(v for v in volumes.values() if v[0] == "cq500")
    out, m = strip_skull(hu)
    assert out.dtype == hu.dtype and out.shape == hu.shape
    assert (out[~m] == AIR_HU).all()
    assert np.array_equal(out[m], hu[m])
    same, all_true = strip_skull(hu, BrainMaskConfig(enabled=False))
    assert all_true.all() and np.array_equal(same, hu)


def test_hole_filling_is_per_slice_and_bounded() -> None:
    m = np.zeros((3, 12, 12), bool)
    m[:, 2:10, 2:10] = True
    m[:, 4:6, 4:6] = False  # small hole: 4 pixels
    m[1, 3:9, 3:9] = False  # slice 1: a large hole (36 pixels) inside a 1-pixel ring
    filled = fill_holes_inplane(m, max_area=10)
    assert filled[0, 4:6, 4:6].all() and filled[2, 4:6, 4:6].all()
    assert not filled[1, 4:6, 4:6].any(), "holes above max_area stay open"
    # first and last slices are filled too (no 3D border effect)
    assert fill_holes_inplane(m)[1, 4:6, 4:6].all()


def test_bad_volume_is_a_one_line_error() -> None:
    with pytest.raises(IctviewError, match="brain mask"):
        brain_mask(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError):
        BrainMaskConfig(tissue_low_hu=400)
