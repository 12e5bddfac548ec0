"""Prediction overlays and error regions (pure numpy/scipy; the review views draw these).

Comparison overlay (the paper's Figure 3): reference only red, prediction only green,
both yellow; or, for readers with red-green colour vision deficiency (about 1 man in 12),
the "colour-blind" palette: blue / orange / white (Preferences). A slice becomes a uint8 *code* image (0 none, 1 reference only, 2 prediction
only, 3 both) drawn through a 256-entry RGBA table (pyqtgraph's Indexed8 path), so the
colours on screen are exactly the table's at full opacity.

Probability heatmap: p -> uint8 index round(255 p), drawn through a table that is
transparent below the threshold, so moving the threshold only changes the table.

Pseudo-label overlay (the ranker inspection): codes 1 positive (p > K_hi), 2 ignored band
(K_lo <= p <= K_hi, no loss in training: training/ranker.py), drawn hatched.

Error regions: 3-D connected components (26-connectivity) of the prediction that touch no
reference voxel (false-positive regions) and of the reference that no predicted voxel
touches (false-negative regions): lesion-level errors a reader can jump between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ictview.core.labels import IGNORE

REFERENCE_RGB = (255, 0, 0)
PREDICTION_RGB = (0, 255, 0)
OVERLAP_RGB = (255, 255, 0)
NONE, REFERENCE_ONLY, PREDICTION_ONLY, OVERLAP = 0, 1, 2, 3
CODE_RGB = {REFERENCE_ONLY: REFERENCE_RGB, PREDICTION_ONLY: PREDICTION_RGB, OVERLAP: OVERLAP_RGB}
# (reference only, prediction only, both): Okabe & Ito's sky blue and orange stay apart under
# protan, deutan and tritan vision; white is the brightest third that is neither
REVIEW_PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "standard": (REFERENCE_RGB, PREDICTION_RGB, OVERLAP_RGB),
    "colour-blind": ((86, 180, 233), (230, 159, 0), (255, 255, 255)),
}
PALETTE_TEXT = {"standard": "Red / green / yellow (the paper's Figure 3)",
                "colour-blind": "Blue / orange / white (colour-blind safe)"}

PSEUDO_POSITIVE, PSEUDO_IGNORED = 1, 2
PSEUDO_POSITIVE_RGB = PREDICTION_RGB
PSEUDO_IGNORED_RGB = (255, 176, 0)  # amber hatching: "no loss here", not a finding


def hemorrhage(labels: np.ndarray) -> np.ndarray:
    """Label volume -> bool hemorrhage (classes 1..5; 0 and the ignore value 255 are not)."""
    labels = np.asarray(labels)
    return (labels > 0) & (labels != IGNORE)


def comparison_codes(reference: np.ndarray | None, prediction: np.ndarray) -> np.ndarray:
    """bool arrays (any shape) -> uint8 codes; reference None: prediction only (green)."""
    pred = np.asarray(prediction, bool)
    codes = pred.astype(np.uint8) * PREDICTION_ONLY
    if reference is not None:
        ref = np.asarray(reference, bool)
        if ref.shape != pred.shape:
            raise ValueError(f"reference shape {ref.shape} != prediction shape {pred.shape}")
        codes |= ref.astype(np.uint8)  # 1 | 2 = 3 where both
    return codes


def palette_rgb(palette: str = "standard") -> dict[int, tuple[int, int, int]]:
    """Code (REFERENCE_ONLY, PREDICTION_ONLY, OVERLAP) -> RGB in a review palette."""
    ref, pred, both = REVIEW_PALETTES[palette]
    return {REFERENCE_ONLY: ref, PREDICTION_ONLY: pred, OVERLAP: both}


def comparison_lut(palette: str = "standard") -> np.ndarray:
    """256 x 4 RGBA: codes 1..3 opaque in the palette's colours (standard: red / green /
    yellow), everything else transparent."""
    lut = np.zeros((256, 4), np.uint8)
    for code, rgb in palette_rgb(palette).items():
        lut[code] = (*rgb, 255)
    return lut


def compose_rgb(gray: np.ndarray, codes: np.ndarray, lut: np.ndarray,
                opacity: float = 1.0) -> np.ndarray:
    """uint8 grey image + uint8 index image through an RGBA table -> uint8 RGB, alpha-blended
    as the viewer draws it (source-over with alpha = table alpha * opacity)."""
    g = np.asarray(gray, np.float32)[..., None].repeat(3, axis=-1)
    rgba = lut[np.asarray(codes, np.uint8)].astype(np.float32)
    a = rgba[..., 3:4] / 255.0 * float(np.clip(opacity, 0.0, 1.0))
    out = g * (1.0 - a) + rgba[..., :3] * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---- probability heatmap -----------------------------------------------------------------

# dark red -> red -> orange -> yellow -> white: hot colours read as "more likely blood"
_HEAT_STOPS = np.array([
    (0.00, 120, 0, 0), (0.35, 220, 30, 0), (0.65, 255, 140, 0),
    (0.90, 255, 235, 60), (1.00, 255, 255, 255),
], np.float32)


def probability_index(prob: np.ndarray) -> np.ndarray:
    """float probabilities -> uint8 round(255 p) (the heatmap's index image)."""
    p = np.nan_to_num(np.asarray(prob, np.float32), nan=0.0)
    return np.rint(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)


def heatmap_lut(threshold: float = 0.5) -> np.ndarray:
    """256 x 4 RGBA: index i (p = i / 255) transparent where p < threshold, else a hot ramp
    from the threshold (dark red) to 1 (white)."""
    lut = np.zeros((256, 4), np.uint8)
    p = np.arange(256, dtype=np.float32) / 255.0
    t = float(np.clip(threshold, 0.0, 1.0))
    shown = p >= t
    span = max(1.0 - t, 1e-6)
    u = np.clip((p - t) / span, 0.0, 1.0)
    for ch in range(3):
        lut[:, ch] = np.rint(np.interp(u, _HEAT_STOPS[:, 0], _HEAT_STOPS[:, ch + 1]))
    lut[:, 3] = np.where(shown, 255, 0)
    lut[~shown, :3] = 0
    return lut


# ---- pseudo-labels ---------------------------------------------------------------------------


def pseudo_codes(prob: np.ndarray, k_hi: float, k_lo: float) -> np.ndarray:
    """The ranker's pixel rule on a positive image: 1 where p > K_hi, 2 (ignored, shown hatched)
    where K_lo <= p <= K_hi, 0 below K_lo (same bounds as training/ranker.threshold_pixels)."""
    if not 0.0 <= k_lo <= k_hi <= 1.0:
        raise ValueError(f"need 0 <= K_lo <= K_hi <= 1, got {k_lo}, {k_hi}")
    p = np.asarray(prob, np.float32)
    codes = np.zeros(p.shape, np.uint8)
    codes[(p >= k_lo) & (p <= k_hi)] = PSEUDO_IGNORED
    codes[p > k_hi] = PSEUDO_POSITIVE
    return codes


def compose_pseudolabel(gray: np.ndarray, codes: np.ndarray, fill_alpha: float = 0.45,
                        hatch_period: int = 4) -> np.ndarray:
    """Grey uint8 slice + pseudo-label codes -> RGB: positive pixels green (translucent fill,
    opaque 1-px edge), the ignored band as amber diagonal hatching over the untouched CT."""
    g = np.asarray(gray, np.uint8)
    rgb = np.repeat(g[..., None], 3, axis=-1).astype(np.float32)
    pos = codes == PSEUDO_POSITIVE
    ign = codes == PSEUDO_IGNORED
    rgb[pos] = rgb[pos] * (1 - fill_alpha) + np.array(PSEUDO_POSITIVE_RGB, np.float32) * fill_alpha
    edge = pos & ~ndimage.binary_erosion(pos, border_value=0)
    rgb[edge] = PSEUDO_POSITIVE_RGB
    yy, xx = np.indices(g.shape)
    stripe = ((yy + xx) % max(hatch_period, 2)) == 0
    rgb[ign & stripe] = PSEUDO_IGNORED_RGB
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ---- error regions ---------------------------------------------------------------------------

FP, FN, TP, PRED = "FP", "FN", "TP", "pred"
MIN_REGION_MM3 = 10.0
_STRUCTURE = np.ones((3, 3, 3), bool)


@dataclass(frozen=True)
class Region:
    kind: str  # FP (prediction touching no reference), FN (missed reference), TP, or PRED
    z_first: int
    z_last: int
    peak_z: int  # the slice where the region is largest: where a jump lands
    center: tuple[float, float]  # (row, col) centroid on peak_z
    bbox: tuple[int, int, int, int]  # (row0, col0, row1, col1) on peak_z, exclusive ends
    voxels: int

    def volume_ml(self, spacing_zyx: tuple[float, float, float]) -> float:
        return self.voxels * float(np.prod(spacing_zyx)) / 1000.0

    @property
    def slices_text(self) -> str:
        a, b = self.z_first + 1, self.z_last + 1
        return f"slice {a}" if a == b else f"slices {a}–{b}"


def _regions_of(mask: np.ndarray, other: np.ndarray | None, kind_hit: str,
                kind_miss: str) -> list[Region]:
    lab, n = ndimage.label(mask, structure=_STRUCTURE)
    if n == 0:
        return []
    out = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        comp = lab[sl] == i
        hit = other is not None and bool(other[sl][comp].any())
        kind = kind_hit if hit else kind_miss
        per_slice = comp.reshape(comp.shape[0], -1).sum(1)
        k = int(np.argmax(per_slice))
        rows, cols = np.nonzero(comp[k])
        z0, r0, c0 = sl[0].start, sl[1].start, sl[2].start
        out.append(Region(
            kind, z0, z0 + comp.shape[0] - 1, z0 + k,
            (float(rows.mean() + r0), float(cols.mean() + c0)),
            (int(rows.min() + r0), int(cols.min() + c0), int(rows.max() + r0 + 1),
             int(cols.max() + c0 + 1)),
            int(per_slice.sum()),
        ))
    return out


def min_region_voxels(spacing_zyx: tuple[float, float, float], mm3: float = MIN_REGION_MM3) -> int:
    """Voxels in the smallest region worth a jump (specks below ~10 mm³ are noise to a reader)."""
    voxel = float(np.prod(spacing_zyx))
    return max(1, int(np.ceil(mm3 / voxel))) if voxel > 0 else 1


def error_regions(reference: np.ndarray | None, prediction: np.ndarray,
                  min_voxels: int = 1) -> list[Region]:
    """FP, FN and TP regions of bool (z, y, x) volumes, ordered by (peak slice, row, col),
    regions smaller than `min_voxels` left out. Without a reference nothing is known to be
    wrong: predicted regions come back as "pred"."""
    pred = np.asarray(prediction, bool)
    if reference is None:
        regions = _regions_of(pred, None, PRED, PRED)
    else:
        ref = np.asarray(reference, bool)
        if ref.shape != pred.shape:
            raise ValueError(f"reference shape {ref.shape} != prediction shape {pred.shape}")
        regions = _regions_of(pred, ref, TP, FP) + [
            r for r in _regions_of(ref, pred, TP, FN) if r.kind == FN
        ]
    regions = [r for r in regions if r.voxels >= min_voxels]
    return sorted(regions, key=lambda r: (r.peak_z, r.center[0], r.center[1], r.kind))


def region_frame(region: Region, shape_yx: tuple[int, int], min_fraction: float = 0.5,
                 context: float = 4.0) -> tuple[float, float, float, float]:
    """The part of a slice a jump to `region` shows, as (row0, col0, row1, col1) in pixels:
    centred on the region, `context` times its size but never less than `min_fraction` of
    the slice's larger side (a reader judges a finding against the anatomy around it), and
    shifted, not cut, to stay inside the slice. FP and FN jumps frame the same way."""
    ny, nx = shape_yx
    r0, c0, r1, c1 = region.bbox
    side = max((r1 - r0) * context, (c1 - c0) * context, min_fraction * max(ny, nx))
    side = min(side, float(max(ny, nx)))
    out = []
    for centre, n in ((region.center[0] + 0.5, ny), (region.center[1] + 0.5, nx)):
        half = side / 2
        lo = centre - half
        if side <= n:  # inside the slice: shift back from an edge rather than show outside
            lo = min(max(lo, 0.0), n - side)
        else:  # the frame is wider than the slice along this axis: centre the slice in it
            lo = (n - side) / 2
        out.append((lo, lo + side))
    (a, b), (c, d) = out
    return a, c, b, d


def next_region(regions: list[Region], z: int, current: Region | None = None,
                forward: bool = True) -> Region | None:
    """The region to jump to from slice z: after (before) `current` in slice order, or, when
    not on a region, the first one at or beyond (before) z; wraps around."""
    if not regions:
        return None
    ordered = sorted(regions, key=lambda r: (r.peak_z, r.center[0], r.center[1]))
    if current is not None and current in ordered:
        i = ordered.index(current)
        return ordered[(i + (1 if forward else -1)) % len(ordered)]
    if forward:
        return next((r for r in ordered if r.peak_z >= z), ordered[0])
    return next((r for r in reversed(ordered) if r.peak_z <= z), ordered[-1])
