"""Simulated humans: the three CQ500 readers and the rater who segments the same exams three times.

Readers see the truth through skill: they miss small lesions (probability
falling with volume), confuse neighbouring subtypes now and then, and over-call
exams with mimics (dense falx, calcifications, streaks). The exam label of the
study is the majority vote of the three, so it agrees with the truth most of
the time but not always, as in CQ500.

The rater's repeated segmentations differ from the reference by boundary
variation (a per-lesion, per-slice bias: dilation or erosion, plus smooth
contour jitter), skipped end slices and occasionally a missed small component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ictview.core.labels import BY_VALUE

CQ500_COLUMNS = (
    "ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "BleedLocation-Left", "BleedLocation-Right",
    "ChronicBleed", "Fracture", "CalvarialFracture", "OtherFracture", "MassEffect", "MidlineShift",
)
READER_NAMES = ("R1", "R2", "R3")
SUBTYPES = ("IPH", "IVH", "SDH", "EDH", "SAH")
# what a reader may call a lesion of one subtype instead
CONFUSIONS = {"EDH": "SDH", "SDH": "EDH", "SAH": "SDH", "IPH": "IVH", "IVH": "IPH"}


def reads_header() -> list[str]:
    return ["name", "Category"] + [f"{r}:{c}" for r in READER_NAMES for c in CQ500_COLUMNS]


@dataclass(frozen=True)
class Finding:
    """One connected lesion component as a reader could see it."""
    kind: str
    volume_ml: float
    side: int  # +1 patient left, -1 right, 0 midline


@dataclass(frozen=True)
class ExamTruth:
    findings: tuple[Finding, ...]
    mimic_score: float  # 0..1, from MimicParams.score
    fracture: bool
    calvarial: bool


@dataclass(frozen=True)
class ReaderSkill:
    miss_small: float  # miss probability of a vanishingly small lesion
    v0_ml: float  # volume at which misses fade (e-folding)
    overcall: float  # false-positive rate on a mimic-free normal scan
    mimic_overcall: float  # added false-positive rate at mimic score 1
    confuse: float  # probability of calling a detected lesion by a neighbouring subtype


# CQ500's readers had 8, 12 and 20 years of experience
READERS = {
    "R1": ReaderSkill(0.65, 1.0, 0.025, 0.09, 0.12),
    "R2": ReaderSkill(0.55, 0.8, 0.015, 0.07, 0.10),
    "R3": ReaderSkill(0.45, 0.6, 0.01, 0.045, 0.06),
}
SHARED = 0.7  # how often readers' errors coincide (subtle lesions, convincing mimics)


def findings_from_mask(labels: np.ndarray, voxel_ml: float,
                       midline_col: float) -> tuple[Finding, ...]:
    """Connected components per subtype (3D); side from the centroid column (columns run to
    patient left)."""
    out: list[Finding] = []
    box = ndimage.find_objects((labels > 0).astype(np.uint8))
    if not box:
        return ()
    labels = labels[box[0]]
    midline_col -= box[0][2].start
    for value, cls in BY_VALUE.items():
        comp, n = ndimage.label(labels == value)
        if n == 0:
            continue
        flat = comp.ravel()
        counts = np.bincount(flat, minlength=n + 1)[1:]
        cols = np.broadcast_to(np.arange(comp.shape[2]), comp.shape).ravel()
        col_sum = np.bincount(flat, weights=cols, minlength=n + 1)[1:]
        for cnt, csum in zip(counts, col_sum):
            dx = csum / cnt - midline_col
            side = 0 if abs(dx) < 3 else (1 if dx > 0 else -1)
            out.append(Finding(cls.code, float(cnt * voxel_ml), side))
    return tuple(out)


def read_exam(truth: ExamTruth, rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """{reader: {column: 0/1}} for the three readers.

    Readers' errors are correlated: a subtle lesion is subtle for everyone, a convincing
    mimic convinces more than one. Each decision draws its uniform from a shared value
    (probability SHARED) or the reader's own."""
    reads = {}
    shared_lesion = rng.random(len(truth.findings))
    shared_fp = rng.random()

    def u(shared: float) -> float:
        return shared if rng.random() < SHARED else rng.random()

    for name in READER_NAMES:
        sk = READERS[name]
        called: set[str] = set()
        sides: set[int] = set()
        seen_ml = 0.0
        for i, f in enumerate(truth.findings):
            p_miss = sk.miss_small * np.exp(-f.volume_ml / sk.v0_ml) + 0.01
            if u(shared_lesion[i]) < p_miss:
                continue
            kind = CONFUSIONS[f.kind] if rng.random() < sk.confuse else f.kind
            called.add(kind)
            sides.add(f.side)
            seen_ml += f.volume_ml
        if u(shared_fp) < sk.overcall + sk.mimic_overcall * truth.mimic_score:
            # a mimic read as blood: dense falx / sinus as SDH or SAH, a calcification as IPH
            called.add(str(rng.choice(["SAH", "SDH", "IPH"], p=[0.4, 0.35, 0.25])))
            sides.add(int(rng.choice([-1, 0, 1])))
        ich = bool(called)
        fracture = (truth.fracture and rng.random() < 0.85) or rng.random() < 0.015
        calvarial = fracture and (truth.calvarial or rng.random() < 0.3)
        row = {c: 0 for c in CQ500_COLUMNS}
        row["ICH"] = int(ich)
        for s in SUBTYPES:
            row[s] = int(s in called)
        # a midline bleed is sometimes called on one side or both
        row["BleedLocation-Left"] = int(ich and (1 in sides or (0 in sides and rng.random() < 0.3)))
        right = -1 in sides or (0 in sides and rng.random() < 0.3)
        row["BleedLocation-Right"] = int(ich and right)
        row["ChronicBleed"] = int(ich and rng.random() < 0.06)
        row["Fracture"] = int(fracture)
        row["CalvarialFracture"] = int(calvarial)
        row["OtherFracture"] = int(fracture and (not calvarial or rng.random() < 0.2))
        vol = seen_ml if ich else 0.0
        row["MassEffect"] = int(rng.random() < (0.9 if vol > 15 else 0.4 if vol > 5 else 0.02))
        row["MidlineShift"] = int(rng.random() < (0.8 if vol > 30 else 0.3 if vol > 15 else 0.01))
        reads[name] = row
    return reads


def majority_ich(reads: dict[str, dict[str, int]]) -> bool:
    return sum(r["ICH"] for r in reads.values()) >= 2


# ---- test-retest ------------------------------------------------------------------------------

# boundary play of one rater between sessions, in pixels of a 0.45 mm grid: a per-lesion,
# per-slice dilation / erosion (sd) and a smooth contour wobble (sd); Dice between
# repetitions comes out around 0.75-0.9, lower for small lesions
BIAS_PX = 0.75
JITTER_PX = 0.8


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return n / max(float(n.std()), 1e-9)


def repeat_segmentation(labels: np.ndarray, allowed: np.ndarray, rng: np.random.Generator,
                        pixel_mm: float) -> np.ndarray:
    """One repeated segmentation of the reference `labels` (z, y, x) by the same rater.

    `allowed` is where a rater can paint at all (inside the skull)."""
    out = np.zeros_like(labels)
    comp, n = ndimage.label(labels > 0)
    if n == 0:
        return out
    # the rater works in screen pixels but thinks in millimetres: about half a mm of play
    scale = float(np.clip(0.45 / pixel_mm, 0.35, 1.0))
    sizes = np.bincount(comp.ravel(), minlength=n + 1)[1:]
    keep = np.ones(n + 1, dtype=bool)
    keep[0] = False
    for i, size in enumerate(sizes, start=1):
        if size < 60 and rng.random() < 0.2:  # a small component overlooked this time
            keep[i] = False
    # z range of each component; the first / last slice is sometimes left out
    zr = ndimage.find_objects(comp)
    skip = set()
    for i, sl in enumerate(zr, start=1):
        z0, z1 = sl[0].start, sl[0].stop - 1
        if z1 - z0 >= 2:
            if rng.random() < 0.15:
                skip.add((i, z0))
            if rng.random() < 0.15:
                skip.add((i, z1))
    bias = rng.normal(0.0, BIAS_PX * scale, size=(n + 1, labels.shape[0]))
    for z in range(labels.shape[0]):
        cz = comp[z].copy()
        if not cz.any():
            continue
        ids = np.unique(cz[cz > 0])
        for i in ids:
            if not keep[i] or (i, z) in skip:
                cz[cz == i] = 0
        if not cz.any():
            continue
        # work in the lesions' bounding box plus a margin wider than any boundary shift
        rows, cols = np.nonzero(cz)
        m = 8
        win = (slice(max(0, rows.min() - m), rows.max() + m + 1),
               slice(max(0, cols.min() - m), cols.max() + m + 1))
        cw = cz[win]
        inside = cw > 0
        # signed distance to the reference outline (pixels, negative inside)
        d_out, near = ndimage.distance_transform_edt(~inside, return_indices=True)
        d_in = ndimage.distance_transform_edt(inside)
        sdf = np.where(inside, 0.5 - d_in, d_out - 0.5)
        nearest = cw[near[0], near[1]]
        jitter = bias[nearest, z] + JITTER_PX * scale * _smooth_noise(rng, inside.shape, 2.0)
        painted = (sdf < jitter) & (sdf < 4.0) & allowed[z][win]
        out[z][win][painted] = labels[z][win][near[0], near[1]][painted]
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * np.logical_and(a, b).sum() / s)
