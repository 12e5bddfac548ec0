"""A model's prediction as starting labels, and the edit effort against it (issue 16).

The proposal: voxels whose stored probability exceeds the run's validation-chosen
pixel threshold, inside the brain mask, grouped into 3D connected components
(6-connectivity); components smaller than `min_voxels` are dropped (specks the
rater would only have to erase).

Unclassified hemorrhage is stored as IGNORE (255) in the label file. The label
table has only 0-5 and 255, and a component the rater has not yet given a subtype
is hemorrhage of unknown type: it must neither train a subtype nor count as
background, which is exactly what 255 means to training, export and statistics.
Clicking a component writes the rater's class (1-5) over its unclassified voxels;
which components came from the proposal is known from the run (recomputed, the
catalog's `label_effort` row names the run, threshold and minimum size).

Edit effort compares the proposal (the labels right after it was applied) with
the labels as saved: Dice of their hemorrhage voxels (any value 1-5 or 255), and
per value, voxels added (now v, were not) and removed (were v, are not).
"""

from __future__ import annotations

import numpy as np

from ictview.core.labels import BY_VALUE, IGNORE

UNCLASSIFIED = IGNORE
DEFAULT_MIN_VOXELS = 10
EFFORT_VALUES = (1, 2, 3, 4, 5, IGNORE)


def value_code(v: int) -> str:
    return BY_VALUE[v].code if v in BY_VALUE else "unclassified"


def proposal_components(prob: np.ndarray, brain: np.ndarray | None, threshold: float,
                        min_voxels: int = DEFAULT_MIN_VOXELS) -> tuple[np.ndarray, int]:
    """(int32 component map, 1..n; 0 outside, n) of the thresholded probability."""
    from scipy import ndimage

    mask = prob > threshold
    if brain is not None:
        mask &= brain
    comps, n = ndimage.label(mask)
    if n == 0:
        return comps.astype(np.int32), 0
    sizes = np.bincount(comps.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes >= max(int(min_voxels), 1))
    keep = keep[keep > 0]
    relabel = np.zeros(n + 1, np.int32)
    relabel[keep] = np.arange(1, len(keep) + 1, dtype=np.int32)
    return relabel[comps], len(keep)


def hemorrhage(labels: np.ndarray) -> np.ndarray:
    return labels > 0  # 1-5 and 255 (unclassified, from a proposal)


def edit_effort(proposal: np.ndarray, current: np.ndarray) -> dict:
    """{'dice', 'added': {code: n}, 'removed': {code: n}, 'changed'} of two label volumes."""
    a, b = hemorrhage(proposal), hemorrhage(current)
    s = int(a.sum()) + int(b.sum())
    dice = 1.0 if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s
    added, removed = {}, {}
    for v in EFFORT_VALUES:
        was, now = proposal == v, current == v
        added[value_code(v)] = int(np.count_nonzero(now & ~was))
        removed[value_code(v)] = int(np.count_nonzero(was & ~now))
    return {"dice": dice, "added": added, "removed": removed,
            "changed": int(np.count_nonzero(proposal != current))}
